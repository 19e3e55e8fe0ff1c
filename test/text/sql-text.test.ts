// Text storage through SQL (db/migrations/committed/000006-text-storage.sql): pack_text turns
// the text files of frozen layers into line deltas over lines stored once per tenant; every
// read stays byte-identical, through tarbox.read and through the shim's block path
// (file_blocks + read_chunks).
import test from 'ava';
import { fileEdits } from '../../cli/text-diff.js';
import { B, prng, useDatabase, type Fs } from '../db/_support.js';
import { client } from '../helpers/database.js';

const env = useDatabase(test);

interface Pack { layers: number; text_files: number; binary_files: number; lines_stored: number; lines_released: number }

async function checkpoint(fs: Fs, message: string | null = null): Promise<number> {
  const [row] = await fs.sql<{ layer_id: number }[]>`select layer_id from tarbox.create_layer(${message})`;
  return row.layer_id;
}
async function pack(fs: Fs, maxFile = 64 * 1024 * 1024, maxLine = 65536): Promise<Pack> {
  const [row] = await fs.sql<Pack[]>`select * from tarbox.pack_text(${maxFile}, ${maxLine})`;
  return { ...row };
}
async function switchTo(fs: Fs, id: number): Promise<void> {
  await fs.sql`select tarbox.switch_layer(${id})`;
}
/** Every byte of a file the way the shim reads it: block map, then chunk contents by hash. */
async function readBlocks(fs: Fs, path: string): Promise<Buffer> {
  const attr = await fs.attr(path);
  const [{ bs }] = await fs.sql<{ bs: number }[]>`select (tarbox.statfs()).bsize as bs`;
  const blocks = await fs.sql<{ block_no: number; chunk_hash: Buffer }[]>`
    select block_no, chunk_hash from tarbox.file_blocks(${attr.ino}, 0, ${Math.ceil(attr.size / bs) + 1})`;
  const out = Buffer.alloc(attr.size);
  if (blocks.length === 0) return out;
  const chunks = await fs.sql<{ hash: Buffer; data: Buffer }[]>`
    select hash, data from tarbox.read_chunks(${fs.sql.array(blocks.map((b) => b.chunk_hash), 17)})`;
  const byHash = new Map(chunks.map((c) => [c.hash.toString('hex'), c.data]));
  for (const b of blocks) {
    const data = byHash.get(b.chunk_hash.toString('hex'));
    if (!data) throw new Error(`block ${b.block_no}: no data for ${b.chunk_hash.toString('hex')}`);
    data.copy(out, b.block_no * bs, 0, Math.min(data.length, attr.size - b.block_no * bs));
  }
  return out;
}
async function count(fs: Fs, table: string, extra = ''): Promise<number> {
  const [{ n }] = await env.admin.unsafe<{ n: number }[]>(
    `select count(*)::int as n from tarbox_private.${table} where tenant_id = $1 ${extra}`, [fs.tenantId]);
  return n;
}
async function storedAsText(fs: Fs, path: string): Promise<boolean> {
  const { ino } = await fs.attr(path);
  return (await count(fs, 'text_versions', `and ino = ${Number(ino)}`)) > 0;
}

const TRICKY: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['one line, no newline', B('hello')],
  ['one line', B('hello\n')],
  ['only newlines', B('\n\n\n')],
  ['CRLF', B('one\r\ntwo\r\n')],
  ['mixed endings, no final newline', B('a\nb\r\nc\rd\n\r\ne')],
  ['lone CR at the end', B('x\r')],
  ['Unicode', B('héllo wörld\n日本語のテキスト\n🌍 emoji 👍🏽\n')],
  ['empty lines between', B('a\n\n\nb\n\n')],
  ['tabs and trailing spaces', B('\tindent  \n  \t\n')],
  ['long line under the limit', Buffer.concat([B('x'.repeat(60000)), B('\nshort\n')])],
];
const BINARY: [string, Buffer][] = [
  ['invalid UTF-8', Buffer.from([0x61, 0x0a, 0xff, 0xfe, 0x0a])],
  ['a NUL byte', B('text\n\0more text\n')],
  ['truncated UTF-8 sequence', Buffer.concat([B('ok\n'), Buffer.from([0xe6, 0x97])])],
  ['a line over the limit', B('y'.repeat(70000) + '\n')],
];

