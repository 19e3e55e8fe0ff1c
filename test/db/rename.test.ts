import test from 'ava';
import { S_IFDIR, ctime, mtime, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('rename within a directory moves the inode to the new name', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/old', 'data');
  await fs.rename('/old', '/new');
  t.deepEqual(await fs.names('/'), ['new']);
  const a = await fs.attr('/new');
  t.is(a.ino, f.ino);
  t.is(a.nlink, 1);
  t.deepEqual(await fs.read('/new'), Buffer.from('data'));
});

test('rename updates mtime/ctime of both parents and ctime (not mtime) of the moved inode', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/b');
  const f = await fs.file('/a/f', 'x');
  const [a0, b0] = [await fs.attr('/a'), await fs.attr('/b')];
  await tick();
  await fs.rename('/a/f', '/b/g');
  const [a1, b1, g] = [await fs.attr('/a'), await fs.attr('/b'), await fs.attr('/b/g')];
  t.true(mtime(a1) > mtime(a0));
  t.true(ctime(a1) > ctime(a0));
  t.true(mtime(b1) > mtime(b0));
  t.true(ctime(b1) > ctime(b0));
  t.true(ctime(g) > ctime(f));
  t.is(mtime(g), mtime(f));
  t.is(a1.nlink, 2);
  t.is(b1.nlink, 2);
});

test('moving a directory between parents moves its link count contribution', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/b');
  await fs.mkdir('/a/sub');
  await fs.create('/a/sub/f');
  t.is((await fs.attr('/a')).nlink, 3);
  await fs.rename('/a/sub', '/b/moved');
  t.is((await fs.attr('/a')).nlink, 2);
  t.is((await fs.attr('/b')).nlink, 3);
  t.is((await fs.attr('/b/moved')).nlink, 2);
  t.deepEqual(await fs.names('/b/moved'), ['f']);
  t.is((await fs.attr('/')).nlink, 4);
  // '..' of the moved directory now leads to its new parent
  t.is((await fs.attr('/b/moved/..')).ino, (await fs.attr('/b')).ino);
});

test('rename over an existing file replaces it; the replaced inode is freed', async (t) => {
  const fs = await env.tenant(t);
  const src = await fs.file('/src', 'new content');
  const dst = await fs.file('/dst', 'old content');
  await fs.rename('/src', '/dst');
  t.deepEqual(await fs.names('/'), ['dst']);
  t.is((await fs.attr('/dst')).ino, src.ino);
  t.deepEqual(await fs.read('/dst'), Buffer.from('new content'));
  await t.throwsAsync(fs.attrIno(dst.ino), { code: 'TBNOE' });
  t.is(await env.chunkCount(fs.tenantId), 1);
});

test('rename over a file with other links only drops one link of it', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/src', 'a');
  const victim = await fs.file('/dst', 'b');
  await fs.link('/dst', '/other');
  await tick();
  await fs.rename('/src', '/dst');
  const other = await fs.attr('/other');
  t.is(other.ino, victim.ino);
  t.is(other.nlink, 1);
  t.true(ctime(other) > ctime(victim));
  t.deepEqual(await fs.read('/other'), Buffer.from('b'));
});

test('rename of a directory over an empty directory replaces it and fixes link counts', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/src');
  await fs.create('/a/src/f');
  await fs.mkdir('/b');
  const empty = await fs.mkdir('/b/empty');
  await fs.rename('/a/src', '/b/empty');
  t.deepEqual(await fs.names('/b/empty'), ['f']);
  t.is((await fs.attr('/a')).nlink, 2);
  t.is((await fs.attr('/b')).nlink, 3);
  await t.throwsAsync(fs.attrIno(empty.ino), { code: 'TBNOE' });
  // in the same directory
  await fs.mkdir('/c');
  await fs.mkdir('/c/x');
  await fs.mkdir('/c/y');
  t.is((await fs.attr('/c')).nlink, 4);
  await fs.rename('/c/x', '/c/y');
  t.is((await fs.attr('/c')).nlink, 3);
  t.deepEqual(await fs.names('/c'), ['y']);
});

test('rename of a directory over a non-empty directory is ENOTEMPTY and changes nothing', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/src');
  await fs.mkdir('/dst');
  await fs.create('/dst/keep');
  const root = await fs.attr('/');
  await t.throwsAsync(fs.rename('/src', '/dst'), { code: 'TBNEM' });
  t.deepEqual(await fs.names('/'), ['dst', 'src']);
  t.deepEqual(await fs.names('/dst'), ['keep']);
  t.deepEqual(await fs.attr('/'), root);
});

test('rename of a file over a directory is EISDIR, of a directory over a file ENOTDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.mkdir('/d');
  await t.throwsAsync(fs.rename('/f', '/d'), { code: 'TBISD' });
  await t.throwsAsync(fs.rename('/d', '/f'), { code: 'TBNDR' });
  t.is(type(await fs.attr('/d')), S_IFDIR);
  t.deepEqual(await fs.names('/'), ['d', 'f']);
});

