// Audit through SQL: each change function logs exactly its row in its own transaction, failures
// and handle summaries go through tarbox.log_operation, levels, append-only, tenant isolation
// and the query functions' filters. Partition maintenance is in audit-partitions.test.ts.
import test, { type ExecutionContext } from 'ava';
import { client } from '../helpers/database.js';
import { B, O_TRUNC, O_WRONLY, P, useDatabase } from '../db/_support.js';
import { added, auditTenant, events, type Event } from './_support.js';

const env = useDatabase(test);

const brief = (e: Event) => [e.operation, e.path, e.new_path];

const tenant = (t: ExecutionContext, level?: string) => auditTenant(env, t, level);

test('every change function logs one row with its operation, paths, inode and sizes', async (t) => {
  const fs = await tenant(t);
  const created = await added(fs, () => fs.create('/a.txt', 0o644, 1000, 1001));
  t.deepEqual(created.map(brief), [['create', '/a.txt', null]]);
  t.like(created[0], { result: 'success', errno: null, uid: 1000, gid: 1001, interface: 'sql' });
  const a = await fs.attr('/a.txt');
  t.is(created[0].ino, a.ino);

  const cases: [string, () => Promise<unknown>, unknown[][]][] = [
    ['mkdir', () => fs.mkdir('/d'), [['mkdir', '/d', null]]],
    ['mknod', () => fs.mknod('/fifo', 0o010644), [['mknod', '/fifo', null]]],
    ['symlink', () => fs.symlink('a.txt', '/d/link'), [['symlink', '/d/link', null]]],
    ['link', () => fs.link('/a.txt', '/d/hard'), [['link', '/a.txt', '/d/hard']]],
    ['write', () => fs.write('/a.txt', 0, 'hello'), [['write', '/a.txt', null]]],
    ['write_ino', () => fs.writeIno(a.ino, 5, ' world'), [['write', '/a.txt', null]]],
    ['truncate', () => fs.truncate('/a.txt', 3), [['truncate', '/a.txt', null]]],
    ['truncate_ino', () => fs.truncateIno(a.ino, 2), [['truncate', '/a.txt', null]]],
    ['open O_TRUNC', () => fs.open('/a.txt', O_WRONLY | O_TRUNC), [['truncate', '/a.txt', null]]],
    ['chmod', () => fs.chmod('/a.txt', 0o600), [['chmod', '/a.txt', null]]],
    ['chown', () => fs.chown('/a.txt', 5, 6), [['chown', '/a.txt', null]]],
    ['utimens', () => fs.utimens('/a.txt', 1, 0, 2, 0), [['utimens', '/a.txt', null]]],
    ['setxattr', () => fs.setxattr('/a.txt', 'user.k', 'v'), [['setxattr', '/a.txt', null]]],
    ['removexattr', () => fs.removexattr('/a.txt', 'user.k'), [['removexattr', '/a.txt', null]]],
    ['rename', () => fs.rename('/a.txt', '/d/b.txt'), [['rename', '/a.txt', '/d/b.txt']]],
    ['unlink', () => fs.unlink('/d/hard'), [['unlink', '/d/hard', null]]],
    ['rmdir', async () => { await fs.mkdir('/e'); await fs.rmdir('/e'); }, [['mkdir', '/e', null], ['rmdir', '/e', null]]],
    ['append', () => fs.sql`select tarbox.append_ino(${a.ino}, ${B('xyz')})`, [['write', '/d/b.txt', null]]],
  ];
  for (const [name, fn, expected] of cases) {
    t.deepEqual((await added(fs, fn)).map(brief), expected, name);
  }
  const all = await events(fs);
  t.like(all.find((e) => e.operation === 'write' && e.bytes_written === 6), { path: '/a.txt', ino: a.ino });
  t.is(all.find((e) => e.operation === 'chmod')?.detail, 'mode=0600');
  t.is(all.find((e) => e.operation === 'chown')?.detail, 'uid=5 gid=6');
  t.is(all.find((e) => e.operation === 'setxattr')?.detail, 'user.k');
  t.is(all.find((e) => e.operation === 'symlink')?.detail, 'a.txt');
  t.is(all.find((e) => e.operation === 'truncate')?.detail, 'size=3');
  t.true(all.every((e) => e.errno === null && e.interface === 'sql'));
});

