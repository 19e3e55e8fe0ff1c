// What the shim logs itself (docs/audit.md). Every change is logged by its SQL function in
// the change's own transaction; two things never reach such a function and are logged here
// through tarbox.log_operation(s), in short transactions of their own:
// - failures (the failing transaction rolled back, and its row with it), with the errno;
// - at level "all", one row per open handle, made at release, with the bytes read and
//   written through it (logging every read would multiply the work). These summarize reads
//   and belong to no change's transaction, so they are sent in batches (tarbox.log_operations,
//   within HANDLE_BATCH_MS or HANDLE_BATCH_ROWS): one extra round trip per create measured
//   a 36% slowdown of create+unlink; batched, a row costs an insert. They are sent at unmount;
//   a crash of the mount process loses at most the last batch.
import type { Caller } from './fuse/binding.js';
import type { TransactionSql } from 'postgres';
import type { Sql } from './database.js';
import { Errno } from './errors.js';

export type AuditLevel = 'off' | 'writes' | 'all';

/** FUSE ops that change something, by the operation name their audit rows carry. */
const CHANGES: Readonly<Record<string, string>> = {
  mkdir: 'mkdir', mknod: 'mknod', symlink: 'symlink', link: 'link', unlink: 'unlink', rmdir: 'rmdir',
  rename: 'rename', chmod: 'chmod', chown: 'chown', utimens: 'utimens', truncate: 'truncate',
  ftruncate: 'truncate', create: 'create', write: 'write', setxattr: 'setxattr', removexattr: 'removexattr',
  // buffered data is committed at flush, fsync and release: their failures are failed writes
  flush: 'write', release: 'write', fsync: 'fsync',
};

/** Answers that are how a caller asks a question, not refusals: never logged. */
const QUESTIONS: Readonly<Record<string, number>> = {
  getattr: Errno.ENOENT, fgetattr: Errno.ENOENT, getxattr: Errno.ENODATA, readlink: Errno.EINVAL,
};

export interface HandleSummary {
  path: string;
  ino: number;
  caller: Caller;
  bytesRead: number;
  bytesWritten: number;
}

interface Entry {
  operation: string;
  caller: Caller;
  path?: string;
  newPath?: string;
  errno?: number;
  ino?: number;
  read?: number;
  written?: number;
  detail?: string;
}

const bytes = (path: string) => Buffer.from(path, 'latin1');

/**
 * An argument of a change call (a path as bytes, or an inode number) that also names the
 * calling process for the change's audit row: tarbox.with_caller sets it in the same
 * statement, before the function runs (no extra round trip, docs/audit.md).
 */
export function withCaller(sql: Sql | TransactionSql<Record<string, never>>, caller: Caller, value: Buffer | number) {
  const arg = typeof value === 'number' ? sql`${value}::bigint` : sql`${value}`;
  return sql`tarbox.with_caller(${arg}, ${caller.uid}, ${caller.gid}, ${caller.pid})`;
}
const base64 = (path: string) => bytes(path).toString('base64');

/**
 * Listings the mount answers, logged at level "all" (one row per call, batched): the mount's
 * counterpart of SQL's listing rows. getattr and lookups are not: the kernel's and the mount's
 * caches answer most stats without asking, and a row per stat would multiply the work.
 */
const LISTINGS: ReadonlySet<string> = new Set(['readdir', 'readlink', 'getxattr', 'listxattr']);

/** Native-mount ops that move data through an open handle: one row per call would be too many. */
const NATIVE_DATA_OPS: ReadonlySet<string> = new Set(['read', 'write', 'flush', 'fsync', 'release', 'fgetattr']);

/**
 * How often the shim re-reads its tenant's level: SQL (tarbox.set_audit_level) may change it
 * while mounted, and SQL functions follow it at once; the shim's own rows follow within this.
 */
export const LEVEL_REFRESH_MS = 2000;
export const HANDLE_BATCH_MS = 100;
const HANDLE_BATCH_ROWS = 500;

export class AuditLog {
  private current: AuditLevel;
  private checkedAt = Date.now();
  private reported = false;
  private batch: Record<string, unknown>[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly sql: Sql,
    level: AuditLevel,
    private readonly log: (msg: string) => void,
  ) {
    this.current = level;
  }

