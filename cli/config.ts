// Loads tarbox.toml, applies TARBOX_* environment variables and command-line flags, validates
// every value and returns one frozen, typed Config. The schema below is the single source of
// truth for keys, types, defaults and ranges; docs/config.md describes the same table.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { checkMountPath, checkSource, checkSourceOnHost } from '../shim/native-mounts.js';

export interface NativeMount {
  readonly path: string;
  readonly source: string;
  readonly mode: 'ro' | 'rw';
  readonly shared: boolean;
  readonly priority: number;
}

/** Keys are spelled as in tarbox.toml (and TARBOX_<SECTION>_<KEY>), so one name is used everywhere. */
export interface Config {
  /** The config file that was read, or null when none was. */
  readonly file: string | null;
  /** Directory relative paths and defaults are resolved against: the config file's, else the cwd. */
  readonly root: string;
  readonly database: {
    readonly url: string | null;
    readonly pool_size: number;
    readonly connection_timeout: number; // seconds
    readonly statement_timeout: number; // milliseconds
    readonly data_dir: string;
    readonly port: number;
  };
  readonly filesystem: {
    readonly block_size: number;
    readonly max_file_size: number;
    readonly mountpoint: string;
    readonly default_tenant: string;
    readonly attr_timeout: number; // seconds
    readonly entry_timeout: number; // seconds
  };
  readonly cache: {
    readonly metadata_size: number;
    readonly block_size: number;
    readonly policy: 'lru';
  };
  readonly audit: {
    readonly enabled: boolean;
    readonly level: 'writes' | 'all';
    readonly retention_days: number;
    readonly partition: 'daily' | 'weekly' | 'monthly';
  };
  readonly layer: {
    readonly max_layers: number;
    readonly auto_checkpoint: boolean;
  };
  /** Text storage (docs/text-storage.md): what counts as text, and when layers are packed. */
  readonly text: {
    readonly max_file_size: number;
    readonly max_line_length: number;
    readonly pack_on_checkpoint: boolean;
  };
  readonly native_mounts: readonly NativeMount[];
}

export interface LoadConfigOptions {
  /** --config flag. */
  configPath?: string;
  /** --database-url flag. */
  databaseUrl?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const KIB = 1024;
const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: KIB, kib: KIB, kb: 1000,
  m: KIB ** 2, mib: KIB ** 2, mb: 1000 ** 2,
  g: KIB ** 3, gib: KIB ** 3, gb: 1000 ** 3,
  t: KIB ** 4, tib: KIB ** 4, tb: 1000 ** 4,
};

/** Parses 65536, "65536", "64KiB", "1.5 GiB", "64M" (binary), "64MB" (decimal). Returns bytes or throws. */
export function parseSize(value: unknown): number {
  let bytes = NaN;
  if (typeof value === 'number' || typeof value === 'bigint') {
    bytes = Number(value);
  } else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
    if (m && unit !== undefined) bytes = Math.floor(Number(m[1]) * unit);
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new Error(`expected a size like "64MiB" or a positive integer, got ${show(value)}`);
  }
  return bytes;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

// A key's parser gets either the TOML value or, for environment variables, the raw string.
type Parser<T> = (value: unknown, fromEnv: boolean) => T;
interface Key<T = unknown> {
  parse: Parser<T>;
  default: T | ((root: string) => T);
  /** Resolve a relative path against the file's directory (file) or the cwd (env, flags). */
  path?: boolean;
}

const integer = (min: number, max: number): Parser<number> => (v, fromEnv) => {
  const n = fromEnv && typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`expected an integer from ${min} to ${max}, got ${show(v)}`);
  }
  return n;
};

const number = (min: number, max: number): Parser<number> => (v, fromEnv) => {
  const n = fromEnv && typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
    throw new Error(`expected a number from ${min} to ${max}, got ${show(v)}`);
  }
  return n;
};

const boolean: Parser<boolean> = (v, fromEnv) => {
  if (typeof v === 'boolean') return v;
  if (fromEnv && typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
  }
  throw new Error(`expected true or false, got ${show(v)}`);
};

const oneOf = <T extends string>(...choices: T[]): Parser<T> => (v) => {
  if (typeof v === 'string' && (choices as string[]).includes(v)) return v as T;
  throw new Error(`expected one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${show(v)}`);
};

