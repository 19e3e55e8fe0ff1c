// NativeFs: every FUSE operation on a path inside a native mount, done on the host directory.
//
// Containment (nothing outside the source is ever reachable) rests on one rule: the shim never
// resolves a path on the host. The kernel resolves symlinks itself (it calls readlink), so
// every path we get names an entry whose components are plain directories; if one of them is
// a symlink by the time we act (swapped in after the kernel's lookup), we must fail, not follow.
// So each operation
//   1. opens the parent directory from an O_PATH descriptor of the source root with openat2(2)
//      and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (shim/native-host.ts): a symlinked component
//      fails (ELOOP), "." and ".." are refused before, and the kernel checks at the end of the
//      walk that the directory it found is below the root (a directory moved out by a host
//      process meanwhile fails with EXDEV);
//   2. acts on (parent descriptor, last name) with *at calls that do not follow a final
//      symlink (fstatat and fchownat with AT_SYMLINK_NOFOLLOW, openat with O_NOFOLLOW,
//      fchmodat2, utimensat, unlinkat, renameat, linkat without AT_SYMLINK_FOLLOW, l*xattr).
// Errors are the host's own (-errno from the addon, FsError here) and reach the kernel through
// the one guard in operations.ts. Calls are synchronous: FUSE requests reach JS one at a time
// anyway, and a synchronous local syscall costs microseconds where the thread pool costs tens.
//
// Creating device nodes is refused (EPERM): a device node in a host directory would be a door
// out of the source for any host process.

