import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { loadConfig, parseSize, type LoadConfigOptions } from '../../cli/config.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-config-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** Writes a config file in its own directory and loads it with an otherwise empty environment. */
function load(toml: string | null, opts: LoadConfigOptions = {}) {
  const dir = path.join(tmp, String(++n));
  fs.mkdirSync(dir);
  if (toml !== null) fs.writeFileSync(path.join(dir, 'tarbox.toml'), toml);
  return loadConfig({ cwd: dir, env: {}, ...opts });
}

function rejects(t: import('ava').ExecutionContext, fn: () => unknown, message: string | RegExp) {
  const err = t.throws(fn, { name: 'ConfigError' });
  if (typeof message === 'string') t.is(err?.message, message);
  else t.regex(err?.message ?? '', message);
}

test('defaults without a config file', (t) => {
  const dir = path.join(tmp, 'empty');
  fs.mkdirSync(dir);
  const c = loadConfig({ cwd: dir, env: {} });
  t.is(c.file, null);
  t.is(c.root, dir);
  t.deepEqual(c.database, {
    url: null, pool_size: 4, connection_timeout: 10, statement_timeout: 10000,
    data_dir: path.join(dir, '.tarbox', 'pg'), port: 54320,
  });
  t.deepEqual(c.filesystem, {
    block_size: 1024 ** 2, max_file_size: 1024 ** 4, mountpoint: path.join(dir, 'mnt'),
    default_tenant: 'default', attr_timeout: 1, entry_timeout: 1,
  });
  t.deepEqual(c.cache, { metadata_size: 64 * 1024 ** 2, block_size: 256 * 1024 ** 2, policy: 'lru' });
  t.deepEqual(c.audit, { enabled: true, level: 'writes', retention_days: 30, partition: 'daily' });
  t.deepEqual(c.layer, { max_layers: 1000, auto_checkpoint: false });
  t.deepEqual(c.native_mounts, []);
});

test('tarbox.example.toml is valid and spells out the defaults', (t) => {
  // A copy in an empty directory, so both configs share a root and no local tarbox.toml interferes.
  const dir = path.join(tmp, 'example');
  fs.mkdirSync(dir);
  const copy = path.join(dir, 'example.toml');
  fs.copyFileSync(fileURLToPath(new URL('../../../tarbox.example.toml', import.meta.url)), copy);
  const { file, ...fromExample } = loadConfig({ configPath: copy, env: {}, cwd: dir });
  const { file: none, ...defaults } = loadConfig({ env: {}, cwd: dir });
  t.is(file, copy);
  t.is(none, null);
  t.deepEqual(fromExample, defaults);
});

test('the config is deeply frozen', (t) => {
  const c = load(null);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.database) && Object.isFrozen(c.native_mounts));
  t.throws(() => {
    (c.database as { port: number }).port = 1;
  });
});

test('file values are parsed, relative paths resolve against the file', (t) => {
  const c = load(`
[database]
url = "postgres://u:p@db.example:6543/tb"
pool_size = 8
connection_timeout = 2.5
statement_timeout = 5000
data_dir = "state/pg"
port = 6000

[filesystem]
block_size = "64KiB"
max_file_size = "10GiB"
mountpoint = "/srv/tarbox"
default_tenant = "main"
attr_timeout = 0
entry_timeout = 2.5

[cache]
metadata_size = 1048576
block_size = "1.5 GiB"
policy = "lru"

[audit]
enabled = false
level = "all"
retention_days = 7
partition = "monthly"

[layer]
max_layers = 50
auto_checkpoint = true
`);
  t.truthy(c.file);
  t.is(c.database.url, 'postgres://u:p@db.example:6543/tb');
  t.is(c.database.pool_size, 8);
  t.is(c.database.connection_timeout, 2.5);
  t.is(c.database.statement_timeout, 5000);
  t.is(c.database.data_dir, path.join(c.root, 'state', 'pg'));
  t.is(c.database.port, 6000);
  t.is(c.filesystem.block_size, 65536);
  t.is(c.filesystem.max_file_size, 10 * 1024 ** 3);
  t.is(c.filesystem.mountpoint, '/srv/tarbox');
  t.is(c.filesystem.default_tenant, 'main');
  t.is(c.filesystem.attr_timeout, 0);
  t.is(c.cache.metadata_size, 1048576);
  t.is(c.cache.block_size, 1.5 * 1024 ** 3);
  t.deepEqual(c.audit, { enabled: false, level: 'all', retention_days: 7, partition: 'monthly' });
  t.deepEqual(c.layer, { max_layers: 50, auto_checkpoint: true });
});

test('--config, then TARBOX_CONFIG, then ./tarbox.toml', (t) => {
  const a = path.join(tmp, 'a.toml');
  const b = path.join(tmp, 'b.toml');
  fs.writeFileSync(a, '[database]\nport = 1111\n');
  fs.writeFileSync(b, '[database]\nport = 2222\n');
  t.is(load('[database]\nport = 3333\n').database.port, 3333);
  t.is(load('[database]\nport = 3333\n', { env: { TARBOX_CONFIG: b } }).database.port, 2222);
  t.is(load('[database]\nport = 3333\n', { env: { TARBOX_CONFIG: b }, configPath: a }).database.port, 1111);
  t.is(load(null, { configPath: a }).root, tmp);
  rejects(t, () => load(null, { configPath: path.join(tmp, 'missing.toml') }), /^config: file not found: .*missing\.toml$/);
});

