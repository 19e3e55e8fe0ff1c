import test from 'ava';
import { O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, S_IFDIR, S_IFREG, atime, ctime, mtime, perms, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('open returns the attributes of an existing file, following symlinks', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abc');
  await fs.symlink('f', '/l');
  t.deepEqual(await fs.open('/f'), f);
  t.deepEqual(await fs.open('/l', O_RDWR), f);
  await t.throwsAsync(fs.open('/missing'), { code: 'TBNOE' });
});

test('open of a directory: read-only is allowed, for writing EISDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  t.is(type(await fs.open('/d', O_RDONLY)), S_IFDIR);
  await t.throwsAsync(fs.open('/d', O_WRONLY), { code: 'TBISD' });
  await t.throwsAsync(fs.open('/d', O_RDWR), { code: 'TBISD' });
});

test('open with O_TRUNC and write access empties the file and updates mtime/ctime', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'some content');
  await tick();
  const a = await fs.open('/f', O_WRONLY | O_TRUNC);
  t.is(a.size, 0);
  t.true(mtime(a) > mtime(before));
  t.true(ctime(a) > ctime(before));
  t.is((await fs.attr('/f')).size, 0);
  t.deepEqual(await fs.read('/f'), Buffer.alloc(0));
  t.is(await env.chunkCount(fs.tenantId), 0);
});

test('open with O_TRUNC of an already empty file still marks mtime/ctime for update (POSIX open)', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.create('/empty');
  await tick();
  const a = await fs.open('/empty', O_RDWR | O_TRUNC);
  t.true(mtime(a) > mtime(before));
  t.true(ctime(a) > ctime(before));
});

test('open without O_TRUNC, or read-only, does not truncate', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'keep');
  await fs.open('/f', O_RDWR);
  await fs.open('/f', O_RDONLY);
  t.deepEqual(await fs.attr('/f'), before);
  t.deepEqual(await fs.read('/f'), Buffer.from('keep'));
});

test('open with O_TRUNC by a non-root uid clears setuid', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/suid', 'x', 0o4755, 1000);
  const a = await fs.open('/suid', O_WRONLY | O_TRUNC, 1000);
  t.is(perms(a), 0o755);
});

test('truncate extends with zeros (a hole) and shrinks', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'hello');
  let a = await fs.truncate('/f', 20);
  t.is(a.size, 20);
  t.deepEqual(await fs.read('/f'), Buffer.concat([Buffer.from('hello'), Buffer.alloc(15)]));
  a = await fs.truncate('/f', 3);
  t.is(a.size, 3);
  t.deepEqual(await fs.read('/f'), Buffer.from('hel'));
  a = await fs.truncate('/f', 0);
  t.is(a.size, 0);
  t.deepEqual(await fs.read('/f'), Buffer.alloc(0));
});

test('truncate cutting mid-block then extending reads zeros, not the old bytes', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  const data = Buffer.alloc(3 * 4096, 0xab);
  await fs.file('/f', data);
  await fs.truncate('/f', 4096 + 100);
  await fs.truncate('/f', 3 * 4096);
  const got = await fs.read('/f');
  t.is(got.length, 3 * 4096);
  t.deepEqual(got.subarray(0, 4196), data.subarray(0, 4196));
  t.true(got.subarray(4196).equals(Buffer.alloc(3 * 4096 - 4196)), 'bytes past the cut must read as zeros');
  // same within a single block
  await fs.file('/g', Buffer.alloc(1000, 0x11));
  await fs.truncate('/g', 10);
  await fs.truncate('/g', 1000);
  t.deepEqual(await fs.read('/g'), Buffer.concat([Buffer.alloc(10, 0x11), Buffer.alloc(990)]));
  // and after writing past the old end without truncating up first
  await fs.truncate('/g', 5);
  await fs.write('/g', 500, 'z');
  t.deepEqual(await fs.read('/g'), Buffer.concat([Buffer.alloc(5, 0x11), Buffer.alloc(495), Buffer.from('z')]));
});

test('truncate updates mtime and ctime', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'abc');
  await tick();
  const a = await fs.truncate('/f', 1);
  t.true(mtime(a) > mtime(before));
  t.true(ctime(a) > ctime(before));
  await tick();
  const b = await fs.truncate('/f', 100);
  t.true(mtime(b) > mtime(a));
});

