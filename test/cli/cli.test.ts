// The built CLI (bin/tarbox.js) as a child process against a fresh database: every command's round
// trip, and the error cases, which must print exactly one line on stderr with the documented code.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { cliRunner, failsWith, root, text, type Result } from '../helpers/cli.js';
import { mountProcessEnv } from '../../cli/proc.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-cli-'));
let db: FreshDatabase;

test.before(async () => {
  db = await freshDatabase();
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

let tenants = 0;
async function newTenant(): Promise<string> {
  const name = `t${++tenants}`;
  await ok(['tenant', 'create', name]);
  return name;
}

test('init migrates an empty database and creates the default tenant, then is idempotent', async (t) => {
  const empty = await freshDatabase({ migrated: false });
  try {
    const first = await ok(['init'], { url: empty.url });
    t.regex(text(first), /^database: PostgreSQL at 127\.0\.0\.1:\d+$/m);
    t.regex(text(first), /^migrations: applied [1-9]\d* \(\d+ in total\)$/m);
    t.regex(text(first), /^tenant "default": created$/m);
    const second = await ok(['init'], { url: empty.url });
    t.regex(text(second), /^migrations: up to date/m);
    t.regex(text(second), /^tenant "default": already exists$/m);
    const list = JSON.parse(text(await ok(['tenant', 'list', '--json'], { url: empty.url })));
    t.deepEqual(list.map((x: { name: string }) => x.name), ['default']);
  } finally {
    await empty.drop();
  }
});

test('tenant create, list --json, delete', async (t) => {
  const created = await ok(['tenant', 'create', 'acme', '--display-name', 'Acme Corp']);
  t.regex(text(created), /^created tenant "acme" \(id \d+\)$/m);
  failsWith(t, await tarbox(['tenant', 'create', 'acme']), 5, /acme/);

  const list = JSON.parse(text(await ok(['tenant', 'list', '--json'])));
  const acme = list.find((x: { name: string }) => x.name === 'acme');
  t.like(acme, { name: 'acme', display_name: 'Acme Corp' });
  t.is(typeof acme.tenant_id, 'number');
  t.is(typeof acme.inodes, 'number');
  t.is(typeof acme.bytes, 'number');
  t.false(Number.isNaN(Date.parse(acme.created_at)));
  t.regex(text(await ok(['tenant', 'list'])), /^acme\s+\d+\s+\d+\s+-\s+\d+\s+-\s+\S+\s+Acme Corp$/m);

  failsWith(t, await tarbox(['tenant', 'delete', 'acme']), 2, /without --yes/);
  await ok(['tenant', 'delete', 'acme', '--yes']);
  const after = JSON.parse(text(await ok(['tenant', 'list', '--json'])));
  t.false(after.some((x: { name: string }) => x.name === 'acme'));
  failsWith(t, await tarbox(['tenant', 'delete', 'acme', '--yes']), 3, /acme/);
});

test('write from an argument and cat', async (t) => {
  const tenant = await newTenant();
  await ok(['write', '-t', tenant, '/hello.txt', 'héllo wörld\n']);
  t.is(text(await ok(['cat', '-t', tenant, '/hello.txt'])), 'héllo wörld\n');
  // Relative paths are taken from the root; write replaces the content.
  await ok(['write', '-t', tenant, 'hello.txt', 'short']);
  t.is(text(await ok(['cat', '-t', tenant, '/hello.txt'])), 'short');
  await ok(['write', '-t', tenant, '/empty', '']);
  t.is((await ok(['cat', '-t', tenant, '/empty'])).stdout.length, 0);
});

test('write from stdin is binary-safe', async (t) => {
  const tenant = await newTenant();
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const data = Buffer.concat([every, crypto.randomBytes(3 * 1024 * 1024 + 17), every]);
  await ok(['write', '-t', tenant, '/blob.bin'], { input: data });
  const back = (await ok(['cat', '-t', tenant, '/blob.bin'])).stdout;
  t.is(back.length, data.length);
  t.true(back.equals(data));
  const st = JSON.parse(text(await ok(['stat', '--json', '-t', tenant, '/blob.bin'])));
  t.is(st.size, data.length);
});

test('mkdir -p, ls --json, ls -l, rm -r', async (t) => {
  const tenant = await newTenant();
  await ok(['mkdir', '-t', tenant, '-p', '/a/b/c']);
  await ok(['mkdir', '-t', tenant, '-p', '/a/b/c']); // -p: existing is fine
  failsWith(t, await tarbox(['mkdir', '-t', tenant, '/a']), 5, /EEXIST/);
  failsWith(t, await tarbox(['mkdir', '-t', tenant, '/x/y']), 3, /ENOENT/);
  await ok(['write', '-t', tenant, '/a/b/file', '12345']);

  const entries = JSON.parse(text(await ok(['ls', '--json', '-t', tenant, '/a/b'])));
  t.deepEqual(entries.map((e: { name: string; kind: string }) => [e.name, e.kind]).sort(), [['c', 'dir'], ['file', 'file']]);
  const file = entries.find((e: { name: string }) => e.name === 'file');
  t.like(file, { size: 5, mode: 0o644, nlink: 1, target: null });
  t.false(Number.isNaN(Date.parse(file.mtime)));
  // Listing a file lists that file.
  t.deepEqual(JSON.parse(text(await ok(['ls', '--json', '-t', tenant, '/a/b/file']))).map((e: { name: string }) => e.name), ['file']);
  t.deepEqual(text(await ok(['ls', '-t', tenant, '/a/b'])).split('\n').filter(Boolean).sort(), ['c', 'file']);
  t.regex(text(await ok(['ls', '-l', '-t', tenant, '/a/b'])), /^-rw-r--r-- 1 0 0 5 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d file$/m);

  failsWith(t, await tarbox(['rm', '-t', tenant, '/a']), 1, /ENOTEMPTY/);
  await ok(['rm', '-t', tenant, '/a/b/file']);
  await ok(['rm', '-r', '-t', tenant, '/a']);
  failsWith(t, await tarbox(['ls', '-t', tenant, '/a']), 3, /ENOENT/);
  t.deepEqual(JSON.parse(text(await ok(['ls', '--json', '-t', tenant]))), []);
});

test('stat --json and text', async (t) => {
  const tenant = await newTenant();
  await ok(['mkdir', '-t', tenant, '--mode', '0700', '/d']);
  await ok(['write', '-t', tenant, '--mode', '0600', '/d/f', 'abc']);
  const st = JSON.parse(text(await ok(['stat', '--json', '-t', tenant, '/d/f'])));
  t.like(st, { path: '/d/f', kind: 'file', mode: 0o600, size: 3, nlink: 1, target: null });
  t.is(typeof st.ino, 'number');
  for (const k of ['atime', 'mtime', 'ctime']) t.false(Number.isNaN(Date.parse(st[k])), k);
  const dir = JSON.parse(text(await ok(['stat', '--json', '-t', tenant, '/d'])));
  t.like(dir, { kind: 'dir', mode: 0o700 });
  t.regex(text(await ok(['stat', '-t', tenant, '/d/f'])), /^ {2}mode: 0600 \(-rw-------\)$/m);
});

test('bad input: one stderr line and the documented exit code', async (t) => {
  const tenant = await newTenant();
  failsWith(t, await tarbox(['ls', '-t', 'nobody', '/']), 3, /nobody/);
  failsWith(t, await tarbox(['cat', '-t', tenant, '/missing']), 3, /ENOENT/);
  failsWith(t, await tarbox(['stat', '-t', tenant, '/missing']), 3, /ENOENT/);
  failsWith(t, await tarbox(['ls', '/'], { url: 'postgres://127.0.0.1:1/x' }), 4,
    /^tarbox: cannot connect to PostgreSQL at 127\.0\.0\.1:1: connection refused$/);
  failsWith(t, await tarbox(['ls', '/'], { url: 'not-a-url' }), 2, /\[database\] url/);
  failsWith(t, await tarbox(['ls', '/'], { env: { TARBOX_CACHE_POLICY: 'lfu' } }), 2,
    /^tarbox: config: \[cache\] policy: expected one of "lru", got "lfu"$/);
  failsWith(t, await tarbox(['ls', '--bogus']), 2, /unknown option '--bogus'/);
  failsWith(t, await tarbox(['frobnicate']), 2, /unknown command 'frobnicate'/);
  failsWith(t, await tarbox(['cat']), 2, /missing required argument 'path'/);
  failsWith(t, await tarbox(['write', '-t', tenant, '--mode', '999', '/f', 'x']), 2, /octal/);
  failsWith(t, await tarbox(['--config', path.join(work, 'nope.toml'), 'ls']), 2, /config: file not found/);
  failsWith(t, await tarbox(['mount', path.join(work, 'no-such-dir')]), 3, /does not exist/);
  failsWith(t, await tarbox(['umount', work]), 1, /is not mounted/);
});

test('a mount process gets glibc.malloc.hugetlb=1, added to tunables already set, unless one is chosen', (t) => {
  t.is(mountProcessEnv({}).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=1');
  t.is(mountProcessEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
  t.is(mountProcessEnv({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=0');
  t.is(mountProcessEnv({ PATH: '/bin' }).PATH, '/bin');
});

test('--help and --version exit 0', async (t) => {
  t.regex(text(await ok(['--help'], { url: null })), /Usage: tarbox/);
  t.regex(text(await ok(['--version'], { url: null })), /^\d+\.\d+\.\d+/);
});

// The FUSE round trip needs the shim built and /dev/fuse; skipped (with a note) otherwise.
const shimBuilt = fs.existsSync(path.join(root, 'dist', 'shim', 'mount.js')) && fs.existsSync('/dev/fuse');
(shimBuilt ? test : test.skip)('mount in the background, use it, umount', async (t) => {
  t.timeout(60_000);
  const tenant = await newTenant();
  await ok(['write', '-t', tenant, '/seen-through-fuse', 'from sql']);
  const mnt = fs.mkdtempSync(path.join(work, 'mnt-'));
  const mounted = await ok(['mount', '-t', tenant, mnt]);
  t.regex(text(mounted), /^mounted tenant/);
  // the serving process runs with malloc on transparent huge pages (cli/proc.ts)
  const pid = /\(pid (\d+),/.exec(text(mounted))![1];
  t.true(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some((v) => /^GLIBC_TUNABLES=(.*:)?glibc\.malloc\.hugetlb=1/.test(v)));
  try {
    failsWith(t, await tarbox(['mount', '-t', tenant, mnt]), 1, /busy/);
    t.is(fs.readFileSync(path.join(mnt, 'seen-through-fuse'), 'utf8'), 'from sql');
    fs.writeFileSync(path.join(mnt, 'written-through-fuse'), 'from fuse');
    t.is(text(await ok(['cat', '-t', tenant, '/written-through-fuse'])), 'from fuse');
  } finally {
    await ok(['umount', mnt]);
  }
  t.false(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `));
  failsWith(t, await tarbox(['umount', mnt]), 1, /is not mounted/);
});
