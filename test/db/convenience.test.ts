import test from 'ava';
import { S_IFDIR, S_IFREG, perms, type, useDatabase } from './_support.js';

const env = useDatabase(test);

interface LsRow {
  name: string;
  kind: string;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: Date;
  target: string | null;
}

interface StatRow {
  path: string;
  ino: number;
  kind: string;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  target: string | null;
}

test('ls lists a directory with readable kinds, modes, sizes and symlink targets', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d', 0o750);
  await fs.file('/d/notes.txt', 'hello', 0o600, 1000, 100);
  await fs.mkdir('/d/sub');
  await fs.symlink('notes.txt', '/d/link');
  await fs.mknod('/d/fifo', 0o010644);
  const rows = await fs.sql<LsRow[]>`select * from tarbox.ls('/d')`;
  t.deepEqual(rows.map((r) => [r.name, r.kind]), [['fifo', 'fifo'], ['link', 'symlink'], ['notes.txt', 'file'], ['sub', 'dir']]);
  const notes = rows.find((r) => r.name === 'notes.txt')!;
  t.is(notes.mode, 0o600);
  t.is(notes.size, 5);
  t.is(notes.uid, 1000);
  t.is(notes.gid, 100);
  t.is(notes.nlink, 1);
  t.true(notes.mtime instanceof Date);
  t.true(Math.abs(notes.mtime.getTime() - Date.now()) < 60_000);
  t.is(notes.target, null);
  t.is(rows.find((r) => r.name === 'link')!.target, 'notes.txt');
  t.is(rows.find((r) => r.name === 'sub')!.nlink, 2);
});

test('ls of the root by default, and of a single file shows that file', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/a');
  await fs.file('/a/b.txt', 'xyz');
  await fs.symlink('/a/b.txt', '/l');
  const root = await fs.sql<LsRow[]>`select * from tarbox.ls()`;
  t.deepEqual(root.map((r) => r.name), ['a', 'l']);
  t.is(root.find((r) => r.name === 'l')!.target, '/a/b.txt');
  const one = await fs.sql<LsRow[]>`select * from tarbox.ls('/a/b.txt')`;
  t.is(one.length, 1);
  t.is(one[0].name, 'b.txt');
  t.is(one[0].kind, 'file');
  t.is(one[0].size, 3);
  const link = await fs.sql<LsRow[]>`select * from tarbox.ls('/l')`;
  t.deepEqual([link[0].name, link[0].kind, link[0].target], ['l', 'symlink', '/a/b.txt']);
  await t.throwsAsync(fs.sql`select * from tarbox.ls('/missing')`, { code: 'TBNOE' });
});

test('ls shows names that are not valid UTF-8 escaped instead of failing', async (t) => {
  const fs = await env.tenant(t);
  await fs.create(Buffer.from([0x2f, 0x61, 0xff, 0x62])); // "/a\xffb"
  await fs.create('/ünïcödé');
  const rows = await fs.sql<LsRow[]>`select * from tarbox.ls('/')`;
  t.is(rows.length, 2);
  t.true(rows.some((r) => r.name === 'ünïcödé'));
  t.true(rows.some((r) => r.name.startsWith('a') && r.name.endsWith('b') && r.name.length > 2));
});

test('stat returns the attributes of a path with timestamps', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'twelve bytes', 0o640, 7, 8);
  await fs.utimens('/f', 1700000000, 500000000, 1600000000, 250000000);
  await fs.symlink('/f', '/l');
  const [s] = await fs.sql<StatRow[]>`select * from tarbox.stat('/f')`;
  t.is(s.path, '/f');
  t.is(s.ino, f.ino);
  t.is(s.kind, 'file');
  t.is(s.mode, 0o640);
  t.is(s.nlink, 1);
  t.is(s.uid, 7);
  t.is(s.gid, 8);
  t.is(s.size, 12);
  t.is(s.blocks, 1);
  t.is(s.atime.getTime(), 1700000000500);
  t.is(s.mtime.getTime(), 1600000000250);
  t.is(s.target, null);
  const [l] = await fs.sql<StatRow[]>`select * from tarbox.stat('/l')`;
  t.is(l.kind, 'symlink');
  t.is(l.target, '/f');
  await t.throwsAsync(fs.sql`select * from tarbox.stat('/missing')`, { code: 'TBNOE' });
});

test('write_file creates a file and read_file reads it back', async (t) => {
  const fs = await env.tenant(t);
  const [{ n }] = await fs.sql<{ n: number }[]>`select tarbox.write_file('/hello.txt', ${Buffer.from('hi there')}) as n`;
  t.is(n, 8);
  const a = await fs.attr('/hello.txt');
  t.is(type(a), S_IFREG);
  t.is(perms(a), 0o644);
  const [{ d }] = await fs.sql<{ d: Buffer }[]>`select tarbox.read_file('/hello.txt') as d`;
  t.deepEqual(d, Buffer.from('hi there'));
  const [{ s }] = await fs.sql<{ s: string }[]>`select convert_from(tarbox.read_file('/hello.txt'), 'UTF8') as s`;
  t.is(s, 'hi there');
});

test('write_file replaces the whole content of an existing file (same inode)', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'a long original content');
  await fs.sql`select tarbox.write_file('/f', ${Buffer.from('short')})`;
  const a = await fs.attr('/f');
  t.is(a.ino, before.ino);
  t.is(a.size, 5);
  t.deepEqual(await fs.read('/f'), Buffer.from('short'));
  await fs.sql`select tarbox.write_file('/f', ${Buffer.alloc(0)})`;
  t.is((await fs.attr('/f')).size, 0);
});

