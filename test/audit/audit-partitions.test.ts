// Partition maintenance with a fake clock: partitions are created ahead, dropped after the
// retention, sized by the configured interval, and rows that arrived before their partition
// existed move into it. Its own database, because maintenance changes the shared table.
import test from 'ava';
import { freshDatabase, withTenant, type FreshDatabase } from '../helpers/database.js';

let db: FreshDatabase;
test.before(async () => { db = await freshDatabase(); });
test.after.always(async () => { await db?.drop(); });

async function ranges(): Promise<[string, string][]> {
  const rows = await db.sql`select range_from, range_to from tarbox.audit_partitions() where not is_default`;
  return rows.map((r) => [(r.range_from as Date).toISOString().slice(0, 10), (r.range_to as Date).toISOString().slice(0, 10)]);
}

test.serial('daily: a week ahead is created, partitions past the retention are dropped', async (t) => {
  await db.sql`select tarbox.configure_audit('daily', 3)`;
  const first = await db.sql`select * from tarbox.maintain_audit('2030-01-10 13:00+00')`;
  t.true(first.every((r) => r.action === 'created' || r.action === 'dropped'));
  const created = (await ranges()).filter(([from]) => from >= '2030-01-01');
  t.deepEqual(created[0], ['2030-01-10', '2030-01-11']);
  t.deepEqual(created.at(-1), ['2030-01-17', '2030-01-18']);
  t.is(created.length, 8);
  // partitions of the real "now" (made by the migration) are long past the retention: gone
  t.true((await ranges()).every(([from]) => from >= '2030-01-01'));
  t.true(first.some((r) => r.action === 'dropped'));

  // idempotent
  t.is((await db.sql`select * from tarbox.maintain_audit('2030-01-10 13:00+00')`).length, 0);

  // three days later the 10th..12th are past the 3 day retention (13th ends on the 14th)
  const later = await db.sql`select action, partition_name from tarbox.maintain_audit('2030-01-16 00:00+00') order by 1, 2`;
  t.deepEqual(later.filter((r) => r.action === 'dropped').map((r) => r.partition_name),
    ['audit_events_20300110', 'audit_events_20300111', 'audit_events_20300112']);
  t.deepEqual(later.filter((r) => r.action === 'created').map((r) => r.partition_name),
    ['audit_events_20300118', 'audit_events_20300119', 'audit_events_20300120', 'audit_events_20300121',
     'audit_events_20300122']);
  t.deepEqual((await ranges())[0], ['2030-01-13', '2030-01-14']);
});

test.serial('weekly and monthly partitions continue where the existing ones end', async (t) => {
  await db.sql`select tarbox.configure_audit('weekly', 30)`;
  await db.sql`select * from tarbox.maintain_audit('2030-01-16 00:00+00')`;
  const weekly = (await ranges()).filter(([from]) => from >= '2030-01-23');
  // the daily partitions run to the 23rd (a Wednesday); then the rest of that week, then whole weeks
  t.deepEqual(weekly[0], ['2030-01-23', '2030-01-28']);
  t.deepEqual(weekly[1], ['2030-01-28', '2030-02-04']);
  await db.sql`select tarbox.configure_audit('monthly', 365)`;
  await db.sql`select * from tarbox.maintain_audit('2030-02-20 00:00+00')`;
  const all = await ranges();
  // the weekly ones end on 4 February; then whole months to at least two months ahead
  t.deepEqual(all.slice(-3), [['2030-02-04', '2030-03-01'], ['2030-03-01', '2030-04-01'], ['2030-04-01', '2030-05-01']]);
  // no gaps, no overlaps
  for (let i = 1; i < all.length; i++) t.is(all[i][0], all[i - 1][1]);
  await t.throwsAsync(db.sql`select tarbox.configure_audit('hourly', 3)`, { code: 'TBINV' });
  await t.throwsAsync(db.sql`select tarbox.configure_audit('daily', 0)`, { code: 'TBINV' });
});

test.serial('rows logged before their partition exists move into it when it is created', async (t) => {
  const sql = await withTenant(db.url, 'early');
  t.teardown(() => sql.end({ timeout: 5 }));
  // no partition covers real time any more (the clock above is in 2030): rows go to the default
  await sql`select tarbox.mkdir('/d')`;
  const [{ n }] = await db.sql`select count(*)::int as n from tarbox_private.audit_events_default`;
  t.true(n >= 1);
  await db.sql`select tarbox.configure_audit('daily', 30)`;
  const done = await db.sql`select * from tarbox.maintain_audit(now())`;
  t.true(done.some((r) => r.action === 'created'));
  const [{ m }] = await db.sql`select count(*)::int as m from tarbox_private.audit_events_default`;
  t.is(m, 0);
  const rows = await sql`select operation, path from tarbox.audit_log() where operation = 'mkdir'`;
  t.deepEqual(rows.map((r) => [r.operation, r.path]), [['mkdir', '/d']]);
  const [{ part }] = await db.sql`
    select tableoid::regclass::text as part from tarbox_private.audit_events where path = '/d'`;
  t.is(part, `tarbox_private.audit_events_${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`);
});
