// create/open/release through a real mount: O_CREAT, O_EXCL, O_TRUNC, access modes.
import test from 'ava';
import * as fs from 'node:fs';
import { allowTime, errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
const { O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, O_APPEND } = fs.constants;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('O_CREAT makes an empty regular file with the requested mode', (t) => {
  const fd = fs.openSync(m.path('new'), O_CREAT | O_WRONLY, 0o640);
  fs.closeSync(fd);
  const st = fs.statSync(m.path('new'));
  t.true(st.isFile());
  t.is(st.size, 0);
  t.is(st.mode & 0o7777, 0o640);
  t.is(st.nlink, 1);
});

test.serial('O_CREAT|O_EXCL on an existing name is EEXIST and leaves the file alone', (t) => {
  fs.writeFileSync(m.path('excl'), 'keep me');
  t.is(errorCode(() => fs.openSync(m.path('excl'), O_CREAT | O_EXCL | O_WRONLY, 0o600)), 'EEXIST');
  t.is(errorCode(() => fs.openSync(m.path('excl'), 'wx')), 'EEXIST');
  t.is(fs.readFileSync(m.path('excl'), 'utf8'), 'keep me');
  // a directory and a (dangling) symlink count as existing too
  fs.mkdirSync(m.path('excl-dir'));
  t.is(errorCode(() => fs.openSync(m.path('excl-dir'), 'wx')), 'EEXIST');
  fs.symlinkSync('excl-target', m.path('excl-link'));
  t.is(errorCode(() => fs.openSync(m.path('excl-link'), 'wx')), 'EEXIST');
  t.false(fs.existsSync(m.path('excl-target')), 'O_EXCL does not follow the symlink');
});

test.serial('O_CREAT|O_EXCL on a new name creates it', (t) => {
  const fd = fs.openSync(m.path('excl-new'), 'wx');
  fs.writeSync(fd, 'fresh');
  fs.closeSync(fd);
  t.is(fs.readFileSync(m.path('excl-new'), 'utf8'), 'fresh');
});

test.serial('O_CREAT without O_EXCL opens an existing file without truncating it', (t) => {
  fs.writeFileSync(m.path('keep'), 'abcdef');
  const fd = fs.openSync(m.path('keep'), O_CREAT | O_RDWR, 0o600);
  const buf = Buffer.alloc(10);
  t.is(fs.readSync(fd, buf, 0, 10, 0), 6);
  fs.closeSync(fd);
  t.is(fs.readFileSync(m.path('keep'), 'utf8'), 'abcdef');
  t.is(fs.statSync(m.path('keep')).mode & 0o777, 0o644, 'mode of the existing file unchanged');
});

test.serial('O_TRUNC empties an existing file; a new write starts from zero', (t) => {
  const f = m.path('trunc');
  fs.writeFileSync(f, Buffer.alloc(100_000, 0x61));
  const fd = fs.openSync(f, O_WRONLY | O_TRUNC);
  t.is(fs.fstatSync(fd).size, 0);
  t.is(fs.statSync(f).size, 0);
  fs.writeSync(fd, 'xyz');
  fs.closeSync(fd);
  t.is(fs.readFileSync(f, 'utf8'), 'xyz');
  // writeFile ('w' = O_TRUNC|O_CREAT|O_WRONLY) of shorter content leaves no tail behind
  fs.writeFileSync(f, 'a much longer content than before');
  fs.writeFileSync(f, 'short');
  t.is(fs.readFileSync(f, 'utf8'), 'short');
});

test.serial('O_TRUNC while another fd of the same file has buffered writes', (t) => {
  const f = m.path('trunc-open');
  const a = fs.openSync(f, 'w');
  fs.writeSync(a, Buffer.alloc(5000, 0x62));
  const b = fs.openSync(f, O_WRONLY | O_TRUNC);
  t.is(fs.fstatSync(b).size, 0);
  fs.closeSync(b);
  fs.closeSync(a);
  t.is(fs.statSync(f).size, 0, 'the truncate is not undone by the earlier fd\'s data');
});

test.serial('open of a missing file without O_CREAT is ENOENT', (t) => {
  t.is(errorCode(() => fs.openSync(m.path('missing'), O_RDONLY)), 'ENOENT');
  t.is(errorCode(() => fs.openSync(m.path('missing', 'deeper'), O_CREAT | O_WRONLY)), 'ENOENT');
});

test.serial('a directory opens read-only; for writing it is EISDIR', (t) => {
  fs.mkdirSync(m.path('dir'));
  const fd = fs.openSync(m.path('dir'), O_RDONLY);
  t.true(fs.fstatSync(fd).isDirectory());
  fs.closeSync(fd);
  t.is(errorCode(() => fs.openSync(m.path('dir'), O_WRONLY)), 'EISDIR');
  t.is(errorCode(() => fs.openSync(m.path('dir'), O_RDWR)), 'EISDIR');
  t.is(errorCode(() => fs.writeFileSync(m.path('dir'), 'x')), 'EISDIR');
});

test.serial('access modes: a read-only fd cannot write, a write-only fd cannot read', (t) => {
  fs.writeFileSync(m.path('modes'), 'content');
  const r = fs.openSync(m.path('modes'), O_RDONLY);
  t.is(errorCode(() => fs.writeSync(r, 'x')), 'EBADF');
  fs.closeSync(r);
  const w = fs.openSync(m.path('modes'), O_WRONLY);
  t.is(errorCode(() => fs.readSync(w, Buffer.alloc(4), 0, 4, 0)), 'EBADF');
  fs.closeSync(w);
  t.is(fs.readFileSync(m.path('modes'), 'utf8'), 'content');
});

test.serial('two fds of one file see each other\'s writes before either is closed', (t) => {
  const f = m.path('shared');
  const a = fs.openSync(f, 'w+');
  const b = fs.openSync(f, 'r+');
  fs.writeSync(a, 'hello', 0);
  const buf = Buffer.alloc(5);
  t.is(fs.readSync(b, buf, 0, 5, 0), 5);
  t.is(buf.toString(), 'hello');
  fs.writeSync(b, 'J', 0);
  t.is(fs.readSync(a, buf, 0, 5, 0), 5);
  t.is(buf.toString(), 'Jello');
  fs.closeSync(a);
  fs.closeSync(b);
  t.is(fs.readFileSync(f, 'utf8'), 'Jello');
});

test.serial('release: data written through an fd is there after close, and many open/close cycles', async (t) => {
  await allowTime(t, 60_000);
  const f = m.path('cycles');
  for (let i = 0; i < 50; i++) {
    const fd = fs.openSync(f, O_WRONLY | O_CREAT | O_APPEND, 0o644);
    fs.writeSync(fd, `${i}\n`);
    fs.closeSync(fd);
  }
  const lines = fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);
  t.deepEqual(lines, Array.from({ length: 50 }, (_, i) => String(i)));
});

test.serial('creat through the shell: > and >> redirections', async (t) => {
  await m.check('echo one > redir && echo two >> redir && echo three >> redir');
  t.is(fs.readFileSync(m.path('redir'), 'utf8'), 'one\ntwo\nthree\n');
  await m.check('echo reset > redir');
  t.is(fs.readFileSync(m.path('redir'), 'utf8'), 'reset\n');
  const r = await m.run('set -C; echo clobber > redir');
  t.not(r.code, 0, 'noclobber uses O_EXCL');
  t.is(fs.readFileSync(m.path('redir'), 'utf8'), 'reset\n');
});