test('truncate by a non-root uid clears setuid, and setgid with group-exec; root keeps them', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/a', 'x', 0o6755, 1000);
  t.is(perms(await fs.truncate('/a', 0, 1000)), 0o755);
  await fs.file('/b', 'x', 0o6745, 1000); // no group-exec: setgid stays
  t.is(perms(await fs.truncate('/b', 0, 1000)), 0o2745);
  await fs.file('/c', 'x', 0o6755, 1000);
  t.is(perms(await fs.truncate('/c', 0, 0)), 0o6755);
});

test('truncate errors: directory EISDIR, negative size EINVAL, missing ENOENT, over max_file_size EFBIG', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.file('/f', 'abc');
  await t.throwsAsync(fs.truncate('/d', 0), { code: 'TBISD' });
  await t.throwsAsync(fs.truncate('/f', -1), { code: 'TBINV' });
  await t.throwsAsync(fs.truncate('/missing', 0), { code: 'TBNOE' });
  await env.admin`update tarbox_private.tenants set max_file_size = 1000 where tenant_id = ${fs.tenantId}`;
  await t.throwsAsync(fs.truncate('/f', 1001), { code: 'TBFBG' });
  t.is((await fs.truncate('/f', 1000)).size, 1000);
  t.deepEqual((await fs.read('/f')).subarray(0, 3), Buffer.from('abc'));
});

test('truncate follows symlinks; truncate_ino works on an inode', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abcdef');
  await fs.symlink('/f', '/l');
  t.is((await fs.truncate('/l', 4)).ino, f.ino);
  t.deepEqual(await fs.read('/f'), Buffer.from('abcd'));
  const a = await fs.truncateIno(f.ino, 2);
  t.is(a.size, 2);
  t.deepEqual(await fs.read('/f'), Buffer.from('ab'));
  await t.throwsAsync(fs.truncateIno(987654321, 0), { code: 'TBNOE' });
  t.is(type(await fs.attr('/l')), 0o120000);
  t.is(type(await fs.attr('/f')), S_IFREG);
});

test('release without a read changes nothing', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abc');
  await tick();
  await fs.sql`select tarbox.release(${f.ino})`;
  await fs.sql`select tarbox.release(${f.ino}, false)`;
  t.deepEqual(await fs.attr('/f'), f);
});

test('release after a read updates atime with relatime rules, and never ctime or mtime', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abc'); // atime = mtime = ctime: not newer than mtime
  await tick();
  await fs.sql`select tarbox.release(${f.ino}, true)`;
  const a = await fs.attr('/f');
  t.true(atime(a) > atime(f), 'atime not newer than mtime/ctime: updated');
  t.is(mtime(a), mtime(f));
  t.is(ctime(a), ctime(f));
  await tick();
  await fs.sql`select tarbox.release(${f.ino}, true)`;
  t.is(atime(await fs.attr('/f')), atime(a), 'atime newer than mtime and ctime, and recent: kept');
  await tick();
  await fs.write('/f', 0, 'x');
  await tick();
  await fs.sql`select tarbox.release(${f.ino}, true)`;
  const b = await fs.attr('/f');
  t.true(atime(b) > mtime(b), 'modified since the last access: updated');
  // older than a day, though newer than mtime and ctime: updated
  const day = 86_400_000_000_000n;
  await env.admin`
    update tarbox_private.inodes
       set atime_ns = ${String(atime(b) - 2n * day)}::bigint,
           mtime_ns = ${String(atime(b) - 3n * day)}::bigint,
           ctime_ns = ${String(atime(b) - 3n * day)}::bigint
     where tenant_id = ${fs.tenantId} and ino = ${f.ino}`;
  await fs.sql`select tarbox.release(${f.ino}, true)`;
  t.true(atime(await fs.attr('/f')) >= atime(b));
});

test('release of an inode removed meanwhile is not an error', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abc');
  await fs.unlink('/f');
  await t.notThrowsAsync(fs.sql`select tarbox.release(${f.ino}, true)`);
});
