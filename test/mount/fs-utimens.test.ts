// utimens through a real mount: nanosecond times, UTIME_OMIT, UTIME_NOW, symlinks.
import test from 'ava';
import * as fs from 'node:fs';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
const UTC = { env: { TZ: 'UTC' } };

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

async function times(p: string): Promise<{ atime: string; mtime: string; ctime: string }> {
  const out = await m.check(`stat -c '%x|%y|%z' '${p}'`, UTC);
  const [atime, mtime, ctime] = out.trim().split('|');
  return { atime, mtime, ctime };
}

test.serial('touch -d with nanoseconds sets atime and mtime exactly', async (t) => {
  await m.check("touch f1 && touch -d '2020-01-01 12:00:00.123456789' f1", UTC);
  const { atime, mtime } = await times('f1');
  t.is(mtime, '2020-01-01 12:00:00.123456789 +0000');
  t.is(atime, '2020-01-01 12:00:00.123456789 +0000');
  const st = fs.statSync(m.path('f1'), { bigint: true });
  t.is(st.mtimeNs, 1577880000123456789n);
  t.is(st.atimeNs, 1577880000123456789n);
});

test.serial('touch -m leaves atime (UTIME_OMIT); touch -a leaves mtime', async (t) => {
  await m.check("touch -d '2001-02-03 04:05:06.000000007' f2", UTC);
  await m.check("touch -m -d '2010-10-10 10:10:10.999999999' f2", UTC);
  let r = await times('f2');
  t.is(r.atime, '2001-02-03 04:05:06.000000007 +0000');
  t.is(r.mtime, '2010-10-10 10:10:10.999999999 +0000');
  await m.check("touch -a -d '1999-12-31 23:59:59.5' f2", UTC);
  r = await times('f2');
  t.is(r.atime, '1999-12-31 23:59:59.500000000 +0000');
  t.is(r.mtime, '2010-10-10 10:10:10.999999999 +0000');
});

test.serial('touch without a date sets both to now (UTIME_NOW), and ctime too', async (t) => {
  await m.check("touch -d '2000-01-01 00:00:00' f3", UTC);
  const before = Date.now();
  await m.check('touch f3');
  const st = fs.statSync(m.path('f3'), { bigint: true });
  const now = BigInt(before) * 1_000_000n;
  for (const [name, v] of [['atime', st.atimeNs], ['mtime', st.mtimeNs], ['ctime', st.ctimeNs]] as const) {
    const diff = v > now ? v - now : now - v;
    t.true(diff < 5_000_000_000n, `${name} ${v} is within 5 s of ${now}`);
  }
  t.not(st.mtimeNs % 1_000_000_000n, 0n, 'now has sub-second precision');
});

test.serial('touch -m alone (UTIME_NOW for mtime, UTIME_OMIT for atime)', async (t) => {
  await m.check("touch -d '2000-01-01 00:00:00' f4", UTC);
  const now = BigInt(Date.now()) * 1_000_000n;
  await m.check('touch -m f4');
  const st = fs.statSync(m.path('f4'), { bigint: true });
  t.is(st.atimeNs, 946684800000000000n);
  const diff = st.mtimeNs > now ? st.mtimeNs - now : now - st.mtimeNs;
  t.true(diff < 5_000_000_000n, `mtime ${st.mtimeNs} is now (${now})`);
});

test.serial('utimes from Node (fractional seconds) and futimes on an open fd', (t) => {
  const f = m.path('f5');
  fs.writeFileSync(f, '');
  fs.utimesSync(f, 1_500_000_000.25, 1_600_000_000.75);
  let st = fs.statSync(f, { bigint: true });
  t.is(st.atimeNs, 1_500_000_000_250_000_000n);
  t.is(st.mtimeNs, 1_600_000_000_750_000_000n);
  const fd = fs.openSync(f, 'r+');
  fs.futimesSync(fd, 1_000_000_000, 1_100_000_000);
  fs.closeSync(fd);
  st = fs.statSync(f, { bigint: true });
  t.is(st.atimeNs, 1_000_000_000_000_000_000n);
  t.is(st.mtimeNs, 1_100_000_000_000_000_000n);
});

