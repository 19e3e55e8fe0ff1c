import test from 'ava';
import {
  S_IFBLK, S_IFCHR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, S_ISGID, S_ISUID, ctime, mtime, perms, tick, type, useDatabase,
} from './_support.js';

const env = useDatabase(test);

test('create makes an empty regular file with the given mode and owner', async (t) => {
  const fs = await env.tenant(t);
  const a = await fs.create('/f', 0o600, 1000, 100);
  t.is(type(a), S_IFREG);
  t.is(perms(a), 0o600);
  t.is(a.uid, 1000);
  t.is(a.gid, 100);
  t.is(a.nlink, 1);
  t.is(a.size, 0);
  t.deepEqual(await fs.attr('/f'), a);
  t.deepEqual(await fs.read('/f'), Buffer.alloc(0));
});

test('create keeps setuid/setgid bits given in the mode, and uses the defaults 0644 and 0:0', async (t) => {
  const fs = await env.tenant(t);
  t.is(perms(await fs.create('/suid', 0o6755)), 0o6755);
  const [d] = await fs.sql<{ mode: number; uid: number; gid: number }[]>`select * from tarbox.create('/defaults')`;
  t.is(d.mode, S_IFREG | 0o644);
  t.is(d.uid, 0);
  t.is(d.gid, 0);
});

test('create updates the parent mtime and ctime but not its nlink', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  const before = await fs.attr('/d');
  await tick();
  await fs.create('/d/f');
  const after = await fs.attr('/d');
  t.true(mtime(after) > mtime(before));
  t.true(ctime(after) > ctime(before));
  t.is(after.nlink, 2);
});

test('create of an existing name is EEXIST (O_EXCL), and leaves the old file alone', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'keep me');
  await fs.mkdir('/d');
  await fs.symlink('/nowhere', '/dangling');
  await t.throwsAsync(fs.create('/f'), { code: 'TBEXI' });
  await t.throwsAsync(fs.create('/d'), { code: 'TBEXI' });
  await t.throwsAsync(fs.create('/dangling'), { code: 'TBEXI' }); // O_EXCL does not follow symlinks
  await t.throwsAsync(fs.create('/'), { code: 'TBEXI' });
  t.deepEqual(await fs.read('/f'), Buffer.from('keep me'));
  t.false(await fs.exists('/nowhere'));
});

test('create under a missing directory is ENOENT, under a file ENOTDIR', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.create('/missing/f'), { code: 'TBNOE' });
  await t.throwsAsync(fs.create('/f/g'), { code: 'TBNDR' });
});

test('a file created in a setgid directory takes the directory group, without setgid itself', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/sg', 0o2775, 0, 77);
  const f = await fs.create('/sg/f', 0o644, 1000, 1000);
  t.is(f.gid, 77);
  t.is(f.uid, 1000);
  t.is(f.mode & S_ISGID, 0);
  const n = await fs.mknod('/sg/fifo', S_IFIFO | 0o644, 0, 1000, 1000);
  t.is(n.gid, 77);
});

test('mknod makes fifos, sockets and device nodes; rdev is kept only for devices', async (t) => {
  const fs = await env.tenant(t);
  const fifo = await fs.mknod('/fifo', S_IFIFO | 0o640, 1234);
  t.is(type(fifo), S_IFIFO);
  t.is(perms(fifo), 0o640);
  t.is(fifo.rdev, 0);
  const sock = await fs.mknod('/sock', S_IFSOCK | 0o755);
  t.is(type(sock), S_IFSOCK);
  const chr = await fs.mknod('/null', S_IFCHR | 0o666, (1 << 8) | 3);
  t.is(type(chr), S_IFCHR);
  t.is(chr.rdev, 259);
  const blk = await fs.mknod('/sda', S_IFBLK | 0o660, (8 << 8) | 0, 0, 6);
  t.is(type(blk), S_IFBLK);
  t.is(blk.rdev, 2048);
  t.is(blk.gid, 6);
  t.is((await fs.attr('/null')).rdev, 259);
  t.deepEqual(await fs.names('/'), ['fifo', 'null', 'sda', 'sock']);
  t.is((await fs.attr('/')).nlink, 2);
});

test('mknod with file type 0 or S_IFREG makes a regular file', async (t) => {
  const fs = await env.tenant(t);
  t.is(type(await fs.mknod('/zero', 0o644)), S_IFREG);
  t.is(type(await fs.mknod('/reg', S_IFREG | 0o600)), S_IFREG);
  t.is(perms(await fs.attr('/reg')), 0o600);
});

test('mknod of a symlink type is EINVAL, of an existing name EEXIST', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.mknod('/l', S_IFLNK | 0o777), { code: 'TBINV' });
  await fs.mknod('/p', S_IFIFO | 0o644);
  await t.throwsAsync(fs.mknod('/p', S_IFIFO | 0o644), { code: 'TBEXI' });
  t.deepEqual(await fs.names('/'), ['p']);
});

test('write and read of a fifo or device node are refused; only regular files hold data', async (t) => {
  const fs = await env.tenant(t);
  await fs.mknod('/fifo', S_IFIFO | 0o644);
  await t.throwsAsync(fs.write('/fifo', 0, 'x'), { code: 'TBINV' });
  await t.throwsAsync(fs.read('/fifo'), { code: 'TBINV' });
  await t.throwsAsync(fs.truncate('/fifo', 0), { code: 'TBINV' });
  t.is((await fs.attr('/fifo')).mode & S_ISUID, 0);
});
