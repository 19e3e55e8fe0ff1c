// Layers (issue 3): checkpoint and switch time with 10,000 and 100,000 files (through SQL, as
// the control files and the CLI call them), and cold stat and read rates of the same tree
// through the mount with 1 layer and with 101 layers in the history (goal: within 1.5x).
// Native directories have no layers: the workload reports nothing for them.
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { VerificationError, type Workload } from '../types.js';
import { asNumber, asString, median, seconds } from '../util.js';

const file = (dir: string, i: number) => path.join(dir, `d${i % 50}`, `f${i}`);

/** Milliseconds of each call, median of `times`. */
async function timed(times: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await call(i);
    ms.push(performance.now() - start);
  }
  return median(ms);
}

export const layers: Workload = {
  name: 'layers',
  description: 'checkpoint/switch at 10k and 100k files; cold stat/read with 1 and 101 layers',
  metrics: [
    { key: 'checkpoint_10k', label: 'checkpoint, 10,000 files', unit: 's', higherIsBetter: false, goal: 0.02 },
    { key: 'switch_10k', label: 'switch, 10,000 files', unit: 's', higherIsBetter: false, goal: 0.02 },
    { key: 'checkpoint_100k', label: 'checkpoint, 100,000 files', unit: 's', higherIsBetter: false, goal: 0.02 },
    { key: 'switch_100k', label: 'switch, 100,000 files', unit: 's', higherIsBetter: false, goal: 0.02 },
    { key: 'stat_1', label: 'stat cold, 1 layer', unit: 'ops/s', higherIsBetter: true },
    { key: 'stat_101', label: 'stat cold, 101 layers', unit: 'ops/s', higherIsBetter: true },
    { key: 'read_1', label: 'read cold, 1 layer', unit: 'files/s', higherIsBetter: true },
    { key: 'read_101', label: 'read cold, 101 layers', unit: 'files/s', higherIsBetter: true },
  ],

  async run(ctx) {
    if (ctx.target !== 'mount') return { values: {} as Record<string, number> };
    const count = ctx.quick ? 1000 : 10000;
    const big = ctx.quick ? 10000 : 100000;
    const admin = postgres(ctx.databaseUrl, { max: 1, onnotice: () => {} });
    const [{ id }] = await admin`select tarbox.tenant_id(${ctx.tenant})::int as id`;
    await admin.end();
    const sql = postgres(ctx.databaseUrl, { max: 1, onnotice: () => {}, connection: { 'tarbox.tenant_id': String(id) } });
    try {
      await ctx.step('tree', { dir: ctx.dir, count });
      const rel = '/' + path.basename(ctx.dir);
      const touch = (i: number) => sql`select tarbox.write(${Buffer.from(`${rel}/d${i % 50}/f${i % count}`)}, 0, ${Buffer.from('y')})`;

      // an untimed first pass pays the one-time costs (atime after the writes, plan warm-up)
      await ctx.cold();
      await ctx.step('lookups', { dir: ctx.dir, count });
      await ctx.cold();
      const one = await ctx.step<{ stat: number; read: number }>('lookups', { dir: ctx.dir, count });

      // checkpoint and switch with the tree in place (one file changed before each checkpoint)
      const checkpoint10k = await timed(5, async (i) => { await touch(i); await sql`select tarbox.create_layer('bench')`; });
      const [{ a, b }] = await sql`select min(layer_id)::int as a, max(layer_id)::int as b from tarbox.list_layers() where frozen_at is not null`;
      const switch10k = await timed(6, (i) => sql`select tarbox.switch_layer(${i % 2 ? b : a})`);

      // 100 layers of history, 20 files changed in each, then the same reads again
      for (let layer = 0; layer < 100; layer++) {
        for (let j = 0; j < 20; j++) await touch(layer * 20 + j);
        await sql`select tarbox.create_layer(${`history ${layer}`})`;
      }
      const [{ depth }] = await sql`select cardinality(layer_chain) as depth from tarbox_private.tenants where tenant_id = ${id}`;
      await ctx.cold();
      await ctx.step('lookups', { dir: ctx.dir, count });
      await ctx.cold();
      const many = await ctx.step<{ stat: number; read: number }>('lookups', { dir: ctx.dir, count });

      // grow the tree to `big` files on the server side (through the mount would take minutes)
      await sql`select count(tarbox.create(convert_to(${rel} || '/d' || (i % 50) || '/g' || i, 'UTF8')))
                  from generate_series(1, ${big - count}) i`;
      const checkpoint100k = await timed(5, async (i) => { await touch(i); await sql`select tarbox.create_layer('bench')`; });
      const switch100k = await timed(6, (i) => sql`select tarbox.switch_layer(${i % 2 ? b : a})`);
      return {
        values: {
          checkpoint_10k: checkpoint10k / 1000, switch_10k: switch10k / 1000,
          checkpoint_100k: checkpoint100k / 1000, switch_100k: switch100k / 1000,
          stat_1: count / one.stat, stat_101: count / many.stat, read_1: count / one.read, read_101: count / many.read,
        },
        details: { files: count, bigFiles: big, layersInView: Number(depth), statSlowdown: one.stat ? many.stat / one.stat : null,
          readSlowdown: one.read ? many.read / one.read : null },
      };
    } finally {
      await sql.end();
    }
  },

  steps: {
    tree(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      for (let d = 0; d < 50; d++) fs.mkdirSync(path.join(dir, `d${d}`), { recursive: true });
      const content = Buffer.alloc(1024, 'x');
      for (let i = 0; i < count; i++) fs.writeFileSync(file(dir, i), content);
      return {};
    },
    lookups(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      let t0 = seconds();
      for (let i = 0; i < count; i++) if (!fs.statSync(file(dir, i)).isFile()) throw new VerificationError(`${file(dir, i)}: not a file`);
      const stat = seconds() - t0;
      t0 = seconds();
      for (let i = 0; i < count; i++) if (fs.readFileSync(file(dir, i)).length !== 1024) throw new VerificationError(`${file(dir, i)}: wrong size`);
      const read = seconds() - t0;
      return { stat, read };
    },
  },
};
