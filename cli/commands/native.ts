// tarbox native add|list|remove: a tenant's own native mounts (host directories served at a
// path of its tree), stored in PostgreSQL; the config file's [[native_mounts]] apply to every
// tenant. The tenant's mounts pick changes up at once (NOTIFY). docs/native-mounts.md.
import { InvalidArgumentError, type Command } from 'commander';
import type postgres from 'postgres';
import type { Config } from '../config.js';
import { configFor, printJson, withTenant } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { checkNativeMount, PRIORITY_RANGE, resolveNativeMounts, type NativeMountSpec } from '../../shim/native-mounts.js';
import { tenantOption } from './fs.js';

export interface NativeMountRow extends NativeMountSpec { created_at: Date }

export interface NativeMountListing extends NativeMountSpec {
  /** config: the file's, for every tenant; tenant: this tenant's own. */
  origin: 'config' | 'tenant';
  /** The source with {tenant} and {tenant_id} expanded. */
  host_path: string;
  /** active, or shadowed by a definition of the same path with a higher priority. */
  state: 'active' | 'shadowed';
}

export async function addNativeMount(sql: postgres.Sql<{}>, config: Config, spec: NativeMountSpec): Promise<NativeMountRow> {
  const bad = checkNativeMount(spec);
  if (bad) throw new CliError(`native mount ${spec.path}: ${bad}`, ExitCode.usage);
  if (config.native_mounts.some((m) => m.path === spec.path && m.priority === spec.priority)) {
    throw new CliError(`native mount ${spec.path} with priority ${spec.priority} is defined in the config file: `
      + 'which one wins would be ambiguous (choose another priority)', ExitCode.exists);
  }
  const [row] = await sql<NativeMountRow[]>`
    select * from tarbox.add_native_mount(${spec.path}, ${spec.source}, ${spec.mode}, ${spec.shared}, ${spec.priority})`;
  return row;
}

export async function listNativeMounts(sql: postgres.Sql<{}>, config: Config, tenant: string): Promise<NativeMountListing[]> {
  const rows = await sql<NativeMountRow[]>`select * from tarbox.list_native_mounts()`;
  const [{ id }] = await sql<{ id: number }[]>`select tarbox.tenant_id(${tenant}) as id`;
  const { mounts, shadowed } = resolveNativeMounts(config.native_mounts, rows, tenant, id);
  const row = (state: 'active' | 'shadowed') => (m: (typeof mounts)[number]): NativeMountListing => ({
    path: m.path, source: m.source, mode: m.mode, shared: m.shared, priority: m.priority, origin: m.origin, host_path: m.hostPath, state,
  });
  return [...mounts.map(row('active')), ...shadowed.map(row('shadowed'))]
    .sort((a, b) => a.path.localeCompare(b.path) || b.priority - a.priority);
}

export async function removeNativeMount(sql: postgres.Sql<{}>, path: string, priority: number | null): Promise<number> {
  const [{ removed }] = await sql<{ removed: number }[]>`select tarbox.remove_native_mount(${path}, ${priority}) as removed`;
  return removed;
}

function parsePriority(value: string): number {
  if (!/^-?\d{1,7}$/.test(value) || Math.abs(Number(value)) > PRIORITY_RANGE) {
    throw new InvalidArgumentError(`expected an integer from ${-PRIORITY_RANGE} to ${PRIORITY_RANGE}, got "${value}"`);
  }
  return Number(value);
}

function parseMountMode(value: string): 'ro' | 'rw' {
  if (value !== 'ro' && value !== 'rw') throw new InvalidArgumentError(`expected ro or rw, got "${value}"`);
  return value;
}

export function register(program: Command): void {
  const native = program.command('native').description('native mounts: host directories served at a path of a tenant\'s tree');

  tenantOption(native.command('add <path> <source>'))
    .description('serve <path> from the host directory <source> ({tenant} and {tenant_id} expand)')
    .option('-m, --mode <mode>', 'ro or rw', parseMountMode, 'ro')
    .option('--shared', 'a read-write source without placeholder is written by every tenant that has it')
    .option('-p, --priority <n>', 'among definitions of the same path, the highest priority wins', parsePriority, 0)
    .option('--json', 'print JSON')
    .action(async (path: string, source: string,
      opts: { tenant?: string; mode: 'ro' | 'rw'; shared?: boolean; priority: number; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const spec = { path, source, mode: opts.mode, shared: opts.shared ?? false, priority: opts.priority };
      const row = await withTenant(config, opts.tenant, (sql) => addNativeMount(sql, config, spec));
      if (opts.json) return printJson(row);
      console.log(`native mount ${row.path} -> ${row.source} (${row.mode}, priority ${row.priority}); mounts of the tenant pick it up at once`);
    });

  tenantOption(native.command('list'))
    .description('the native mounts of a tenant: the config file\'s and its own (layers do not snapshot them)')
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const tenant = opts.tenant ?? config.filesystem.default_tenant;
      const rows = await withTenant(config, tenant, (sql) => listNativeMounts(sql, config, tenant));
      if (opts.json) return printJson(rows);
      const table = [['PATH', 'SOURCE', 'MODE', 'PRIORITY', 'FROM', 'STATE'],
        ...rows.map((r) => [r.path, r.host_path, r.mode, String(r.priority), r.origin, r.state])];
      const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
    });

  tenantOption(native.command('remove <path>'))
    .description('remove a tenant\'s native mount of <path> (every priority unless --priority)')
    .option('-p, --priority <n>', 'only the definition with this priority', parsePriority)
    .action(async (path: string, opts: { tenant?: string; priority?: number }, cmd: Command) => {
      const removed = await withTenant(configFor(cmd), opts.tenant, (sql) => removeNativeMount(sql, path, opts.priority ?? null));
      console.log(`removed ${removed} native mount${removed === 1 ? '' : 's'} of ${path}`);
    });
}
