/**
 * Typed FUSE binding for the shim.
 *
 * It loads the addon that scripts/build-fuse.sh compiles from fuse-native 2.2.6 patched
 * with shim/native/fuse-native.patch (fuse-native's own index.js is not used and does not
 * work with the patched addon). The contract with the C side:
 * - Every request reaches JS as handler(locals, opcode, ...args). `locals` is a Buffer over
 *   the FUSE thread's locals; bytes 0/4/8 hold the caller's uid/gid/pid. The reply is
 *   binding.fuse_native_signal_<op>(locals, result, payload...) where result is >= 0 or
 *   -errno. Exactly one reply per request: the FUSE thread blocks until it arrives.
 * - Paths and names are latin1 strings (one char per byte): names are bytes, not UTF-8.
 * - 64-bit offsets/sizes arrive as two uint32 (low, high); stat/statfs replies are float64
 *   arrays; file handles are float64 (integers < 2^53).
 */
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { endianness } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRNO, ERRNO_NAME } from './errno.js';

export { ERRNO } from './errno.js';

/** utimens nanosecond values meaning "set to now" / "leave unchanged" (Linux). */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

export type Caller = { uid: number; gid: number; pid: number };

export interface Stat {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** Names only, or names with their stats (same order, same length). */
export type ReaddirResult = string[] | { names: string[]; stats?: Stat[] };

/** Reject with this to return a specific errno (positive, e.g. ERRNO.ENOENT) to the kernel. */
export class FuseError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, message?: string) {
    const code = ERRNO_NAME.get(errno) ?? `E${errno}`;
    super(message ?? code);
    this.name = 'FuseError';
    this.errno = errno;
    this.code = code;
  }
}

/**
 * One method per FUSE operation; only the methods present are registered with libfuse
 * (a missing one answers ENOSYS, or lets libfuse fall back, e.g. create -> mknod + open).
 * Paths are latin1 strings. Buffers given to read/write/setxattr point into libfuse memory
 * and are valid only until the returned promise settles: copy what you keep.
 */
