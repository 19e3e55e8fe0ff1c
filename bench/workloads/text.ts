// Text storage (issue 5, docs/text-storage.md):
// - storage growth of 1,000 one-line edits of a 10,000-line (~500 KB) file, each checkpointed
//   as a layer and packed, from PostgreSQL's relation sizes (goal <= 2 MB);
// - diff speed between two 1,000,000-line versions that differ in 1% of their lines, from
//   the stored line ids (goal >= 2M lines/s);
// - text vs the same bytes in chunks through the mount: write, then cold read of files whose
//   layer was packed against files still in chunks (goal: text within 1.5x).
// Growth and diff act through SQL (as the CLI does); on a native directory only the
// write/read steps run.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { diffFile, fetchIds, diffIds, fileEdits } from '../../cli/text-diff.js';
import { MB, VerificationError, type Workload } from '../types.js';
import { asNumber, asString, seconds, sha256 } from '../util.js';

/** A line of pseudo-code, different for every (file, line). */
const codeLine = (file: number, i: number) =>
  `    result_${i} = compute(${file}, ${i}, "${crypto.createHash('md5').update(`${file}:${i}`).digest('hex').slice(0, 16)}")\n`;

function textFile(file: number, bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) { const l = codeLine(file, i); lines.push(l); size += l.length; }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

const TABLES = ['chunks', 'file_blocks', 'inodes', 'dentries', 'xattrs', 'layers', 'lines', 'text_versions', 'packed_layers'];

async function relationBytes(sql: postgres.Sql): Promise<number> {
  const [{ bytes }] = await sql<{ bytes: string }[]>`
    select sum(pg_total_relation_size(format('tarbox_private.%I', t)))::bigint as bytes from unnest(${TABLES}::text[]) t`;
  return Number(bytes);
}

async function vacuum(sql: postgres.Sql, full: boolean): Promise<void> {
  for (const t of TABLES) await sql.unsafe(`vacuum ${full ? '(full) ' : ''}tarbox_private.${t}`);
}

