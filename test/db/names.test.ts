import test from 'ava';
import { S_IFDIR, S_IFLNK, S_IFREG, type, useDatabase } from './_support.js';

const env = useDatabase(test);

const slash = Buffer.from('/');
const abs = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.flatMap((p) => [slash, typeof p === 'string' ? Buffer.from(p) : p]));

test('names may hold any byte except / and NUL', async (t) => {
  const fs = await env.tenant(t);
  const every = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1).filter((b) => b !== 0x2f)); // 254 bytes
  const names = [
    every,
    Buffer.from([0xff, 0xfe, 0x80]), // invalid UTF-8
    Buffer.from('new\nline'),
    Buffer.from('back\\slash'),
    Buffer.from('sp ace'),
    Buffer.from('...'),
    Buffer.from('.hidden'),
    Buffer.from('..x'),
    Buffer.from('€ 日本'),
    Buffer.from("quote'\"%_*?"),
  ];
  for (const n of names) {
    await fs.create(abs(n));
    await fs.write(abs(n), 0, n);
  }
  const listed = (await fs.readdir('/')).map((d) => d.name);
  t.deepEqual(listed, [...names].sort(Buffer.compare));
  for (const n of names) {
    t.deepEqual(await fs.read(abs(n)), n);
    t.is(type(await fs.attr(abs(n))), S_IFREG);
  }
});

test('names of 255 bytes are accepted, 256 bytes is ENAMETOOLONG for every operation', async (t) => {
  const fs = await env.tenant(t);
  const n255 = 'a'.repeat(255);
  const n256 = 'b'.repeat(256);
  await fs.create('/' + n255);
  await fs.mkdir('/d' + 'x'.repeat(254));
  // the limit is in bytes, not characters: 128 two-byte characters = 256 bytes
  const utf8 = 'é'.repeat(128);
  t.is(Buffer.byteLength(utf8), 256);
  await t.throwsAsync(fs.create('/' + utf8), { code: 'TBNTL' });
  await fs.create('/' + 'é'.repeat(127));
  await t.throwsAsync(fs.create('/' + n256), { code: 'TBNTL' });
  await t.throwsAsync(fs.mkdir('/' + n256), { code: 'TBNTL' });
  await t.throwsAsync(fs.symlink('/x', '/' + n256), { code: 'TBNTL' });
  await t.throwsAsync(fs.attr('/' + n256), { code: 'TBNTL' });
  await t.throwsAsync(fs.rename('/' + n255, '/' + n256), { code: 'TBNTL' });
  await t.throwsAsync(fs.link('/' + n255, '/' + n256), { code: 'TBNTL' });
  t.is((await fs.readdir('/')).length, 3);
});

test('a NUL byte in a name is EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await t.throwsAsync(fs.create(Buffer.from('/a\0b')), { code: 'TBINV' });
  await t.throwsAsync(fs.mkdir(Buffer.from('/d/\0')), { code: 'TBINV' });
  await t.throwsAsync(fs.attr(Buffer.from('/d\0/x')), { code: 'TBINV' });
  t.deepEqual(await fs.names('/'), ['d']);
});

test('an empty or relative path is EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.create(''), { code: 'TBINV' });
  await t.throwsAsync(fs.create('a'), { code: 'TBINV' });
  await t.throwsAsync(fs.mkdir('./a'), { code: 'TBINV' });
});

test('a path longer than 4096 bytes is ENAMETOOLONG', async (t) => {
  const fs = await env.tenant(t);
  const long = ('/' + 'a'.repeat(200)).repeat(21); // 4221 bytes
  await t.throwsAsync(fs.attr(long), { code: 'TBNTL' });
});

test('repeated slashes and trailing slashes on directories resolve normally', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.file('/a/b/f', 'x');
  const ino = (await fs.attr('/a/b/f')).ino;
  for (const p of ['//a/b/f', '/a//b///f', '///a///b///f']) t.is((await fs.attr(p)).ino, ino, p);
  t.is((await fs.attr('/a/b/')).ino, (await fs.attr('/a/b')).ino);
  t.is((await fs.attr('//')).ino, (await fs.attr('/')).ino);
  await fs.mkdir('/a//c/');
  t.deepEqual(await fs.names('/a'), ['b', 'c']);
});

test('a trailing slash after a non-directory is ENOTDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  // path_resolution(7): a pathname ending in / must name a directory
  await t.throwsAsync(fs.attr('/f/'), { code: 'TBNDR' });
  await t.throwsAsync(fs.unlink('/f/'), { code: 'TBNDR' });
  t.true(await fs.exists('/f'));
});

test('a trailing slash after a symlink to a directory follows it', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/real');
  await fs.symlink('/real', '/l');
  // lstat("l/") resolves to the directory, lstat("l") is the link
  t.is(type(await fs.attr('/l')), S_IFLNK);
  t.is(type(await fs.attr('/l/')), S_IFDIR);
});

