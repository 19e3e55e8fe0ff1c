import test from 'ava';
import { UTIME_NOW, UTIME_OMIT, atime, ctime, mtime, nowNs, tick, useDatabase } from './_support.js';

const env = useDatabase(test);

test('utimens sets atime and mtime with exact nanoseconds', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const a = await fs.utimens('/f', 1234567890, 123456789, 987654321, 999999999);
  t.is(a.atime_sec, 1234567890);
  t.is(a.atime_nsec, 123456789);
  t.is(a.mtime_sec, 987654321);
  t.is(a.mtime_nsec, 999999999);
  const b = await fs.attr('/f');
  t.is(atime(b), 1234567890_123456789n);
  t.is(mtime(b), 987654321_999999999n);
});

test('utimens round-trips the epoch, far-future times and every digit of nanoseconds', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  for (const [sec, nsec] of [
    [0, 0],
    [0, 1],
    [1, 999999999],
    [4102444800, 5], // 2100-01-01
    [9000000000, 123000789], // year 2255
    [1700000000, 100000000],
  ]) {
    await fs.utimens('/f', sec, nsec, sec, nsec);
    const a = await fs.attr('/f');
    t.deepEqual([a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec], [sec, nsec, sec, nsec], `${sec}.${nsec}`);
  }
});

test('utimens round-trips times before 1970 (negative seconds, nanoseconds still 0..999999999)', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const a = await fs.utimens('/f', -1, 500000000, -86400, 0);
  t.deepEqual([a.atime_sec, a.atime_nsec], [-1, 500000000]);
  t.deepEqual([a.mtime_sec, a.mtime_nsec], [-86400, 0]);
  const b = await fs.attr('/f');
  t.deepEqual([b.atime_sec, b.atime_nsec], [-1, 500000000]);
});

test('utimens sets ctime to now', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.create('/f');
  await tick();
  const a = await fs.utimens('/f', 1, 0, 2, 0);
  t.true(ctime(a) > ctime(before));
});

test('UTIME_OMIT leaves that time alone', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.utimens('/f', 100, 1, 200, 2);
  let a = await fs.utimens('/f', 0, UTIME_OMIT, 300, 3);
  t.is(atime(a), 100_000000001n);
  t.is(mtime(a), 300_000000003n);
  a = await fs.utimens('/f', 400, 4, 0, UTIME_OMIT);
  t.is(atime(a), 400_000000004n);
  t.is(mtime(a), 300_000000003n);
});

test('UTIME_OMIT for both changes nothing, not even ctime', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const before = await fs.utimens('/f', 10, 0, 20, 0);
  await tick();
  const a = await fs.utimens('/f', 99, UTIME_OMIT, 99, UTIME_OMIT);
  t.deepEqual(a, before);
  t.deepEqual(await fs.attr('/f'), before);
});

test('UTIME_NOW sets that time to the current time; the seconds argument is ignored', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.utimens('/f', 5, 0, 5, 0);
  const lo = nowNs() - 5_000_000_000n; // allow for clock skew between node and the server
  let a = await fs.utimens('/f', 12345, UTIME_NOW, 0, UTIME_OMIT);
  const hi = nowNs() + 5_000_000_000n;
  t.true(atime(a) >= lo && atime(a) <= hi);
  t.is(mtime(a), 5_000000000n);
  a = await fs.utimens('/f', 0, UTIME_OMIT, 12345, UTIME_NOW);
  t.true(mtime(a) >= lo && mtime(a) <= hi);
  // both now: atime = mtime = ctime (one clock reading)
  a = await fs.utimens('/f', 0, UTIME_NOW, 0, UTIME_NOW);
  t.is(atime(a), mtime(a));
  t.is(mtime(a), ctime(a));
});

test('utimens with nanoseconds out of range is EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  const before = await fs.attr('/f');
  await t.throwsAsync(fs.utimens('/f', 1, 1000000000, 1, 0), { code: 'TBINV' });
  await t.throwsAsync(fs.utimens('/f', 1, 0, 1, -1), { code: 'TBINV' });
  await t.throwsAsync(fs.utimens('/f', 1, UTIME_NOW + 1, 1, 0), { code: 'TBINV' });
  t.deepEqual(await fs.attr('/f'), before);
});

test('utimens works on directories and does not follow symlinks; ENOENT for a missing path', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/target');
  await fs.symlink('/target', '/l');
  const target = await fs.attr('/target');
  t.is(mtime(await fs.utimens('/d', 7, 7, 8, 8)), 8_000000008n);
  t.is(mtime(await fs.utimens('/l', 7, 7, 8, 8)), 8_000000008n);
  t.deepEqual(await fs.attr('/target'), target);
  await t.throwsAsync(fs.utimens('/missing', 1, 0, 1, 0), { code: 'TBNOE' });
});