const nonEmptyString: Parser<string> = (v) => {
  if (typeof v === 'string' && v.trim() !== '') return v;
  throw new Error(`expected a non-empty string, got ${show(v)}`);
};

const size = (min = 1, max = Number.MAX_SAFE_INTEGER): Parser<number> => (v) => {
  const n = parseSize(v);
  if (n < min || n > max) throw new Error(`expected a size from ${min} to ${max} bytes, got ${show(v)}`);
  return n;
};

const blockSize: Parser<number> = (v) => {
  const n = parseSize(v);
  if (n < 4 * KIB || n > 8 * KIB ** 2 || (n & (n - 1)) !== 0) {
    throw new Error(`expected a power of two from 4KiB to 8MiB, got ${show(v)}`);
  }
  return n;
};

const postgresUrl: Parser<string> = (v) => {
  let ok = false;
  if (typeof v === 'string') {
    try {
      const u = new URL(v);
      ok = (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new Error(`expected a URL like "postgres://user@host:5432/db", got ${show(v)}`);
  return v as string;
};

// The FUSE layer gives every operation a 15 s watchdog; a statement must time out before it.
const schema = {
  database: {
    url: { parse: postgresUrl, default: null } as Key<string | null>,
    pool_size: { parse: integer(1, 64), default: 4 },
    connection_timeout: { parse: number(0.1, 600), default: 10 },
    statement_timeout: { parse: integer(1, 14999), default: 10000 },
    data_dir: { parse: nonEmptyString, default: (root: string) => path.join(root, '.tarbox', 'pg'), path: true },
    port: { parse: integer(1, 65535), default: 54320 },
  },
  filesystem: {
    block_size: { parse: blockSize, default: KIB ** 2 },
    max_file_size: { parse: size(), default: KIB ** 4 },
    mountpoint: { parse: nonEmptyString, default: (root: string) => path.join(root, 'mnt'), path: true },
    default_tenant: { parse: nonEmptyString, default: 'default' },
    attr_timeout: { parse: number(0, 3600), default: 1.0 },
    entry_timeout: { parse: number(0, 3600), default: 1.0 },
  },
  cache: {
    metadata_size: { parse: size(), default: 64 * KIB ** 2 },
    block_size: { parse: size(), default: 256 * KIB ** 2 },
    policy: { parse: oneOf('lru'), default: 'lru' },
  },
  audit: {
    enabled: { parse: boolean, default: true },
    level: { parse: oneOf('writes', 'all'), default: 'writes' },
    retention_days: { parse: integer(1, 3650), default: 30 },
    partition: { parse: oneOf('daily', 'weekly', 'monthly'), default: 'daily' },
  },
  layer: {
    max_layers: { parse: integer(1, 1_000_000), default: 1000 },
    auto_checkpoint: { parse: boolean, default: false },
  },
  text: {
    // pack_text reads a whole version into one bytea, so text files stay under 1 GiB
    max_file_size: { parse: size(1, 1073741823), default: 64 * KIB ** 2 },
    max_line_length: { parse: size(1, 1073741823), default: 64 * KIB },
    pack_on_checkpoint: { parse: boolean, default: true },
  },
} satisfies Record<string, Record<string, Key<any>>>;

type Section = keyof typeof schema;
type Values = { [S in Section]: Record<string, unknown> };

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Which config file to read: --config, then TARBOX_CONFIG, then ./tarbox.toml if it exists. */
function findConfigFile(opts: LoadConfigOptions, env: NodeJS.ProcessEnv, cwd: string): string | null {
  const explicit = opts.configPath ?? (env.TARBOX_CONFIG || undefined);
  if (explicit !== undefined) {
    const file = path.resolve(cwd, explicit);
    if (!fs.existsSync(file)) throw new ConfigError(`config: file not found: ${file}`);
    return file;
  }
  const local = path.join(cwd, 'tarbox.toml');
  return fs.existsSync(local) ? local : null;
}

function readToml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const where = err instanceof TomlError ? `:${err.line}:${err.column}` : '';
    const first = String((err as Error).message).split('\n')[0].replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`config: ${file}${where}: ${first}`);
  }
}

function parseKey(section: string, name: string, key: Key, raw: unknown, fromEnv: boolean, base: string): unknown {
  try {
    const value = key.parse(raw, fromEnv);
    return key.path && typeof value === 'string' ? path.resolve(base, value) : value;
  } catch (err) {
    throw new ConfigError(`config: [${section}] ${name}: ${(err as Error).message}`);
  }
}

