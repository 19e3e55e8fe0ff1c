// What most commands need: the configuration, a database (acquired and released around the work)
// and a postgres.js client bound to a tenant.
import os from 'node:os';
import postgres from 'postgres';
import type { Command } from 'commander';
import { loadConfig, type Config } from './config.js';
import { acquireDatabase, type Database } from './postgres-server.js';
import { SQLSTATE_ERRNO } from '../shim/errors.js';

export interface GlobalOptions {
  config?: string;
  databaseUrl?: string;
}

export function configFor(cmd: Command): Config {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  return loadConfig({ configPath: opts.config, databaseUrl: opts.databaseUrl });
}

/** postgres.js returns int8 as strings; every bigint tarbox returns (sizes, inodes) fits in a double. */
const bigintAsNumber = { to: 20, from: [20], serialize: (n: number | bigint) => String(n), parse: (s: string) => Number(s) };

export function connect(url: string, config: Config, options: postgres.Options<{}> = {}): postgres.Sql<{}> {
  return postgres(url, {
    max: 1, // one connection, so session state (the bound tenant) holds for every query
    connect_timeout: config.database.connection_timeout,
    onnotice: () => {},
    types: { bigint: bigintAsNumber },
    connection: { application_name: 'tarbox-cli', ...auditContext() },
    ...options,
  }) as unknown as postgres.Sql<{}>;
}

/** Who the audit log names for this CLI's changes: sent once, as connection parameters. */
function auditContext(): Record<string, string> {
  return {
    'tarbox.interface': 'cli',
    'tarbox.node': os.hostname(),
    'tarbox.uid': String(process.getuid?.() ?? ''),
    'tarbox.gid': String(process.getgid?.() ?? ''),
    'tarbox.pid': String(process.pid),
  };
}

export async function withDatabase<T>(config: Config, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await acquireDatabase(config);
  try {
    return await fn(db);
  } finally {
    await db.release();
  }
}

export async function withSql<T>(config: Config, fn: (sql: postgres.Sql<{}>, db: Database) => Promise<T>): Promise<T> {
  return withDatabase(config, async (db) => {
    const sql = connect(db.url, config);
    try {
      return await fn(sql, db);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
}

/** What a command does, for the audit log's row if it fails (its transaction rolled back). */
export interface AuditedOperation { operation: string; path?: string }

/**
 * Runs fn with a client whose session is bound to the tenant (tarbox.use_tenant raises TBTNT if
 * unknown). A filesystem error of fn is logged as a failed `audited` operation with its errno.
 */
export async function withTenant<T>(config: Config, tenant: string | undefined, fn: (sql: postgres.Sql<{}>) => Promise<T>,
  audited?: AuditedOperation): Promise<T> {
  return withSql(config, async (sql) => {
    await sql`select tarbox.use_tenant(${tenant ?? config.filesystem.default_tenant})`;
    try {
      return await fn(sql);
    } catch (err) {
      const errno = SQLSTATE_ERRNO[(err as { code?: string }).code ?? ''];
      if (audited && errno !== undefined) {
        const path = audited.path === undefined ? null : Buffer.from(fsPath(audited.path), 'utf8');
        await sql`select tarbox.log_operation(${audited.operation}, ${path}, ${errno})`.catch(() => {});
      }
      throw err;
    }
  });
}

/** Paths inside a tenant are absolute; "a/b" means "/a/b". */
export function fsPath(p: string): string {
  return p.startsWith('/') ? p : `/${p}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
