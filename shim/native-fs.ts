// NativeFs: every FUSE operation on a path inside a native mount, done on the host directory.
//
// Containment (nothing outside the source is ever reachable) rests on one rule: the shim never
// resolves a path on the host. The kernel resolves symlinks itself (it calls readlink), so
// every path we get names an entry whose components are plain directories; if one of them is
// a symlink by the time we act (swapped in after the kernel's lookup), we must fail, not follow.
// So each operation
//   1. walks from an O_PATH descriptor of the source root, one component at a time, opening
//      each with O_PATH|O_DIRECTORY|O_NOFOLLOW relative to the previous descriptor (through
//      /proc/self/fd/N/<name>, which is openat(2) for Node): a symlinked component fails with
//      ENOTDIR, "." and ".." are refused, and the length of the whole path never matters;
//   2. checks that the parent descriptor's real path (readlink /proc/self/fd/N) is still the
//      source or below it (a host process might have moved the directory out meanwhile);
//   3. acts on /proc/self/fd/N/<last name> with calls that do not follow a final symlink
//      (lstat, O_NOFOLLOW, lchown, unlink, rename, link without AT_SYMLINK_FOLLOW); chmod,
//      which always follows, goes through an O_PATH|O_NOFOLLOW descriptor of the entry itself.
// Errors are the host's own (Node errors carry errno) and reach the kernel through the one
// guard in operations.ts. Calls are synchronous: FUSE requests reach JS one at a time anyway,
// and a synchronous local syscall costs microseconds where the thread pool costs tens.
//
// Not supported (the host call is missing from Node without a native addon): extended
// attributes (EOPNOTSUPP, as a filesystem without xattr support answers) and creating sockets
// (EOPNOTSUPP). Creating device nodes is refused (EPERM): a device node in a host directory
// would be a door out of the source for any host process.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Caller, Stat, StatFs } from './fuse/binding.js';
import { Errno, FsError } from './errors.js';
import { checkMountPath, NativeRoutes, type ResolvedNativeMount } from './native-mounts.js';

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const { O_NOFOLLOW, O_DIRECTORY, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = fs.constants;
const O_ACCMODE = 3;
const DIR_STEP = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;
const S_ISGID = 0o2000;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
const ST_RDONLY = 1;
const NO_ID = 0xffffffff;

// Inode numbers: host inodes would collide with the database's (and with other mounts'), and
// tar, cp and git take equal (st_dev, st_ino) for a hard link. Each mount gets its own range
// of 2^44 numbers from 2^44 up, far above the database's sequence and below the control
// directory's 2^52. Host inode numbers above 2^44 wrap within the range.
const INO_RANGE = 2 ** 44;
export const MAX_NATIVE_MOUNTS = 120;
// File handles from 2^51: distinct from TarboxFs's (small) and ControlFs's (from 2^52, which
// the binding opens with direct_io).
const FIRST_HANDLE = 2 ** 51;

/** A FUSE path (latin1: one char per byte) as the bytes the host expects. */
const hostBytes = (s: string) => Buffer.from(s, 'latin1');
const utf8ToFuse = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

interface HostMount extends ResolvedNativeMount {
  /** The mount path as FUSE spells it (latin1). */
  readonly fusePath: string;
  readonly slot: number;
  readonly rootFd: number;
  readonly rootReal: Buffer;
}

export type Route = { mount: HostMount; rel: string };

/** Where an entry is: its parent directory's descriptor, its name and the no-follow path to it. */
interface Entry { dirFd: number; name: string; path: Buffer; mount: HostMount }

interface Handle { fd: number; mount: HostMount }

function procPath(fd: number, name: string): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), hostBytes(name)]);
}