test('tricky text round-trips byte for byte after packing; non-text stays in chunks', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  for (const [i, [, data]] of [...TRICKY, ...BINARY].entries()) await fs.file(`/f${i}`, data);
  const layer = await checkpoint(fs);
  const result = await pack(fs);
  t.is(result.layers, 1);
  t.is(result.text_files, TRICKY.length - 1, 'every text file but the empty one (which has no blocks) is packed');
  t.is(result.binary_files, BINARY.length);
  for (const [i, [name, data]] of [...TRICKY, ...BINARY].entries()) {
    const path = `/f${i}`;
    t.deepEqual(await fs.read(path), data, `${name}: tarbox.read`);
    t.deepEqual(await readBlocks(fs, path), data, `${name}: block path`);
    t.is((await fs.attr(path)).size, data.length, `${name}: size`);
    if (data.length > 0) t.is(await storedAsText(fs, path), i < TRICKY.length, `${name}: stored as ${i < TRICKY.length ? 'text' : 'chunks'}`);
  }
  // and from the frozen layer's own view
  await switchTo(fs, layer);
  for (const [i, [name, data]] of [...TRICKY, ...BINARY].entries()) t.deepEqual(await fs.read(`/f${i}`), data, `${name} in layer ${layer}`);
  t.is(await count(fs, 'chunks'), BINARY.length + 1, 'only the binary files keep chunks (the long line: 17 equal blocks and a tail)');
});

test('a huge line is text when the limit allows it; a multi-block text file reads back through every block', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  const huge = B('z'.repeat(300_000) + '\nend');
  const lines = B(Array.from({ length: 3000 }, (_, i) => `line ${i} ${'ab'.repeat(i % 17)}\n`).join(''));
  await fs.file('/huge', huge);
  await fs.file('/lines', lines);
  await checkpoint(fs);
  t.is((await pack(fs, 1 << 20, 1 << 20)).text_files, 2);
  t.true(await storedAsText(fs, '/huge'));
  t.deepEqual(await fs.read('/huge'), huge);
  t.deepEqual(await readBlocks(fs, '/huge'), huge);
  t.deepEqual(await fs.read('/lines'), lines);
  t.deepEqual(await readBlocks(fs, '/lines'), lines);
  t.deepEqual(await fs.read('/lines', 10_000, 5000), lines.subarray(10_000, 15_000), 'a range across blocks');
  t.is(await count(fs, 'chunks'), 0, 'every chunk was released');
});

test('identical lines are stored once per tenant, across files and layers', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/a', 'shared 1\nshared 2\nonly a\n');
  await fs.file('/b', 'shared 1\nonly b\nshared 2\nshared 2\n');
  await checkpoint(fs);
  const first = await pack(fs);
  t.is(first.lines_stored, 4);
  t.is(await count(fs, 'lines'), 4, 'shared 1, shared 2, only a, only b');

  await fs.file('/c', 'only a\nshared 1\nnew in c\n');
  await fs.write('/a', 0, 'shared 1\nshared 2\nonly a\nnew in c\n');
  await checkpoint(fs);
  t.is((await pack(fs)).lines_stored, 1, 'only "new in c" is new');
  t.is(await count(fs, 'lines'), 5);

  // another tenant stores its own lines
  const other = await env.tenant(t);
  await other.file('/a', 'shared 1\nshared 2\nonly a\n');
  await checkpoint(other);
  t.is((await pack(other)).lines_stored, 3);
  t.is(await count(fs, 'lines'), 5);
  t.deepEqual((await fs.read('/b')).toString(), 'shared 1\nonly b\nshared 2\nshared 2\n');
  t.deepEqual((await fs.read('/a')).toString(), 'shared 1\nshared 2\nonly a\nnew in c\n');
});