test('rename of a directory into its own subtree is EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.symlink('/a/b', '/lb');
  await t.throwsAsync(fs.rename('/a', '/a/b/c'), { code: 'TBINV' });
  await t.throwsAsync(fs.rename('/a', '/a/c'), { code: 'TBINV' });
  await t.throwsAsync(fs.rename('/a', '/lb/c'), { code: 'TBINV' }); // through a symlink
  t.deepEqual(await fs.names('/a'), ['b']);
});

test('rename of an ancestor onto a non-empty descendant is ENOTEMPTY (Linux)', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.create('/a/b/f');
  await t.throwsAsync(fs.rename('/a/b', '/a'), { code: 'TBNEM' });
});

test('rename of a name onto itself or onto another link of the same inode does nothing', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'x');
  await fs.link('/f', '/g');
  const before = await fs.attr('/f');
  await fs.rename('/f', '/f');
  await fs.rename('/f', '/g');
  t.deepEqual(await fs.names('/'), ['f', 'g']);
  t.deepEqual(await fs.attr('/f'), before);
});

test('rename of a directory onto itself does nothing', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/d/f');
  // rename(2): "If oldpath and newpath are existing hard links referring to the same file, rename() does nothing"
  await fs.rename('/d', '/d');
  t.deepEqual(await fs.names('/d'), ['f']);
});

test('RENAME_NOREPLACE (flags 1) fails with EEXIST when the target exists, renames otherwise', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/a', 'A');
  await fs.file('/b', 'B');
  await fs.mkdir('/d1');
  await fs.mkdir('/d2');
  await t.throwsAsync(fs.rename('/a', '/b', 1), { code: 'TBEXI' });
  await t.throwsAsync(fs.rename('/d1', '/d2', 1), { code: 'TBEXI' });
  t.deepEqual(await fs.read('/b'), Buffer.from('B'));
  await fs.rename('/a', '/c', 1);
  t.deepEqual(await fs.names('/'), ['b', 'c', 'd1', 'd2']);
  await t.throwsAsync(fs.rename('/b', '/e', 4), { code: 'TBINV' }); // RENAME_WHITEOUT is not supported
});

test('rename errors: missing source ENOENT, missing target directory ENOENT, root EBUSY, . EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/f');
  await t.throwsAsync(fs.rename('/missing', '/x'), { code: 'TBNOE' });
  await t.throwsAsync(fs.rename('/f', '/nodir/x'), { code: 'TBNOE' });
  await t.throwsAsync(fs.rename('/f', '/f/x'), { code: 'TBNDR' });
  await t.throwsAsync(fs.rename('/', '/x'), { code: 'TBBSY' });
  await t.throwsAsync(fs.rename('/d', '/'), { code: 'TBBSY' });
  await t.throwsAsync(fs.rename('/d/.', '/x'), { code: 'TBINV' });
  t.deepEqual(await fs.names('/'), ['d', 'f']);
});

test('rename moves a symlink itself, not its target', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/target', 't');
  await fs.symlink('/target', '/l');
  await fs.rename('/l', '/l2');
  t.deepEqual(await fs.readlink('/l2'), Buffer.from('/target'));
  t.deepEqual(await fs.names('/'), ['l2', 'target']);
});

test('rename in a sticky directory: EPERM for a stranger, allowed for the entry owner and the directory owner', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/tmp', 0o1777, 500, 500);
  await fs.create('/tmp/f', 0o666, 1000, 1000);
  await t.throwsAsync(fs.rename('/tmp/f', '/tmp/g', 0, 2000), { code: 'TBPRM' });
  await t.throwsAsync(fs.rename('/tmp/f', '/elsewhere', 0, 2000), { code: 'TBPRM' });
  await fs.rename('/tmp/f', '/tmp/g', 0, 1000);
  await fs.rename('/tmp/g', '/tmp/h', 0, 500);
  t.deepEqual(await fs.names('/tmp'), ['h']);
  // replacing an entry owned by someone else in a sticky directory is EPERM too
  await fs.create('/tmp/victim', 0o666, 1000, 1000);
  await fs.create('/tmp/mine', 0o666, 2000, 2000);
  await t.throwsAsync(fs.rename('/tmp/mine', '/tmp/victim', 0, 2000), { code: 'TBPRM' });
  t.deepEqual(await fs.names('/tmp'), ['h', 'mine', 'victim']);
});

test('rename with . and .. in the paths', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/b');
  await fs.file('/a/f', 'x');
  await fs.rename('/a/./f', '/b/../b//g');
  t.deepEqual(await fs.names('/b'), ['g']);
  t.deepEqual(await fs.readdir('/a'), []);
});
