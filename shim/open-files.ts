// Buffered file data of one mount: per-inode dirty blocks, committed on flush/fsync/
// release or when the buffer passes a bound, and block maps for reading.
//
// Writes land in whole-block buffers (block_size of the tenant). A flush snapshots the
// dirty blocks, hashes them in Node (sha256 costs 0.5 ms/MiB here; shipping bytes to
// PostgreSQL to hash them costs 4 ms/MiB) and commits them in one transaction. While a
// flush is in flight, new writes go to fresh buffers, so a snapshot is never mutated.

import { ChunkStore, isZero, sha256 } from './chunks.js';
import { withCaller } from './audit.js';
import { withRetry } from './database.js';
import type { Caller } from './fuse/binding.js';
import type { Sql } from './database.js';
import { Errno, FsError } from './errors.js';

export interface Attr {
  ino: number; mode: number; nlink: number; uid: number; gid: number; rdev: number;
  size: number; blocks: number; blksize: number;
  atime_sec: number; atime_nsec: number; mtime_sec: number; mtime_nsec: number;
  ctime_sec: number; ctime_nsec: number;
}

interface Block {
  data: Buffer;    // block_size bytes
  length: number;  // bytes of the block inside the file
}

/** Files up to this size fetch their chunks with a plain query instead of a COPY. */
const SMALL_FILE_BYTES = 256 * 1024;

/** Blocks mapped per read-ahead window, and fetched in one COPY. */
const WINDOW_BLOCKS = 8;

/**
 * How often a read maps a block again when the chunk its map names is gone. A map read
 * just before a commit that released the chunk (a pack moving the file into lines, a write
 * on another mount) names it; the map read after names what replaced it.
 */
const REMAP_ATTEMPTS = 3;

/** Block number -> chunk hash (null: a hole) of one window, as one file_blocks call saw it. */
type WindowMap = Map<number, Buffer | null>;

export class FileState {
  refs = 0;
  dirty = new Map<number, Block>();
  flushing = new Map<number, Block>();
  dirtyBytes = 0;
  /** Logical size as this mount sees it: committed size grown by buffered writes. */
  size: number;
  committedSize: number;
  /** Block number -> chunk hash (null: hole), valid until the next open. */
  blockMap = new Map<number, Buffer | null>();
  windows = new Map<number, Promise<WindowMap>>();
  /** Counts forgetBlockMap(): a window loaded across a drop is used once, never kept. */
  mapGeneration = 0;
  inflight: Promise<void> = Promise.resolve();
  inflightCount = 0;
  error: unknown = null;
  /** the last writer of buffered data: the caller of its commit's audit row */
  writer: Caller = { uid: 0, gid: 0, pid: 0 };
  attr: Attr;
  /** The view changed under this open file (layer switch): read its attributes again. */
  stale = false;
  /** The last name went while open here: the inode is an orphan until the last release. */
  orphan = false;
  /** Writes of one inode run one at a time: each may wait for a block's base content. */
  writeQueue: Promise<unknown> = Promise.resolve();

  constructor(readonly ino: number, attr: Attr) {
    this.attr = attr;
    this.size = attr.size;
    this.committedSize = attr.size;
  }

  get hasPendingData(): boolean {
    return this.dirty.size > 0 || this.inflightCount > 0;
  }

  /**
   * Drop the block map (a new open, a layer switch or pack, a truncate): the next read maps
   * again. Reads already waiting for a window keep using what that window loaded.
   */
  forgetBlockMap(): void {
    this.blockMap.clear();
    this.windows.clear();
    this.mapGeneration++;
  }
}

export class OpenFiles {
  private files = new Map<number, FileState>();

  constructor(
    private readonly sql: Sql,
    readonly chunks: ChunkStore,
    readonly blockSize: number,
    private readonly flushThresholdBytes: number,
  ) {}

  get(ino: number): FileState | undefined {
    return this.files.get(ino);
  }

  /** Count an open handle; a first open starts from fresh attributes (close-to-open). */
  open(attr: Attr): FileState {
    let state = this.files.get(attr.ino);
    if (!state) {
      state = new FileState(attr.ino, attr);
      this.files.set(attr.ino, state);
    } else if (!state.hasPendingData) {
      state.attr = attr;
      state.size = state.committedSize = attr.size;
      state.forgetBlockMap();
    }
    state.refs++;
    return state;
  }

  /**
   * Drop a handle; the state goes with the last one (after its data is committed).
   * Returns true when that was the last handle.
   */
  async release(state: FileState): Promise<boolean> {
    try {
      await this.flush(state);
    } finally {
      state.refs--;
      if (state.refs <= 0 && !state.hasPendingData) this.files.delete(state.ino);
    }
    return state.refs <= 0;
  }

