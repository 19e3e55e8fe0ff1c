// tarbox audit [filters] | audit stats | audit maintain: the audit log of a tenant (docs/audit.md).
// Each subcommand is one call of tarbox.audit_log, tarbox.audit_stats or tarbox.maintain_audit.
import { InvalidArgumentError, type Command } from 'commander';
import type postgres from 'postgres';
import type { Config } from '../config.js';
import { configFor, printJson, withSql, withTenant } from '../context.js';
import { tenantOption } from './fs.js';

export interface AuditEvent {
  event_time: Date; event_id: number; layer_id: number | null; operation: string; path: string | null;
  new_path: string | null; ino: number | null; bytes_read: number | null; bytes_written: number | null;
  result: string; errno: number | null; uid: number | null; gid: number | null; pid: number | null;
  node: string | null; interface: string; detail: string | null;
}

export interface AuditFilter {
  since?: Date; until?: Date; path?: string; operations?: string[]; result?: 'success' | 'error'; limit?: number;
}

export interface AuditStat { hour: Date; operation: string; events: number; errors: number }
export interface MaintenanceStep { action: 'created' | 'dropped'; partition_name: string; range_from: Date; range_to: Date }

export const auditLog = (sql: postgres.Sql<{}>, f: AuditFilter) => sql<AuditEvent[]>`
  select * from tarbox.audit_log(${f.since ?? null}, ${f.until ?? null}, ${f.path ?? null},
    ${f.operations ?? null}, ${f.result ?? null}, ${f.limit ?? 100})`;

export const auditStats = (sql: postgres.Sql<{}>, since: Date, until: Date | null) =>
  sql<AuditStat[]>`select * from tarbox.audit_stats(${since}, ${until})`;

/** [audit] into the database: partitioning (global) and, for a tenant, its level. */
export async function applyAuditConfig(sql: postgres.Sql<{}>, audit: Config['audit'], tenant?: string): Promise<void> {
  await sql`select tarbox.configure_audit(${audit.partition}, ${audit.retention_days})`;
  if (tenant === undefined) return;
  await sql.begin(async (tx) => {
    await tx`select set_config('tarbox.tenant_id', tarbox.tenant_id(${tenant})::text, true)`;
    await tx`select tarbox.set_audit_level(${audit.enabled ? audit.level : 'off'})`;
  });
}

export async function maintainAudit(sql: postgres.Sql<{}>, audit: Config['audit'], now?: Date): Promise<MaintenanceStep[]> {
  await applyAuditConfig(sql, audit);
  return sql<MaintenanceStep[]>`select * from tarbox.maintain_audit(${now ?? new Date()})`;
}

const UNITS: Record<string, number> = { second: 1e3, minute: 60e3, hour: 3600e3, day: 86400e3, week: 604800e3 };

/** "2 hours ago", "1 day ago" or an ISO time. */
export function parseTime(value: string, now = Date.now()): Date {
  const relative = /^(\d+)\s*(second|minute|hour|day|week)s?\s+ago$/i.exec(value.trim());
  if (relative) return new Date(now - Number(relative[1]) * UNITS[relative[2].toLowerCase()]);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) return new Date(value);
  throw new InvalidArgumentError(`expected a time like "1 day ago", "30 minutes ago" or an ISO time, got "${value}"`);
}

function parseLimit(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return Number(value);
}

function parseResult(value: string): 'success' | 'error' {
  if (value !== 'success' && value !== 'error') throw new InvalidArgumentError(`expected "success" or "error", got "${value}"`);
  return value;
}

