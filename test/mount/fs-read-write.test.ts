// read/write, truncate/ftruncate, flush/fsync and close-to-open through a real mount.
// The tenant uses 64 KiB blocks so ordinary sizes cross block boundaries.
import test from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { allowTime, errorCode, finish, mountFresh, type Mount, type MountServer } from '../helpers/mount.js';

const BS = 64 * 1024;
let m: Mount;

test.before(async () => {
  m = await mountFresh({ blockSize: BS });
});

test.after.always((t) => finish(t, m));

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function firstDifference(a: Buffer, b: Buffer): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `first difference at byte ${i}: ${a[i]} vs ${b[i]} (lengths ${a.length}, ${b.length})`;
  return a.length === b.length ? 'equal' : `lengths ${a.length} vs ${b.length}`;
}

test.serial('every byte value round-trips exactly', (t) => {
  const all = Buffer.alloc(256 * 17);
  for (let i = 0; i < all.length; i++) all[i] = i & 0xff;
  fs.writeFileSync(m.path('bytes'), all);
  const back = fs.readFileSync(m.path('bytes'));
  t.true(back.equals(all), firstDifference(back, all));
});

test.serial('pwrite/pread at offsets inside, across and past block boundaries', (t) => {
  const f = m.path('offsets');
  const model = Buffer.alloc(3 * BS + 100);
  const fd = fs.openSync(f, 'w+');
  try {
    const writes: [number, number][] = [[0, 10], [BS - 5, 10], [2 * BS - 1, 2], [BS + 100, BS], [3 * BS + 50, 50], [7, 3]];
    let size = 0;
    writes.forEach(([off, len], i) => {
      const data = bytes(len, 100 + i);
      t.is(fs.writeSync(fd, data, 0, len, off), len);
      data.copy(model, off);
      size = Math.max(size, off + len);
    });
    t.is(fs.fstatSync(fd).size, size);
    for (const [off, len] of [[0, 20], [BS - 10, 30], [2 * BS - 3, 6], [BS + 90, BS + 20], [3 * BS, 100], [0, size]] as const) {
      const buf = Buffer.alloc(len);
      const n = fs.readSync(fd, buf, 0, len, off);
      t.is(n, Math.min(len, size - off));
      t.true(buf.subarray(0, n).equals(model.subarray(off, off + n)), `read ${off}+${len}: ${firstDifference(buf.subarray(0, n), model.subarray(off, off + n))}`);
    }
    // reading at or past the end gives 0 bytes
    t.is(fs.readSync(fd, Buffer.alloc(10), 0, 10, size), 0);
    t.is(fs.readSync(fd, Buffer.alloc(10), 0, 10, size + 12345), 0);
  } finally {
    fs.closeSync(fd);
  }
  t.true(fs.readFileSync(f).equals(model.subarray(0, fs.statSync(f).size)));
});

test.serial('overwrite in the middle keeps the bytes around it', (t) => {
  const f = m.path('middle');
  const base = bytes(3 * BS, 7);
  fs.writeFileSync(f, base);
  const fd = fs.openSync(f, 'r+');
  fs.writeSync(fd, Buffer.from('MIDDLE'), 0, 6, BS + 3);
  fs.closeSync(fd);
  Buffer.from('MIDDLE').copy(base, BS + 3);
  const back = fs.readFileSync(f);
  t.true(back.equals(base), firstDifference(back, base));
});

test.serial('O_APPEND writes always go to the end', (t) => {
  const f = m.path('append');
  fs.writeFileSync(f, 'start|');
  const fd = fs.openSync(f, 'a');
  fs.writeSync(fd, 'one|');
  fs.writeSync(fd, 'two|');
  fs.closeSync(fd);
  const fd2 = fs.openSync(f, 'a+');
  fs.writeSync(fd2, bytes(BS + 1, 3));
  fs.writeSync(fd2, 'end');
  fs.closeSync(fd2);
  const back = fs.readFileSync(f);
  const expected = Buffer.concat([Buffer.from('start|one|two|'), bytes(BS + 1, 3), Buffer.from('end')]);
  t.true(back.equals(expected), firstDifference(back, expected));
});

