// A fresh database, a tenant in it and a child process serving that tenant on a temp
// mountpoint (test/fixtures/mount-server.ts). The test process is the client: it makes
// syscalls on the mount; the mount runs in the child. NEVER serve and use a mount in one
// process: the syscall waits for the server, which waits for the event loop the syscall
// blocks: a deadlock.
//
//   const m = await mountFresh({ blockSize: 4096 });
//   test.after.always(() => m.unmount());
//   fs.writeFileSync(m.path('a'), 'x');
//   const { stdout, code } = await m.run('ls -la', { uid: 1000 });
//
// Every mount-server's stderr is kept (m.log()) so a failing test can show what the shim
// said. unmount() always leaves nothing mounted (SIGTERM, then SIGKILL + fusermount -uz).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isMounted } from '../../cli/mounts.js';
import { freshDatabase, type Sql } from './database.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.resolve(here, '../fixtures/mount-server.js');
const MOUNT_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

export interface RunOptions {
  /** Run as this uid (and gid, default the same) with no supplementary groups (setpriv). */
  uid?: number;
  gid?: number;
  /** Working directory, default the mountpoint. */
  cwd?: string;
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface MountServer {
  mountpoint: string;
  /** The server's process id (SIGUSR2 makes it print a "cache-stats {json}" line on stderr). */
  pid: number;
  /** stderr of this server process so far. */
  log(): string;
  /** SIGTERM (the server flushes and unmounts), then SIGKILL + fusermount -uz if needed. */
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

export interface Mount {
  mountpoint: string;
  url: string;
  /** The database's client (not bound to the tenant; use `tarbox.use_tenant` in a transaction or tenantSql()). */
  sql: Sql;
  tenant: string;
  tenantId: number;
  blockSize: number;
  /** A temp directory beside the mountpoint, outside the mount (0755, for source trees etc.). */
  scratch: string;
  /** mountpoint joined with the parts. */
  path(...parts: string[]): string;
  /** `sh -c cmd` in a child process (cwd: the mountpoint unless given). Never rejects on a non-zero exit. */
  run(cmd: string, opts?: RunOptions): Promise<RunResult>;
  /** Like run, but rejects (with stdout/stderr and the server log) unless the exit code is 0. */
  check(cmd: string, opts?: RunOptions): Promise<string>;
  /**
   * Run Python code (cwd: the mountpoint unless given) after PY_PRELUDE and return the JSON
   * it prints with out(value). E(f, *args) calls f and gives its result, 'OK' for None, or
   * the errno name ('ENOENT') of the OSError it raised.
   */
  python<T = unknown>(code: string, opts?: RunOptions): Promise<T>;
  /** Stop the server (it flushes on SIGTERM) and serve the same tenant again on the same mountpoint. */
  remount(): Promise<void>;
  /** Serve the same tenant (or another tenant of this database) from a second, independent process on another mountpoint. */
  mountAgain(tenant?: string): Promise<MountServer>;
  /** stderr of every server process of this mount so far. */
  log(): string;
  /** Stop every server, remove the temp dirs and drop the database. Safe to call twice. */
  unmount(): Promise<void>;
}

export interface MountFreshOptions {
  /** Tenant block size (default: the SQL default). */
  blockSize?: number;
  /** JSON overrides passed to mount-server ({ database, filesystem, cache, text }). */
  config?: object;
  /** Tenant name (default 't1'). */
  tenant?: string;
}


/** Servers still running: if this process exits without unmounting, they go with it. */
const live = new Set<{ child: ChildProcessWithoutNullStreams; mountpoint: string }>();
process.on('exit', () => {
  for (const { child, mountpoint } of live) {
    child.kill('SIGKILL');
    spawnSync('fusermount', ['-uz', mountpoint], { stdio: 'ignore' });
  }
});

function startServer(url: string, tenant: string, mountpoint: string, config: object | undefined, logs: string[]): Promise<MountServer> {
  const args = [SERVER, url, tenant, mountpoint];
  if (config) args.push(JSON.stringify(config));
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const index = logs.length;
  logs.push('');
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    logs[index] += line + '\n';
  });
  const entry = { child, mountpoint };
  live.add(entry);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { live.delete(entry); resolve(code); }));
  let stopping: Promise<void> | undefined;
  const server: MountServer = {
    mountpoint,
    pid: child.pid!,
    exited,
    log: () => stderr.join('\n'),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const killed = new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve();
            }, STOP_TIMEOUT_MS);
          });
          await Promise.race([exited, killed]);
          clearTimeout(timer);
          await exited;
        }
        if (isMounted(mountpoint)) spawnSync('fusermount', ['-uz', mountpoint], { stdio: 'ignore' });
      })();
      return stopping;
    },
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      void server.stop().finally(() => reject(new Error(`mount-server on ${mountpoint}: ${why}\nstderr:\n${stderr.join('\n')}`)));
    };
    const timer = setTimeout(() => fail(`not mounted after ${MOUNT_TIMEOUT_MS} ms`), MOUNT_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.trim() === 'mounted' && !done) {
        done = true;
        clearTimeout(timer);
        resolve(server);
      }
    });
    child.on('error', (err) => { clearTimeout(timer); fail(String(err)); });
    void exited.then((code) => { clearTimeout(timer); fail(`exited with ${code} before mounting`); });
  });
}