test('convenience functions log the primitive changes they make', async (t) => {
  const fs = await tenant(t);
  const rows = await added(fs, async () => {
    await fs.sql`select tarbox.make_directory('/x/y', true)`;
    await fs.sql`select tarbox.write_file('/x/y/f', ${B('one')})`;
    await fs.sql`select tarbox.write_file('/x/y/f', ${B('two!')})`;
    await fs.sql`select tarbox.remove('/x', true)`;
  });
  t.deepEqual(rows.map(brief), [
    ['mkdir', '/x', null], ['mkdir', '/x/y', null],
    ['create', '/x/y/f', null], ['write', '/x/y/f', null],
    ['truncate', '/x/y/f', null], ['write', '/x/y/f', null],
    ['unlink', '/x/y/f', null], ['rmdir', '/x/y', null], ['rmdir', '/x', null],
  ]);
  t.deepEqual(rows.filter((e) => e.operation === 'write').map((e) => e.bytes_written), [3, 4]);
});

test('layer operations are logged', async (t) => {
  const fs = await tenant(t);
  const rows = await added(fs, async () => {
    const [frozen] = await fs.sql`select layer_id from tarbox.create_layer('first')`;
    await fs.file('/f', 'x');
    await fs.sql`select tarbox.switch_layer(${frozen.layer_id})`;
    const layers = await fs.sql`select layer_id from tarbox.list_layers() where not is_working and not in_view`;
    for (const l of layers) await fs.sql`select tarbox.delete_layer(${l.layer_id})`;
  });
  const ops = rows.map((e) => e.operation).filter((o) => o.startsWith('layer_'));
  t.deepEqual(ops.slice(0, 2), ['layer_create', 'layer_switch']);
  t.true(ops.slice(2).every((o) => o === 'layer_delete') && ops.length >= 3);
  t.regex(rows[0].detail ?? '', /^layer \d+: first$/);
});

test('tenant creation and deletion are logged in the tenant; its history outlives it with keep_audit', async (t) => {
  const history = async (id: number) => (await env.admin`
    select operation, path, detail from tarbox_private.audit_events where tenant_id = ${id} order by event_id`)
    .map((r) => [r.operation, r.path, r.detail]);
  const kept = `audited-${process.pid}`;
  const [{ tenant_id: keptId }] = await env.admin`select tenant_id from tarbox.create_tenant(${kept})`;
  await env.admin`select tarbox.delete_tenant(${kept}, p_keep_audit => true, p_force => false)`;
  t.deepEqual(await history(keptId), [['tenant_create', '/', kept], ['tenant_delete', '/', kept]]);
  // a plain delete takes the tenant's audit rows with it (issue #8: nothing left behind)
  const gone = `purged-${process.pid}`;
  const [{ tenant_id: goneId }] = await env.admin`select tenant_id from tarbox.create_tenant(${gone})`;
  t.is((await history(goneId)).length, 1);
  await env.admin`select tarbox.delete_tenant(${gone})`;
  t.deepEqual(await history(goneId), []);
});

test('a change that rolls back leaves no row; a failed one only its failure (sql-callers.test.ts)', async (t) => {
  const fs = await tenant(t);
  await fs.file('/keep', 'data');
  const before = (await events(fs)).length;
  await t.throwsAsync(fs.create('/keep'), { code: 'TBEXI' });
  await t.throwsAsync(fs.rename('/keep', '/missing/x'), { code: 'TBNOE' });
  await t.throwsAsync(fs.sql.begin(async (tx) => {
    await tx`select tarbox.unlink(${P('/keep')})`;
    await tx`select tarbox.mkdir(${P('/made')})`;
    throw Object.assign(new Error('abort'), { code: 'XXABC' });
  }), { code: 'XXABC' });
  t.deepEqual((await events(fs)).slice(before).map((e) => [e.operation, e.path, e.result]), [
    ['create', '/keep', 'EEXIST'], ['rename', '/missing/x', 'ENOENT'],
  ]);
  t.true(await fs.exists('/keep'));
});

test('log_operation records a failure with its errno, and the caller identity and context', async (t) => {
  const fs = await tenant(t);
  await fs.sql`select tarbox.log_operation('unlink', ${P('/etc/x')}, 13, p_uid => 1000, p_gid => 100, p_pid => 4242)`;
  const [e] = await fs.sql<Event[]>`select * from tarbox.audit_log(p_result => 'error')`;
  t.like(e, { operation: 'unlink', path: '/etc/x', errno: 13, result: 'EACCES', uid: 1000, gid: 100, pid: 4242, interface: 'sql' });
  await t.throwsAsync(fs.sql`select tarbox.log_operation('Bad Op')`, { code: 'TBINV' });
  await t.throwsAsync(fs.sql`select tarbox.log_operation('unlink', ${P('/x')}, -1)`, { code: 'TBINV' });
});