test.serial('times before 1970 and far in the future', async (t) => {
  await m.check("touch -d '1960-06-15 08:30:00.25' old", UTC);
  t.is((await times('old')).mtime, '1960-06-15 08:30:00.250000000 +0000');
  await m.check("touch -d '2200-01-01 00:00:00.000000001' future", UTC);
  t.is((await times('future')).mtime, '2200-01-01 00:00:00.000000001 +0000');
});

test.serial('utimens moves ctime to now even when setting old times', async (t) => {
  await m.check('touch f6');
  await new Promise((r) => setTimeout(r, 1100));
  const before = fs.statSync(m.path('f6'), { bigint: true });
  await m.check("touch -d '2000-01-01' f6", UTC);
  const after = fs.statSync(m.path('f6'), { bigint: true });
  t.true(after.ctimeNs > before.ctimeNs);
});

test.serial('touch -h sets a symlink\'s own times, not its target\'s', async (t) => {
  await m.check("touch -d '2011-11-11 11:11:11' target && ln -s target link && touch -h -d '2012-12-12 12:12:12.5' link", UTC);
  t.is((await times('link')).mtime, '2012-12-12 12:12:12.500000000 +0000');
  t.is((await times('target')).mtime, '2011-11-11 11:11:11.000000000 +0000');
  // without -h the target changes
  await m.check("touch -d '2013-01-01 00:00:00' link", UTC);
  t.is((await times('target')).mtime, '2013-01-01 00:00:00.000000000 +0000');
});

test.serial('directories take times too', async (t) => {
  await m.check("mkdir d && touch -d '2015-05-05 05:05:05.555555555' d", UTC);
  t.is((await times('d')).mtime, '2015-05-05 05:05:05.555555555 +0000');
});

test.serial('times survive a remount', async (t) => {
  await m.remount();
  t.is((await times('f1')).mtime, '2020-01-01 12:00:00.123456789 +0000');
  t.is((await times('f2')).atime, '1999-12-31 23:59:59.500000000 +0000');
});

test.serial('reading a file moves an atime older than its mtime (relatime)', async (t) => {
  await m.check("echo data > ra && touch -a -d '2000-01-01' ra", UTC);
  await m.check('cat ra > /dev/null');
  await new Promise((r) => setTimeout(r, 1100)); // attribute caches
  const st = fs.statSync(m.path('ra'), { bigint: true });
  const now = BigInt(Date.now()) * 1_000_000n;
  t.true(now - st.atimeNs < 10_000_000_000n, `atime ${st.atimeNs} moved to about now`);
});

test.serial('futimens on an fd with unflushed writes: the time set survives the close (cp -a, tar do this)', async (t) => {
  const fd = fs.openSync(m.path('pending'), 'w');
  fs.writeSync(fd, Buffer.alloc(5000, 1));
  fs.futimesSync(fd, 1_000_000_000, 1_000_000_000);
  fs.closeSync(fd);
  t.is(fs.statSync(m.path('pending')).mtimeMs, 1_000_000_000_000);
  await new Promise((r) => setTimeout(r, 1100)); // past the attribute caches
  t.is(fs.statSync(m.path('pending')).mtimeMs, 1_000_000_000_000, 'still after the caches expire');
  await m.remount();
  t.is(fs.statSync(m.path('pending')).mtimeMs, 1_000_000_000_000, 'and after a remount');
});

test.serial('utimes by path while another fd has unflushed writes', async (t) => {
  const fd = fs.openSync(m.path('pending2'), 'w');
  fs.writeSync(fd, 'data');
  fs.utimesSync(m.path('pending2'), 1_200_000_000, 1_200_000_000);
  fs.closeSync(fd);
  await new Promise((r) => setTimeout(r, 1100));
  t.is(fs.statSync(m.path('pending2')).mtimeMs, 1_200_000_000_000);
  t.is(fs.readFileSync(m.path('pending2'), 'utf8'), 'data');
});