function parseNativeMounts(raw: unknown): NativeMount[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || !raw.every(isTable)) {
    throw new ConfigError('config: native_mounts: expected an array of tables ([[native_mounts]])');
  }
  const seen = new Set<string>();
  return raw.map((entry, i) => {
    const where = `[[native_mounts]] #${i + 1}`;
    const fail = (msg: string): never => {
      throw new ConfigError(`config: ${where} ${msg}`);
    };
    for (const k of Object.keys(entry)) {
      if (!['path', 'source', 'mode', 'shared', 'priority'].includes(k)) fail(`${k}: unknown key`);
    }
    const pathError = checkMountPath(entry.path);
    if (pathError) fail(pathError);
    const p = entry.path as string;
    let mode: 'ro' | 'rw' = 'ro';
    let shared = false;
    let priority = 0;
    try {
      if (entry.mode !== undefined) mode = oneOf('ro', 'rw')(entry.mode, false);
    } catch (err) {
      fail(`mode: ${(err as Error).message}`);
    }
    try {
      if (entry.shared !== undefined) shared = boolean(entry.shared, false);
    } catch (err) {
      fail(`shared: ${(err as Error).message}`);
    }
    try {
      if (entry.priority !== undefined) priority = integer(-1_000_000, 1_000_000)(entry.priority, false);
    } catch (err) {
      fail(`priority: ${(err as Error).message}`);
    }
    const id = `${p}\0${priority}`;
    if (seen.has(id)) fail(`path: duplicate of an earlier mount with path ${show(p)} and priority ${priority}: which one wins would be ambiguous`);
    seen.add(id);
    const sourceError = checkSource(entry.source, mode, shared) ?? checkSourceOnHost(entry.source as string);
    if (sourceError) fail(sourceError);
    return { path: p, source: entry.source as string, mode, shared, priority };
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Precedence: flags > environment > file > defaults. Throws ConfigError naming the offending key. */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const file = findConfigFile(opts, env, cwd);
  const root = file ? path.dirname(file) : cwd;
  const doc = file ? readToml(file) : {};

  const values = {} as Values;
  for (const [section, keys] of Object.entries(schema) as [Section, Record<string, Key>][]) {
    const out: Record<string, unknown> = {};
    for (const [name, key] of Object.entries(keys)) {
      out[name] = typeof key.default === 'function' ? (key.default as (r: string) => unknown)(root) : key.default;
    }
    values[section] = out;
  }

  // File
  for (const [section, body] of Object.entries(doc)) {
    if (section === 'native_mounts') continue;
    const keys = (schema as Record<string, Record<string, Key>>)[section];
    if (!isTable(body)) throw new ConfigError(`config: ${section}: unknown top-level key (keys belong in a [section])`);
    if (!keys) throw new ConfigError(`config: [${section}]: unknown section`);
    for (const [name, raw] of Object.entries(body)) {
      const key = keys[name];
      if (!key) throw new ConfigError(`config: [${section}] ${name}: unknown key`);
      values[section as Section][name] = parseKey(section, name, key, raw, false, root);
    }
  }

  // Environment: DATABASE_URL first so the more specific TARBOX_DATABASE_URL wins. Empty means unset.
  if (env.DATABASE_URL) {
    values.database.url = parseKey('database', 'url', schema.database.url, env.DATABASE_URL, true, cwd);
  }
  const sections = Object.keys(schema) as Section[];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('TARBOX_') || !raw) continue;
    const rest = name.slice('TARBOX_'.length).toLowerCase();
    // Only variables under a known section are ours to check; TARBOX_CONFIG, TARBOX_DEBUG, ... are not.
    const section = sections.find((s) => rest.startsWith(`${s}_`));
    if (!section) continue;
    const keyName = rest.slice(section.length + 1);
    const key = (schema[section] as Record<string, Key>)[keyName];
    if (!key) throw new ConfigError(`config: ${name}: unknown key "${keyName}" in [${section}]`);
    values[section][keyName] = parseKey(section, keyName, key, raw, true, cwd);
  }

  // Flags
  if (opts.databaseUrl !== undefined) {
    values.database.url = parseKey('database', 'url', schema.database.url, opts.databaseUrl, false, cwd);
  }

  const config = { file, root, ...values, native_mounts: parseNativeMounts(doc.native_mounts) } as unknown as Config;
  return deepFreeze(config);
}