test('write_file honours the mode for a new file; on a directory it is EISDIR, in a missing directory ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.write_file('/x', ${Buffer.from('x')}, ${0o600})`;
  t.is(perms(await fs.attr('/x')), 0o600);
  await fs.mkdir('/d');
  await t.throwsAsync(fs.sql`select tarbox.write_file('/d', ${Buffer.from('x')})`, { code: 'TBISD' });
  await t.throwsAsync(fs.sql`select tarbox.write_file('/nodir/x', ${Buffer.from('x')})`, { code: 'TBNOE' });
});

test('write_file through a symlink writes the target', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/target', 'old');
  await fs.symlink('/target', '/l');
  await fs.sql`select tarbox.write_file('/l', ${Buffer.from('new')})`;
  t.deepEqual(await fs.read('/target'), Buffer.from('new'));
  t.is(type(await fs.attr('/l')), 0o120000);
});

test('read_file of a missing file is ENOENT, of a directory EISDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await t.throwsAsync(fs.sql`select tarbox.read_file('/missing')`, { code: 'TBNOE' });
  await t.throwsAsync(fs.sql`select tarbox.read_file('/d')`, { code: 'TBISD' });
});

test('make_directory without parents is mkdir; with parents makes every missing level', async (t) => {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.make_directory('/one')`;
  t.is(type(await fs.attr('/one')), S_IFDIR);
  await t.throwsAsync(fs.sql`select tarbox.make_directory('/one')`, { code: 'TBEXI' });
  await t.throwsAsync(fs.sql`select tarbox.make_directory('/a/b')`, { code: 'TBNOE' });
  await fs.sql`select tarbox.make_directory('/a/b/c', true)`;
  t.deepEqual(await fs.names('/a'), ['b']);
  t.deepEqual(await fs.names('/a/b'), ['c']);
  t.is((await fs.attr('/a')).nlink, 3);
  // existing levels are fine, and so are extra slashes
  await fs.sql`select tarbox.make_directory('//a//b/c/d/', true)`;
  t.deepEqual(await fs.names('/a/b/c'), ['d']);
  await fs.sql`select tarbox.make_directory('/a/b', true)`; // mkdir -p of an existing directory succeeds
  await fs.sql`select tarbox.make_directory('/m', true, ${0o700})`;
  t.is(perms(await fs.attr('/m')), 0o700);
});

test('make_directory with parents through a file is ENOTDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.sql`select tarbox.make_directory('/f/x', true)`, { code: 'TBNDR' });
  await t.throwsAsync(fs.sql`select tarbox.make_directory('/f', true)`, { code: 'TBNDR' });
});

test('make_directory with parents accepts an existing symlink to a directory (mkdir -p)', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/real');
  await fs.symlink('/real', '/alias');
  await fs.sql`select tarbox.make_directory('/alias/sub', true)`;
  t.deepEqual(await fs.names('/real'), ['sub']);
  await fs.sql`select tarbox.make_directory('/alias', true)`;
  t.pass();
});

test('remove unlinks a file or a symlink (not its target) and removes an empty directory', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'x');
  await fs.mkdir('/d');
  await fs.mkdir('/target');
  await fs.create('/target/keep');
  await fs.symlink('/target', '/l');
  await fs.sql`select tarbox.remove('/f')`;
  await fs.sql`select tarbox.remove('/d')`;
  await fs.sql`select tarbox.remove('/l')`;
  t.deepEqual(await fs.names('/'), ['target']);
  t.deepEqual(await fs.names('/target'), ['keep']);
  await t.throwsAsync(fs.sql`select tarbox.remove('/missing')`, { code: 'TBNOE' });
});

test('remove of a non-empty directory is ENOTEMPTY unless recursive', async (t) => {
  const fs = await env.tenant(t);
  await fs.sql`select tarbox.make_directory('/tree/a/b', true)`;
  await fs.file('/tree/f1', 'one');
  await fs.file('/tree/a/f2', 'two');
  await fs.file('/tree/a/b/f3', 'three');
  await fs.symlink('/tree/a', '/tree/a/b/loop');
  await fs.file('/outside', 'stays');
  await fs.symlink('/outside', '/tree/to-outside');
  await t.throwsAsync(fs.sql`select tarbox.remove('/tree')`, { code: 'TBNEM' });
  await fs.sql`select tarbox.remove('/tree', true)`;
  t.deepEqual(await fs.names('/'), ['outside']);
  t.deepEqual(await fs.read('/outside'), Buffer.from('stays'));
  t.is((await fs.attr('/')).nlink, 2);
  t.is(await env.chunkCount(fs.tenantId), 1);
});

test('remove of / recursively empties the root but keeps it', async (t) => {
  const fs = await env.tenant(t);
  const root = await fs.attr('/');
  await fs.sql`select tarbox.make_directory('/x/y', true)`;
  await fs.file('/x/y/z', 'data');
  await fs.file('/top', 'data2');
  await fs.sql`select tarbox.remove('/', true)`;
  t.deepEqual(await fs.readdir('/'), []);
  const after = await fs.attr('/');
  t.is(after.ino, root.ino);
  t.is(after.nlink, 2);
  t.is(await env.chunkCount(fs.tenantId), 0);
  await t.throwsAsync(fs.sql`select tarbox.remove('/')`, { code: 'TBBSY' });
});
