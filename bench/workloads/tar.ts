// Extract a tar of many small files in nested directories with GNU tar (its own process, as an
// agent's `tar -xf` would run), then compare every extracted file with the manifest by sha256.
// The archive is generated once from a fixed seed and kept in the system temp dir, so every run
// (and every machine) extracts the same bytes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VerificationError, type Workload } from '../types.js';
import { asString, seconds, sha256 } from '../util.js';

const SEED = 20240601;
const MAX_FILE = 20 * 1024;

interface Manifest { files: Record<string, string>; dirs: string[]; bytes: number }

/** mulberry32: a tiny deterministic PRNG (quality is irrelevant here, reproducibility is not). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The archive and its manifest for `count` files, generated on first use. */
export function tarFixture(count: number): { tar: string; manifest: Manifest } {
  const base = path.join(os.tmpdir(), 'tarbox-bench-fixtures', `tree-${SEED}-${count}`);
  const tar = `${base}.tar`;
  const manifestFile = `${base}.json`;
  if (fs.existsSync(tar) && fs.existsSync(manifestFile)) {
    return { tar, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Manifest };
  }
  const rand = prng(SEED + count);
  const staging = `${base}.staging-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  // a tree like a source checkout: ~1 directory per 15 files, up to 5 levels deep
  const dirs: string[] = ['.'];
  const dirCount = Math.max(4, Math.round(count / 15));
  for (let i = 0; i < dirCount; i++) {
    let parent = dirs[Math.floor(rand() * dirs.length)];
    while (parent.split('/').length > 5) parent = path.dirname(parent);
    const dir = path.join(parent, `d${i}`);
    fs.mkdirSync(path.join(staging, dir));
    dirs.push(dir);
  }
  const files: Record<string, string> = {};
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const dir = dirs[Math.floor(rand() * dirs.length)];
    const file = path.join(dir, `f${i}.${['ts', 'py', 'md', 'json', 'txt', 'bin'][i % 6]}`);
    const size = Math.floor(rand() * (MAX_FILE + 1));
    const data = Buffer.allocUnsafe(size);
    for (let j = 0; j < size; j++) data[j] = (rand() * 256) | 0;
    fs.writeFileSync(path.join(staging, file), data);
    files[file] = sha256(data);
    bytes += size;
  }
  const tmpTar = `${tar}.${process.pid}`;
  const res = spawnSync('tar', ['-cf', tmpTar, '--sort=name', '-C', staging, '.'], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`tar -cf failed: ${res.stderr}`);
  fs.writeFileSync(manifestFile, JSON.stringify({ files, dirs: dirs.slice(1), bytes }));
  fs.renameSync(tmpTar, tar);
  fs.rmSync(staging, { recursive: true, force: true });
  return { tar, manifest: { files, dirs: dirs.slice(1), bytes } };
}

export const tarExtract: Workload = {
  name: 'tar',
  description: 'tar -xf of small files (0-20 KiB) in nested directories',
  metrics: [
    { key: 'tar_seconds', label: 'tar -xf', unit: 's', higherIsBetter: false },
    { key: 'tar_files', label: 'tar -xf', unit: 'files/s', higherIsBetter: true },
  ],

  async run(ctx) {
    const count = ctx.quick ? 1000 : 3000;
    const { tar, manifest } = tarFixture(count);
    const x = await ctx.step<{ seconds: number }>('extract', { tar, dir: ctx.dir });
    const v = await ctx.step<{ files: Record<string, string> }>('hash-tree', { dir: ctx.dir });
    const expected = Object.entries(manifest.files);
    const wrong = expected.filter(([file, hash]) => v.files[file] !== hash);
    const extra = Object.keys(v.files).filter((f) => !(f in manifest.files)).length;
    if (wrong.length || extra) {
      throw new VerificationError(`${wrong.length} of ${expected.length} files differ or are missing (e.g. ${wrong[0]?.[0]}), ${extra} unexpected`);
    }
    return {
      values: { tar_seconds: x.seconds, tar_files: count / x.seconds },
      details: { files: count, dirs: manifest.dirs.length, bytes: manifest.bytes },
    };
  },

  steps: {
    extract(args) {
      const tar = asString(args.tar, 'tar');
      const dir = asString(args.dir, 'dir');
      const t0 = seconds();
      const res = spawnSync('tar', ['-xf', tar, '-C', dir], { encoding: 'utf8' });
      const elapsed = seconds() - t0;
      if (res.status !== 0) throw new Error(`tar -xf exited with ${res.status}: ${res.stderr.trim()}`);
      return { seconds: elapsed };
    },

    'hash-tree'(args) {
      const dir = asString(args.dir, 'dir');
      const files: Record<string, string> = {};
      const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
          const child = rel === '.' ? entry.name : path.join(rel, entry.name);
          if (entry.isDirectory()) walk(child);
          else files[child] = sha256(fs.readFileSync(path.join(dir, child)));
        }
      };
      walk('.');
      return { files };
    },
  },
};
