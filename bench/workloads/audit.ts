// What the audit log costs: the create/unlink and 1 MiB-file workloads with the tenant's audit
// level off, "writes" and "all" (docs/audit.md). Levels are switched through SQL
// (tarbox.set_audit_level) while mounted; the shim picks the new level up within
// LEVEL_REFRESH_MS. Runs are interleaved (off, writes, all, off, ...) so that the load of a
// shared machine spreads over all three; each metric is the median of its runs.
// On the native directory the level means nothing: the same steps run as a reference.
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { LEVEL_REFRESH_MS } from '../../shim/audit.js';
import { MB, MiB, VerificationError, type Workload, type WorkloadContext } from '../types.js';
import { asNumber, asString, median, randomBytes, seconds } from '../util.js';

const LEVELS = ['off', 'writes', 'all'] as const;
type Level = (typeof LEVELS)[number];

async function setLevel(ctx: WorkloadContext, level: Level): Promise<void> {
  if (ctx.target !== 'mount') return;
  const sql = postgres(ctx.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`select tarbox.use_tenant(${ctx.tenant})`;
    await sql`select tarbox.set_audit_level(${level})`;
  } finally {
    await sql.end({ timeout: 2 });
  }
  await new Promise((resolve) => setTimeout(resolve, LEVEL_REFRESH_MS + 500));
}

export const audit: Workload = {
  name: 'audit',
  description: 'create+unlink of empty files and 1 MiB files written, with audit off, writes and all',
  metrics: LEVELS.flatMap((level) => [
    { key: `create_unlink_${level}`, label: `create+unlink, audit ${level}`, unit: 'ops/s' as const, higherIsBetter: true },
    { key: `files_write_${level}`, label: `1 MiB files write, audit ${level}`, unit: 'MB/s' as const, higherIsBetter: true },
  ]),

  async run(ctx) {
    const files = ctx.quick ? 500 : 2000;
    const big = ctx.quick ? 16 : 50;
    const rounds = ctx.quick ? 1 : 3;
    const runs: Record<string, number[]> = {};
    const add = (key: string, value: number) => { (runs[key] ??= []).push(value); };
    for (let round = 0; round < rounds; round++) {
      for (const level of LEVELS) {
        await setLevel(ctx, level);
        const dir = path.join(ctx.dir, `${level}-${round}`);
        const c = await ctx.step<{ seconds: number; left: number }>('createUnlink', { dir, count: files });
        if (c.left !== 0) throw new VerificationError(`${c.left} files left after unlinking all`);
        add(`create_unlink_${level}`, files / c.seconds);
        const w = await ctx.step<{ seconds: number; sizes: number }>('writeFiles', { dir, count: big });
        if (w.sizes !== big * MiB) throw new VerificationError(`wrote ${w.sizes} bytes, expected ${big * MiB}`);
        add(`files_write_${level}`, (big * MiB) / MB / w.seconds);
      }
    }
    await setLevel(ctx, 'writes');
    const values = Object.fromEntries(Object.entries(runs).map(([key, v]) => [key, median(v)]));
    const ratio = (key: string, level: Level) => values[`${key}_${level}`] / values[`${key}_off`];
    return {
      values,
      details: {
        files, big_files: big, rounds, runs,
        // the goal: writes within 15% of off, all within 30%
        slowdown: Object.fromEntries(['create_unlink', 'files_write'].flatMap((key) =>
          (['writes', 'all'] as const).map((level) => [`${key}_${level}`, Number((1 - ratio(key, level)).toFixed(3))]))),
      },
    };
  },

  steps: {
    createUnlink(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      fs.mkdirSync(dir, { recursive: true });
      const paths = Array.from({ length: count }, (_, i) => path.join(dir, `e${i}`));
      const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
      const t0 = seconds();
      for (const p of paths) fs.closeSync(fs.openSync(p, flags, 0o644));
      for (const p of paths) fs.unlinkSync(p);
      const elapsed = seconds() - t0;
      return { seconds: elapsed / 2, left: fs.readdirSync(dir).length };
    },

    writeFiles(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      fs.mkdirSync(dir, { recursive: true });
      const data = randomBytes(count * MiB);
      const t0 = seconds();
      for (let i = 0; i < count; i++) {
        const fd = fs.openSync(path.join(dir, `f${i}`), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
        let done = 0;
        while (done < MiB) done += fs.writeSync(fd, data, i * MiB + done, MiB - done, done);
        fs.closeSync(fd);
      }
      const elapsed = seconds() - t0;
      let sizes = 0;
      for (let i = 0; i < count; i++) sizes += fs.statSync(path.join(dir, `f${i}`)).size;
      return { seconds: elapsed, sizes };
    },
  },
};
