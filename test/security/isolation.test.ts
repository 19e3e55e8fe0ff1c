// The adversarial suite (docs/security.md): tenant A logs in with its own role, as an agent
// given A's credentials would, and tries everything against tenant B. Every attempt must
// fail or see nothing, and B's rows in every table must be byte-identical afterwards.
import { createHash } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type postgres from 'postgres';
import { copyHeader, copyTrailer, copyTuple } from '../../shim/copy-binary.js';
import { tenantLogin, withTenant, type Sql } from '../helpers/database.js';
import { useDatabase } from '../db/_support.js';

const env = useDatabase(test);

interface World {
  a: Sql & { role: string };
  aId: number;
  bId: number;
  bRole: string;
  tables: string[];
  /** B's rows of every table, as JSON (bytea as hex): compared at the end. */
  before: Record<string, unknown>;
  bIno: number;
  bDirIno: number;
  bLayers: number[];
  bHash: Buffer;
}

const SECRET = Buffer.from('B\'s secret, only B may read it\n');

/** Every table of tarbox_private with a tenant_id, including those of other migrations. */
async function tenantTables(admin: Sql): Promise<string[]> {
  const rows = await admin<{ name: string }[]>`
    select c.oid::regclass::text as name from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
     where n.nspname = 'tarbox_private' and c.relkind in ('r', 'p') order by 1`;
  return rows.map((r) => r.name);
}

async function snapshot(admin: Sql, tables: string[], tenantId: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const table of tables) {
    const [{ rows }] = await admin.unsafe(
      `select coalesce(jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text), '[]') as rows from ${table} x where x.tenant_id = $1`, [tenantId]);
    out[table] = rows;
  }
  return out;
}

let world: Promise<World> | undefined;

/** Tenants A and B; B has files, a directory, a symlink, an xattr and a checkpoint. */
function setUp(): Promise<World> {
  world ??= (async () => {
    const admin = env.admin;
    const b = await withTenant(env.db.url, 'victim-b');
    try {
      await b`select tarbox.make_directory('/b-dir')`;
      await b`select tarbox.write_file('/b-dir/secret.txt', ${SECRET})`;
      await b`select tarbox.symlink('/b-dir/secret.txt', '/b-link')`;
      await b`select tarbox.setxattr('/b-dir', 'user.owner', 'b')`;
      await b`select tarbox.create_layer('b checkpoint')`;
      await b`select tarbox.write_file('/b-after.txt', 'after the checkpoint')`;
      const [{ ino }] = await b<{ ino: number }[]>`select ino from tarbox.getattr('/b-dir/secret.txt')`;
      const [{ ino: dirIno }] = await b<{ ino: number }[]>`select ino from tarbox.getattr('/b-dir')`;
      const layers = (await b<{ layer_id: number }[]>`select layer_id from tarbox.list_layers()`).map((r) => r.layer_id);
      const [{ bRole }] = await admin<{ bRole: string }[]>`select tarbox.tenant_role('victim-b') as "bRole"`;
      const [{ aId }] = await admin<{ aId: number }[]>`select tenant_id as "aId" from tarbox.create_tenant('attacker-a')`;
      const a = await tenantLogin(admin, env.db.url, 'attacker-a');
      await a`select tarbox.write_file('/a.txt', 'A owns this')`;
      const tables = await tenantTables(admin);
      return {
        a, aId, bId: b.tenantId, bRole, tables,
        before: await snapshot(admin, tables, b.tenantId),
        bIno: ino, bDirIno: dirIno, bLayers: layers,
        bHash: createHash('sha256').update(SECRET).digest(),
      };
    } finally {
      await b.end({ timeout: 5 });
    }
  })();
  return world;
}

test.after.always(async () => {
  if (world) await (await world).a.end({ timeout: 5 });
});

/** The statement must be refused with this SQLSTATE. */
async function refused(t: ExecutionContext, q: () => Promise<unknown>, code: string | string[], what: string): Promise<void> {
  const err = await t.throwsAsync(q(), undefined, what);
  t.true([code].flat().includes((err as { code?: string } | undefined)?.code ?? ''), `${what}: ${(err as { code?: string })?.code} ${err?.message}`);
}

