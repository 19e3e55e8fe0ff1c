import test from 'ava';
import { S_IFDIR, S_IFLNK, S_IFREG, ctime, mtime, perms, type, useDatabase, type Attr } from './_support.js';

const env = useDatabase(test);

test('the root of a new tenant is a 0755 directory owned by 0:0 with two links', async (t) => {
  const fs = await env.tenant(t);
  const root = await fs.attr('/');
  t.is(type(root), S_IFDIR);
  t.is(perms(root), 0o755);
  t.is(root.nlink, 2);
  t.is(root.uid, 0);
  t.is(root.gid, 0);
  t.is(root.size, 0);
  t.true(root.ino > 0);
  t.is(mtime(root), ctime(root));
});

test('getattr reports type, mode, owner, size, blocks and blksize', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o640, 1000, 100);
  await fs.write('/f', 0, Buffer.alloc(1000, 1));
  const a = await fs.attr('/f');
  t.is(type(a), S_IFREG);
  t.is(perms(a), 0o640);
  t.is(a.uid, 1000);
  t.is(a.gid, 100);
  t.is(a.nlink, 1);
  t.is(a.size, 1000);
  t.is(a.blocks, 2); // st_blocks counts 512-byte units
  t.is(a.blksize, 1048576); // the tenant's default block size
  t.is(a.rdev, 0);
  for (const nsec of [a.atime_nsec, a.mtime_nsec, a.ctime_nsec]) t.true(nsec >= 0 && nsec < 1e9);
});

test('getattr does not follow a symlink (lstat)', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/dir');
  await fs.symlink('/dir', '/link');
  const a = await fs.attr('/link');
  t.is(type(a), S_IFLNK);
  t.is(perms(a), 0o777);
  t.is(a.size, 4); // st_size of a symlink is the length of its target
  t.not(a.ino, (await fs.attr('/dir')).ino);
});

test('getattr of a missing path is ENOENT, through a file is ENOTDIR, a relative path is EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.attr('/missing'), { code: 'TBNOE' });
  await t.throwsAsync(fs.attr('/missing/x'), { code: 'TBNOE' });
  await t.throwsAsync(fs.attr('/f/x'), { code: 'TBNDR' });
  await t.throwsAsync(fs.attr('relative'), { code: 'TBINV' });
  await t.throwsAsync(fs.attr(''), { code: 'TBINV' });
});

test('getattr_ino returns the same attributes as getattr, and ENOENT for an unknown or removed inode', async (t) => {
  const fs = await env.tenant(t);
  const created = await fs.file('/f', 'hello');
  t.deepEqual(await fs.attrIno(created.ino), await fs.attr('/f'));
  await fs.unlink('/f');
  await t.throwsAsync(fs.attrIno(created.ino), { code: 'TBNOE' });
  await t.throwsAsync(fs.attrIno(999999999), { code: 'TBNOE' });
});

test('statfs reports the tenant block size and a 255-byte name limit', async (t) => {
  const fs = await env.tenant(t, { blockSize: 8192 });
  const [s] = await fs.sql<{ bsize: number; frsize: number; namemax: number; blocks: number; bfree: number }[]>`
    select * from tarbox.statfs()`;
  t.is(s.bsize, 8192);
  t.is(s.frsize, 8192);
  t.is(s.namemax, 255);
  t.true(s.blocks > 0);
  t.true(s.bfree <= s.blocks);
});

test('lookup returns one row like getattr, or no row when the last component is missing', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.file('/d/f', 'abc');
  await fs.symlink('/d', '/l');
  const [hit] = await fs.sql<Attr[]>`select * from tarbox.lookup(${Buffer.from('/d/f')})`;
  t.deepEqual(hit, await fs.attr('/d/f'));
  const [link] = await fs.sql<Attr[]>`select * from tarbox.lookup(${Buffer.from('/l')})`;
  t.is(type(link), S_IFLNK); // not followed
  t.is((await fs.sql`select * from tarbox.lookup(${Buffer.from('/d/missing')})`).length, 0);
  t.is((await fs.sql`select * from tarbox.lookup(${Buffer.from('/l/f')})`).length, 1); // intermediate followed
  const [root] = await fs.sql<Attr[]>`select * from tarbox.lookup(${Buffer.from('/')})`;
  t.is(type(root), S_IFDIR);
});

test('lookup still raises for a missing or non-directory intermediate component', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.sql`select * from tarbox.lookup(${Buffer.from('/missing/x')})`, { code: 'TBNOE' });
  await t.throwsAsync(fs.sql`select * from tarbox.lookup(${Buffer.from('/f/x')})`, { code: 'TBNDR' });
  await t.throwsAsync(fs.sql`select * from tarbox.lookup(${Buffer.from('rel')})`, { code: 'TBINV' });
});

test('flush returns the committed attributes of an inode; ENOENT once it is gone', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'abc');
  await fs.write('/f', 3, 'def');
  const [a] = await fs.sql<Attr[]>`select * from tarbox.flush(${f.ino})`;
  t.deepEqual(a, await fs.attr('/f'));
  t.is(a.size, 6);
  await fs.unlink('/f');
  await t.throwsAsync(fs.sql`select * from tarbox.flush(${f.ino})`, { code: 'TBNOE' });
});
