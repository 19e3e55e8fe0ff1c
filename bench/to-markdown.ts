// Render the JSON of one or more runs (npm run bench -- --json-out FILE) as the markdown tables
// used in docs/performance.md:  node dist/bench/to-markdown.js FILE [FILE...]
// With several files, the runs of all files are pooled: each cell is the median of every run.
import fs from 'node:fs';
import { formatValue } from './report.js';
import { median } from './util.js';

interface Row {
  workload: string; key: string; label: string; unit: string; higher_is_better: boolean; goal: number | null;
  mount: number[]; native: number[]; floor: number[];
}
interface Doc { results: Row[]; loadAverage: { start: number[]; end: number[] }; options: { repeat: number } }

const files = process.argv.slice(2);
if (!files.length) {
  process.stderr.write('usage: node dist/bench/to-markdown.js RESULTS.json [...]\n');
  process.exit(2);
}
const docs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Doc);
const withFloor = docs.some((d) => d.results.some((r) => r.floor.length > 0));
const lines = [
  `| workload | mount | mount, range | native | mount/native (speed) | goal (mount) | met |${withFloor ? ' FUSE floor | mount/floor (speed) |' : ''}`,
  `|---|---:|---:|---:|---:|---|---|${withFloor ? '---:|---:|' : ''}`,
];
for (const first of docs[0].results) {
  const same = docs.map((d) => d.results.find((r) => r.key === first.key)).filter((r): r is Row => !!r);
  const pool = (f: (r: Row) => number[]) => same.flatMap(f).filter((v) => Number.isFinite(v));
  const pick = (values: number[]) => (values.length ? median(values) : NaN);
  const mounts = pool((r) => r.mount);
  const mount = pick(mounts);
  const native = pick(pool((r) => r.native));
  const floor = pick(pool((r) => r.floor));
  const range = mounts.length ? `${formatValue(Math.min(...mounts), first.unit)} – ${formatValue(Math.max(...mounts), first.unit)}` : '-';
  const speed = (a: number, b: number) => (first.higher_is_better ? a / b : b / a);
  const times = (r: number) => (Number.isFinite(r) ? `${r.toFixed(r < 0.1 ? 3 : 2)}×` : '-');
  const goal = first.goal === null ? '' : `${first.higher_is_better ? '≥' : '≤'} ${formatValue(first.goal, first.unit)}`;
  const met = first.goal === null ? '' : (first.higher_is_better ? mount >= first.goal : mount <= first.goal) ? 'yes' : '**no**';
  const unitLabel = first.unit === 's' ? `${first.label} (s)` : first.label;
  lines.push(`| ${unitLabel} | ${formatValue(mount, first.unit)} | ${range} | ${formatValue(native, first.unit)} | ${times(speed(mount, native))} | ${goal} | ${met} |${withFloor ? ` ${formatValue(floor, first.unit)} | ${times(speed(mount, floor))} |` : ''}`);
}
process.stdout.write(lines.join('\n') + '\n');
const runs = docs.reduce((n, d) => n + (d.options.repeat ?? 1), 0);
process.stdout.write(`\nmedians of ${runs} runs per target; load average (1 min) at start/end: ${docs.map((d) => `${d.loadAverage.start[0]}/${d.loadAverage.end[0]}`).join(', ')}\n`);
