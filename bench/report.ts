// Turning measurements into the summary table (text) and the JSON document.
import type { CeilingResult } from './pg-ceiling.js';
import type { MachineInfo } from './machine.js';
import type { MetricSpec, TargetKind } from './types.js';
import { median } from './util.js';

export interface MetricResult {
  workload: string;
  metric: MetricSpec;
  mount: number[];
  native: number[];
  floor: number[];
  mountMedian: number;
  nativeMedian: number;
  floorMedian: number;
  /** Speed of the mount relative to native: mount/native for rates, native/mount for seconds. */
  speedRatio: number;
  goalMet: boolean | null;
}

export interface WorkloadRun {
  workload: string;
  target: TargetKind;
  repetition: number;
  values: Record<string, number>;
  details?: Record<string, unknown>;
  loadAverage: { before: number[]; after: number[] };
  error?: string;
}

/** Speed of a against b: a/b for rates, b/a for seconds. */
export function speedOf(metric: MetricSpec, a: number, b: number): number {
  return metric.higherIsBetter ? a / b : b / a;
}

export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(ratio < 0.1 ? 3 : 2)}x` : '-';
}

export function summarize(workload: string, metric: MetricSpec, runs: WorkloadRun[]): MetricResult {
  const pick = (target: TargetKind) =>
    runs.filter((r) => r.workload === workload && r.target === target && !r.error && metric.key in r.values).map((r) => r.values[metric.key]);
  const mount = pick('mount');
  const native = pick('native');
  const floor = pick('floor');
  const mountMedian = mount.length ? median(mount) : NaN;
  const nativeMedian = native.length ? median(native) : NaN;
  const floorMedian = floor.length ? median(floor) : NaN;
  const speedRatio = speedOf(metric, mountMedian, nativeMedian);
  const goalMet = metric.goal === undefined || !Number.isFinite(mountMedian) ? null
    : metric.higherIsBetter ? mountMedian >= metric.goal : mountMedian <= metric.goal;
  return { workload, metric, mount, native, floor, mountMedian, nativeMedian, floorMedian, speedRatio, goalMet };
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '-';
  if (unit === 's') return value < 0.1 ? `${(value * 1000).toFixed(1)} ms` : `${value.toFixed(2)} s`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

function table(rows: string[][], rightAligned: Set<number>): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function resultsTable(results: MetricResult[]): string {
  const withFloor = results.some((r) => r.floor.length);
  const rows = [['workload', 'mount', 'native', 'mount/native (speed)', 'goal (mount)', 'met',
    ...(withFloor ? ['fuse floor', 'mount/floor (speed)'] : [])]];
  for (const r of results) {
    const goal = r.metric.goal === undefined ? '' : `${r.metric.higherIsBetter ? '>=' : '<='} ${formatValue(r.metric.goal, r.metric.unit)}`;
    rows.push([
      r.metric.label,
      formatValue(r.mountMedian, r.metric.unit),
      formatValue(r.nativeMedian, r.metric.unit),
      formatRatio(r.speedRatio),
      goal,
      r.goalMet === null ? '' : r.goalMet ? 'yes' : 'NO',
      ...(withFloor ? [formatValue(r.floorMedian, r.metric.unit), formatRatio(speedOf(r.metric, r.mountMedian, r.floorMedian))] : []),
    ]);
  }
  return table(rows, new Set([1, 2, 3, 6, 7]));
}

export function machineText(m: MachineInfo, db: { embedded: boolean; settings: Record<string, string> }): string {
  const settings = Object.entries(db.settings).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    `machine:    ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}`,
    `postgres:   ${m.postgres.split(',')[0]} (${db.embedded ? 'embedded, started for this run' : 'configured server'})`,
    `            ${settings}`,
    `native dir: ${m.nativeFs}${m.root ? '' : ' (not root: page cache not dropped for cold reads)'}`,
    `source:     ${m.source}`,
    `load avg:   ${m.loadAverage.join(' ')} at start`,
  ].join('\n');
}

export function ceilingText(c: CeilingResult): string {
  const f = (n: number, unit: string) => formatValue(n, unit);
  return [
    `PostgreSQL alone (postgres.js with TCP_NODELAY, serial, ${Math.round(c.bytes / 2 ** 20)} MiB of 1 MiB rows):`,
    `  binary COPY in, one transaction:      ${f(c.copy_in_one_tx_MBps, 'MB/s')}`,
    `  binary COPY in, 8 MiB transactions:   ${f(c.copy_in_8mib_tx_MBps, 'MB/s')}`,
    `  binary COPY out:                      ${f(c.copy_out_MBps, 'MB/s')}${c.copy_out_cold_MBps === null ? '' : `; ${f(c.copy_out_cold_MBps, 'MB/s')} after dropping the OS page cache`}`,
    `  select 1:                             ${f(c.select1_per_s, 'ops/s')}`,
    `  synchronous commit (tiny insert):     ${f(c.sync_commit_per_s, 'ops/s')}`,
    `  tarbox.create / lookup / unlink:      ${f(c.sql_create_per_s, 'ops/s')} / ${f(c.sql_lookup_per_s, 'ops/s')} / ${f(c.sql_unlink_per_s, 'ops/s')}`,
    `  transaction with a 1-row COPY:        ${c.small_copy_tx_ms_nodelay.toFixed(1)} ms; ${c.small_copy_tx_ms_default.toFixed(1)} ms on a plain postgres.js connection (~88 ms means Nagle: patch missing)`,
  ].join('\n');
}