export interface FuseOps {
  init?(caller: Caller): Promise<void>;
  getattr?(caller: Caller, path: string): Promise<Stat>;
  fgetattr?(caller: Caller, path: string, fh: number): Promise<Stat>;
  access?(caller: Caller, path: string, mask: number): Promise<void>;
  statfs?(caller: Caller, path: string): Promise<StatFs>;
  readdir?(caller: Caller, path: string, fh: number): Promise<ReaddirResult>;
  open?(caller: Caller, path: string, flags: number): Promise<number>;
  opendir?(caller: Caller, path: string, flags: number): Promise<number>;
  create?(caller: Caller, path: string, mode: number, flags: number): Promise<number>;
  /** Fill buf (length len) and resolve with the number of bytes read (0 at EOF). */
  read?(caller: Caller, path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number>;
  /** Resolve with the number of bytes written (len unless an error). */
  write?(caller: Caller, path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number>;
  flush?(caller: Caller, path: string, fh: number): Promise<void>;
  fsync?(caller: Caller, path: string, datasync: boolean, fh: number): Promise<void>;
  fsyncdir?(caller: Caller, path: string, datasync: boolean, fh: number): Promise<void>;
  release?(caller: Caller, path: string, fh: number): Promise<void>;
  releasedir?(caller: Caller, path: string, fh: number): Promise<void>;
  truncate?(caller: Caller, path: string, size: number): Promise<void>;
  ftruncate?(caller: Caller, path: string, fh: number, size: number): Promise<void>;
  /** Nsec values may be UTIME_NOW or UTIME_OMIT (then the seconds are meaningless). */
  utimens?(caller: Caller, path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): Promise<void>;
  readlink?(caller: Caller, path: string): Promise<string>;
  /** uid/gid 0xffffffff (-1) means "leave unchanged". */
  chown?(caller: Caller, path: string, uid: number, gid: number): Promise<void>;
  chmod?(caller: Caller, path: string, mode: number): Promise<void>;
  mknod?(caller: Caller, path: string, mode: number, rdev: number): Promise<void>;
  setxattr?(caller: Caller, path: string, name: string, value: Buffer, flags: number): Promise<void>;
  /** Resolve with the whole value; the binding answers size probes (size 0) and ERANGE. */
  getxattr?(caller: Caller, path: string, name: string, size: number): Promise<Buffer>;
  /** Resolve with all names; the binding answers size probes (size 0) and ERANGE. */
  listxattr?(caller: Caller, path: string, size: number): Promise<string[]>;
  removexattr?(caller: Caller, path: string, name: string): Promise<void>;
  unlink?(caller: Caller, path: string): Promise<void>;
  rename?(caller: Caller, src: string, dest: string): Promise<void>;
  link?(caller: Caller, src: string, dest: string): Promise<void>;
  /** symlink(target, linkpath): linkpath is the new entry, target its contents. */
  symlink?(caller: Caller, target: string, linkpath: string): Promise<void>;
  mkdir?(caller: Caller, path: string, mode: number): Promise<void>;
  rmdir?(caller: Caller, path: string): Promise<void>;
}

export interface Logger {
  error(message: string, err?: unknown): void;
}

export interface MountOptions {
  /** Shown as the source in /proc/mounts (default 'tarbox'). [A-Za-z0-9._:@+/-] only. */
  fsname?: string;
  /** Mount type becomes fuse.<subtype> (default 'tarbox'). */
  subtype?: string;
  /** Let other users use the mount (root may always set it). Default false. */
  allowOther?: boolean;
  /** Kernel enforces mode bits from getattr (access op not called). Default true. */
  defaultPermissions?: boolean;
  /** Writes up to max_write (128 KiB with libfuse 2) instead of 4 KiB. Default true. */
  bigWrites?: boolean;
  maxRead?: number;
  maxWrite?: number;
  /** Kernel cache lifetimes in seconds; 0 is passed as 0. Defaults 1, 1, 0 (libfuse's). */
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  /** Keep page cache across opens (only if data never changes behind the kernel). */
  kernelCache?: boolean;
  /** Drop page cache on open when mtime/size changed. */
  autoCache?: boolean;
  /** With autoCache: seconds an open may trust the last attributes seen instead of asking fgetattr (default attr_timeout). */
  acAttrTimeout?: number;
  /** Report Stat.ino to the kernel (libfuse otherwise invents inode numbers). Default true. */
  useIno?: boolean;
  /** Unlink open files at once instead of renaming them to .fuse_hidden*. Default false. */
  hardRemove?: boolean;
  /** fusermount stays behind and unmounts if this process dies. Default false. */
  autoUnmount?: boolean;
  /** libfuse debug output on stderr. */
  debug?: boolean;
  // No maxIdleThreads: libfuse 2.9.9 has no such option (it is libfuse 3's); unknown
  // options make fuse_new fail. The patch makes libfuse 2's thread churn harmless instead.
  /** Per-op watchdog: reply ETIMEDOUT after this many ms (0 disables). Default 15000. */
  opTimeoutMs?: number;
  /** How long to wait for FUSE_INIT after mounting. Default 10000. */
  initTimeoutMs?: number;
  /** Receives unexpected op failures (each logged once) and timeouts. Default console. */
  logger?: Logger;
}

export interface MountHandle {
  readonly mountpoint: string;
  /** `fusermount -uz`, then release the native side. Idempotent. */
  unmount(): Promise<void>;
  /** Resolves when the FUSE loop has really ended (all FUSE threads joined). */
  readonly closed: Promise<void>;
  /**
   * FUSE worker bookkeeping: thread-locals ever allocated (bounded by the peak number of
   * live FUSE threads), how many are idle on the free list, and how many FUSE threads
   * have started so far (libfuse 2 keeps retiring and spawning them under load).
   */
  threads(): { allocated: number; idle: number; started: number };
}

// ---------------------------------------------------------------------------------------
// Native addon

interface Native {
  tarbox_patch: number;
  sizeof_fuse_thread_t: number;
  offsetof_fuse_thread_locals_t_caller_uid: number;
  offsetof_fuse_thread_locals_t_caller_gid: number;
  offsetof_fuse_thread_locals_t_caller_pid: number;
  fuse_native_mount(mnt: string, opts: string, ft: Buffer, ctx: object, onExit: () => void,
    handlers: unknown[], implemented: Uint32Array): void;
  fuse_native_unmount(mnt: string, ft: Buffer): void;
  fuse_native_stats(ft: Buffer): [number, number, number];
  [name: string]: unknown;
}

const require = createRequire(import.meta.url);

/** node_modules/fuse-native/build/Release/fuse.node, resolved from this package. */
function loadNative(): Native {
  let file: string;
  try {
    file = path.join(path.dirname(require.resolve('fuse-native/package.json')), 'build/Release/fuse.node');
  } catch {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    file = path.join(root, 'node_modules/fuse-native/build/Release/fuse.node');
  }
  const native = require(file) as Native;
  if (native.tarbox_patch !== 1 || native.offsetof_fuse_thread_locals_t_caller_uid !== 0 ||
      native.offsetof_fuse_thread_locals_t_caller_gid !== 4 || native.offsetof_fuse_thread_locals_t_caller_pid !== 8) {
    throw new Error(`${file} is not the Tarbox-patched fuse-native addon; run scripts/build-fuse.sh`);
  }
  return native;
}

let nativeCache: Native | undefined;
function native(): Native {
  return (nativeCache ??= loadNative());
}

// ---------------------------------------------------------------------------------------
// Encoding helpers

const STAT_FIELDS = 15;
const TWO32 = 4294967296;
const MAX_ERRNO = 4095;
const LE = endianness() === 'LE';

// Reply buffers are copied by C synchronously inside the signal call, so one scratch
// array is enough for getattr/fgetattr/statfs.
const statScratch = new Float64Array(STAT_FIELDS);
const statfsScratch = new Float64Array(11);

function putStat(f: Float64Array, at: number, st: Stat): void {
  f[at] = st.ino;
  f[at + 1] = st.mode;
  f[at + 2] = st.nlink;
  f[at + 3] = st.uid;
  f[at + 4] = st.gid;
  f[at + 5] = st.rdev;
  f[at + 6] = st.size;
  f[at + 7] = st.blocks;
  f[at + 8] = st.blksize;
  f[at + 9] = st.atimeSec;
  f[at + 10] = st.atimeNsec;
  f[at + 11] = st.mtimeSec;
  f[at + 12] = st.mtimeNsec;
  f[at + 13] = st.ctimeSec;
  f[at + 14] = st.ctimeNsec;
}

function putStatfs(st: StatFs): Float64Array {
  const f = statfsScratch;
  f[0] = st.bsize; f[1] = st.frsize; f[2] = st.blocks; f[3] = st.bfree; f[4] = st.bavail;
  f[5] = st.files; f[6] = st.ffree; f[7] = st.favail; f[8] = st.fsid; f[9] = st.flag;
  f[10] = st.namemax;
  return f;
}

/** (low, high) uint32 -> number; beyond 2^53 a number is not exact: EFBIG. */
function u64(low: number, high: number): number {
  if (high >= 0x200000) throw new FuseError(ERRNO.EFBIG);
  return high * TWO32 + low;
}

/** A count returned by read/write/getxattr must be an integer in [0, max]. */
function count(n: unknown, max: number, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw new TypeError(`${what} must resolve with an integer in [0, ${max}], got ${String(n)}`);
  }
  return n;
}

function fhOf(fh: unknown, what: string): number {
  if (fh === undefined) return 0;
  if (typeof fh !== 'number' || !Number.isSafeInteger(fh) || fh < 0) {
    throw new TypeError(`${what} must resolve with a file handle (integer >= 0), got ${String(fh)}`);
  }
  return fh;
}

const NOT_LATIN1 = /[^\x00-\xff]/;

function latin1(s: unknown, what: string): string {
  if (typeof s !== 'string' || NOT_LATIN1.test(s)) {
    throw new TypeError(`${what} must be a latin1 string (one char per byte)`);
  }
  return s;
}

function xattrNames(names: string[]): { bytes: number; list: string[] } {
  let bytes = 0;
  for (const n of names) bytes += latin1(n, 'listxattr name').length + 1;
  return { bytes, list: names };
}

// ---------------------------------------------------------------------------------------
// The op table: how each FUSE op maps native arguments to a FuseOps call and the result
// back to a reply. `args` are the native arguments after (locals, opcode).
//   call:  invoke the user's method
//   reply: result -> [res, payload?, payload2?] (synchronous; may use scratch buffers)
//   fail:  payload of an error reply (external buffers must be passed back so the C side
//          detaches them, even on error or timeout)

type Args = any[];
type Reply = [number, unknown?, unknown?];
type FailPayload = [unknown?];
interface OpDef {
  call(o: FuseOps, c: Caller, a: Args): Promise<unknown> | undefined;
  reply?(r: any, a: Args): Reply;
  fail?(a: Args): FailPayload;
}

const ok = (): Reply => [0];
const statReply = (st: Stat): Reply => {
  putStat(statScratch, 0, st);
  return [0, statScratch];
};
const fhReply = (what: string) => (fh: unknown): Reply => [0, fhOf(fh, what)];
// read/write/xattr: a[2] is the external Buffer (its ArrayBuffer is detached on reply).
const bufFail = (a: Args): FailPayload => [(a[2] as Buffer).buffer];

const OPS: Record<Exclude<keyof FuseOps, 'init'>, OpDef> = {
  getattr: { call: (o, c, a) => o.getattr?.(c, a[0]), reply: statReply },
  fgetattr: { call: (o, c, a) => o.fgetattr?.(c, a[0], a[1]), reply: statReply },
  access: { call: (o, c, a) => o.access?.(c, a[0], a[1]) },
  statfs: { call: (o, c, a) => o.statfs?.(c, a[0]), reply: (st: StatFs) => [0, putStatfs(st)] },
  readdir: {
    call: (o, c, a) => o.readdir?.(c, a[0], a[1]),
    reply: (r: ReaddirResult): Reply => {
      const names = Array.isArray(r) ? r : r.names;
      const stats = Array.isArray(r) ? undefined : r.stats;
      for (const n of names) latin1(n, 'readdir name');
      if (!stats) return [0, names];
      if (stats.length !== names.length) throw new TypeError('readdir stats and names differ in length');
      const f = new Float64Array(names.length * STAT_FIELDS);
      for (let i = 0; i < stats.length; i++) putStat(f, i * STAT_FIELDS, stats[i]);
      return [0, names, f];
    },
  },
  open: { call: (o, c, a) => o.open?.(c, a[0], a[1]), reply: fhReply('open') },
  opendir: { call: (o, c, a) => o.opendir?.(c, a[0], a[1]), reply: fhReply('opendir') },
  create: { call: (o, c, a) => o.create?.(c, a[0], a[1], a[2]), reply: fhReply('create') },
  read: {
    call: (o, c, a) => o.read?.(c, a[0], a[1], a[2], a[3], u64(a[4], a[5])),
    reply: (n, a) => [count(n, a[3], 'read'), (a[2] as Buffer).buffer],
    fail: bufFail,
  },
  write: {
    call: (o, c, a) => o.write?.(c, a[0], a[1], a[2], a[3], u64(a[4], a[5])),
    reply: (n, a) => [count(n, a[3], 'write'), (a[2] as Buffer).buffer],
    fail: bufFail,
  },
  flush: { call: (o, c, a) => o.flush?.(c, a[0], a[1]) },
  fsync: { call: (o, c, a) => o.fsync?.(c, a[0], a[1] !== 0, a[2]) },
  fsyncdir: { call: (o, c, a) => o.fsyncdir?.(c, a[0], a[1] !== 0, a[2]) },
  release: { call: (o, c, a) => o.release?.(c, a[0], a[1]) },
  releasedir: { call: (o, c, a) => o.releasedir?.(c, a[0], a[1]) },
  truncate: { call: (o, c, a) => o.truncate?.(c, a[0], u64(a[1], a[2])) },
  ftruncate: { call: (o, c, a) => o.ftruncate?.(c, a[0], a[1], u64(a[2], a[3])) },
  utimens: { call: (o, c, a) => o.utimens?.(c, a[0], a[1], a[2], a[3], a[4]) },
  readlink: {
    call: (o, c, a) => o.readlink?.(c, a[0]),
    reply: (t: unknown) => [0, latin1(t, 'readlink target')],
  },
  chown: { call: (o, c, a) => o.chown?.(c, a[0], a[1], a[2]) },
  chmod: { call: (o, c, a) => o.chmod?.(c, a[0], a[1]) },
  mknod: { call: (o, c, a) => o.mknod?.(c, a[0], a[1], a[2]) },
  setxattr: {
    call: (o, c, a) => o.setxattr?.(c, a[0], a[1], a[2], a[3]),
    reply: (_r, a) => [0, (a[2] as Buffer).buffer],
    fail: bufFail,
  },
  getxattr: {
    // Native arguments: (path, name, buf); the size asked for is buf.length.
    call: (o, c, a) => o.getxattr?.(c, a[0], a[1], (a[2] as Buffer).length),
    reply: (v: Buffer, a): Reply => {
      const buf = a[2] as Buffer;
      if (!Buffer.isBuffer(v)) throw new TypeError('getxattr must resolve with a Buffer');
      if (buf.length === 0) return [v.length, buf.buffer]; // size probe
      if (v.length > buf.length) throw new FuseError(ERRNO.ERANGE);
      v.copy(buf);
      return [v.length, buf.buffer];
    },
    fail: bufFail,
  },
  listxattr: {
    // Native arguments: (path, buf); the size asked for is buf.length.
    call: (o, c, a) => o.listxattr?.(c, a[0], (a[1] as Buffer).length),
    reply: (names: string[], a): Reply => {
      const buf = a[1] as Buffer;
      const { bytes, list } = xattrNames(names);
      if (buf.length === 0) return [bytes, buf.buffer]; // size probe
      if (bytes > buf.length) throw new FuseError(ERRNO.ERANGE);
      let at = 0;
      for (const n of list) {
        at += buf.write(n, at, 'latin1');
        buf[at++] = 0;
      }
      return [at, buf.buffer];
    },
    fail: (a) => [(a[1] as Buffer).buffer],
  },
  removexattr: { call: (o, c, a) => o.removexattr?.(c, a[0], a[1]) },
  unlink: { call: (o, c, a) => o.unlink?.(c, a[0]) },
  rename: { call: (o, c, a) => o.rename?.(c, a[0], a[1]) },
  link: { call: (o, c, a) => o.link?.(c, a[0], a[1]) },
  symlink: { call: (o, c, a) => o.symlink?.(c, a[0], a[1]) },
  mkdir: { call: (o, c, a) => o.mkdir?.(c, a[0], a[1]) },
  rmdir: { call: (o, c, a) => o.rmdir?.(c, a[0]) },
};

// ---------------------------------------------------------------------------------------
// Dispatch: one pending record per request; the watchdog and the real reply race, and
// whichever comes first replies. Everything after is ignored (never double-signalled:
// a second signal would complete a *later* request on the same FUSE thread).

interface Pending {
  deadline: number;
  expire(): void;
}

type Signal = (locals: Buffer, res: number, p1?: unknown, p2?: unknown) => void;

class Dispatcher {
  readonly inflight = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ops: FuseOps, private readonly timeoutMs: number, private readonly logger: Logger) {
    if (timeoutMs > 0) {
      const period = Math.max(20, Math.min(1000, Math.floor(timeoutMs / 4)));
      this.timer = setInterval(() => this.sweep(), period);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const p of this.inflight) if (p.deadline <= now) p.expire();
  }

