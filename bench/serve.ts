// Set up what a benchmark run uses and keep it until Ctrl-C, to look at the mount by hand
// (strace a workload, profile the mount, query PostgreSQL):
//   node dist/bench/serve.js [--profile-mount] [--native] [--audit-off]
// --native adds the native-mount workload's rw native mount (/native-bench); --audit-off
// serves with audit off, to tell its share of a figure.
// prints the mountpoint, the database URL and the mount process id; cleans up on SIGINT/SIGTERM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mountOverrides, openBenchDatabase } from './database.js';
import { tarboxMount } from './mount-process.js';
import { NATIVE_BENCH_PATH } from './workloads/native-mount.js';

const profile = process.argv.includes('--profile-mount');
const log = (msg: string) => process.stderr.write(`bench-serve: ${msg}\n`);
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-bench-'));
fs.chmodSync(runDir, 0o755);
const mountpoint = path.join(runDir, 'mnt');
fs.mkdirSync(mountpoint);
const profileDir = path.join(runDir, 'profiles');

const db = await openBenchDatabase(runDir, 'bench', log);
const overrides: ReturnType<typeof mountOverrides> & { native_mounts?: object[] } = mountOverrides(db.config);
if (process.argv.includes('--native')) {
  overrides.native_mounts = [{ path: NATIVE_BENCH_PATH, source: path.join(runDir, 'native-src'), mode: 'rw', shared: true, priority: 0 }];
}
if (process.argv.includes('--audit-off')) overrides.audit = { ...overrides.audit, enabled: false };
const mount = tarboxMount({
  url: db.url, tenant: 'bench', mountpoint, overrides,
  logFile: path.join(runDir, 'mount.log'),
  nodeArgs: profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
});
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await mount.stop().catch((err) => log(`stopping the mount: ${err}`));
  await db.close().catch((err) => log(`dropping the database: ${err}`));
  if (profile) log(`profiles kept in ${profileDir}`);
  else fs.rmSync(runDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
try {
  await mount.start();
} catch (err) {
  log(String(err));
  await stop();
}
process.stdout.write(`${JSON.stringify({ mountpoint, url: db.url, mountPid: mount.pid, runDir })}\n`);
setInterval(() => {}, 1 << 30);
