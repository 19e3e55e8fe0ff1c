// Per-tenant quotas on stored bytes and inodes: a clear SQL error (TBQTA) through SQL, EDQUOT
// on the mount, no data lost, and usage reported by tarbox.tenant_usage().
import test from 'ava';
import { tenantLogin, type Sql } from '../helpers/database.js';
import { allowTime, finish, mountFresh, type Mount } from '../helpers/mount.js';
import { useDatabase } from '../db/_support.js';

const env = useDatabase(test);

async function usage(name: string): Promise<{ inodes: number; bytes: number; max_bytes: number | null; max_inodes: number | null }> {
  const [row] = await env.admin`select inodes, bytes, max_bytes, max_inodes from tarbox.tenant_usage() where name = ${name}`;
  return row as never;
}

async function loggedIn(t: { teardown(fn: () => Promise<void>): void }, name: string): Promise<Sql> {
  await env.admin`select tarbox.create_tenant(${name}, null, 4096)`;
  const sql = await tenantLogin(env.admin, env.db.url, name);
  t.teardown(() => sql.end({ timeout: 5 }));
  return sql;
}

test('byte quota: a write past it fails with TBQTA and changes nothing', async (t) => {
  const a = await loggedIn(t, 'bytes-q');
  await env.admin`select tarbox.set_quota('bytes-q', 10000, null)`;
  const first = Buffer.alloc(6000, 1);
  await a`select tarbox.write_file('/first', ${first})`;
  const before = await usage('bytes-q');
  t.is(before.bytes, 6000);
  t.is(before.max_bytes, 10000);
  const err = await t.throwsAsync(a`select tarbox.write_file('/second', ${Buffer.alloc(6000, 2)})`);
  t.is((err as { code?: string }).code, 'TBQTA');
  t.regex(err!.message, /byte quota exceeded: .* the limit is 10000/);
  t.deepEqual(await usage('bytes-q'), before);
  t.is((await a`select * from tarbox.lookup('/second')`).length, 0, 'the failed write left no file');
  t.deepEqual(Buffer.from((await a`select tarbox.read_file('/first') as d`)[0].d as Buffer), first);
  // the same content again is deduplicated: it costs nothing and fits
  await a`select tarbox.write_file('/copy', ${first})`;
  // the mount's one-statement commit of small files hits the same limit
  const [{ ino }] = await a`select ino from tarbox.create('/inline')`;
  const inline = await t.throwsAsync(a`
    select tarbox.commit_blocks_inline(${ino}, array[0]::bigint[], array[4001], ${Buffer.alloc(4001, 4)}, 4001)`);
  t.is((inline as { code?: string }).code, 'TBQTA');
  await a`select tarbox.unlink('/inline')`;
  t.is((await usage('bytes-q')).bytes, before.bytes);
  // check_space, which the shim asks before a COPY
  await a`select tarbox.check_space(4000)`;
  t.is((await t.throwsAsync(a`select tarbox.check_space(4001)`) as { code?: string }).code, 'TBQTA');
  // deleting frees space; lifting the quota lifts the limit
  await a`select tarbox.unlink('/first')`;
  await a`select tarbox.unlink('/copy')`;
  await a`select tarbox.write_file('/second', ${Buffer.alloc(6000, 2)})`;
  await env.admin`select tarbox.set_quota('bytes-q', null, null)`;
  await a`select tarbox.write_file('/third', ${Buffer.alloc(20000, 3)})`;
  t.is((await usage('bytes-q')).max_bytes, null);
});

