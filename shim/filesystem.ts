// TarboxFs: one method per filesystem operation, each the same short shape: turn the
// FUSE arguments into one call of the matching SQL function (docs/sql-api.md) and return
// its result. State kept here is only what makes FUSE fast without changing semantics:
// buffered file data (open-files.ts) and the metadata cache (metadata-cache.ts: attributes,
// names, negative entries), which every SQL result fills and every change drops; other
// mounts' changes reach it as notices (notifications.ts).

import { withCaller, type AuditLog } from './audit.js';
import type { Sql } from './database.js';
import { Errno, FsError } from './errors.js';
import { MetadataCache, type MetadataCacheCounters } from './metadata-cache.js';
import { OpenFiles, type Attr, type FileState } from './open-files.js';
import { KEEP_CACHE_BIT, PageCachePolicy } from './page-cache.js';

export interface Caller { uid: number; gid: number; pid: number }

const bytes = (path: string) => Buffer.from(path, 'latin1');
const dirOf = (path: string) => path.slice(0, Math.max(path.lastIndexOf('/'), 1));
const O_APPEND = 0o2000;
/** Entries per readdir statement (tarbox.readdir's p_limit). */
const READDIR_PAGE = 2000;
// xattr names reach us as latin1 (one char per byte); SQL keeps them as UTF-8 text
const xattrName = (name: string) => Buffer.from(name, 'latin1').toString('utf8');
const xattrNameBytes = (name: string) => Buffer.from(name, 'utf8').toString('latin1');

/** relatime, as tarbox.release applies it: worth a SQL call only when atime would move. */
function atimeIsDue(attr: Attr): boolean {
  const atime = attr.atime_sec * 1e9 + attr.atime_nsec;
  return atime <= attr.mtime_sec * 1e9 + attr.mtime_nsec || atime <= attr.ctime_sec * 1e9 + attr.ctime_nsec
    || atime < Date.now() * 1e6 - 86400e9;
}

interface Handle {
  state: FileState;
  path: string;
  wasRead: boolean;
  append: boolean;
  /** data went through this handle, so the size and mtime cached for it are stale */
  wrote: boolean;
  /** who opened it, and what went through it: the handle's audit row (level "all") */
  caller: Caller;
  bytesRead: number;
  bytesWritten: number;
}

export interface TarboxFsOptions {
  sql: Sql;
  files: OpenFiles;
  /** Bytes of metadata to cache ([cache] metadata_size). */
  metadataCacheBytes: number;
  audit?: AuditLog;
}

export class TarboxFs {
  private readonly sql: Sql;
  private readonly audit?: AuditLog;
  readonly files: OpenFiles;
  readonly attrs: MetadataCache;
  /** the kernel keeps pages, except at audit level "all", which counts every handle's reads */
  readonly pageCache = new PageCachePolicy(() => this.audit?.level !== 'all');
  private handles = new Map<number, Handle>();
  private nextHandle = 1;

  constructor(options: TarboxFsOptions) {
    this.sql = options.sql;
    this.files = options.files;
    this.audit = options.audit;
    this.attrs = new MetadataCache(options.metadataCacheBytes);
  }

  // --- attributes -------------------------------------------------------------------

  async getattr(path: string): Promise<Attr> {
    const cached = this.attrs.find(path);
    if (cached === null) throw new FsError(Errno.ENOENT); // a negative entry: no SQL
    return this.withBufferedData(cached ?? (await this.fetchAttr(path)));
  }

  async fgetattr(path: string, fh: number): Promise<Attr> {
    const handle = this.handles.get(fh);
    if (!handle) return this.getattr(path);
    await this.files.refresh(handle.state);
    return this.withBufferedData(handle.state.attr);
  }