import fs from 'node:fs';
import type { Caller, Stat, StatFs } from './fuse/binding.js';
import { Errno, FsError } from './errors.js';
import { checkMountPath, NativeRoutes, type ResolvedNativeMount } from './native-mounts.js';
import { host, hostOps, STAT, type HostOps } from './native-host.js';

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const { O_NOFOLLOW, O_DIRECTORY, O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;
const O_ACCMODE = 3;
const AT_REMOVEDIR = 0x200;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;
/** What mknod creates in a native mount: no device nodes. */
const MKNOD_TYPES = new Set([S_IFREG, S_IFIFO, S_IFSOCK]);
const S_ISGID = 0o2000;
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

const utf8ToFuse = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

interface HostMount extends ResolvedNativeMount {
  /** The mount path as FUSE spells it (latin1). */
  readonly fusePath: string;
  readonly slot: number;
  readonly rootFd: number;
}

export type Route = { mount: HostMount; rel: string };

/** Where an entry is: its parent directory's descriptor and its name ("." for the mount's root). */
interface Entry { dirFd: number; name: string; mount: HostMount }

interface Handle { fd: number; mount: HostMount }

/** A component the kernel never sends: empty, "." or "..". */
const BAD_COMPONENT = /(^|\/)\.{0,2}(\/|$)/;

/** Creates the source (per-tenant sources on first use) and opens it; the caller closes rootFd. */
function openSource(m: ResolvedNativeMount, slot: number, ops: HostOps): HostMount {
  fs.mkdirSync(m.hostPath, { recursive: true, mode: 0o755 });
  // A per-tenant directory must be a real directory: a symlink there could point anywhere.
  if (m.hostPath !== m.source && fs.lstatSync(m.hostPath).isSymbolicLink()) {
    throw new Error(`native mount ${m.path}: ${m.hostPath} is a symlink`);
  }
  const rootFd = fs.openSync(m.hostPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fs.readlinkSync(`/proc/self/fd/${rootFd}`) === '/') {
    fs.closeSync(rootFd);
    throw new Error(`native mount ${m.path}: ${m.hostPath} is the host's root directory`);
  }
  // Every walk is an openat2: say so at mount, not as ENOSYS on the first deep path.
  const probe = ops.openBeneath(rootFd, '.', O_PATH | O_DIRECTORY);
  if (probe < 0) {
    fs.closeSync(rootFd);
    throw new Error(`native mount ${m.path}: openat2 failed with errno ${-probe} (native mounts need Linux 5.6 or later)`);
  }
  fs.closeSync(probe);
  return { ...m, fusePath: utf8ToFuse(m.path), slot, rootFd };
}

/** statAt's numbers as the binding's Stat, the inode number moved into the mount's range. */
function toStat(f: Float64Array, slot: number): Stat {
  return {
    ino: slot * INO_RANGE + (f[STAT.inoHigh] % 2 ** 12) * 2 ** 32 + f[STAT.inoLow], mode: f[STAT.mode], nlink: f[STAT.nlink],
    uid: f[STAT.uid], gid: f[STAT.gid], rdev: f[STAT.rdev], size: f[STAT.size], blocks: f[STAT.blocks], blksize: f[STAT.blksize],
    atimeSec: f[STAT.atimeSec], atimeNsec: f[STAT.atimeNsec],
    mtimeSec: f[STAT.mtimeSec], mtimeNsec: f[STAT.mtimeNsec],
    ctimeSec: f[STAT.ctimeSec], ctimeNsec: f[STAT.ctimeNsec],
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
  /** The host calls (C addon), loaded with the first native mount: mounts without any need no addon. */
  private ops!: HostOps;
  /** statAt's output, read at once into a Stat (FUSE calls reach JS one at a time). */
  private readonly scratch = new Float64Array(STAT.length);

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
    if (mounts.length > 0) this.ops ??= hostOps();
    const opened: HostMount[] = [];
    try {
      for (const m of mounts) {
        const bad = checkMountPath(m.path);
        if (bad) throw new Error(`native mount ${m.path}: ${bad}`);
        opened.push(openSource(m, this.slotFor(m), this.ops));
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

  /** The parent directory of rel, opened beneath the root without following any symlink. */
  private entry({ mount, rel }: Route): Entry {
    if (rel === '') return { dirFd: mount.rootFd, name: '.', mount };
    // The kernel never sends these; a path that has them did not come from a lookup.
    if (BAD_COMPONENT.test(rel)) throw new FsError(Errno.EINVAL, `bad path component in ${rel}`);
    const cut = rel.lastIndexOf('/');
    if (cut < 0) return { dirFd: mount.rootFd, name: rel, mount };
    const dirFd = host(this.ops.openBeneath(mount.rootFd, rel.slice(0, cut), O_PATH | O_DIRECTORY));
    return { dirFd, name: rel.slice(cut + 1), mount };
  }

  /** The directory rel itself, opened like every parent (flags: O_PATH, or O_RDONLY to read it). */
  private openDir(r: Route, flags = O_PATH): number {
    return host(this.ops.openBeneath(r.mount.rootFd, r.rel === '' ? '.' : r.rel, flags | O_DIRECTORY));
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

  /** lstat of an entry ("" with a descriptor of its own: that descriptor). */
  private statAt(dirFd: number, name: string, slot: number): Stat {
    host(this.ops.statAt(dirFd, name, this.scratch));
    return toStat(this.scratch, slot);
  }

  /**
   * Hand a new entry to the caller, as the kernel would have (the shim runs as root): owner the
   * caller, group the caller's unless the parent directory is setgid (then the host already
   * gave it the directory's group). And restore the mode bits our own umask took away.
   */
  private settleNew(e: Entry, caller: Caller, mode: number, fd?: number): void {
    if ((mode & this.umask) !== 0) {
      if (fd !== undefined) fs.fchmodSync(fd, mode & 0o7777);
      else host(this.ops.chmodAt(e.dirFd, e.name, mode & 0o7777));
    }
    if (!this.chownToCaller || (caller.uid === 0 && caller.gid === 0)) return;
    const gid = (this.statAt(e.dirFd, '', 0).mode & S_ISGID) !== 0 ? -1 : caller.gid;
    host(fd !== undefined ? this.ops.chownAt(fd, '', caller.uid, gid) : this.ops.chownAt(e.dirFd, e.name, caller.uid, gid));
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
    return this.at(r, (e) => this.statAt(e.dirFd, e.name, r.mount.slot));
  }

  fgetattr(fh: number): Stat {
    const h = this.handle(fh);
    return this.statAt(h.fd, '', h.mount.slot);
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
    const st = fs.statfsSync(`/proc/self/fd/${r.mount.rootFd}`);
    return {
      bsize: st.bsize, frsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail,
      files: st.files, ffree: st.ffree, favail: st.ffree, fsid: 0, flag: r.mount.mode === 'ro' ? ST_RDONLY : 0, namemax: 255,
    };
  }

  /** chmod of the entry itself: a symlink answers EOPNOTSUPP, as lchmod does on Linux. */
  chmod(r: Route, mode: number): void {
    this.writable(r);
    this.at(r, (e) => host(this.ops.chmodAt(e.dirFd, e.name, mode & 0o7777)));
  }

  chown(r: Route, uid: number, gid: number): void {
    this.writable(r);
    this.at(r, (e) => host(this.ops.chownAt(e.dirFd, e.name, uid === NO_ID ? -1 : uid, gid === NO_ID ? -1 : gid)));
  }

  /** Nanoseconds as given; UTIME_NOW and UTIME_OMIT are the host's to interpret. */
  utimens(r: Route, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
    this.writable(r);
    this.at(r, (e) => host(this.ops.utimensAt(e.dirFd, e.name, atimeSec, atimeNsec, mtimeSec, mtimeNsec)));
  }

  // --- directories and names ------------------------------------------------------------

  /** Names with their attributes (d_ino and d_type right), . and .. first. */
  readdir(r: Route): { names: string[]; stats: Stat[] } {
    const fd = this.openDir(r);
    try {
      const selfStat = this.statAt(fd, '', r.mount.slot);
      const names = ['.', '..'];
      const stats = [selfStat, selfStat];
      for (const raw of fs.readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' })) {
        const name = raw.toString('latin1');
        if (this.ops.statAt(fd, name, this.scratch) < 0) continue; // removed meanwhile
        names.push(name);
        stats.push(toStat(this.scratch, r.mount.slot));
      }
      return { names, stats };
    } finally {
      fs.closeSync(fd);
    }
  }

  mkdir(c: Caller, r: Route, mode: number): void {
    this.writable(r);
    this.at(r, (e) => {
      host(this.ops.mkdirAt(e.dirFd, e.name, mode & 0o7777));
      this.settleNew(e, c, mode);
    });
  }

  /** Regular files, fifos and sockets (a socket inode, as bind(2) would leave); no device nodes. */
  mknod(c: Caller, r: Route, mode: number, _rdev: number): void {
    this.writable(r);
    if (!MKNOD_TYPES.has(mode & S_IFMT)) throw new FsError(Errno.EPERM, 'device nodes are not created in native mounts');
    this.at(r, (e) => {
      host(this.ops.mknodAt(e.dirFd, e.name, mode & (S_IFMT | 0o7777), 0));
      this.settleNew(e, c, mode);
    });
  }

  symlink(c: Caller, target: string, r: Route): void {
    this.writable(r);
    this.at(r, (e) => {
      // The target is stored as text and never followed by the shim; the kernel resolves it
      // for the caller, inside the caller's view (the mount), not the host's.
      host(this.ops.symlinkAt(target, e.dirFd, e.name));
      this.settleNew(e, c, 0); // owner only: a symlink has no mode of its own
    });
  }

  readlink(r: Route): string {
    return this.at(r, (e) => {
      const target = this.ops.readlinkAt(e.dirFd, e.name);
      return typeof target === 'string' ? target : String(host(target));
    });
  }

  unlink(r: Route): void {
    this.writable(r);
    if (r.rel === '') throw new FsError(Errno.EBUSY);
    this.at(r, (e) => host(this.ops.unlinkAt(e.dirFd, e.name, 0)));
  }

  rmdir(r: Route): void {
    this.writable(r);
    if (r.rel === '') throw new FsError(Errno.EBUSY);
    this.at(r, (e) => host(this.ops.unlinkAt(e.dirFd, e.name, AT_REMOVEDIR)));
  }

  /** Both routes are in this mount (the router answers EXDEV otherwise). */
  rename(from: Route, to: Route): void {
    this.writable(from);
    if (from.rel === '' || to.rel === '') throw new FsError(Errno.EBUSY);
    this.at(from, (a) => this.at(to, (b) => host(this.ops.renameAt(a.dirFd, a.name, b.dirFd, b.name))));
  }

  link(from: Route, to: Route): void {
    this.writable(from);
    if (to.rel === '') throw new FsError(Errno.EEXIST);
    // link(2) does not follow a symlink given as the existing name: the link is to the symlink.
    this.at(from, (a) => this.at(to, (b) => host(this.ops.linkAt(a.dirFd, a.name, b.dirFd, b.name))));
  }

  // --- file data --------------------------------------------------------------------------

  create(c: Caller, r: Route, mode: number, flags: number): number {
    this.writable(r);
    return this.at(r, (e) => {
      const fd = host(this.ops.openAt(e.dirFd, e.name, flags | O_CREAT, mode & 0o7777));
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
    return this.at(r, (e) => this.newHandle(host(this.ops.openAt(e.dirFd, e.name, flags & ~O_CREAT, 0)), r.mount));
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
    const fd = this.openDir(r, O_RDONLY);
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
    const fd = this.at(r, (e) => host(this.ops.openAt(e.dirFd, e.name, O_WRONLY, 0)));
    try { fs.ftruncateSync(fd, size); } finally { fs.closeSync(fd); }
  }

  ftruncate(fh: number, size: number): void {
    const h = this.handle(fh);
    if (h.mount.mode === 'ro') throw new FsError(Errno.EROFS);
    fs.ftruncateSync(h.fd, size);
  }

  // --- extended attributes: the host's own, on the entry itself (never a symlink's target) ----

  getxattr(r: Route, attr: string): Buffer {
    return this.at(r, (e) => this.sized((buf) => this.ops.getXattrAt(e.dirFd, e.name, attr, buf)));
  }

  /** Names as FUSE spells them (latin1), from the host's NUL-separated list. */
  listxattr(r: Route): string[] {
    const list = this.at(r, (e) => this.sized((buf) => this.ops.listXattrAt(e.dirFd, e.name, buf)));
    return list.toString('latin1').split('\0').slice(0, -1);
  }

  setxattr(r: Route, attr: string, value: Buffer, flags: number): void {
    this.writable(r);
    this.at(r, (e) => host(this.ops.setXattrAt(e.dirFd, e.name, attr, value, flags)));
  }

  removexattr(r: Route, attr: string): void {
    this.writable(r);
    this.at(r, (e) => host(this.ops.removeXattrAt(e.dirFd, e.name, attr)));
  }

  /** A value of unknown size: ask the size, then fetch; again if it grew meanwhile (ERANGE). */
  private sized(call: (buf: Buffer) => number): Buffer {
    for (;;) {
      const size = host(call(Buffer.alloc(0)));
      const buf = Buffer.alloc(size);
      const got = size === 0 ? 0 : call(buf);
      if (got !== -Errno.ERANGE) return buf.subarray(0, host(got));
    }
  }
}
