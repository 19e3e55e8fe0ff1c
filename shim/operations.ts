// The op table: every FUSE operation in one place, each the same short shape (as in
// libfuse's passthrough.c): forward to TarboxFs and let `guard` turn any failure into the
// errno the kernel sees, through the single SQLSTATE -> errno map in errors.ts.

import { FuseError, type Caller, type FuseOps, type Stat, type StatFs } from './fuse/binding.js';
import type { Attr } from './open-files.js';
import { errnoOf } from './errors.js';
import type { TarboxFs } from './filesystem.js';
import { withRetry } from './database.js';

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

export function operations(fs: TarboxFs, log: (msg: string) => void): FuseOps {
  /** The one wrapper: retries transient conflicts, maps every other error to an errno. */
  const guard = <A extends unknown[], R>(op: (caller: Caller, ...args: A) => Promise<R>) =>
    async (caller: Caller, ...args: A): Promise<R> => {
      try {
        return await withRetry(() => op(caller, ...args));
      } catch (err) {
        throw new FuseError(errnoOf(err, log));
      }
    };

  return {
    getattr: guard(async (_c, path: string) => stat(await fs.getattr(path))),
    fgetattr: guard(async (_c, path: string, fh: number) => stat(await fs.fgetattr(path, fh))),
    access: guard((c, path: string, mask: number) => fs.access(c, path, mask)),
    statfs: guard(async () => statfs(await fs.statfs())),
    readdir: guard((_c, path: string) => fs.readdir(path)),
    mkdir: guard((c, path: string, mode: number) => fs.mkdir(c, path, mode)),
    mknod: guard((c, path: string, mode: number, rdev: number) => fs.mknod(c, path, mode, rdev)),
    symlink: guard((c, target: string, path: string) => fs.symlink(c, target, path)),
    readlink: guard((_c, path: string) => fs.readlink(path)),
    link: guard((_c, existing: string, path: string) => fs.link(existing, path)),
    unlink: guard((c, path: string) => fs.unlink(c, path)),
    rmdir: guard((c, path: string) => fs.rmdir(c, path)),
    rename: guard((c, from: string, to: string) => fs.rename(c, from, to)),
    chmod: guard((_c, path: string, mode: number) => fs.chmod(path, mode)),
    chown: guard((_c, path: string, uid: number, gid: number) => fs.chown(path, uid, gid)),
    utimens: guard((_c, path: string, as: number, an: number, ms: number, mn: number) => fs.utimens(path, as, an, ms, mn)),
    truncate: guard((c, path: string, size: number) => fs.truncate(c, path, size)),
    ftruncate: guard((c, _path: string, fh: number, size: number) => fs.ftruncate(c, fh, size)),
    create: guard((c, path: string, mode: number) => fs.create(c, path, mode)),
    open: guard((c, path: string, flags: number) => fs.open(c, path, flags)),
    read: guard((_c, _path: string, fh: number, buf: Buffer, len: number, offset: number) => fs.read(fh, buf, len, offset)),
    write: guard((c, _path: string, fh: number, buf: Buffer, len: number, offset: number) =>
      fs.write(c, fh, len === buf.length ? buf : buf.subarray(0, len), offset)),
    flush: guard((_c, _path: string, fh: number) => fs.flush(fh)),
    fsync: guard((_c, _path: string, _datasync: boolean, fh: number) => fs.fsync(fh)),
    fsyncdir: guard(() => fs.fsyncdir()),
    release: guard((_c, _path: string, fh: number) => fs.release(fh)),
    setxattr: guard((_c, path: string, name: string, value: Buffer, flags: number) => fs.setxattr(path, name, value, flags)),
    getxattr: guard((_c, path: string, name: string) => fs.getxattr(path, name)),
    listxattr: guard((_c, path: string) => fs.listxattr(path)),
    removexattr: guard((_c, path: string, name: string) => fs.removexattr(path, name)),
  };
}