test('many versions with random line edits: every version reads back exactly; delta chains stay bounded', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  const random = prng(5);
  let lines = Array.from({ length: 300 }, (_, i) => `original line ${i}\n`);
  const versions: { layer: number; content: Buffer }[] = [];
  for (let v = 0; v < 70; v++) {
    const edits = 1 + Math.floor(random() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * lines.length);
      const kind = random();
      if (kind < 0.4) lines.splice(at, 1, `edited ${v}.${e}\n`);
      else if (kind < 0.7) lines.splice(at, 0, `inserted ${v}.${e}\n`, `second ${v}.${e}\n`);
      else if (lines.length > 10) lines.splice(at, 2);
    }
    if (v === 35) lines = lines.map((l) => l.replace('\n', '\r\n')); // every line changes once
    const content = B(lines.join(''));
    await fs.sql`select tarbox.write_file('/doc.txt', ${content})`;
    versions.push({ layer: await checkpoint(fs, `v${v}`), content });
    if (v % 20 === 19) await pack(fs);  // packing happens in several rounds
  }
  await pack(fs);
  const [{ depth, fulls }] = await env.admin<{ depth: number; fulls: number }[]>`
    select max(depth)::int as depth, count(*) filter (where base_layer_id is null)::int as fulls
      from tarbox_private.text_versions where tenant_id = ${fs.tenantId}`;
  t.true(depth <= 49, `chain depth ${depth}`);
  t.true(fulls >= 2 && fulls <= 4, `${fulls} whole versions (the first, the all-lines change, the depth limit)`);
  t.is(await count(fs, 'chunks'), 0);
  for (const { layer, content } of versions) {
    const [{ data }] = await fs.sql<{ data: Buffer }[]>`
      select string_agg(data, ''::bytea order by line_no) as data from tarbox.file_lines('/doc.txt', ${layer})`;
    t.deepEqual(data, content, `layer ${layer} from its lines`);
  }
  for (const { layer, content } of [versions[0], versions[34], versions[36], versions[69]]) {
    await switchTo(fs, layer);
    t.deepEqual(await fs.read('/doc.txt'), content, `layer ${layer} after a switch`);
    t.deepEqual(await readBlocks(fs, '/doc.txt'), content, `layer ${layer} through blocks`);
  }
});

test('files moving between text and binary keep every version; writes over packed text', async (t) => {
  const fs = await env.tenant(t, { blockSize: 4096 });
  const text1 = B('first text version\n'.repeat(500));             // 2.5 blocks
  const binary = Buffer.concat([B('now binary\n'), Buffer.from([0, 1, 2, 0xff])]);
  const text2 = B('text again\r\n');
  await fs.file('/f', text1);
  const l1 = await checkpoint(fs);
  await fs.sql`select tarbox.write_file('/f', ${binary})`;
  const l2 = await checkpoint(fs);
  await fs.sql`select tarbox.write_file('/f', ${text2})`;
  const l3 = await checkpoint(fs);
  const result = await pack(fs);
  t.is(result.text_files, 2);
  t.is(result.binary_files, 1);
  for (const [layer, content] of [[l1, text1], [l2, binary], [l3, text2]] as const) {
    await switchTo(fs, layer);
    t.deepEqual(await fs.read('/f'), content, `layer ${layer}`);
    t.deepEqual(await readBlocks(fs, '/f'), content, `layer ${layer} through blocks`);
  }

  // a partial write into block 1 of packed text: block 1 becomes a chunk over the text
  await switchTo(fs, l1);
  await fs.write('/f', 5000, 'XYZ');
  const expected = Buffer.from(text1);
  expected.write('XYZ', 5000);
  t.deepEqual(await fs.read('/f'), expected);
  t.deepEqual(await readBlocks(fs, '/f'), expected);
  // shrink then grow: the packed text past the cut must read as zeros, not come back
  await fs.truncate('/f', 100);
  await fs.truncate('/f', 9000);
  const grown = Buffer.alloc(9000);
  text1.copy(grown, 0, 0, 100);
  t.deepEqual(await fs.read('/f'), grown);
  t.deepEqual(await readBlocks(fs, '/f'), grown);
  // and that edited version packs too
  await checkpoint(fs);
  t.is((await pack(fs)).text_files, 0, 'NUL bytes: not text');
  t.deepEqual(await fs.read('/f'), grown);
});