export function run(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
  let file = 'sh';
  let args = ['-c', cmd];
  if (opts.uid !== undefined || opts.gid !== undefined) {
    const uid = opts.uid ?? 0;
    const gid = opts.gid ?? uid;
    file = 'setpriv';
    args = [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'sh', '-c', cmd];
  }
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** The system Python when there is one: a per-user install (pyenv under /root) is not reachable as uid 1000. */
export const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Prepended to the code of Mount.python. */
export const PY_PRELUDE = `import os, sys, json, errno
def E(f, *a, **k):
    try:
        r = f(*a, **k)
        return 'OK' if r is None else r
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            return 'EOPNOTSUPP'  # the same number as ENOTSUP on Linux
        return errno.errorcode.get(e.errno, str(e.errno))
def out(v):
    print('@@' + json.dumps(v), flush=True)
`;

let mounts = 0;

export async function mountFresh(options: MountFreshOptions = {}): Promise<Mount> {
  const tenant = options.tenant ?? 't1';
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-mount-'));
  fs.chmodSync(base, 0o755); // uid 1000 must reach the mountpoint
  const mountpoint = path.join(base, `mnt${++mounts}`);
  const scratch = path.join(base, 'scratch');
  fs.mkdirSync(mountpoint);
  fs.mkdirSync(scratch, { mode: 0o755 });
  const db = await freshDatabase();
  const servers: MountServer[] = [];
  const logs: string[] = [];
  let extra = 0;

  const cleanup = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await db.drop().catch(() => {});
    fs.rmSync(base, { recursive: true, force: true, maxRetries: 3 });
  };

  let tenantId: number;
  let blockSize: number;
  let server: MountServer;
  try {
    const [row] = options.blockSize
      ? await db.sql`select tenant_id from tarbox.create_tenant(${tenant}, null, ${options.blockSize})`
      : await db.sql`select tenant_id from tarbox.create_tenant(${tenant})`;
    tenantId = Number(row.tenant_id);
    const [bs] = await db.sql`select block_size from tarbox_private.tenants where tenant_id = ${tenantId}`;
    blockSize = Number(bs.block_size);
    server = await startServer(db.url, tenant, mountpoint, options.config, logs);
    servers.push(server);
  } catch (err) {
    await cleanup();
    throw err;
  }

  const log = () => logs.map((l, i) => (l ? `--- server ${i + 1}\n${l}` : '')).join('');
  let unmounted: Promise<void> | undefined;
  const mount: Mount = {
    mountpoint,
    url: db.url,
    sql: db.sql,
    tenant,
    tenantId,
    blockSize,
    scratch,
    path: (...parts) => path.join(mountpoint, ...parts),
    run: (cmd, opts = {}) => run(cmd, { cwd: mountpoint, ...opts }),
    async check(cmd, opts = {}) {
      const r = await run(cmd, { cwd: mountpoint, ...opts });
      if (r.code !== 0) {
        throw new Error(`command failed (code ${r.code}${r.signal ? `, signal ${r.signal}` : ''}): ${cmd}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}\nmount-server stderr:\n${log()}`);
      }
      return r.stdout;
    },
    async remount() {
      await server.stop();
      servers.splice(servers.indexOf(server), 1);
      server = await startServer(db.url, tenant, mountpoint, options.config, logs);
      servers.push(server);
    },
    async mountAgain(other_tenant = tenant) {
      const other = path.join(base, `again${++extra}`);
      fs.mkdirSync(other);
      const s = await startServer(db.url, other_tenant, other, options.config, logs);
      servers.push(s);
      return s;
    },
    async python<T>(code: string, opts: RunOptions = {}): Promise<T> {
      const r = await run(`${PYTHON} -c "$PY_CODE"`, { cwd: mountpoint, ...opts, env: { ...opts.env, PY_CODE: PY_PRELUDE + code } });
      const line = r.stdout.split('\n').filter((l) => l.startsWith('@@'))[0];
      if (r.code !== 0 || line === undefined) {
        throw new Error(`python failed (code ${r.code}):\n${code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\nmount-server stderr:\n${log()}`);
      }
      return JSON.parse(line.slice(2)) as T;
    },
    log,
    unmount() {
      unmounted ??= cleanup();
      return unmounted;
    },
  };
  return mount;
}

/**
 * The usual test.after.always body: show the tail of the mount-server stderr (it carries the
 * shim's errors), then unmount and drop the database.
 */
export async function finish(t: { log(...values: unknown[]): void }, m: Mount | undefined): Promise<void> {
  if (!m) return;
  const log = m.log();
  if (log) t.log(`mount-server stderr (last 4000 characters):\n${log.slice(-4000)}`);
  await m.unmount();
}

/**
 * For a test that runs longer than ava's 10 s default: set its timeout, then yield once so
 * the worker can tell ava about it before a long stretch of synchronous syscalls.
 */
export async function allowTime(t: { timeout(ms: number): void }, ms: number): Promise<void> {
  t.timeout(ms);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/** The errno code of a failing synchronous call ('OK' when it does not fail). */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
