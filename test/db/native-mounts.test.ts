// tarbox.add_native_mount / list_native_mounts / remove_native_mount: per-tenant definitions,
// validated like the config file's, isolated per tenant, and not executable by PUBLIC.
import test from 'ava';
import { useDatabase } from './_support.js';

const env = useDatabase(test);

interface NativeMount { path: string; source: string; mode: string; shared: boolean; priority: number; created_at: Date }

test('add, list (by path, highest priority first), remove', async (t) => {
  const fs = await env.tenant(t);
  const [added] = await fs.sql<NativeMount[]>`select * from tarbox.add_native_mount('/scratch', '/srv/tarbox/{tenant}', 'rw')`;
  t.like(added, { path: '/scratch', source: '/srv/tarbox/{tenant}', mode: 'rw', shared: false, priority: 0 });
  t.true(added.created_at instanceof Date);
  await fs.sql`select tarbox.add_native_mount('/scratch', '/srv/other/{tenant_id}', 'ro', false, 7)`;
  await fs.sql`select tarbox.add_native_mount('/data', '/srv/data', 'rw', true, 0)`;
  const rows = await fs.sql<NativeMount[]>`select * from tarbox.list_native_mounts()`;
  t.deepEqual(rows.map((r) => [r.path, r.priority, r.mode, r.shared]),
    [['/data', 0, 'rw', true], ['/scratch', 7, 'ro', false], ['/scratch', 0, 'rw', false]]);

  const [{ n }] = await fs.sql`select tarbox.remove_native_mount('/scratch', 7) as n`;
  t.is(n, 1);
  const [{ m }] = await fs.sql`select tarbox.remove_native_mount('/data') as m`;
  t.is(m, 1);
  t.deepEqual((await fs.sql<NativeMount[]>`select * from tarbox.list_native_mounts()`).map((r) => [r.path, r.priority]), [['/scratch', 0]]);
  await t.throwsAsync(fs.sql`select tarbox.remove_native_mount('/data')`, { code: 'TBNOE' });
  await t.throwsAsync(fs.sql`select tarbox.remove_native_mount('/scratch', 3)`, { code: 'TBNOE' });
});

test('the same path and priority twice is TBEXI', async (t) => {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.add_native_mount('/a', '/srv/a')`;
  await t.throwsAsync(fs.sql`select tarbox.add_native_mount('/a', '/srv/b')`, { code: 'TBEXI' });
  await fs.sql`select tarbox.add_native_mount('/a', '/srv/b', 'ro', false, 1)`;
});

test('bad definitions are TBINV', async (t) => {
  const fs = await env.tenant(t);
  const bad: [string, string, string, boolean, number][] = [
    ['/', '/srv/x', 'ro', false, 0], ['rel', '/srv/x', 'ro', false, 0], ['/a/', '/srv/x', 'ro', false, 0],
    ['/a/../b', '/srv/x', 'ro', false, 0], ['/a//b', '/srv/x', 'ro', false, 0], ['/.tarbox/x', '/srv/x', 'ro', false, 0],
    ['/a', '/', 'ro', false, 0], ['/a', 'srv', 'ro', false, 0], ['/a', '/srv/./x', 'ro', false, 0], ['/a', '/srv/x/', 'ro', false, 0],
    ['/a', '/srv/{user}', 'ro', false, 0], ['/a', '/srv/x{tenant}', 'rw', false, 0], ['/a', '/srv/x', 'wo', false, 0],
    ['/a', '/srv/x', 'rw', false, 0], ['/a', '/srv/x', 'ro', false, 2_000_000],
  ];
  for (const [p, source, mode, shared, priority] of bad) {
    await t.throwsAsync(fs.sql`select tarbox.add_native_mount(${p}, ${source}, ${mode}, ${shared}, ${priority})`,
      { code: 'TBINV' }, JSON.stringify([p, source, mode, shared, priority]));
  }
  // a read-write source without placeholder is fine when shared; placeholders as components are fine
  await fs.sql`select tarbox.add_native_mount('/a', '/srv/x', 'rw', true, 0)`;
  await fs.sql`select tarbox.add_native_mount('/b', '/srv/{tenant}/{tenant_id}', 'rw', false, 0)`;
  t.is((await fs.sql`select * from tarbox.list_native_mounts()`).length, 2);
});

test('tenants see only their own definitions', async (t) => {
  const one = await env.tenant(t);
  const two = await env.tenant(t);
  await one.sql`select tarbox.add_native_mount('/mine', '/srv/one')`;
  t.is((await two.sql`select * from tarbox.list_native_mounts()`).length, 0);
  await t.throwsAsync(two.sql`select tarbox.remove_native_mount('/mine')`, { code: 'TBNOE' });
  t.is((await one.sql`select * from tarbox.list_native_mounts()`).length, 1);
});

test('only administrators may add or remove: tenant roles and PUBLIC have no EXECUTE', async (t) => {
  const role = `agent_${process.pid}`;
  // a member of the tenants' group role, as every tenant's login is (docs/security.md)
  await env.admin.unsafe(`create role ${role} in role tarbox_tenants`);
  try {
    const can = async (fn: string) => {
      const [{ ok }] = await env.admin`select has_function_privilege(${role}, ${fn}, 'execute') as ok`;
      return ok as boolean;
    };
    t.false(await can('tarbox.add_native_mount(text, text, text, boolean, integer)'));
    t.false(await can('tarbox.remove_native_mount(text, integer)'));
    t.true(await can('tarbox.list_native_mounts()'));
  } finally {
    await env.admin.unsafe(`drop role ${role}`);
  }
});