/** The statement must be refused for lack of privilege, or touch no row. */
async function refusedOrNoRows(t: ExecutionContext, q: () => Promise<postgres.RowList<postgres.Row[]>>, what: string): Promise<void> {
  try {
    const r = await q();
    t.is(r.count, 0, `${what} affected rows`);
  } catch (err) {
    // 428C9: an identity column (tenants.tenant_id) cannot be updated by anyone
    t.true(['42501', '428C9'].includes((err as { code?: string }).code!), `${what}: ${(err as Error).message}`);
  }
}

test.serial('the suite sees every tenant table, and B has rows in the core ones', async (t) => {
  t.timeout(120_000);
  const w = await setUp();
  for (const table of ['tarbox_private.tenants', 'tarbox_private.inodes', 'tarbox_private.dentries', 'tarbox_private.chunks',
    'tarbox_private.file_blocks', 'tarbox_private.xattrs', 'tarbox_private.layers', 'tarbox_private.tenant_roles']) {
    t.true(w.tables.includes(table), table);
    t.true((w.before[table] as unknown[]).length > 0, `B has rows in ${table}`);
  }
});

test.serial('direct SELECT, UPDATE, DELETE and INSERT on every table reach no row of B', async (t) => {
  t.timeout(120_000);
  const { a, aId, bId, tables, before } = await setUp();
  for (const table of tables) {
    try {
      const [{ foreign }] = await a.unsafe(`select count(*)::int as foreign from ${table} where tenant_id <> $1`, [aId]);
      t.is(foreign, 0, `${table}: rows of other tenants are invisible, even to count(*)`);
    } catch (err) {
      t.is((err as { code?: string }).code, '42501', `${table}: ${(err as Error).message}`);
    }
    await refusedOrNoRows(t, () => a.unsafe(`update ${table} set tenant_id = tenant_id where tenant_id = $1`, [bId]), `update ${table}`);
    await refusedOrNoRows(t, () => a.unsafe(`delete from ${table} where tenant_id = $1`, [bId]), `delete ${table}`);
    // moving one's own rows to B is refused too (the policy's WITH CHECK)
    await refusedOrNoRows(t, () => a.unsafe(`update ${table} set tenant_id = $1 where tenant_id = $2 and false`, [bId, aId]), `probe ${table}`);
    for (const row of before[table] as object[]) {
      await refused(t, () => a.unsafe(`insert into ${table} select * from jsonb_populate_record(null::${table}, $1::jsonb)`,
        [row as never]), ['42501', '428C9'], `insert a row of B into ${table}`);
      break; // one row per table is enough: the check is per row, not per content
    }
  }
  for (const table of ['tarbox_private.inodes', 'tarbox_private.dentries', 'tarbox_private.layers']) {
    await refused(t, () => a.unsafe(`update ${table} set tenant_id = $1 where tenant_id = $2`, [bId, aId]), '42501', `move A's rows of ${table} to B`);
  }
});

test.serial('the public functions with B\'s inode numbers, layers and chunk hashes: as if they did not exist', async (t) => {
  t.timeout(120_000);
  const { a, bIno, bDirIno, bLayers, bHash } = await setUp();
  const data = Buffer.from('overwrite');
  const calls: [string, () => Promise<unknown>][] = [
    ['getattr_ino', () => a`select * from tarbox.getattr_ino(${bIno})`],
    ['read_ino', () => a`select tarbox.read_ino(${bIno}, 0, 100)`],
    ['write_ino', () => a`select tarbox.write_ino(${bIno}, 0, ${data})`],
    ['append_ino', () => a`select * from tarbox.append_ino(${bIno}, ${data})`],
    ['truncate_ino', () => a`select * from tarbox.truncate_ino(${bIno}, 0)`],
    ['flush', () => a`select * from tarbox.flush(${bIno})`],
    ['file_blocks', () => a`select * from tarbox.file_blocks(${bIno}, 0, 10)`],
    ['commit_blocks', () => a`select * from tarbox.commit_blocks(${bIno}, ${a.array([0], 20)}, ${a.array([bHash], 17)}, 10)`],
    ['getattr_ino of a directory', () => a`select * from tarbox.getattr_ino(${bDirIno})`],
    ['switch_layer', () => a`select * from tarbox.switch_layer(${bLayers[0]})`],
    ['delete_layer', () => a`select tarbox.delete_layer(${bLayers[bLayers.length - 1]})`],
    ['layer_diff', () => a`select * from tarbox.layer_diff(${bLayers[0]}, ${bLayers[1]})`],
  ];
  for (const [what, call] of calls) await refused(t, call, 'TBNOE', what);
  // release of an unknown inode is a no-op by design (closing a file removed meanwhile)
  await a`select tarbox.release(${bIno}, true, true)`;
  t.is((await a`select * from tarbox.read_chunks(${a.array([bHash], 17)})`).length, 0, 'B\'s chunk cannot be read by hash');
  // dedup is per tenant: A cannot learn that B stores this content
  t.deepEqual((await a`select h from tarbox.missing_chunks(${a.array([bHash], 17)}) h`).map((r) => Buffer.from(r.h as Buffer)), [bHash]);
  await a`select tarbox.write_file('/same-as-b.txt', ${SECRET})`;
  t.deepEqual(Buffer.from((await a`select tarbox.read_file('/same-as-b.txt') as d`)[0].d as Buffer), SECRET);
});

