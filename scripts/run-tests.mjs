#!/usr/bin/env node
// `make test`: one PostgreSQL for the whole run (embedded in a fresh temp dir, or the server at
// DATABASE_URL), a migrated template database the tests clone, then ava with TAP output, counted
// here so the last line is always "N passed, N failed[, N skipped]". Extra arguments go to ava.
//
// Everything a test creates under os.tmpdir() lands in this run's directory (TMPDIR is pointed
// there), and every process the tests start carries TARBOX_TEST_RUN in its environment, so the
// cleanup can find leftover mounts and processes even after a crash.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist', 'cli');
if (!fs.existsSync(path.join(dist, 'postgres-server.js'))) {
  console.error('run-tests: dist/ is missing; build first (make build)');
  process.exit(2);
}
const { loadConfig } = await import(path.join(dist, 'config.js'));
const { acquireDatabase, checkServer } = await import(path.join(dist, 'postgres-server.js'));
const { migrateDatabase } = await import(path.join(dist, 'migrate.js'));
const { default: postgres } = await import('postgres');

const runId = crypto.randomBytes(6).toString('hex');
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-test-'));
// As root the embedded server runs as the postgres user, which must be able to enter this tree.
fs.chmodSync(runDir, 0o755);
const testTmp = path.join(runDir, 'tmp');
fs.mkdirSync(testTmp, { mode: 0o755 });
const template = `tarbox_template_${process.pid}`;

let db = null;
let ava = null;
let finishing = false;

