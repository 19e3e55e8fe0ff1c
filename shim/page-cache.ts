// When the kernel may keep a file's pages across opens (FUSE keep_cache).
//
// Without keep_cache the kernel drops a file's cached pages at every open, so every re-read
// crosses FUSE again; with libfuse's auto_cache it keeps them while mtime and size look
// unchanged, which a layer switch or `cp -a` defeats (docs/architecture.md, "Page cache").
// This policy keeps them only when the file is provably the version whose bytes the kernel
// cached: the version (inode, size, mtime, ctime) the database returns at this open equals
// the one it returned at the previous open of the same path on this mount, and nothing was
// written through this mount since. Every change to a file's content sets its ctime in the
// same transaction, and ctime cannot be set by callers, so another mount's write, a SQL
// write or a layer switch always shows as a different version.
//
// Keyed by path, not inode: libfuse's high-level API gives the kernel one node per name, so
// the pages belong to whatever the path named; a path that now names another inode, or the
// same inode after a change, is a different version.
//
// Off while the audit level is "all": its per-handle rows count the bytes each open read,
// and reads served from kept pages never reach the mount.
import type { Attr } from './open-files.js';

/** Bit of a file handle that asks the binding to open with keep_cache (fuse-native.patch, 6). */
export const KEEP_CACHE_BIT = 2 ** 50;

const versionOf = (a: Attr) =>
  `${a.ino}:${a.size}:${a.mtime_sec}.${a.mtime_nsec}:${a.ctime_sec}.${a.ctime_nsec}`;

export class PageCachePolicy {
  /** path → version seen at its last open, oldest first (a Map keeps insertion order). */
  private readonly seen = new Map<string, string>();
  keeps = 0;
  drops = 0;

  /** `allowed`: asked at every open (the audit level can change while mounted). */
  constructor(private readonly allowed: () => boolean = () => true, private readonly capacity = 100_000) {}

  /**
   * At open: may the kernel keep this path's pages? `current` is false when the mount
   * serves buffered, uncommitted data of the file, so `attr` is not what reads return.
   */
  opened(path: string, attr: Attr, current: boolean): boolean {
    const version = versionOf(attr);
    const keep = current && this.seen.get(path) === version && this.allowed();
    this.seen.delete(path);
    if (current) {
      this.seen.set(path, version);
      if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value as string);
    }
    if (keep) this.keeps++; else this.drops++;
    return keep;
  }

  /**
   * Written through this mount: the kernel's pages now hold bytes that are not committed yet
   * (and may never be, if the commit fails), so the next open must drop them.
   */
  written(path: string | undefined): void {
    if (path !== undefined) this.seen.delete(path);
  }

  /** A layer switch or a lost listener: start again from nothing. */
  clear(): void {
    this.seen.clear();
  }
}
