// tarbox tenant create|list|delete|credentials|quota
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import readline from 'node:readline/promises';
import type { Command } from 'commander';
import type postgres from 'postgres';
import { parseSize } from '../config.js';
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
  /** Quota limits (null: none). */
  max_bytes: number | null;
  max_inodes: number | null;
  /** The tenant's PostgreSQL login roles (docs/security.md). */
  roles: string[];
}

/** How an agent logs in: the tenant's role, and a URL (with the password only right after it was set). */
export interface Credentials { tenant: string; role: string; url: string; password: string | null }

/** The per-tenant storage settings from the configuration's [filesystem] section. */
export interface TenantLimits { block_size: number; max_file_size: number }

export async function createTenant(sql: postgres.Sql<{}>, name: string, displayName: string | undefined, limits: TenantLimits): Promise<TenantInfo> {
  await sql`select tarbox.create_tenant(${name}, ${displayName ?? null}, ${limits.block_size}, ${limits.max_file_size})`;
  return (await listTenants(sql)).find((t) => t.name === name)!;
}

export async function listTenants(sql: postgres.Sql<{}>): Promise<TenantInfo[]> {
  return sql<TenantInfo[]>`select * from tarbox.tenant_usage() order by name`;
}

export async function deleteTenant(sql: postgres.Sql<{}>, name: string, opts: { keepAudit?: boolean; force?: boolean } = {}): Promise<void> {
  await sql`select tarbox.delete_tenant(${name}, ${opts.keepAudit ?? false}, ${opts.force ?? false})`;
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, as PostgreSQL stores it): the server gets this
 * instead of the password, so the password never appears in its memory or logs.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

function loginUrl(adminUrl: string, role: string, password: string | null): string {
  const url = new URL(adminUrl);
  url.username = encodeURIComponent(role);
  url.password = password === null ? '' : encodeURIComponent(password);
  return url.toString();
}

/** The tenant's login; with rotate, a new generated password is set and returned (once). */
export async function credentials(sql: postgres.Sql<{}>, adminUrl: string, name: string, rotate: boolean): Promise<Credentials> {
  let password: string | null = null;
  let role: string;
  if (rotate) {
    password = randomBytes(24).toString('base64url');
    [{ role }] = await sql<{ role: string }[]>`select tarbox.set_tenant_password(${name}, ${scramVerifier(password)}) as role`;
  } else {
    [{ role }] = await sql<{ role: string }[]>`select tarbox.tenant_role(${name}) as role`;
  }
  return { tenant: name, role, url: loginUrl(adminUrl, role, password), password };
}

/** Set a tenant's limits; undefined keeps a limit as it is, null removes it. */
export async function setQuota(sql: postgres.Sql<{}>, name: string, limits: { bytes?: number | null; inodes?: number | null }): Promise<TenantInfo> {
  const current = (await listTenants(sql)).find((t) => t.name === name);
  if (!current) await sql`select tarbox.tenant_id(${name})`; // raises TBTNT
  const bytes = limits.bytes === undefined ? current!.max_bytes : limits.bytes;
  const inodes = limits.inodes === undefined ? current!.max_inodes : limits.inodes;
  await sql`select tarbox.set_quota(${name}, ${bytes}, ${inodes})`;
  return (await listTenants(sql)).find((t) => t.name === name)!;
}

/** "none" removes a limit; otherwise a size ("10GiB", "500M") or, for inodes, a count. */
function parseLimit(value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  try {
    return parseSize(value);
  } catch (err) {
    throw new CliError(`bad limit ${JSON.stringify(value)}: ${(err as Error).message} or "none"`, ExitCode.usage);
  }
}

function printCredentials(c: Credentials, json: boolean | undefined): void {
  if (json) return printJson(c);
  console.log(`role: ${c.role}`);
  console.log(`connect: ${c.url}`);
  if (c.password !== null) console.log(`the password is shown only now; "tarbox tenant credentials ${c.tenant} --rotate" replaces it`);
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

const showLimit = (n: number | null) => (n === null ? '-' : String(n));

export function register(program: Command): void {
  const tenant = program.command('tenant').description('manage tenants');

  tenant
    .command('create <name>')
    .description('create a tenant and its login role; prints the connection string for its agent')
    .option('--display-name <text>', 'human-readable name')
    .option('--no-password', 'set no password (for servers that trust local connections)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { displayName?: string; password: boolean; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const { t, login } = await withSql(config, async (sql, db) => {
        const t = await createTenant(sql, name, opts.displayName, config.filesystem);
        await applyAuditConfig(sql, config.audit, name);
        return { t, login: await credentials(sql, db.url, name, opts.password) };
      });
      if (opts.json) return printJson({ ...t, ...login });
      console.log(`created tenant "${t.name}" (id ${t.tenant_id})`);
      printCredentials(login, false);
    });

  tenant
    .command('credentials <name>')
    .description('show the login role and connection string of a tenant; --rotate sets a new password')
    .option('--rotate', 'generate a new password (the old one stops working)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { rotate?: boolean; json?: boolean }, cmd: Command) => {
      const login = await withSql(configFor(cmd), (sql, db) => credentials(sql, db.url, name, opts.rotate ?? false));
      printCredentials(login, opts.json);
    });

  tenant
    .command('quota <name>')
    .description('set a tenant\'s limits on stored bytes and inodes ("none" removes one)')
    .option('--bytes <size>', 'limit on stored bytes after dedup, e.g. 10GiB')
    .option('--inodes <count>', 'limit on files, directories and links')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { bytes?: string; inodes?: string; json?: boolean }, cmd: Command) => {
      const limits = { bytes: parseLimit(opts.bytes), inodes: parseLimit(opts.inodes) };
      const t = await withSql(configFor(cmd), (sql) => setQuota(sql, name, limits));
      if (opts.json) return printJson(t);
      console.log(`tenant "${t.name}": bytes ${t.bytes} of ${showLimit(t.max_bytes)}, inodes ${t.inodes} of ${showLimit(t.max_inodes)}`);
    });

  tenant
    .command('list')
    .description('list tenants with their usage and limits')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await withSql(configFor(cmd), listTenants);
      if (opts.json) return printJson(rows);
      const table = [['NAME', 'ID', 'INODES', 'MAX INODES', 'BYTES', 'MAX BYTES', 'CREATED', 'DISPLAY NAME'],
        ...rows.map((t) => [t.name, String(t.tenant_id), String(t.inodes), showLimit(t.max_inodes), String(t.bytes),
          showLimit(t.max_bytes), t.created_at.toISOString(), t.display_name ?? ''])];
      const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
    });

  tenant
    .command('delete <name>')
    .description('delete a tenant: all its files, layers, roles and audit rows')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--keep-audit', 'keep the tenant\'s audit rows')
    .option('--force', 'delete even while mounted or logged in (those sessions are terminated)')
    .action(async (name: string, opts: { yes?: boolean; keepAudit?: boolean; force?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      if (!opts.yes) {
        if (!process.stdin.isTTY) throw new CliError(`refusing to delete tenant "${name}" without --yes`, ExitCode.usage);
        if (!(await confirm(`delete tenant "${name}" and all its files? [y/N] `))) throw new CliError('aborted', ExitCode.runtime);
      }
      await withSql(config, (sql) => deleteTenant(sql, name, opts));
      console.log(`deleted tenant "${name}"`);
    });
}
