import test from 'ava';
import { S_IFIFO, S_IFLNK, ctime, mtime, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('link gives an inode a second name: same ino, nlink 2, shared content', async (t) => {
  const fs = await env.tenant(t);
  const orig = await fs.file('/orig', 'hello');
  const a = await fs.link('/orig', '/alias');
  t.is(a.ino, orig.ino);
  t.is(a.nlink, 2);
  t.is((await fs.attr('/orig')).nlink, 2);
  t.is((await fs.attr('/alias')).nlink, 2);
  await fs.write('/alias', 5, ' world');
  t.deepEqual(await fs.read('/orig'), Buffer.from('hello world'));
  await fs.chmod('/orig', 0o600);
  t.is((await fs.attr('/alias')).mode & 0o777, 0o600);
});

test('link changes the inode ctime and the new parent mtime/ctime, not the inode mtime', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/src');
  await fs.mkdir('/dst');
  const before = await fs.file('/src/f', 'x');
  const srcBefore = await fs.attr('/src');
  const dstBefore = await fs.attr('/dst');
  await tick();
  await fs.link('/src/f', '/dst/g');
  const after = await fs.attr('/src/f');
  t.true(ctime(after) > ctime(before));
  t.is(mtime(after), mtime(before));
  const dstAfter = await fs.attr('/dst');
  t.true(mtime(dstAfter) > mtime(dstBefore));
  t.true(ctime(dstAfter) > ctime(dstBefore));
  t.is(dstAfter.nlink, 2); // a file link is not a subdirectory
  t.deepEqual(await fs.attr('/src'), srcBefore);
});

test('link to a directory is EPERM', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await t.throwsAsync(fs.link('/d', '/d2'), { code: 'TBPRM' });
  await t.throwsAsync(fs.link('/', '/root2'), { code: 'TBPRM' });
  t.is((await fs.attr('/d')).nlink, 2);
  t.deepEqual(await fs.names('/'), ['d']);
});

test('link to an existing name is EEXIST, from a missing source ENOENT, into a missing directory ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/a');
  await fs.create('/b');
  await t.throwsAsync(fs.link('/a', '/b'), { code: 'TBEXI' });
  await t.throwsAsync(fs.link('/a', '/a'), { code: 'TBEXI' });
  await t.throwsAsync(fs.link('/missing', '/c'), { code: 'TBNOE' });
  await t.throwsAsync(fs.link('/a', '/nodir/c'), { code: 'TBNOE' });
  await t.throwsAsync(fs.link('/a', '/b/c'), { code: 'TBNDR' });
  t.is((await fs.attr('/a')).nlink, 1);
});

test('link of a symlink links the symlink itself (not followed)', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/target');
  const l = await fs.symlink('/target', '/l');
  const h = await fs.link('/l', '/l2');
  t.is(h.ino, l.ino);
  t.is(type(h), S_IFLNK);
  t.is(h.nlink, 2);
  t.is((await fs.attr('/target')).nlink, 1);
  t.deepEqual(await fs.readlink('/l2'), Buffer.from('/target'));
});

test('link works for special files too', async (t) => {
  const fs = await env.tenant(t);
  const p = await fs.mknod('/p', S_IFIFO | 0o644);
  t.is((await fs.link('/p', '/p2')).ino, p.ino);
  t.is((await fs.attr('/p2')).nlink, 2);
});

test('removing one of two links keeps the inode and its data; the last one frees it', async (t) => {
  const fs = await env.tenant(t);
  const orig = await fs.file('/a', 'data');
  await fs.link('/a', '/b');
  await fs.link('/a', '/c');
  t.is((await fs.attr('/a')).nlink, 3);
  const before = await fs.attr('/b');
  await tick();
  await fs.unlink('/a');
  const b = await fs.attr('/b');
  t.is(b.nlink, 2);
  t.true(ctime(b) > ctime(before)); // unlink changes the inode's ctime
  await fs.rename('/c', '/b'); // same inode: nothing happens
  t.is((await fs.attr('/b')).nlink, 2);
  t.deepEqual(await fs.names('/'), ['b', 'c']);
  await fs.unlink('/b');
  t.is((await fs.attr('/c')).nlink, 1);
  t.deepEqual(await fs.read('/c'), Buffer.from('data'));
  await fs.unlink('/c');
  await t.throwsAsync(fs.attrIno(orig.ino), { code: 'TBNOE' });
  t.is(await env.chunkCount(fs.tenantId), 0);
});