  private async fetchAttr(path: string): Promise<Attr> {
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.lookup(${bytes(path)})`;
    if (!attr) {
      this.attrs.setAbsent(path, token);
      throw new FsError(Errno.ENOENT);
    }
    this.attrs.set(path, attr as Attr, token);
    return attr as Attr;
  }

  /** Attributes as this mount sees them: buffered writes already count. */
  private withBufferedData(attr: Attr): Attr {
    const state = this.files.get(attr.ino);
    if (!state || state.size === attr.size) return attr;
    return { ...attr, size: state.size, blocks: Math.ceil(state.size / 512) };
  }

  /** Cache what a SQL call returned, unless something was dropped since token was taken. */
  private remember(path: string, attr: Attr, token: number): Attr {
    this.attrs.set(path, attr, token);
    return attr;
  }

  /**
   * A path (or inode) argument that also names the calling process for the audit row of the change
   * (tarbox.with_caller sets it in the same statement: no extra round trip, docs/audit.md).
   */
  private by(caller: Caller, pathOrIno: string | number) {
    return withCaller(this.sql, caller, typeof pathOrIno === 'string' ? bytes(pathOrIno) : pathOrIno);
  }

  async chmod(caller: Caller, path: string, mode: number): Promise<void> {
    await this.settle(path);
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.chmod(${this.by(caller, path)}, ${mode})`;
    this.remember(path, attr as Attr, token);
  }

  async chown(caller: Caller, path: string, uid: number, gid: number): Promise<void> {
    await this.settle(path);
    // fuse passes (uid_t)-1 as 4294967295
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.chown(${this.by(caller, path)}, ${uid | 0}, ${gid | 0})`;
    this.remember(path, attr as Attr, token);
  }

  async utimens(caller: Caller, path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): Promise<void> {
    await this.settle(path);
    const token = this.attrs.begin();
    const [attr] = await this.sql`
      select * from tarbox.utimens(${this.by(caller, path)}, ${atimeSec}, ${atimeNsec}, ${mtimeSec}, ${mtimeNsec})`;
    this.remember(path, attr as Attr, token);
  }

  async access(caller: Caller, path: string, mask: number): Promise<void> {
    await this.sql`select tarbox.access(${bytes(path)}, ${mask}, ${caller.uid}, ${caller.gid})`;
  }

  async statfs(): Promise<Record<string, number>> {
    const [info] = await this.sql`select * from tarbox.statfs()`;
    return info as Record<string, number>;
  }

  // --- directories and names ----------------------------------------------------------

  /**
   * Names with their attributes (so d_ino and d_type are right), . and .. first. The listing
   * fills the cache as a complete directory: later lookups of other names need no SQL.
   */
  async readdir(path: string): Promise<{ names: string[]; attrs: Attr[] }> {
    const token = this.attrs.begin();
    const rows = await this.listEntries(path);
    const self = await this.getattr(path);
    const names = ['.', '..'];
    // '..' is reported with the directory's own attributes when its parent is not cached:
    // only d_ino differs, and nothing relies on the d_ino of '..'
    const parent = path === '/' ? self : this.attrs.find(path.slice(0, Math.max(path.lastIndexOf('/'), 1))) ?? self;
    const attrs: Attr[] = [self, parent];
    const entries: [string, Attr][] = [];
    for (const row of rows) {
      const name = (row.name as Buffer).toString('latin1');
      const { name: _name, ...attr } = row;
      names.push(name);
      attrs.push(attr as unknown as Attr);
      entries.push([name, attr as unknown as Attr]);
    }
    this.attrs.setListing(path, self.ino, entries, token);
    return { names, attrs };
  }

  /**
   * Every entry of a directory, a page at a time: each statement stays short however big the
   * directory (a single 10,000-entry statement once ran into statement_timeout). Pages follow
   * names, so none repeats; a name created meanwhile may be missed, as readdir(3) allows, and
   * the drop its notice causes discards the listing as a cache fill.
   */
  private async listEntries(path: string): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let after: Buffer | null = null;
    for (;;) {
      const page: Record<string, unknown>[] = await this.sql`
        select d.name, (d.attr).* from tarbox.readdir(${bytes(path)}, ${after}, ${READDIR_PAGE}) d`;
      rows.push(...page);
      if (page.length < READDIR_PAGE) return rows;
      after = page[page.length - 1].name as Buffer;
    }
  }

  async mkdir(caller: Caller, path: string, mode: number): Promise<void> {
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.mkdir(${this.by(caller, path)}, ${mode}, ${caller.uid}, ${caller.gid})`;
    this.remember(path, attr as Attr, token);
    this.attrs.setListing(path, (attr as Attr).ino, [], token); // new, so empty: creates in it need no lookup
    this.attrs.forgetParentOf(path);
  }

