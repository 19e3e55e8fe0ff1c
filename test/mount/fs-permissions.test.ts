// Permissions with the caller's identity: the kernel checks mode bits (default_permissions)
// and the shim creates files as the calling uid/gid. Non-root callers run through setpriv.
import test from 'ava';
import * as fs from 'node:fs';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
const U = { uid: 1000, gid: 1000 };
const OTHER = { uid: 2000, gid: 2000 };

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

/** A root-owned directory with this mode (umask does not apply: chmod after mkdir). */
function rootDir(name: string, mode: number): string {
  fs.mkdirSync(m.path(name));
  fs.chmodSync(m.path(name), mode);
  return m.path(name);
}

test.serial('uid 1000 creates files and directories in a 1777 directory: owned by 1000:1000', async (t) => {
  rootDir('public', 0o1777);
  const r = await m.python<unknown[]>(`
out([E(lambda: open('public/mine', 'w').write('by 1000')), E(os.mkdir, 'public/mydir', 0o755),
     E(os.symlink, 'mine', 'public/mylink'), E(os.mkfifo, 'public/myfifo')])`, U);
  t.deepEqual(r, [7, 'OK', 'OK', 'OK']);
  for (const name of ['mine', 'mydir', 'myfifo']) {
    const st = fs.statSync(m.path('public', name));
    t.deepEqual([st.uid, st.gid], [1000, 1000], name);
  }
  const l = fs.lstatSync(m.path('public', 'mylink'));
  t.deepEqual([l.uid, l.gid], [1000, 1000], 'symlink');
  t.is(fs.readFileSync(m.path('public', 'mine'), 'utf8'), 'by 1000');
});

test.serial('uid 1000 cannot create in a root 0755 directory: EACCES', async (t) => {
  rootDir('closed', 0o755);
  const r = await m.python<unknown[]>(`
out([E(open, 'closed/x', 'w'), E(os.mkdir, 'closed/d'), E(os.symlink, 'a', 'closed/l'), E(os.mkfifo, 'closed/f')])`, U);
  t.deepEqual(r, ['EACCES', 'EACCES', 'EACCES', 'EACCES']);
  t.deepEqual(fs.readdirSync(m.path('closed')), []);
});

test.serial('uid 1000 cannot write a root-owned 0644 file (EACCES) but can read it', async (t) => {
  rootDir('ro', 0o755);
  fs.writeFileSync(m.path('ro', 'f'), 'root data');
  fs.chmodSync(m.path('ro', 'f'), 0o644);
  const r = await m.python<unknown[]>(`
out([E(open, 'ro/f', 'a'), E(open, 'ro/f', 'r+'), E(lambda: open('ro/f').read()), E(os.truncate, 'ro/f', 0),
     E(os.unlink, 'ro/f'), E(os.rename, 'ro/f', 'ro/g')])`, U);
  t.deepEqual(r, ['EACCES', 'EACCES', 'root data', 'EACCES', 'EACCES', 'EACCES']);
  t.is(fs.readFileSync(m.path('ro', 'f'), 'utf8'), 'root data');
});

test.serial('uid 1000 cannot read a 0600 root file; group and other bits are honoured', async (t) => {
  rootDir('grp', 0o755);
  fs.writeFileSync(m.path('grp', 'secret'), 's');
  fs.chmodSync(m.path('grp', 'secret'), 0o600);
  fs.writeFileSync(m.path('grp', 'group'), 'g');
  fs.chownSync(m.path('grp', 'group'), 0, 1000);
  fs.chmodSync(m.path('grp', 'group'), 0o660);
  const r = await m.python<unknown[]>(`
out([E(lambda: open('grp/secret').read()), E(lambda: open('grp/group').read()), E(lambda: open('grp/group', 'a').write('+'))])`, U);
  t.deepEqual(r, ['EACCES', 'g', 1]);
  const other = await m.python<unknown[]>(`out([E(lambda: open('grp/group').read())])`, OTHER);
  t.deepEqual(other, ['EACCES']);
});

test.serial('sticky directory: another user cannot remove or rename my file (EPERM); I can', async (t) => {
  rootDir('sticky', 0o1777);
  await m.python(`open('sticky/of-2000', 'w').write('x'); open('sticky/also-2000', 'w').close(); out(1)`, OTHER);
  const r = await m.python<unknown[]>(`
out([E(os.unlink, 'sticky/of-2000'), E(os.rename, 'sticky/of-2000', 'sticky/stolen'),
     E(lambda: open('sticky/mine', 'w').close()), E(os.rename, 'sticky/mine', 'sticky/also-2000')])`, U);
  t.deepEqual(r, ['EPERM', 'EPERM', 'OK', 'EPERM']);
  t.true(fs.existsSync(m.path('sticky', 'of-2000')));
  t.true(fs.existsSync(m.path('sticky', 'also-2000')));
  const own = await m.python<unknown[]>(`out([E(os.unlink, 'sticky/of-2000'), E(os.rename, 'sticky/also-2000', 'sticky/renamed')])`, OTHER);
  t.deepEqual(own, ['OK', 'OK']);
  // root may always remove
  fs.unlinkSync(m.path('sticky', 'mine'));
  t.deepEqual(fs.readdirSync(m.path('sticky')), ['renamed']);
});

