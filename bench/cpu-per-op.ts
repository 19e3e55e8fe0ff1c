// CPU time a FUSE server spends per metadata operation, measured from a client process: a figure
// that load on the machine distorts far less than wall-clock rates (docs/performance.md,
// "Native mounts"). Creates N empty files in DIR, stats them 1.2 s later (past the kernel's
// 1 s caches), unlinks them; prints the client's rate and the server's utime + stime per op.
//   node dist/bench/cpu-per-op.js DIR SERVER_PID [N]
// SERVER_PID: the mount process (`mountPid` of dist/bench/serve.js) or a memfs-server.
import fs from 'node:fs';

const [dir, pid, countArg] = process.argv.slice(2);
if (!dir || !pid) {
  process.stderr.write('usage: node dist/bench/cpu-per-op.js DIR SERVER_PID [N]\n');
  process.exit(2);
}
const count = Number(countArg ?? 5000);
const TICK_US = 10_000; // USER_HZ = 100 on Linux

/** utime + stime of the server, all threads, in µs. */
function serverCpu(): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

function phase(name: string, paths: string[], op: (p: string) => void): void {
  const cpu0 = serverCpu();
  const t0 = process.hrtime.bigint();
  for (const p of paths) op(p);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (serverCpu() - cpu0) / paths.length;
  process.stdout.write(`${name.padEnd(7)} ${Math.round(paths.length / seconds).toString().padStart(7)}/s  server CPU ${cpu.toFixed(0).padStart(5)} µs/op\n`);
}

fs.mkdirSync(dir, { recursive: true });
const paths = Array.from({ length: count }, (_, i) => `${dir}/e${i}`);
phase('create', paths, (p) => fs.closeSync(fs.openSync(p, 'wx')));
await new Promise((resolve) => setTimeout(resolve, 1200));
phase('stat', paths, (p) => fs.statSync(p));
phase('unlink', paths, (p) => fs.unlinkSync(p));
fs.rmdirSync(dir);
