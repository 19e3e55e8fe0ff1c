// The PostgreSQL a benchmark run uses: the configured server (DATABASE_URL, TARBOX_DATABASE_URL,
// tarbox.toml) or an embedded one started for the run in a temp dir, with its default settings.
// On it, a fresh database tarbox_bench_<pid>, migrated, with one tenant; dropped at the end.
import { freePort } from '../cli/proc.js';
import path from 'node:path';
import postgres from 'postgres';
import type { Config } from '../cli/config.js';
import { loadConfig } from '../cli/config.js';
import { migrateDatabase } from '../cli/migrate.js';
import { acquireDatabase, type Database } from '../cli/postgres-server.js';

export interface BenchDatabase {
  /** URL of the benchmark database. */
  url: string;
  name: string;
  embedded: boolean;
  serverVersion: string;
  /** Settings that decide what durability costs (reported, never changed). */
  settings: Record<string, string>;
  config: Config;
  /** Drop the database and stop an embedded server. */
  close(): Promise<void>;
}


export function withDatabaseName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function openBenchDatabase(runDir: string, tenant: string, log: (msg: string) => void): Promise<BenchDatabase> {
  // The user's configuration as the CLI reads it; only where an embedded server lives is ours.
  const probe = loadConfig();
  const env = { ...process.env };
  if (!probe.database.url) {
    env.TARBOX_DATABASE_DATA_DIR = path.join(runDir, 'pg');
    env.TARBOX_DATABASE_PORT = String(await freePort());
  }
  const config = loadConfig({ env });
  log(config.database.url ? 'using the configured PostgreSQL server' : `starting an embedded PostgreSQL in ${config.database.data_dir}`);
  const server: Database = await acquireDatabase(config);
  const name = `tarbox_bench_${process.pid}`;
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  let created = false;
  try {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.unsafe(`create database "${name}"`);
    created = true;
    const url = withDatabaseName(server.adminUrl, name);
    log(`migrating ${name}`);
    await migrateDatabase(url);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    let serverVersion = '';
    const settings: Record<string, string> = {};
    try {
      await sql`select tenant_id from tarbox.create_tenant(${tenant})`;
      [{ v: serverVersion }] = await sql<{ v: string }[]>`select version() as v`;
      const rows = await sql<{ name: string; setting: string; unit: string | null }[]>`
        select name, setting, unit from pg_settings
         where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers',
                        'max_wal_size', 'wal_compression', 'wal_sync_method', 'checkpoint_timeout')`;
      for (const row of rows) settings[row.name] = row.unit ? `${row.setting} (${row.unit})` : row.setting;
    } finally {
      await sql.end({ timeout: 2 });
    }
    let closed = false;
    return {
      url, name, embedded: server.embedded, serverVersion, settings, config,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await admin.unsafe(`drop database if exists "${name}" with (force)`);
        } finally {
          await admin.end({ timeout: 2 });
          await server.release();
        }
      },
    };
  } catch (err) {
    if (created) await admin.unsafe(`drop database if exists "${name}" with (force)`).catch(() => {});
    await admin.end({ timeout: 2 });
    await server.release();
    throw err;
  }
}

/** The mount's settings from the user's configuration, in the shape the mount fixture takes. */
export function mountOverrides(config: Config) {
  return {
    database: {
      pool_size: config.database.pool_size,
      connection_timeout: config.database.connection_timeout,
      statement_timeout: config.database.statement_timeout,
    },
    filesystem: { attr_timeout: config.filesystem.attr_timeout, entry_timeout: config.filesystem.entry_timeout },
    cache: { block_size: config.cache.block_size, metadata_size: config.cache.metadata_size },
    audit: { ...config.audit },
  };
}
