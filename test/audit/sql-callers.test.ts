// Audit context of SQL callers (issue #4): tarbox.with_caller gives a change's row the calling
// process in the same statement; at level "all" lookups and listings through SQL log one row
// per API call (ls and stat included), none at "writes" and none for mount sessions; failures
// of SQL callers leave a row with their errno, written through the audit writer's own
// connection (dblink), which a tenant can neither aim at another tenant nor use itself.
import test, { type ExecutionContext } from 'ava';
import { client, tenantLogin } from '../helpers/database.js';
import { P, useDatabase } from '../db/_support.js';
import { added, auditTenant, events } from './_support.js';

const env = useDatabase(test);

const tenant = (t: ExecutionContext, level?: string) => auditTenant(env, t, level);

test('with_caller names the caller of the change made in the same statement, and of nothing after it', async (t) => {
  const fs = await tenant(t);
  await fs.file('/f', 'x');
  const [{ ino }] = await fs.sql`select ino from tarbox.getattr(${P('/f')})`;
  const rows = await added(fs, async () => {
    await fs.sql`select tarbox.chmod(tarbox.with_caller(${P('/f')}, 1000, 1001, 4242), 384)`;
    await fs.sql`select tarbox.truncate_ino(tarbox.with_caller(${ino}::bigint, 7, 8, 9), 0)`;
    await fs.sql`select tarbox.mkdir(${P('/d')})`; // a later statement: no caller
  });
  t.deepEqual(rows.map((e) => [e.operation, e.uid, e.gid, e.pid]), [
    ['chmod', 1000, 1001, 4242], ['truncate', 7, 8, 9], ['mkdir', 0, 0, null],
  ]);
  // in a transaction block the caller holds until its end
  const inTx = await added(fs, () => fs.sql.begin(async (tx) => {
    await tx`select tarbox.with_caller(1, 5, 6, 7)`;
    await tx`select tarbox.rmdir(${P('/d')})`;
  }));
  t.like(inTx[0], { operation: 'rmdir', uid: 5, gid: 6, pid: 7 });
  t.is((await fs.sql`select tarbox.with_caller('kept'::text, null, null, null) as v`)[0].v, 'kept');
});

test('level "all": getattr, readdir, readlink, getxattr and listxattr through SQL log one row per call', async (t) => {
  const fs = await tenant(t, 'all');
  await fs.mkdir('/d');
  await fs.file('/d/a', 'a');
  await fs.symlink('a', '/d/s');
  await fs.setxattr('/d/a', 'user.k', 'v');
  const a = await fs.attr('/d/a'); // getattr
  const rows = await added(fs, async () => {
    await fs.attr('/d/a');
    await fs.readdir('/d');
    await fs.readlink('/d/s');
    await fs.getxattr('/d/a', 'user.k');
    await fs.listxattr('/d/a');
  });
  t.deepEqual(rows.map((e) => [e.operation, e.path, e.detail]), [
    ['getattr', '/d/a', null], ['readdir', '/d', 'entries=2'], ['readlink', '/d/s', null],
    ['getxattr', '/d/a', 'user.k'], ['listxattr', '/d/a', 'names=1'],
  ]);
  t.is(rows[0].ino, a.ino);
  t.true(rows.every((e) => e.interface === 'sql' && e.errno === null));
});

test('ls and stat are one row each, whatever they look up inside', async (t) => {
  const fs = await tenant(t, 'all');
  await fs.mkdir('/d');
  await fs.file('/d/a', 'a');
  await fs.symlink('a', '/d/s');
  const rows = await added(fs, async () => {
    await fs.sql`select * from tarbox.ls('/d')`;
    await fs.sql`select * from tarbox.ls('/d/s')`;
    await fs.sql`select * from tarbox.stat('/d/s')`;
  });
  t.deepEqual(rows.map((e) => [e.operation, e.path, e.detail]), [
    ['readdir', '/d', 'ls, entries=2'], ['getattr', '/d/s', 'ls, entries=1'], ['getattr', '/d/s', 'stat'],
  ]);
});

test('lookups are not logged at level "writes", nor for mount sessions at "all", nor tarbox.lookup', async (t) => {
  const fs = await tenant(t, 'writes');
  await fs.file('/a', 'a');
  const quiet = async (sql: typeof fs.sql) => {
    await sql`select * from tarbox.getattr(${P('/a')})`;
    await sql`select * from tarbox.readdir(${P('/')})`;
    await sql`select * from tarbox.listxattr(${P('/a')})`;
    await sql`select * from tarbox.ls('/')`;
  };
  t.deepEqual(await added(fs, () => quiet(fs.sql)), []);
  await fs.sql`select tarbox.set_audit_level('all')`;
  t.deepEqual(await added(fs, () => fs.sql`select * from tarbox.lookup(${P('/a')})`), []);
  const mount = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(fs.tenantId), 'tarbox.interface': 'fuse' } });
  t.teardown(() => mount.end({ timeout: 5 }));
  t.deepEqual(await added(fs, () => quiet(mount)), []);
});