test.serial('without the sticky bit, anyone with write access to the directory may remove', async (t) => {
  rootDir('nosticky', 0o777);
  await m.python(`open('nosticky/of-2000', 'w').close(); out(1)`, OTHER);
  const r = await m.python<unknown[]>(`out([E(os.unlink, 'nosticky/of-2000')])`, U);
  t.deepEqual(r, ['OK']);
});

test.serial('setgid directory: new files get its group, new directories its group and setgid', async (t) => {
  const d = rootDir('sgid', 0o2777);
  fs.chownSync(d, 0, 500);
  fs.chmodSync(d, 0o2777);
  await m.check('touch sgid/by-root && mkdir sgid/sub-root');
  await m.python(`open('sgid/by-1000', 'w').close(); os.mkdir('sgid/sub-1000'); out(1)`, U);
  for (const [name, uid] of [['by-root', 0], ['by-1000', 1000]] as const) {
    const st = fs.statSync(m.path('sgid', name));
    t.deepEqual([st.uid, st.gid], [uid, 500], name);
    t.is(st.mode & 0o2000, 0, `${name}: a file does not get the setgid bit`);
  }
  for (const [name, uid] of [['sub-root', 0], ['sub-1000', 1000]] as const) {
    const st = fs.statSync(m.path('sgid', name));
    t.deepEqual([st.uid, st.gid], [uid, 500], name);
    t.is(st.mode & 0o2000, 0o2000, `${name}: a directory inherits setgid`);
  }
  // and it propagates further down
  await m.python(`open('sgid/sub-1000/deeper', 'w').close(); out(1)`, U);
  t.is(fs.statSync(m.path('sgid', 'sub-1000', 'deeper')).gid, 500);
});

test.serial('only the owner (or root) may chmod; only root may chown: EPERM', async (t) => {
  rootDir('own', 0o1777);
  fs.writeFileSync(m.path('own', 'rootfile'), '');
  const r = await m.python<unknown[]>(`
open('own/mine', 'w').close()
out([E(os.chmod, 'own/rootfile', 0o777), E(os.chown, 'own/rootfile', 1000, 1000),
     E(os.chmod, 'own/mine', 0o600), E(os.chown, 'own/mine', 2000, -1), E(os.chown, 'own/mine', -1, 2000),
     E(os.chown, 'own/mine', 1000, 1000)])`, U);
  t.deepEqual(r, ['EPERM', 'EPERM', 'OK', 'EPERM', 'EPERM', 'OK']);
  t.is(fs.statSync(m.path('own', 'mine')).mode & 0o777, 0o600);
  t.is(fs.statSync(m.path('own', 'rootfile')).uid, 0);
});

test.serial('a non-root write clears setuid/setgid; a root write keeps them', async (t) => {
  rootDir('priv', 0o1777);
  await m.python(`open('priv/suid', 'w').write('x'); os.chmod('priv/suid', 0o6755); out(1)`, U);
  t.is(fs.statSync(m.path('priv', 'suid')).mode & 0o7777, 0o6755);
  await m.python(`open('priv/suid', 'a').write('more'); out(1)`, U);
  t.is(fs.statSync(m.path('priv', 'suid')).mode & 0o7777, 0o755, 'write by the owner (not root) drops setuid and setgid');
  fs.chmodSync(m.path('priv', 'suid'), 0o4755);
  fs.appendFileSync(m.path('priv', 'suid'), 'root');
  t.is(fs.statSync(m.path('priv', 'suid')).mode & 0o7777, 0o4755, 'root keeps them');
});

test.serial('utimens permissions: a writer may touch to now, only the owner may set a time', async (t) => {
  rootDir('times', 0o755);
  fs.writeFileSync(m.path('times', 'shared'), '');
  fs.chmodSync(m.path('times', 'shared'), 0o666);
  const r = await m.python<unknown[]>(`
out([E(os.utime, 'times/shared', None), E(os.utime, 'times/shared', (1, 1))])`, U);
  t.deepEqual(r, ['OK', 'EPERM']);
  t.not(fs.statSync(m.path('times', 'shared')).mtimeMs, 1000);
});

test.serial('a directory without x cannot be searched; without r cannot be listed', async (t) => {
  rootDir('nox', 0o755);
  fs.writeFileSync(m.path('nox', 'f'), 'x');
  fs.chmodSync(m.path('nox'), 0o754);
  const r = await m.python<unknown[]>(`out([E(os.listdir, 'nox'), E(os.stat, 'nox/f')])`, U);
  t.deepEqual(r, [['f'], 'EACCES']);
  fs.chmodSync(m.path('nox'), 0o751);
  const r2 = await m.python<unknown[]>(`out([E(os.listdir, 'nox'), E(lambda: open('nox/f').read())])`, U);
  t.deepEqual(r2, ['EACCES', 'x']);
});

test.serial('the owner\'s bits win over group and other bits', async (t) => {
  rootDir('ownerbits', 0o1777);
  await m.python(`open('ownerbits/f', 'w').write('mine'); os.chmod('ownerbits/f', 0o066); out(1)`, U);
  const r = await m.python<unknown[]>(`out([E(lambda: open('ownerbits/f').read())])`, U);
  t.deepEqual(r, ['EACCES']);
  const other = await m.python<unknown[]>(`out([E(lambda: open('ownerbits/f').read())])`, OTHER);
  t.deepEqual(other, ['mine']);
});