  async mknod(caller: Caller, path: string, mode: number, rdev: number): Promise<void> {
    const token = this.attrs.begin();
    const [attr] = await this.sql`
      select * from tarbox.mknod(${this.by(caller, path)}, ${mode}, ${rdev}, ${caller.uid}, ${caller.gid})`;
    this.remember(path, attr as Attr, token);
    this.attrs.forgetParentOf(path);
  }

  async symlink(caller: Caller, target: string, path: string): Promise<void> {
    const token = this.attrs.begin();
    const [attr] = await this.sql`
      select * from tarbox.symlink(${bytes(target)}, ${this.by(caller, path)}, ${caller.uid}, ${caller.gid})`;
    this.remember(path, attr as Attr, token);
    this.attrs.forgetParentOf(path);
  }

  async readlink(path: string): Promise<string> {
    const [row] = await this.sql`select tarbox.readlink(${bytes(path)}) as target`;
    return (row.target as Buffer).toString('latin1');
  }

  async link(caller: Caller, existing: string, path: string): Promise<void> {
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.link(${bytes(existing)}, ${this.by(caller, path)})`;
    this.remember(path, attr as Attr, token); // the inode's new nlink and ctime, for every name
    this.attrs.forgetParentOf(path);
  }

  /**
   * The open file lost its last name: its handles no longer name a path (a later flush must
   * not cache the old name for it), and its inode goes with the last release.
   */
  private orphan(state: FileState, path: string): void {
    state.orphan = true;
    for (const handle of this.handles.values()) if (handle.state === state && handle.path === path) handle.path = '';
  }

  /** The open file a path names in this mount, if any (its inode must outlive the name). */
  private openAt(path: string): FileState | undefined {
    for (const handle of this.handles.values()) if (handle.path === path) return handle.state;
    const ino = this.attrs.inoOf(path);
    return ino === undefined ? undefined : this.files.get(ino);
  }

  async unlink(caller: Caller, path: string): Promise<void> {
    const open = this.openAt(path);
    const token = this.attrs.begin();
    const [dir] = await this.sql`select * from tarbox.unlink_and_stat_dir(${this.by(caller, path)}, ${caller.uid}, ${open !== undefined})`;
    if (open) this.orphan(open, path);
    this.remember(dirOf(path), dir as Attr, token); // before removed(), which starts a new generation
    this.attrs.removed(path);
  }

  async rmdir(caller: Caller, path: string): Promise<void> {
    await this.sql`select tarbox.rmdir(${this.by(caller, path)}, ${caller.uid})`;
    this.attrs.removed(path);
    this.attrs.forgetParentOf(path);
  }

  async rename(caller: Caller, from: string, to: string): Promise<void> {
    const replaced = this.openAt(to);
    await this.sql`select tarbox.rename(${bytes(from)}, ${this.by(caller, to)}, 0, ${caller.uid}, ${replaced !== undefined})`;
    if (replaced) this.orphan(replaced, to);
    // names are cached by directory inode, so what lies below a moved directory stays valid;
    // the two names, the moved and the replaced inode (ctime, nlink) and both parents change
    this.attrs.forgetName(to);
    this.attrs.removed(from);
    this.attrs.forgetParentOf(from);
    this.attrs.forgetParentOf(to);
    for (const handle of this.handles.values()) {
      if (handle.path === from) handle.path = to;
    }
  }

  // --- file data ------------------------------------------------------------------------

  /** `keepPages`: the kernel may keep the file's cached pages (page-cache.ts). */
  private newHandle(caller: Caller, state: FileState, path: string, flags: number, keepPages = false): number {
    const fh = this.nextHandle++ + (keepPages ? KEEP_CACHE_BIT : 0);
    if (this.nextHandle > 0x7fffffff) this.nextHandle = 1;
    this.handles.set(fh, { state, path, wasRead: false, append: (flags & O_APPEND) !== 0, wrote: false, caller, bytesRead: 0, bytesWritten: 0 });
    return fh;
  }

  /**
   * Commit buffered data of the file a path names before changing its attributes: the
   * commit sets mtime (and may clear setuid), which must not undo an explicit utimens or
   * chmod that came after the writes (cp -a, tar).
   */
  private async settle(path: string): Promise<void> {
    const ino = this.attrs.inoOf(path);
    for (const handle of this.handles.values()) {
      if ((handle.path === path || handle.state.ino === ino) && handle.state.hasPendingData) {
        await this.files.flush(handle.state);
      }
    }
  }

  private handle(fh: number): Handle {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError(Errno.EBADF, `unknown file handle ${fh}`);
    return handle;
  }

  async create(caller: Caller, path: string, mode: number, flags = 0): Promise<number> {
    const token = this.attrs.begin();
    // the directory's new attributes come back too: the kernel asks for them before the next create
    const [attr, dir] = await this.sql`
      select * from tarbox.create_and_stat_dir(${this.by(caller, path)}, ${mode}, ${caller.uid}, ${caller.gid})`;
    this.remember(path, attr as Attr, token);
    this.remember(dirOf(path), dir as Attr, token);
    return this.newHandle(caller, this.files.open(attr as Attr), path, flags);
  }

  async open(caller: Caller, path: string, flags: number): Promise<number> {
    const truncating = (flags & 0o1000) !== 0 && (flags & 3) !== 0;
    if (truncating) await this.settle(path);
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.open(${this.by(caller, path)}, ${flags}, ${caller.uid})`;
    this.remember(path, attr as Attr, token);
    const state = this.files.open(attr as Attr);
    if (truncating) this.files.truncated(state, attr as Attr);
    const keepPages = this.pageCache.opened(path, attr as Attr, !state.hasPendingData);
    return this.newHandle(caller, state, path, flags, keepPages);
  }

