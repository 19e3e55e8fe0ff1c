// What the numbers were measured on, and the one cache control the benchmark uses.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  nativeFs: string;
  root: boolean;
  loadAverage: number[];
  /** The commit of the tree and whether the code under test had uncommitted changes. */
  source: string;
}

/** The filesystem a path lives on, from /proc/self/mounts (longest matching mount point). */
export function filesystemOf(p: string): string {
  const real = fs.realpathSync(p);
  let best = { mnt: '', desc: 'unknown' };
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [dev, mnt, type] = line.split(' ');
    if (!mnt) continue;
    const inside = real === mnt || real.startsWith(mnt.endsWith('/') ? mnt : mnt + '/');
    if (inside && mnt.length >= best.mnt.length) best = { mnt, desc: `${type} on ${dev} (${mnt})` };
  }
  return best.desc;
}

/** Read-only git queries: HEAD and the count of changed files in the code the benchmark runs. */
function sourceState(): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const git = (args: string[]) => spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' });
  const head = git(['rev-parse', '--short', 'HEAD']);
  if (head.status !== 0) return 'unknown (not a git checkout)';
  const status = git(['--no-optional-locks', 'status', '--porcelain', '--', 'shim', 'db', 'cli', 'test/fixtures']);
  const changed = status.stdout.split('\n').filter(Boolean).length;
  return `${head.stdout.trim()}${changed ? ` + ${changed} uncommitted changes in shim/ db/ cli/ test/fixtures/` : ''}`;
}

export function machineInfo(postgresVersion: string, nativeDir: string): MachineInfo {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: postgresVersion,
    nativeFs: filesystemOf(nativeDir),
    root: process.getuid?.() === 0,
    loadAverage: loadAverage(),
    source: sourceState(),
  };
}

export function loadAverage(): number[] {
  return os.loadavg().map((n) => Math.round(n * 100) / 100);
}

/** Write back dirty pages and drop the page cache, dentries and inodes (root only). */
export function dropCaches(): boolean {
  if (process.getuid?.() !== 0) return false;
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}
