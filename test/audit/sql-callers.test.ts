// Audit context of SQL callers (issue #4): tarbox.with_caller gives a change's row the calling
// process in the same statement; at level "all" lookups and listings through SQL log one row
// per API call (ls and stat included), none at "writes" and none for mount sessions.
import test, { type ExecutionContext } from 'ava';
import { client } from '../helpers/database.js';
import { P, useDatabase, type Fs } from '../db/_support.js';

const env = useDatabase(test);

interface Event {
  operation: string; path: string | null; ino: number | null; result: string; errno: number | null;
  uid: number | null; gid: number | null; pid: number | null; interface: string; detail: string | null;
}

async function events(fs: Fs): Promise<Event[]> {
  const rows = await fs.sql<Event[]>`select * from tarbox.audit_log(p_limit => null) where operation <> 'tenant_create'`;
  return rows.reverse();
}

async function added(fs: Fs, fn: () => Promise<unknown>): Promise<Event[]> {
  const before = (await events(fs)).length;
  await fn();
  return (await events(fs)).slice(before);
}

async function tenant(t: ExecutionContext, level = 'writes'): Promise<Fs> {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.set_audit_level(${level})`;
  return fs;
}

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