  async read(fh: number, buf: Buffer, length: number, offset: number): Promise<number> {
    const handle = this.handle(fh);
    handle.wasRead = true;
    const n = await this.files.read(handle.state, buf, length, offset);
    handle.bytesRead += n;
    return n;
  }

  async write(caller: Caller, fh: number, buf: Buffer, offset: number): Promise<number> {
    const handle = this.handle(fh);
    this.pageCache.written(handle.path);
    handle.wrote = true;
    // O_APPEND writes go to the end as this mount knows it (fresh at open, then our own
    // writes), not to the kernel's cached size, which another writer may have outdated.
    const n = await this.files.write(handle.state, buf, offset, caller, handle.append);
    handle.bytesWritten += n;
    return n;
  }

  async flush(fh: number): Promise<void> {
    const handle = this.handles.get(fh);
    if (!handle) return;
    const token = this.attrs.begin();
    const hadData = this.pendingData(handle);
    await this.files.flush(handle.state);
    this.afterCommit(handle, hadData, token);
  }

  /**
   * Whether the handle's file has data not committed yet, about to be: then the kernel's
   * pages of it are outdated for the next open, committed or not.
   */
  private pendingData(handle: Handle): boolean {
    const pending = handle.state.hasPendingData;
    if (pending) this.pageCache.written(handle.path);
    return pending;
  }

  /**
   * After a flush: when it committed data, the attributes it returned are the file's; when
   * the handle's writes were committed earlier (in the background, or appends in SQL), a
   * later chmod or utimens may have come after them, so only forget what is cached.
   */
  private afterCommit(handle: Handle, committed: boolean, token: number): void {
    if (committed && handle.path) this.remember(handle.path, handle.state.attr, token);
    else if (handle.wrote) this.attrs.forgetInode(handle.state.ino);
  }

  async fsync(fh: number): Promise<void> {
    const handle = this.handles.get(fh);
    if (handle) await this.files.flush(handle.state);
    await this.sql`select tarbox.fsync()`;
  }

  async fsyncdir(): Promise<void> {
    await this.sql`select tarbox.fsync()`;
  }

