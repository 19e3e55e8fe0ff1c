import test from 'ava';
import { S_IFDIR, S_IFLNK, S_IFREG, S_ISGID, S_ISUID, S_ISVTX, ctime, mtime, perms, tick, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('chmod sets all twelve permission bits and keeps the file type', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o644);
  await fs.mkdir('/d');
  for (const mode of [0o000, 0o777, 0o4755, 0o2755, 0o1777, 0o7777, 0o640]) {
    const a = await fs.chmod('/f', mode);
    t.is(perms(a), mode);
    t.is(type(a), S_IFREG);
    t.is(perms(await fs.attr('/f')), mode);
  }
  const d = await fs.chmod('/d', 0o1733);
  t.is(type(d), S_IFDIR);
  t.is(perms(d), 0o1733);
  // file-type bits in the argument are ignored
  t.is(type(await fs.chmod('/f', S_IFDIR | 0o600)), S_IFREG);
  t.is(perms(await fs.attr('/f')), 0o600);
});

test('chmod changes ctime only', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'x');
  await tick();
  const after = await fs.chmod('/f', 0o600);
  t.true(ctime(after) > ctime(before));
  t.is(mtime(after), mtime(before));
  t.is(after.atime_sec, before.atime_sec);
  t.is(after.atime_nsec, before.atime_nsec);
});

test('chmod of a missing path is ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.chmod('/missing', 0o644), { code: 'TBNOE' });
});

test('chown sets uid and gid; -1 leaves a field unchanged', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o644, 1, 2);
  let a = await fs.chown('/f', 1000, -1);
  t.is(a.uid, 1000);
  t.is(a.gid, 2);
  a = await fs.chown('/f', -1, 100);
  t.is(a.uid, 1000);
  t.is(a.gid, 100);
  a = await fs.chown('/f', 5, 6);
  t.is(a.uid, 5);
  t.is(a.gid, 6);
  t.deepEqual(await fs.attr('/f'), a);
  a = await fs.chown('/f', -1, -1);
  t.is(a.uid, 5);
  t.is(a.gid, 6);
});

test('chown changes ctime only', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'x');
  await tick();
  const after = await fs.chown('/f', 1000, 1000);
  t.true(ctime(after) > ctime(before));
  t.is(mtime(after), mtime(before));
});

test('chown clears setuid and setgid of an executable file', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/exe', 0o6755);
  const a = await fs.chown('/exe', 1000, -1);
  t.is(perms(a), 0o755);
  await fs.chmod('/exe', 0o6755);
  t.is(perms(await fs.chown('/exe', -1, 1000)), 0o755);
  // setuid without any execute bit is cleared as well
  await fs.chmod('/exe', 0o4644);
  t.is(perms(await fs.chown('/exe', 7, -1)), 0o644);
});

test('chown keeps setgid without group-execute (mandatory locking), clears setuid', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/lock', 0o2644);
  t.is(perms(await fs.chown('/lock', 1000, 1000)), 0o2644);
  await fs.chmod('/lock', 0o6604);
  t.is(perms(await fs.chown('/lock', 1, 1)), 0o2604);
});

test('chown of a directory keeps its setgid and sticky bits', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d', 0o3775);
  const a = await fs.chown('/d', 1000, 1000);
  t.is(perms(a), 0o3775);
  t.is(a.mode & (S_ISGID | S_ISVTX), S_ISGID | S_ISVTX);
});

test('chown of a symlink changes the link itself (lchown)', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/target', 0o644, 0, 0);
  await fs.symlink('/target', '/l');
  const a = await fs.chown('/l', 1000, 1000);
  t.is(type(a), S_IFLNK);
  t.is(a.uid, 1000);
  const target = await fs.attr('/target');
  t.is(target.uid, 0);
  t.is(target.gid, 0);
});

test('chown of a missing path is ENOENT; chmod/chown on a hard link affect every name', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.chown('/missing', 1, 1), { code: 'TBNOE' });
  await fs.create('/a', 0o644);
  await fs.link('/a', '/b');
  await fs.chown('/a', 42, 43);
  await fs.chmod('/a', 0o4700);
  const b = await fs.attr('/b');
  t.is(b.uid, 42);
  t.is(b.gid, 43);
  t.is(b.mode & S_ISUID, S_ISUID);
});