test.serial('B\'s paths behave exactly like paths that never existed (same SQLSTATE, same message)', async (t) => {
  t.timeout(120_000);
  const { a } = await setUp();
  const ops: [string, (p: string) => Promise<unknown>][] = [
    ['getattr', (p) => a`select * from tarbox.getattr(${p}::bytea)`],
    ['readdir', (p) => a`select * from tarbox.readdir(${p}::bytea)`],
    ['read', (p) => a`select tarbox.read(${p}::bytea)`],
    ['open', (p) => a`select * from tarbox.open(${p}::bytea, 2)`],
    ['readlink', (p) => a`select tarbox.readlink(${p}::bytea)`],
    ['unlink', (p) => a`select tarbox.unlink(${p}::bytea)`],
    ['rmdir', (p) => a`select tarbox.rmdir(${p}::bytea)`],
    ['truncate', (p) => a`select * from tarbox.truncate(${p}::bytea, 0)`],
    ['chmod', (p) => a`select * from tarbox.chmod(${p}::bytea, 511)`],
    ['chown', (p) => a`select * from tarbox.chown(${p}::bytea, 1, 1)`],
    ['access', (p) => a`select tarbox.access(${p}::bytea, 4)`],
    ['setxattr', (p) => a`select tarbox.setxattr(${p}::bytea, 'user.x', '\\x01'::bytea)`],
    ['getxattr', (p) => a`select tarbox.getxattr(${p}::bytea, 'user.owner')`],
    ['listxattr', (p) => a`select * from tarbox.listxattr(${p}::bytea)`],
    ['rename', (p) => a`select tarbox.rename(${p}::bytea, '/stolen'::bytea)`],
    ['link', (p) => a`select * from tarbox.link(${p}::bytea, '/stolen'::bytea)`],
    ['read_file', (p) => a`select tarbox.read_file(${p})`],
    ['stat', (p) => a`select * from tarbox.stat(${p})`],
    ['remove', (p) => a`select tarbox.remove(${p}, true)`],
  ];
  const outcome = async (op: (p: string) => Promise<unknown>, p: string) => {
    try {
      return { ok: await op(p) };
    } catch (err) {
      const e = err as { code?: string; message: string };
      return { code: e.code, message: e.message.split(p).join('<path>') };
    }
  };
  for (const [foreign, missing] of [['/b-dir/secret.txt', '/b-dir/absent.txt'], ['/b-dir', '/x-dir'], ['/b-link', '/x-link']]) {
    for (const [name, op] of ops) {
      const f = await outcome(op, foreign);
      const m = await outcome(op, missing);
      t.deepEqual(f, m, `${name}(${foreign}) vs ${name}(${missing})`);
      t.truthy((f as { code?: string }).code, `${name}(${foreign}) fails`);
    }
  }
  t.is((await a`select * from tarbox.lookup('/b-dir'::bytea)`).length, 0);
  const names = (await a`select name from tarbox.ls('/')`).map((r) => r.name as string);
  t.true(names.includes('a.txt'));
  t.false(names.some((n) => n.startsWith('b-')), names.join(' '));
});

