// The one place where database and internal errors become errno values.
//
// SQL functions raise documented SQLSTATEs (docs/sql-api.md); this table maps them to the
// errno the kernel should see. Anything unknown becomes EIO and is logged once per code,
// so a new failure mode is visible instead of silently mistranslated.

export const Errno = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EFBIG: 27, ENOSPC: 28, EROFS: 30, EMLINK: 31,
  ERANGE: 34, ENAMETOOLONG: 36, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61, E2BIG: 7,
  EOPNOTSUPP: 95, ETIMEDOUT: 110, EDQUOT: 122,
} as const;

/** SQLSTATE raised by Tarbox's SQL functions (or PostgreSQL itself) -> errno. */
export const SQLSTATE_ERRNO: Readonly<Record<string, number>> = {
  TBNOE: Errno.ENOENT,
  TBEXI: Errno.EEXIST,
  TBNDR: Errno.ENOTDIR,
  TBISD: Errno.EISDIR,
  TBNEM: Errno.ENOTEMPTY,
  TBINV: Errno.EINVAL,
  TBNTL: Errno.ENAMETOOLONG,
  TBFBG: Errno.EFBIG,
  TBPRM: Errno.EPERM,
  TBACC: Errno.EACCES,
  TBNOD: Errno.ENODATA,
  TBRNG: Errno.ERANGE,
  TBLOP: Errno.ELOOP,
  TBXDV: Errno.EXDEV,
  TBBSY: Errno.EBUSY,
  TBNSP: Errno.EOPNOTSUPP,
  TBBIG: Errno.E2BIG,
  TBROF: Errno.EROFS,
  TBQTA: Errno.EDQUOT,
  TBNSC: Errno.ENOSPC,
  '23505': Errno.EEXIST,      // unique_violation: lost a race to create the same name
  '42501': Errno.EACCES,      // insufficient_privilege
  '57014': Errno.EIO,         // query_canceled (statement_timeout): the op took too long
};

/** SQLSTATEs worth retrying: the transaction lost a race and can simply run again. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** An error that already carries the errno the kernel should see. */
export class FsError extends Error {
  constructor(readonly errno: number, message?: string) {
    super(message ?? `errno ${errno}`);
  }
}

const reported = new Set<string>();

export function errnoOf(err: unknown, log: (msg: string) => void = console.error): number {
  if (err instanceof FsError) return err.errno;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code in SQLSTATE_ERRNO) return SQLSTATE_ERRNO[code];
  const key = typeof code === 'string' ? code : String((err as Error)?.message ?? err);
  if (!reported.has(key)) {
    reported.add(key);
    log(`tarbox: unexpected error mapped to EIO: ${key}: ${(err as Error)?.message ?? err}`);
  }
  return Errno.EIO;
}
