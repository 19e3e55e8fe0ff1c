import test from 'ava';
import { client } from '../helpers/database.js';
import { S_IFDIR, type Attr, type, useDatabase } from './_support.js';

const env = useDatabase(test);

interface TenantInfo {
  tenant_id: number;
  name: string;
  display_name: string | null;
  created_at: Date;
  inodes: number;
  bytes: number;
}

test('create_tenant returns the new tenant with its usage: one inode (the root), no bytes', async (t) => {
  const [info] = await env.admin<TenantInfo[]>`select * from tarbox.create_tenant('alpha', 'Alpha Agent')`;
  t.is(info.name, 'alpha');
  t.is(info.display_name, 'Alpha Agent');
  t.true(info.tenant_id > 0);
  t.true(info.created_at instanceof Date);
  t.is(info.inodes, 1);
  t.is(info.bytes, 0);
  const [{ id }] = await env.admin<{ id: number }[]>`select tarbox.tenant_id('alpha') as id`;
  t.is(id, info.tenant_id);
});

test('create_tenant rejects invalid names with TBINV', async (t) => {
  for (const name of ['', 'Upper', '-dash-first', '_under', 'has space', 'dot.name', 'a'.repeat(64), 'é']) {
    await t.throwsAsync(env.admin`select tarbox.create_tenant(${name})`, { code: 'TBINV' }, `name ${JSON.stringify(name)}`);
  }
  await t.throwsAsync(env.admin`select tarbox.create_tenant(${null})`, { code: 'TBINV' });
  // the longest valid name: 63 characters
  const [info] = await env.admin<TenantInfo[]>`select * from tarbox.create_tenant(${'z'.repeat(63)})`;
  t.is(info.name, 'z'.repeat(63));
});

test('create_tenant of an existing name is TBEXI', async (t) => {
  await env.admin`select tarbox.create_tenant('dup')`;
  await t.throwsAsync(env.admin`select tarbox.create_tenant('dup')`, { code: 'TBEXI' });
});

test('create_tenant rejects a block size that is not a power of two in 4 KiB..8 MiB', async (t) => {
  for (const [i, bs] of [1000, 2048, 4097, 16 * 1024 * 1024, 0, -4096].entries()) {
    await t.throwsAsync(env.admin`select tarbox.create_tenant(${`badbs${i}`}, null, ${bs})`, undefined, `block size ${bs}`);
  }
  for (const [i, bs] of [4096, 65536, 8 * 1024 * 1024].entries()) {
    await env.admin`select tarbox.create_tenant(${`goodbs${i}`}, null, ${bs})`;
  }
  t.pass();
});

test('tenant_id and use_tenant of an unknown tenant are TBTNT', async (t) => {
  await t.throwsAsync(env.admin`select tarbox.tenant_id('nobody')`, { code: 'TBTNT' });
  const sql = client(env.db.url, { max: 1 });
  t.teardown(() => sql.end({ timeout: 5 }));
  await t.throwsAsync(sql`select tarbox.use_tenant('nobody')`, { code: 'TBTNT' });
  await t.throwsAsync(sql`select tarbox.delete_tenant('nobody')`, { code: 'TBTNT' });
});

test('use_tenant binds the session: functions then work on that tenant', async (t) => {
  const [{ tenant_id }] = await env.admin<{ tenant_id: number }[]>`select tenant_id from tarbox.create_tenant('bindme')`;
  const sql = client(env.db.url, { max: 1 });
  t.teardown(() => sql.end({ timeout: 5 }));
  await t.throwsAsync(sql`select * from tarbox.getattr('/')`, { code: 'TBNTS' });
  const [{ id }] = await sql<{ id: number }[]>`select tarbox.use_tenant('bindme') as id`;
  t.is(id, tenant_id);
  const [root] = await sql<Attr[]>`select * from tarbox.getattr('/')`;
  t.is(type(root), S_IFDIR);
  await sql`select tarbox.mkdir('/made-here')`;
  const [{ n }] = await env.admin<{ n: number }[]>`
    select count(*)::int as n from tarbox_private.dentries where tenant_id = ${tenant_id} and name = 'made-here'::bytea`;
  t.is(n, 1);
});

test('the connection parameter tarbox.tenant_id binds a session too', async (t) => {
  const [{ tenant_id }] = await env.admin<{ tenant_id: number }[]>`select tenant_id from tarbox.create_tenant('byparam')`;
  const sql = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(tenant_id) } });
  t.teardown(() => sql.end({ timeout: 5 }));
  await sql`select tarbox.create('/x')`;
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from tarbox.readdir('/')`;
  t.is(n, 1);
});

test('list_tenants reports inodes and deduplicated chunk bytes', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.file('/a', 'same content');
  await fs.file('/d/b', 'same content'); // deduplicated: counted once
  await fs.file('/c', 'other');
  const [info] = await env.admin<TenantInfo[]>`select * from tarbox.list_tenants() where name = ${fs.name}`;
  t.is(info.inodes, 5); // root, d, a, b, c
  t.is(info.bytes, 'same content'.length + 'other'.length);
  const names = (await env.admin<{ name: string }[]>`select name from tarbox.list_tenants()`).map((r) => r.name);
  t.deepEqual(names, [...names].sort());
});

test('delete_tenant removes every row of the tenant and leaves the others alone', async (t) => {
  const keep = await env.tenant(t);
  await keep.file('/kept', 'shared bytes');
  const [{ tenant_id }] = await env.admin<{ tenant_id: number }[]>`select tenant_id from tarbox.create_tenant('doomed')`;
  const sql = client(env.db.url, { max: 1 });
  t.teardown(() => sql.end({ timeout: 5 }));
  await sql`select tarbox.use_tenant('doomed')`;
  await sql`select tarbox.mkdir('/dir')`;
  await sql`select tarbox.create('/dir/f')`;
  await sql`select tarbox.write('/dir/f', 0, ${Buffer.from('shared bytes')})`;
  await sql`select tarbox.setxattr('/dir/f', 'user.k', ${Buffer.from('v')})`;

  await env.admin`select tarbox.delete_tenant('doomed')`;
  for (const table of ['tenants', 'layers', 'inodes', 'dentries', 'chunks', 'file_blocks', 'xattrs']) {
    const [{ n }] = await env.admin.unsafe<{ n: number }[]>(
      `select count(*)::int as n from tarbox_private.${table} where tenant_id = $1`, [tenant_id]);
    t.is(n, 0, `rows left in ${table}`);
  }
  await t.throwsAsync(env.admin`select tarbox.tenant_id('doomed')`, { code: 'TBTNT' });
  // the session still names the deleted tenant: no tenant bound
  await t.throwsAsync(sql`select * from tarbox.getattr('/')`, { code: 'TBNTS' });
  t.deepEqual(await keep.read('/kept'), Buffer.from('shared bytes'));
  // the name can be used again, for an empty tenant
  await env.admin`select tarbox.create_tenant('doomed')`;
  await sql`select tarbox.use_tenant('doomed')`;
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from tarbox.readdir('/')`;
  t.is(n, 0);
});
