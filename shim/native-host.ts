// The host calls native mounts need and Node lacks, from the small C addon
// shim/native/host-ops.c (built by scripts/build-host-ops.sh into node_modules/.tarbox/):
// openat2 with RESOLVE_BENEATH, *at calls on a directory descriptor and a single name that
// never follow a final symlink, utimensat with nanoseconds, mknodat (fifos and sockets),
// and the l*xattr family. Each returns >= 0 or -errno; `host()` turns -errno into FsError.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsError } from './errors.js';

export interface HostOps {
  version: number;
  /** An O_PATH-style descriptor of rel below rootFd; no symlink anywhere, never outside rootFd. */
  openBeneath(rootFd: number, rel: string, flags: number): number;
  /** lstat of name in dirFd ("" = dirFd itself) into out (16 numbers, see STAT below). */
  statAt(dirFd: number, name: string, out: Float64Array): number;
  openAt(dirFd: number, name: string, flags: number, mode: number): number;
  mkdirAt(dirFd: number, name: string, mode: number): number;
  mknodAt(dirFd: number, name: string, mode: number, dev: number): number;
  symlinkAt(target: string, dirFd: number, name: string): number;
  readlinkAt(dirFd: number, name: string): string | number;
  unlinkAt(dirFd: number, name: string, flags: number): number;
  renameAt(fromDir: number, from: string, toDir: number, to: string): number;
  linkAt(fromDir: number, from: string, toDir: number, to: string): number;
  chownAt(dirFd: number, name: string, uid: number, gid: number): number;
  chmodAt(dirFd: number, name: string, mode: number): number;
  utimensAt(dirFd: number, name: string, aSec: number, aNsec: number, mSec: number, mNsec: number): number;
  /** Size of the value; with an empty buffer only the size is asked for. */
  getXattrAt(dirFd: number, name: string, attr: string, buf: Buffer): number;
  listXattrAt(dirFd: number, name: string, buf: Buffer): number;
  setXattrAt(dirFd: number, name: string, attr: string, value: Buffer, flags: number): number;
  removeXattrAt(dirFd: number, name: string, attr: string): number;
}

/** Indexes into statAt's output. */
export const STAT = {
  inoHigh: 0, inoLow: 1, mode: 2, nlink: 3, uid: 4, gid: 5, rdev: 6, size: 7, blocks: 8, blksize: 9,
  atimeSec: 10, atimeNsec: 11, mtimeSec: 12, mtimeNsec: 13, ctimeSec: 14, ctimeNsec: 15, length: 16,
} as const;

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../node_modules/.tarbox/host-ops.node');

let loaded: HostOps | undefined;

/** The addon, loaded on first use (only mounts with native mounts need it). */
export function hostOps(): HostOps {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)(ADDON) as HostOps;
  } catch (err) {
    throw new Error(`native mounts need ${ADDON}: run scripts/build-host-ops.sh (${(err as Error).message})`);
  }
  if (loaded.version !== 1) throw new Error(`${ADDON} is another version: run scripts/build-host-ops.sh`);
  return loaded;
}

/** A result of the addon: the number itself, or FsError when it is -errno. */
export function host(result: number): number {
  if (result < 0) throw hostError(-result);
  return result;
}

/**
 * An expected failure of a host call (ENOENT of every negative lookup before a create): no
 * stack trace, whose capture cost more than the lookup itself (~10 µs of ~25 measured).
 */
function hostError(errno: number): FsError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new FsError(errno);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
