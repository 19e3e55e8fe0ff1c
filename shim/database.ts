// Connections to PostgreSQL for one mounted tenant, and the one wrapper every SQL call
// goes through: retries of serialization failures and deadlocks with bounded backoff.
// Errors leave here as they came (with their SQLSTATE); shim/errors.ts maps them.

import postgres from 'postgres';
import { RETRYABLE_SQLSTATES } from './errors.js';

export type Sql = postgres.Sql<Record<string, never>>;

export interface DatabaseOptions {
  url: string;
  tenant: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  connectTimeoutSeconds?: number;
  applicationName?: string;
  /** audit context of every row these connections log (docs/audit.md) */
  auditNode?: string;
  /** Tags this mount's cache notices (session setting tarbox.origin), so it can skip its own. */
  origin?: string;
}

/** bigint columns arrive as JS numbers: sizes, offsets and inode numbers stay below 2^53. */
const numberTypes = {
  bigint: {
    to: 20,
    from: [20],
    serialize: (x: number | bigint) => String(x),
    parse: (x: string) => Number(x),
  },
};

export function connect(url: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  return postgres(url, {
    onnotice: () => {},
    types: numberTypes,
    ...options,
  }) as unknown as Sql;
}

const MAX_ATTEMPTS = 6;

/** Run fn, retrying transient conflicts (40001, 40P01) with jittered exponential backoff. */
export async function withRetry<T>(fn: () => Promise<T>, extraRetryable?: (err: unknown) => boolean): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      const retryable = (code !== undefined && RETRYABLE_SQLSTATES.has(code)) || (extraRetryable?.(err) ?? false);
      if (!retryable || attempt >= MAX_ATTEMPTS) throw err;
      const delay = Math.min(200, 2 ** attempt) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * The connections of one mount. `sql` carries metadata calls (pipelined); bulk data gets
 * connections of its own because COPY occupies a connection for its whole duration (and
 * a large COPY TO STDOUT was seen to stall the next query on a shared connection).
 */
export class TenantDatabase {
  private constructor(
    readonly sql: Sql,
    readonly data: Sql,
    readonly tenantId: number,
    private readonly options: DatabaseOptions,
  ) {}

  /**
   * A short-lived connection as the admin login, bound to this tenant: for what a tenant role
   * may not do but the mount does on the operator's behalf (the audit level and partition
   * maintenance from the config, docs/security.md). Never used on the syscall path.
   */
  async asAdmin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const admin = connect(this.options.url, {
      max: 1,
      connect_timeout: this.options.connectTimeoutSeconds ?? 10,
      connection: {
        'tarbox.tenant_id': String(this.tenantId),
        application_name: `tarbox-mount-admin:${this.tenantId}`,
        'tarbox.interface': 'fuse',
        'tarbox.node': this.options.auditNode ?? '',
      },
    });
    try {
      return await fn(admin);
    } finally {
      await admin.end({ timeout: 1 });
    }
  }

  static async open(options: DatabaseOptions): Promise<TenantDatabase> {
    const admin = connect(options.url, { max: 1, connect_timeout: options.connectTimeoutSeconds ?? 10 });
    let tenantId: number;
    let role: string;
    try {
      const [row] = await admin`select tarbox.tenant_id(${options.tenant}) as id, tarbox.tenant_role(${options.tenant}) as role`;
      tenantId = row.id as number;
      role = row.role as string;
    } finally {
      await admin.end({ timeout: 1 });
    }
    const connection = {
      // Least privilege: every statement runs as the tenant's role, so row-level security
      // holds even if the shim had a bug (docs/security.md). The admin login only opens it.
      role,
      'tarbox.tenant_id': String(tenantId),
      // tarbox.delete_tenant recognises a live mount by this name (docs/security.md)
      application_name: options.applicationName ?? `tarbox-mount:${tenantId}`,
      statement_timeout: String(options.statementTimeoutMs ?? 10000),
      // Commits become visible at once but reach disk within wal_writer_delay; fsync()
      // makes them durable (tarbox.fsync commits synchronously). See docs/architecture.md.
      synchronous_commit: 'off',
      // read by the audit log once per row, sent once per connection
      'tarbox.interface': 'fuse',
      'tarbox.node': options.auditNode ?? '',
      ...(options.origin ? { 'tarbox.origin': options.origin } : {}),
    } as Record<string, string>;
    const common = { connect_timeout: options.connectTimeoutSeconds ?? 10, connection };
    const sql = connect(options.url, { ...common, max: options.poolSize ?? 4 });
    const data = connect(options.url, { ...common, max: 2 });
    // postgres.js learns array types when a client's first connection starts, but types the
    // parameters of a query when it is made: a bytea[] sent before that went out as bytea
    // ("read_chunks(bytea) does not exist"). One round trip per client settles it, and
    // checks the tenant's role now rather than at the first syscall.
    try {
      await Promise.all([sql`select 1`, data`select 1`]);
    } catch (err) {
      await Promise.all([sql.end({ timeout: 1 }), data.end({ timeout: 1 })]);
      throw err;
    }
    return new TenantDatabase(sql, data, tenantId, options);
  }

  async close(): Promise<void> {
    await Promise.all([this.sql.end({ timeout: 2 }), this.data.end({ timeout: 2 })]);
  }
}