  async release(fh: number): Promise<void> {
    const handle = this.handles.get(fh);
    if (!handle) return;
    this.handles.delete(fh);
    try {
      await this.releaseHandle(handle);
    } finally {
      this.audit?.handleClosed({ ...handle, ino: handle.state.ino });
    }
  }

  private async releaseHandle(handle: Handle): Promise<void> {
    const state = handle.state;
    const token = this.attrs.begin();
    const hadData = this.pendingData(handle);
    const last = await this.files.release(state);
    if (state.orphan) {
      // the unlinked file's last close here: now it may go
      if (last) await this.sql`select tarbox.release(${state.ino}, ${handle.wasRead}, true)`;
      return;
    }
    this.afterCommit(handle, hadData, token);
    if (handle.wasRead && atimeIsDue(state.attr)) {
      await this.sql`select tarbox.release(${state.ino}, true)`;
      this.attrs.forgetInode(state.ino);
    }
  }

  async truncate(caller: Caller, path: string, size: number): Promise<void> {
    await this.settle(path);
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.truncate(${this.by(caller, path)}, ${size}, ${caller.uid})`;
    const open = this.files.get((attr as Attr).ino);
    if (open) { await this.files.flush(open); this.files.truncated(open, attr as Attr); }
    this.remember(path, attr as Attr, token);
  }

  async ftruncate(caller: Caller, fh: number, size: number): Promise<void> {
    const handle = this.handle(fh);
    await this.files.flush(handle.state);
    const token = this.attrs.begin();
    const [attr] = await this.sql`select * from tarbox.truncate_ino(${this.by(caller, handle.state.ino)}, ${size}, ${caller.uid})`;
    this.files.truncated(handle.state, attr as Attr);
    if (handle.path) this.remember(handle.path, attr as Attr, token);
  }

  // --- extended attributes ----------------------------------------------------------------

  async setxattr(caller: Caller, path: string, name: string, value: Buffer, flags: number): Promise<void> {
    await this.sql`select tarbox.setxattr(${this.by(caller, path)}, ${xattrName(name)}, ${value}, ${flags})`;
    this.attrs.forgetInode(this.attrs.inoOf(path)); // ctime moved
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const [row] = await this.sql`select tarbox.getxattr(${bytes(path)}, ${xattrName(name)}) as value`;
    return row.value as Buffer;
  }

  noXattr(): never {
    throw new FsError(Errno.ENODATA);
  }

  async listxattr(path: string): Promise<string[]> {
    const rows = await this.sql`select name from tarbox.listxattr(${bytes(path)}) as name`;
    return rows.map((row) => xattrNameBytes(row.name as string));
  }

  async removexattr(caller: Caller, path: string, name: string): Promise<void> {
    await this.sql`select tarbox.removexattr(${this.by(caller, path)}, ${xattrName(name)})`;
    this.attrs.forgetInode(this.attrs.inoOf(path)); // ctime moved
  }

  /**
   * Forget everything cached about names and contents (after a layer switch): attributes,
   * and the block maps of open files, which now belong to another view.
   */
  dropCaches(): void {
    this.attrs.clear();
    this.pageCache.clear();
    this.files.dropBlockMaps();
  }

  /** Cache counters and sizes, for the metrics endpoint. */
  cacheStats(): { metadata: MetadataCacheCounters & { bytes: number; entries: number; maxBytes: number; enabled: boolean };
    chunks: { hits: number; misses: number; evictions: number; bytes: number; maxBytes: number };
    pages: { keeps: number; drops: number } } {
    const chunks = this.files.chunks;
    return {
      metadata: { ...this.attrs.counters, ...this.attrs.size, maxBytes: this.attrs.maxBytes, enabled: this.attrs.isEnabled },
      chunks: { ...chunks.stats, bytes: chunks.cache.calculatedSize, maxBytes: chunks.cache.maxSize },
      pages: { keeps: this.pageCache.keeps, drops: this.pageCache.drops },
    };
  }

  /** Commit every buffered write (before unmounting). */
  async flushAll(): Promise<void> {
    await Promise.all([...this.handles.values()].map((h) => this.files.flush(h.state).catch(() => {})));
  }
}
