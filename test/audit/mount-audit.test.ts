// Audit through a real mount: each FUSE change produces exactly its row with the caller's
// uid/gid, the interface "fuse" and the mount as node; a refused operation leaves a row with
// its errno and the caller's pid; level "all" adds one row per open handle with its bytes;
// [audit] enabled = false logs nothing.
import test from 'ava';
import * as fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

interface Event {
  operation: string; path: string | null; new_path: string | null; errno: number | null; result: string;
  uid: number | null; gid: number | null; pid: number | null; node: string | null; interface: string;
  bytes_read: number | null; bytes_written: number | null; detail: string | null;
}

/** The tenant's events after its creation, oldest first. */
async function events(m: Mount): Promise<Event[]> {
  return m.sql.begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    const rows = await tx<Event[]>`select * from tarbox.audit_log(p_limit => null) where operation <> 'tenant_create'`;
    return rows.reverse();
  });
}

const brief = (e: Event) => [e.operation, e.path, e.new_path];

/** Polls fn until done(result) or 10 s have passed; returns the last result either way. */
async function until<T>(fn: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await fn();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let writes: Mount | undefined;
let all: Mount | undefined;
let off: Mount | undefined;
let native: Mount | undefined;
let host: string;
test.before(async () => {
  host = fs.mkdtempSync(path.join(tmpdir(), 'tarbox-audit-native-'));
  fs.chmodSync(host, 0o755);
  native = await mountFresh({
    config: { native_mounts: [{ path: '/host', source: host, mode: 'rw', shared: true, priority: 0 }] },
  });
  writes = await mountFresh();
  all = await mountFresh({ config: { audit: { level: 'all' } } });
  off = await mountFresh({ config: { audit: { enabled: false } } });
});
test.after.always(async (t) => {
  await finish(t, writes);
  await finish(t, all);
  await finish(t, off);
  await finish(t, native);
  fs.rmSync(host, { recursive: true, force: true });
});

test.serial('each change through the mount is one row, with the caller and the mount', async (t) => {
  const m = writes!;
  await m.check('mkdir -m 777 d');
  await m.check([
    'echo hello > d/f', 'mv d/f d/g', 'ln -s g d/s', 'ln d/g d/h', 'chmod 600 d/g', 'rm d/h',
    'truncate -s 2 d/g', 'touch -m -d @1000000000 d/g', 'mkdir d/e', 'rmdir d/e', 'mknod d/p p',
  ].join(' && '), { uid: 1000, gid: 1001 });
  const rows = await events(m);
  t.deepEqual(rows.map(brief), [
    ['mkdir', '/d', null],
    ['create', '/d/f', null], ['write', '/d/f', null],
    ['rename', '/d/f', '/d/g'],
    ['symlink', '/d/s', null],
    ['link', '/d/g', '/d/h'],
    ['chmod', '/d/g', null],
    ['unlink', '/d/h', null],
    ['truncate', '/d/g', null],
    ['utimens', '/d/g', null],
    ['mkdir', '/d/e', null], ['rmdir', '/d/e', null],
    ['mknod', '/d/p', null],
  ]);
  t.true(rows.every((e) => e.interface === 'fuse' && e.errno === null && e.node === `${hostname()}:${m.mountpoint}`));
  t.like(rows.find((e) => e.operation === 'create'), { uid: 1000, gid: 1001 });
  t.like(rows.find((e) => e.operation === 'write'), { bytes_written: 6 });
  t.like(rows.find((e) => e.operation === 'unlink'), { uid: 1000 });
  t.is(rows.find((e) => e.operation === 'symlink')?.detail, 'g');
});

test.serial('xattrs, chown and a checkpoint through the control files are logged', async (t) => {
  const m = writes!;
  const before = (await events(m)).length;
  await m.python(`
open('x', 'w').write('data')
os.setxattr('x', 'user.tag', b'v')
os.removexattr('x', 'user.tag')
os.chown('x', 1000, 1000)
out(None)`);
  await m.check('echo "from the mount" > .tarbox/layers/new');
  const rows = (await events(m)).slice(before);
  t.deepEqual(rows.map(brief), [
    ['create', '/x', null], ['write', '/x', null], ['setxattr', '/x', null], ['removexattr', '/x', null],
    ['chown', '/x', null], ['layer_create', null, null],
  ]);
  t.is(rows[4].detail, 'uid=1000 gid=1000');
  t.regex(rows[5].detail ?? '', /^layer \d+: from the mount$/);
  t.is(rows[5].interface, 'fuse');
});

test.serial('every change through the mount carries the calling process: uid, gid and pid, writes and appends too', async (t) => {
  const m = writes!;
  await m.check('mkdir -m 777 callers');
  const before = (await events(m)).length;
  // one process makes every change, so every row must name it
  const pid = await m.python<number>(`
os.chdir('callers')
os.mkdir('d')
os.mknod('p', 0o10644)
os.close(os.open('f', os.O_CREAT | os.O_WRONLY, 0o644))
os.symlink('f', 's')
os.link('f', 'h')
os.rename('h', 'g')
os.chmod('f', 0o600)
os.chown('f', 1000, 1001)
os.utime('f', (1, 1))
os.truncate('f', 10)
with open('f', 'r+') as fh: os.ftruncate(fh.fileno(), 5)
os.setxattr('f', 'user.k', b'v')
os.removexattr('f', 'user.k')
os.close(os.open('f', os.O_WRONLY | os.O_TRUNC))
with open('f', 'w') as fh: fh.write('data')
with open('f', 'a') as fh: fh.write('more')
os.unlink('g')
os.rmdir('d')
out(os.getpid())`, { uid: 1000, gid: 1001 });
  const rows = (await events(m)).slice(before);
  t.deepEqual(rows.map((e) => e.operation), ['mkdir', 'mknod', 'create', 'symlink', 'link', 'rename', 'chmod', 'chown',
    'utimens', 'truncate', 'truncate', 'setxattr', 'removexattr', 'truncate', 'truncate', 'write', 'write', 'unlink', 'rmdir']);
  for (const row of rows) t.like(row, { uid: 1000, gid: 1001, pid, errno: null }, row.operation);
});

test.serial('a refused operation leaves a row with its errno and the caller\'s pid', async (t) => {
  const m = writes!;
  await m.check('mkdir full && touch full/x');
  const before = (await events(m)).length;
  const r = await m.run('rmdir full & echo $!; wait', { uid: 0 });
  const pid = Number(r.stdout.trim());
  t.regex(r.stderr, /not empty/i);
  const rows = (await events(m)).slice(before);
  t.deepEqual(rows.map(brief), [['rmdir', '/full', null]]);
  t.like(rows[0], { errno: 39, result: 'ENOTEMPTY', uid: 0, pid, interface: 'fuse' });
  t.true(await m.run('ls full').then((x) => x.stdout.includes('x')));
});

test.serial('level "all": one row per open handle with the bytes read and written', async (t) => {
  const m = all!;
  await m.check('head -c 3000 /dev/zero > f && cat f > /dev/null && cat f f > /dev/null');
  // handle rows are sent in batches after release (which the kernel sends after close returns)
  const rows = await until(async () => (await events(m)).filter((e) => e.operation === 'open'), (r) => r.length >= 4);
  // cat f f opens f twice: two handles
  t.deepEqual(rows.map((e) => [e.path, e.bytes_read, e.bytes_written]), [
    ['/f', 0, 3000], ['/f', 3000, 0], ['/f', 3000, 0], ['/f', 3000, 0],
  ]);
  // failures of reads are logged at this level (ENOENT of a lookup is not a failure)
  const before = (await events(m)).length;
  await m.run('cat missing; ls -d nothing-here');
  t.is((await events(m)).length, before);
});

test.serial('level "all": listings through the mount (readdir, readlink, getxattr, listxattr) are one row each, with the caller', async (t) => {
  const m = all!;
  await m.check('mkdir -m 777 listed && echo x > listed/f && ln -s f listed/s && chmod 666 listed/f');
  const before = (await events(m)).length;
  const pid = await m.python<number>(`
os.setxattr('listed/f', 'user.k', b'v')
os.listdir('listed')
os.readlink('listed/s')
os.getxattr('listed/f', 'user.k')
os.listxattr('listed/f')
os.stat('listed/f')
out(os.getpid())`, { uid: 1000, gid: 1001 });
  const listings = ['readdir', 'readlink', 'getxattr', 'listxattr'];
  // (python itself also lists its working directory, the mount's root, to find modules)
  const rows = await until(async () => (await events(m)).slice(before)
    .filter((e) => listings.includes(e.operation) && e.path?.startsWith('/listed')), (r) => r.length >= 4);
  t.deepEqual(rows.map((e) => [e.operation, e.path]),
    [['readdir', '/listed'], ['readlink', '/listed/s'], ['getxattr', '/listed/f'], ['listxattr', '/listed/f']]);
  for (const row of rows) t.like(row, { uid: 1000, gid: 1001, pid, interface: 'fuse', errno: null }, row.operation);
});

test.serial('[audit] enabled = false: nothing is logged, from the mount or from SQL', async (t) => {
  const m = off!;
  await m.check('mkdir d && echo x > d/f && rm d/f');
  t.is((await events(m)).length, 0);
  const level = await m.sql.begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    return (await tx`select tarbox.audit_level() as level`)[0].level;
  });
  t.is(level, 'off');
});

test.serial('operations on a native mount are logged by the shim, with detail "native"', async (t) => {
  const m = native!;
  await m.check('mkdir host/d && echo hi > host/d/f && mv host/d/f host/d/g && chmod 600 host/d/g', { uid: 0 });
  const failed = await m.run('rmdir host/d', { uid: 0 });
  t.not(failed.code, 0);
  // native rows travel in batches, within 100 ms
  const rows = await until(async () => (await events(m)).filter((e) => e.detail === 'native'), (r) => r.length >= 5);
  t.deepEqual(rows.map((e) => [e.operation, e.path, e.new_path, e.result]), [
    ['mkdir', '/host/d', null, 'success'],
    ['create', '/host/d/f', null, 'success'],
    ['rename', '/host/d/f', '/host/d/g', 'success'],
    ['chmod', '/host/d/g', null, 'success'],
    ['rmdir', '/host/d', null, 'ENOTEMPTY'],
  ]);
  t.like(rows[0], { interface: 'fuse', uid: 0 });
  // and the host directory really changed: the rows describe what happened there
  t.is(fs.readFileSync(path.join(host, 'd', 'g'), 'utf8'), 'hi\n');
});
