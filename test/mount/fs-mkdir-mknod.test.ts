// mkdir and mknod (fifos, sockets, device nodes as metadata) through a real mount.
import test from 'ava';
import * as fs from 'node:fs';
import { errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('mkdir: a directory with the requested mode, owned by the caller', (t) => {
  fs.mkdirSync(m.path('d1'), { mode: 0o750 });
  const st = fs.statSync(m.path('d1'));
  t.true(st.isDirectory());
  t.is(st.mode & 0o7777, 0o750);
  t.is(st.nlink, 2);
  t.is(st.uid, 0);
});

test.serial('mkdir -m honours every permission bit (umask 0)', async (t) => {
  await m.check('umask 000 && mkdir -m 1777 sticky && mkdir -m 0777 open && mkdir -m 0000 none');
  t.is(fs.statSync(m.path('sticky')).mode & 0o7777, 0o1777);
  t.is(fs.statSync(m.path('open')).mode & 0o7777, 0o777);
  t.is(fs.statSync(m.path('none')).mode & 0o7777, 0);
});

test.serial('mkdir over an existing name is EEXIST (directory, file, symlink)', (t) => {
  fs.mkdirSync(m.path('exists'));
  fs.writeFileSync(m.path('exists-file'), '');
  fs.symlinkSync('nowhere', m.path('exists-link'));
  t.is(errorCode(() => fs.mkdirSync(m.path('exists'))), 'EEXIST');
  t.is(errorCode(() => fs.mkdirSync(m.path('exists-file'))), 'EEXIST');
  t.is(errorCode(() => fs.mkdirSync(m.path('exists-link'))), 'EEXIST');
  t.true(fs.statSync(m.path('exists-file')).isFile(), 'the file is untouched');
});

test.serial('mkdir below a missing directory is ENOENT, below a file ENOTDIR', (t) => {
  t.is(errorCode(() => fs.mkdirSync(m.path('missing', 'child'))), 'ENOENT');
  fs.writeFileSync(m.path('afile'), '');
  t.is(errorCode(() => fs.mkdirSync(m.path('afile', 'child'))), 'ENOTDIR');
});

test.serial('mkdir -p of a deep path, then files at the bottom', async (t) => {
  const deep = Array.from({ length: 30 }, (_, i) => `level${i}`).join('/');
  await m.check(`mkdir -p ${deep} && echo bottom > ${deep}/file`);
  t.is(fs.readFileSync(m.path(deep, 'file'), 'utf8'), 'bottom\n');
  t.true(fs.statSync(m.path('level0', 'level1')).isDirectory());
});

test.serial('mkfifo: a fifo with its mode, and it passes data between two processes', async (t) => {
  await m.check('umask 022 && mkfifo -m 0640 fifo');
  const st = fs.lstatSync(m.path('fifo'));
  t.true(st.isFIFO());
  t.is(st.mode & 0o7777, 0o640);
  t.is(st.size, 0);
  const r = await m.run('(echo through-the-pipe > fifo &) ; cat fifo', { timeoutMs: 10_000 });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'through-the-pipe\n');
  t.is(errorCode(() => fs.mkdirSync(m.path('fifo'))), 'EEXIST');
  const again = await m.run('mkfifo fifo');
  t.not(again.code, 0);
  t.regex(again.stderr, /File exists/);
});

test.serial('mknod as root: character and block devices keep type and major/minor', async (t) => {
  await m.check('mknod -m 0666 null-like c 1 3 && mknod -m 0600 disk b 8 17');
  const c = fs.lstatSync(m.path('null-like'));
  t.true(c.isCharacterDevice());
  t.is(c.mode & 0o7777, 0o666);
  const b = fs.lstatSync(m.path('disk'));
  t.true(b.isBlockDevice());
  t.is(b.mode & 0o7777, 0o600);
  const majmin = (await m.check("stat -c '%t %T' null-like disk")).trim().split('\n');
  t.deepEqual(majmin, ['1 3', '8 11']); // hex
  t.is(c.rdev, (1 << 8) | 3);
});

test.serial('mknod of a socket (bind of an AF_UNIX socket)', async (t) => {
  const r = await m.python<string>(`
import socket
s = socket.socket(socket.AF_UNIX)
out(E(s.bind, 'sock'))`);
  t.is(r, 'OK');
  t.true(fs.lstatSync(m.path('sock')).isSocket());
});

test.serial('mknod over an existing name is EEXIST; mknod below a missing dir ENOENT', async (t) => {
  fs.writeFileSync(m.path('taken'), '');
  const r = await m.python<string[]>(`
import stat
out([E(os.mknod, 'taken', 0o600 | stat.S_IFIFO), E(os.mknod, 'no/such', 0o600 | stat.S_IFIFO),
     E(os.mknod, 'regular-by-mknod', 0o640 | stat.S_IFREG)])`);
  t.deepEqual(r, ['EEXIST', 'ENOENT', 'OK']);
  const st = fs.statSync(m.path('regular-by-mknod'));
  t.true(st.isFile());
  t.is(st.size, 0);
});

test.serial('parent nlink and mtime move with mkdir', async (t) => {
  fs.mkdirSync(m.path('parent'));
  const before = fs.statSync(m.path('parent'), { bigint: true });
  await new Promise((r) => setTimeout(r, 20));
  fs.mkdirSync(m.path('parent', 'child'));
  const after = fs.statSync(m.path('parent'), { bigint: true });
  t.is(after.nlink, before.nlink + 1n);
  t.true(after.mtimeNs > before.mtimeNs, 'mtime of the parent moves');
  t.true(after.ctimeNs > before.ctimeNs, 'ctime of the parent moves');
});
