import test from 'ava';
import { ctime, mtime, perms, prng, tick, useDatabase } from './_support.js';

const env = useDatabase(test);

test('write returns the byte count; read returns the bytes', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  t.is(await fs.write('/f', 0, 'hello world'), 11);
  t.deepEqual(await fs.read('/f'), Buffer.from('hello world'));
  t.deepEqual(await fs.read('/f', 6, 5), Buffer.from('world'));
  t.deepEqual(await fs.read('/f', 6, 100), Buffer.from('world')); // clamped to the size
  t.deepEqual(await fs.read('/f', 11, 10), Buffer.alloc(0)); // at EOF
  t.deepEqual(await fs.read('/f', 50, 10), Buffer.alloc(0)); // past EOF
  t.deepEqual(await fs.read('/f', 3, 0), Buffer.alloc(0));
  t.is((await fs.attr('/f')).size, 11);
});

test('all 256 byte values survive a round trip', async (t) => {
  const fs = await env.tenant(t);
  const up = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const content = Buffer.concat([up, Buffer.from(up).reverse()]);
  await fs.file('/bin', content);
  t.deepEqual(await fs.read('/bin'), content);
});

test('overwriting in the middle keeps the bytes around it', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'aaaaaaaaaa');
  await fs.write('/f', 3, 'XYZ');
  t.deepEqual(await fs.read('/f'), Buffer.from('aaaXYZaaaa'));
  await fs.write('/f', 8, '1234');
  t.deepEqual(await fs.read('/f'), Buffer.from('aaaXYZaa1234'));
});

test('a write beyond EOF leaves a hole that reads as zeros', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'ab');
  await fs.write('/f', 10, 'cd');
  t.is((await fs.attr('/f')).size, 12);
  t.deepEqual(await fs.read('/f'), Buffer.from('ab\0\0\0\0\0\0\0\0cd'));
  t.deepEqual(await fs.read('/f', 4, 3), Buffer.alloc(3));
});

test('holes spanning whole blocks read as zeros (small blocks)', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  await fs.create('/f');
  await fs.write('/f', 5 * 4096 + 10, 'tail');
  const got = await fs.read('/f');
  t.is(got.length, 5 * 4096 + 14);
  t.true(got.subarray(0, 5 * 4096 + 10).equals(Buffer.alloc(5 * 4096 + 10)));
  t.deepEqual(got.subarray(5 * 4096 + 10), Buffer.from('tail'));
  // only the written block is stored
  const blocks = await fs.sql`select * from tarbox.file_blocks(${(await fs.attr('/f')).ino}, 0, 100)`;
  t.deepEqual(blocks.map((b) => Number(b.block_no)), [5]);
});

test('a zero-length write changes nothing, even at an offset past EOF', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'abc');
  await tick();
  t.is(await fs.write('/f', 100, Buffer.alloc(0)), 0);
  // pwrite(2)/POSIX write(): with nbyte 0 on a regular file, "return zero and have no other results"
  t.is((await fs.attr('/f')).size, 3);
  t.deepEqual(await fs.read('/f'), Buffer.from('abc'));
  t.is(mtime(await fs.attr('/f')), mtime(before));
});

test('write updates mtime and ctime, not atime', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.create('/f');
  await tick();
  await fs.write('/f', 0, 'x');
  const a = await fs.attr('/f');
  t.true(mtime(a) > mtime(before));
  t.true(ctime(a) > ctime(before));
  t.is(a.atime_sec, before.atime_sec);
  t.is(a.atime_nsec, before.atime_nsec);
});

test('read does not change any timestamp the API reports as mtime/ctime', async (t) => {
  const fs = await env.tenant(t);
  const before = await fs.file('/f', 'abc');
  await tick();
  await fs.read('/f');
  const a = await fs.attr('/f');
  t.is(mtime(a), mtime(before));
  t.is(ctime(a), ctime(before));
});

test('write by a non-root uid clears setuid (and setgid with group-exec); by root keeps them', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/a', 0o6755, 1000, 1000);
  await fs.write('/a', 0, 'x', 1000);
  t.is(perms(await fs.attr('/a')), 0o755);
  await fs.create('/b', 0o6745, 1000, 1000); // setgid without group-exec is kept
  await fs.write('/b', 0, 'x', 2000);
  t.is(perms(await fs.attr('/b')), 0o2745);
  await fs.create('/c', 0o6755, 1000, 1000);
  await fs.write('/c', 0, 'x', 0);
  t.is(perms(await fs.attr('/c')), 0o6755);
  await fs.create('/d', 0o4644, 1000, 1000);
  await fs.writeIno((await fs.attr('/d')).ino, 0, 'y', 1000);
  t.is(perms(await fs.attr('/d')), 0o644);
});

