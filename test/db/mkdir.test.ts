import test from 'ava';
import { S_IFDIR, S_ISGID, S_ISVTX, ctime, mtime, perms, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('mkdir makes an empty directory with the given mode and owner, nlink 2', async (t) => {
  const fs = await env.tenant(t);
  const a = await fs.mkdir('/d', 0o750, 1000, 100);
  t.is(type(a), S_IFDIR);
  t.is(perms(a), 0o750);
  t.is(a.uid, 1000);
  t.is(a.gid, 100);
  t.is(a.nlink, 2);
  t.deepEqual(await fs.attr('/d'), a);
  t.deepEqual(await fs.readdir('/d'), []);
  // timestamps of a new inode are all equal
  t.is(mtime(a), ctime(a));
});

test('mkdir keeps the sticky bit, ignores file-type bits in mode', async (t) => {
  const fs = await env.tenant(t);
  t.is(perms(await fs.mkdir('/tmp', 0o1777)), 0o1777);
  const odd = await fs.mkdir('/odd', 0o100755); // S_IFREG in mode is not a request for a file
  t.is(type(odd), S_IFDIR);
  t.is(perms(odd), 0o755);
  t.is((await fs.attr('/tmp')).mode & S_ISVTX, S_ISVTX);
});

test('nlink of a directory is 2 plus its subdirectories', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/p');
  t.is((await fs.attr('/')).nlink, 3);
  await fs.mkdir('/p/a');
  await fs.mkdir('/p/b');
  await fs.create('/p/file'); // files do not count
  await fs.symlink('/p', '/p/link');
  t.is((await fs.attr('/p')).nlink, 4);
  await fs.mkdir('/p/a/deep');
  t.is((await fs.attr('/p')).nlink, 4);
  t.is((await fs.attr('/p/a')).nlink, 3);
  await fs.rmdir('/p/a/deep');
  await fs.rmdir('/p/b');
  t.is((await fs.attr('/p')).nlink, 3);
  t.is((await fs.attr('/p/a')).nlink, 2);
  t.is((await fs.attr('/')).nlink, 3);
});

test('mkdir updates the parent directory mtime and ctime', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/parent');
  const before = await fs.attr('/parent');
  await tick();
  await fs.mkdir('/parent/child');
  const after = await fs.attr('/parent');
  t.true(mtime(after) > mtime(before));
  t.true(ctime(after) > ctime(before));
});

test('mkdir of an existing name is EEXIST, whatever its type', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/f');
  await fs.symlink('/nowhere', '/dangling');
  await t.throwsAsync(fs.mkdir('/d'), { code: 'TBEXI' });
  await t.throwsAsync(fs.mkdir('/f'), { code: 'TBEXI' });
  await t.throwsAsync(fs.mkdir('/dangling'), { code: 'TBEXI' }); // a dangling symlink is not followed
  await t.throwsAsync(fs.mkdir('/'), { code: 'TBEXI' });
  await t.throwsAsync(fs.mkdir('/d/.'), { code: 'TBEXI' });
  await t.throwsAsync(fs.mkdir('/d/..'), { code: 'TBEXI' });
});

test('mkdir with a missing parent is ENOENT, under a file ENOTDIR, with a long name ENAMETOOLONG', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.mkdir('/no/such'), { code: 'TBNOE' });
  await t.throwsAsync(fs.mkdir('/f/sub'), { code: 'TBNDR' });
  await t.throwsAsync(fs.mkdir('/' + 'n'.repeat(256)), { code: 'TBNTL' });
  t.deepEqual(await fs.names('/'), ['f']);
  const before = await fs.attr('/');
  // failed calls leave the parent untouched
  await t.throwsAsync(fs.mkdir('/f'), { code: 'TBEXI' });
  t.deepEqual(await fs.attr('/'), before);
});

test('a directory made in a setgid directory takes its group and the setgid bit', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/shared', 0o2775, 0, 50);
  t.is((await fs.attr('/shared')).mode & S_ISGID, S_ISGID);
  const sub = await fs.mkdir('/shared/sub', 0o755, 1000, 1000);
  t.is(sub.gid, 50);
  t.is(sub.uid, 1000);
  t.is(sub.mode & S_ISGID, S_ISGID);
  // and it propagates further down
  const deeper = await fs.mkdir('/shared/sub/deeper', 0o700, 1000, 1000);
  t.is(deeper.gid, 50);
  t.is(deeper.mode & S_ISGID, S_ISGID);
  // without setgid on the parent, the caller's group is used
  const plain = await fs.mkdir('/plain', 0o755, 1000, 1000);
  t.is(plain.gid, 1000);
  t.is(plain.mode & S_ISGID, 0);
});

test('mkdir follows a symlink in the middle of the path', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/real');
  await fs.symlink('real', '/alias');
  await fs.mkdir('/alias/sub');
  t.deepEqual(await fs.names('/real'), ['sub']);
  t.is((await fs.attr('/real')).nlink, 3);
});
