// getattr/lookup, statfs and access through a real mount (the test process is the client,
// a child process serves the tenant).
import test from 'ava';
import * as fs from 'node:fs';
import { errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('the root is a directory 0755 owned by root', (t) => {
  const st = fs.statSync(m.mountpoint);
  t.true(st.isDirectory());
  t.is(st.mode & 0o7777, 0o755);
  t.is(st.uid, 0);
  t.is(st.gid, 0);
  t.true(st.nlink >= 2);
});

test.serial('stat of a new file: type, mode, size, owner, nlink, times, blocks', (t) => {
  const before = Date.now();
  const f = m.path('attr-file');
  fs.writeFileSync(f, 'hello world', { mode: 0o640 });
  const st = fs.statSync(f);
  t.true(st.isFile());
  t.is(st.mode & 0o7777, 0o640);
  t.is(st.size, 11);
  t.is(st.nlink, 1);
  t.is(st.uid, 0);
  t.is(st.gid, 0);
  t.true(st.blocks >= 1);
  // times within a few seconds of now
  for (const time of [st.mtimeMs, st.ctimeMs, st.atimeMs]) {
    t.true(Math.abs(time - before) < 10_000, `time ${time} vs now ${before}`);
  }
  // the inode number is stable across stats and is what readdir reports
  const ino = st.ino;
  t.is(fs.statSync(f).ino, ino);
  const ent = fs.readdirSync(m.mountpoint, { withFileTypes: true }).find((e) => e.name === 'attr-file');
  t.truthy(ent);
  t.true(ent!.isFile());
});

test.serial('stat of a missing path is ENOENT, also below a missing directory', (t) => {
  t.is(errorCode(() => fs.statSync(m.path('missing'))), 'ENOENT');
  t.is(errorCode(() => fs.statSync(m.path('missing', 'below'))), 'ENOENT');
  t.is(errorCode(() => fs.lstatSync(m.path('missing'))), 'ENOENT');
});

test.serial('stat below a regular file is ENOTDIR', (t) => {
  fs.writeFileSync(m.path('plain'), 'x');
  t.is(errorCode(() => fs.statSync(m.path('plain', 'child'))), 'ENOTDIR');
  t.is(errorCode(() => fs.writeFileSync(m.path('plain', 'child'), 'x')), 'ENOTDIR');
});

test.serial('a negative lookup does not stick once the file is created', (t) => {
  const f = m.path('later');
  t.false(fs.existsSync(f));
  fs.writeFileSync(f, 'now');
  t.true(fs.existsSync(f));
  t.is(fs.readFileSync(f, 'utf8'), 'now');
});

test.serial('fstat on an open fd sees buffered writes', (t) => {
  const fd = fs.openSync(m.path('fstat'), 'w');
  try {
    fs.writeSync(fd, Buffer.alloc(1000, 7));
    t.is(fs.fstatSync(fd).size, 1000);
    t.is(fs.statSync(m.path('fstat')).size, 1000);
  } finally {
    fs.closeSync(fd);
  }
  t.is(fs.statSync(m.path('fstat')).size, 1000);
});

test.serial('directory nlink counts subdirectories', (t) => {
  const d = m.path('nl');
  fs.mkdirSync(d);
  t.is(fs.statSync(d).nlink, 2);
  fs.mkdirSync(m.path('nl', 'a'));
  fs.mkdirSync(m.path('nl', 'b'));
  fs.writeFileSync(m.path('nl', 'f'), '');
  t.is(fs.statSync(d).nlink, 4);
  fs.rmdirSync(m.path('nl', 'a'));
  t.is(fs.statSync(d).nlink, 3);
});

test.serial('statfs: df and stat -f work and report the tenant block size and 255-byte names', async (t) => {
  const st = fs.statfsSync(m.mountpoint);
  t.is(st.bsize, m.blockSize);
  t.true(st.blocks > 0);
  t.true(st.bfree > 0);
  t.true(st.bavail > 0);
  t.true(st.files > 0);
  const df = await m.run(`df -P ${m.mountpoint}`);
  t.is(df.code, 0, df.stderr);
  t.regex(df.stdout, /tarbox/);
  const sf = await m.run(`stat -f -c '%l %S %T' ${m.mountpoint}`);
  t.is(sf.code, 0, sf.stderr);
  const [namemax, bsize] = sf.stdout.trim().split(' ');
  t.is(Number(namemax), 255);
  t.is(Number(bsize), m.blockSize);
});

test.serial('access as root: F_OK, R/W, X only when someone may execute', (t) => {
  const f = m.path('acc');
  fs.writeFileSync(f, 'x', { mode: 0o600 });
  t.notThrows(() => fs.accessSync(f, fs.constants.F_OK));
  t.notThrows(() => fs.accessSync(f, fs.constants.R_OK | fs.constants.W_OK));
  t.is(errorCode(() => fs.accessSync(f, fs.constants.X_OK)), 'EACCES');
  fs.chmodSync(f, 0o001);
  t.notThrows(() => fs.accessSync(f, fs.constants.X_OK));
  t.is(errorCode(() => fs.accessSync(m.path('nope'), fs.constants.F_OK)), 'ENOENT');
});

test.serial('access with test -r/-w/-x as root and as uid 1000', async (t) => {
  fs.mkdirSync(m.path('accdir'), { mode: 0o755 });
  fs.chmodSync(m.path('accdir'), 0o755);
  const check = async (file: string, mode: number, uid: number | undefined, expected: string) => {
    fs.chmodSync(m.path('accdir', file), mode);
    const r = await m.run(`for op in r w x; do if test -$op ${file}; then printf $op; else printf -; fi; done`, { cwd: m.path('accdir'), uid });
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, expected, `${file} mode ${mode.toString(8)} uid ${uid ?? 0}`);
  };
  fs.writeFileSync(m.path('accdir', 'f'), '#!/bin/sh\n');
  await check('f', 0o644, undefined, 'rw-');
  await check('f', 0o000, undefined, 'rw-');
  await check('f', 0o744, undefined, 'rwx');
  await check('f', 0o010, undefined, 'rwx');
  await check('f', 0o644, 1000, 'r--');
  await check('f', 0o600, 1000, '---');
  await check('f', 0o755, 1000, 'r-x');
  await check('f', 0o647, 1000, 'rwx');
  // owner bits apply to the owner even when others have more
  fs.chownSync(m.path('accdir', 'f'), 1000, 1000);
  await check('f', 0o077, 1000, '---');
  await check('f', 0o700, 1000, 'rwx');
  // group bits for a member of the group
  fs.chownSync(m.path('accdir', 'f'), 0, 1000);
  await check('f', 0o070, 1000, 'rwx');
  await check('f', 0o047, 1000, 'r--');
});

test.serial('access through a directory without search permission is EACCES for uid 1000', async (t) => {
  fs.mkdirSync(m.path('closed'));
  fs.writeFileSync(m.path('closed', 'inside'), 'x', { mode: 0o644 });
  fs.chmodSync(m.path('closed'), 0o700);
  const r = await m.run('cat closed/inside', { uid: 1000 });
  t.not(r.code, 0);
  t.regex(r.stderr, /Permission denied/);
  fs.chmodSync(m.path('closed'), 0o711);
  const r2 = await m.run('cat closed/inside', { uid: 1000 });
  t.is(r2.code, 0, r2.stderr);
  t.is(r2.stdout, 'x');
  const r3 = await m.run('ls closed', { uid: 1000 });
  t.not(r3.code, 0, 'listing needs read permission');
});