  handler(name: string, def: OpDef, signal: Signal): (locals: Buffer, op: number, ...a: Args) => void {
    return (locals, _op, ...a) => this.run(name, def, signal, locals, a);
  }

  run(name: string, def: OpDef, signal: Signal, locals: Buffer, a: Args): void {
    const caller: Caller = LE
      ? { uid: locals.readUInt32LE(0), gid: locals.readUInt32LE(4), pid: locals.readUInt32LE(8) }
      : { uid: locals.readUInt32BE(0), gid: locals.readUInt32BE(4), pid: locals.readUInt32BE(8) };
    let done = false;
    const failPayload = (): FailPayload => (def.fail ? def.fail(a) : []);
    const finish = (res: number, p1?: unknown, p2?: unknown): void => {
      if (done) return;
      done = true;
      if (pending) this.inflight.delete(pending);
      signal(locals, res, p1, p2);
    };
    const fail = (err: unknown): void => {
      if (done) return;
      if (err instanceof FuseError && Number.isInteger(err.errno) && err.errno > 0 && err.errno <= MAX_ERRNO) {
        finish(-err.errno, ...failPayload());
        return;
      }
      this.logger.error(`fuse ${name}(${describe(a)}) failed; replying EIO`, err);
      finish(-ERRNO.EIO, ...failPayload());
    };
    let pending: Pending | undefined;
    if (this.timer) {
      pending = {
        deadline: Date.now() + this.timeoutMs,
        expire: () => {
          this.logger.error(`fuse ${name}(${describe(a)}) timed out after ${this.timeoutMs} ms; replying ETIMEDOUT`);
          finish(-ERRNO.ETIMEDOUT, ...failPayload());
        },
      };
      this.inflight.add(pending);
    }
    let p: Promise<unknown> | undefined;
    try {
      p = def.call(this.ops, caller, a);
    } catch (err) {
      fail(err);
      return;
    }
    if (!p || typeof p.then !== 'function') {
      fail(new TypeError(`FuseOps.${name} must return a Promise`));
      return;
    }
    p.then((r) => {
      if (done) return; // late reply after a timeout: ignored
      let out: Reply;
      try {
        out = def.reply ? def.reply(r, a) : ok();
      } catch (err) {
        fail(err);
        return;
      }
      finish(out[0], out[1], out[2]);
    }, fail);
  }
}