  get level(): AuditLevel {
    if (Date.now() - this.checkedAt > LEVEL_REFRESH_MS) {
      this.checkedAt = Date.now();
      this.sql`select tarbox.audit_level() as level`
        .then(([row]) => { this.current = row.level as AuditLevel; })
        .catch(() => {}); // keep the last known level; logging itself reports outages
    }
    return this.current;
  }

  /** A failed FUSE op; args as the op received them (paths first, except symlink's target). */
  async failure(op: string, caller: Caller, args: unknown[], errno: number): Promise<void> {
    if (this.level === 'off' || QUESTIONS[op] === errno) return;
    const change = CHANGES[op];
    if (this.level === 'writes' && change === undefined) return;
    const [first, second] = args;
    const path = op === 'symlink' ? second : first;
    await this.write({
      operation: change ?? op, caller, errno,
      path: typeof path === 'string' ? path : undefined,
      newPath: op === 'rename' || op === 'link' ? second as string : undefined,
      detail: op === 'symlink' ? bytes(first as string).toString('utf8') : undefined,
    });
  }

  /** The last word on an open handle (level "all"): one row per open..release, batched. */
  handleClosed(handle: HandleSummary): void {
    if (this.level !== 'all') return;
    this.enqueue({
      operation: 'open', path: handle.path ? base64(handle.path) : null, ino: handle.ino,
      bytes_read: handle.bytesRead, bytes_written: handle.bytesWritten,
      uid: handle.caller.uid, gid: handle.caller.gid, pid: handle.caller.pid,
    });
  }

  /** A listing the mount answered (see LISTINGS); `path` is the listed directory or file. */
  listed(op: string, caller: Caller, path: string): void {
    if (this.level !== 'all' || !LISTINGS.has(op)) return;
    this.enqueue({ operation: op, path: base64(path), uid: caller.uid, gid: caller.gid, pid: caller.pid });
  }

  /**
   * A completed operation on a native mount (errno 0 on success). It never reaches SQL, so
   * its row is batched like handle rows, with detail "native". Per-call data ops (read,
   * write, flush, fsync, release) are not logged: the create/open/truncate rows name the file.
   */
  native(op: string, caller: Caller, paths: string[], errno: number): void {
    const level = this.level;
    if (level === 'off' || NATIVE_DATA_OPS.has(op) || QUESTIONS[op] === errno) return;
    const change = CHANGES[op];
    if (level === 'writes' && change === undefined) return;
    this.enqueue({
      operation: change ?? op, path: paths[0] === undefined ? null : base64(paths[0]),
      new_path: (op === 'rename' || op === 'link') && paths[1] !== undefined ? base64(paths[1]) : null,
      errno: errno === 0 ? null : errno, uid: caller.uid, gid: caller.gid, pid: caller.pid, detail: 'native',
    });
  }

  private enqueue(row: Record<string, unknown>): void {
    this.batch.push(row);
    if (this.batch.length >= HANDLE_BATCH_ROWS) void this.flush();
    else this.batchTimer ??= setTimeout(() => void this.flush(), HANDLE_BATCH_MS);
  }

  /** Send the batched handle rows now (also at unmount); resolves when they are in. */
  flush(): Promise<void> {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const rows = this.batch;
    this.batch = [];
    if (rows.length > 0) {
      this.sending = this.sending.then(() => this.sql`select tarbox.log_operations(${this.sql.json(rows as never)})`
        .then(() => {}, (err: Error) => this.report('open', err)));
    }
    return this.sending;
  }

  private report(operation: string, err: unknown): void {
    // the operations' own results stand; an audit outage is reported once, not per op
    if (this.reported) return;
    this.reported = true;
    this.log(`tarbox: audit: could not log ${operation}: ${(err as Error)?.message ?? err}`);
  }

  private async write(e: Entry): Promise<void> {
    const opt = <T>(value: T | undefined) => value ?? null;
    try {
      await this.sql`
        select tarbox.log_operation(${e.operation}, ${e.path === undefined ? null : bytes(e.path)}, ${opt(e.errno)},
          ${e.newPath === undefined ? null : bytes(e.newPath)}, ${opt(e.ino)}, ${opt(e.read)}, ${opt(e.written)},
          ${e.caller.uid}, ${e.caller.gid}, ${e.caller.pid}, ${opt(e.detail)})`;
    } catch (err) {
      this.report(e.operation, err);
    }
  }
}
