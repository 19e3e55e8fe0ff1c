// Tenant lifecycle from the CLI: create prints a working connection string, credentials
// rotate, quotas and usage, delete refuses while the tenant is in use, and leaves no row in
// any table and no role behind (--keep-audit keeps the audit rows).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import postgres from 'postgres';
import { client, freshDatabase, type FreshDatabase, type Sql } from '../helpers/database.js';
import { cliRunner, failsWith, text } from '../helpers/cli.js';
import { allowTime, finish, mountFresh, type Mount } from '../helpers/mount.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-sec-'));
let db: FreshDatabase;
let m: Mount | undefined;

test.before(async () => {
  db = await freshDatabase();
});
test.after.always(async (t) => {
  await finish(t, m);
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

interface Created { tenant_id: number; name: string; role: string; url: string; password: string | null }

async function login(url: string): Promise<Sql> {
  return client(url, { max: 1 });
}

async function refusesLogin(t: { is(a: unknown, b: unknown, m?: string): void }, url: string): Promise<void> {
  const sql = await login(url);
  try {
    await sql`select 1`;
    t.is('logged in', 'refused');
  } catch (err) {
    t.is((err as { code?: string }).code, '28P01', (err as Error).message); // invalid_password
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Rows of every tarbox_private table with a tenant_id that belong to the tenant. */
async function rowsOf(admin: Sql, tenantId: number): Promise<Record<string, number>> {
  const tables = await admin<{ name: string }[]>`
    select c.oid::regclass::text as name from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
     where n.nspname = 'tarbox_private' and c.relkind in ('r', 'p') and not c.relispartition order by 1`;
  const out: Record<string, number> = {};
  for (const { name } of tables) {
    const [{ n }] = await admin.unsafe(`select count(*)::int as n from ${name} where tenant_id = $1`, [tenantId]);
    out[name] = n;
  }
  return out;
}

test.serial('create prints a connection string that works once; rotate replaces the password', async (t) => {
  const created = JSON.parse(text(await ok(['tenant', 'create', 'agent-x', '--display-name', 'Agent X', '--json']))) as Created;
  t.is(created.name, 'agent-x');
  t.regex(created.role, /^tarbox_agent-x_[0-9a-f]{8}$/);
  t.truthy(created.password);
  t.is(new URL(created.url).username, created.role);
  const agent = await login(created.url);
  try {
    t.is((await agent`select current_user as u`)[0].u, created.role);
    await agent`select tarbox.write_file('/hello.txt', 'hi')`;
    t.deepEqual((await agent`select name from tarbox.ls('/')`).map((r) => r.name), ['hello.txt']);
  } finally {
    await agent.end({ timeout: 5 });
  }

  const shown = await ok(['tenant', 'credentials', 'agent-x']);
  t.regex(text(shown), new RegExp(`^role: ${created.role}$`, 'm'));
  t.notRegex(text(shown), new RegExp(created.password!));

  const rotated = JSON.parse(text(await ok(['tenant', 'credentials', 'agent-x', '--rotate', '--json']))) as Created;
  t.not(rotated.password, created.password);
  await refusesLogin(t, created.url);
  const again = await login(rotated.url);
  try {
    t.is((await again`select convert_from(tarbox.read_file('/hello.txt'), 'UTF8') as s`)[0].s, 'hi');
  } finally {
    await again.end({ timeout: 5 });
  }

  const text1 = text(await ok(['tenant', 'create', 'agent-y', '--no-password']));
  t.regex(text1, /^created tenant "agent-y" \(id \d+\)$/m);
  t.notRegex(text1, /shown only now/);
  failsWith(t, await tarbox(['tenant', 'credentials', 'nobody']), 3, /nobody/);
});

test.serial('quota sets limits, list --json shows usage and limits', async (t) => {
  await ok(['tenant', 'quota', 'agent-x', '--bytes', '1MiB', '--inodes', '100']);
  let list = JSON.parse(text(await ok(['tenant', 'list', '--json']))) as { name: string; bytes: number; inodes: number; max_bytes: number | null; max_inodes: number | null; roles: string[] }[];
  let x = list.find((r) => r.name === 'agent-x')!;
  t.like(x, { max_bytes: 1048576, max_inodes: 100, bytes: 2, inodes: 2 });
  t.is(x.roles.length, 1);
  await ok(['tenant', 'quota', 'agent-x', '--bytes', 'none']);
  list = JSON.parse(text(await ok(['tenant', 'list', '--json'])));
  x = list.find((r) => r.name === 'agent-x')!;
  t.like(x, { max_bytes: null, max_inodes: 100 });
  t.regex(text(await ok(['tenant', 'list'])), /^agent-x\s+\d+\s+2\s+100\s+2\s+-\s/m);
  failsWith(t, await tarbox(['tenant', 'quota', 'agent-x', '--bytes', 'lots']), 2, /bad limit/);
  failsWith(t, await tarbox(['tenant', 'quota', 'nobody', '--inodes', '5']), 3, /nobody/);
});

test.serial('delete refuses while the tenant\'s role is logged in, --force ends the session; nothing is left', async (t) => {
  const admin = db.sql;
  // A table of a later migration this one has never seen, secured as the rule says
  // (docs/security.md).
  await admin.unsafe('create table tarbox_private.later_things (tenant_id bigint not null, note text)');
  await admin`select tarbox_private.secure_table('tarbox_private.later_things')`;
  const [{ id }] = await admin<{ id: number }[]>`select tarbox.tenant_id('agent-x') as id`;
  const [{ role }] = await admin<{ role: string }[]>`select tarbox.tenant_role('agent-x') as role`;
  const [{ idY }] = await admin<{ idY: number }[]>`select tarbox.tenant_id('agent-y') as "idY"`;
  const [{ roleY }] = await admin<{ roleY: string }[]>`select tarbox.tenant_role('agent-y') as "roleY"`;
  await admin`insert into tarbox_private.later_things values (${id}, 'x'), (${idY}, 'y')`;
  const auditY = (await rowsOf(admin, idY))['tarbox_private.audit_events'];
  t.true(auditY >= 1, 'agent-y has an audit history (its creation at least)');

  const rotated = JSON.parse(text(await ok(['tenant', 'credentials', 'agent-x', '--rotate', '--json']))) as Created;
  const agent = await login(rotated.url);
  try {
    await agent`select 1`;
    failsWith(t, await tarbox(['tenant', 'delete', 'agent-x', '--yes']), 1, /in use by 1 session/);
    t.is((await agent`select count(*)::int as n from tarbox.ls('/')`)[0].n, 1, 'nothing was deleted');
    await ok(['tenant', 'delete', 'agent-x', '--yes', '--force']);
    await t.throwsAsync(agent`select 1`, undefined, 'the session was terminated');
  } finally {
    await agent.end({ timeout: 1 }).catch(() => {});
  }
  const left = await rowsOf(admin, id);
  t.true(Object.keys(left).length >= 9, Object.keys(left).join(' '));
  t.deepEqual(Object.entries(left).filter(([, n]) => n !== 0), []);
  t.is((await admin`select count(*)::int as n from pg_roles where rolname = ${role}`)[0].n, 0, 'the role is gone');

  await ok(['tenant', 'delete', 'agent-y', '--yes', '--keep-audit']);
  const leftY = await rowsOf(admin, idY);
  // its history is kept, and ends with the deletion itself
  t.deepEqual(Object.entries(leftY).filter(([, n]) => n !== 0), [['tarbox_private.audit_events', auditY + 1]]);
  const [last] = await admin`
    select operation from tarbox_private.audit_events where tenant_id = ${idY} order by event_id desc limit 1`;
  t.is(last.operation, 'tenant_delete');
  t.is((await admin`select count(*)::int as n from pg_roles where rolname = ${roleY}`)[0].n, 0);
});

test.serial('delete refuses while the tenant is mounted; --force unmounts it from the database side', async (t) => {
  await allowTime(t, 120_000);
  m = await mountFresh({ tenant: 'mounted-z' });
  await m.check('echo data > f && cat f');
  // the mount runs as the tenant's role, not as the admin it logged in with
  const [{ role }] = await m.sql<{ role: string }[]>`select tarbox.tenant_role('mounted-z') as role`;
  const sessions = await m.sql`select usename, application_name from pg_stat_activity where application_name = ${`tarbox-mount:${m.tenantId}`}`;
  t.true(sessions.length > 0);
  const run = cliRunner({ url: () => m!.url, cwd: work });
  failsWith(t, await run.tarbox(['tenant', 'delete', 'mounted-z', '--yes']), 1, /in use/);
  t.is((await m.run('cat f')).stdout, 'data\n');
  await run.ok(['tenant', 'delete', 'mounted-z', '--yes', '--force']);
  t.deepEqual(Object.entries(await rowsOf(m.sql, m.tenantId)).filter(([, n]) => n !== 0), []);
  t.is((await m.sql`select count(*)::int as n from pg_roles where rolname = ${role}`)[0].n, 0);
  const after = await m.run(`cat ${m.path('f')}`, { cwd: work });
  t.not(after.code, 0, 'the mount no longer serves the deleted tenant');
});

test('a password login of an unknown role fails like any wrong password', async (t) => {
  const url = new URL(db.url);
  url.username = 'tarbox_nobody_00000000';
  url.password = 'x';
  await refusesLogin(t, url.toString());
});

void postgres;