test.serial('maintenance functions are refused to a tenant role', async (t) => {
  t.timeout(120_000);
  const { a, bId } = await setUp();
  const calls: [string, () => Promise<unknown>][] = [
    ['create_tenant', () => a`select tarbox.create_tenant('intruder')`],
    ['delete_tenant', () => a`select tarbox.delete_tenant('victim-b')`],
    ['delete_tenant (force)', () => a`select tarbox.delete_tenant('victim-b', false, true)`],
    ['list_tenants', () => a`select * from tarbox.list_tenants()`],
    ['tenant_usage', () => a`select * from tarbox.tenant_usage()`],
    ['collect_orphans', () => a`select tarbox.collect_orphans()`],
    ['set_quota', () => a`select tarbox.set_quota('attacker-a', null, null)`],
    ['set_tenant_password', () => a`select tarbox.set_tenant_password('victim-b', 'known')`],
    ['tenant_role', () => a`select tarbox.tenant_role('victim-b')`],
    ['purge_tenant', () => a`select tarbox_private.purge_tenant(${bId}, false)`],
    ['secure_table', () => a`select tarbox_private.secure_table('tarbox_private.inodes', 'select')`],
    ['create_tenant_role', () => a`select tarbox_private.create_tenant_role(${bId}, 'victim-b')`],
    // its own audit trail and the host's directories are the operator's
    ['set_audit_level', () => a`select tarbox.set_audit_level('off')`],
    ['configure_audit', () => a`select tarbox.configure_audit('daily', 1)`],
    ['maintain_audit', () => a`select * from tarbox.maintain_audit(now() + interval '10 years')`],
    ['add_native_mount', () => a`select tarbox.add_native_mount('/etc-host', '/etc', 'rw', true, 0)`],
    ['remove_native_mount', () => a`select tarbox.remove_native_mount('/etc-host')`],
  ];
  for (const [what, call] of calls) await refused(t, call, '42501', what);
});

test.serial('a tenant cannot change its tenant id, switch roles or lift the policies', async (t) => {
  t.timeout(120_000);
  const { a, aId, bId, bRole } = await setUp();
  // the setting is ignored for a tenant role: still A's files (the client has one connection)
  await a.unsafe(`set tarbox.tenant_id = ${bId}`);
  t.deepEqual((await a`select name from tarbox.ls('/') where name = 'a.txt'`).map((r) => r.name), ['a.txt']);
  await refused(t, () => a`select * from tarbox.getattr('/b-after.txt')`, 'TBNOE', 'B\'s file after set tarbox.tenant_id');
  await a.unsafe('reset tarbox.tenant_id');
  await refused(t, () => a`select tarbox.use_tenant('victim-b')`, 'TBTNT', 'use_tenant of another tenant');
  t.is((await a`select tarbox.use_tenant('attacker-a') as id`)[0].id, aId);
  await refused(t, () => a.unsafe(`set role "${bRole}"`), '42501', 'SET ROLE to B\'s role');
  await refused(t, () => a.unsafe('set role postgres'), '42501', 'SET ROLE to the admin');
  await refused(t, () => a.unsafe('set session authorization postgres'), '42501', 'SET SESSION AUTHORIZATION');
  await refused(t, () => a.unsafe('set session_replication_role = replica'), '42501', 'disable triggers');
  await refused(t, () => a.unsafe('alter table tarbox_private.inodes disable row level security'), '42501', 'disable RLS');
  await refused(t, () => a.unsafe('drop policy tenant_isolation on tarbox_private.chunks'), '42501', 'drop the policy');
  await refused(t, () => a.unsafe('alter table tarbox_private.chunks disable trigger all'), '42501', 'disable the quota trigger');
  await refused(t, () => a.unsafe('insert into tarbox_private.tenant_roles values ($1, current_user)', [bId]), '42501', 'map itself to B');
  await refused(t, () => a.unsafe('update tarbox_private.tenants set max_file_size = 1 where tenant_id = $1', [aId]), '42501', 'change its limits');
  await refused(t, () => a.unsafe('update tarbox_private.tenant_quotas set max_bytes = null'), '42501', 'lift its quota');
  await refused(t, () => a.unsafe(`select setval('tarbox_private.inode_numbers', 1)`), '42501', 'setval');
  // the group role is a member role of A: switching to it leaves A with no tenant at all
  await a.unsafe('set role tarbox_tenants');
  await a.unsafe(`set tarbox.tenant_id = ${bId}`);
  t.is((await a`select count(*)::int as n from tarbox_private.inodes`)[0].n, 0);
  await refused(t, () => a`select * from tarbox.getattr('/')`, 'TBNTS', 'getattr as tarbox_tenants');
  await a.unsafe('reset role');
  await a.unsafe('reset tarbox.tenant_id');
  t.is((await a`select current_user as u`)[0].u, a.role);
});

