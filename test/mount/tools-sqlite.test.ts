// SQLite on the mount (python3's sqlite3): rollback journal and WAL, reopen, remount.
import test from 'ava';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

const CHECK = (db: string) => `
import sqlite3
c = sqlite3.connect('${db}')
out([c.execute('pragma integrity_check').fetchone()[0],
     c.execute('select count(*), sum(n), sum(length(payload)) from t').fetchone()])
`;

for (const mode of ['delete', 'wal']) {
  test.serial(`sqlite3 (journal_mode=${mode}): create, 1,000 inserts in a transaction, query, reopen`, async (t) => {
    t.timeout(60_000);
    const db = `test-${mode}.db`;
    const created = await m.python<unknown[]>(`
import sqlite3
c = sqlite3.connect('${db}')
mode = c.execute('pragma journal_mode=${mode}').fetchone()[0]
c.execute('create table t (id integer primary key, n integer not null, payload text not null)')
with c:
    c.executemany('insert into t (n, payload) values (?, ?)', [(i, 'row %d ' % i * (i % 50 + 1)) for i in range(1, 1001)])
res = [mode, c.execute('select count(*), sum(n) from t').fetchone()]
with c:
    c.execute('update t set n = n * 2 where id % 2 = 0')
    c.execute('delete from t where id > 990')
c.execute('create index t_n on t (n)')
res.append(c.execute('select count(*), sum(n) from t').fetchone())
c.close()
out(res)`);
    // sum of 1..1000 = 500500; doubling the even ids adds their sum (250500); then ids 991..1000 go
    const evens = 250500;
    const tail = [991, 992, 993, 994, 995, 996, 997, 998, 999, 1000].reduce((s, i) => s + (i % 2 === 0 ? 2 * i : i), 0);
    t.deepEqual(created, [mode, [1000, 500500], [990, 500500 + evens - tail]]);
    const payload = Array.from({ length: 990 }, (_, k) => `row ${k + 1} `.length * (((k + 1) % 50) + 1)).reduce((a, b) => a + b, 0);
    t.deepEqual(await m.python(CHECK(db)), ['ok', [990, 500500 + evens - tail, payload]], 'reopened');
    await m.remount();
    t.deepEqual(await m.python(CHECK(db)), ['ok', [990, 500500 + evens - tail, payload]], 'after a remount');
  });
}

test.serial('two connections: a writer and a reader in separate processes', async (t) => {
  t.timeout(60_000);
  await m.python(`
import sqlite3
c = sqlite3.connect('shared.db')
c.execute('create table kv (k text primary key, v integer)')
c.commit()
out(1)`);
  const writer = m.python<number>(`
import sqlite3
c = sqlite3.connect('shared.db', timeout=30)
for i in range(60):
    with c:
        c.execute('insert into kv values (?, ?)', ('k%d' % i, i))
out(c.execute('select count(*) from kv').fetchone()[0])`);
  const reader = m.python<boolean>(`
import sqlite3, time
c = sqlite3.connect('shared.db', timeout=30)
ok = True
for i in range(60):
    n, s = c.execute('select count(*), coalesce(sum(v), 0) from kv').fetchone()
    ok = ok and s == n * (n - 1) // 2
    time.sleep(0.005)
out(ok)`);
  const [written, consistent] = await Promise.all([writer, reader]);
  t.is(written, 60);
  t.true(consistent, 'the reader always saw a consistent prefix');
  t.deepEqual(await m.python(`
import sqlite3
c = sqlite3.connect('shared.db')
out([c.execute('pragma integrity_check').fetchone()[0], c.execute('select count(*), sum(v) from kv').fetchone()])`), ['ok', [60, 1770]]);
});
