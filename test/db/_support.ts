// Shared helpers for the SQL API tests (the leading underscore keeps ava from running it).
// Each test file calls useDatabase(test) once: it gets its own database from freshDatabase()
// and every test makes its own tenant(s) with env.tenant(t), so tests can run concurrently.
import type { ExecutionContext, TestFn } from 'ava';
import { client, freshDatabase, withTenant, type FreshDatabase, type Sql } from '../helpers/database.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
export const UTIME_NOW = 1073741823;
export const UTIME_OMIT = 1073741822;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_TRUNC = 0o1000;

export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atime_sec: number;
  atime_nsec: number;
  mtime_sec: number;
  mtime_nsec: number;
  ctime_sec: number;
  ctime_nsec: number;
}

export interface Dirent extends Attr {
  name: Buffer;
}

export type PathLike = string | Buffer;

/** Paths always go to PostgreSQL as bytea built from the exact bytes. */
export function P(p: PathLike): Buffer {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

export const B = (s: string): Buffer => Buffer.from(s, 'utf8');

export const atime = (a: Attr): bigint => BigInt(a.atime_sec) * 1_000_000_000n + BigInt(a.atime_nsec);
export const mtime = (a: Attr): bigint => BigInt(a.mtime_sec) * 1_000_000_000n + BigInt(a.mtime_nsec);
export const ctime = (a: Attr): bigint => BigInt(a.ctime_sec) * 1_000_000_000n + BigInt(a.ctime_nsec);
export const type = (a: Attr): number => a.mode & S_IFMT;
export const perms = (a: Attr): number => a.mode & 0o7777;

/** Let the clock move on, so that a timestamp set by the next call is strictly later. */
export const tick = (ms = 3): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wall clock in ns, for "UTIME_NOW is about now" checks. */
export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** A thin typed wrapper over the tarbox.* functions, bound to one tenant. */
export class Fs {
  constructor(
    readonly sql: Sql,
    readonly tenantId: number,
    readonly name: string,
  ) {}

  async attr(path: PathLike): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.getattr(${P(path)})`;
    return a;
  }
  async attrIno(ino: number): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.getattr_ino(${ino})`;
    return a;
  }
  async exists(path: PathLike): Promise<boolean> {
    try {
      await this.attr(path);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'TBNOE') return false;
      throw err;
    }
  }
  async readdir(path: PathLike): Promise<Dirent[]> {
    return [...(await this.sql<Dirent[]>`select d.name, (d.attr).* from tarbox.readdir(${P(path)}) d`)];
  }
  async names(path: PathLike): Promise<string[]> {
    return (await this.readdir(path)).map((d) => d.name.toString('utf8'));
  }
  async mkdir(path: PathLike, mode = 0o755, uid = 0, gid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.mkdir(${P(path)}, ${mode}, ${uid}, ${gid})`;
    return a;
  }
  async create(path: PathLike, mode = 0o644, uid = 0, gid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.create(${P(path)}, ${mode}, ${uid}, ${gid})`;
    return a;
  }
  async mknod(path: PathLike, mode: number, rdev = 0, uid = 0, gid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.mknod(${P(path)}, ${mode}, ${rdev}, ${uid}, ${gid})`;
    return a;
  }
  async symlink(target: PathLike, path: PathLike, uid = 0, gid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.symlink(${P(target)}, ${P(path)}, ${uid}, ${gid})`;
    return a;
  }
  async readlink(path: PathLike): Promise<Buffer> {
    const [{ t }] = await this.sql<{ t: Buffer }[]>`select tarbox.readlink(${P(path)}) as t`;
    return t;
  }
  async link(existing: PathLike, path: PathLike): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.link(${P(existing)}, ${P(path)})`;
    return a;
  }
  async unlink(path: PathLike, uid = 0): Promise<void> {
    await this.sql`select tarbox.unlink(${P(path)}, ${uid})`;
  }
  async rmdir(path: PathLike, uid = 0): Promise<void> {
    await this.sql`select tarbox.rmdir(${P(path)}, ${uid})`;
  }
  async rename(from: PathLike, to: PathLike, flags = 0, uid = 0): Promise<void> {
    await this.sql`select tarbox.rename(${P(from)}, ${P(to)}, ${flags}, ${uid})`;
  }
  async chmod(path: PathLike, mode: number): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.chmod(${P(path)}, ${mode})`;
    return a;
  }
  async chown(path: PathLike, uid: number, gid: number): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.chown(${P(path)}, ${uid}, ${gid})`;
    return a;
  }
  async utimens(path: PathLike, aSec: number, aNsec: number, mSec: number, mNsec: number): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.utimens(${P(path)}, ${aSec}, ${aNsec}, ${mSec}, ${mNsec})`;
    return a;
  }
  async access(path: PathLike, mask: number, uid = 0, gid = 0): Promise<void> {
    await this.sql`select tarbox.access(${P(path)}, ${mask}, ${uid}, ${gid})`;
  }
  async open(path: PathLike, flags = 0, uid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.open(${P(path)}, ${flags}, ${uid})`;
    return a;
  }
  async read(path: PathLike, offset = 0, length = 1073741823): Promise<Buffer> {
    const [{ d }] = await this.sql<{ d: Buffer }[]>`select tarbox.read(${P(path)}, ${offset}, ${length}) as d`;
    return d;
  }
  async readIno(ino: number, offset: number, length: number): Promise<Buffer> {
    const [{ d }] = await this.sql<{ d: Buffer }[]>`select tarbox.read_ino(${ino}, ${offset}, ${length}) as d`;
    return d;
  }
  async write(path: PathLike, offset: number, data: Buffer | string, uid = 0): Promise<number> {
    const [{ n }] = await this.sql<{ n: number }[]>`select tarbox.write(${P(path)}, ${offset}, ${P(data)}, ${uid}) as n`;
    return n;
  }
  async writeIno(ino: number, offset: number, data: Buffer | string, uid = 0): Promise<number> {
    const [{ n }] = await this.sql<{ n: number }[]>`select tarbox.write_ino(${ino}, ${offset}, ${P(data)}, ${uid}) as n`;
    return n;
  }
  async truncate(path: PathLike, size: number, uid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.truncate(${P(path)}, ${size}, ${uid})`;
    return a;
  }
  async truncateIno(ino: number, size: number, uid = 0): Promise<Attr> {
    const [a] = await this.sql<Attr[]>`select * from tarbox.truncate_ino(${ino}, ${size}, ${uid})`;
    return a;
  }
  async setxattr(path: PathLike, name: string, value: Buffer | string, flags = 0): Promise<void> {
    await this.sql`select tarbox.setxattr(${P(path)}, ${name}, ${P(value)}, ${flags})`;
  }
  async getxattr(path: PathLike, name: string): Promise<Buffer> {
    const [{ v }] = await this.sql<{ v: Buffer }[]>`select tarbox.getxattr(${P(path)}, ${name}) as v`;
    return v;
  }
  async listxattr(path: PathLike): Promise<string[]> {
    return (await this.sql<{ n: string }[]>`select n from tarbox.listxattr(${P(path)}) n`).map((r) => r.n);
  }
  async removexattr(path: PathLike, name: string): Promise<void> {
    await this.sql`select tarbox.removexattr(${P(path)}, ${name})`;
  }
  /** A file with the given content, created by tarbox.create + tarbox.write. */
  async file(path: PathLike, content: Buffer | string = '', mode = 0o644, uid = 0, gid = 0): Promise<Attr> {
    await this.create(path, mode, uid, gid);
    if (content.length > 0) await this.write(path, 0, content);
    return this.attr(path);
  }
}

