// The metadata cache of one mount: attributes by inode and directory entries by
// (directory inode, name), including negative entries and "complete" directories (every
// entry known, so any other name is absent). Paths resolve component by component from the
// root, in memory. Bounded in bytes by one LRU ([cache] metadata_size).
//
// It stays correct across mounts because PostgreSQL tells every mount what changed
// (LISTEN/NOTIFY, shim/notifications.ts): a notice drops entries, it never patches them.
// Three rules keep it safe:
// * Nothing is cached while the listener is down (suspend/resume): a missed notice could
//   otherwise leave a stale entry forever.
// * A fill from SQL carries the generation taken before the query (begin()); if anything was
//   dropped meanwhile (a notice, a local change), the fill is skipped, because its result
//   may predate the change that caused the drop.
// * Every cached entry is reachable from the root through cached entries: when a name of a
//   directory goes (dropped, evicted or replaced), everything cached below it goes too, so
//   a name we cannot resolve has nothing cached under it to go stale.

import { LRUCache } from 'lru-cache';
import type { Attr } from './open-files.js';

/** Counters for the metrics endpoint. */
export interface MetadataCacheCounters {
  hits: number;
  negativeHits: number;
  misses: number;
  /** Entries dropped because of a notice from another mount or client. */
  invalidations: number;
  evictions: number;
  /** Whole-cache drops: layer switch, listener lost or regained. */
  clears: number;
  notices: number;
  /** Notices of this mount's own changes, skipped (already applied). */
  ownNotices: number;
}

/** An inode's attributes, or a name in a directory (ino 0: known absent). */
type Entry = { attr: Attr } | { parent: number; ino: number };

// What an entry costs in memory beyond its key: an Attr object (15 numbers), or a name
// entry plus its place in the per-directory index.
const ATTR_BYTES = 240;
const NAME_BYTES = 96;

/** NAME_MAX: names are latin1 strings here, one char per byte. */
const MAX_NAME_BYTES = 255;

const attrKey = (ino: number) => '#' + ino;
const nameKey = (parent: number, name: string) => parent + '/' + name;

function parentAndLeaf(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return [slash <= 0 ? '/' : path.slice(0, slash), path.slice(slash + 1)];
}