test('session settings give the interface, node and caller of every row', async (t) => {
  const fs = await tenant(t);
  const sql = client(env.db.url, {
    max: 1,
    connection: {
      'tarbox.tenant_id': String(fs.tenantId), 'tarbox.interface': 'cli', 'tarbox.node': 'host-1',
      'tarbox.uid': '501', 'tarbox.gid': '20', 'tarbox.pid': '777',
    },
  });
  t.teardown(() => sql.end({ timeout: 5 }));
  await sql`select tarbox.mkdir(${P('/via-cli')})`;
  const [e] = await fs.sql<Event[]>`select * from tarbox.audit_log(p_limit => 1)`;
  t.like(e, { operation: 'mkdir', interface: 'cli', node: 'host-1', uid: 501, gid: 20, pid: 777 });
});

test('levels: off logs nothing, writes only changes, all also opens and reads', async (t) => {
  const fs = await tenant(t, 'off');
  t.is((await fs.sql`select tarbox.audit_level() as l`)[0].l, 'off');
  await fs.file('/f', 'quiet');
  await fs.sql`select tarbox.log_operation('open', ${P('/f')}, p_bytes_read => 5)`;
  await fs.sql`select tarbox.log_operation('unlink', ${P('/f')}, 1)`;
  t.is((await events(fs)).length, 0);
  await fs.sql`select tarbox.set_audit_level('writes')`;
  await fs.sql`select tarbox.log_operation('open', ${P('/f')}, p_bytes_read => 5)`;
  await fs.sql`select tarbox.log_operation('unlink', ${P('/f')}, 1)`;
  t.deepEqual((await events(fs)).map((e) => e.operation), ['unlink']);
  await fs.sql`select tarbox.set_audit_level('all')`;
  await fs.sql`select tarbox.log_operation('open', ${P('/f')}, p_bytes_read => 5, p_bytes_written => 2)`;
  t.like((await events(fs)).at(-1), { operation: 'open', bytes_read: 5, bytes_written: 2 });
  await t.throwsAsync(fs.sql`select tarbox.set_audit_level('verbose')`, { code: 'TBINV' });
});

test('reads through SQL: one row per call at level "all", none at "writes"', async (t) => {
  const fs = await tenant(t, 'writes');
  await fs.file('/doc', 'hello world');
  const reads = async () => (await events(fs)).filter((e) => e.operation === 'read');
  t.is((await fs.sql`select convert_from(tarbox.read_file('/doc'), 'UTF8') as s`)[0].s, 'hello world');
  t.deepEqual(await reads(), []);
  await fs.sql`select tarbox.set_audit_level('all')`;
  await fs.sql`select tarbox.read_file('/doc')`;
  await fs.sql`select tarbox.read(${P('/doc')}, 6, 100)`;
  const [{ ino }] = await fs.sql`select ino from tarbox.getattr(${P('/doc')})`;
  t.deepEqual(Buffer.from((await fs.sql`select tarbox.read_ino(${ino}, 0, 5) as d`)[0].d as Buffer).toString(), 'hello');
  t.deepEqual((await reads()).map((e) => [e.path, e.bytes_read, e.interface]), [
    ['/doc', 11, 'sql'], ['/doc', 5, 'sql'], ['/doc', 5, 'sql'],
  ]);
  // a read that fails is logged as a failure (sql-callers.test.ts)
  await t.throwsAsync(fs.sql`select tarbox.read_file('/missing')`, { code: 'TBNOE' });
  t.like((await reads())[3], { path: '/missing', result: 'ENOENT' });
});

