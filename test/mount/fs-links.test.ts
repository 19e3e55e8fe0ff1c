// symlink, readlink and link through a real mount.
import test from 'ava';
import * as fs from 'node:fs';
import { errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

// Every name of a hard link is its own node in libfuse 2's path-based API, so the kernel caches
// attributes per name: with the default attr_timeout another name shows a new nlink only after
// that time (docs/architecture.md). These tests check the filesystem itself, uncached;
// fs-links-cache.test.ts checks the bound with caching on.
test.before(async () => {
  m = await mountFresh({ config: { filesystem: { attr_timeout: 0, entry_timeout: 0 } } });
});

test.after.always((t) => finish(t, m));

test.serial('a relative symlink: readlink, lstat, and the kernel follows it', (t) => {
  fs.mkdirSync(m.path('rel'));
  fs.writeFileSync(m.path('rel', 'target'), 'through the link');
  fs.symlinkSync('target', m.path('rel', 'link'));
  t.is(fs.readlinkSync(m.path('rel', 'link')), 'target');
  const l = fs.lstatSync(m.path('rel', 'link'));
  t.true(l.isSymbolicLink());
  t.is(l.size, 'target'.length);
  t.true(fs.statSync(m.path('rel', 'link')).isFile());
  t.is(fs.statSync(m.path('rel', 'link')).ino, fs.statSync(m.path('rel', 'target')).ino);
  t.is(fs.readFileSync(m.path('rel', 'link'), 'utf8'), 'through the link');
  fs.writeFileSync(m.path('rel', 'link'), 'written through');
  t.is(fs.readFileSync(m.path('rel', 'target'), 'utf8'), 'written through');
});

test.serial('relative targets with .. and through symlinked directories', (t) => {
  fs.mkdirSync(m.path('tree', 'a', 'b'), { recursive: true });
  fs.writeFileSync(m.path('tree', 'top'), 'top');
  fs.symlinkSync('../../top', m.path('tree', 'a', 'b', 'up'));
  t.is(fs.readFileSync(m.path('tree', 'a', 'b', 'up'), 'utf8'), 'top');
  fs.symlinkSync('a/b', m.path('tree', 'ab'));
  t.is(fs.readFileSync(m.path('tree', 'ab', 'up'), 'utf8'), 'top');
  t.deepEqual(fs.readdirSync(m.path('tree', 'ab')), ['up']);
});

test.serial('an absolute symlink target (a host path through the mountpoint)', (t) => {
  fs.writeFileSync(m.path('abs-target'), 'absolute');
  fs.symlinkSync(m.path('abs-target'), m.path('abs-link'));
  t.is(fs.readlinkSync(m.path('abs-link')), m.path('abs-target'));
  t.is(fs.readFileSync(m.path('abs-link'), 'utf8'), 'absolute');
  // and one leaving the mount
  fs.symlinkSync('/proc/self', m.path('outside'));
  t.true(fs.statSync(m.path('outside')).isDirectory());
});

test.serial('a dangling symlink: lstat works, stat is ENOENT, O_CREAT creates the target', (t) => {
  fs.symlinkSync('not-yet', m.path('dangling'));
  t.true(fs.lstatSync(m.path('dangling')).isSymbolicLink());
  t.is(errorCode(() => fs.statSync(m.path('dangling'))), 'ENOENT');
  t.is(errorCode(() => fs.readFileSync(m.path('dangling'))), 'ENOENT');
  fs.writeFileSync(m.path('dangling'), 'created through the link');
  t.is(fs.readFileSync(m.path('not-yet'), 'utf8'), 'created through the link');
  t.true(fs.lstatSync(m.path('dangling')).isSymbolicLink());
});

test.serial('symlink loops are ELOOP', (t) => {
  fs.symlinkSync('loop-b', m.path('loop-a'));
  fs.symlinkSync('loop-a', m.path('loop-b'));
  t.is(errorCode(() => fs.statSync(m.path('loop-a'))), 'ELOOP');
  t.is(errorCode(() => fs.readFileSync(m.path('loop-a'))), 'ELOOP');
  fs.symlinkSync('self', m.path('self'));
  t.is(errorCode(() => fs.statSync(m.path('self'))), 'ELOOP');
});

test.serial('symlink errors: EEXIST over any existing name; readlink of a non-link EINVAL', (t) => {
  fs.writeFileSync(m.path('occupied'), '');
  t.is(errorCode(() => fs.symlinkSync('x', m.path('occupied'))), 'EEXIST');
  fs.symlinkSync('x', m.path('sl'));
  t.is(errorCode(() => fs.symlinkSync('y', m.path('sl'))), 'EEXIST');
  t.is(fs.readlinkSync(m.path('sl')), 'x');
  t.is(errorCode(() => fs.readlinkSync(m.path('occupied'))), 'EINVAL');
  fs.mkdirSync(m.path('somedir'));
  t.is(errorCode(() => fs.readlinkSync(m.path('somedir'))), 'EINVAL');
  t.is(errorCode(() => fs.readlinkSync(m.path('no-link'))), 'ENOENT');
  t.is(errorCode(() => fs.symlinkSync('x', m.path('no-dir', 'sl'))), 'ENOENT');
});

test.serial('a long symlink target (4095 bytes) round-trips', (t) => {
  const target = ('a'.repeat(200) + '/').repeat(21).slice(0, 4095);
  t.is(target.length, 4095);
  fs.symlinkSync(target, m.path('long-target'));
  t.is(fs.readlinkSync(m.path('long-target')), target);
  t.is(fs.lstatSync(m.path('long-target')).size, 4095);
});

test.serial('ln -s and readlink -f from the shell', async (t) => {
  await m.check('mkdir -p sh/x && echo hi > sh/x/f && ln -s x sh/y && ln -s y/f sh/z');
  t.is((await m.check('cat sh/z')), 'hi\n');
  t.is((await m.check('readlink sh/z')).trim(), 'y/f');
  t.is((await m.check('readlink -f sh/z')).trim(), m.path('sh', 'x', 'f'));
});

test.serial('link: nlink counts up and down; both names are one inode', (t) => {
  const a = m.path('orig');
  fs.writeFileSync(a, 'linked');
  fs.linkSync(a, m.path('second'));
  fs.linkSync(a, m.path('third'));
  for (const p of ['orig', 'second', 'third']) t.is(fs.statSync(m.path(p)).nlink, 3, p);
  t.is(fs.statSync(m.path('second')).ino, fs.statSync(a).ino);
  // a write through one name is seen through the others
  fs.appendFileSync(m.path('third'), ' more');
  t.is(fs.readFileSync(a, 'utf8'), 'linked more');
  fs.unlinkSync(a);
  t.is(fs.statSync(m.path('second')).nlink, 2);
  fs.unlinkSync(m.path('third'));
  t.is(fs.statSync(m.path('second')).nlink, 1);
  t.is(fs.readFileSync(m.path('second'), 'utf8'), 'linked more');
});

test.serial('link across directories, and ctime of the source moves', async (t) => {
  fs.mkdirSync(m.path('ld1'));
  fs.mkdirSync(m.path('ld2'));
  fs.writeFileSync(m.path('ld1', 'f'), 'x');
  await new Promise((r) => setTimeout(r, 1100));
  const before = fs.statSync(m.path('ld1', 'f'), { bigint: true });
  fs.linkSync(m.path('ld1', 'f'), m.path('ld2', 'g'));
  const after = fs.statSync(m.path('ld1', 'f'), { bigint: true });
  t.is(after.nlink, 2n);
  t.true(after.ctimeNs > before.ctimeNs, 'link changes ctime');
  t.is(fs.statSync(m.path('ld2', 'g')).ino, Number(after.ino));
});

test.serial('link errors: EPERM for a directory, EEXIST, ENOENT', (t) => {
  fs.mkdirSync(m.path('ldir'));
  t.is(errorCode(() => fs.linkSync(m.path('ldir'), m.path('ldir-link'))), 'EPERM');
  fs.writeFileSync(m.path('lsrc'), '');
  fs.writeFileSync(m.path('ldst'), '');
  t.is(errorCode(() => fs.linkSync(m.path('lsrc'), m.path('ldst'))), 'EEXIST');
  t.is(errorCode(() => fs.linkSync(m.path('lsrc'), m.path('ldir'))), 'EEXIST');
  t.is(errorCode(() => fs.linkSync(m.path('lmissing'), m.path('lnew'))), 'ENOENT');
  t.is(errorCode(() => fs.linkSync(m.path('lsrc'), m.path('nodir', 'x'))), 'ENOENT');
  t.is(fs.statSync(m.path('lsrc')).nlink, 1, 'failed links do not count');
});

test.serial('link of a symlink links the symlink itself', (t) => {
  fs.writeFileSync(m.path('st'), 'x');
  fs.symlinkSync('st', m.path('sym'));
  fs.linkSync(m.path('sym'), m.path('sym-hard'));
  t.true(fs.lstatSync(m.path('sym-hard')).isSymbolicLink());
  t.is(fs.lstatSync(m.path('sym')).nlink, 2);
  t.is(fs.statSync(m.path('st')).nlink, 1);
});

test.serial('a file hard-linked while open with buffered data', (t) => {
  const fd = fs.openSync(m.path('busy'), 'w');
  fs.writeSync(fd, 'pending');
  fs.linkSync(m.path('busy'), m.path('busy2'));
  fs.closeSync(fd);
  t.is(fs.readFileSync(m.path('busy2'), 'utf8'), 'pending');
  t.is(fs.statSync(m.path('busy2')).size, 7);
  t.is(fs.statSync(m.path('busy')).nlink, 2);
});