test.serial('holes read as zeros: write past the end of a new file', (t) => {
  const f = m.path('holes');
  const fd = fs.openSync(f, 'w+');
  fs.writeSync(fd, Buffer.from('tail'), 0, 4, 5 * BS + 10);
  fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
  t.is(fs.fstatSync(fd).size, 5 * BS + 14);
  const all = Buffer.alloc(5 * BS + 14);
  t.is(fs.readSync(fd, all, 0, all.length, 0), all.length);
  fs.closeSync(fd);
  const expected = Buffer.alloc(5 * BS + 14);
  expected.write('head', 0);
  expected.write('tail', 5 * BS + 10);
  t.true(all.equals(expected), firstDifference(all, expected));
  t.true(fs.readFileSync(f).equals(expected), 'after close too');
});

test.serial('a 20 MiB file spanning many blocks: written in odd pieces, read back exact (sha256)', async (t) => {
  await allowTime(t, 90_000);
  const f = m.path('big');
  const size = 20 * 1024 * 1024;
  const data = crypto.randomBytes(size);
  const fd = fs.openSync(f, 'w');
  // odd piece sizes so writes straddle blocks
  for (let off = 0, i = 0; off < size; i++) {
    const len = Math.min(size - off, [1_000_003, 65_537, 333_333, 4_096][i % 4]);
    t.is(fs.writeSync(fd, data, off, len, off), len);
    off += len;
  }
  fs.closeSync(fd);
  t.is(fs.statSync(f).size, size);
  const back = fs.readFileSync(f);
  t.true(back.equals(data), firstDifference(back, data));
  const want = crypto.createHash('sha256').update(data).digest('hex');
  const sum = await m.check('sha256sum big');
  t.is(sum.split(' ')[0], want, 'another process reads the same bytes');
  // random preads
  const fd2 = fs.openSync(f, 'r');
  for (let i = 0; i < 50; i++) {
    const off = Math.floor(Math.random() * size);
    const len = Math.min(size - off, 1 + Math.floor(Math.random() * 3 * BS));
    const buf = Buffer.alloc(len);
    t.is(fs.readSync(fd2, buf, 0, len, off), len);
    if (!buf.equals(data.subarray(off, off + len))) t.fail(`pread ${off}+${len}: ${firstDifference(buf, data.subarray(off, off + len))}`);
  }
  fs.closeSync(fd2);
});

test.serial('truncate shrinks and extends with zeros (path and fd)', (t) => {
  const f = m.path('truncate');
  const data = bytes(2 * BS + 500, 11);
  fs.writeFileSync(f, data);
  fs.truncateSync(f, BS + 10);
  t.is(fs.statSync(f).size, BS + 10);
  t.true(fs.readFileSync(f).equals(data.subarray(0, BS + 10)));
  // extending must not resurrect the cut bytes
  fs.truncateSync(f, 3 * BS);
  const expected = Buffer.concat([data.subarray(0, BS + 10), Buffer.alloc(3 * BS - BS - 10)]);
  const back = fs.readFileSync(f);
  t.true(back.equals(expected), firstDifference(back, expected));
  fs.truncateSync(f, 0);
  t.is(fs.statSync(f).size, 0);
  t.is(fs.readFileSync(f).length, 0);
});

test.serial('ftruncate on an fd with buffered writes, shrink inside a block then extend', (t) => {
  const f = m.path('ftruncate');
  const fd = fs.openSync(f, 'w+');
  const data = bytes(BS + 1000, 5);
  fs.writeSync(fd, data, 0, data.length, 0);
  fs.ftruncateSync(fd, 100);
  t.is(fs.fstatSync(fd).size, 100);
  fs.ftruncateSync(fd, BS + 1000);
  t.is(fs.fstatSync(fd).size, BS + 1000);
  const buf = Buffer.alloc(BS + 1000);
  t.is(fs.readSync(fd, buf, 0, buf.length, 0), buf.length);
  const expected = Buffer.concat([data.subarray(0, 100), Buffer.alloc(BS + 900)]);
  t.true(buf.equals(expected), firstDifference(buf, expected));
  // write after the truncation point, then close: the zeros between stay zeros
  fs.writeSync(fd, Buffer.from('X'), 0, 1, 500);
  fs.closeSync(fd);
  expected[500] = 0x58;
  const back = fs.readFileSync(f);
  t.true(back.equals(expected), firstDifference(back, expected));
});

