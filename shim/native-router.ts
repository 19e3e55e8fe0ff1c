// The router in front of the op table: a path inside a native mount goes to NativeFs (the host
// directory), every other path to the op table (the database and /.tarbox), unchanged.
//
// - Handle-based ops (read, write, flush, ...) go where the handle was opened (NativeFs.owns).
// - rename and link within one native mount go to the host; across the boundary (database and
//   native, or two native mounts) they answer EXDEV, so mv and cp fall back to copy + delete.
// - A mount point appears in its parent's readdir and getattr even when the database has no
//   such entry, and directories above a deep mount point (/usr/share for /usr/share/dict)
//   appear as read-only-looking directories (0755, root) when the database lacks them.
// - Every completed native operation, success or failure, passes through one hook (`onOp`):
//   the single place where auditing of native operations plugs in.

import { FuseError, type Caller, type FuseOps, type Stat } from './fuse/binding.js';
import { Errno, FsError } from './errors.js';
import type { NativeFs, Route } from './native-fs.js';

/** What the op table's guard does: run an op, turning any failure into a FuseError. */
export type Guard = <A extends unknown[], R>(op: (caller: Caller, ...args: A) => R | Promise<R>) =>
  (caller: Caller, ...args: A) => Promise<R>;

/** Called once per completed native operation: errno 0 on success. */
export type NativeOpHook = (op: string, caller: Caller, paths: string[], errno: number) => void;

/** Node's host errors carry the errno (negative); FsError is how the guard recognises one. */
function hostError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  return typeof e?.errno === 'number' && e.errno < 0 && typeof e.syscall === 'string' ? new FsError(-e.errno, e.message) : err;
}

// Directories above deep mount points that the database lacks: numbers far from the
// database's and the native mounts' (NativeFs uses 2^44 .. 121 * 2^44).
const SYNTHETIC_INO = 2 ** 51 + 2 ** 50;