export interface Env {
  readonly db: FreshDatabase;
  /** The unbound client on the file's database: acts as the admin (tables, other tenants). */
  readonly admin: Sql;
  /** A new tenant and a client bound to it, closed when test t ends. */
  tenant(t: ExecutionContext, opts?: { blockSize?: number; name?: string }): Promise<Fs>;
  /** Rows of tarbox_private.chunks for a tenant. */
  chunkCount(tenantId: number): Promise<number>;
}

let tenantCounter = 0;

export function useDatabase(test: TestFn): Env {
  let db: FreshDatabase | undefined;
  const clients = new Set<Sql>();
  test.before(async () => {
    db = await freshDatabase();
  });
  test.after.always(async () => {
    await Promise.all([...clients].map((c) => c.end({ timeout: 5 })));
    await db?.drop();
  });
  const env: Env = {
    get db() {
      if (!db) throw new Error('database not ready');
      return db;
    },
    get admin() {
      return env.db.sql;
    },
    async tenant(t, opts = {}) {
      const name = opts.name ?? `t${process.pid % 10000}-${++tenantCounter}`;
      let sql: Sql;
      let tenantId: number;
      if (opts.blockSize !== undefined) {
        const [row] = await env.admin<{ tenant_id: number }[]>`
          select tenant_id from tarbox.create_tenant(${name}, null, ${opts.blockSize})`;
        tenantId = row.tenant_id;
        sql = client(env.db.url, { max: 2, connection: { 'tarbox.tenant_id': String(tenantId) } });
      } else {
        const bound = await withTenant(env.db.url, name);
        sql = bound;
        tenantId = bound.tenantId;
      }
      clients.add(sql);
      t.teardown(async () => {
        clients.delete(sql);
        await sql.end({ timeout: 5 });
      });
      return new Fs(sql, tenantId, name);
    },
    async chunkCount(tenantId) {
      const [{ n }] = await env.admin<{ n: number }[]>`
        select count(*)::int as n from tarbox_private.chunks where tenant_id = ${tenantId}`;
      return n;
    },
  };
  return env;
}

/** Deterministic PRNG (mulberry32) so random tests are reproducible from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