test('layers with packed text: checkpoints, switches; deleting a layer releases its lines at once', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/keep', 'kept line\n');
  const base = await checkpoint(fs);
  await pack(fs);
  await fs.file('/branch', 'branch only line\n');
  await fs.write('/keep', 0, 'kept line\nplus a branch line\n');
  const branch = await checkpoint(fs);
  await pack(fs);
  t.is(await count(fs, 'lines'), 3);
  await switchTo(fs, base);
  t.is((await fs.read('/keep')).toString(), 'kept line\n');
  t.false(await fs.exists('/branch'));
  await switchTo(fs, branch);
  t.is((await fs.read('/branch')).toString(), 'branch only line\n');
  await switchTo(fs, base);
  await fs.sql`select tarbox.delete_layer(${branch})`;
  t.is(await count(fs, 'text_versions', `and layer_id = ${branch}`), 0, 'the versions go with their layer');
  t.is(await count(fs, 'lines'), 1, 'the lines only the deleted versions used went with them');
  t.is((await pack(fs)).lines_released, 0, 'nothing left for the next pack');
  t.is((await fs.read('/keep')).toString(), 'kept line\n');
  // a version whose line ids span the collected ones (a range with gaps) reads back too
  await fs.sql`select tarbox.write_file('/keep', ${B('kept line\nafter the collection\nkept line\n')})`;
  await checkpoint(fs);
  await pack(fs);
  t.is((await fs.read('/keep')).toString(), 'kept line\nafter the collection\nkept line\n');
  t.is((await readBlocks(fs, '/keep')).toString(), 'kept line\nafter the collection\nkept line\n');
});

test('pack_text: packs each frozen layer once, never the working layer; bad limits are TBINV', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/w', 'working\n');
  t.deepEqual(await pack(fs), { layers: 0, text_files: 0, binary_files: 0, lines_stored: 0, lines_released: 0 });
  await checkpoint(fs);
  t.is((await pack(fs)).layers, 1);
  t.is((await pack(fs)).layers, 0, 'already packed');
  await fs.write('/w', 0, 'changed\n');
  t.is((await pack(fs)).layers, 0, 'the working layer is not packed');
  t.is((await fs.read('/w')).toString(), 'changed\n');
  await t.throwsAsync(pack(fs, -1), { code: 'TBINV' });
  await t.throwsAsync(pack(fs, 1024, 0), { code: 'TBINV' });
});

test('history and diffs in SQL: file_versions, file_line_ids, file_lines, file_diff', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/doc', 'a\nb\nc\nd\ne\nf\ng\nh\n');
  const v1 = await checkpoint(fs, 'one');
  await fs.sql`select tarbox.write_file('/doc', ${B('a\nb\nc\nD\ne\nf\ng\nh\nnew')})`;
  const v2 = await checkpoint(fs, 'two');
  await pack(fs);
  await fs.sql`select tarbox.write_file('/doc', ${B('a\nb\nc\nD\ne\nf\ng\nh\nnew\n')})`; // unpacked, in the working layer
  const working = (await fs.sql<{ layer_id: number }[]>`select layer_id from tarbox.current_layer()`)[0].layer_id;

  const versions = await fs.sql<{ layer_id: number; storage: string; size: number; is_working: boolean; message: string | null }[]>`
    select * from tarbox.file_versions('/doc')`;
  t.deepEqual(versions.map((v) => [v.layer_id, v.storage, v.size, v.is_working, v.message]),
    [[v1, 'text', 16, false, 'one'], [v2, 'text', 19, false, 'two'], [working, 'blocks', 20, true, null]]);

  const [ids] = await fs.sql<{ a: number[]; b: number[]; w: number[] }[]>`
    select tarbox.file_line_ids('/doc', ${v1}) as a, tarbox.file_line_ids('/doc', ${v2}) as b,
           tarbox.file_line_ids('/doc', ${working}) as w`;
  t.is(ids.a.length, 8);
  t.deepEqual(ids.b.filter((id, i) => id !== ids.a[i]).length, 2, 'D and new differ');
  t.deepEqual(ids.w.slice(0, 8), ids.b.slice(0, 8), 'unpacked content maps to the stored line ids');
  t.true(ids.w[8] < 0, '"new\\n" is not stored yet: a negative id');
  t.not(ids.w[8], ids.b[8]);

  const lines = await fs.sql<{ line_no: number; data: Buffer }[]>`select * from tarbox.file_lines('/doc', ${v2}, '{4,9}')`;
  t.deepEqual(lines.map((l) => [l.line_no, l.data.toString()]), [[4, 'D\n'], [9, 'new']]);

  const diff = (await fs.sql<{ line: string }[]>`select tarbox.file_diff('/doc', ${v1}, ${v2}) as line`).map((r) => r.line);
  // one hunk from the common prefix to the common suffix (here: to the end)
  t.deepEqual(diff, [
    '--- a/doc', '+++ b/doc', '@@ -1,8 +1,9 @@',
    ' a', ' b', ' c', '-d', '-e', '-f', '-g', '-h', '+D', '+e', '+f', '+g', '+h', '+new', '\\ No newline at end of file',
  ]);
  const middle = (await fs.sql<{ line: string }[]>`select tarbox.file_diff('/doc', ${v2}, ${working}, 1) as line`).map((r) => r.line);
  t.deepEqual(middle, ['--- a/doc', '+++ b/doc', '@@ -8,2 +8,2 @@', ' h', '-new', '\\ No newline at end of file', '+new']);
  const noop = await fs.sql`select tarbox.file_diff('/doc', ${v2}, ${v2})`;
  t.is(noop.length, 0);
  await t.throwsAsync(fs.sql`select * from tarbox.file_versions('/missing')`, { code: 'TBNOE' });
  await t.throwsAsync(fs.sql`select tarbox.file_line_ids('/doc', 999999)`, { code: 'TBNOE' });
});