export const text: Workload = {
  name: 'text',
  description: 'text storage: growth of 1,000 one-line edits as layers; 1M-line diff; text vs chunks write/read',
  metrics: [
    { key: 'text_growth', label: 'growth, 1,000 one-line edits of 10,000 lines', unit: 'MB', higherIsBetter: false, goal: 2 },
    { key: 'text_diff', label: 'diff, 2 x 1M lines, 1% changed', unit: 'lines/s', higherIsBetter: true, goal: 2_000_000 },
    { key: 'text_write', label: 'write text files', unit: 'MB/s', higherIsBetter: true },
    { key: 'chunk_write', label: 'write same bytes (chunks)', unit: 'MB/s', higherIsBetter: true },
    { key: 'text_read_cold', label: 'read packed text, cold', unit: 'MB/s', higherIsBetter: true },
    { key: 'chunk_read_cold', label: 'read same bytes from chunks, cold', unit: 'MB/s', higherIsBetter: true },
  ],

  async run(ctx) {
    const files = ctx.quick ? 20 : 100;
    const bytes = 256 * 1024;
    const total = files * bytes;
    const textDir = path.join(ctx.dir, 'text');
    const chunkDir = path.join(ctx.dir, 'chunks');
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};

    const admin = postgres(ctx.databaseUrl, { max: 1, onnotice: () => {} });
    const [{ id }] = await admin<{ id: number }[]>`select tarbox.tenant_id(${ctx.tenant})::int as id`;
    const sql = postgres(ctx.databaseUrl, { max: 1, onnotice: () => {}, connection: { 'tarbox.tenant_id': String(id) } });
    const rel = '/' + path.basename(ctx.dir);
    try {
      // write: the text files, checkpoint + pack (mount only), then the same bytes under other names
      const wText = await ctx.step<{ seconds: number }>('write', { dir: textDir, files, bytes });
      if (ctx.target === 'mount') {
        await sql`select tarbox.create_layer('text bench')`;
        const [packed] = await sql`select * from tarbox.pack_text()`;
        details.packed = { ...packed };
      }
      const wChunks = await ctx.step<{ seconds: number }>('write', { dir: chunkDir, files, bytes });
      await ctx.cold();
      const rText = await ctx.step<{ seconds: number }>('read', { dir: textDir, files, bytes });
      await ctx.cold();
      const rChunks = await ctx.step<{ seconds: number }>('read', { dir: chunkDir, files, bytes });
      Object.assign(values, {
        text_write: total / MB / wText.seconds, chunk_write: total / MB / wChunks.seconds,
        text_read_cold: total / MB / rText.seconds, chunk_read_cold: total / MB / rChunks.seconds,
      });
      details.textVsChunks = { write: wChunks.seconds / wText.seconds, readCold: rChunks.seconds / rText.seconds };
      if (ctx.target !== 'mount') return { values, details };

      // storage growth: one-line edits, each a layer, packed as the mount does after a checkpoint
      const edits = ctx.quick ? 100 : 1000;
      const lines = Array.from({ length: 10_000 }, (_, i) => codeLine(7, i).slice(0, 49) + '\n');
      const doc = `${rel}/growth.txt`;
      await sql`select tarbox.write_file(${doc}, ${Buffer.from(lines.join(''))})`;
      await sql`select tarbox.create_layer('growth base')`;
      await sql`select tarbox.pack_text()`;
      await vacuum(admin, true);
      const before = await relationBytes(admin);
      const t0 = seconds();
      for (let e = 0; e < edits; e++) {
        lines[(e * 7919) % lines.length] = `edit ${e}: ${'x'.repeat(40)}\n`;
        await sql`select tarbox.write_file(${doc}, ${Buffer.from(lines.join(''))})`;
        await sql`select tarbox.create_layer(${`edit ${e}`})`;
        await sql`select tarbox.pack_text()`;
        if (e % 20 === 19) await vacuum(admin, false); // as autovacuum would, for the released chunks
      }
      const editSeconds = seconds() - t0;
      await vacuum(admin, false);
      const raw = await relationBytes(admin);
      await vacuum(admin, true);
      const live = await relationBytes(admin);
      const [check] = await sql<{ ok: boolean }[]>`select tarbox.read_file(${doc}) = ${Buffer.from(lines.join(''))} as ok`;
      if (!check.ok) throw new VerificationError('growth.txt does not read back as written');
      values.text_growth = (live - before) / 1e6 * (1000 / edits);
      details.growth = { edits, rawMB: (raw - before) / 1e6, liveMB: (live - before) / 1e6, secondsPerEdit: editSeconds / edits,
        fullCopiesMB: (edits * lines.join('').length) / 1e6 };

      // diff speed: two 1M-line versions (written and packed in SQL; through the mount this would take minutes)
      const n = ctx.quick ? 100_000 : 1_000_000;
      const big = `${rel}/big.txt`;
      const make = (changed: boolean) => sql`
        select tarbox.write_file(${big}, convert_to(string_agg(
          case when ${changed} and i % 100 = 42 then 'changed line ' || i else 'line ' || i || ' of the big file, unchanged' end || E'\n',
          '' order by i), 'UTF8'))
          from generate_series(1, ${n}) i`;
      await make(false);
      const [{ layer_id: v1 }] = await sql<{ layer_id: number }[]>`select layer_id from tarbox.create_layer('1M lines')`;
      await make(true);
      const [{ layer_id: v2 }] = await sql<{ layer_id: number }[]>`select layer_id from tarbox.create_layer('1% changed')`;
      const p0 = seconds();
      await sql`select tarbox.pack_text()`;
      details.packTwoMillionLinesSeconds = seconds() - p0;
      // as `tarbox diff` computes it: v2 is stored as a delta against v1, so from the stored hunks
      const d0 = seconds();
      const stored = await fileEdits(sql as unknown as postgres.Sql<{}>, big, v1, v2);
      const d1 = seconds();
      // the general path (versions not stored against each other): both whole id lists
      const ids = await fetchIds(sql as unknown as postgres.Sql<{}>, big, v1, v2);
      const d2 = seconds();
      const whole = diffIds(ids.a!, ids.b!);
      const d3 = seconds();
      const patch = await diffFile(sql as unknown as postgres.Sql<{}>, big, v1, v2, 3);
      const d4 = seconds();
      if (patch.insertions !== n / 100 || patch.deletions !== n / 100) {
        throw new VerificationError(`diff found +${patch.insertions} -${patch.deletions}, expected ${n / 100} each`);
      }
      if (stored!.edits.length !== whole.length) throw new VerificationError(`${stored!.edits.length} stored edits, ${whole.length} from whole lists`);
      values.text_diff = (2 * n) / (d1 - d0);
      details.diff = { lines: 2 * n, hunks: patch.hunks.length, edits: whole.length, storedDeltaSeconds: d1 - d0,
        wholeLists: { fetchIdsSeconds: d2 - d1, diffSeconds: d3 - d2, linesPerSecond: (2 * n) / (d3 - d1) },
        wholePatchWithLinesSeconds: d4 - d3, wholePatchLinesPerSecond: (2 * n) / (d4 - d3) };
      return { values, details };
    } finally {
      await sql.end();
      await admin.end();
    }
  },

  steps: {
    write(args) {
      const dir = asString(args.dir, 'dir');
      const files = asNumber(args.files, 'files');
      const bytes = asNumber(args.bytes, 'bytes');
      const data = Array.from({ length: files }, (_, f) => textFile(f, bytes)); // made before the clock starts
      fs.mkdirSync(dir, { recursive: true });
      const t0 = seconds();
      for (let f = 0; f < files; f++) fs.writeFileSync(path.join(dir, `f${f}.py`), data[f]);
      return { seconds: seconds() - t0 };
    },
    read(args) {
      const dir = asString(args.dir, 'dir');
      const files = asNumber(args.files, 'files');
      const bytes = asNumber(args.bytes, 'bytes');
      const got: Buffer[] = [];
      const t0 = seconds();
      for (let f = 0; f < files; f++) got.push(fs.readFileSync(path.join(dir, `f${f}.py`)));
      const elapsed = seconds() - t0;
      for (let f = 0; f < files; f++) {
        if (sha256(got[f]) !== sha256(textFile(f, bytes))) throw new VerificationError(`${dir}/f${f}.py does not read back as written`);
      }
      return { seconds: elapsed };
    },
  },
};
