import test from 'ava';
import { client } from '../helpers/database.js';
import { useDatabase } from './_support.js';

const env = useDatabase(test);

test('two tenants in one database do not see each other\'s files', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  await a.mkdir('/only-a');
  await a.file('/only-a/secret', 'a data');
  await a.file('/same-name', 'from a');
  await b.file('/same-name', 'from b');
  t.deepEqual(await a.names('/'), ['only-a', 'same-name']);
  t.deepEqual(await b.names('/'), ['same-name']);
  t.deepEqual(await a.read('/same-name'), Buffer.from('from a'));
  t.deepEqual(await b.read('/same-name'), Buffer.from('from b'));
  await t.throwsAsync(b.attr('/only-a'), { code: 'TBNOE' });
  await t.throwsAsync(b.read('/only-a/secret'), { code: 'TBNOE' });
  t.not((await a.attr('/')).ino, (await b.attr('/')).ino);
});

test('changes in one tenant leave the other untouched', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  await a.file('/f', 'A');
  await b.file('/f', 'B');
  await a.mkdir('/d');
  const bRoot = await b.attr('/');
  const bFile = await b.attr('/f');
  await a.unlink('/f');
  await a.rename('/d', '/e');
  await a.chmod('/e', 0o700);
  t.deepEqual(await b.attr('/'), bRoot);
  t.deepEqual(await b.attr('/f'), bFile);
  t.deepEqual(await b.read('/f'), Buffer.from('B'));
});

test('inode numbers of another tenant are ENOENT through the *_ino functions', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  const f = await a.file('/f', 'private');
  await t.throwsAsync(b.attrIno(f.ino), { code: 'TBNOE' });
  await t.throwsAsync(b.readIno(f.ino, 0, 100), { code: 'TBNOE' });
  await t.throwsAsync(b.writeIno(f.ino, 0, 'overwrite'), { code: 'TBNOE' });
  await t.throwsAsync(b.truncateIno(f.ino, 0), { code: 'TBNOE' });
  await t.throwsAsync(b.attrIno((await a.attr('/')).ino), { code: 'TBNOE' });
  t.deepEqual(await a.read('/f'), Buffer.from('private'));
});

test('identical content in two tenants is stored once per tenant, and freed per tenant', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  await a.file('/f', 'the same bytes');
  await b.file('/g', 'the same bytes');
  t.is(await env.chunkCount(a.tenantId), 1);
  t.is(await env.chunkCount(b.tenantId), 1);
  await a.unlink('/f');
  t.is(await env.chunkCount(a.tenantId), 0);
  t.is(await env.chunkCount(b.tenantId), 1);
  t.deepEqual(await b.read('/g'), Buffer.from('the same bytes'));
});

test('xattrs are per tenant', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  await a.create('/f');
  await b.create('/f');
  await a.setxattr('/f', 'user.owner', 'a');
  t.deepEqual(await b.listxattr('/f'), []);
  await t.throwsAsync(b.getxattr('/f', 'user.owner'), { code: 'TBNOD' });
});

test('use_tenant switches a session from one tenant to another', async (t) => {
  const a = await env.tenant(t);
  const b = await env.tenant(t);
  await a.create('/in-a');
  await b.create('/in-b');
  const sql = client(env.db.url, { max: 1 });
  t.teardown(() => sql.end({ timeout: 5 }));
  await sql`select tarbox.use_tenant(${a.name})`;
  t.deepEqual((await sql<{ name: Buffer }[]>`select name from tarbox.readdir('/')`).map((r) => r.name.toString()), ['in-a']);
  await sql`select tarbox.use_tenant(${b.name})`;
  t.deepEqual((await sql<{ name: Buffer }[]>`select name from tarbox.readdir('/')`).map((r) => r.name.toString()), ['in-b']);
});

test('with no tenant bound every function is TBNTS', async (t) => {
  const sql = client(env.db.url, { max: 1 });
  t.teardown(() => sql.end({ timeout: 5 }));
  const calls: [string, () => Promise<unknown>][] = [
    ['getattr', () => sql`select * from tarbox.getattr('/')`],
    ['getattr_ino', () => sql`select * from tarbox.getattr_ino(1)`],
    ['readdir', () => sql`select * from tarbox.readdir('/')`],
    ['mkdir', () => sql`select * from tarbox.mkdir('/d')`],
    ['create', () => sql`select * from tarbox.create('/f')`],
    ['mknod', () => sql`select * from tarbox.mknod('/f', 4480)`],
    ['symlink', () => sql`select * from tarbox.symlink('/x', '/l')`],
    ['readlink', () => sql`select tarbox.readlink('/l')`],
    ['link', () => sql`select * from tarbox.link('/a', '/b')`],
    ['unlink', () => sql`select tarbox.unlink('/f')`],
    ['rmdir', () => sql`select tarbox.rmdir('/d')`],
    ['rename', () => sql`select tarbox.rename('/a', '/b')`],
    ['chmod', () => sql`select * from tarbox.chmod('/', 493)`],
    ['chown', () => sql`select * from tarbox.chown('/', 0, 0)`],
    ['utimens', () => sql`select * from tarbox.utimens('/', 0, 0, 0, 0)`],
    ['access', () => sql`select tarbox.access('/', 0)`],
    ['open', () => sql`select * from tarbox.open('/')`],
    ['read', () => sql`select tarbox.read('/f')`],
    ['write', () => sql`select tarbox.write('/f', 0, '\\x00'::bytea)`],
    ['truncate', () => sql`select * from tarbox.truncate('/f', 0)`],
    ['setxattr', () => sql`select tarbox.setxattr('/', 'user.a', '\\x00'::bytea)`],
    ['getxattr', () => sql`select tarbox.getxattr('/', 'user.a')`],
    ['listxattr', () => sql`select * from tarbox.listxattr('/')`],
    ['removexattr', () => sql`select tarbox.removexattr('/', 'user.a')`],
    ['statfs', () => sql`select * from tarbox.statfs()`],
    ['missing_chunks', () => sql`select * from tarbox.missing_chunks(array['\\x00'::bytea])`],
    ['read_chunks', () => sql`select * from tarbox.read_chunks(array['\\x00'::bytea])`],
    ['file_blocks', () => sql`select * from tarbox.file_blocks(1, 0, 1)`],
    ['ls', () => sql`select * from tarbox.ls('/')`],
    ['read_file', () => sql`select tarbox.read_file('/f')`],
  ];
  for (const [label, call] of calls) await t.throwsAsync(call(), { code: 'TBNTS' }, label);
});

test('an unknown tenant id in the session is TBNTS', async (t) => {
  const sql = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': '987654' } });
  t.teardown(() => sql.end({ timeout: 5 }));
  await t.throwsAsync(sql`select * from tarbox.getattr('/')`, { code: 'TBNTS' });
});
