// The native-mount path (docs/native-mounts.md) against the host directory itself: the 1 MiB
// files and the create/stat/unlink workloads, run unchanged (their own steps) in a directory of
// a read-write native mount on the tarbox mount, and in a plain directory on the native target.
// The goal of issue #7 is a ratio: within 1.3x of the host directory (speed ratio >= 0.77).
import path from 'node:path';
import type { Workload, WorkloadContext } from '../types.js';
import { metadata } from './metadata.js';
import { smallFiles } from './small-files.js';

/** The native mount the driver configures on the benchmark's tarbox mount (bench/run.ts). */
export const NATIVE_BENCH_PATH = '/native-bench';

/** The workload's directory: inside the native mount on the tarbox mount, else as given. */
function dirFor(ctx: WorkloadContext): string {
  if (ctx.target !== 'mount') return ctx.dir;
  return path.join(path.dirname(ctx.dir), NATIVE_BENCH_PATH.slice(1), path.basename(ctx.dir));
}

/** The same context with a fresh directory `sub` in the native mount (mount) or in ctx.dir (native). */
async function inNativeMount(ctx: WorkloadContext, sub: string): Promise<WorkloadContext> {
  const dir = path.join(dirFor(ctx), sub);
  await ctx.step('mkdir', { dir });
  return { ...ctx, dir };
}

const prefixed = (prefix: string, values: Record<string, number>) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}${k}`, v]));

export const nativeMount: Workload = {
  name: 'native-mount',
  description: 'files-1mib and metadata inside a rw native mount (mount) vs the host directory (native)',
  metrics: [
    { key: 'native_files_write', label: 'native mount: 1 MiB files write', unit: 'MB/s', higherIsBetter: true },
    { key: 'native_files_read_cold', label: 'native mount: 1 MiB files read, cold', unit: 'MB/s', higherIsBetter: true },
    { key: 'native_create', label: 'native mount: create', unit: 'ops/s', higherIsBetter: true },
    { key: 'native_stat', label: 'native mount: stat, first pass', unit: 'ops/s', higherIsBetter: true },
    { key: 'native_stat_hot', label: 'native mount: stat, re-stat within 1 s', unit: 'ops/s', higherIsBetter: true },
    { key: 'native_unlink', label: 'native mount: unlink', unit: 'ops/s', higherIsBetter: true },
  ],

  async run(ctx) {
    const files = await smallFiles.run(await inNativeMount(ctx, 'files'));
    const meta = await metadata.run(await inNativeMount(ctx, 'metadata'));
    const f = prefixed('native_', files.values);
    const m = prefixed('native_', meta.values);
    return {
      values: {
        native_files_write: f.native_files_write, native_files_read_cold: f.native_files_read_cold,
        native_create: m.native_create, native_stat: m.native_stat, native_stat_hot: m.native_stat_hot, native_unlink: m.native_unlink,
      },
      details: { files: files.details, metadata: meta.details },
    };
  },

  steps: {
    ...smallFiles.steps,
    all: metadata.steps.all,
    async mkdir(args) {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(String(args.dir), { recursive: true });
      return {};
    },
  },
};
