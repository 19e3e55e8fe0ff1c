// rename through a real mount: replacing files and empty directories, moves across
// directories, and every error case rename(2) lists.
import test from 'ava';
import * as fs from 'node:fs';
import { errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
let n = 0;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

/** A fresh directory for one test. */
function dir(): string {
  const d = m.path(`case${++n}`);
  fs.mkdirSync(d);
  return d;
}

test.serial('rename a file: content and inode move, the old name is gone', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/a`, 'content');
  const ino = fs.statSync(`${d}/a`).ino;
  fs.renameSync(`${d}/a`, `${d}/b`);
  t.false(fs.existsSync(`${d}/a`));
  t.is(fs.readFileSync(`${d}/b`, 'utf8'), 'content');
  t.is(fs.statSync(`${d}/b`).ino, ino);
  t.deepEqual(fs.readdirSync(d), ['b']);
});

test.serial('rename over an existing file replaces it atomically', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/new`, 'new content');
  fs.writeFileSync(`${d}/old`, 'old content that is longer');
  const ino = fs.statSync(`${d}/new`).ino;
  fs.renameSync(`${d}/new`, `${d}/old`);
  t.is(fs.readFileSync(`${d}/old`, 'utf8'), 'new content');
  t.is(fs.statSync(`${d}/old`).ino, ino);
  t.is(fs.statSync(`${d}/old`).nlink, 1);
  t.deepEqual(fs.readdirSync(d), ['old']);
});

test.serial('rename over a file that has another hard link only drops one link', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/victim`, 'victim');
  fs.linkSync(`${d}/victim`, `${d}/keeper`);
  fs.writeFileSync(`${d}/src`, 'src');
  fs.renameSync(`${d}/src`, `${d}/victim`);
  t.is(fs.readFileSync(`${d}/keeper`, 'utf8'), 'victim');
  t.is(fs.statSync(`${d}/keeper`).nlink, 1);
});

test.serial('rename a directory over an empty directory', (t) => {
  const d = dir();
  fs.mkdirSync(`${d}/src`);
  fs.writeFileSync(`${d}/src/inner`, 'x');
  fs.mkdirSync(`${d}/empty`);
  fs.renameSync(`${d}/src`, `${d}/empty`);
  t.false(fs.existsSync(`${d}/src`));
  t.deepEqual(fs.readdirSync(`${d}/empty`), ['inner']);
  t.is(fs.statSync(d).nlink, 3, 'one subdirectory left in the parent');
});

test.serial('rename a directory over a non-empty directory is ENOTEMPTY (or EEXIST)', (t) => {
  const d = dir();
  fs.mkdirSync(`${d}/src`);
  fs.mkdirSync(`${d}/full`);
  fs.writeFileSync(`${d}/full/f`, '');
  const code = errorCode(() => fs.renameSync(`${d}/src`, `${d}/full`));
  t.true(code === 'ENOTEMPTY' || code === 'EEXIST', code);
  t.true(fs.existsSync(`${d}/src`));
  t.true(fs.existsSync(`${d}/full/f`));
});

test.serial('rename across directories, files and directories; link counts follow', (t) => {
  const d = dir();
  fs.mkdirSync(`${d}/from`);
  fs.mkdirSync(`${d}/to`);
  fs.writeFileSync(`${d}/from/file`, 'moved');
  fs.mkdirSync(`${d}/from/sub`);
  fs.writeFileSync(`${d}/from/sub/deep`, 'deep');
  fs.renameSync(`${d}/from/file`, `${d}/to/file`);
  fs.renameSync(`${d}/from/sub`, `${d}/to/sub`);
  t.deepEqual(fs.readdirSync(`${d}/from`), []);
  t.deepEqual(fs.readdirSync(`${d}/to`).sort(), ['file', 'sub']);
  t.is(fs.readFileSync(`${d}/to/file`, 'utf8'), 'moved');
  t.is(fs.readFileSync(`${d}/to/sub/deep`, 'utf8'), 'deep');
  t.is(fs.statSync(`${d}/from`).nlink, 2);
  t.is(fs.statSync(`${d}/to`).nlink, 3);
  // .. of the moved directory is its new parent
  t.is(fs.statSync(`${d}/to/sub/..`).ino, fs.statSync(`${d}/to`).ino);
});

test.serial('renaming a directory renames everything below it', (t) => {
  const d = dir();
  fs.mkdirSync(`${d}/a/b/c`, { recursive: true });
  fs.writeFileSync(`${d}/a/b/c/f`, 'deep file');
  t.is(fs.readFileSync(`${d}/a/b/c/f`, 'utf8'), 'deep file'); // warm every cache
  fs.renameSync(`${d}/a`, `${d}/z`);
  t.is(errorCode(() => fs.statSync(`${d}/a/b/c/f`)), 'ENOENT');
  t.is(fs.readFileSync(`${d}/z/b/c/f`, 'utf8'), 'deep file');
  fs.writeFileSync(`${d}/z/b/c/f2`, 'after');
  t.deepEqual(fs.readdirSync(`${d}/z/b/c`).sort(), ['f', 'f2']);
});

test.serial('a directory cannot move into its own subtree: EINVAL', (t) => {
  const d = dir();
  fs.mkdirSync(`${d}/top/mid/low`, { recursive: true });
  t.is(errorCode(() => fs.renameSync(`${d}/top`, `${d}/top/mid/low/top`)), 'EINVAL');
  t.is(errorCode(() => fs.renameSync(`${d}/top`, `${d}/top/inside`)), 'EINVAL');
  t.true(fs.statSync(`${d}/top/mid/low`).isDirectory());
});

test.serial('a file over a directory is EISDIR; a directory over a file ENOTDIR', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/file`, 'f');
  fs.mkdirSync(`${d}/dir`);
  t.is(errorCode(() => fs.renameSync(`${d}/file`, `${d}/dir`)), 'EISDIR');
  t.is(errorCode(() => fs.renameSync(`${d}/dir`, `${d}/file`)), 'ENOTDIR');
  t.is(fs.readFileSync(`${d}/file`, 'utf8'), 'f');
  t.true(fs.statSync(`${d}/dir`).isDirectory());
});

