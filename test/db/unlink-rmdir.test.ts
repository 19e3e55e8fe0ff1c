import test from 'ava';
import { ctime, mtime, tick, useDatabase } from './_support.js';

const env = useDatabase(test);

test('unlink removes a file and updates the parent mtime/ctime', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  const f = await fs.file('/d/f', 'content');
  const before = await fs.attr('/d');
  await tick();
  await fs.unlink('/d/f');
  const after = await fs.attr('/d');
  t.true(mtime(after) > mtime(before));
  t.true(ctime(after) > ctime(before));
  t.is(after.nlink, 2);
  t.false(await fs.exists('/d/f'));
  await t.throwsAsync(fs.attrIno(f.ino), { code: 'TBNOE' });
  t.deepEqual(await fs.readdir('/d'), []);
});

test('unlink of a directory is EISDIR, of a missing name ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await t.throwsAsync(fs.unlink('/d'), { code: 'TBISD' });
  await t.throwsAsync(fs.unlink('/'), { code: 'TBISD' });
  await t.throwsAsync(fs.unlink('/missing'), { code: 'TBNOE' });
  await t.throwsAsync(fs.unlink('/missing/x'), { code: 'TBNOE' });
  t.true(await fs.exists('/d'));
});

test('a name can be reused after unlink, for a new inode', async (t) => {
  const fs = await env.tenant(t);
  const first = await fs.file('/f', 'first');
  await fs.unlink('/f');
  const second = await fs.file('/f', 'second!');
  t.not(second.ino, first.ino);
  t.deepEqual(await fs.read('/f'), Buffer.from('second!'));
});

test('unlink in a sticky directory: EPERM for a uid owning neither entry nor directory', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/tmp', 0o1777, 0, 0);
  await fs.create('/tmp/mine', 0o666, 1000, 1000);
  await t.throwsAsync(fs.unlink('/tmp/mine', 2000), { code: 'TBPRM' });
  t.true(await fs.exists('/tmp/mine'));
  await fs.unlink('/tmp/mine', 1000); // the file's owner may
  t.false(await fs.exists('/tmp/mine'));
  await fs.create('/tmp/other', 0o666, 1000, 1000);
  await fs.unlink('/tmp/other', 0); // root may
  // the directory's owner may
  await fs.mkdir('/owned', 0o1777, 3000, 3000);
  await fs.create('/owned/f', 0o666, 1000, 1000);
  await t.throwsAsync(fs.unlink('/owned/f', 2000), { code: 'TBPRM' });
  await fs.unlink('/owned/f', 3000);
  t.deepEqual(await fs.readdir('/owned'), []);
});

test('without the sticky bit any uid may unlink (write permission is the shim\'s business)', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/open', 0o777, 0, 0);
  await fs.create('/open/f', 0o644, 1000, 1000);
  await fs.unlink('/open/f', 2000);
  t.false(await fs.exists('/open/f'));
});

test('rmdir removes an empty directory and drops the parent nlink', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/p');
  const d = await fs.mkdir('/p/d');
  const before = await fs.attr('/p');
  t.is(before.nlink, 3);
  await tick();
  await fs.rmdir('/p/d');
  const after = await fs.attr('/p');
  t.is(after.nlink, 2);
  t.true(mtime(after) > mtime(before));
  t.true(ctime(after) > ctime(before));
  await t.throwsAsync(fs.attrIno(d.ino), { code: 'TBNOE' });
});

test('rmdir of a non-empty directory is ENOTEMPTY and changes nothing', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/d/f');
  await fs.mkdir('/e');
  await fs.mkdir('/e/sub');
  const root = await fs.attr('/');
  await t.throwsAsync(fs.rmdir('/d'), { code: 'TBNEM' });
  await t.throwsAsync(fs.rmdir('/e'), { code: 'TBNEM' });
  t.deepEqual(await fs.attr('/'), root);
  await fs.unlink('/d/f');
  await fs.rmdir('/d'); // empty now
  t.deepEqual(await fs.names('/'), ['e']);
});

test('rmdir of a file is ENOTDIR, of a symlink to a directory ENOTDIR, of / EBUSY, of . EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.mkdir('/d');
  await fs.symlink('/d', '/ld');
  await t.throwsAsync(fs.rmdir('/f'), { code: 'TBNDR' });
  await t.throwsAsync(fs.rmdir('/ld'), { code: 'TBNDR' });
  await t.throwsAsync(fs.rmdir('/'), { code: 'TBBSY' });
  await t.throwsAsync(fs.rmdir('/d/.'), { code: 'TBINV' });
  await t.throwsAsync(fs.rmdir('/missing'), { code: 'TBNOE' });
  t.deepEqual(await fs.names('/'), ['d', 'f', 'ld']);
});

test('rmdir in a sticky directory: EPERM for a stranger, allowed for the owner of the entry or the directory', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/tmp', 0o1777, 500, 500);
  await fs.mkdir('/tmp/a', 0o755, 1000, 1000);
  await fs.mkdir('/tmp/b', 0o755, 1000, 1000);
  await t.throwsAsync(fs.rmdir('/tmp/a', 2000), { code: 'TBPRM' });
  await fs.rmdir('/tmp/a', 1000);
  await fs.rmdir('/tmp/b', 500);
  t.deepEqual(await fs.readdir('/tmp'), []);
  t.is((await fs.attr('/tmp')).nlink, 2);
});

test('a removed directory name can be made again', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/d/x');
  await fs.unlink('/d/x');
  await fs.rmdir('/d');
  await fs.mkdir('/d');
  t.deepEqual(await fs.readdir('/d'), []);
  t.is((await fs.attr('/')).nlink, 3);
});