export function routeNative(table: FuseOps, native: NativeFs, guard: Guard, onOp: NativeOpHook = () => {}): FuseOps {
  const synthetic = new Map<string, number>();
  const syntheticDir = (path: string): Stat => {
    let ino = synthetic.get(path);
    if (ino === undefined) synthetic.set(path, (ino = SYNTHETIC_INO + synthetic.size));
    return {
      ino, mode: 0o040755, nlink: 2, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, blksize: 4096,
      atimeSec: 0, atimeNsec: 0, mtimeSec: 0, mtimeNsec: 0, ctimeSec: 0, ctimeNsec: 0,
    };
  };

  /** The guarded native op, with its completion reported to the hook. */
  const nat = <A extends unknown[], R>(op: string, paths: (args: A) => string[], fn: (c: Caller, ...args: A) => R) => {
    const guarded = guard(async (c: Caller, ...args: A) => {
      try {
        return fn(c, ...args);
      } catch (err) {
        throw hostError(err);
      }
    });
    return async (c: Caller, ...args: A): Promise<R> => {
      try {
        const result = await guarded(c, ...args);
        onOp(op, c, paths(args), 0);
        return result;
      } catch (err) {
        onOp(op, c, paths(args), (err as FuseError).errno ?? Errno.EIO);
        throw err;
      }
    };
  };
  /** The route again inside the op: a reload (NOTIFY) may have removed the mount since the router chose. */
  const routeOf = (path: string): Route => {
    const r = native.route(path);
    if (!r) throw new FsError(Errno.ENOENT);
    return r;
  };
  const first = (args: unknown[]) => [args[0] as string];
  const two = (args: unknown[]) => [args[0] as string, args[1] as string];

  /** A one-path op: the native version when the path is inside a mount. */
  function byPath<K extends keyof FuseOps>(name: K, fn: (c: Caller, r: Route, ...rest: any[]) => unknown): FuseOps[K] {
    const dbOp = table[name] as any;
    const nativeOp = nat(name, first, (c: Caller, path: string, ...rest: unknown[]) => fn(c, routeOf(path), ...rest));
    return (async (c: Caller, path: string, ...rest: unknown[]) =>
      native.route(path) ? nativeOp(c, path, ...rest) : dbOp(c, path, ...rest)) as FuseOps[K];
  }

  /** A handle op: native when the handle was opened by NativeFs. */
  function byHandle<K extends keyof FuseOps>(name: K, fhIndex: number, fn: (...args: any[]) => unknown): FuseOps[K] {
    const dbOp = table[name] as any;
    const nativeOp = nat(name, first, (_c: Caller, ...args: unknown[]) => fn(...args));
    return (async (c: Caller, ...args: unknown[]) =>
      native.owns(args[fhIndex] as number) ? nativeOp(c, ...args) : dbOp(c, ...args)) as FuseOps[K];
  }

  /** rename and link: host only within one mount; across the boundary EXDEV. */
  function twoPaths<K extends 'rename' | 'link'>(name: K, fn: (from: Route, to: Route) => void): FuseOps[K] {
    const dbOp = table[name]!;
    const exdev = nat(name, two, (_c: Caller, _from: string, _to: string): void => { throw new FsError(Errno.EXDEV); });
    const nativeOp = nat(name, two, (_c: Caller, from: string, to: string) => fn(routeOf(from), routeOf(to)));
    return (async (c: Caller, from: string, to: string) => {
      const a = native.route(from);
      const b = native.route(to);
      if (!a && !b) return dbOp(c, from, to);
      return a && b && a.mount === b.mount ? nativeOp(c, from, to) : exdev(c, from, to);
    }) as FuseOps[K];
  }

  /** A mount point's own attributes, for its parent's listing; a synthetic directory above deeper ones. */
  const childStat = (path: string): Stat => {
    const r = native.route(path);
    if (r && r.rel === '') return native.getattr(r);
    try {
      return r ? native.getattr(r) : syntheticDir(path);
    } catch {
      return syntheticDir(path); // a directory above a deeper mount point, missing in the source
    }
  };
  const isNotFound = (err: unknown) => (err as FuseError).errno === Errno.ENOENT;

  const getattr = byPath('getattr', (_c, r) => native.getattr(r))!;
  // symlink(target, linkpath) is routed by its second argument
  const symlink = nat('symlink', (args: unknown[]) => [args[1] as string],
    (c: Caller, target: string, path: string) => native.symlink(c, target, routeOf(path)));
  const readdir = byPath('readdir', (_c, r) => native.readdir(r))!;

  return {
    ...table,
    getattr: async (c, path) => {
      const plain = native.route(path) ? getattr : table.getattr!;
      if (!native.routes.childrenOf(path)) return plain(c, path);
      try {
        return await plain(c, path);
      } catch (err) {
        if (isNotFound(err)) return syntheticDir(path);
        throw err;
      }
    },
    readdir: async (c, path, fh) => {
      const plain = native.route(path) ? readdir : table.readdir!;
      const children = native.routes.childrenOf(path);
      if (!children) return plain(c, path, fh);
      let listing: { names: string[]; stats?: Stat[] };
      try {
        const r = await plain(c, path, fh);
        listing = Array.isArray(r) ? { names: r } : r;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        listing = { names: ['.', '..'], stats: [syntheticDir(path), syntheticDir(path)] };
      }
      const names = [...listing.names];
      const stats = listing.stats ? [...listing.stats] : undefined;
      const prefix = path === '/' ? '/' : `${path}/`;
      for (const name of children) {
        let st: Stat;
        try {
          st = childStat(prefix + name);
        } catch {
          continue; // a source that vanished from the host: leave the listing as it is
        }
        const at = names.indexOf(name);
        if (at < 0) { names.push(name); stats?.push(st); } else if (stats) stats[at] = st;
      }
      return stats ? { names, stats } : names;
    },
    fgetattr: byHandle('fgetattr', 1, (_path: string, fh: number) => native.fgetattr(fh)),
    access: byPath('access', (c, r, mask: number) => native.access(c, r, mask)),
    statfs: byPath('statfs', (_c, r) => native.statfs(r)),
    mkdir: byPath('mkdir', (c, r, mode: number) => native.mkdir(c, r, mode)),
    mknod: byPath('mknod', (c, r, mode: number, rdev: number) => native.mknod(c, r, mode, rdev)),
    readlink: byPath('readlink', (_c, r) => native.readlink(r)),
    unlink: byPath('unlink', (_c, r) => native.unlink(r)),
    rmdir: byPath('rmdir', (_c, r) => native.rmdir(r)),
    chmod: byPath('chmod', (_c, r, mode: number) => native.chmod(r, mode)),
    chown: byPath('chown', (_c, r, uid: number, gid: number) => native.chown(r, uid, gid)),
    utimens: byPath('utimens', (_c, r, as: number, an: number, ms: number, mn: number) => native.utimens(r, as, an, ms, mn)),
    truncate: byPath('truncate', (_c, r, size: number) => native.truncate(r, size)),
    create: byPath('create', (c, r, mode: number, flags: number) => native.create(c, r, mode, flags)),
    open: byPath('open', (_c, r, flags: number) => native.open(r, flags)),
    fsyncdir: byPath('fsyncdir', (_c, r) => native.fsyncdir(r)),
    setxattr: byPath('setxattr', (_c, r, name: string, value: Buffer, flags: number) => native.setxattr(r, name, value, flags)),
    getxattr: byPath('getxattr', (_c, r, name: string) => native.getxattr(r, name)),
    listxattr: byPath('listxattr', (_c, r) => native.listxattr(r)),
    removexattr: byPath('removexattr', (_c, r, name: string) => native.removexattr(r, name)),
    symlink: async (c, target, path) => (native.route(path) ? symlink(c, target, path) : table.symlink!(c, target, path)),
    rename: twoPaths('rename', (from, to) => native.rename(from, to)),
    link: twoPaths('link', (from, to) => native.link(from, to)),
    read: byHandle('read', 1, (_p: string, fh: number, buf: Buffer, len: number, off: number) => native.read(fh, buf, len, off)),
    write: byHandle('write', 1, (_p: string, fh: number, buf: Buffer, len: number, off: number) => native.write(fh, buf, len, off)),
    flush: byHandle('flush', 1, (_p: string, fh: number) => native.flush(fh)),
    fsync: byHandle('fsync', 2, (_p: string, datasync: boolean, fh: number) => native.fsync(fh, datasync)),
    release: byHandle('release', 1, (_p: string, fh: number) => native.release(fh)),
    ftruncate: byHandle('ftruncate', 1, (_p: string, fh: number, size: number) => native.ftruncate(fh, size)),
  };

}
