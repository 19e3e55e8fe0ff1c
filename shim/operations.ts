// The op table: every FUSE operation in one place, each the same short shape (as in
// libfuse's passthrough.c): forward to TarboxFs (or, under /.tarbox, to ControlFs); `guard`,
// applied to every entry, turns any failure into the errno the kernel sees, through the
// single SQLSTATE -> errno map in errors.ts, and logs it to the audit log. With native mounts,
// the router in native-router.ts stands in front of this table and sends paths inside them to
// the host (NativeFs); their completions reach the audit log through its one hook.

import { FuseError, type Caller, type FuseOps, type Stat, type StatFs } from './fuse/binding.js';
import { ControlFs, isControlPath } from './control.js';
import { errnoOf } from './errors.js';
import type { TarboxFs } from './filesystem.js';
import { withRetry } from './database.js';
import type { AuditLog } from './audit.js';
import type { NativeFs } from './native-fs.js';
import { routeNative, type Guard } from './native-router.js';
import type { Attr } from './open-files.js';

/** SQL's tarbox.attr (snake_case columns) as the binding's Stat. */
function stat(attr: Attr): Stat {
  return {
    ino: attr.ino, mode: attr.mode, nlink: attr.nlink, uid: attr.uid, gid: attr.gid, rdev: attr.rdev,
    size: attr.size, blocks: attr.blocks, blksize: attr.blksize,
    atimeSec: attr.atime_sec, atimeNsec: attr.atime_nsec,
    mtimeSec: attr.mtime_sec, mtimeNsec: attr.mtime_nsec,
    ctimeSec: attr.ctime_sec, ctimeNsec: attr.ctime_nsec,
  };
}

function statfs(info: Record<string, number>): StatFs {
  return {
    bsize: info.bsize, frsize: info.frsize, blocks: info.blocks, bfree: info.bfree, bavail: info.bavail,
    files: info.files, ffree: info.ffree, favail: info.favail, fsid: 0, flag: 0, namemax: info.namemax,
  };
}

type Op = (caller: Caller, ...args: any[]) => unknown;

export function operations(fs: TarboxFs, control: ControlFs, log: (msg: string) => void, audit?: AuditLog,
  native?: NativeFs): FuseOps {
  /** Retries transient conflicts and maps every other error to an errno. */
  const mapErrors: Guard = (op) => async (caller, ...args) => {
    try {
      return await withRetry(async () => op(caller, ...args));
    } catch (err) {
      throw new FuseError(errnoOf(err, log));
    }
  };
  /**
   * The one wrapper of every entry: mapErrors, and the failure logged to the audit log (its
   * transaction rolled back, taking no row with it); at level "all", listings logged too.
   */
  const guard = (name: string, op: Op) => {
    const run = mapErrors(op);
    return async (caller: Caller, ...args: unknown[]): Promise<unknown> => {
      try {
        const result = await run(caller, ...args);
        const path = args[0];
        if (typeof path === 'string' && !isControlPath(path)) audit?.listed(name, caller, path);
        return result;
      } catch (err) {
        await audit?.failure(name, caller, args, (err as FuseError).errno);
        throw err;
      }
    };
  };
  const ctl = isControlPath;
  const anyCtl = (...paths: string[]) => paths.some(isControlPath);

  const table: Record<string, Op> = {
    getattr: async (_c, path: string) => stat(ctl(path) ? control.getattr(path) : await fs.getattr(path)),
    fgetattr: async (_c, path: string, fh: number) =>
      stat(control.owns(fh) ? control.getattr(path) : await fs.fgetattr(path, fh)),
    access: (c, path: string, mask: number) => ctl(path) ? undefined : fs.access(c, path, mask),
    statfs: async () => statfs(await fs.statfs()),
    readdir: async (_c, path: string) => {
      if (ctl(path)) return control.readdir(path);
      const { names, attrs } = await fs.readdir(path);
      return { names, stats: attrs.map(stat) };
    },
    mkdir: (c, path: string, mode: number) => ctl(path) ? control.refuse() : fs.mkdir(c, path, mode),
    mknod: (c, path: string, mode: number, rdev: number) => ctl(path) ? control.refuse() : fs.mknod(c, path, mode, rdev),
    symlink: (c, target: string, path: string) => ctl(path) ? control.refuse() : fs.symlink(c, target, path),
    readlink: (_c, path: string) => fs.readlink(path),
    link: (c, existing: string, path: string) => anyCtl(existing, path) ? control.refuse() : fs.link(c, existing, path),
    unlink: (c, path: string) => ctl(path) ? control.refuse() : fs.unlink(c, path),
    rmdir: (c, path: string) => ctl(path) ? control.refuse() : fs.rmdir(c, path),
    rename: (c, from: string, to: string) => anyCtl(from, to) ? control.refuse() : fs.rename(c, from, to),
    chmod: (c, path: string, mode: number) => ctl(path) ? control.refuse() : fs.chmod(c, path, mode),
    chown: (c, path: string, uid: number, gid: number) => ctl(path) ? control.refuse() : fs.chown(c, path, uid, gid),
    utimens: (c, path: string, as: number, an: number, ms: number, mn: number) =>
      ctl(path) ? control.refuse() : fs.utimens(c, path, as, an, ms, mn),
    truncate: (c, path: string, size: number) => ctl(path) ? control.truncate(path) : fs.truncate(c, path, size),
    ftruncate: (c, path: string, fh: number, size: number) =>
      control.owns(fh) ? control.truncate(path) : fs.ftruncate(c, fh, size),
    create: (c, path: string, mode: number, flags: number) => ctl(path) ? control.refuse() : fs.create(c, path, mode, flags),
    open: (c, path: string, flags: number) => ctl(path) ? control.open(path) : fs.open(c, path, flags),
    read: (_c, _path: string, fh: number, buf: Buffer, len: number, offset: number) =>
      control.owns(fh) ? control.read(fh, buf, len, offset) : fs.read(fh, buf, len, offset),
    write: (c, _path: string, fh: number, buf: Buffer, len: number, offset: number) => {
      const data = len === buf.length ? buf : buf.subarray(0, len);
      return control.owns(fh) ? control.write(fh, data) : fs.write(c, fh, data, offset);
    },
    flush: (_c, _path: string, fh: number) => control.owns(fh) ? undefined : fs.flush(fh),
    fsync: (_c, _path: string, _datasync: boolean, fh: number) => control.owns(fh) ? undefined : fs.fsync(fh),
    fsyncdir: () => fs.fsyncdir(),
    release: (_c, _path: string, fh: number) => control.owns(fh) ? control.release(fh) : fs.release(fh),
    setxattr: (c, path: string, name: string, value: Buffer, flags: number) =>
      ctl(path) ? control.refuse() : fs.setxattr(c, path, name, value, flags),
    getxattr: (_c, path: string, name: string) => ctl(path) ? fs.noXattr() : fs.getxattr(path, name),
    listxattr: (_c, path: string) => ctl(path) ? [] : fs.listxattr(path),
    removexattr: (c, path: string, name: string) => ctl(path) ? control.refuse() : fs.removexattr(c, path, name),
  };
  const guarded = Object.fromEntries(Object.entries(table).map(([name, op]) => [name, guard(name, op)])) as FuseOps;
  return native ? routeNative(guarded, native, mapErrors, (op, c, paths, errno) => audit?.native(op, c, paths, errno)) : guarded;
}
