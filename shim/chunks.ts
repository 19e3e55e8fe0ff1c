// Chunk transfer: content-addressed blocks moved with binary COPY, and an LRU of chunk
// contents by hash. Chunks are immutable (the hash names the bytes), so the cache never
// needs invalidation; only block maps (which chunk a block holds) go stale.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { LRUCache } from 'lru-cache';
import { copyHeader, copyTrailer, copyTuple, CopyBinaryParser } from './copy-binary.js';
import { withCaller } from './audit.js';
import type { Sql } from './database.js';
import type { Caller } from './fuse/binding.js';

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function isZero(data: Buffer): boolean {
  // compare 8 bytes at a time; most blocks are not zero and fail within the first word
  let i = 0;
  const words = data.length - (data.length % 8);
  for (; i < words; i += 8) if (data.readBigUInt64LE(i) !== 0n) return false;
  for (; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** A SQL array literal of bytea hashes: hex digits only, so it is safe to inline in COPY. */
function hashArrayLiteral(hashes: Buffer[]): string {
  return `array[${hashes.map((h) => `'\\x${h.toString('hex')}'::bytea`).join(',')}]::bytea[]`;
}

/**
 * New bytes up to which a commit goes inline (one statement) instead of through COPY. Bytes
 * travel as hex text in a parameter, which costs ~40 us per KiB here against COPY's fixed
 * ~3-4 ms of round trips: inline measured 1.1-1.9 ms for 1-8 KiB against 3.4-6 ms, even at
 * 32 KiB, and slower from 64 KiB on (docs/architecture.md, "Small commits").
 */
const INLINE_COMMIT_BYTES = 32 * 1024;

/** A block to commit: its bytes and their sha256, or null for both (a hole). */
export interface BlockToCommit { blockNo: number; data: Buffer | null; hash: Buffer | null }

export interface ChunkCacheStats {
  hits: number;
  misses: number;
  evictions: number;
}

export class ChunkStore {
  readonly cache: LRUCache<string, Buffer>;
  readonly stats: ChunkCacheStats = { hits: 0, misses: 0, evictions: 0 };
  private inflight = new Map<string, Promise<void>>();

  /** The tenant id as a binary COPY int8 field. */
  private readonly tenantField: Buffer;

  constructor(private readonly data: Sql, tenantId: number, cacheBytes: number) {
    this.tenantField = Buffer.alloc(8);
    this.tenantField.writeBigInt64BE(BigInt(tenantId));
    this.cache = new LRUCache<string, Buffer>({
      maxSize: Math.max(cacheBytes, 1),
      sizeCalculation: (value) => Math.max(value.length, 1),
      dispose: (_value, _key, reason) => { if (reason === 'evict') this.stats.evictions++; },
    });
  }

  /**
   * The contents of these chunks, from the cache or with one query for the rest: binary COPY
   * for bulk reads, a plain select when the caller knows the chunks are small (a COPY costs a
   * few milliseconds to set up, far more than moving a few KiB as hex).
   */
  async get(hashes: Buffer[], small = false): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    const waiting: Promise<void>[] = [];
    const fetch: Buffer[] = [];
    for (const hash of hashes) {
      const key = hash.toString('hex');
      if (found.has(key)) continue;
      const cached = this.cache.get(key);
      if (cached) { this.stats.hits++; found.set(key, cached); continue; }
      const pending = this.inflight.get(key);
      if (pending) { waiting.push(pending); continue; }
      this.stats.misses++;
      fetch.push(hash);
    }
    if (fetch.length) {
      const request = small ? this.selectOut(fetch, found) : this.copyOut(fetch, found);
      for (const hash of fetch) this.inflight.set(hash.toString('hex'), request);
      try {
        await request;
      } finally {
        for (const hash of fetch) this.inflight.delete(hash.toString('hex'));
      }
    }
    await Promise.all(waiting);
    for (const hash of hashes) {
      const key = hash.toString('hex');
      if (!found.has(key)) {
        const cached = this.cache.get(key);
        if (cached) found.set(key, cached);
      }
    }
    return found;
  }

  private async selectOut(hashes: Buffer[], into: Map<string, Buffer>): Promise<void> {
    // the hashes inline (hex digits only, as for COPY): a bytea[] parameter built before the
    // pool's first connection has fetched its array types goes out as bytea (42883 on a fresh
    // mount's first small read)
    const rows = await this.data.unsafe(`select hash, data from tarbox.read_chunks(${hashArrayLiteral(hashes)})`);
    for (const row of rows) {
      const key = (row.hash as Buffer).toString('hex');
      this.cache.set(key, row.data as Buffer);
      into.set(key, row.data as Buffer);
    }
  }

  private async copyOut(hashes: Buffer[], into: Map<string, Buffer>): Promise<void> {
    const query = `copy (select hash, data from tarbox.read_chunks(${hashArrayLiteral(hashes)})) to stdout (format binary)`;
    const stream = await this.data.unsafe(query).readable();
    const parser = new CopyBinaryParser(([hash, data]) => {
      const key = hash!.toString('hex');
      const copy = Buffer.from(data!); // detach from the stream's buffer so the cache holds only this chunk
      this.cache.set(key, copy);
      into.set(key, copy);
    });
    for await (const chunk of stream) parser.push(chunk as Buffer);
  }

  /**
   * Store blocks of one file and commit its block map, the way that is cheaper for their size
   * (below). Returns the file's attributes after the commit.
   */
  commit<T>(ino: number, blocks: BlockToCommit[], end: number, writer: Caller): Promise<T> {
    const bytes = blocks.reduce((n, block) => n + (block.data?.length ?? 0), 0);
    return bytes <= INLINE_COMMIT_BYTES ? this.commitInline<T>(ino, blocks, end, writer) : this.commitCopied<T>(ino, blocks, end, writer);
  }

  /**
   * Store a small batch of blocks with one statement (tarbox.commit_blocks_inline): the bytes
   * travel as one bytea parameter with a length per block, and PostgreSQL hashes and stores the
   * new chunks itself. Up to INLINE_COMMIT_BYTES this beats the COPY transaction, whose round
   * trips cost more than moving a few KiB as hex.
   */
  private async commitInline<T>(ino: number, blocks: BlockToCommit[], end: number, writer: Caller): Promise<T> {
    const [attr] = await this.data`
      select * from tarbox.commit_blocks_inline(${withCaller(this.data, writer, ino)},
        ${this.data.array(blocks.map((b) => b.blockNo), 20)}, ${this.data.array(blocks.map((b) => b.data?.length ?? null) as number[], 23)},
        ${Buffer.concat(blocks.flatMap((b) => (b.data ? [b.data] : [])))}, ${end}, ${writer.uid})`;
    for (const block of blocks) if (block.hash) this.cache.set(block.hash.toString('hex'), block.data!);
    return attr as T;
  }

  /**
   * Store blocks of one file in one transaction: COPY the chunks the tenant lacks (binary,
   * so bytes travel as bytes) into tarbox_private.chunk_uploads, whose trigger inserts them
   * into chunks under the tenant's row-level security (COPY FROM is refused on a table with
   * RLS), then commit the block map. Returns the file's attributes after the commit. A concurrent writer storing the
   * same chunk first makes the COPY fail with 23505; the caller retries the whole commit.
   */
  private async commitCopied<T>(ino: number, blocks: BlockToCommit[], end: number, writer: Caller): Promise<T> {
    const present = blocks.filter((b) => b.hash !== null);
    return (await this.data.begin(async (tx) => {
      const missing = present.length
        ? new Set((await tx`select encode(h, 'hex') as h from tarbox.missing_chunks(${tx.array(present.map((b) => b.hash!), 17)}) h`)
            .map((row) => row.h as string))
        : new Set<string>();
      if (missing.size) {
        // the quota (TBQTA) must be raised here: an error in the middle of a COPY is lost
        const sizes = new Map(present.map((b) => [b.hash!.toString('hex'), b.data!.length]));
        const bytes = [...missing].reduce((n, key) => n + sizes.get(key)!, 0);
        await tx`select tarbox.check_space(${bytes})`;
        const stream = await tx.unsafe('copy tarbox_private.chunk_uploads (tenant_id, hash, data) from stdin (format binary)').writable();
        stream.write(copyHeader());
        for (const block of present) {
          const key = block.hash!.toString('hex');
          if (!missing.delete(key)) continue; // each chunk once
          for (const part of copyTuple([this.tenantField, block.hash!, block.data!])) stream.write(part);
        }
        stream.end(copyTrailer());
        await once(stream, 'finish');
      }
      const [attr] = await tx`
        select * from tarbox.commit_blocks(${withCaller(tx, writer, ino)}, ${tx.array(blocks.map((b) => b.blockNo), 20)},
                                           ${tx.array(blocks.map((b) => b.hash) as Buffer[], 17)}, ${end}, ${writer.uid})`;
      for (const block of present) this.cache.set(block.hash!.toString('hex'), block.data!);
      return attr;
    })) as T;
  }
}