test.serial('rename of a missing source is ENOENT; into a missing directory ENOENT', (t) => {
  const d = dir();
  t.is(errorCode(() => fs.renameSync(`${d}/missing`, `${d}/x`)), 'ENOENT');
  fs.writeFileSync(`${d}/f`, '');
  t.is(errorCode(() => fs.renameSync(`${d}/f`, `${d}/nodir/f`)), 'ENOENT');
  fs.writeFileSync(`${d}/g`, '');
  t.is(errorCode(() => fs.renameSync(`${d}/f`, `${d}/g/f`)), 'ENOTDIR');
  t.true(fs.existsSync(`${d}/f`));
});

test.serial('rename onto another hard link of the same file does nothing', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/one`, 'same');
  fs.linkSync(`${d}/one`, `${d}/two`);
  fs.renameSync(`${d}/one`, `${d}/two`);
  t.true(fs.existsSync(`${d}/one`), 'POSIX: both names stay');
  t.true(fs.existsSync(`${d}/two`));
  t.is(fs.statSync(`${d}/two`).nlink, 2);
});

test.serial('rename a file to itself is a no-op', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/self`, 'me');
  fs.renameSync(`${d}/self`, `${d}/self`);
  t.is(fs.readFileSync(`${d}/self`, 'utf8'), 'me');
});

test.serial('rename a symlink moves the link, not its target', (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/target`, 't');
  fs.symlinkSync('target', `${d}/l1`);
  fs.renameSync(`${d}/l1`, `${d}/l2`);
  t.true(fs.lstatSync(`${d}/l2`).isSymbolicLink());
  t.is(fs.readlinkSync(`${d}/l2`), 'target');
  t.true(fs.existsSync(`${d}/target`));
});

test.serial('a file renamed while open: writes through the fd land in the new name', (t) => {
  const d = dir();
  const fd = fs.openSync(`${d}/open`, 'w');
  fs.writeSync(fd, 'before|');
  fs.renameSync(`${d}/open`, `${d}/renamed`);
  fs.writeSync(fd, 'after');
  fs.closeSync(fd);
  t.false(fs.existsSync(`${d}/open`));
  t.is(fs.readFileSync(`${d}/renamed`, 'utf8'), 'before|after');
});

test.serial('a file replaced by rename while open stays readable through its fd', async (t) => {
  const d = dir();
  fs.writeFileSync(`${d}/victim`, 'old data');
  const fd = fs.openSync(`${d}/victim`, 'r');
  fs.writeFileSync(`${d}/tmp`, 'new data');
  fs.renameSync(`${d}/tmp`, `${d}/victim`);
  const buf = Buffer.alloc(8);
  t.is(fs.readSync(fd, buf, 0, 8, 0), 8);
  t.is(buf.toString(), 'old data');
  t.deepEqual(fs.readdirSync(d), ['victim'], 'the replaced file has no name while it is open');
  fs.closeSync(fd);
  t.is(fs.readFileSync(`${d}/victim`, 'utf8'), 'new data');
  // FUSE sends RELEASE after close() returns: give it a moment
  for (let i = 0; i < 40 && fs.readdirSync(d).length > 1; i++) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(fs.readdirSync(d), ['victim'], 'nothing is left behind after the last close');
});

test.serial('mv of a file and a directory from the shell', async (t) => {
  const d = dir();
  const rel = d.slice(m.mountpoint.length + 1);
  await m.check(`cd ${rel} && echo hi > f && mkdir -p a/b && mv f a/b/ && mv a c`);
  t.is(fs.readFileSync(`${d}/c/b/f`, 'utf8'), 'hi\n');
});
