// tarbox audit, audit stats and audit maintain through the built CLI; CLI changes are logged
// with interface "cli" and the CLI's own uid/pid context, CLI failures with their errno.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { client, freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { cliRunner, failsWith, text } from '../helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-cli-audit-'));
let db: FreshDatabase;
const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

test.before(async () => {
  db = await freshDatabase();
  await ok(['tenant', 'create', 'aud']);
  await ok(['tenant', 'create', 'other']);
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Event { operation: string; path: string | null; new_path: string | null; result: string; errno: number | null; interface: string; uid: number | null; pid: number | null; node: string | null }
const events = async (...args: string[]): Promise<Event[]> =>
  JSON.parse(text(await ok(['audit', '-t', 'aud', '--json', ...args]))) as Event[];

test.serial('CLI changes and failures are logged; audit lists them newest first with filters', async (t) => {
  await ok(['mkdir', '-t', 'aud', '-p', '/src/lib']);
  await ok(['write', '-t', 'aud', '/src/lib/a.txt', 'alpha']);
  await ok(['write', '-t', 'aud', '/notes', 'n']);
  await ok(['rm', '-t', 'aud', '/notes']);
  failsWith(t, await tarbox(['write', '-t', 'aud', '/missing/dir/f', 'x']), 3, /no such file/);
  await ok(['write', '-t', 'other', '/theirs', 'x']);

  const all = await events();
  t.deepEqual(all.map((e) => [e.operation, e.path, e.result]), [
    ['write', '/missing/dir/f', 'ENOENT'],
    ['unlink', '/notes', 'success'],
    ['write', '/notes', 'success'], ['create', '/notes', 'success'],
    ['write', '/src/lib/a.txt', 'success'], ['create', '/src/lib/a.txt', 'success'],
    ['mkdir', '/src/lib', 'success'], ['mkdir', '/src', 'success'],
    ['tenant_create', '/', 'success'],
  ]);
  t.true(all.every((e) => e.interface === 'cli' && e.node === os.hostname() && e.uid === process.getuid!() && e.pid !== null));

  t.deepEqual((await events('--path', '/src')).map((e) => [e.operation, e.path]),
    [['write', '/src/lib/a.txt'], ['create', '/src/lib/a.txt'], ['mkdir', '/src/lib'], ['mkdir', '/src']]);
  t.deepEqual((await events('--operation', 'unlink,mkdir', '--limit', '2')).map((e) => [e.operation, e.path]),
    [['unlink', '/notes'], ['mkdir', '/src/lib']]);
  t.deepEqual((await events('--result', 'error')).map((e) => [e.operation, e.errno]), [['write', 2]]);
  t.is((await events('--since', '1 hour ago')).length, all.length);
  t.is((await events('--until', '1 hour ago')).length, 0);
  t.is((await events('--since', new Date(Date.now() + 3600_000).toISOString())).length, 0);

  const listing = text(await ok(['audit', '-t', 'aud', '--limit', '3']));
  const lines = listing.trim().split('\n');
  t.regex(lines[0], /^TIME\s+OPERATION\s+RESULT\s+PATH\s+INTERFACE\s+CALLER\s+DETAIL$/);
  t.regex(lines[1], /write\s+ENOENT\s+\/missing\/dir\/f\s+cli\s+uid=\d+ pid=\d+/);
  t.is(lines.length, 4);
});

test.serial('a SQL caller\'s failure, logged through the audit writer, shows in tarbox audit', async (t) => {
  const [{ id }] = await db.sql`select tarbox.tenant_id('aud') as id`;
  const agent = client(db.url, { max: 1, connection: { 'tarbox.tenant_id': String(id), application_name: 'agent-7' } });
  t.teardown(() => agent.end({ timeout: 5 }));
  await t.throwsAsync(agent`select tarbox.unlink(${Buffer.from('/gone')})`, { code: 'TBNOE' });
  const [failure] = await events('--result', 'error', '--limit', '1');
  t.like(failure, { operation: 'unlink', path: '/gone', result: 'ENOENT', errno: 2, interface: 'sql', node: 'agent-7' });
  const listing = text(await ok(['audit', '-t', 'aud', '--result', 'error', '--limit', '1'])).trim().split('\n');
  t.regex(listing[1], /unlink\s+ENOENT\s+\/gone\s+sql\s/);
});

test.serial('layer commands are logged, and a refused one with its errno', async (t) => {
  await ok(['layer', 'create', '-t', 'aud', '-m', 'cli checkpoint']);
  failsWith(t, await tarbox(['layer', 'delete', '-t', 'aud', '999999']), 3, /layer/);
  const [failed, created] = await events('--operation', 'layer_create,layer_delete');
  t.like(failed, { operation: 'layer_delete', result: 'ENOENT', interface: 'cli' });
  t.like(created, { operation: 'layer_create', result: 'success', interface: 'cli' });
});

test.serial('stats: per operation and per hour, only the tenant\'s own', async (t) => {
  const stats = JSON.parse(text(await ok(['audit', 'stats', '-t', 'other', '--json']))) as { operation: string; events: number; errors: number }[];
  t.deepEqual(stats.map((s) => [s.operation, s.events, s.errors]).sort(), [['create', 1, 0], ['tenant_create', 1, 0], ['write', 1, 0]]);
  const out = text(await ok(['audit', 'stats', '-t', 'aud']));
  t.regex(out, /^OPERATION\s+EVENTS\s+ERRORS\n/);
  t.regex(out, /\nwrite\s+3\s+1\n/);
  t.regex(out, /\nHOUR \(UTC\)\s+EVENTS\s+ERRORS\n\d{4}-\d\d-\d\dT\d\d:00\s+\d+\s+\d+/);
});

test.serial('maintain creates partitions ahead and drops old ones by the configured retention', async (t) => {
  const env = { TARBOX_AUDIT_RETENTION_DAYS: '2', TARBOX_AUDIT_PARTITION: 'daily' };
  const far = JSON.parse(text(await ok(['audit', 'maintain', '--now', '2031-03-01T12:00:00Z', '--json'], { env }))) as
    { action: string; partition_name: string }[];
  t.true(far.some((s) => s.action === 'created' && s.partition_name === 'audit_events_20310301'));
  t.true(far.some((s) => s.action === 'created' && s.partition_name === 'audit_events_20310307'));
  const later = text(await ok(['audit', 'maintain', '--now', '2031-03-05T00:00:00Z'], { env }));
  t.regex(later, /^dropped audit_events_20310301 \[2031-03-01T00:00:00.000Z, 2031-03-02T00:00:00.000Z\)$/m);
  t.regex(later, /^dropped audit_events_20310302 /m); // ends on the 3rd: every row older than 2 days
  t.notRegex(later, /dropped audit_events_20310303/);
  t.is(text(await ok(['audit', 'maintain', '--now', '2031-03-05T00:00:00Z'], { env })).trim(), 'audit partitions: nothing to do');
});

test('bad input: one line and exit code 2', async (t) => {
  failsWith(t, await tarbox(['audit', '-t', 'aud', '--since', 'yesterday-ish']), 2, /expected a time like/);
  failsWith(t, await tarbox(['audit', '-t', 'aud', '--result', 'maybe']), 2, /expected "success" or "error"/);
  failsWith(t, await tarbox(['audit', '-t', 'aud', '--limit', '0']), 2, /expected a positive number/);
  failsWith(t, await tarbox(['audit', '-t', 'aud', '--operation', 'Write!']), 2, /operation names/);
  failsWith(t, await tarbox(['audit', '-t', 'nobody']), 3, /unknown tenant/);
});