test.serial('COPY: into chunk_uploads only for A\'s own tenant id; never straight into chunks', async (t) => {
  t.timeout(120_000);
  const { a, aId, bId } = await setUp();
  /** COPY one chunk row; resolves with the SQLSTATE the server answered, or 'OK'. */
  const copy = async (table: string, tenantId: number, data: Buffer): Promise<string> => {
    const id = Buffer.alloc(8);
    id.writeBigInt64BE(BigInt(tenantId));
    let stream;
    try {
      stream = await a.unsafe(`copy ${table} (tenant_id, hash, data) from stdin (format binary)`).writable();
    } catch (err) {
      return (err as { code: string }).code; // refused before any row
    }
    // The row is inserted as soon as it arrives; an error then destroys the stream. (After
    // end() postgres.js would lose it, hence the wait before ending.)
    const failed = new Promise<string>((resolve) => stream.on('error', (err) => resolve((err as unknown as { code: string }).code)));
    stream.write(copyHeader());
    for (const part of copyTuple([id, createHash('sha256').update(data).digest(), data])) stream.write(part);
    const early = await Promise.race([failed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 1500))]);
    if (early) return early;
    const finished = new Promise<string>((resolve) => stream.on('finish', () => resolve('OK')));
    stream.end(copyTrailer());
    return Promise.race([failed, finished]);
  };
  t.is(await copy('tarbox_private.chunk_uploads', bId, Buffer.from('planted in B')), '42501', 'COPY a chunk for B');
  t.is(await copy('tarbox_private.chunks', aId, Buffer.from('direct')), '0A000', 'COPY straight into chunks');
  t.is(await copy('tarbox_private.chunk_uploads', aId, Buffer.from('A\'s own chunk')), 'OK');
  await a`select 1`; // the COPY's completion
  const [{ n }] = await env.admin`select count(*)::int as n from tarbox_private.chunks where tenant_id = ${aId} and data = ${Buffer.from('A\'s own chunk')}`;
  t.is(n, 1);
});

test.serial('its own tree: the whole SQL API works for the tenant role, and it reads its own audit rows', async (t) => {
  const { a } = await setUp();
  await a`select tarbox.make_directory('/work')`;
  await a`select tarbox.write_file('/work/notes.md', 'line one\n')`;
  await a`select tarbox.rename('/work/notes.md', '/work/readme.md')`;
  await a`select tarbox.setxattr('/work/readme.md', 'user.tag', 'x')`;
  t.is(Buffer.from((await a`select tarbox.getxattr('/work/readme.md', 'user.tag') as v`)[0].v as Buffer).toString(), 'x');
  t.deepEqual((await a`select name from tarbox.ls('/work')`).map((r) => r.name), ['readme.md']);
  t.is((await a`select convert_from(tarbox.read_file('/work/readme.md'), 'UTF8') as s`)[0].s, 'line one\n');
  const [{ layer_id: checkpoint }] = await a`select layer_id from tarbox.create_layer('a checkpoint')`;
  await a`select tarbox.remove('/work/readme.md')`;
  await a`select tarbox.switch_layer(${checkpoint})`;
  t.is((await a`select convert_from(tarbox.read_file('/work/readme.md'), 'UTF8') as s`)[0].s, 'line one\n');
  // its own history, and nothing of B's
  const rows = await a`select operation, path, errno from tarbox.audit_log(p_limit => null)`;
  const ops = rows.map((r) => `${r.operation} ${r.path ?? ''}`.trim());
  for (const expected of ['mkdir /work', 'rename /work/notes.md', 'setxattr /work/readme.md', 'layer_create', 'layer_switch']) {
    t.true(ops.includes(expected), `${expected} in ${ops.join(', ')}`);
  }
  // A's attacks on B's paths failed in A's own tree, and A's failures are logged in A's log
  t.false(rows.some((r) => String(r.path ?? '').startsWith('/b-') && r.errno === null), 'no row of B');
  t.true((await a`select count(*)::int as n from tarbox.audit_stats()`)[0].n > 0);
});

test.serial('afterwards B\'s rows in every table are byte-identical (runs last)', async (t) => {
  t.timeout(120_000);
  const w = await setUp();
  t.deepEqual(await snapshot(env.admin, w.tables, w.bId), w.before);
  const [{ n }] = await env.admin`select count(*)::int as n from pg_roles where rolname = ${w.bRole}`;
  t.is(n, 1, 'B\'s role is still there');
});
