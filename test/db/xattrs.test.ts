import test from 'ava';
import { ctime, mtime, tick, useDatabase } from './_support.js';

const env = useDatabase(test);

test('setxattr / getxattr round-trip arbitrary bytes, including an empty value', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const value = Buffer.from([0, 1, 2, 0xff, 0x00, 0x5c]);
  await fs.setxattr('/f', 'user.bin', value);
  t.deepEqual(await fs.getxattr('/f', 'user.bin'), value);
  await fs.setxattr('/f', 'user.empty', Buffer.alloc(0));
  t.deepEqual(await fs.getxattr('/f', 'user.empty'), Buffer.alloc(0));
  t.deepEqual(await fs.listxattr('/f'), ['user.bin', 'user.empty']);
});

test('setxattr replaces an existing value by default', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.setxattr('/f', 'user.k', 'one');
  await fs.setxattr('/f', 'user.k', 'two');
  t.deepEqual(await fs.getxattr('/f', 'user.k'), Buffer.from('two'));
  t.deepEqual(await fs.listxattr('/f'), ['user.k']);
});

test('XATTR_CREATE (1) fails with EEXIST on an existing attribute, creates a new one', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.setxattr('/f', 'user.k', 'v', 1);
  await t.throwsAsync(fs.setxattr('/f', 'user.k', 'w', 1), { code: 'TBEXI' });
  t.deepEqual(await fs.getxattr('/f', 'user.k'), Buffer.from('v'));
});

test('XATTR_REPLACE (2) fails with ENODATA on a missing attribute, replaces an existing one', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.setxattr('/f', 'user.k', 'v', 2), { code: 'TBNOD' });
  t.deepEqual(await fs.listxattr('/f'), []);
  await fs.setxattr('/f', 'user.k', 'v');
  await fs.setxattr('/f', 'user.k', 'w', 2);
  t.deepEqual(await fs.getxattr('/f', 'user.k'), Buffer.from('w'));
});

test('getxattr and removexattr of a missing attribute are ENODATA', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await t.throwsAsync(fs.getxattr('/f', 'user.none'), { code: 'TBNOD' });
  await t.throwsAsync(fs.removexattr('/f', 'user.none'), { code: 'TBNOD' });
});

test('removexattr removes; the name can be set again; XATTR_REPLACE then fails', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.setxattr('/f', 'user.a', '1');
  await fs.setxattr('/f', 'user.b', '2');
  await fs.removexattr('/f', 'user.a');
  t.deepEqual(await fs.listxattr('/f'), ['user.b']);
  await t.throwsAsync(fs.getxattr('/f', 'user.a'), { code: 'TBNOD' });
  await t.throwsAsync(fs.setxattr('/f', 'user.a', 'x', 2), { code: 'TBNOD' });
  await fs.setxattr('/f', 'user.a', '3', 1);
  t.deepEqual(await fs.getxattr('/f', 'user.a'), Buffer.from('3'));
});

test('namespaces: user., trusted., security. are accepted; others are EOPNOTSUPP', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  for (const name of ['user.x', 'trusted.x', 'security.selinux']) await fs.setxattr('/f', name, 'v');
  for (const name of ['system.posix_acl_access', 'os2.x', 'foo.bar', 'user', 'nonamespace', 'USER.x']) {
    await t.throwsAsync(fs.setxattr('/f', name, 'v'), { code: 'TBNSP' }, name);
  }
  t.deepEqual(await fs.listxattr('/f'), ['security.selinux', 'trusted.x', 'user.x']);
});

test('a name of 255 bytes is accepted, 256 or empty is ERANGE', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const long = 'user.' + 'n'.repeat(250);
  await fs.setxattr('/f', long, 'v');
  t.deepEqual(await fs.getxattr('/f', long), Buffer.from('v'));
  await t.throwsAsync(fs.setxattr('/f', long + 'n', 'v'), { code: 'TBRNG' });
  await t.throwsAsync(fs.setxattr('/f', '', 'v'), { code: 'TBRNG' });
});

test('a value of 64 KiB is accepted, one byte more is E2BIG', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const max = Buffer.alloc(65536, 0x42);
  await fs.setxattr('/f', 'user.big', max);
  t.deepEqual(await fs.getxattr('/f', 'user.big'), max);
  await t.throwsAsync(fs.setxattr('/f', 'user.bigger', Buffer.alloc(65537)), { code: 'TBBIG' });
  t.deepEqual(await fs.listxattr('/f'), ['user.big']);
});

test('setxattr and removexattr change ctime but not mtime', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.create('/f');
  await tick();
  await fs.setxattr('/f', 'user.k', 'v');
  const a = await fs.attr('/f');
  t.true(ctime(a) > ctime(before));
  t.is(mtime(a), mtime(before));
  await tick();
  await fs.removexattr('/f', 'user.k');
  const b = await fs.attr('/f');
  t.true(ctime(b) > ctime(a));
  t.is(mtime(b), mtime(before));
});

test('failed setxattr changes nothing, not even ctime', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.setxattr('/f', 'user.k', 'v');
  const before = await fs.attr('/f');
  await tick();
  await t.throwsAsync(fs.setxattr('/f', 'user.k', 'w', 1), { code: 'TBEXI' });
  t.deepEqual(await fs.attr('/f'), before);
});

test('xattrs live on the inode: shared by hard links, kept across rename, separate per inode', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/a');
  await fs.create('/other');
  await fs.link('/a', '/b');
  await fs.setxattr('/a', 'user.k', 'v');
  t.deepEqual(await fs.getxattr('/b', 'user.k'), Buffer.from('v'));
  await fs.rename('/a', '/c');
  t.deepEqual(await fs.getxattr('/c', 'user.k'), Buffer.from('v'));
  t.deepEqual(await fs.listxattr('/other'), []);
});

test('xattrs on directories and symlinks (not followed); ENOENT for a missing path', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/target');
  await fs.symlink('/target', '/l');
  await fs.setxattr('/d', 'user.dir', 'yes');
  t.deepEqual(await fs.getxattr('/d', 'user.dir'), Buffer.from('yes'));
  await fs.setxattr('/l', 'trusted.link', 'yes');
  t.deepEqual(await fs.listxattr('/l'), ['trusted.link']);
  t.deepEqual(await fs.listxattr('/target'), []);
  await t.throwsAsync(fs.setxattr('/missing', 'user.k', 'v'), { code: 'TBNOE' });
  await t.throwsAsync(fs.getxattr('/missing', 'user.k'), { code: 'TBNOE' });
  await t.throwsAsync(fs.listxattr('/missing'), { code: 'TBNOE' });
});

test('xattrs go away with their inode', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.setxattr('/f', 'user.k', 'v');
  await fs.unlink('/f');
  const [{ n }] = await env.admin<{ n: number }[]>`
    select count(*)::int as n from tarbox_private.xattrs where tenant_id = ${fs.tenantId}`;
  t.is(n, 0);
  await fs.create('/f');
  t.deepEqual(await fs.listxattr('/f'), []);
});
