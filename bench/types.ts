// The contract between the benchmark driver (run.ts) and its workloads.
//
// A workload is one module in bench/workloads/ registered in bench/workloads/index.ts. It has
// two halves that run in different processes:
// - `run(ctx)` runs in the driver. It never makes timed syscalls itself: it asks for `steps`,
//   each executed in a fresh child process (bench/worker.ts) so the driver's event loop, and the
//   mount's, stay out of the measurement. Between steps it may ask for a cold cache (`ctx.cold()`).
// - `steps` run in that child: plain synchronous fs calls timed with hrtime, returning JSON.
// The driver runs every workload once on the tarbox mount and once on a native directory and
// pairs the metrics by key.

export type TargetKind = 'mount' | 'native' | 'floor';

export interface MetricSpec {
  /** Stable key (JSON output, pairing of mount and native). */
  key: string;
  /** What the table shows. */
  label: string;
  unit: 'MB/s' | 'ops/s' | 'files/s' | 'entries/s' | 's' | 'MB' | 'lines/s';
  /** Higher is better (throughputs, rates) or lower is better (seconds). */
  higherIsBetter: boolean;
  /** The target for the mount, in `unit`; absent when the core issue sets none. */
  goal?: number;
}

export interface WorkloadContext {
  target: TargetKind;
  /** A fresh, empty directory on the target for this workload. */
  dir: string;
  /** Smaller sizes for a smoke run. */
  quick: boolean;
  /** A directory on the local disk that survives both targets of one run (fixtures). */
  scratch: string;
  /** The benchmark database and the mounted tenant (for workloads that also act through SQL). */
  databaseUrl: string;
  tenant: string;
  /** Run one of this workload's steps in a fresh child process; resolves with its JSON result. */
  step<T>(name: string, args: Record<string, unknown>): Promise<T>;
  /** Make the next step start cold: restart the mount process (mount) and drop the page cache (root). */
  cold(): Promise<void>;
  log(message: string): void;
}

export type StepFn = (args: Record<string, unknown>) => unknown | Promise<unknown>;

export interface Workload {
  name: string;
  description: string;
  metrics: MetricSpec[];
  /** Driver side: returns a value per metric key (in the metric's unit) plus optional details. */
  run(ctx: WorkloadContext): Promise<{ values: Record<string, number>; details?: Record<string, unknown> }>;
  /** Child side: the timed parts. */
  steps: Record<string, StepFn>;
}

/** Thrown when read-back data or a listing does not match what was written: the run fails. */
export class VerificationError extends Error {
  override name = 'VerificationError';
}

export const MB = 1_000_000;
export const MiB = 1024 * 1024;