export class MetadataCache {
  private readonly lru: LRUCache<string, Entry>;
  /** Directory inode -> keys of its cached names (to drop a directory's names at once). */
  private readonly names = new Map<number, Set<string>>();
  /** Directories whose every entry is cached. */
  private readonly complete = new Set<number>();
  private rootIno: number | undefined;
  private enabled = false;
  private generation = 0;
  readonly counters: MetadataCacheCounters = {
    hits: 0, negativeHits: 0, misses: 0, invalidations: 0, evictions: 0, clears: 0, notices: 0, ownNotices: 0,
  };

  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache<string, Entry>({
      maxSize: Math.max(maxBytes, 1024),
      sizeCalculation: (entry, key) => key.length * 2 + ('attr' in entry ? ATTR_BYTES : NAME_BYTES),
      // after the LRU's own bookkeeping, so dropping a subtree may delete more entries
      disposeAfter: (entry, key, reason) => {
        if (reason === 'evict') this.counters.evictions++;
        if ('parent' in entry) this.unindex(entry, key, reason === 'evict');
      },
    });
  }

  /** Bytes in use (as the LRU counts them) and entries. */
  get size(): { bytes: number; entries: number } {
    return { bytes: this.lru.calculatedSize, entries: this.lru.size };
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  // --- lookups --------------------------------------------------------------------------

  /** Attributes of the path; null when the path is known not to exist; undefined: ask SQL. */
  find(path: string): Attr | null | undefined {
    const ino = this.resolve(path);
    if (ino === null) { this.counters.negativeHits++; return null; }
    const entry = ino === undefined ? undefined : this.lru.get(attrKey(ino));
    if (entry && 'attr' in entry) { this.counters.hits++; return entry.attr; }
    this.counters.misses++;
    return undefined;
  }

  /** The inode a path names, if cached (null: known absent). */
  resolve(path: string): number | null | undefined {
    if (!this.enabled || this.rootIno === undefined) return undefined;
    let ino = this.rootIno;
    if (path === '/') return ino;
    let from = 1;
    while (from <= path.length) {
      let to = path.indexOf('/', from);
      if (to < 0) to = path.length;
      const name = path.slice(from, to);
      if (name.length > MAX_NAME_BYTES) return undefined; // SQL's errno (ENAMETOOLONG), not absent
      const entry = this.lru.get(nameKey(ino, name));
      if (entry && 'parent' in entry) {
        if (entry.ino === 0) return null;
        ino = entry.ino;
      } else if (this.complete.has(ino)) {
        return null;
      } else {
        return undefined;
      }
      from = to + 1;
    }
    return ino;
  }

  inoOf(path: string): number | undefined {
    return this.resolve(path) ?? undefined;
  }

  // --- fills (results of SQL calls) -------------------------------------------------------

  /** The generation a fill must present: take it before the SQL call whose result it caches. */
  begin(): number {
    return this.generation;
  }

  private fresh(token: number): boolean {
    return this.enabled && token === this.generation;
  }

  /** path names attr (from SQL: lookup, create, chmod, ...). */
  set(path: string, attr: Attr, token: number): void {
    if (!this.fresh(token)) { this.dropDisagreeing(path, attr.ino); return; }
    if (path === '/') this.rootIno = attr.ino;
    else {
      const [dir, name] = parentAndLeaf(path);
      const parent = this.resolve(dir);
      if (typeof parent === 'number') this.setName(parent, name, attr.ino);
    }
    this.lru.set(attrKey(attr.ino), { attr });
  }

  /**
   * A result too old to cache: we cannot tell whether it or the cache is newer, so drop what
   * the cache holds that it contradicts (the name, if it names another inode, or an absent
   * one) and the inode's attributes. Dropping is always safe; no new generation is needed.
   */
  private dropDisagreeing(path: string, ino: number): void {
    if (ino !== 0) this.lru.delete(attrKey(ino));
    if (path === '/') return;
    const [dir, name] = parentAndLeaf(path);
    const parent = this.resolve(dir);
    if (typeof parent !== 'number') return;
    const key = nameKey(parent, name);
    const current = this.lru.peek(key);
    // no entry: absent if the directory is complete, which a found inode contradicts
    const cached = current && 'parent' in current ? current.ino : this.complete.has(parent) ? 0 : undefined;
    if (cached !== undefined && cached !== ino) {
      this.lru.delete(key);
      this.complete.delete(parent);
    }
  }

  /** path does not exist (a lookup found nothing). */
  setAbsent(path: string, token: number): void {
    if (path === '/') return;
    if (!this.fresh(token)) { this.dropDisagreeing(path, 0); return; }
    const [dir, name] = parentAndLeaf(path);
    const parent = this.resolve(dir);
    if (typeof parent === 'number' && !this.complete.has(parent)) this.setName(parent, name, 0);
  }

  /**
   * The whole content of the directory at path (readdir, or a directory this mount just
   * made): from now on, names not in it are absent, until a notice or an eviction says
   * otherwise. Only for a directory reachable from the root through cached names: this
   * mount's own later changes in it update the cache by path, so an unreachable directory
   * (after a clear, before the root is known again) would keep a listing that those changes
   * cannot reach, and later hide the names they made once its path resolves.
   */
  setListing(path: string, dirIno: number, entries: [string, Attr][], token: number): void {
    if (!this.fresh(token) || this.resolve(path) !== dirIno) return;
    // a listing that would not fit in a quarter of the cache is not worth evicting for
    if (entries.length * (NAME_BYTES + ATTR_BYTES + 64) > this.maxBytes / 4) return;
    // complete first: evicting any of the entries below removes it again
    this.forgetNames(dirIno);
    this.complete.add(dirIno);
    for (const [name, attr] of entries) {
      this.setName(dirIno, name, attr.ino);
      this.lru.set(attrKey(attr.ino), { attr });
    }
  }

  private setName(parent: number, name: string, ino: number): void {
    const key = nameKey(parent, name);
    const old = this.lru.get(key);
    if (old && 'parent' in old && old.ino === ino) return;
    this.lru.set(key, { parent, ino });
    let keys = this.names.get(parent);
    if (!keys) this.names.set(parent, (keys = new Set()));
    keys.add(key);
  }

  /** A name entry left the LRU: drop it from the index, and everything below it. */
  private unindex(entry: { parent: number; ino: number }, key: string, evicted: boolean): void {
    // a replaced entry (reason 'set') is still indexed under the same key
    const current = this.lru.peek(key);
    if (!current) {
      const keys = this.names.get(entry.parent);
      keys?.delete(key);
      if (keys?.size === 0) this.names.delete(entry.parent);
      // an evicted entry of a complete directory leaves it incompletely known (deletes
      // decide for themselves: removed() keeps it complete, a notice does not)
      if (evicted) this.complete.delete(entry.parent);
    }
    if (entry.ino !== 0 && !(current && 'parent' in current && current.ino === entry.ino)) this.forgetNames(entry.ino);
  }

  // --- drops ------------------------------------------------------------------------------

  /** Every cached name in the directory (and so everything below them). */
  private forgetNames(dirIno: number): void {
    this.complete.delete(dirIno);
    const keys = this.names.get(dirIno);
    if (!keys) return;
    this.names.delete(dirIno);
    for (const key of keys) this.lru.delete(key);
  }

  /** The inode's attributes changed. */
  forgetInode(ino: number | undefined): void {
    if (ino === undefined) return;
    this.generation++;
    this.lru.delete(attrKey(ino));
  }

  /** The name changed (created, removed, renamed): its entry, and its inode's attributes. */
  forgetName(path: string): void {
    this.generation++;
    const ino = this.resolve(path);
    if (typeof ino === 'number') this.lru.delete(attrKey(ino));
    if (path === '/') return;
    const [dir, name] = parentAndLeaf(path);
    const parent = this.resolve(dir);
    if (typeof parent === 'number') {
      this.lru.delete(nameKey(parent, name));
      this.complete.delete(parent);
    }
  }

  /**
   * This mount removed the name (unlink, rmdir, the source of a rename): drop its entry and
   * its inode's attributes. A complete directory stays complete: the name is now absent.
   */
  removed(path: string): void {
    this.generation++;
    const ino = this.resolve(path);
    if (typeof ino === 'number') this.lru.delete(attrKey(ino));
    const [dir, name] = parentAndLeaf(path);
    const parent = this.resolve(dir);
    if (typeof parent === 'number') this.lru.delete(nameKey(parent, name));
  }

  /** An entry was added to or removed from the directory holding path: its attributes changed. */
  forgetParentOf(path: string): void {
    this.forgetInode(this.inoOf(parentAndLeaf(path)[0]));
  }

  /** Drop everything. */
  clear(): void {
    this.generation++;
    this.counters.clears++;
    // the index first, so the LRU's disposals find nothing left to cascade through
    this.names.clear();
    this.complete.clear();
    this.lru.clear();
    this.rootIno = undefined;
  }

  // --- the listener -------------------------------------------------------------------------

  /** The listener is down: notices may be missed, so cache nothing until it is back. */
  suspend(): void {
    this.enabled = false;
    this.clear();
  }

  /** The listener is (back) up: start again from nothing, since notices may have been missed. */
  resume(): void {
    this.clear();
    this.enabled = true;
  }

  /** Another mount or client changed an inode. */
  inodeChanged(ino: number): void {
    this.generation++;
    if (this.lru.delete(attrKey(ino))) this.counters.invalidations++;
  }

  /** Another mount or client added, changed or removed the entry name of directory parent. */
  entryChanged(parent: number, name: string): void {
    this.generation++;
    this.complete.delete(parent);
    if (this.lru.delete(nameKey(parent, name))) this.counters.invalidations++;
  }
}