function describe(a: Args): string {
  const s = a[0];
  return typeof s === 'string' ? JSON.stringify(s) : '';
}

// ---------------------------------------------------------------------------------------
// Mount options

const SAFE_NAME = /^[A-Za-z0-9._:@+/-]{1,255}$/;

function nameOpt(key: string, v: string): string {
  if (!SAFE_NAME.test(v)) {
    throw new TypeError(`mount option ${key} must match ${SAFE_NAME} (got ${JSON.stringify(v)})`);
  }
  return `${key}=${v}`;
}

function numOpt(key: string, v: number, integer: boolean): string {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isSafeInteger(v))) {
    throw new TypeError(`mount option ${key} must be a ${integer ? 'non-negative integer' : 'number >= 0'} (got ${String(v)})`);
  }
  // String(1e-7) is '1e-7', which libfuse's %lf parsing accepts; no commas possible.
  return `${key}=${String(v)}`;
}

/** Builds the `-o` string. Values are validated, so none can smuggle in extra options. */
export function fuseOptionString(opts: MountOptions = {}): string {
  const o: string[] = [];
  o.push(nameOpt('fsname', opts.fsname ?? 'tarbox'));
  o.push(nameOpt('subtype', opts.subtype ?? 'tarbox'));
  if (opts.allowOther) o.push('allow_other');
  if (opts.defaultPermissions ?? true) o.push('default_permissions');
  if (opts.bigWrites ?? true) o.push('big_writes');
  if (opts.maxRead !== undefined) o.push(numOpt('max_read', opts.maxRead, true));
  if (opts.maxWrite !== undefined) o.push(numOpt('max_write', opts.maxWrite, true));
  o.push(numOpt('attr_timeout', opts.attrTimeout ?? 1, false));
  o.push(numOpt('entry_timeout', opts.entryTimeout ?? 1, false));
  o.push(numOpt('negative_timeout', opts.negativeTimeout ?? 0, false));
  if (opts.kernelCache) o.push('kernel_cache');
  if (opts.autoCache) o.push('auto_cache');
  if (opts.acAttrTimeout !== undefined) o.push(numOpt('ac_attr_timeout', opts.acAttrTimeout, false));
  if (opts.useIno ?? true) o.push('use_ino');
  if (opts.hardRemove) o.push('hard_remove');
  if (opts.autoUnmount) o.push('auto_unmount');
  if (opts.debug) o.push('debug');
  const s = '-o' + o.join(',');
  if (s.length > 1000) throw new TypeError('mount option string too long');
  return s;
}

