import test from 'ava';
import { S_IFDIR, S_IFLNK, S_IFREG, ctime, mtime, perms, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('symlink stores its target verbatim: mode 0777, size = target length, readlink returns it', async (t) => {
  const fs = await env.tenant(t);
  const a = await fs.symlink('../some/where', '/l', 1000, 100);
  t.is(type(a), S_IFLNK);
  t.is(perms(a), 0o777);
  t.is(a.size, '../some/where'.length);
  t.is(a.nlink, 1);
  t.is(a.uid, 1000);
  t.is(a.gid, 100);
  t.deepEqual(await fs.readlink('/l'), Buffer.from('../some/where'));
});

test('a symlink target may be any bytes except NUL, and need not exist', async (t) => {
  const fs = await env.tenant(t);
  const target = Buffer.from([0x2f, 0xff, 0xfe, 0x0a, 0x5c, 0x2f, 0x2f, 0x2e]); // "/\xff\xfe\n\\//."
  await fs.symlink(target, '/weird');
  t.deepEqual(await fs.readlink('/weird'), target);
  t.is((await fs.attr('/weird')).size, target.length);
  const long = Buffer.alloc(4095, 'a');
  await fs.symlink(long, '/long');
  t.deepEqual(await fs.readlink('/long'), long);
});

test('symlink with an empty target is ENOENT, a target with NUL EINVAL, over 4095 bytes ENAMETOOLONG', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.symlink('', '/l'), { code: 'TBNOE' });
  await t.throwsAsync(fs.symlink(Buffer.from('a\0b'), '/l'), { code: 'TBINV' });
  await t.throwsAsync(fs.symlink(Buffer.alloc(4096, 'a'), '/l'), { code: 'TBNTL' });
  t.deepEqual(await fs.readdir('/'), []);
});

test('symlink over an existing name is EEXIST; parent times change on success', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.symlink('/x', '/f'), { code: 'TBEXI' });
  const before = await fs.attr('/');
  await tick();
  await fs.symlink('/x', '/l');
  const after = await fs.attr('/');
  t.true(mtime(after) > mtime(before));
  t.true(ctime(after) > ctime(before));
  t.is(after.nlink, before.nlink);
});

test('readlink of a non-symlink is EINVAL, of a missing path ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.mkdir('/d');
  await t.throwsAsync(fs.readlink('/f'), { code: 'TBINV' });
  await t.throwsAsync(fs.readlink('/d'), { code: 'TBINV' });
  await t.throwsAsync(fs.readlink('/missing'), { code: 'TBNOE' });
});

test('readlink does not follow the last component but follows intermediate ones', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.symlink('target-of-inner', '/d/inner');
  await fs.symlink('/d', '/outer');
  await fs.symlink('/d/inner', '/chain');
  t.deepEqual(await fs.readlink('/outer/inner'), Buffer.from('target-of-inner'));
  t.deepEqual(await fs.readlink('/chain'), Buffer.from('/d/inner'));
});

test('operations that follow symlinks resolve absolute and relative targets', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.file('/a/b/data', 'payload');
  await fs.symlink('b/data', '/a/rel'); // relative to the link's directory
  await fs.symlink('/a/b/data', '/abs');
  await fs.symlink('../../a/b', '/a/b/up'); // relative with .., back to /a/b
  await fs.symlink('rel', '/a/rel2'); // a chain
  t.deepEqual(await fs.read('/a/rel'), Buffer.from('payload'));
  t.deepEqual(await fs.read('/abs'), Buffer.from('payload'));
  t.deepEqual(await fs.read('/a/b/up/data'), Buffer.from('payload'));
  t.deepEqual(await fs.read('/a/rel2'), Buffer.from('payload'));
  t.is(type(await fs.open('/a/rel2')), S_IFREG);
  t.is(type(await fs.open('/a/b/up')), S_IFDIR);
  await fs.write('/abs', 7, '!');
  t.deepEqual(await fs.read('/a/b/data'), Buffer.from('payload!'));
});

test('a dangling symlink: lstat works, following it is ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.symlink('/gone', '/dangling');
  t.is(type(await fs.attr('/dangling')), S_IFLNK);
  await t.throwsAsync(fs.read('/dangling'), { code: 'TBNOE' });
  await t.throwsAsync(fs.open('/dangling'), { code: 'TBNOE' });
  await t.throwsAsync(fs.attr('/dangling/x'), { code: 'TBNOE' });
});

test('unlink removes the symlink, not its target', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/target', 'stay');
  await fs.symlink('/target', '/l');
  await fs.unlink('/l');
  t.deepEqual(await fs.names('/'), ['target']);
  t.deepEqual(await fs.read('/target'), Buffer.from('stay'));
});
