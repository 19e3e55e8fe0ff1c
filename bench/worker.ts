// Child process that runs one step of one workload: node dist/bench/worker.js '<json job>'.
// The job is {workload, step, args}; the step's result is printed as one JSON line on stdout.
// Running steps here keeps the driver's event loop (and anything else it does) out of the timing.
import { workloads } from './workloads/index.js';

const job = JSON.parse(process.argv[2] ?? '{}') as { workload: string; step: string; args: Record<string, unknown> };
const workload = workloads.find((w) => w.name === job.workload);
const step = workload?.steps[job.step];
if (!step) {
  process.stderr.write(`worker: unknown step ${job.workload}/${job.step}\n`);
  process.exit(2);
}
try {
  const result = await step(job.args ?? {});
  process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
} catch (err) {
  const e = err as Error;
  process.stdout.write(JSON.stringify({ ok: false, name: e.name, message: e.message ?? String(err), code: (err as { code?: string }).code }) + '\n');
  process.exitCode = 1;
}
