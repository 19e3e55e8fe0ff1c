// chmod and chown through a real mount (as root; permission checks for other users are
// in fs-permissions.test.ts).
import test from 'ava';
import * as fs from 'node:fs';
import { errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('chmod sets every permission bit, setuid/setgid/sticky included', (t) => {
  const f = m.path('modes');
  fs.writeFileSync(f, '');
  for (const mode of [0o000, 0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o7777, 0o6711, 0o2640, 0o400]) {
    fs.chmodSync(f, mode);
    t.is(fs.statSync(f).mode & 0o7777, mode, mode.toString(8));
    t.true(fs.statSync(f).isFile(), 'the file type is kept');
  }
  fs.mkdirSync(m.path('dmodes'));
  for (const mode of [0o1777, 0o2775, 0o700, 0o3755]) {
    fs.chmodSync(m.path('dmodes'), mode);
    t.is(fs.statSync(m.path('dmodes')).mode & 0o7777, mode, `dir ${mode.toString(8)}`);
    t.true(fs.statSync(m.path('dmodes')).isDirectory());
  }
});

test.serial('chmod from the shell: symbolic modes', async (t) => {
  fs.writeFileSync(m.path('sym'), '');
  fs.chmodSync(m.path('sym'), 0o644);
  await m.check('chmod u+x,g+s,o-r sym');
  t.is(fs.statSync(m.path('sym')).mode & 0o7777, 0o2740);
  await m.check('chmod +t,u+s sym');
  t.is(fs.statSync(m.path('sym')).mode & 0o7777, 0o7740);
});

test.serial('chmod through a symlink changes the target', (t) => {
  fs.writeFileSync(m.path('ct'), '');
  fs.chmodSync(m.path('ct'), 0o600);
  fs.symlinkSync('ct', m.path('ctl'));
  fs.chmodSync(m.path('ctl'), 0o640);
  t.is(fs.statSync(m.path('ct')).mode & 0o7777, 0o640);
  t.is(fs.lstatSync(m.path('ctl')).mode & 0o7777, 0o777, 'the link keeps 0777');
});

test.serial('chmod moves ctime, not mtime; ENOENT for a missing file', async (t) => {
  fs.writeFileSync(m.path('ctime'), 'x');
  await new Promise((r) => setTimeout(r, 1100));
  const before = fs.statSync(m.path('ctime'), { bigint: true });
  fs.chmodSync(m.path('ctime'), 0o600);
  const after = fs.statSync(m.path('ctime'), { bigint: true });
  t.true(after.ctimeNs > before.ctimeNs);
  t.is(after.mtimeNs, before.mtimeNs);
  t.is(errorCode(() => fs.chmodSync(m.path('nothing'), 0o600)), 'ENOENT');
});

test.serial('fchmod on an open fd', (t) => {
  const fd = fs.openSync(m.path('fchmod'), 'w', 0o600);
  fs.fchmodSync(fd, 0o751);
  t.is(fs.fstatSync(fd).mode & 0o7777, 0o751);
  fs.closeSync(fd);
  t.is(fs.statSync(m.path('fchmod')).mode & 0o7777, 0o751);
});

test.serial('chown sets uid and gid; -1 leaves a field unchanged', (t) => {
  const f = m.path('owned');
  fs.writeFileSync(f, '');
  fs.chownSync(f, 1000, 2000);
  let st = fs.statSync(f);
  t.deepEqual([st.uid, st.gid], [1000, 2000]);
  fs.chownSync(f, 3000, -1);
  st = fs.statSync(f);
  t.deepEqual([st.uid, st.gid], [3000, 2000]);
  fs.chownSync(f, -1, 4000);
  st = fs.statSync(f);
  t.deepEqual([st.uid, st.gid], [3000, 4000]);
  fs.chownSync(f, -1, -1);
  st = fs.statSync(f);
  t.deepEqual([st.uid, st.gid], [3000, 4000]);
});

test.serial('chown from the shell: user, :group and user:group', async (t) => {
  fs.writeFileSync(m.path('shown'), '');
  await m.check('chown 1234 shown');
  t.deepEqual([fs.statSync(m.path('shown')).uid, fs.statSync(m.path('shown')).gid], [1234, 0]);
  await m.check('chown :5678 shown');
  t.deepEqual([fs.statSync(m.path('shown')).uid, fs.statSync(m.path('shown')).gid], [1234, 5678]);
  await m.check('chown 0:0 shown');
  t.deepEqual([fs.statSync(m.path('shown')).uid, fs.statSync(m.path('shown')).gid], [0, 0]);
  await m.check('mkdir -p rec/a && touch rec/a/f && chown -R 42:43 rec');
  for (const p of ['rec', 'rec/a', 'rec/a/f']) {
    const st = fs.statSync(m.path(p));
    t.deepEqual([st.uid, st.gid], [42, 43], p);
  }
});

test.serial('chown of a file clears setuid, and setgid when group-exec is set', (t) => {
  const f = m.path('suid');
  fs.writeFileSync(f, '');
  fs.chmodSync(f, 0o6755);
  fs.chownSync(f, 1000, -1);
  t.is(fs.statSync(f).mode & 0o7777, 0o755, 'setuid and setgid (with g+x) cleared');
  fs.chmodSync(f, 0o4755);
  fs.chownSync(f, -1, 1000);
  t.is(fs.statSync(f).mode & 0o7777, 0o755, 'a group change clears setuid too');
  // setgid without group-exec is mandatory locking, not a privilege: it stays
  fs.chmodSync(f, 0o2644);
  fs.chownSync(f, 0, 0);
  t.is(fs.statSync(f).mode & 0o7777, 0o2644);
});

test.serial('chown of a directory keeps its setgid bit', (t) => {
  const d = m.path('sgid-dir');
  fs.mkdirSync(d);
  fs.chmodSync(d, 0o2775);
  fs.chownSync(d, 1000, 1000);
  t.is(fs.statSync(d).mode & 0o7777, 0o2775);
});

test.serial('lchown changes the symlink, chown follows it', (t) => {
  fs.writeFileSync(m.path('lt'), '');
  fs.symlinkSync('lt', m.path('ll'));
  fs.lchownSync(m.path('ll'), 77, 78);
  t.deepEqual([fs.lstatSync(m.path('ll')).uid, fs.lstatSync(m.path('ll')).gid], [77, 78]);
  t.deepEqual([fs.statSync(m.path('lt')).uid, fs.statSync(m.path('lt')).gid], [0, 0]);
  fs.chownSync(m.path('ll'), 88, 89);
  t.deepEqual([fs.statSync(m.path('lt')).uid, fs.statSync(m.path('lt')).gid], [88, 89]);
  t.deepEqual([fs.lstatSync(m.path('ll')).uid, fs.lstatSync(m.path('ll')).gid], [77, 78]);
});

test.serial('chown of a missing file is ENOENT; changes survive a remount', async (t) => {
  t.is(errorCode(() => fs.chownSync(m.path('missing'), 1, 1)), 'ENOENT');
  await m.remount();
  const st = fs.statSync(m.path('owned'));
  t.deepEqual([st.uid, st.gid], [3000, 4000]);
  t.is(fs.statSync(m.path('modes')).mode & 0o7777, 0o400);
});
