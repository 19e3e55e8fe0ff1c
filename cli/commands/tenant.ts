// tarbox tenant create|list|delete
import readline from 'node:readline/promises';
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, printJson, withSql } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { applyAuditConfig } from './audit.js';

export interface TenantInfo {
  tenant_id: number;
  name: string;
  display_name: string | null;
  created_at: Date;
  inodes: number;
  bytes: number;
}

/** The per-tenant storage settings from the configuration's [filesystem] section. */
export interface TenantLimits { block_size: number; max_file_size: number }

export async function createTenant(sql: postgres.Sql<{}>, name: string, displayName: string | undefined, limits: TenantLimits): Promise<TenantInfo> {
  const [t] = await sql<TenantInfo[]>`
    select * from tarbox.create_tenant(${name}, ${displayName ?? null}, ${limits.block_size}, ${limits.max_file_size})`;
  return t;
}

export async function listTenants(sql: postgres.Sql<{}>): Promise<TenantInfo[]> {
  return sql<TenantInfo[]>`select * from tarbox.list_tenants() order by name`;
}

export async function deleteTenant(sql: postgres.Sql<{}>, name: string): Promise<void> {
  await sql`select tarbox.delete_tenant(${name})`;
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function register(program: Command): void {
  const tenant = program.command('tenant').description('manage tenants');

  tenant
    .command('create <name>')
    .description('create a tenant')
    .option('--display-name <text>', 'human-readable name')
    .action(async (name: string, opts: { displayName?: string }, cmd: Command) => {
      const config = configFor(cmd);
      const t = await withSql(config, async (sql) => {
        const created = await createTenant(sql, name, opts.displayName, config.filesystem);
        await applyAuditConfig(sql, config.audit, name);
        return created;
      });
      console.log(`created tenant "${t.name}" (id ${t.tenant_id})`);
    });

  tenant
    .command('list')
    .description('list tenants')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await withSql(configFor(cmd), listTenants);
      if (opts.json) return printJson(rows);
      const table = [['NAME', 'ID', 'INODES', 'BYTES', 'CREATED', 'DISPLAY NAME'],
        ...rows.map((t) => [t.name, String(t.tenant_id), String(t.inodes), String(t.bytes), t.created_at.toISOString(), t.display_name ?? ''])];
      const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
    });

  tenant
    .command('delete <name>')
    .description('delete a tenant and all its files')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, opts: { yes?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      if (!opts.yes) {
        if (!process.stdin.isTTY) throw new CliError(`refusing to delete tenant "${name}" without --yes`, ExitCode.usage);
        if (!(await confirm(`delete tenant "${name}" and all its files? [y/N] `))) throw new CliError('aborted', ExitCode.runtime);
      }
      await withSql(config, (sql) => deleteTenant(sql, name));
      console.log(`deleted tenant "${name}"`);
    });
}