  /**
   * Buffer a write. With `append`, the offset is the end of the file as this mount knows it,
   * taken when the write's turn comes, so concurrent appenders never overwrite each other.
   */
  write(state: FileState, buf: Buffer, offset: number, writer: Caller, append = false): Promise<number> {
    const run = state.writeQueue.then(() => append ? this.appendNow(state, buf, writer) : this.writeNow(state, buf, offset, writer));
    state.writeQueue = run.catch(() => {});
    return run;
  }

  /**
   * O_APPEND: commit what is buffered, then append in SQL, where the inode's row lock makes
   * "the end of the file" the same for every process and every mount.
   */
  private async appendNow(state: FileState, buf: Buffer, writer: Caller): Promise<number> {
    await this.flush(state);
    const [attr] = await this.sql`select * from tarbox.append_ino(${withCaller(this.sql, writer, state.ino)}, ${buf}, ${writer.uid})`;
    state.attr = attr as Attr;
    state.size = state.committedSize = (attr as Attr).size;
    state.forgetBlockMap();
    return buf.length;
  }

  private async writeNow(state: FileState, buf: Buffer, offset: number, writer: Caller): Promise<number> {
    this.throwPendingError(state);
    await this.refresh(state);
    const bs = this.blockSize;
    const end = offset + buf.length;
    state.writer = writer;
    for (let blockNo = Math.floor(offset / bs); blockNo * bs < end; blockNo++) {
      const blockStart = blockNo * bs;
      const from = Math.max(offset - blockStart, 0);
      const to = Math.min(end - blockStart, bs);
      let block = state.dirty.get(blockNo);
      if (!block) {
        block = await this.startBlock(state, blockNo, from, to);
        state.dirty.set(blockNo, block);
        state.dirtyBytes += bs;
      }
      buf.copy(block.data, from, blockStart + from - offset, blockStart + to - offset);
      block.length = Math.max(block.length, to);
    }
    state.size = Math.max(state.size, end);
    if (state.dirtyBytes >= this.flushThresholdBytes) {
      // commit in the background; wait only when two commits are already in flight
      if (state.inflightCount >= 2) await state.inflight;
      this.startFlush(state);
    }
    return buf.length;
  }

  /** A fresh buffer for a block about to be written, holding the bytes the write keeps. */
  private async startBlock(state: FileState, blockNo: number, from: number, to: number): Promise<Block> {
    const bs = this.blockSize;
    const data = Buffer.alloc(bs);
    const keep = Math.min(Math.max(state.size - blockNo * bs, 0), bs);
    let length = 0;
    if (keep > 0 && (from > 0 || to < keep)) {
      const base = await this.readBlock(state, blockNo);
      base.copy(data, 0, 0, Math.min(keep, base.length));
      length = keep;
    }
    return { data, length };
  }