function parseOperations(value: string): string[] {
  const ops = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (ops.length === 0 || ops.some((op) => !/^[a-z][a-z_]*$/.test(op))) {
    throw new InvalidArgumentError(`expected operation names separated by commas (write,rename), got "${value}"`);
  }
  return ops;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

export function formatEvents(events: AuditEvent[]): string[] {
  const who = (e: AuditEvent) => [e.uid === null ? '' : `uid=${e.uid}`, e.pid === null ? '' : `pid=${e.pid}`].filter(Boolean).join(' ');
  const what = (e: AuditEvent) => [
    e.new_path === null ? '' : `-> ${e.new_path}`,
    e.bytes_written === null ? '' : `written=${e.bytes_written}`,
    e.bytes_read === null ? '' : `read=${e.bytes_read}`,
    e.detail ?? '',
  ].filter(Boolean).join(' ');
  return table([['TIME', 'OPERATION', 'RESULT', 'PATH', 'INTERFACE', 'CALLER', 'DETAIL'],
    ...events.map((e) => [e.event_time.toISOString(), e.operation, e.result, e.path ?? '-', e.interface, who(e), what(e)])]);
}

export function formatStats(stats: AuditStat[]): string[] {
  const sum = (key: (s: AuditStat) => string) => {
    const totals = new Map<string, [number, number]>();
    for (const s of stats) {
      const [events, errors] = totals.get(key(s)) ?? [0, 0];
      totals.set(key(s), [events + s.events, errors + s.errors]);
    }
    return [...totals].map(([k, [events, errors]]) => [k, String(events), String(errors)]);
  };
  return [
    ...table([['OPERATION', 'EVENTS', 'ERRORS'], ...sum((s) => s.operation).sort((a, b) => a[0].localeCompare(b[0]))]),
    '',
    ...table([['HOUR (UTC)', 'EVENTS', 'ERRORS'], ...sum((s) => s.hour.toISOString().slice(0, 13) + ':00')]),
  ];
}

interface LogOptions {
  tenant?: string; since?: Date; until?: Date; path?: string; operation?: string[];
  result?: 'success' | 'error'; limit: number; json?: boolean;
}

export function register(program: Command): void {
  const audit = program.command('audit').description('the audit log: events, stats, partition maintenance');

  tenantOption(audit.command('log', { isDefault: true }))
    .description('events of a tenant, newest first (the default subcommand)')
    .option('--since <time>', '"1 day ago", "2 hours ago" or an ISO time', (v) => parseTime(v))
    .option('--until <time>', 'same forms as --since', (v) => parseTime(v))
    .option('--path <path>', 'a path and everything under it')
    .option('--operation <names>', 'operations, comma separated (write,rename)', parseOperations)
    .option('--result <result>', 'success or error', parseResult)
    .option('--limit <n>', 'at most n events', parseLimit, 100)
    .option('--json', 'print JSON')
    .action(async (opts: LogOptions, cmd: Command) => {
      const filter = { since: opts.since, until: opts.until, path: opts.path, operations: opts.operation, result: opts.result, limit: opts.limit };
      const events = await withTenant(configFor(cmd), opts.tenant, (sql) => auditLog(sql, filter));
      if (opts.json) return printJson(events);
      for (const line of formatEvents(events)) console.log(line);
    });

  tenantOption(audit.command('stats'))
    .description('operations per kind and per hour (UTC) of a tenant, with failures')
    .option('--since <time>', 'from (default: 1 day ago)', (v) => parseTime(v))
    .option('--until <time>', 'until (default: now)', (v) => parseTime(v))
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; since?: Date; until?: Date; json?: boolean }, cmd: Command) => {
      const since = opts.since ?? new Date(Date.now() - UNITS.day);
      const stats = await withTenant(configFor(cmd), opts.tenant, (sql) => auditStats(sql, since, opts.until ?? null));
      if (opts.json) return printJson(stats);
      for (const line of formatStats(stats)) console.log(line);
    });

  audit.command('maintain')
    .description('create audit partitions ahead and drop those past [audit] retention_days (for cron)')
    .option('--now <time>', 'act as if it were this time (ISO)', (v) => parseTime(v))
    .option('--json', 'print JSON')
    .action(async (opts: { now?: Date; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const steps = await withSql(config, (sql) => maintainAudit(sql, config.audit, opts.now));
      if (opts.json) return printJson(steps);
      if (steps.length === 0) console.log('audit partitions: nothing to do');
      for (const s of steps) {
        console.log(`${s.action} ${s.partition_name} [${s.range_from.toISOString()}, ${s.range_to.toISOString()})`);
      }
    });
}
