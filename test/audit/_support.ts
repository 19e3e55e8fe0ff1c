// Shared by the SQL audit tests: the tenant's events, what a step adds, a tenant at a level.
import type { ExecutionContext } from 'ava';
import type { Env, Fs } from '../db/_support.js';

export interface Event {
  operation: string; path: string | null; new_path: string | null; ino: number | null; result: string;
  errno: number | null; bytes_read: number | null; bytes_written: number | null; uid: number | null;
  gid: number | null; pid: number | null; node: string | null; interface: string; detail: string | null;
  layer_id: number;
}

/** Every event of the tenant after its creation, oldest first. */
export async function events(fs: Fs): Promise<Event[]> {
  const rows = await fs.sql<Event[]>`
    select * from tarbox.audit_log(p_limit => null) where operation <> 'tenant_create'`;
  return rows.reverse();
}

/** The events that fn adds. */
export async function added(fs: Fs, fn: () => Promise<unknown>): Promise<Event[]> {
  const before = (await events(fs)).length;
  await fn();
  return (await events(fs)).slice(before);
}

/** A new tenant at the given audit level. */
export async function auditTenant(env: Env, t: ExecutionContext, level = 'writes'): Promise<Fs> {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.set_audit_level(${level})`;
  return fs;
}