  /** Current content of a block (dirty, being flushed or committed), up to its length. */
  private async readBlock(state: FileState, blockNo: number): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      const buffered = state.dirty.get(blockNo) ?? state.flushing.get(blockNo);
      if (buffered) return buffered.data.subarray(0, buffered.length);
      const hash = await this.blockHash(state, blockNo);
      if (!hash) return Buffer.alloc(0);
      const chunk = (await this.chunks.get([hash])).get(hash.toString('hex'));
      if (chunk) return chunk;
      // the map predates a commit that released this chunk: ask again what the block holds
      if (attempt === REMAP_ATTEMPTS) throw new FsError(Errno.EIO, `chunk ${hash.toString('hex')} vanished`);
      state.forgetBlockMap();
    }
  }

  /**
   * The chunk a block points at (null: a hole). A block missing from the map is not a hole:
   * the map may have been dropped while its window loaded (a layer notice arrives right
   * after a pack commits), so the read takes the answer of the load it waited for.
   */
  private async blockHash(state: FileState, blockNo: number): Promise<Buffer | null> {
    const mapped = state.blockMap.get(blockNo);
    if (mapped !== undefined) return mapped;
    return (await this.mapWindow(state, blockNo)).get(blockNo) ?? null;
  }

  /** Load the block map (and the chunks) of the window holding blockNo, once. */
  private mapWindow(state: FileState, blockNo: number): Promise<WindowMap> {
    const window = Math.floor(blockNo / WINDOW_BLOCKS);
    let pending = state.windows.get(window);
    if (!pending) {
      const loading = this.loadWindow(state, window);
      state.windows.set(window, loading);
      loading.catch(() => { if (state.windows.get(window) === loading) state.windows.delete(window); });
      pending = loading;
    }
    return pending;
  }

  private async loadWindow(state: FileState, window: number): Promise<WindowMap> {
    const generation = state.mapGeneration;
    const first = window * WINDOW_BLOCKS;
    const rows = await this.sql`select block_no, chunk_hash from tarbox.file_blocks(${state.ino}, ${first}, ${WINDOW_BLOCKS})`;
    const map: WindowMap = new Map();
    for (let n = first; n < first + WINDOW_BLOCKS; n++) map.set(n, null);
    for (const row of rows) map.set(row.block_no as number, row.chunk_hash as Buffer);
    // kept only if no drop came meanwhile: rows read before a drop may name released chunks
    if (state.mapGeneration === generation) {
      for (const [n, hash] of map) if (!state.blockMap.has(n)) state.blockMap.set(n, hash);
    }
    const hashes = rows.map((row) => row.chunk_hash as Buffer);
    if (hashes.length) await this.chunks.get(hashes, state.committedSize <= SMALL_FILE_BYTES);
    return map;
  }

  async read(state: FileState, buf: Buffer, length: number, offset: number): Promise<number> {
    this.throwPendingError(state);
    await this.refresh(state);
    const end = Math.min(offset + length, state.size);
    if (offset >= end) return 0;
    const bs = this.blockSize;
    const lastBlock = Math.floor((end - 1) / bs);
    // read ahead: map the next window while this one is being copied
    if (state.committedSize > (lastBlock + 1) * bs) void this.mapWindow(state, lastBlock + WINDOW_BLOCKS).catch(() => {});
    for (let blockNo = Math.floor(offset / bs); blockNo <= lastBlock; blockNo++) {
      const blockStart = blockNo * bs;
      const from = Math.max(offset - blockStart, 0);
      const to = Math.min(end - blockStart, bs);
      const content = await this.readBlock(state, blockNo);
      const target = blockStart + from - offset;
      const copied = content.length > from ? content.copy(buf, target, from, Math.min(to, content.length)) : 0;
      if (from + copied < to) buf.fill(0, target + copied, target + (to - from)); // hole or short chunk
    }
    return end - offset;
  }

  /** Commit everything buffered for this inode and wait for it. */
  async flush(state: FileState): Promise<void> {
    if (state.dirty.size) this.startFlush(state);
    await state.inflight;
    this.throwPendingError(state);
  }

  /** Drop buffered data after the file was truncated or removed by another path. */
  async settle(state: FileState): Promise<void> {
    await this.flush(state);
  }

  private startFlush(state: FileState): void {
    const batch = state.dirty;
    state.dirty = new Map();
    state.dirtyBytes = 0;
    const end = state.size;
    const writer = state.writer;
    for (const [blockNo, block] of batch) state.flushing.set(blockNo, block);
    state.inflightCount++;
    const previous = state.inflight;
    state.inflight = (async () => {
      await previous.catch(() => {}); // commits of one inode stay in order
      try {
        const blocks = [...batch].map(([blockNo, block]) => {
          const data = block.data.subarray(0, block.length);
          const hole = isZero(data);
          return { blockNo, data: hole ? null : data, hash: hole ? null : sha256(data) };
        });
        // 23505: another writer stored one of our chunks first; 23503: a chunk we counted on
        // was released meanwhile. Both resolve by running the commit again.
        const attr = await withRetry(() => this.chunks.commit<Attr>(state.ino, blocks, end, writer),
          (err) => ['23505', '23503'].includes((err as { code?: string }).code ?? ''));
        for (const block of blocks) state.blockMap.set(block.blockNo, block.hash);
        state.committedSize = attr.size;
        state.attr = attr;
      } catch (err) {
        state.error ??= err;
      } finally {
        for (const [blockNo, block] of batch) if (state.flushing.get(blockNo) === block) state.flushing.delete(blockNo);
        state.inflightCount--;
      }
    })();
  }

  /** An error from a background commit is reported once, on the next call (as NFS does). */
  private throwPendingError(state: FileState): void {
    if (state.error) {
      const err = state.error;
      state.error = null;
      throw err;
    }
  }

  /** Open files may look different in the new view (layer switch): read them again. */
  dropBlockMaps(): void {
    for (const state of this.files.values()) {
      state.forgetBlockMap();
      state.stale = true;
    }
  }

  /**
   * After a layer switch, an open file takes the size and attributes it has in the new
   * view before its next read or write (ENOENT if it does not exist there).
   */
  async refresh(state: FileState): Promise<void> {
    if (!state.stale || state.hasPendingData) return;
    state.stale = false;
    const [attr] = await this.sql`select * from tarbox.getattr_ino(${state.ino})`;
    state.attr = attr as Attr;
    state.size = state.committedSize = (attr as Attr).size;
    state.forgetBlockMap();
  }

  /** After truncate: buffered blocks past the new end are gone, the map is stale. */
  truncated(state: FileState, attr: Attr): void {
    state.attr = attr;
    state.size = state.committedSize = attr.size;
    state.forgetBlockMap();
  }
}
