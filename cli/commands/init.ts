// tarbox init: make the database ready (start it if embedded, migrate) and create the default tenant.
import type { Command } from 'commander';
import type postgres from 'postgres';
import type { Config } from '../config.js';
import { applyAuditConfig } from './audit.js';
import { createTenant, type TenantLimits } from './tenant.js';
import { configFor, connect, withDatabase } from '../context.js';
import { migrateDatabase, type MigrateResult } from '../migrate.js';
import { hostPort } from '../postgres-server.js';

export interface InitResult {
  database: { embedded: boolean; address: string; dataDir: string | null };
  migrations: MigrateResult;
  tenant: { name: string; created: boolean };
}

export async function init(config: Config): Promise<InitResult> {
  return withDatabase(config, async (db) => {
    const migrations = await migrateDatabase(db.url);
    const sql = connect(db.url, config);
    try {
      const created = await ensureTenant(sql, config.filesystem.default_tenant, config.filesystem);
      await applyAuditConfig(sql, config.audit, config.filesystem.default_tenant);
      return {
        database: { embedded: db.embedded, address: hostPort(db.url), dataDir: db.embedded ? config.database.data_dir : null },
        migrations,
        tenant: { name: config.filesystem.default_tenant, created },
      };
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
}

async function ensureTenant(sql: postgres.Sql<{}>, name: string, limits: TenantLimits): Promise<boolean> {
  const existing = await sql`select 1 from tarbox.list_tenants() where name = ${name}`;
  if (existing.length > 0) return false;
  await createTenant(sql, name, undefined, limits);
  return true;
}

export function register(program: Command): void {
  program
    .command('init')
    .description('start/migrate the database and create the default tenant')
    .action(async (_opts, cmd: Command) => {
      const r = await init(configFor(cmd));
      const where = r.database.embedded ? `embedded PostgreSQL at ${r.database.address} (data in ${r.database.dataDir})` : `PostgreSQL at ${r.database.address}`;
      console.log(`database: ${where}`);
      console.log(`migrations: ${r.migrations.applied > 0 ? `applied ${r.migrations.applied}` : 'up to date'} (${r.migrations.total} in total)`);
      console.log(`tenant "${r.tenant.name}": ${r.tenant.created ? 'created' : 'already exists'}`);
    });
}