test('environment overrides the file; flags override the environment', (t) => {
  const file = '[database]\nurl = "postgres://file/db"\n[cache]\nmetadata_size = "1MiB"\n[audit]\nlevel = "writes"\n';
  const env = {
    TARBOX_CACHE_METADATA_SIZE: '128MiB',
    TARBOX_AUDIT_LEVEL: 'all',
    TARBOX_AUDIT_ENABLED: 'false',
    TARBOX_DATABASE_POOL_SIZE: '16',
    TARBOX_FILESYSTEM_ATTR_TIMEOUT: '0.5',
    TARBOX_LAYER_AUTO_CHECKPOINT: 'yes',
    TARBOX_DEBUG: '1', // not a config key: ignored
  };
  const c = load(file, { env });
  t.is(c.database.url, 'postgres://file/db');
  t.is(c.cache.metadata_size, 128 * 1024 ** 2);
  t.is(c.audit.level, 'all');
  t.false(c.audit.enabled);
  t.is(c.database.pool_size, 16);
  t.is(c.filesystem.attr_timeout, 0.5);
  t.true(c.layer.auto_checkpoint);

  t.is(load(file, { env: { DATABASE_URL: 'postgres://env/db' } }).database.url, 'postgres://env/db');
  t.is(load(file, { env: { DATABASE_URL: 'postgres://env/db', TARBOX_DATABASE_URL: 'postgres://tarbox-env/db' } }).database.url,
    'postgres://tarbox-env/db');
  t.is(load(file, { env: { TARBOX_DATABASE_URL: 'postgres://env/db' }, databaseUrl: 'postgres://flag/db' }).database.url,
    'postgres://flag/db');
  // An empty variable counts as unset.
  t.is(load(file, { env: { DATABASE_URL: '' } }).database.url, 'postgres://file/db');
});

test('unknown sections and keys are rejected, naming them', (t) => {
  rejects(t, () => load('[database]\nport = 1\n[database.extra]\nx = 1\n'), 'config: [database] extra: unknown key');
  rejects(t, () => load('[databse]\nurl = "postgres://x/y"\n'), 'config: [databse]: unknown section');
  rejects(t, () => load('[cache]\npath_ttl = 5\n'), 'config: [cache] path_ttl: unknown key');
  rejects(t, () => load('block_size = 4096\n'), 'config: block_size: unknown top-level key (keys belong in a [section])');
  rejects(t, () => load(null, { env: { TARBOX_CACHE_SIZE: '1' } }), 'config: TARBOX_CACHE_SIZE: unknown key "size" in [cache]');
});

test('bad values are rejected with the key and the value', (t) => {
  rejects(t, () => load('[cache]\nmetadata_size = "abc"\n'),
    'config: [cache] metadata_size: expected a size like "64MiB" or a positive integer, got "abc"');
  rejects(t, () => load(null, { env: { TARBOX_CACHE_METADATA_SIZE: 'abc' } }),
    'config: [cache] metadata_size: expected a size like "64MiB" or a positive integer, got "abc"');
  rejects(t, () => load('[database]\npool_size = 0\n'), 'config: [database] pool_size: expected an integer from 1 to 64, got 0');
  rejects(t, () => load('[database]\npool_size = 65\n'), /pool_size: expected an integer from 1 to 64/);
  rejects(t, () => load('[database]\npool_size = "4"\n'), /pool_size: expected an integer/);
  rejects(t, () => load('[database]\nstatement_timeout = 15000\n'), /statement_timeout: expected an integer from 1 to 14999, got 15000/);
  rejects(t, () => load('[database]\nurl = "mysql://x/y"\n'), /\[database\] url: expected a URL/);
  rejects(t, () => load('[database]\nport = 70000\n'), /\[database\] port/);
  rejects(t, () => load('[filesystem]\nblock_size = "3KiB"\n'), /block_size: expected a power of two from 4KiB to 8MiB, got "3KiB"/);
  rejects(t, () => load('[filesystem]\nblock_size = "16MiB"\n'), /block_size: expected a power of two/);
  rejects(t, () => load('[filesystem]\nblock_size = 12288\n'), /block_size: expected a power of two/);
  rejects(t, () => load('[filesystem]\ndefault_tenant = ""\n'), /default_tenant: expected a non-empty string/);
  rejects(t, () => load('[cache]\npolicy = "lfu"\n'), 'config: [cache] policy: expected one of "lru", got "lfu"');
  rejects(t, () => load('[audit]\nenabled = "yes"\n'), /\[audit\] enabled: expected true or false, got "yes"/);
  rejects(t, () => load('[audit]\nlevel = "some"\n'), /\[audit\] level: expected one of "writes", "all"/);
  rejects(t, () => load('[audit]\nretention_days = 0\n'), /retention_days: expected an integer from 1 to 3650/);
  rejects(t, () => load('[audit]\npartition = "hourly"\n'), /partition: expected one of "daily", "weekly", "monthly"/);
  rejects(t, () => load(null, { env: { TARBOX_AUDIT_ENABLED: 'maybe' } }), /\[audit\] enabled: expected true or false, got "maybe"/);
  rejects(t, () => load(null, { env: { TARBOX_DATABASE_PORT: '12x' } }), /\[database\] port: expected an integer/);
  rejects(t, () => load('[layer]\nmax_layers = 1.5\n'), /max_layers: expected an integer/);
});