test('. and .. are resolved, .. of the root is the root', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.file('/a/b/f', 'x');
  const ino = (await fs.attr('/a/b/f')).ino;
  for (const p of ['/a/./b/f', '/a/b/../b/f', '/./a/b/./f', '/../a/b/f', '/../../a/../a/b/f', '/a/b/./../../a/b/f']) {
    t.is((await fs.attr(p)).ino, ino, p);
  }
  t.is((await fs.attr('/a/b/..')).ino, (await fs.attr('/a')).ino);
  t.is((await fs.attr('/..')).ino, (await fs.attr('/')).ino);
  t.is((await fs.attr('/a/.')).ino, (await fs.attr('/a')).ino);
  // creating through . and ..
  await fs.create('/a/b/../new');
  await fs.mkdir('/a/./b/./sub');
  t.deepEqual(await fs.names('/a'), ['b', 'new']);
  t.deepEqual(await fs.names('/a/b'), ['f', 'sub']);
});

test('.. after a missing component is ENOENT, after a file ENOTDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.attr('/missing/..'), { code: 'TBNOE' });
  await t.throwsAsync(fs.attr('/missing/../f'), { code: 'TBNOE' });
  await t.throwsAsync(fs.attr('/f/..'), { code: 'TBNDR' });
  await t.throwsAsync(fs.attr('/f/.'), { code: 'TBNDR' });
});

test('intermediate symlinks are followed, absolute and relative, and .. after them is physical', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/x');
  await fs.mkdir('/x/y');
  await fs.file('/x/y/f', 'deep');
  await fs.file('/x/g', 'shallow');
  await fs.mkdir('/links');
  await fs.symlink('/x/y', '/links/abs');
  await fs.symlink('../x/y', '/links/rel');
  await fs.symlink('abs', '/links/chain');
  t.deepEqual(await fs.read('/links/abs/f'), Buffer.from('deep'));
  t.deepEqual(await fs.read('/links/rel/f'), Buffer.from('deep'));
  t.deepEqual(await fs.read('/links/chain/f'), Buffer.from('deep'));
  // .. after a followed symlink goes to the parent of the target, not of the link
  t.deepEqual(await fs.read('/links/abs/../g'), Buffer.from('shallow'));
  t.deepEqual(await fs.read('/links/rel/../g'), Buffer.from('shallow'));
  t.is((await fs.attr('/links/abs/..')).ino, (await fs.attr('/x')).ino);
  // a symlink to a file in the middle of a path is ENOTDIR
  await fs.symlink('/x/g', '/links/file');
  await t.throwsAsync(fs.attr('/links/file/z'), { code: 'TBNDR' });
  // dangling in the middle: ENOENT
  await fs.symlink('/nowhere', '/links/dangling');
  await t.throwsAsync(fs.attr('/links/dangling/z'), { code: 'TBNOE' });
});

test('a symlink loop is ELOOP when followed, fine when not', async (t) => {
  const fs = await env.tenant(t);
  await fs.symlink('/b', '/a');
  await fs.symlink('/a', '/b');
  await fs.symlink('self', '/self');
  t.is(type(await fs.attr('/a')), S_IFLNK);
  t.deepEqual(await fs.readlink('/self'), Buffer.from('self'));
  await t.throwsAsync(fs.attr('/a/x'), { code: 'TBLOP' });
  await t.throwsAsync(fs.read('/a'), { code: 'TBLOP' });
  await t.throwsAsync(fs.open('/self'), { code: 'TBLOP' });
  await t.throwsAsync(fs.create('/self/x'), { code: 'TBLOP' });
  await t.throwsAsync(fs.readdir('/b'), { code: 'TBLOP' });
  await fs.unlink('/self');
  t.deepEqual(await fs.names('/'), ['a', 'b']);
});

test('40 chained symlinks resolve, 41 are ELOOP (Linux MAXSYMLINKS)', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/end', 'reached');
  // /l1 -> /l2 -> ... -> /lN -> /end
  for (let i = 41; i >= 1; i--) await fs.symlink(i === 41 ? '/end' : `/l${i + 1}`, `/l${i}`);
  t.deepEqual(await fs.read('/l2'), Buffer.from('reached')); // 40 links
  await t.throwsAsync(fs.read('/l1'), { code: 'TBLOP' }); // 41 links
});

test('names that are only dots other than . and .. are ordinary names', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/...');
  await fs.create('/.../....');
  t.deepEqual(await fs.names('/'), ['...']);
  t.deepEqual(await fs.names('/...'), ['....']);
  await t.throwsAsync(fs.create('/.'), { code: 'TBEXI' });
  await t.throwsAsync(fs.create('/..'), { code: 'TBEXI' });
});
