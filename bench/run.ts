// npm run bench [-- --only sequential,metadata] [--quick] [--json] [--repeat N] ...
//
// Runs every workload (bench/workloads/) on a tarbox mount and on a native directory of the local
// disk, and prints both, their ratio and the goal of the core issue. The database is the
// configured PostgreSQL (DATABASE_URL, ...) or an embedded one started for the run, with its
// default settings; a fresh database is created, migrated and dropped at the end. The mount is
// served by a child process with the user's configuration (tarbox.toml / TARBOX_* / defaults);
// every timed syscall is made by yet another child process (bench/worker.ts).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mountOverrides, openBenchDatabase, type BenchDatabase } from './database.js';
import { dropCaches, loadAverage, machineInfo } from './machine.js';
import { memfsMount, tarboxMount, type MountProcess } from './mount-process.js';
import type { CeilingResult } from './pg-ceiling.js';
import { enableFunctionStats, functionStats, functionStatsText, resetStats, type FunctionStat } from './pg-stats.js';
import { ceilingText, machineText, resultsTable, summarize, type MetricResult, type WorkloadRun } from './report.js';
import type { TargetKind, Workload, WorkloadContext } from './types.js';
import { workloads } from './workloads/index.js';
import { NATIVE_BENCH_PATH, nativeMount } from './workloads/native-mount.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CEILING = 'pg-ceiling';
const TENANT = 'bench';

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'json-out': { type: 'string' },
    repeat: { type: 'string', default: '1' },
    'fuse-floor': { type: 'boolean', default: false },
    'profile-mount': { type: 'boolean', default: false },
    'pg-stats': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opts.help) {
  process.stdout.write(`usage: npm run bench -- [options]
  --only NAME,...   run only these (${[...workloads.map((w) => w.name), CEILING].join(', ')})
  --quick           smaller sizes, for a smoke run
  --json            print the results as JSON on stdout (progress stays on stderr)
  --json-out FILE   also write the JSON document to FILE
  --repeat N        run every workload N times per target and report medians
  --fuse-floor      also run every workload on an in-memory filesystem served by the same FUSE
                    binding (test/fixtures/memfs-server): what the binding alone allows
diagnostics (the numbers of such runs are not the reference ones):
  --profile-mount   run the mount process under node --cpu-prof (profiles kept, path printed)
  --pg-stats        after each workload on the mount, print calls and time of every tarbox.* SQL
                    function (track_functions = 'pl' on the benchmark database)
`);
  process.exit(0);
}

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const known = new Set([...workloads.map((w) => w.name), CEILING]);
const only = opts.only ? opts.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
for (const name of only ?? []) if (!known.has(name)) usage(`unknown workload "${name}" (known: ${[...known].join(', ')})`);
const repeat = Number(opts.repeat);
if (!Number.isInteger(repeat) || repeat < 1) usage('--repeat takes a positive integer');
const selected = workloads.filter((w) => !only || only.includes(w.name));
const runCeiling = !only || only.includes(CEILING);
const targets: TargetKind[] = ['mount', 'native', ...(opts['fuse-floor'] ? ['floor' as const] : [])];
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const print = (text: string) => { if (!opts.json) process.stdout.write(text); };

