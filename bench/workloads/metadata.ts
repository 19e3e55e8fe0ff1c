// Metadata in one directory from one process: create N empty files (open O_CREAT|O_EXCL + close),
// stat them all twice (the second pass is "stat cached": whatever the kernel and the shim still
// hold from the first pass, with the default attr/entry timeouts), re-stat in batches right after
// a stat ("stat hot": certainly cached), list the directory, unlink all.
import fs from 'node:fs';
import path from 'node:path';
import { VerificationError, type Workload } from '../types.js';
import { asNumber, asString, seconds } from '../util.js';

const name = (i: number) => `e${String(i).padStart(5, '0')}`;

interface Result {
  create: number; stat: number; statCached: number; statHot: number; readdir: number; unlink: number;
  listed: number; unknown: number; left: number;
}

export const metadata: Workload = {
  name: 'metadata',
  description: 'N empty files in one directory: create, stat x2, readdir, unlink',
  metrics: [
    { key: 'create', label: 'create (open O_CREAT+close)', unit: 'ops/s', higherIsBetter: true, goal: 3500 },
    { key: 'stat', label: 'stat, first pass', unit: 'ops/s', higherIsBetter: true },
    { key: 'stat_cached', label: 'stat cached (second pass)', unit: 'ops/s', higherIsBetter: true, goal: 50000 },
    { key: 'stat_hot', label: 'stat, re-stat within 1 s', unit: 'ops/s', higherIsBetter: true, goal: 50000 },
    { key: 'readdir', label: 'readdir', unit: 'entries/s', higherIsBetter: true },
    { key: 'unlink', label: 'unlink', unit: 'ops/s', higherIsBetter: true, goal: 5000 },
  ],

  async run(ctx) {
    const count = ctx.quick ? 1000 : 10000;
    const r = await ctx.step<Result>('all', { dir: ctx.dir, count });
    if (r.listed !== count || r.unknown !== 0) throw new VerificationError(`readdir listed ${r.listed} entries (${r.unknown} unknown); created ${count}`);
    if (r.left !== 0) throw new VerificationError(`${r.left} entries left after unlinking all`);
    return {
      values: {
        create: count / r.create, stat: count / r.stat, stat_cached: count / r.statCached, stat_hot: count / r.statHot,
        readdir: count / r.readdir, unlink: count / r.unlink,
      },
      details: { files: count, seconds: r },
    };
  },

  steps: {
    all(args): Result {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      const paths = Array.from({ length: count }, (_, i) => path.join(dir, name(i)));
      const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;

      let t0 = seconds();
      for (const p of paths) fs.closeSync(fs.openSync(p, flags, 0o644));
      const create = seconds() - t0;

      const statPass = () => {
        const start = seconds();
        for (const p of paths) {
          const st = fs.statSync(p);
          if (!st.isFile() || st.size !== 0) throw new VerificationError(`${p}: not an empty regular file`);
        }
        return seconds() - start;
      };
      const stat = statPass();
      const statCached = statPass();
      // The second pass over 10,000 entries starts more than attr_timeout (1 s by default) after
      // the first stat of most of them. This pass re-stats batches of 500 right after stat'ing
      // them (untimed), so every timed stat finds what the kernel and the shim cached.
      let statHot = 0;
      for (let from = 0; from < count; from += 500) {
        const batch = paths.slice(from, from + 500);
        for (const p of batch) fs.statSync(p);
        const start = seconds();
        for (const p of batch) fs.statSync(p);
        statHot += seconds() - start;
      }

      t0 = seconds();
      const names = fs.readdirSync(dir);
      const readdir = seconds() - t0;
      const expected = new Set(paths.map((p) => path.basename(p)));
      const listed = names.length;
      const unknown = names.filter((n) => !expected.has(n)).length;

      t0 = seconds();
      for (const p of paths) fs.unlinkSync(p);
      const unlink = seconds() - t0;
      const left = fs.readdirSync(dir).length;

      return { create, stat, statCached, statHot, readdir, unlink, listed, unknown, left };
    },
  },
};