test('a failed change of a SQL caller leaves one row with its errno, even when its transaction rolls back', async (t) => {
  const fs = await tenant(t);
  await fs.file('/f', 'x');
  await fs.mkdir('/full');
  await fs.file('/full/x', 'x');
  const rows = await added(fs, async () => {
    await t.throwsAsync(fs.unlink('/missing'), { code: 'TBNOE' });
    await t.throwsAsync(fs.rmdir('/full'), { code: 'TBNEM' });
    await t.throwsAsync(fs.sql`select tarbox.truncate_ino(999999999, 0)`, { code: 'TBNOE' });
    await t.throwsAsync(fs.sql.begin(async (tx) => {
      await tx`select tarbox.mkdir(${P('/made')})`;           // rolled back: no row
      await tx`select tarbox.rename(${P('/f')}, ${P('/no/such/dir')})`;
    }), { code: 'TBNOE' });
  });
  t.deepEqual(rows.map((e) => [e.operation, e.path, e.errno, e.result, e.interface]), [
    ['unlink', '/missing', 2, 'ENOENT', 'sql'],
    ['rmdir', '/full', 39, 'ENOTEMPTY', 'sql'],
    ['truncate', null, 2, 'ENOENT', 'sql'],
    ['rename', '/no/such/dir', 2, 'ENOENT', 'sql'],
  ]);
  t.is(rows[0].detail, 'no such file or directory: /missing');
  t.false(await fs.exists('/made'));
});

test('failed lookups and reads are logged at level "all" only; questions and handled errors never', async (t) => {
  const fs = await tenant(t);
  await fs.file('/f', 'x');
  await fs.mkdir('/d');
  const probe = async () => {
    await t.throwsAsync(fs.sql`select tarbox.read_file('/missing')`, { code: 'TBNOE' });
    await t.throwsAsync(fs.sql`select * from tarbox.readdir(${P('/f')})`, { code: 'TBNDR' });
    await t.throwsAsync(fs.attr('/missing'), { code: 'TBNOE' });                 // a question
    await t.throwsAsync(fs.getxattr('/f', 'user.none'), { code: 'TBNOD' });      // a question
    await fs.sql`select tarbox.write_file('/f', ${Buffer.from('y')})`;          // exists: no failed create
    await fs.sql`select tarbox.make_directory('/d/e/f', true)`;                 // /d exists: no failed mkdir
  };
  t.deepEqual((await added(fs, probe)).map((e) => [e.operation, e.errno]), [
    ['truncate', null], ['write', null], ['mkdir', null], ['mkdir', null],
  ]);
  // a lookup inside another API function fails that function (remove: unlink, write_file: write)
  const failed = await added(fs, async () => {
    await t.throwsAsync(fs.sql`select tarbox.remove('/missing')`, { code: 'TBNOE' });
    await t.throwsAsync(fs.sql`select tarbox.write_file('/no-dir/x', ${Buffer.from('y')})`, { code: 'TBNOE' });
    await t.throwsAsync(fs.sql`select * from tarbox.stat('/missing')`, { code: 'TBNOE' });   // a question
  });
  t.deepEqual(failed.map((e) => [e.operation, e.path, e.result]), [
    ['unlink', '/missing', 'ENOENT'], ['write', '/no-dir/x', 'ENOENT'],
  ]);
  await fs.sql`select tarbox.set_audit_level('all')`;
  await fs.sql`select tarbox.remove('/d/e', true)`;
  t.deepEqual((await added(fs, probe)).filter((e) => e.errno !== null).map((e) => [e.operation, e.path, e.result]), [
    ['read', '/missing', 'ENOENT'], ['readdir', '/f', 'ENOTDIR'],
  ]);
});

test('sessions that are a mount or the CLI log their own failures: no second row', async (t) => {
  const fs = await tenant(t);
  for (const iface of ['fuse', 'cli']) {
    const sql = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(fs.tenantId), 'tarbox.interface': iface } });
    t.teardown(() => sql.end({ timeout: 5 }));
    t.deepEqual(await added(fs, () => t.throwsAsync(sql`select tarbox.unlink(${P('/missing')})`, { code: 'TBNOE' })), [], iface);
  }
});

test('a tenant\'s own login: its failures are logged whatever it claims, only into its own tenant, and it cannot write or read the log around the API', async (t) => {
  const a = await tenant(t);
  const b = await tenant(t);
  const login = await tenantLogin(env.db.sql, env.db.url, a.name, { connection: { 'tarbox.interface': 'fuse' } });
  t.teardown(() => login.end({ timeout: 5 }));
  const rows = await added(a, () => t.throwsAsync(login`select tarbox.unlink(${P('/missing')})`, { code: 'TBNOE' }));
  t.like(rows[0], { operation: 'unlink', path: '/missing', errno: 2, interface: 'fuse' });
  // aiming a failure row at tenant B lands it in A
  const bBefore = (await events(b)).length;
  const forged = await added(a, () => login`select tarbox_private.send_failure(${b.tenantId}, null, 'unlink', '/b-secret', 13, 0, 0, 0, 'x', 'sql', 'forged')`);
  t.deepEqual(forged.map((e) => [e.operation, e.path, e.detail]), [['unlink', '/b-secret', 'forged']]);
  t.is((await events(b)).length, bBefore);
  // the writer's procedure, its password and dblink itself are the owner's
  await t.throwsAsync(login`call tarbox_private.record_failure(${b.tenantId}, null, 'unlink', '/x', 2, 0, 0, 0, 'x', 'sql', 'forged')`, { code: '42501' });
  await t.throwsAsync(login`select * from tarbox_private.audit_failure_writer`, { code: '42501' });
  await t.throwsAsync(login`select tarbox_dblink.dblink_exec('dbname=postgres', 'select 1')`, { code: '42501' });
  await t.throwsAsync(login`delete from tarbox_private.audit_events`, { code: '42501' });
});
