import test from 'ava';
import { S_IFDIR, S_IFLNK, S_IFREG, type, useDatabase } from './_support.js';

const env = useDatabase(test);

test('readdir of an empty directory returns nothing (no . or ..)', async (t) => {
  const fs = await env.tenant(t);
  t.deepEqual(await fs.readdir('/'), []);
  await fs.mkdir('/empty');
  t.deepEqual(await fs.readdir('/empty'), []);
});

test('readdir lists live entries sorted by name, with their attributes', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d');
  await fs.file('/d/zeta', 'zz');
  await fs.mkdir('/d/alpha');
  await fs.symlink('zeta', '/d/mid');
  const entries = await fs.readdir('/d');
  t.deepEqual(entries.map((e) => e.name.toString()), ['alpha', 'mid', 'zeta']);
  const byName = Object.fromEntries(entries.map((e) => [e.name.toString(), e]));
  t.is(type(byName.alpha), S_IFDIR);
  t.is(type(byName.mid), S_IFLNK);
  t.is(type(byName.zeta), S_IFREG);
  t.is(byName.zeta.size, 2);
  // the attributes are those getattr reports
  for (const e of entries) t.deepEqual({ ...e, name: undefined }, { ...(await fs.attr(`/d/${e.name}`)), name: undefined });
});

test('readdir sorts names as bytes', async (t) => {
  const fs = await env.tenant(t);
  const names = [Buffer.from('B'), Buffer.from('a'), Buffer.from([0xff]), Buffer.from([0x01]), Buffer.from('A')];
  for (const n of names) await fs.create(Buffer.concat([Buffer.from('/'), n]));
  const got = (await fs.readdir('/')).map((e) => e.name);
  t.deepEqual(got, [...names].sort(Buffer.compare));
});

test('removed and renamed entries disappear from readdir', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/a');
  await fs.create('/b');
  await fs.mkdir('/c');
  await fs.unlink('/a');
  await fs.rename('/b', '/b2');
  await fs.rmdir('/c');
  t.deepEqual(await fs.names('/'), ['b2']);
});

test('readdir follows a symlink to a directory', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/real');
  await fs.create('/real/inside');
  await fs.symlink('/real', '/alias');
  t.deepEqual(await fs.names('/alias'), ['inside']);
});

test('readdir of a file is ENOTDIR, of a missing path ENOENT', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f');
  await fs.symlink('/f', '/lf');
  await t.throwsAsync(fs.readdir('/f'), { code: 'TBNDR' });
  await t.throwsAsync(fs.readdir('/lf'), { code: 'TBNDR' });
  await t.throwsAsync(fs.readdir('/nope'), { code: 'TBNOE' });
});

test('readdir shows a hard-linked inode under both names with the same attributes', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/one', 'x');
  await fs.link('/one', '/two');
  const [one, two] = await fs.readdir('/');
  t.is(one.ino, two.ino);
  t.is(one.nlink, 2);
  t.is(two.nlink, 2);
});

test('readdir pages: p_limit entries named after p_after, every entry once, whiteouts and deleted inodes skipped', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/p');
  for (let i = 0; i < 25; i++) await fs.create(`/p/f${String(i).padStart(2, '0')}`);
  await fs.sql`select tarbox.create_layer('frozen')`;
  await fs.unlink('/p/f03'); // a whiteout over the frozen layer's entry
  const page = async (after: Buffer | null) =>
    (await fs.sql<{ name: Buffer }[]>`select d.name from tarbox.readdir(${Buffer.from('/p')}, ${after}, 10) d`).map((r) => r.name);
  const seen: Buffer[] = [];
  for (let after: Buffer | null = null; ;) {
    const names = await page(after);
    seen.push(...names);
    if (names.length < 10) break;
    after = names[names.length - 1];
  }
  t.deepEqual(seen.map(String), (await fs.readdir('/p')).map((e) => e.name.toString()));
  t.is(seen.length, 24);
  t.false(seen.map(String).includes('f03'));
});

test('readdir with a page size below 1 is EINVAL (TBINV)', async (t) => {
  const fs = await env.tenant(t);
  await t.throwsAsync(fs.sql`select * from tarbox.readdir(${Buffer.from('/')}, null, 0)`, { code: 'TBINV' });
});