test.serial('truncate errors: a directory is EISDIR, a missing file ENOENT', (t) => {
  fs.mkdirSync(m.path('tdir'));
  t.is(errorCode(() => fs.truncateSync(m.path('tdir'), 0)), 'EISDIR');
  t.is(errorCode(() => fs.truncateSync(m.path('tmissing'), 0)), 'ENOENT');
});

test.serial('truncate -s from the shell, and shrinking a file another fd holds open', async (t) => {
  fs.writeFileSync(m.path('shell-trunc'), 'abcdefghij');
  const fd = fs.openSync(m.path('shell-trunc'), 'r');
  await m.check('truncate -s 4 shell-trunc');
  const buf = Buffer.alloc(10);
  t.is(fs.readSync(fd, buf, 0, 10, 0), 4);
  t.is(buf.subarray(0, 4).toString(), 'abcd');
  fs.closeSync(fd);
  await m.check('truncate -s 6 shell-trunc');
  t.deepEqual(fs.readFileSync(m.path('shell-trunc')), Buffer.from('abcd\0\0'));
});

test.serial('fsync, fdatasync and sync succeed', async (t) => {
  const fd = fs.openSync(m.path('synced'), 'w');
  fs.writeSync(fd, bytes(BS * 2, 9));
  t.notThrows(() => fs.fsyncSync(fd));
  fs.writeSync(fd, 'more');
  t.notThrows(() => fs.fdatasyncSync(fd));
  fs.closeSync(fd);
  await m.check('sync && sync synced && sync -f synced');
  const dfd = fs.openSync(m.mountpoint, 'r');
  t.notThrows(() => fs.fsyncSync(dfd), 'fsync of a directory');
  fs.closeSync(dfd);
});

test.serial('close-to-open: after close, a new mount process of the tenant reads the same bytes', async (t) => {
  const data = bytes(3 * BS + 123, 77);
  const fd = fs.openSync(m.path('c2o'), 'w');
  fs.writeSync(fd, data);
  fs.closeSync(fd);
  let other: MountServer | undefined;
  try {
    other = await m.mountAgain();
    const back = fs.readFileSync(`${other.mountpoint}/c2o`);
    t.true(back.equals(data), firstDifference(back, data));
    // and the other way round
    fs.writeFileSync(`${other.mountpoint}/from-other`, 'written by the second mount');
    t.is(fs.readFileSync(m.path('from-other'), 'utf8'), 'written by the second mount');
  } finally {
    await other?.stop();
  }
});

test.serial('fsync commits: a second mount sees the data while the fd is still open', async (t) => {
  const data = bytes(BS + 7, 78);
  const fd = fs.openSync(m.path('fsync-visible'), 'w');
  let other: MountServer | undefined;
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
    other = await m.mountAgain();
    const back = fs.readFileSync(`${other.mountpoint}/fsync-visible`);
    t.true(back.equals(data), firstDifference(back, data));
  } finally {
    fs.closeSync(fd);
    await other?.stop();
  }
});

test.serial('remount: everything written before is still there', async (t) => {
  const before = fs.readFileSync(m.path('offsets'));
  const bigSum = crypto.createHash('sha256').update(fs.readFileSync(m.path('big'))).digest('hex');
  await m.remount();
  t.true(fs.readFileSync(m.path('offsets')).equals(before));
  t.is(crypto.createHash('sha256').update(fs.readFileSync(m.path('big'))).digest('hex'), bigSum);
  t.is(fs.readFileSync(m.path('append'), 'latin1').slice(0, 14), 'start|one|two|');
  t.is(fs.statSync(m.path('holes')).size, 5 * BS + 14);
});

test.serial('mtime and ctime move on write and truncate', async (t) => {
  const f = m.path('times');
  fs.writeFileSync(f, 'x');
  const a = fs.statSync(f, { bigint: true });
  await new Promise((r) => setTimeout(r, 30));
  fs.appendFileSync(f, 'y');
  const b = fs.statSync(f, { bigint: true });
  t.true(b.mtimeNs > a.mtimeNs, 'write moves mtime');
  t.true(b.ctimeNs > a.ctimeNs, 'write moves ctime');
  await new Promise((r) => setTimeout(r, 30));
  fs.truncateSync(f, 1);
  const c = fs.statSync(f, { bigint: true });
  t.true(c.mtimeNs > b.mtimeNs, 'truncate moves mtime');
});
