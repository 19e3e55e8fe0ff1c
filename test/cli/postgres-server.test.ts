// The embedded PostgreSQL: initialised on first use, shared by several processes through the
// per-pid client files, stopped when the last user releases it, exits or is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freePort } from '../../cli/proc.js';
import postgres from 'postgres';
import { loadConfig } from '../../cli/config.js';
import { acquireDatabase, checkServer, MALLOC_FOR_CHUNKS } from '../../cli/postgres-server.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-embedded-'));
// As root the server runs as the postgres user, which must be able to reach the data dir.
fs.chmodSync(dir, 0o755);
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 15_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (cond()) return true;
  return cond();
}

/** A node process that acquires the embedded server, prints "ready <url>" and holds it until stdin closes. */
function holder(env: Record<string, string>, mode: 'release' | 'exit' = 'release'): Promise<{ child: ChildProcess; url: string }> {
  const script = `
    const { loadConfig } = await import(${JSON.stringify(path.join(dist, 'config.js'))});
    const { acquireDatabase } = await import(${JSON.stringify(path.join(dist, 'postgres-server.js'))});
    const db = await acquireDatabase(loadConfig({ env: process.env, cwd: process.cwd() }));
    console.log('ready ' + db.url);
    process.stdin.resume();
    process.stdin.on('end', async () => { if (${JSON.stringify(mode)} === 'release') await db.release(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

test('embedded server: shared by processes, stopped by the last one out', async (t) => {
  t.timeout(120_000);
  const state = path.join(dir, 'state');
  const env = { TARBOX_DATABASE_DATA_DIR: path.join(state, 'pg'), TARBOX_DATABASE_PORT: String(await freePort()) };
  const config = loadConfig({ env, cwd: dir });
  const pidFile = path.join(state, 'pg', 'postmaster.pid');
  const clients = () => fs.readdirSync(path.join(state, 'clients'));

  // First use initialises the cluster and creates the tarbox database.
  const a = await acquireDatabase(config);
  t.true(a.embedded);
  t.regex(a.url, /^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/tarbox$/);
  const sql = postgres(a.url, { max: 1, onnotice: () => {} });
  const [{ v }] = await sql<{ v: number }[]>`select current_setting('server_version_num')::int as v`;
  t.true(v >= 140000);
  await sql.end();
  t.true(fs.existsSync(path.join(state, 'pg.log')));
  t.is((fs.statSync(path.join(state, 'pg.password')).mode & 0o777), 0o600);
  t.deepEqual(clients(), [String(process.pid)]);
  // the server runs with the malloc settings that keep chunk-sized allocations on its heap
  const postmaster = fs.readFileSync(pidFile, 'utf8').split('\n')[0];
  const environ = fs.readFileSync(`/proc/${postmaster}/environ`, 'utf8').split('\0');
  for (const [name, value] of Object.entries(MALLOC_FOR_CHUNKS)) {
    t.true(environ.includes(`${name}=${process.env[name] ?? value}`), name);
  }

  // Another process joins; our release leaves the server running for it.
  const b = await holder(env);
  t.is(clients().length, 2);
  await a.release();
  t.true(fs.existsSync(pidFile));
  await checkServer(b.url, 5);

  // It is killed without releasing: its client file is stale. The next user cleans it up and,
  // being the last one out, stops the server.
  b.child.kill('SIGKILL');
  await exited(b.child);
  const c = await acquireDatabase(config);
  t.deepEqual(clients(), [String(process.pid)]);
  await c.release();
  t.false(fs.existsSync(pidFile));
  t.deepEqual(clients(), []);

  // A process that exits without release() still stops the server (synchronous exit hook).
  const d = await holder(env, 'exit');
  t.true(fs.existsSync(pidFile));
  d.child.stdin!.end();
  await exited(d.child);
  t.true(await until(() => !fs.existsSync(pidFile)), 'server stopped after the last process exited');

  // Restarting an initialised cluster works, and two acquisitions in one process count separately.
  const e1 = await acquireDatabase(config);
  const e2 = await acquireDatabase(config);
  await e1.release();
  await checkServer(e2.url, 5);
  await e2.release();
  t.false(fs.existsSync(pidFile));
});

test('configured URL: unreachable server is one clear error', async (t) => {
  const config = loadConfig({ env: { TARBOX_DATABASE_URL: 'postgres://tarbox@127.0.0.1:1/x', TARBOX_DATABASE_CONNECTION_TIMEOUT: '2' }, cwd: dir });
  const err = await t.throwsAsync(acquireDatabase(config));
  t.is(err?.message, 'cannot connect to PostgreSQL at 127.0.0.1:1: connection refused');
  t.is((err as { exitCode?: number }).exitCode, 4);
});

test('configured URL: a reachable server is used as is', async (t) => {
  const url = process.env.TARBOX_TEST_ADMIN_URL!;
  const db = await acquireDatabase(loadConfig({ env: { TARBOX_DATABASE_URL: url }, cwd: dir }));
  t.is(db.url, url);
  t.false(db.embedded);
  await db.release();
});