test('inode quota: creating past it fails with TBQTA; deleting after a checkpoint still works', async (t) => {
  const a = await loggedIn(t, 'inodes-q');
  await env.admin`select tarbox.set_quota('inodes-q', null, 3)`; // the root and two more
  await a`select tarbox.make_directory('/d')`;
  await a`select tarbox.write_file('/d/f', 'x')`;
  for (const attempt of [
    () => a`select tarbox.write_file('/g', 'y')`,
    () => a`select tarbox.make_directory('/e')`,
    () => a`select * from tarbox.symlink('/d/f', '/l')`,
    () => a`select * from tarbox.mknod('/fifo', ${0o010644})`,
  ]) {
    const err = await t.throwsAsync(attempt());
    t.is((err as { code?: string }).code, 'TBQTA', err?.message);
  }
  t.is((await usage('inodes-q')).inodes, 3);
  // hard links are no new inode
  await a`select * from tarbox.link('/d/f', '/hard')`;
  // over a checkpoint, changing and deleting copy inodes up: allowed at the limit
  await a`select tarbox.create_layer('cp')`;
  await a`select tarbox.write_file('/d/f', 'changed')`;
  await a`select tarbox.unlink('/hard')`;
  await a`select tarbox.unlink('/d/f')`;
  // the checkpoint still holds that inode: usage counts every layer, so it does not fit yet
  t.is((await t.throwsAsync(a`select tarbox.write_file('/g', 'y')`) as { code?: string }).code, 'TBQTA');
  await env.admin`select tarbox.set_quota('inodes-q', null, 4)`;
  await a`select tarbox.write_file('/g', 'now it fits')`;
  t.is((await t.throwsAsync(env.admin`select tarbox.set_quota('inodes-q', null, -1)`) as { code?: string }).code, 'TBINV');
});

test('statfs reports the quotas as capacity, and what they still allow as free', async (t) => {
  const a = await loggedIn(t, 'statfs-q');
  type Statfs = { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; favail: number };
  const statfs = async () => (await a<Statfs[]>`select * from tarbox.statfs()`)[0];
  const nominal = await statfs();
  t.is(nominal.blocks, 2 ** 50 / 4096, 'no quota: a nominal 1 PiB');
  t.is(nominal.files, 2 ** 32);
  t.is(nominal.ffree, 2 ** 32 - 1, 'the root is in use');
  const three = Buffer.concat([1, 2, 3].map((b) => Buffer.alloc(4096, b)));
  await a`select tarbox.write_file('/data', ${three})`;
  const used = await statfs();
  t.is(used.blocks - used.bfree, 3, 'three blocks of stored chunks');
  t.is(used.ffree, 2 ** 32 - 2);
  await env.admin`select tarbox.set_quota('statfs-q', ${10 * 4096 + 100}, 50)`;
  const limited = await statfs();
  t.deepEqual({ blocks: limited.blocks, bfree: limited.bfree, bavail: limited.bavail, files: limited.files, ffree: limited.ffree, favail: limited.favail },
    { blocks: 10, bfree: 7, bavail: 7, files: 50, ffree: 48, favail: 48 });
  // the same bytes again are deduplicated: nothing more is used
  await a`select tarbox.write_file('/copy', ${three})`;
  t.is((await statfs()).bfree, 7);
  t.is((await statfs()).ffree, 47);
  // over the quota (lowered below the usage): nothing free, never negative
  await env.admin`select tarbox.set_quota('statfs-q', 4096, 1)`;
  const over = await statfs();
  t.is(over.bfree, 0);
  t.is(over.ffree, 0);
});

let m: Mount | undefined;
test.after.always((t) => finish(t, m));

test('quotas on the mount: EDQUOT for data and for new files, earlier files intact', async (t) => {
  await allowTime(t, 120_000);
  m = await mountFresh({ tenant: 'mounted-q', blockSize: 65536 });
  await m.sql`select tarbox.set_quota('mounted-q', ${256 * 1024}, 20)`;
  const result = await m.python<Record<string, unknown>>(`
def write(name, data):
    with open(name, 'wb') as f:
        f.write(data)
keep = bytes(range(256)) * 512          # 128 KiB
res = {'keep': E(write, 'keep', keep)}
res['big'] = E(write, 'big', os.urandom(512 * 1024))
res['keep_intact'] = open('keep', 'rb').read() == keep
st = os.statvfs('.')
res['statvfs'] = [st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, st.f_files]
created = 0
err = None
for i in range(40):
    r = E(write, 'small%d' % i, b'')
    if r != 'OK':
        err = r
        break
    created += 1
res['created'] = created
res['create_error'] = err
out(res)
`);
  t.is(result.keep, 'OK');
  t.is(result.big, 'EDQUOT');
  t.true(result.keep_intact);
  // df on the mount: the quota is the capacity; 'keep' is in use, its two identical 64 KiB
  // blocks stored once
  t.deepEqual(result.statvfs, [256 * 1024, 192 * 1024, 20]);
  t.is(result.create_error, 'EDQUOT');
  // 20 inodes: the root, keep, big (created before its data was refused) and 17 more
  t.is(result.created, 17);
});