// ---------------------------------------------------------------------------------------
// Mount / unmount

function errorWithCode(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function fusermountUnmount(mnt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('fusermount', ['-uz', mnt], (err, _stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr).trim() }));
      else resolve();
    });
  });
}

/**
 * Checks the mountpoint: a crashed previous mount (ENOTCONN) is lazily unmounted and
 * reused; a live mount of any kind (st_dev differs from the parent's) is EBUSY.
 */
async function prepareMountpoint(mnt: string): Promise<void> {
  let st;
  try {
    st = await fsp.stat(mnt);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw errorWithCode('ENOENT', `mountpoint ${mnt} does not exist`);
    if (code !== 'ENOTCONN' && code !== 'ECONNABORTED') throw err;
    await fusermountUnmount(mnt).catch(() => undefined);
    try {
      st = await fsp.stat(mnt);
    } catch (err2) {
      throw errorWithCode((err2 as NodeJS.ErrnoException).code ?? 'EIO',
        `mountpoint ${mnt} is a dead FUSE mount and fusermount -uz did not clear it: ${(err2 as Error).message}`);
    }
  }
  if (!st.isDirectory()) throw errorWithCode('ENOTDIR', `mountpoint ${mnt} is not a directory`);
  const parent = path.dirname(mnt);
  if (parent !== mnt) {
    const pst = await fsp.stat(parent);
    if (pst.dev !== st.dev) throw errorWithCode('EBUSY', `mountpoint ${mnt} is already a mount point`);
  }
}