test('a delta with many hunks (scattered edits) rebuilds exactly, also as the base of further deltas', async (t) => {
  const fs = await env.tenant(t);
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${i}\n`);
  const versions: [number, Buffer][] = [];
  for (let v = 0; v < 4; v++) {
    for (let k = 0; k < 40; k++) lines[(k * 997 + v * 13) % lines.length] = `v${v} edit ${k}\n`;
    if (v === 2) lines.splice(500, 3);
    if (v === 3) lines.splice(10, 0, 'inserted\n');
    const content = B(lines.join(''));
    await fs.sql`select tarbox.write_file('/many', ${content})`;
    versions.push([await checkpoint(fs), content]);
  }
  await pack(fs);
  const hunks = await env.admin<{ n: number }[]>`
    select cardinality(hunks) / 3 as n from tarbox_private.text_versions where tenant_id = ${fs.tenantId} and base_layer_id is not null order by layer_id`;
  t.log(hunks.map((h) => h.n)); t.true(hunks.filter((h) => h.n > 8).length >= 2, 'deltas of more than 8 hunks (the aggregate path)');
  for (const [layer, content] of versions) {
    const [{ data }] = await fs.sql<{ data: Buffer }[]>`
      select string_agg(data, ''::bytea order by line_no) as data from tarbox.file_lines('/many', ${layer})`;
    t.deepEqual(data, content, `layer ${layer}`);
    const some = await fs.sql<{ line_no: number; data: Buffer }[]>`select * from tarbox.file_lines('/many', ${layer}, '{1,11,1000,5000}')`;
    const expected = content.toString().split(/(?<=\n)/);
    t.deepEqual(some.map((r) => [r.line_no, r.data.toString()]),
      [1, 11, 1000].filter((n) => n <= expected.length).map((n) => [n, expected[n - 1]]), `layer ${layer}: chosen lines`);
  }
  await switchTo(fs, versions[3][0]);
  t.deepEqual(await readBlocks(fs, '/many'), versions[3][1]);
});

test('file_delta: diffs of versions stored one against the other come from the stored hunks, and are exact', async (t) => {
  const fs = await env.tenant(t);
  const random = prng(11);
  let lines = Array.from({ length: 400 }, (_, i) => `line ${i}\n`);
  const versions: { layer: number; lines: string[] }[] = [];
  for (let v = 0; v < 6; v++) {
    for (let e = 0; e < 12; e++) {
      const at = Math.floor(random() * lines.length);
      if (e % 3 === 0) lines.splice(at, 1, `v${v} edit ${e}\n`);
      else if (e % 3 === 1) lines.splice(at, 0, `v${v} new ${e}\n`, 'repeated\n');
      else lines.splice(at, 2);
    }
    await fs.sql`select tarbox.write_file('/d.txt', ${B(lines.join(''))})`;
    versions.push({ layer: await checkpoint(fs), lines: [...lines] });
  }
  await pack(fs);
  const delta = (from: number, to: number) => fs.sql`select * from tarbox.file_delta('/d.txt', ${from}, ${to})`;
  t.is((await delta(versions[0].layer, versions[1].layer)).length, 1, 'consecutive versions: stored as a delta');
  t.is((await delta(versions[1].layer, versions[0].layer)).length, 0, 'only in the direction it is stored');
  t.is((await delta(versions[0].layer, versions[2].layer)).length, 0, 'not against each other');
  const working = (await fs.sql<{ layer_id: number }[]>`select layer_id from tarbox.current_layer()`)[0].layer_id;
  t.is((await delta(versions[5].layer, working)).length, 0, 'the working layer is in chunks');
    for (const [x, y] of [[0, 1], [1, 0], [3, 4], [0, 5], [5, working]] as const) {
    const from = versions[x].layer;
    const to = y === working ? working : versions[y].layer;
    const want = y === working ? versions[5].lines : versions[y].lines;
    const found = await fileEdits(fs.sql as never, '/d.txt', from, to);
    t.truthy(found);
    t.is(found!.aLength, versions[x].lines.length);
    // applying the edits to the old lines gives the new ones
    const out: string[] = [];
    let i = 0;
    for (const e of found!.edits) {
      out.push(...versions[x].lines.slice(i, e.aStart), ...want.slice(e.bStart, e.bEnd));
      i = e.aEnd;
      t.true(e.aEnd > e.aStart || e.bEnd > e.bStart);
    }
    out.push(...versions[x].lines.slice(i));
    t.deepEqual(out, want, `${x} -> ${y}`);
  }
  const { edits } = (await fileEdits(fs.sql as never, '/d.txt', versions[2].layer, versions[3].layer))!;
  const changed = edits.reduce((n, e) => n + (e.aEnd - e.aStart) + (e.bEnd - e.bStart), 0);
  t.true(changed <= 3 * 12 + 4, `the regions are diffed, not replaced whole (${changed} lines)`);
});

test('a pack holds no exclusive lock: reads and writes go on; checkpoints and a second pack wait for it', async (t) => {
  const fs = await env.tenant(t);
  const content = B(Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(''));
  await fs.sql`select tarbox.write_file('/packed.txt', ${content})`;
  await checkpoint(fs);
  const other = client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(fs.tenantId), lock_timeout: 300 } });
  t.teardown(() => other.end({ timeout: 5 }));
  await fs.sql.begin(async (tx) => {
    const [packed] = await tx<Pack[]>`select * from tarbox.pack_text()`;
    t.is(packed.text_files, 1, 'packed, not committed yet');
    t.deepEqual((await other<{ data: Buffer }[]>`select tarbox.read_file('/packed.txt') as data`)[0].data, content, 'a read goes on');
    await other`select tarbox.write_file('/new.txt', ${B('written meanwhile\n')})`;
    await other`select tarbox.write_file('/packed.txt', ${B('overwritten meanwhile\n')})`;
    await t.throwsAsync(other`select tarbox.create_layer('waits')`, { code: '55P03' }, 'a checkpoint waits');
    await t.throwsAsync(other`select tarbox.pack_text()`, { code: '55P03' }, 'a second pack waits');
  });
  t.is((await fs.read('/packed.txt')).toString(), 'overwritten meanwhile\n');
  t.is((await fs.read('/new.txt')).toString(), 'written meanwhile\n');
  const [layer] = await fs.sql<{ layer_id: number }[]>`select layer_id from tarbox.create_layer('after')`;
  t.is((await pack(fs)).text_files, 2, 'the next pack takes the files written meanwhile');
  t.true(layer.layer_id > 0);
});
