// Every failure the CLI reports goes through describeError(): one line of text and one of the
// documented exit codes (docs/cli.md). SQL errors carry the custom SQLSTATEs raised in db/.

export const ExitCode = {
  ok: 0,
  /** Any other runtime failure (including filesystem errors not listed below). */
  runtime: 1,
  /** Bad arguments, bad configuration, invalid path or name (EINVAL, ENAMETOOLONG). */
  usage: 2,
  /** No such file, directory, tenant or mountpoint (ENOENT, ENODATA, unknown tenant). */
  notFound: 3,
  /** PostgreSQL unreachable, refusing the login, too old or not initialised. */
  database: 4,
  /** Already exists (EEXIST, unique violation). */
  exists: 5,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  constructor(message: string, readonly exitCode: number = ExitCode.runtime) {
    super(message);
  }
}

/** The custom SQLSTATEs raised by the tarbox schema, with the errno each stands for. */
export const SQLSTATE_ERRNO: Record<string, string> = {
  TBNOE: 'ENOENT',
  TBEXI: 'EEXIST',
  TBNDR: 'ENOTDIR',
  TBISD: 'EISDIR',
  TBNEM: 'ENOTEMPTY',
  TBINV: 'EINVAL',
  TBNTL: 'ENAMETOOLONG',
  TBFBG: 'EFBIG',
  TBPRM: 'EPERM',
  TBACC: 'EACCES',
  TBNOD: 'ENODATA',
  TBRNG: 'ERANGE',
  TBLOP: 'ELOOP',
  TBXDV: 'EXDEV',
  TBBSY: 'EBUSY',
  TBQTA: 'EDQUOT',
  TBNSC: 'ENOSPC',
};

const ERRNO_EXIT: Record<string, number> = {
  ENOENT: ExitCode.notFound,
  ENODATA: ExitCode.notFound,
  EEXIST: ExitCode.exists,
  EINVAL: ExitCode.usage,
  ENAMETOOLONG: ExitCode.usage,
};

// Errors from sockets and from postgres.js while connecting, as short reasons.
const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  CONNECT_TIMEOUT: 'timed out',
  CONNECTION_CLOSED: 'connection closed',
  CONNECTION_ENDED: 'connection ended',
  CONNECTION_DESTROYED: 'connection destroyed',
};

interface PgLikeError {
  code?: string;
  message?: string;
  errno?: string | number;
}

/** A short reason for a failed connection attempt, or null when the error is not about connecting. */
export function connectionFailureReason(err: unknown): string | null {
  const e = err as PgLikeError;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (NETWORK_REASONS[code]) return NETWORK_REASONS[code];
  // Class 28 (login refused), 3D000 (no such database), 57P03 (starting up / shutting down).
  if (/^28/.test(code) || code === '3D000' || code === '57P03' || code === '53300') {
    return e.message ?? code;
  }
  return null;
}

export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  const e = err as PgLikeError;
  const code = typeof e?.code === 'string' ? e.code : '';
  const text = oneLine(e?.message ?? String(err));

  if (err instanceof Error && err.name === 'ConfigError') return { message: text, exitCode: ExitCode.usage };

  const errno = SQLSTATE_ERRNO[code];
  if (errno) return { message: `${text} (${errno})`, exitCode: ERRNO_EXIT[errno] ?? ExitCode.runtime };
  if (code === 'TBTNT') return { message: text, exitCode: ExitCode.notFound };
  if (code === 'TBNTS') return { message: `${text} (no tenant bound to the session)`, exitCode: ExitCode.runtime };
  if (code === '23505') return { message: text, exitCode: ExitCode.exists };
  if (code === '57014') return { message: `statement timed out or was cancelled: ${text}`, exitCode: ExitCode.runtime };
  if (code === '3F000' || (code === '42883' && /tarbox\./.test(text))) {
    return { message: `the database has no tarbox schema (run "tarbox init"): ${text}`, exitCode: ExitCode.database };
  }
  const reason = connectionFailureReason(err);
  if (reason) return { message: `lost connection to PostgreSQL: ${reason}`, exitCode: ExitCode.database };
  if (e?.code === 'EPIPE') return { message: 'output closed', exitCode: ExitCode.runtime };
  return { message: text, exitCode: ExitCode.runtime };
}

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