// fuse_thread_t buffers must outlive their uv handle: kept here until on_exit (forever if
// the loop never ends, e.g. a lazily unmounted fs with files still open).
const liveThreads = new Set<Buffer>();

export async function mount(mountpoint: string, ops: FuseOps, options: MountOptions = {}): Promise<MountHandle> {
  const b = native();
  const mnt = path.resolve(mountpoint);
  const logger = options.logger ?? console;
  const optString = fuseOptionString(options);
  const timeoutMs = options.opTimeoutMs ?? 15000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError('opTimeoutMs must be >= 0');
  await prepareMountpoint(mnt);

  const dispatcher = new Dispatcher(ops, timeoutMs, logger);
  const handlers: unknown[] = new Array(35);
  const implemented = new Uint32Array(35);

  for (const [name, def] of Object.entries(OPS) as [keyof typeof OPS, OpDef][]) {
    if (typeof ops[name] !== 'function') continue;
    const code = b[`op_${name}`] as number;
    implemented[code] = 1;
    handlers[code] = dispatcher.handler(name, def, b[`fuse_native_signal_${name}`] as Signal);
  }

  // init: always registered; it runs the user's init, then resolves the mount.
  let onInit!: (err?: unknown) => void;
  const initialized = new Promise<void>((resolve, reject) => {
    onInit = (err) => (err === undefined ? resolve() : reject(err));
  });
  const initCode = b.op_init as number;
  const initSignal = b.fuse_native_signal_init as Signal;
  implemented[initCode] = 1;
  const initDef: OpDef = { call: (o, c) => (o.init ? o.init(c) : Promise.resolve()) };
  handlers[initCode] = dispatcher.handler('init', initDef, (locals, res) => {
    initSignal(locals, res);
    onInit(res === 0 ? undefined : new FuseError(-res, 'init failed'));
  });

  const ft = Buffer.alloc(b.sizeof_fuse_thread_t);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const onExit = (): void => {
    dispatcher.stop();
    liveThreads.delete(ft);
    resolveClosed();
  };

  liveThreads.add(ft);
  try {
    // Paths are bytes: a UTF-8 JS string is passed to C as one latin1 char per byte.
    b.fuse_native_mount(Buffer.from(mnt, 'utf8').toString('latin1'), optString, ft, {}, onExit, handlers, implemented);
  } catch (err) {
    dispatcher.stop();
    throw errorWithCode((err as { code?: string }).code ?? 'EIO', `mounting ${mnt} failed: ${(err as Error).message}`);
  }

  let unmounting: Promise<void> | undefined;
  const handle: MountHandle = {
    mountpoint: mnt,
    closed,
    threads: () => {
      const [allocated, idle, started] = b.fuse_native_stats(ft);
      return { allocated, idle, started };
    },
    unmount: () =>
      (unmounting ??= (async () => {
        // Fails harmlessly when the fs is already gone (e.g. unmounted by hand).
        await fusermountUnmount(mnt).catch(() => undefined);
        b.fuse_native_unmount(mnt, ft);
      })()),
  };

  const initTimeoutMs = options.initTimeoutMs ?? 10000;
  let initTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      initialized,
      new Promise<never>((_, reject) => {
        initTimer = setTimeout(() => reject(errorWithCode('ETIMEDOUT', `no FUSE_INIT on ${mnt} within ${initTimeoutMs} ms`)), initTimeoutMs);
      }),
    ]);
  } catch (err) {
    await handle.unmount();
    throw err;
  } finally {
    clearTimeout(initTimer);
  }
  return handle;
}
