import test, { type ExecutionContext } from 'ava';
import { client } from '../helpers/database.js';
import { Fs, useDatabase } from './_support.js';

const env = useDatabase(test);

/** Several sessions bound to the same tenant, each with its own connection. */
async function sessions(t: ExecutionContext, fs: Fs, n: number): Promise<Fs[]> {
  return Array.from({ length: n }, () => {
    const sql = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(fs.tenantId) } });
    t.teardown(() => sql.end({ timeout: 5 }));
    return new Fs(sql, fs.tenantId, fs.name);
  });
}

test('concurrent creates of one name: exactly one wins, the others get EEXIST', async (t) => {
  const fs = await env.tenant(t);
  const [s1, s2, s3] = await sessions(t, fs, 3);
  for (let round = 0; round < 10; round++) {
    const path = `/race${round}`;
    const results = await Promise.allSettled([s1.create(path), s2.mkdir(path), s3.symlink('/x', path)]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(ok.length, 1, `round ${round}`);
    t.deepEqual(failed.map((r) => (r.reason as { code?: string }).code), ['TBEXI', 'TBEXI'], `round ${round}`);
  }
  t.is((await fs.readdir('/')).length, 10);
});

test('concurrent mkdir and rmdir in one directory keep its nlink exact', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/p');
  const ss = await sessions(t, fs, 4);
  await Promise.all(ss.map(async (s, i) => {
    for (let j = 0; j < 8; j++) await s.mkdir(`/p/d${i}-${j}`);
  }));
  t.is((await fs.attr('/p')).nlink, 2 + 32);
  await Promise.all(ss.map(async (s, i) => {
    for (let j = 0; j < 8; j += 2) await s.rmdir(`/p/d${i}-${j}`);
  }));
  t.is((await fs.attr('/p')).nlink, 2 + 16);
  t.is((await fs.readdir('/p')).length, 16);
});

test('concurrent writes to different blocks of one file all land', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  await fs.create('/f');
  const ss = await sessions(t, fs, 4);
  await Promise.all(ss.map((s, i) => s.write('/f', i * 4096, Buffer.alloc(4096, i + 1))));
  const data = await fs.read('/f');
  t.is(data.length, 4 * 4096);
  for (let i = 0; i < 4; i++) t.true(data.subarray(i * 4096, (i + 1) * 4096).equals(Buffer.alloc(4096, i + 1)), `block ${i}`);
});

test('concurrent link and unlink keep an inode\'s nlink exact', async (t) => {
  const fs = await env.tenant(t);
  const f = await fs.file('/f', 'x');
  const ss = await sessions(t, fs, 4);
  await Promise.all(ss.map(async (s, i) => {
    for (let j = 0; j < 5; j++) await s.link('/f', `/l${i}-${j}`);
  }));
  t.is((await fs.attrIno(f.ino)).nlink, 21);
  await Promise.all(ss.map(async (s, i) => {
    for (let j = 0; j < 5; j++) await s.unlink(`/l${i}-${j}`);
  }));
  t.is((await fs.attrIno(f.ino)).nlink, 1);
});
