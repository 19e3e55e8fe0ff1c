// readdir through a real mount: . and .., many entries, types, inode numbers, changes.
import test from 'ava';
import * as fs from 'node:fs';
import { allowTime, errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('an empty directory lists only . and ..', async (t) => {
  fs.mkdirSync(m.path('empty'));
  t.deepEqual(fs.readdirSync(m.path('empty')), []);
  const ls = await m.check('ls -1a empty');
  t.deepEqual(ls.split('\n').filter(Boolean).sort(), ['.', '..']);
  // the kernel resolves . and .. to the right directories
  t.is(fs.statSync(m.path('empty', '.')).ino, fs.statSync(m.path('empty')).ino);
  t.is(fs.statSync(m.path('empty', '..')).ino, fs.statSync(m.mountpoint).ino);
});

test.serial('entries with their types', (t) => {
  fs.mkdirSync(m.path('types'));
  fs.writeFileSync(m.path('types', 'file'), 'x');
  fs.mkdirSync(m.path('types', 'dir'));
  fs.symlinkSync('file', m.path('types', 'link'));
  const entries = fs.readdirSync(m.path('types'), { withFileTypes: true });
  const kinds = Object.fromEntries(entries.map((e) => [e.name, e.isFile() ? 'f' : e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : '?']));
  t.deepEqual(kinds, { dir: 'd', file: 'f', link: 'l' });
});

test.serial('d_ino from readdir is the inode number stat reports', async (t) => {
  fs.mkdirSync(m.path('inos'));
  for (const n of ['a', 'b', 'c']) fs.writeFileSync(m.path('inos', n), n);
  fs.mkdirSync(m.path('inos', 'sub'));
  const r = await m.python<[string, number, number][]>(`
out([[e.name, e.inode(), os.lstat(e.path).st_ino] for e in os.scandir('inos')])`);
  t.is(r.length, 4);
  for (const [name, dIno, stIno] of r) t.is(dIno, stIno, `d_ino of ${name}`);
});

test.serial('3,000 entries: all listed, once each, across many readdir calls', async (t) => {
  await allowTime(t, 90_000);
  const dir = m.path('many');
  fs.mkdirSync(dir);
  const names: string[] = [];
  for (let i = 0; i < 3000; i++) names.push(`entry-${String(i).padStart(5, '0')}-${'x'.repeat(i % 97)}`);
  // create from a child process: much faster than 3,000 sync calls from here, and another caller
  const created = await m.run(`python3 -c "
import os
for i in range(3000):
    open('many/entry-%05d-%s' % (i, 'x' * (i % 97)), 'w').close()
"`);
  t.is(created.code, 0, created.stderr);
  const listed = fs.readdirSync(dir);
  t.is(listed.length, names.length);
  t.deepEqual([...listed].sort(), [...names].sort());
  t.is(new Set(listed).size, listed.length, 'no duplicates');
  // a second listing through a reopened directory stream gives the same set
  const ls = (await m.check('ls -1f many')).split('\n').filter(Boolean);
  t.is(ls.length, names.length + 2);
  t.true(ls.includes('.') && ls.includes('..'));
  t.is(fs.statSync(dir).nlink, 2);
});

test.serial('readdir reflects creates, unlinks and renames at once', (t) => {
  const dir = m.path('changes');
  fs.mkdirSync(dir);
  fs.writeFileSync(m.path('changes', 'one'), '1');
  t.deepEqual(fs.readdirSync(dir), ['one']);
  fs.writeFileSync(m.path('changes', 'two'), '2');
  t.deepEqual(fs.readdirSync(dir).sort(), ['one', 'two']);
  fs.renameSync(m.path('changes', 'one'), m.path('changes', 'three'));
  t.deepEqual(fs.readdirSync(dir).sort(), ['three', 'two']);
  fs.unlinkSync(m.path('changes', 'two'));
  t.deepEqual(fs.readdirSync(dir), ['three']);
});

test.serial('readdir of a file is ENOTDIR, of a missing path ENOENT', (t) => {
  fs.writeFileSync(m.path('notdir'), '');
  t.is(errorCode(() => fs.readdirSync(m.path('notdir'))), 'ENOTDIR');
  t.is(errorCode(() => fs.readdirSync(m.path('nothing-here'))), 'ENOENT');
});

test.serial('a directory reached through a symlink lists the target', (t) => {
  fs.mkdirSync(m.path('real'));
  fs.writeFileSync(m.path('real', 'inside'), '');
  fs.symlinkSync('real', m.path('alias'));
  t.deepEqual(fs.readdirSync(m.path('alias')), ['inside']);
});

test.serial('a directory listed while being modified (rm -rf of a big directory)', async (t) => {
  await m.check('mkdir big && cd big && for i in $(seq 1 400); do : > f$i; done && mkdir -p d1/d2/d3 && : > d1/d2/d3/f');
  await m.check('rm -rf big');
  t.false(fs.existsSync(m.path('big')));
});