/** Creates the source (per-tenant sources on first use) and opens it; the caller closes rootFd. */
function openSource(m: ResolvedNativeMount, slot: number): HostMount {
  fs.mkdirSync(m.hostPath, { recursive: true, mode: 0o755 });
  // A per-tenant directory must be a real directory: a symlink there could point anywhere.
  if (m.hostPath !== m.source && fs.lstatSync(m.hostPath).isSymbolicLink()) {
    throw new Error(`native mount ${m.path}: ${m.hostPath} is a symlink`);
  }
  const rootFd = fs.openSync(m.hostPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
  const rootReal = fs.readlinkSync(`/proc/self/fd/${rootFd}`, { encoding: 'buffer' });
  if (rootReal.equals(Buffer.from('/'))) {
    fs.closeSync(rootFd);
    throw new Error(`native mount ${m.path}: ${m.hostPath} is the host's root directory`);
  }
  return { ...m, fusePath: utf8ToFuse(m.path), slot, rootFd, rootReal };
}

function toStat(st: fs.BigIntStats, slot: number): Stat {
  const sec = (ns: bigint) => Number(ns / 1_000_000_000n);
  const nsec = (ns: bigint) => Number(ns % 1_000_000_000n);
  return {
    ino: slot * INO_RANGE + Number(st.ino % BigInt(INO_RANGE)), mode: Number(st.mode), nlink: Number(st.nlink),
    uid: Number(st.uid), gid: Number(st.gid), rdev: Number(st.rdev), size: Number(st.size), blocks: Number(st.blocks),
    blksize: Number(st.blksize),
    atimeSec: sec(st.atimeNs), atimeNsec: nsec(st.atimeNs),
    mtimeSec: sec(st.mtimeNs), mtimeNsec: nsec(st.mtimeNs),
    ctimeSec: sec(st.ctimeNs), ctimeNsec: nsec(st.ctimeNs),
  };
}

const writes = (flags: number) => (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;

export class NativeFs {
  /** The mounts in effect; replaced as a whole by reload(). */
  routes: NativeRoutes<HostMount>;
  /** Mounts replaced by a reload whose source stays open while a handle still uses it. */
  private retired = new Set<HostMount>();
  private nextSlot = 1;
  private handles = new Map<number, Handle>();
  private nextHandle = FIRST_HANDLE;
  private closed = false;
  private readonly umask = process.umask();
  /** Run as root, the shim creates entries as root: hand them to the caller, as the kernel would. */
  private readonly chownToCaller = process.getuid?.() === 0;

  constructor(mounts: readonly ResolvedNativeMount[]) {
    this.routes = this.openAll(mounts);
  }

  /**
   * The definitions changed (tarbox native add/remove, seen through NOTIFY): serve the new set
   * from the next request on. Open files keep the mount they were opened in until released.
   */
  reload(mounts: readonly ResolvedNativeMount[]): void {
    const fresh = this.openAll(mounts);
    const old = this.routes.mounts;
    this.routes = fresh;
    for (const m of old) this.retire(m);
  }

  private openAll(mounts: readonly ResolvedNativeMount[]): NativeRoutes<HostMount> {
    if (mounts.length > MAX_NATIVE_MOUNTS) throw new Error(`at most ${MAX_NATIVE_MOUNTS} native mounts per tenant`);
    const opened: HostMount[] = [];
    try {
      for (const m of mounts) {
        const bad = checkMountPath(m.path);
        if (bad) throw new Error(`native mount ${m.path}: ${bad}`);
        opened.push(openSource(m, this.slotFor(m)));
      }
    } catch (err) {
      for (const m of opened) fs.closeSync(m.rootFd);
      throw err;
    }
    return new NativeRoutes(opened.map((m) => ({ ...m, path: m.fusePath })));
  }

  /** A mount keeps its inode range across reloads (same path and source), so inode numbers stay put. */
  private slots = new Map<string, number>();
  private slotFor(m: ResolvedNativeMount): number {
    const key = `${m.path}\0${m.hostPath}`;
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot > MAX_NATIVE_MOUNTS) throw new Error(`more than ${MAX_NATIVE_MOUNTS} native mounts in this mount's lifetime`);
      this.slots.set(key, slot);
    }
    return slot;
  }

  private retire(m: HostMount): void {
    if ([...this.handles.values()].some((h) => h.mount === m)) this.retired.add(m);
    else fs.closeSync(m.rootFd);
  }

  route(path: string): Route | undefined {
    return this.routes.route(path);
  }

  owns(fh: number): boolean {
    return this.handles.has(fh);
  }

  /** The mounts in effect, for `cat /.tarbox/layers/list` and logs. */
  describe(): string[] {
    return this.routes.mounts.map((m) => `native\t${m.path}\t${m.hostPath}\t${m.mode}\t${m.origin}\tnot in layers`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.handles.values()) fs.closeSync(h.fd);
    this.handles.clear();
    for (const m of [...this.routes.mounts, ...this.retired]) fs.closeSync(m.rootFd);
    this.retired.clear();
  }

  // --- containment --------------------------------------------------------------------

  /** Open the parent directory of rel component by component, never following a symlink. */
  private entry({ mount, rel }: Route): Entry {
    if (rel === '') return { dirFd: mount.rootFd, name: '.', path: procPath(mount.rootFd, '.'), mount };
    const parts = rel.split('/');
    const name = parts.pop()!;
    let fd = mount.rootFd;
    try {
      for (const part of [...parts, name]) {
        // The kernel never sends these; a path that has them did not come from a lookup.
        if (part === '' || part === '.' || part === '..') throw new FsError(Errno.EINVAL, `bad path component in ${rel}`);
      }
      for (const part of parts) {
        const next = fs.openSync(procPath(fd, part), DIR_STEP);
        if (fd !== mount.rootFd) fs.closeSync(fd);
        fd = next;
      }
      if (fd !== mount.rootFd) this.checkInside(mount, fd);
    } catch (err) {
      if (fd !== mount.rootFd) fs.closeSync(fd);
      throw err;
    }
    return { dirFd: fd, name, path: procPath(fd, name), mount };
  }

  /** The directory is still the source or below it (not moved out by a host process). */
  private checkInside(mount: HostMount, fd: number): void {
    const real = fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
    const root = mount.rootReal;
    const inside = real.equals(root)
      || (real.length > root.length && real.subarray(0, root.length).equals(root) && real[root.length] === 0x2f);
    if (!inside) throw new FsError(Errno.EACCES, `native mount ${mount.path}: a directory left the source`);
  }

  /** The directory rel itself, opened like every parent: a symlink swapped in fails, never followed. */
  private openDir(r: Route): number {
    if (r.rel === '') return r.mount.rootFd;
    const fd = this.at(r, (e) => fs.openSync(e.path, DIR_STEP));
    return fd;
  }

  /** Run fn on the entry, then close the parent descriptor the walk opened. */
  private at<T>(route: Route, fn: (e: Entry) => T): T {
    const e = this.entry(route);
    try {
      return fn(e);
    } finally {
      if (e.dirFd !== route.mount.rootFd) fs.closeSync(e.dirFd);
    }
  }

  private writable(route: Route): void {
    if (route.mount.mode === 'ro') throw new FsError(Errno.EROFS);
  }

  /**
   * Hand a new entry to the caller, as the kernel would have (the shim runs as root): owner the
   * caller, group the caller's unless the parent directory is setgid (then the host already
   * gave it the directory's group). And restore the mode bits our own umask took away.
   */
  private settleNew(e: Entry, caller: Caller, mode: number, fd?: number): void {
    if ((mode & this.umask) !== 0) {
      if (fd !== undefined) fs.fchmodSync(fd, mode & 0o7777);
      else this.chmodEntry(e, mode);
    }
    if (!this.chownToCaller || (caller.uid === 0 && caller.gid === 0)) return;
    const gid = (fs.fstatSync(e.dirFd).mode & S_ISGID) !== 0 ? -1 : caller.gid;
    if (fd !== undefined) fs.fchownSync(fd, caller.uid, gid);
    else fs.lchownSync(e.path, caller.uid, gid);
  }

  /** chmod always follows symlinks: act on an O_PATH descriptor of the entry itself. */
  private chmodEntry(e: Entry, mode: number): void {
    const fd = fs.openSync(e.path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    try {
      fs.chmodSync(`/proc/self/fd/${fd}`, mode & 0o7777); // a symlink answers EOPNOTSUPP, as lchmod does
    } finally {
      fs.closeSync(fd);
    }
  }

  private newHandle(fd: number, mount: HostMount): number {
    const fh = this.nextHandle++;
    this.handles.set(fh, { fd, mount });
    return fh;
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError(Errno.EBADF);
    return h;
  }

  // --- attributes ---------------------------------------------------------------------

  getattr(r: Route): Stat {
    return this.at(r, (e) => toStat(fs.lstatSync(e.path, { bigint: true }), r.mount.slot));
  }

  fgetattr(fh: number): Stat {
    const h = this.handle(fh);
    return toStat(fs.fstatSync(h.fd, { bigint: true }), h.mount.slot);
  }

  /** Only reached without default_permissions; then the caller's identity decides, as in SQL. */
  access(c: Caller, r: Route, mask: number): void {
    const st = this.getattr(r);
    if (mask === 0) return;
    if ((mask & 2) && r.mount.mode === 'ro') throw new FsError(Errno.EROFS);
    if (c.uid === 0) {
      if ((mask & 1) && (st.mode & S_IFMT) !== 0o040000 && (st.mode & 0o111) === 0) throw new FsError(Errno.EACCES);
      return;
    }
    const bits = c.uid === st.uid ? (st.mode >> 6) & 7 : c.gid === st.gid ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & mask) !== mask) throw new FsError(Errno.EACCES);
  }

  statfs(r: Route): StatFs {
    const st = fs.statfsSync(procPath(r.mount.rootFd, '.') as unknown as string);
    return {
      bsize: st.bsize, frsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail,
      files: st.files, ffree: st.ffree, favail: st.ffree, fsid: 0, flag: r.mount.mode === 'ro' ? ST_RDONLY : 0, namemax: 255,
    };
  }

  chmod(r: Route, mode: number): void {
    this.writable(r);
    this.at(r, (e) => this.chmodEntry(e, mode));
  }

  chown(r: Route, uid: number, gid: number): void {
    this.writable(r);
    this.at(r, (e) => fs.lchownSync(e.path, uid === NO_ID ? -1 : uid, gid === NO_ID ? -1 : gid));
  }

  utimens(r: Route, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
    this.writable(r);
    this.at(r, (e) => {
      // Node has no utimensat: UTIME_OMIT keeps the current value, UTIME_NOW takes the clock;
      // times travel as seconds in a double (sub-microsecond precision is lost).
      const old = atimeNsec === UTIME_OMIT || mtimeNsec === UTIME_OMIT ? fs.lstatSync(e.path, { bigint: true }) : undefined;
      const now = Date.now() / 1000;
      const time = (sec: number, nsec: number, current?: bigint) =>
        nsec === UTIME_NOW ? now : nsec === UTIME_OMIT ? Number(current!) / 1e9 : sec + nsec / 1e9;
      fs.lutimesSync(e.path, time(atimeSec, atimeNsec, old?.atimeNs), time(mtimeSec, mtimeNsec, old?.mtimeNs));
    });
  }

  // --- directories and names ------------------------------------------------------------

  /** Names with their attributes (d_ino and d_type right), . and .. first. */
  readdir(r: Route): { names: string[]; stats: Stat[] } {
    const fd = this.openDir(r);
    try {
      const selfStat = toStat(fs.fstatSync(fd, { bigint: true }), r.mount.slot);
      const names = ['.', '..'];
      const stats = [selfStat, selfStat];
      for (const raw of fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' })) {
        const name = raw.toString('latin1');
        let st: fs.BigIntStats;
        try {
          st = fs.lstatSync(procPath(fd, name), { bigint: true });
        } catch {
          continue; // removed meanwhile
        }
        names.push(name);
        stats.push(toStat(st, r.mount.slot));
      }
      return { names, stats };
    } finally {
      if (fd !== r.mount.rootFd) fs.closeSync(fd);
    }
  }

  mkdir(c: Caller, r: Route, mode: number): void {
    this.writable(r);
    this.at(r, (e) => {
      fs.mkdirSync(e.path, mode & 0o7777);
      this.settleNew(e, c, mode);
    });
  }

  mknod(c: Caller, r: Route, mode: number, _rdev: number): void {
    this.writable(r);
    this.at(r, (e) => {
      const type = mode & S_IFMT;
      if (type === S_IFREG) {
        const fd = fs.openSync(e.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0o7777);
        try { this.settleNew(e, c, mode, fd); } finally { fs.closeSync(fd); }
      } else if (type === S_IFIFO) {
        makeFifo(e, mode & 0o7777);
        this.settleNew(e, c, mode);
      } else if (type === S_IFSOCK) {
        throw new FsError(Errno.EOPNOTSUPP);
      } else {
        throw new FsError(Errno.EPERM, 'device nodes are not created in native mounts');
      }
    });
  }

  symlink(c: Caller, target: string, r: Route): void {
    this.writable(r);
    this.at(r, (e) => {
      // The target is stored as text and never followed by the shim; the kernel resolves it
      // for the caller, inside the caller's view (the mount), not the host's.
      fs.symlinkSync(hostBytes(target), e.path);
      this.settleNew(e, c, 0); // owner only: a symlink has no mode of its own
    });
  }

  readlink(r: Route): string {
    return this.at(r, (e) => fs.readlinkSync(e.path, { encoding: 'buffer' }).toString('latin1'));
  }

  unlink(r: Route): void {
    this.writable(r);
    if (r.rel === '') throw new FsError(Errno.EBUSY);
    this.at(r, (e) => fs.unlinkSync(e.path));
  }

  rmdir(r: Route): void {
    this.writable(r);
    if (r.rel === '') throw new FsError(Errno.EBUSY);
    this.at(r, (e) => fs.rmdirSync(e.path));
  }

  /** Both routes are in this mount (the router answers EXDEV otherwise). */
  rename(from: Route, to: Route): void {
    this.writable(from);
    if (from.rel === '' || to.rel === '') throw new FsError(Errno.EBUSY);
    this.at(from, (a) => this.at(to, (b) => fs.renameSync(a.path, b.path)));
  }

  link(from: Route, to: Route): void {
    this.writable(from);
    if (to.rel === '') throw new FsError(Errno.EEXIST);
    // link(2) does not follow a symlink given as the existing name: the link is to the symlink.
    this.at(from, (a) => this.at(to, (b) => fs.linkSync(a.path, b.path)));
  }

  // --- file data --------------------------------------------------------------------------

  create(c: Caller, r: Route, mode: number, flags: number): number {
    this.writable(r);
    return this.at(r, (e) => {
      const fd = fs.openSync(e.path, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode & 0o7777);
      try {
        this.settleNew(e, c, mode, fd);
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      return this.newHandle(fd, r.mount);
    });
  }

  open(r: Route, flags: number): number {
    if (writes(flags)) this.writable(r);
    return this.at(r, (e) => this.newHandle(fs.openSync(e.path, (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC), r.mount));
  }

  read(fh: number, buf: Buffer, length: number, offset: number): number {
    return fs.readSync(this.handle(fh).fd, buf, 0, length, offset);
  }

  write(fh: number, buf: Buffer, length: number, offset: number): number {
    return fs.writeSync(this.handle(fh).fd, buf, 0, length, offset);
  }

  /** Nothing is buffered here: the host has every byte written so far. */
  flush(fh: number): void {
    this.handle(fh);
  }

  fsync(fh: number, datasync: boolean): void {
    const { fd } = this.handle(fh);
    if (datasync) fs.fdatasyncSync(fd);
    else fs.fsyncSync(fd);
  }

  fsyncdir(r: Route): void {
    const fd = this.at(r, (e) => fs.openSync(e.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  }

  release(fh: number): void {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    fs.closeSync(h.fd);
    if (this.retired.has(h.mount) && ![...this.handles.values()].some((o) => o.mount === h.mount)) {
      this.retired.delete(h.mount);
      fs.closeSync(h.mount.rootFd);
    }
  }

  truncate(r: Route, size: number): void {
    this.writable(r);
    const fd = this.at(r, (e) => fs.openSync(e.path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    try { fs.ftruncateSync(fd, size); } finally { fs.closeSync(fd); }
  }

  ftruncate(fh: number, size: number): void {
    const h = this.handle(fh);
    if (h.mount.mode === 'ro') throw new FsError(Errno.EROFS);
    fs.ftruncateSync(h.fd, size);
  }

  // --- extended attributes: not reachable from Node without an addon -------------------------

  xattr(r: Route, changes: boolean): never {
    if (changes) this.writable(r);
    this.getattr(r); // ENOENT first, like the host
    throw new FsError(Errno.EOPNOTSUPP);
  }
}

/**
 * Node has no mkfifo(3): mkfifo(1) makes one under a plain temporary name in the parent
 * (handed over as its fd 3), and link(2) gives it the real name, which fails with EEXIST
 * like mknod when the name is taken and keeps names with any bytes exact.
 */
function makeFifo(e: Entry, mode: number): void {
  const tmp = `.tarbox-fifo-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const res = spawnSync('mkfifo', ['-m', mode.toString(8), '--', `/proc/self/fd/3/${tmp}`], { stdio: ['ignore', 'ignore', 'pipe', e.dirFd] });
  if (res.status !== 0) throw new FsError(Errno.EIO, `mkfifo: ${String(res.stderr).trim()}`);
  try {
    fs.linkSync(procPath(e.dirFd, tmp), e.path);
  } finally {
    fs.unlinkSync(procPath(e.dirFd, tmp));
  }
}