function log(msg) {
  process.stderr.write(`run-tests: ${msg}\n`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startDatabase() {
  if (process.env.DATABASE_URL) {
    await checkServer(process.env.DATABASE_URL, 10);
    return { adminUrl: process.env.DATABASE_URL, release: async () => {} };
  }
  // Only our two settings: the developer's TARBOX_* variables must not leak into the test server.
  const config = loadConfig({
    cwd: runDir,
    env: { TARBOX_DATABASE_DATA_DIR: path.join(runDir, 'pg'), TARBOX_DATABASE_PORT: String(await freePort()) },
  });
  // A throwaway cluster: durability buys nothing here and costs a lot of time.
  return acquireDatabase(config, {
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'],
  });
}

function withAdmin(fn) {
  const sql = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
  return fn(sql).finally(() => sql.end({ timeout: 5 }));
}

function dbUrl(name) {
  const url = new URL(db.adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function prepareTemplate() {
  await withAdmin((sql) => sql.unsafe(`create database "${template}"`));
  const { applied } = await migrateDatabase(dbUrl(template));
  // Sessions still closing on the template would make the first clones fail with 55006.
  await withAdmin(async (sql) => {
    for (let i = 0; i < 100; i++) {
      const [{ n }] = await sql`select count(*)::int as n from pg_stat_activity where datname = ${template}`;
      if (n === 0) return;
      await sleep(50);
    }
  });
  log(`template ${template}: ${applied} migrations`);
}

function runAva(args) {
  const env = { ...process.env, TARBOX_TEST_ADMIN_URL: db.adminUrl, TARBOX_TEST_TEMPLATE: template, TARBOX_TEST_RUN: runId, TMPDIR: testTmp };
  // Tests pass their database explicitly; stray configuration must not redirect them.
  for (const name of Object.keys(env)) {
    if (name === 'DATABASE_URL' || name === 'XDG_RUNTIME_DIR' || (name.startsWith('TARBOX_') && !name.startsWith('TARBOX_TEST_') && name !== 'TARBOX_DEBUG')) {
      delete env[name];
    }
  }
  const cli = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
  ava = spawn(process.execPath, [cli, '--tap', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  // Count the "ok"/"not ok" lines. ava's closing summary, when it gets that far, is better still:
  // it also counts the tests that never ran because a hook failed or a file timed out, which
  // have no line of their own. Its "# fail" includes todo tests, which we count as skipped.
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const lines = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  const summary = {};
  let planSeen = false;
  readline.createInterface({ input: ava.stdout }).on('line', (line) => {
    process.stdout.write(`${line}\n`);
    const m = /^(not )?ok \d+\b/.exec(line);
    if (m) {
      if (/#\s*TODO\b/i.test(line)) lines.todo++;
      else if (/#\s*SKIP\b/i.test(line)) lines.skipped++;
      else if (m[1]) lines.failed++;
      else lines.passed++;
    } else if (/^1\.\.\d+$/.test(line)) {
      planSeen = true;
    } else if (planSeen) {
      const s = /^# (pass|skip|fail) (\d+)$/.exec(line);
      if (s) summary[s[1]] = Number(s[2]);
    }
    Object.assign(counts, summary.pass === undefined || summary.fail === undefined
      ? { passed: lines.passed, failed: lines.failed, skipped: lines.skipped + lines.todo }
      : { passed: summary.pass, failed: Math.max(summary.fail - lines.todo, lines.failed), skipped: (summary.skip ?? 0) + lines.todo });
  });
  // ava's own timeout covers a stuck test, not a worker kept alive by an open handle after its
  // tests are done; bound the whole run so CI reports instead of hanging.
  const limitMinutes = Number(process.env.TARBOX_TEST_RUN_TIMEOUT_MINUTES ?? 60);
  const timer = setTimeout(() => {
    log(`ava still running after ${limitMinutes} minutes; stopping it`);
    ava.kill('SIGTERM');
    setTimeout(() => ava.kill('SIGKILL'), 10_000).unref();
  }, limitMinutes * 60_000);
  return new Promise((resolve) => {
    ava.on('error', (err) => resolve({ counts, code: 1, error: err }));
    ava.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ counts, code: code ?? 128, signal });
    });
  });
}

function mountsUnder(dir) {
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return info.split('\n').map((l) => unescape(l.split(' ')[4] ?? '')).filter((m) => m.startsWith(`${dir}/`));
}

function unmountLeftovers() {
  for (const mountpoint of mountsUnder(runDir).reverse()) {
    for (const bin of ['fusermount', 'fusermount3', 'umount']) {
      try {
        execFileSync(bin, bin === 'umount' ? ['-l', mountpoint] : ['-uz', mountpoint], { stdio: 'ignore' });
        log(`unmounted leftover ${mountpoint}`);
        break;
      } catch {
        // try the next tool
      }
    }
  }
}

/** Pids of processes started by the tests: their environment carries TARBOX_TEST_RUN=<runId>. */
function strayProcesses() {
  const marker = Buffer.from(`\0TARBOX_TEST_RUN=${runId}\0`);
  const pids = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${pid}/environ`)]);
      if (environ.includes(marker)) pids.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

async function killStrays() {
  let pids = strayProcesses();
  if (pids.length === 0) return;
  log(`stopping ${pids.length} leftover test process(es): ${pids.join(' ')}`);
  for (const pid of pids) tryKill(pid, 'SIGTERM');
  for (let i = 0; i < 60 && (pids = pids.filter(alive)).length > 0; i++) await sleep(50);
  for (const pid of pids) tryKill(pid, 'SIGKILL');
}

function tryKill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cleanup() {
  unmountLeftovers();
  await killStrays();
  unmountLeftovers();
  if (db) {
    try {
      await withAdmin(async (sql) => {
        const rows = await sql`select datname from pg_database where datname = ${template} or datname like ${`${template}\\_%`}`;
        for (const { datname } of rows) await sql.unsafe(`drop database if exists "${datname}" with (force)`);
      });
    } catch (err) {
      log(`could not drop test databases: ${err.message}`);
    }
    await db.release();
  }
  fs.rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
}

async function finish(result) {
  if (finishing) return;
  finishing = true;
  await cleanup().catch((err) => log(`cleanup: ${err.message}`));
  const { passed, failed, skipped } = result.counts;
  let failedRun = failed > 0;
  if (result.error) {
    log(result.error.message ?? String(result.error));
    failedRun = true;
  } else if (result.code !== 0) {
    if (failed === 0) log(`ava exited with ${result.signal ?? `code ${result.code}`}`);
    failedRun = true;
  }
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(failedRun ? 1 : 0);
}

const empty = { passed: 0, failed: 0, skipped: 0 };
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (ava && ava.exitCode === null) ava.kill('SIGTERM');
    else void finish({ counts: empty, code: 1, error: new Error(`interrupted by ${sig}`) });
  });
}

try {
  db = await startDatabase();
  await prepareTemplate();
} catch (err) {
  await finish({ counts: empty, code: 1, error: err });
}
await finish(await runAva(process.argv.slice(2)));
