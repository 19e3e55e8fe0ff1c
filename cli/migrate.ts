// Applies the committed graphile-migrate migrations (db/migrations/committed/*.sql) to a database.
// Settings come from the project's .gmrc (so the graphile-migrate CLI used while developing the
// schema and `tarbox init` agree); the connection string is always the one we were given.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger, migrate } from 'graphile-migrate';
import { getSettingsFromJSON } from 'graphile-migrate/dist/commands/_common.js';
import { clearAllPools } from 'graphile-migrate/dist/pgReal.js';
import postgres from 'postgres';

/** The repository root: this file is compiled to dist/cli/migrate.js. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface MigrateOptions {
  /** Defaults to .gmrc's migrationsFolder, else db/migrations; relative to the project root. */
  migrationsFolder?: string;
  /** Receives graphile-migrate's log lines (default: discarded). */
  log?: (line: string) => void;
}

export interface MigrateResult {
  /** Migrations applied by this call. */
  applied: number;
  /** Migrations recorded in the database afterwards. */
  total: number;
}

export async function migrateDatabase(url: string, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const gmrc = path.join(projectRoot, '.gmrc');
  const fromFile = fs.existsSync(gmrc) ? await getSettingsFromJSON(gmrc) : {};
  const folder = path.resolve(projectRoot, opts.migrationsFolder ?? fromFile.migrationsFolder ?? 'db/migrations');
  // graphile-migrate would create a missing folder; an absent schema is an error, not an empty one.
  if (!fs.existsSync(path.join(folder, 'committed'))) {
    throw new Error(`no committed migrations in ${path.join(folder, 'committed')}`);
  }
  const log = opts.log ?? (() => {});
  const before = await countMigrations(url);
  await migrate({
    ...fromFile,
    connectionString: url,
    migrationsFolder: folder,
    // graphile-migrate exits the process after logging a failing migration: say why first
    logger: new Logger(() => (level, message) => (level === 'error' ? process.stderr.write(`${message}\n`) : log(message))),
  });
  // graphile-migrate keeps its pool for a moment after use (and exits the process if that idle
  // connection is killed); close it now so the database can be used as a template right away.
  clearAllPools();
  const total = await countMigrations(url);
  return { applied: total - before, total };
}

async function countMigrations(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // A query naming a missing table fails at parse time, so look it up first.
    const [{ exists }] = await sql<{ exists: boolean }[]>`
      select to_regclass('graphile_migrate.migrations') is not null as exists`;
    if (!exists) return 0;
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from graphile_migrate.migrations`;
    return n;
  } finally {
    await sql.end({ timeout: 1 });
  }
}