test('write and read errors: directory EISDIR, missing ENOENT, negative offset EINVAL', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.create('/f');
  await t.throwsAsync(fs.write('/d', 0, 'x'), { code: 'TBISD' });
  await t.throwsAsync(fs.read('/d'), { code: 'TBISD' });
  await t.throwsAsync(fs.write('/missing', 0, 'x'), { code: 'TBNOE' });
  await t.throwsAsync(fs.read('/missing'), { code: 'TBNOE' });
  await t.throwsAsync(fs.write('/f', -1, 'x'), { code: 'TBINV' });
  await t.throwsAsync(fs.read('/f', -1, 1), { code: 'TBINV' });
});

test('write and read follow symlinks', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.symlink('/f', '/l');
  await fs.write('/l', 0, 'via link');
  t.deepEqual(await fs.read('/f'), Buffer.from('via link'));
  t.deepEqual(await fs.read('/l'), Buffer.from('via link'));
});

test('write past max_file_size is EFBIG and writes nothing; up to the limit is fine', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  await env.admin`update tarbox_private.tenants set max_file_size = 10000 where tenant_id = ${fs.tenantId}`;
  await fs.create('/f');
  await t.throwsAsync(fs.write('/f', 9999, 'ab'), { code: 'TBFBG' });
  await t.throwsAsync(fs.write('/f', 10000, 'a'), { code: 'TBFBG' });
  t.is((await fs.attr('/f')).size, 0);
  t.is(await fs.write('/f', 9998, 'ab'), 2);
  t.is((await fs.attr('/f')).size, 10000);
  t.deepEqual(await fs.read('/f', 9998, 10), Buffer.from('ab'));
});

test('write_ino and read_ino work on an inode, whatever its current name', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', '0123456789');
  t.deepEqual(await fs.readIno(f.ino, 2, 3), Buffer.from('234'));
  await fs.rename('/f', '/g');
  await fs.writeIno(f.ino, 10, 'AB');
  t.deepEqual(await fs.read('/g'), Buffer.from('0123456789AB'));
  await t.throwsAsync(fs.readIno(987654321, 0, 1), { code: 'TBNOE' });
  await t.throwsAsync(fs.writeIno(987654321, 0, 'x'), { code: 'TBNOE' });
});

test('writes spanning several blocks, unaligned, read back exactly', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  await fs.create('/f');
  const data = Buffer.alloc(3 * 4096 + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  await fs.write('/f', 1000, data);
  const expected = Buffer.concat([Buffer.alloc(1000), data]);
  t.deepEqual(await fs.read('/f'), expected);
  for (const [off, len] of [[0, 1], [4095, 2], [4096, 4096], [1000, 5000], [8000, 10000], [13000, 500]]) {
    t.deepEqual(await fs.read('/f', off, len), expected.subarray(off, off + len), `read ${off}+${len}`);
  }
});

test('random writes, truncates and reads on a multi-block file match a Buffer model', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  const seed = 20240611;
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const MAX = 12 * 4096;
  let model = Buffer.alloc(0);
  const f = await fs.create('/model');
  const log: string[] = [];
  for (let step = 0; step < 300; step++) {
    const op = rand();
    if (op < 0.55) {
      // write: sometimes small, sometimes across several blocks, sometimes all zeros
      const len = rand() < 0.7 ? 1 + int(300) : 1 + int(3 * 4096);
      const off = rand() < 0.2 ? model.length + int(6000) : int(Math.max(model.length, 1) + 100);
      if (off + len > MAX) continue;
      const data = Buffer.alloc(len);
      if (rand() < 0.85) for (let i = 0; i < len; i++) data[i] = 1 + int(255);
      log.push(`write ${off}+${len}`);
      await fs.writeIno(f.ino, off, data);
      if (off + len > model.length) model = Buffer.concat([model, Buffer.alloc(off + len - model.length)]);
      data.copy(model, off);
    } else if (op < 0.75) {
      const size = rand() < 0.5 ? int(model.length + 1) : int(MAX);
      log.push(`truncate ${size}`);
      await fs.truncateIno(f.ino, size);
      model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
    } else {
      const off = int(model.length + 10);
      const len = int(9000);
      log.push(`read ${off}+${len}`);
      const got = await fs.readIno(f.ino, off, len);
      if (!got.equals(model.subarray(off, off + len))) {
        t.fail(`step ${step} (seed ${seed}): read ${off}+${len} differs; ops so far:\n${log.slice(-20).join('\n')}`);
        return;
      }
    }
    if (step % 50 === 49) {
      const whole = await fs.read('/model');
      if (!whole.equals(model)) {
        t.fail(`step ${step} (seed ${seed}): whole file differs; ops so far:\n${log.slice(-20).join('\n')}`);
        return;
      }
    }
  }
  t.is((await fs.attr('/model')).size, model.length);
  t.true((await fs.read('/model')).equals(model));
});

test('fsync returns, with or without an inode', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'durable');
  await fs.sql`select tarbox.fsync()`;
  await fs.sql`select tarbox.fsync(${f.ino})`;
  t.deepEqual(await fs.read('/f'), Buffer.from('durable'));
});
