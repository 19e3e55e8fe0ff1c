// Each test file gets its own database cloned from the migrated template that scripts/run-tests.mjs
// prepared (TARBOX_TEST_ADMIN_URL, TARBOX_TEST_TEMPLATE). Cloning takes ~100 ms instead of
// re-running the migrations, and keeps files isolated so ava can run them in parallel.
import crypto from 'node:crypto';
import postgres from 'postgres';

export type Sql = postgres.Sql<{}>;

export interface FreshDatabase {
  url: string;
  sql: Sql;
  name: string;
  drop(): Promise<void>;
}

/** int8 as a JS number: every bigint tarbox returns (sizes, inode numbers, ids) fits in a double. */
export const bigintAsNumber = { to: 20, from: [20], serialize: (n: number | bigint) => String(n), parse: (s: string) => Number(s) };

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with "make test" (scripts/run-tests.mjs)`);
  return value;
}

export function urlFor(database: string): string {
  const url = new URL(env('TARBOX_TEST_ADMIN_URL'));
  url.pathname = `/${database}`;
  return url.toString();
}

let counter = 0;
// Clones in this process one at a time; other processes are handled by the 55006 retry below.
let queue: Promise<unknown> = Promise.resolve();

/** A short-lived admin connection: one left open would keep the ava worker from exiting. */
async function admin(statement: string): Promise<void> {
  const sql = postgres(env('TARBOX_TEST_ADMIN_URL'), { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export function client(url: string, options: postgres.Options<{}> = {}): Sql {
  return postgres(url, { max: 4, onnotice: () => {}, types: { bigint: bigintAsNumber }, ...options }) as unknown as Sql;
}

async function createDatabase(name: string, template: string): Promise<void> {
  // CREATE DATABASE ... TEMPLATE fails with 55006 while any other session is connected to the
  // template, e.g. another ava worker cloning it at the same moment: back off and retry.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin(`create database "${name}" template "${template}"`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 60) throw err;
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 1000) * (0.5 + Math.random())));
    }
  }
}

/**
 * A new database: a clone of the migrated template, or with `{ migrated: false }` an empty one
 * (from template0) for testing migrations themselves.
 */
export async function freshDatabase(opts: { migrated?: boolean } = {}): Promise<FreshDatabase> {
  const template = opts.migrated === false ? 'template0' : env('TARBOX_TEST_TEMPLATE');
  // The run's template name prefixes every clone, so the runner can drop leftovers of crashed tests.
  // ava may run several files as threads of one process: the pid alone is not unique.
  const name = `${env('TARBOX_TEST_TEMPLATE')}_${crypto.randomBytes(4).toString('hex')}_${++counter}`;
  const create = queue.then(() => createDatabase(name, template));
  queue = create.catch(() => {});
  await create;
  const url = urlFor(name);
  const sql = client(url);
  let dropped = false;
  return {
    url,
    sql,
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.end({ timeout: 5 });
      await admin(`drop database if exists "${name}" with (force)`);
    },
  };
}

/** A client whose every connection is bound to a newly created tenant (startup parameter tarbox.tenant_id). */
export async function withTenant(url: string, name: string): Promise<Sql & { tenantId: number }> {
  const setup = client(url, { max: 1 });
  try {
    const [{ tenant_id }] = await setup<{ tenant_id: number }[]>`select tenant_id from tarbox.create_tenant(${name})`;
    const sql = client(url, { connection: { 'tarbox.tenant_id': String(tenant_id) } });
    return Object.assign(sql, { tenantId: tenant_id });
  } finally {
    await setup.end({ timeout: 5 });
  }
}

/**
 * A client logged in as a tenant's own role, as an agent given the tenant's credentials
 * connects (docs/security.md). The admin client sets the role's password first.
 */
export async function tenantLogin(admin: Sql, url: string, tenant: string, options: postgres.Options<{}> = {}): Promise<Sql & { role: string }> {
  const password = crypto.randomBytes(12).toString('hex');
  const [{ role }] = await admin<{ role: string }[]>`select tarbox.set_tenant_password(${tenant}, ${password}) as role`;
  const login = new URL(url);
  login.username = encodeURIComponent(role);
  login.password = password;
  return Object.assign(client(login.toString(), { max: 1, ...options }), { role });
}