test('TOML syntax errors name the file and line', (t) => {
  rejects(t, () => load('[database\nport = 1\n'), /^config: .*tarbox\.toml:1:\d+: /);
});

test('native_mounts are validated', (t) => {
  const c = load(`
[[native_mounts]]
path = "/bin"
source = "/usr/bin"

[[native_mounts]]
path = "/home/data"
source = "/srv/tenants/{tenant}/{tenant_id}"
mode = "rw"
shared = true
priority = 5

[[native_mounts]]
path = "/bin"
source = "/opt/bin"
priority = 1
`);
  t.deepEqual(c.native_mounts, [
    { path: '/bin', source: '/usr/bin', mode: 'ro', shared: false, priority: 0 },
    { path: '/home/data', source: '/srv/tenants/{tenant}/{tenant_id}', mode: 'rw', shared: true, priority: 5 },
    { path: '/bin', source: '/opt/bin', mode: 'ro', shared: false, priority: 1 },
  ]);
  const one = (body: string) => load(`[[native_mounts]]\n${body}\n`);
  rejects(t, () => one('path = "/"\nsource = "/x"'), /#1 path: expected an absolute, normalized path other than "\/"/);
  rejects(t, () => one('path = "bin"\nsource = "/x"'), /#1 path: expected an absolute/);
  rejects(t, () => one('path = "/a/../b"\nsource = "/x"'), /#1 path: expected an absolute, normalized/);
  rejects(t, () => one('path = "/a/"\nsource = "/x"'), /#1 path/);
  rejects(t, () => one('path = "/a"\nsource = "x"'), /#1 source: expected an absolute path, got "x"/);
  rejects(t, () => one('path = "/a"'), /#1 source: expected an absolute path/);
  rejects(t, () => one('path = "/a"\nsource = "/x/{user}"'), /#1 source: unknown placeholder \{user\}/);
  rejects(t, () => one('path = "/a"\nsource = "/x"\nmode = "wo"'), /#1 mode: expected one of "ro", "rw"/);
  rejects(t, () => one('path = "/a"\nsource = "/x"\nshared = 1'), /#1 shared: expected true or false/);
  rejects(t, () => one('path = "/a"\nsource = "/x"\npriority = 1.5'), /#1 priority: expected an integer/);
  rejects(t, () => one('path = "/a"\nsource = "/x"\nsize = 1'), 'config: [[native_mounts]] #1 size: unknown key');
  rejects(t, () => load('[[native_mounts]]\npath = "/a"\nsource = "/x"\n[[native_mounts]]\npath = "/a"\nsource = "/y"\n'),
    /#2 path: duplicate of an earlier mount with path "\/a" and priority 0/);
  rejects(t, () => load('native_mounts = 3\n'), /native_mounts: expected an array of tables/);
});

test('parseSize', (t) => {
  t.is(parseSize(4096), 4096);
  t.is(parseSize('4096'), 4096);
  t.is(parseSize('4KiB'), 4096);
  t.is(parseSize('4k'), 4096);
  t.is(parseSize('4KB'), 4000);
  t.is(parseSize('64 MiB'), 64 * 1024 ** 2);
  t.is(parseSize('1.5G'), 1.5 * 1024 ** 3);
  t.is(parseSize('1TiB'), 1024 ** 4);
  for (const bad of ['abc', '', '-1', '0', 0, 1.5, '4 XiB', '1e3', true, null]) {
    t.throws(() => parseSize(bad), { message: /expected a size like "64MiB" or a positive integer/ }, String(bad));
  }
});

test('[text]: defaults, sizes with units, environment, validation', (t) => {
  t.deepEqual(load(null).text, { max_file_size: 64 * 1024 ** 2, max_line_length: 64 * 1024, pack_on_checkpoint: true });
  t.deepEqual(load('[text]\nmax_file_size = "1MiB"\nmax_line_length = 4096\npack_on_checkpoint = false\n').text,
    { max_file_size: 1024 ** 2, max_line_length: 4096, pack_on_checkpoint: false });
  t.false(load(null, { env: { TARBOX_TEXT_PACK_ON_CHECKPOINT: 'false' } }).text.pack_on_checkpoint);
  rejects(t, () => load('[text]\nmax_file_size = "2GiB"\n'), /\[text\] max_file_size: expected a size from 1 to 1073741823 bytes/);
  rejects(t, () => load('[text]\nmax_line_length = 0\n'), /\[text\] max_line_length/);
});