test('log_operations logs a batch (paths as base64 bytes)', async (t) => {
  const fs = await tenant(t, 'all');
  const b64 = (p: string | Buffer) => Buffer.from(p).toString('base64');
  const [{ n }] = await fs.sql`select tarbox.log_operations(${fs.sql.json([
    { operation: 'open', path: b64('/a'), ino: 7, bytes_read: 10, bytes_written: 0, uid: 1, gid: 2, pid: 3 },
    { operation: 'open', path: b64(Buffer.from([0x2f, 0xfe])), bytes_read: 0, bytes_written: 5 },
  ] as never)}) as n`;
  t.is(n, 2);
  t.deepEqual((await events(fs)).map((e) => [e.operation, e.path, e.bytes_read, e.bytes_written, e.pid]),
    [['open', '/a', 10, 0, 3], ['open', '/\\376', 0, 5, null]]);
  await t.throwsAsync(fs.sql`select tarbox.log_operations(${fs.sql.json([{ operation: 'DROP' }] as never)})`, { code: 'TBINV' });
});

test('audit rows cannot be changed or deleted', async (t) => {
  const fs = await tenant(t);
  await fs.mkdir('/d');
  await t.throwsAsync(env.admin`update tarbox_private.audit_events set path = '/other' where tenant_id = ${fs.tenantId}`, { code: '42501' });
  await t.throwsAsync(env.admin`delete from tarbox_private.audit_events where tenant_id = ${fs.tenantId}`, { code: '42501' });
  await t.throwsAsync(env.admin`truncate tarbox_private.audit_events`, { code: '42501' });
  t.deepEqual((await events(fs)).map(brief), [['mkdir', '/d', null]]);
});

test('a tenant reads only its own audit rows', async (t) => {
  const a = await tenant(t);
  const b = await tenant(t);
  await a.mkdir('/secret-a');
  await b.mkdir('/b');
  t.deepEqual((await events(a)).map(brief), [['mkdir', '/secret-a', null]]);
  t.deepEqual((await events(b)).map(brief), [['mkdir', '/b', null]]);
  const statsB = await b.sql`select operation, events from tarbox.audit_stats()`;
  t.deepEqual(statsB.map((r) => [r.operation, r.events]), [['mkdir', 1], ['tenant_create', 1]]);
  const unbound = client(env.db.url, { max: 1 });
  t.teardown(() => unbound.end({ timeout: 5 }));
  await t.throwsAsync(unbound`select * from tarbox.audit_log()`, { code: 'TBNTS' });
});

test('audit_log filters by time, path prefix, operation and result, newest first, with a limit', async (t) => {
  const fs = await tenant(t);
  await fs.mkdir('/src');
  await fs.file('/src/a.ts', 'a');
  await fs.file('/src-old', 'not under /src');
  await fs.file('/tmp1', 'x');
  await fs.rename('/tmp1', '/src/moved');
  await fs.sql`select tarbox.log_operation('unlink', ${P('/src/a.ts')}, 13)`;
  const q = (args: Record<string, unknown>) => fs.sql<Event[]>`
    select * from tarbox.audit_log(p_since => ${(args.since as Date) ?? null}, p_until => ${(args.until as Date) ?? null},
      p_path => ${(args.path as string) ?? null}, p_operations => ${(args.ops as string[]) ?? null},
      p_result => ${(args.result as string) ?? null}, p_limit => ${(args.limit as number) ?? 100})`;
  t.deepEqual((await q({ path: '/src' })).map(brief), [
    ['unlink', '/src/a.ts', null], ['rename', '/tmp1', '/src/moved'], ['write', '/src/a.ts', null],
    ['create', '/src/a.ts', null], ['mkdir', '/src', null],
  ]);
  t.deepEqual((await q({ path: '/src/', ops: ['create', 'rename'] })).map((e) => e.operation), ['rename', 'create']);
  t.deepEqual((await q({ result: 'error' })).map(brief), [['unlink', '/src/a.ts', null]]);
  t.is((await q({ result: 'success' })).length, 9);
  t.is((await q({ limit: 2 })).length, 2);
  t.is((await q({ since: new Date(Date.now() + 60_000) })).length, 0);
  t.is((await q({ until: new Date(Date.now() - 60_000) })).length, 0);
  t.is((await q({ since: new Date(Date.now() - 60_000), until: new Date(Date.now() + 60_000) })).length, 10);
  await t.throwsAsync(q({ result: 'maybe' }), { code: 'TBINV' });
  await t.throwsAsync(q({ limit: 0 }), { code: 'TBINV' });
});

test('non-UTF-8 names are logged escaped, UTF-8 names as they are', async (t) => {
  const fs = await tenant(t);
  await fs.create(Buffer.from([0x2f, 0x61, 0xff]));
  await fs.create('/naïve');
  t.deepEqual((await events(fs)).map((e) => e.path), ['/a\\377', '/naïve']);
});