/** Run a node script of bench/ in a child process and parse the JSON line it prints last. */
function runChild<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(here, script), ...args], { maxBuffer: 256 * 2 ** 20 }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script} failed: ${err?.message ?? 'no result'}\n${stderr.trim()}`));
      }
    });
  });
}

async function runStep<T>(workload: Workload, step: string, args: Record<string, unknown>): Promise<T> {
  const reply = await runChild<{ ok: boolean; result?: T; name?: string; message?: string }>(
    'worker.js', [JSON.stringify({ workload: workload.name, step, args })]);
  if (!reply.ok) {
    const err = new Error(reply.message);
    err.name = reply.name ?? 'Error';
    throw err;
  }
  return reply.result as T;
}

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-bench-'));
fs.chmodSync(runDir, 0o755); // as root the embedded server runs as "postgres" and must reach its data dir
const roots: Record<TargetKind, string> = {
  mount: path.join(runDir, 'mnt'),
  native: path.join(runDir, 'native'),
  floor: path.join(runDir, 'floor'),
};
const scratch = path.join(runDir, 'scratch');
for (const dir of [...Object.values(roots), scratch]) fs.mkdirSync(dir);
const profileDir = path.join(os.tmpdir(), `tarbox-bench-profiles-${process.pid}`);
const mountLog = path.join(os.tmpdir(), `tarbox-bench-mount-${process.pid}.log`);

let db: BenchDatabase | null = null;
const servers: Partial<Record<TargetKind, MountProcess>> = {};
let cleaning: Promise<void> | null = null;
const cleanup = () => (cleaning ??= (async () => {
  for (const server of Object.values(servers)) await server.stop().catch((err) => log(`stopping a mount: ${err}`));
  await db?.close().catch((err) => log(`dropping the database: ${err}`));
  fs.rmSync(runDir, { recursive: true, force: true });
})());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { log(`${sig}: cleaning up`); void cleanup().finally(() => process.exit(130)); });
}

let failed = false;
const warnings: string[] = [];
try {
  db = await openBenchDatabase(runDir, TENANT, log);
  const machine = machineInfo(db.serverVersion, roots.native);
  // The native-mount workload measures a rw native mount of the tarbox mount: configured only
  // when it runs, so the other workloads measure the mount without one.
  const nativeSource = path.join(runDir, 'native-src');
  const overrides: ReturnType<typeof mountOverrides> & { native_mounts?: object[] } = mountOverrides(db.config);
  if (selected.includes(nativeMount)) {
    overrides.native_mounts = [{ path: NATIVE_BENCH_PATH, source: nativeSource, mode: 'rw', shared: true, priority: 0 }];
  }
  print(machineText(machine, db) + '\n');
  print(`mount:      ${JSON.stringify(overrides)}\n`);
  print('\n');

  let ceiling: CeilingResult | null = null;
  if (runCeiling) {
    log('measuring PostgreSQL alone (pg-ceiling)');
    ceiling = await runChild<CeilingResult>('pg-ceiling.js', [db.url, ...(opts.quick ? ['--quick'] : [])]);
    print(ceilingText(ceiling) + '\n\n');
  }

  if (opts['profile-mount']) fs.mkdirSync(profileDir, { recursive: true });
  const pgStats: Record<string, FunctionStat[]> = {};
  if (opts['pg-stats']) await enableFunctionStats(db.url, db.name);
  const mount = servers.mount = tarboxMount({
    url: db.url, tenant: TENANT, mountpoint: roots.mount, overrides, logFile: mountLog,
    nodeArgs: opts['profile-mount'] ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  });
  if (opts['fuse-floor']) {
    servers.floor = memfsMount({
      mountpoint: roots.floor, logFile: mountLog,
      attrTimeout: overrides.filesystem.attr_timeout, entryTimeout: overrides.filesystem.entry_timeout,
    });
    await servers.floor.start();
  }

  const runs: WorkloadRun[] = [];
  for (const workload of selected) {
    for (let rep = 1; rep <= repeat; rep++) {
      for (const target of targets) {
        if (target === 'mount') await mount.restart(); // every workload starts on a fresh mount process
        const dir = path.join(roots[target], `${workload.name}-${rep}`);
        fs.mkdirSync(dir);
        const ctx: WorkloadContext = {
          target, dir, quick: opts.quick, scratch, databaseUrl: db.url, tenant: TENANT,
          step: (name, args) => runStep(workload, name, args),
          cold: async () => {
            // the in-memory floor cannot restart without losing its files: page cache only
            if (target === 'mount') await mount.stop();
            dropCaches();
            if (target === 'mount') await mount.start();
          },
          log: (msg) => log(`${workload.name}/${target}: ${msg}`),
        };
        if (target === 'mount' && opts['pg-stats']) await resetStats(db.url);
        const before = loadAverage();
        log(`${workload.name} on ${target}${repeat > 1 ? ` (${rep}/${repeat})` : ''} (load ${before.join(' ')})`);
        const run: WorkloadRun = { workload: workload.name, target, repetition: rep, values: {}, loadAverage: { before, after: before } };
        try {
          const out = await workload.run(ctx);
          run.values = out.values;
          run.details = out.details;
        } catch (err) {
          failed = true;
          run.error = `${(err as Error).name}: ${(err as Error).message}`;
          log(`${workload.name} on ${target} FAILED: ${run.error}`);
        }
        run.loadAverage.after = loadAverage();
        runs.push(run);
        if (target === 'mount' && opts['pg-stats']) {
          await mount.stop(); // the mount's sessions flush their counters when they end
          const stats = await functionStats(db.url);
          pgStats[`${workload.name}-${rep}`] = stats;
          print(`PostgreSQL functions during ${workload.name} on the mount${repeat > 1 ? ` (${rep})` : ''}:\n${functionStatsText(stats)}\n\n`);
          await mount.start(); // for the cleanup below
        }
        try {
          fs.rmSync(dir, { recursive: true, force: true });
        } catch (err) {
          // untimed, but an error from the mount here is a correctness problem worth reporting
          warnings.push(`cleaning ${dir} after ${workload.name} on ${target}: ${err}`);
          log(`WARNING: ${warnings.at(-1)}`);
        }
      }
    }
  }
  for (const server of Object.values(servers)) await server.stop();

  const results: MetricResult[] = selected.flatMap((w) => w.metrics.map((m) => summarize(w.name, m, runs)));
  const loadEnd = loadAverage();
  const doc = {
    machine,
    database: { embedded: db.embedded, version: db.serverVersion, settings: db.settings },
    mountConfig: overrides,
    options: { quick: opts.quick, repeat, only, fuseFloor: opts['fuse-floor'] },
    ceiling,
    runs,
    pgStats: opts['pg-stats'] ? pgStats : null,
    results: results.map((r) => ({
      workload: r.workload, key: r.metric.key, label: r.metric.label, unit: r.metric.unit,
      higher_is_better: r.metric.higherIsBetter, goal: r.metric.goal ?? null,
      mount_median: r.mountMedian, native_median: r.nativeMedian, speed_ratio: r.speedRatio, goal_met: r.goalMet,
      floor_median: r.floor.length ? r.floorMedian : null,
      mount: r.mount, native: r.native, floor: r.floor,
    })),
    loadAverage: { start: machine.loadAverage, end: loadEnd },
    profiles: opts['profile-mount'] ? profileDir : null,
    warnings,
    failed,
  };
  if (opts['json-out']) fs.writeFileSync(opts['json-out'], JSON.stringify(doc, null, 2) + '\n');
  if (opts.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');

  print(resultsTable(results) + '\n\n');
  for (const r of runs.filter((x) => x.error)) print(`FAILED ${r.workload} on ${r.target}: ${r.error}\n`);
  for (const w of warnings) print(`WARNING ${w}\n`);
  const during = selected.map((w) => {
    const mine = runs.filter((r) => r.workload === w.name);
    return `${w.name} ${mine[0]?.loadAverage.before[0]}..${mine.at(-1)?.loadAverage.after[0]}`;
  });
  print(`load avg (1 min): ${machine.loadAverage[0]} at start; ${during.join(', ')}; ${loadEnd[0]} at end\n`);
  print(`${repeat > 1 ? `medians of ${repeat} runs; ` : ''}MB = 10^6 bytes; ratios are speed (mount/native for rates, native/mount for seconds)\n`);
  if (opts['profile-mount']) print(`mount CPU profiles: ${profileDir}\n`);
} catch (err) {
  failed = true;
  log(`error: ${(err as Error).stack ?? err}`);
} finally {
  await cleanup();
  const logged = fs.existsSync(mountLog) && fs.statSync(mountLog).size > 0;
  if (failed || warnings.length || logged) log(`mount process log kept: ${mountLog}`);
  else fs.rmSync(mountLog, { force: true });
}
process.exit(failed ? 1 : 0);
