// Layers through SQL: tarbox.create_layer, switch_layer, list_layers, current_layer,
// delete_layer and layer_diff (db/migrations/committed/000002-layers.sql), and the
// copy-on-write storage under them, checked row by row in tarbox_private.
//
// Every test makes its own tenant in this file's database (test/db/_support.ts).
import crypto from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { client, type Sql } from '../helpers/database.js';
import { B, S_IFLNK, useDatabase, type Fs } from '../db/_support.js';

const env = useDatabase(test);
const BS = 4096;

interface Layer {
  layer_id: number;
  parent_layer_id: number | null;
  message: string | null;
  created_at: Date;
  frozen_at: Date | null;
  is_working: boolean;
  in_view: boolean;
  changed_entries: number | null;
  changed_bytes: number | null;
}

interface Change { path: string; change: string; kind: string }

const TABLES = ['dentries', 'inodes', 'file_blocks', 'xattrs'] as const;

async function layers(fs: Fs): Promise<Layer[]> {
  return [...(await fs.sql<Layer[]>`select * from tarbox.list_layers()`)];
}
async function current(fs: Fs): Promise<Layer> {
  const [row] = await fs.sql<Layer[]>`select * from tarbox.current_layer()`;
  return row;
}
async function checkpoint(fs: Fs, message: string | null = null): Promise<Layer> {
  const [row] = await fs.sql<Layer[]>`select * from tarbox.create_layer(${message})`;
  return row;
}
async function switchTo(fs: Fs, id: number): Promise<Layer> {
  const [row] = await fs.sql<Layer[]>`select * from tarbox.switch_layer(${id})`;
  return row;
}
async function deleteLayer(fs: Fs, id: number): Promise<void> {
  await fs.sql`select tarbox.delete_layer(${id})`;
}
async function diff(fs: Fs, from: number, to: number): Promise<Change[]> {
  const rows = await fs.sql<Change[]>`select path, change, kind from tarbox.layer_diff(${from}, ${to})`;
  return rows.map((r) => ({ path: r.path, change: r.change, kind: r.kind })).sort((a, b) => a.path.localeCompare(b.path));
}
async function text(fs: Fs, path: string): Promise<string> {
  return (await fs.read(path)).toString('utf8');
}
async function names(fs: Fs, path = '/'): Promise<string[]> {
  return (await fs.names(path)).sort();
}

/** Every row a layer holds, as text, in a stable order: its whole stored state. */
async function layerRows(tenantId: number, layerId: number): Promise<string[]> {
  const rows = await env.admin<{ r: string }[]>`
    select 'layers ' || row_to_json(l)::text as r from tarbox_private.layers l
     where l.tenant_id = ${tenantId} and l.layer_id = ${layerId}
    union all
    select 'dentries ' || row_to_json(d)::text from tarbox_private.dentries d
     where d.tenant_id = ${tenantId} and d.layer_id = ${layerId}
    union all
    select 'inodes ' || row_to_json(i)::text from tarbox_private.inodes i
     where i.tenant_id = ${tenantId} and i.layer_id = ${layerId}
    union all
    select 'file_blocks ' || row_to_json(b)::text from tarbox_private.file_blocks b
     where b.tenant_id = ${tenantId} and b.layer_id = ${layerId}
    union all
    select 'xattrs ' || row_to_json(x)::text from tarbox_private.xattrs x
     where x.tenant_id = ${tenantId} and x.layer_id = ${layerId}
    order by 1`;
  return rows.map((r) => r.r);
}

/** Row counts of the versioned tables (all layers) and of chunks, for one tenant. */
async function rowCounts(tenantId: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of [...TABLES, 'chunks', 'layers']) {
    const [{ n }] = await env.admin<{ n: number }[]>`
      select count(*)::int as n from ${env.admin('tarbox_private.' + table)} where tenant_id = ${tenantId}`;
    counts[table] = n;
  }
  return counts;
}

/** Rows of one table in one layer. */
async function countIn(table: (typeof TABLES)[number], tenantId: number, layerId: number): Promise<number> {
  const [{ n }] = await env.admin<{ n: number }[]>`
    select count(*)::int as n from ${env.admin('tarbox_private.' + table)}
     where tenant_id = ${tenantId} and layer_id = ${layerId}`;
  return n;
}

/** Rows whose layer no longer exists: invisible in every view (lost data). */
async function orphanRows(tenantId: number): Promise<number> {
  let total = 0;
  for (const table of TABLES) {
    const [{ n }] = await env.admin<{ n: number }[]>`
      select count(*)::int as n from ${env.admin('tarbox_private.' + table)} r
       where r.tenant_id = ${tenantId}
         and not exists (select 1 from tarbox_private.layers l where l.tenant_id = r.tenant_id and l.layer_id = r.layer_id)`;
    total += n;
  }
  return total;
}

const random = (n: number): Buffer => crypto.randomBytes(n);

// --- create, list, current ------------------------------------------------------------------

test('a new tenant has one working layer: current_layer and list_layers describe it', async (t) => {
  const fs = await env.tenant(t);
  const cur = await current(fs);
  t.is(cur.parent_layer_id, null);
  t.true(cur.is_working);
  t.true(cur.in_view);
  t.is(cur.frozen_at, null);
  t.is(cur.message, 'initial layer');
  t.deepEqual((await layers(fs)).map((l) => l.layer_id), [cur.layer_id]);
});

test('create_layer freezes the working layer (with its message) and opens an empty working layer on top', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/hello.txt', 'hello');
  const before = await current(fs);
  const frozen = await checkpoint(fs, 'first checkpoint');
  t.is(frozen.layer_id, before.layer_id, 'returns the layer it froze');
  t.is(frozen.message, 'first checkpoint');
  t.truthy(frozen.frozen_at);
  t.false(frozen.is_working);
  t.true(frozen.in_view);
  // checkpoints stay O(1): sizes are counted by list_layers, not by create_layer
  t.is(frozen.changed_entries, null);
  t.is(frozen.changed_bytes, null);

  const working = await current(fs);
  t.is(working.parent_layer_id, frozen.layer_id);
  t.true(working.is_working);
  t.is(working.frozen_at, null);
  t.true(working.layer_id > frozen.layer_id, 'a child layer is always newer');

  const list = await layers(fs);
  const sizes = (id: number) => list.filter((l) => l.layer_id === id).map((l) => [l.changed_entries, l.changed_bytes])[0];
  t.deepEqual(sizes(frozen.layer_id), [2, 5], 'the root directory and the new file; 5 bytes');
  t.deepEqual(sizes(working.layer_id), [0, 0]);
  t.deepEqual(list.map((l) => [l.layer_id, l.parent_layer_id, l.is_working, l.in_view, l.frozen_at !== null]), [
    [frozen.layer_id, null, false, true, true],
    [working.layer_id, frozen.layer_id, true, true, false],
  ]);
  t.is(await text(fs, '/hello.txt'), 'hello', 'the view is unchanged by a checkpoint');

  // a checkpoint without a message keeps the layer's own (none) and allows newlines and tabs
  const second = await checkpoint(fs);
  t.is(second.layer_id, working.layer_id);
  t.is(second.message, null);
  const third = await checkpoint(fs, 'line one\nline two\twith a tab');
  t.is(third.message, 'line one\nline two\twith a tab');
  t.is((await layers(fs)).length, 4);
});

test('create_layer: TBINV for a message over 1000 characters or with control characters; nothing changes', async (t) => {
  const fs = await env.tenant(t);
  const before = await layers(fs);
  await t.throwsAsync(checkpoint(fs, 'x'.repeat(1001)), { code: 'TBINV' });
  await t.throwsAsync(checkpoint(fs, 'bell\u0007'), { code: 'TBINV' });
  await t.throwsAsync(checkpoint(fs, 'escape\u001b[0m'), { code: 'TBINV' });
  await t.throwsAsync(checkpoint(fs, 'cr\r'), { code: 'TBINV' });
  t.deepEqual(await layers(fs), before);
  const ok = await checkpoint(fs, 'y'.repeat(1000));
  t.is(ok.message?.length, 1000);
});

test('switch_layer, delete_layer and layer_diff: TBNOE for unknown layers and for layers of another tenant', async (t) => {
  const fs = await env.tenant(t);
  const other = await env.tenant(t);
  await checkpoint(other, 'someone else');
  const foreign = (await layers(other))[0].layer_id;
  const own = (await current(fs)).layer_id;
  for (const id of [987654321, foreign]) {
    await t.throwsAsync(switchTo(fs, id), { code: 'TBNOE' }, `switch ${id}`);
    await t.throwsAsync(deleteLayer(fs, id), { code: 'TBNOE' }, `delete ${id}`);
    await t.throwsAsync(diff(fs, own, id), { code: 'TBNOE' }, `diff to ${id}`);
    await t.throwsAsync(diff(fs, id, own), { code: 'TBNOE' }, `diff from ${id}`);
  }
  t.is((await current(fs)).layer_id, own);
  t.is((await layers(other)).length, 2, 'the other tenant is untouched');
});

// --- O(1) and copy-on-write ----------------------------------------------------------------------

test('checkpoint and switch touch no file rows: their cost does not depend on the number of files', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.sql`select tarbox.make_directory('/many')`;
  await fs.sql`select tarbox.write_file('/many/f' || g, convert_to('file ' || g, 'UTF8')) from generate_series(1, 300) g`;
  const before = await rowCounts(fs.tenantId);
  const l1 = await checkpoint(fs, 'many files');
  const afterCheckpoint = await rowCounts(fs.tenantId);
  t.deepEqual({ ...afterCheckpoint, layers: 0 }, { ...before, layers: 0 }, 'no file row was copied or changed');
  t.is(afterCheckpoint.layers, before.layers + 1);

  await fs.sql`select tarbox.create('/one-more')`;
  const l2 = await checkpoint(fs, 'one more');
  const beforeSwitch = await rowCounts(fs.tenantId);
  await switchTo(fs, l1.layer_id);
  t.deepEqual({ ...(await rowCounts(fs.tenantId)), layers: 0 }, { ...beforeSwitch, layers: 0 }, 'a switch copies nothing');
  t.false(await fs.exists('/one-more'));
  t.is((await fs.names('/many')).length, 300);
  await switchTo(fs, l2.layer_id);
  t.true(await fs.exists('/one-more'));
});

test("a frozen layer's rows never change, whatever happens later", async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const big = random(3 * BS + 100);
  await fs.mkdir('/dir');
  await fs.mkdir('/dir/empty');
  await fs.file('/dir/big', big);
  await fs.file('/dir/small', 'small');
  await fs.file('/keep', 'keep me');
  await fs.symlink('dir/small', '/link');
  await fs.link('/keep', '/keep-hard');
  await fs.setxattr('/keep', 'user.color', 'blue');
  await fs.setxattr('/dir', 'user.dir', 'yes');
  await fs.chown('/dir/small', 1000, 1000);
  const frozen = await checkpoint(fs, 'frozen');
  const snapshot = await layerRows(fs.tenantId, frozen.layer_id);
  t.true(snapshot.length > 10);
  const same = async (what: string) => t.deepEqual(await layerRows(fs.tenantId, frozen.layer_id), snapshot, what);

  // every kind of change, in the working layer on top
  await fs.write('/dir/big', BS + 1, 'changed');
  await fs.truncate('/dir/small', 2);
  await fs.truncate('/dir/small', 9000);
  await fs.chmod('/keep', 0o600);
  await fs.chown('/keep', 7, 8);
  await fs.utimens('/keep', 1, 2, 3, 4);
  await fs.setxattr('/keep', 'user.color', 'red');
  await fs.setxattr('/keep', 'user.size', 'xl');
  await fs.removexattr('/dir', 'user.dir');
  await fs.unlink('/keep-hard');
  await fs.link('/dir/small', '/small-hard');
  await fs.rename('/dir/big', '/big-moved');
  await fs.rmdir('/dir/empty');
  await fs.unlink('/link');
  await fs.symlink('elsewhere', '/link');
  await fs.file('/new', 'new');
  await same('after changes in the working layer');

  const second = await checkpoint(fs, 'second');
  await fs.unlink('/big-moved');
  await fs.sql`select tarbox.remove('/dir', true)`;
  await same('after a second checkpoint and deletes');

  await switchTo(fs, frozen.layer_id);
  await fs.write('/keep', 0, 'KEEP');
  await same('after switching to it and writing on top');
  const branch = await current(fs);
  await switchTo(fs, second.layer_id);
  await same('after switching away (auto-save)');
  const autoSaved = (await layers(fs)).find((l) => l.layer_id === branch.layer_id);
  t.truthy(autoSaved?.frozen_at);
  await deleteLayer(fs, branch.layer_id);
  await same('after deleting a sibling layer');

  // and its view is still exactly what was checkpointed
  await switchTo(fs, frozen.layer_id);
  t.deepEqual(await fs.read('/dir/big'), big);
  t.is(await text(fs, '/dir/small'), 'small');
  t.is(await text(fs, '/keep'), 'keep me');
  t.is((await fs.attr('/keep')).nlink, 2);
  t.is((await fs.readlink('/link')).toString(), 'dir/small');
  t.deepEqual(await names(fs, '/dir'), ['big', 'empty', 'small']);
  t.deepEqual(await fs.listxattr('/dir'), ['user.dir']);
  t.is((await fs.getxattr('/keep', 'user.color')).toString(), 'blue');
  t.is((await fs.attr('/dir/small')).uid, 1000);
  await same('after reading it');
});

test('a 1-block change to a multi-block file in a new layer adds exactly one block row and at most one chunk', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const data = random(5 * BS);
  const { ino } = await fs.file('/big', data);
  const frozen = await checkpoint(fs, 'five blocks');
  const working = (await current(fs)).layer_id;
  const before = await rowCounts(fs.tenantId);
  t.is(before.chunks, 5);

  await fs.write('/big', 2 * BS + 100, 'Z');
  const after = await rowCounts(fs.tenantId);
  t.is(after.file_blocks, before.file_blocks + 1, 'one new block row');
  t.true(after.chunks - before.chunks <= 1, 'at most one new chunk');
  t.is(after.chunks, before.chunks + 1);
  t.is(after.inodes, before.inodes + 1, "the file's inode is copied up once");
  t.is(after.dentries, before.dentries, 'no name changed');
  const rows = await env.admin<{ block_no: number }[]>`
    select block_no from tarbox_private.file_blocks where tenant_id = ${fs.tenantId} and ino = ${ino} and layer_id = ${working}`;
  t.deepEqual(rows.map((r) => Number(r.block_no)), [2]);

  // writing the same block again stays one row
  await fs.write('/big', 2 * BS + 200, 'Y');
  t.is(await countIn('file_blocks', fs.tenantId, working), 1);
  t.is((await rowCounts(fs.tenantId)).chunks, before.chunks + 1, 'the intermediate chunk was released');

  const expected = Buffer.from(data);
  expected[2 * BS + 100] = 'Z'.charCodeAt(0);
  expected[2 * BS + 200] = 'Y'.charCodeAt(0);
  t.deepEqual(await fs.read('/big'), expected);
  await switchTo(fs, frozen.layer_id);
  t.deepEqual(await fs.read('/big'), data, 'the checkpoint still reads the original');
});

test('deletes in a newer layer are whiteouts: the frozen layer keeps its rows and its view', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.mkdir('/d');
  const file = await fs.file('/d/file', random(2 * BS));
  await fs.file('/cut', random(3 * BS));
  await fs.file('/x', 'x');
  await fs.setxattr('/x', 'user.k', 'v');
  const frozen = await checkpoint(fs, 'before deletes');
  const working = (await current(fs)).layer_id;

  await fs.unlink('/d/file');
  await fs.rmdir('/d');
  await fs.removexattr('/x', 'user.k');
  await fs.truncate('/cut', BS);

  const rows = await env.admin<{ name: Buffer; ino: number | null }[]>`
    select name, ino from tarbox_private.dentries where tenant_id = ${fs.tenantId} and layer_id = ${working} order by name`;
  t.deepEqual(rows.map((r) => [r.name.toString(), r.ino]), [['d', null], ['file', null]], 'names are whited out');
  const [gone] = await env.admin<{ deleted: boolean; nlink: number }[]>`
    select deleted, nlink from tarbox_private.inodes where tenant_id = ${fs.tenantId} and ino = ${file.ino} and layer_id = ${working}`;
  t.deepEqual({ ...gone }, { deleted: true, nlink: 0 }, 'the inode is whited out');
  const [xattr] = await env.admin<{ value: Buffer | null }[]>`
    select value from tarbox_private.xattrs where tenant_id = ${fs.tenantId} and layer_id = ${working} and name = 'user.k'`;
  t.is(xattr.value, null, 'the xattr is whited out');
  const cut = await env.admin<{ block_no: number; chunk_hash: Buffer | null }[]>`
    select block_no, chunk_hash from tarbox_private.file_blocks b
      join tarbox_private.dentries d on d.tenant_id = b.tenant_id and d.ino = b.ino and d.name = 'cut'
     where b.tenant_id = ${fs.tenantId} and b.layer_id = ${working} order by block_no`;
  t.deepEqual(cut.map((r) => [Number(r.block_no), r.chunk_hash]), [[1, null], [2, null]], 'truncated blocks are holes');
  t.is(await countIn('file_blocks', fs.tenantId, frozen.layer_id), 2 + 3 + 1, 'the frozen blocks stay');

  t.deepEqual(await names(fs), ['cut', 'x']);
  t.deepEqual(await fs.listxattr('/x'), []);
  t.is((await fs.attr('/cut')).size, BS);

  await switchTo(fs, frozen.layer_id);
  t.deepEqual(await names(fs), ['cut', 'd', 'x']);
  t.is((await fs.attr('/d/file')).size, 2 * BS);
  t.is((await fs.getxattr('/x', 'user.k')).toString(), 'v');
  t.is((await fs.attr('/cut')).size, 3 * BS);
});

// --- switching ------------------------------------------------------------------------------

test('switching back and forth repeatedly shows each layer exactly; empty working layers do not pile up', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'one');
  await fs.file('/only-in-one', '1');
  const l1 = await checkpoint(fs, 'one');
  await fs.unlink('/only-in-one');
  await fs.truncate('/f', 0);
  await fs.write('/f', 0, 'two');
  await fs.mkdir('/only-in-two');
  const l2 = await checkpoint(fs, 'two');
  await fs.truncate('/f', 0);
  await fs.write('/f', 0, 'three (unsaved)');
  await switchTo(fs, l1.layer_id);
  const saved = (await layers(fs)).find((l) => l.message === `auto-saved before switching to layer ${l1.layer_id}`);
  if (!saved) return t.fail('no auto-saved layer');

  const expect = {
    [l1.layer_id]: { f: 'one', names: ['f', 'only-in-one'] },
    [l2.layer_id]: { f: 'two', names: ['f', 'only-in-two'] },
    [saved.layer_id]: { f: 'three (unsaved)', names: ['f', 'only-in-two'] },
  };
  const count = (await layers(fs)).length;
  for (let round = 0; round < 4; round++) {
    for (const id of [l2.layer_id, saved.layer_id, l1.layer_id, saved.layer_id, l2.layer_id, l1.layer_id]) {
      await switchTo(fs, id);
      const cur = await current(fs);
      t.is(cur.parent_layer_id, id);
      t.is(await text(fs, '/f'), expect[id].f, `round ${round}, layer ${id}`);
      t.deepEqual(await names(fs), expect[id].names);
    }
  }
  t.is((await layers(fs)).length, count, 'switching without changes leaves no layers behind');
});

test('writes after a switch go into a new working layer on top of the chosen layer', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'base');
  const l1 = await checkpoint(fs, 'base');
  await fs.file('/later', 'later');
  const l2 = await checkpoint(fs, 'later');
  const frozenRows = await layerRows(fs.tenantId, l1.layer_id);

  const info = await switchTo(fs, l1.layer_id);
  t.is(info.layer_id, l1.layer_id, 'switch_layer returns the layer shown');
  const working = await current(fs);
  t.is(working.parent_layer_id, l1.layer_id);
  t.true(working.is_working);
  t.true(working.layer_id > l2.layer_id, 'a new layer, not an old one reopened');
  t.deepEqual((await layers(fs)).filter((l) => l.in_view).map((l) => l.layer_id), [l1.layer_id, working.layer_id]);

  await fs.write('/f', 4, ' changed');
  await fs.file('/branch', 'b');
  t.is(await text(fs, '/f'), 'base changed');
  t.false(await fs.exists('/later'));
  t.true(await countIn('dentries', fs.tenantId, working.layer_id) > 0);
  t.is(await countIn('inodes', fs.tenantId, working.layer_id), 3, 'root, /f and /branch');
  t.deepEqual(await layerRows(fs.tenantId, l1.layer_id), frozenRows, 'the chosen layer is not written');

  await switchTo(fs, l2.layer_id);
  t.is(await text(fs, '/f'), 'base');
  t.true(await fs.exists('/later'));
  t.false(await fs.exists('/branch'));
});

test('a switch auto-saves unsaved changes: nothing is lost, switching to the saved layer brings them back', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.file('/f', 'v1');
  const l1 = await checkpoint(fs, 'v1');
  const unsavedData = random(2 * BS + 7);
  await fs.truncate('/f', 0);
  await fs.write('/f', 0, 'v2');
  await fs.file('/data', unsavedData);
  await fs.setxattr('/f', 'user.note', 'unsaved');
  const unsaved = await current(fs);

  await switchTo(fs, l1.layer_id);
  t.is(await text(fs, '/f'), 'v1');
  t.false(await fs.exists('/data'));
  const saved = (await layers(fs)).find((l) => l.layer_id === unsaved.layer_id);
  if (!saved) return t.fail('the working layer with changes was dropped');
  t.truthy(saved.frozen_at);
  t.false(saved.is_working);
  t.false(saved.in_view);
  t.is(saved.parent_layer_id, l1.layer_id);
  t.is(saved.message, `auto-saved before switching to layer ${l1.layer_id}`);

  await switchTo(fs, saved.layer_id);
  t.is(await text(fs, '/f'), 'v2');
  t.deepEqual(await fs.read('/data'), unsavedData);
  t.is((await fs.getxattr('/f', 'user.note')).toString(), 'unsaved');
});

test('switching to the working layer itself changes nothing', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/f', 'unsaved');
  const cur = await current(fs);
  const before = await layers(fs);
  const info = await switchTo(fs, cur.layer_id);
  t.is(info.layer_id, cur.layer_id);
  t.true(info.is_working);
  t.deepEqual(await layers(fs), before);
  t.is(await text(fs, '/f'), 'unsaved');
});

// --- deleting -------------------------------------------------------------------------------

test('delete_layer: TBBSY for the working layer, a layer in the view and a layer with a child; leaf first works', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/a', 'a');
  const l1 = await checkpoint(fs, 'l1');
  await fs.file('/b', 'b');
  const l2 = await checkpoint(fs, 'l2');
  await fs.file('/c', 'c');
  const l3 = await checkpoint(fs, 'l3');          // l1 <- l2 <- l3 <- working
  const working = await current(fs);
  await t.throwsAsync(deleteLayer(fs, working.layer_id), { code: 'TBBSY' }, 'the working layer');
  await t.throwsAsync(deleteLayer(fs, l2.layer_id), { code: 'TBBSY' }, 'an ancestor in the view');
  await t.throwsAsync(deleteLayer(fs, l3.layer_id), { code: 'TBBSY' }, 'the parent of the working layer');

  await switchTo(fs, l1.layer_id);               // l2 and l3 leave the view; the empty working layer goes
  t.false((await layers(fs)).some((l) => l.layer_id === working.layer_id), 'the empty working layer was dropped');
  await t.throwsAsync(deleteLayer(fs, l1.layer_id), { code: 'TBBSY' }, 'still in the view');
  await t.throwsAsync(deleteLayer(fs, l2.layer_id), { code: 'TBBSY' }, 'l2 is the parent of l3');
  t.deepEqual((await layers(fs)).map((l) => l.layer_id).slice(0, 3), [l1.layer_id, l2.layer_id, l3.layer_id], 'nothing was deleted');

  await deleteLayer(fs, l3.layer_id);
  await deleteLayer(fs, l2.layer_id);
  const left = await layers(fs);
  t.deepEqual(left.map((l) => l.parent_layer_id), [null, l1.layer_id]);
  t.deepEqual(await names(fs), ['a']);
  await t.throwsAsync(deleteLayer(fs, l2.layer_id), { code: 'TBNOE' }, 'gone');
});

test('deleting a layer removes its rows and releases its chunks; chunks other layers use stay', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const shared = random(BS);
  await fs.file('/base', Buffer.concat([shared, random(BS)]));
  const l1 = await checkpoint(fs, 'base');
  const start = await rowCounts(fs.tenantId);
  t.is(start.chunks, 2);

  await fs.file('/unique', random(3 * BS));
  await fs.file('/dup', shared);                 // deduplicated against the base layer
  await fs.setxattr('/dup', 'user.k', 'v');
  await fs.write('/base', 5, 'changed');         // a new version of a shared file's block
  const doomed = await current(fs);
  t.is((await rowCounts(fs.tenantId)).chunks, 2 + 3 + 1);

  await switchTo(fs, l1.layer_id);
  t.is((await rowCounts(fs.tenantId)).chunks, 6, 'the auto-saved layer still holds its chunks');
  await deleteLayer(fs, doomed.layer_id);

  const end = await rowCounts(fs.tenantId);
  t.is(end.chunks, 2, 'the three unique chunks and the changed block are released; the shared chunk stays');
  for (const table of TABLES) t.is(await countIn(table, fs.tenantId, doomed.layer_id), 0, `${table} of the deleted layer`);
  t.false((await layers(fs)).some((l) => l.layer_id === doomed.layer_id));
  t.deepEqual({ ...end, layers: 0 }, { ...start, layers: 0 }, 'back to exactly the rows of before');
  const [{ n }] = await env.admin<{ n: number }[]>`
    select count(*)::int as n from tarbox_private.chunks c where c.tenant_id = ${fs.tenantId}
       and not exists (select 1 from tarbox_private.file_blocks b where b.tenant_id = c.tenant_id and b.chunk_hash = c.hash)`;
  t.is(n, 0, 'no unreferenced chunk is left');
  t.is((await fs.read('/base')).subarray(0, BS).equals(shared), true);
});

// --- diff -----------------------------------------------------------------------------------

test('layer_diff: files added, modified and deleted, in both directions; a layer against itself is empty', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/same', 'same');
  await fs.file('/edit', 'old');
  await fs.file('/remove', 'bye');
  const l1 = await checkpoint(fs, 'l1');
  await fs.write('/edit', 0, 'new');
  await fs.unlink('/remove');
  await fs.file('/add', 'hi');
  const l2 = await checkpoint(fs, 'l2');
  t.deepEqual(await diff(fs, l1.layer_id, l2.layer_id), [
    { path: '/add', change: 'added', kind: 'file' },
    { path: '/edit', change: 'modified', kind: 'file' },
    { path: '/remove', change: 'deleted', kind: 'file' },
  ]);
  t.deepEqual(await diff(fs, l2.layer_id, l1.layer_id), [
    { path: '/add', change: 'deleted', kind: 'file' },
    { path: '/edit', change: 'modified', kind: 'file' },
    { path: '/remove', change: 'added', kind: 'file' },
  ]);
  t.deepEqual(await diff(fs, l1.layer_id, l1.layer_id), []);
  const working = await current(fs);
  t.deepEqual(await diff(fs, l2.layer_id, working.layer_id), [], 'the empty working layer changes nothing');
  await fs.write('/same', 0, 'SAME');
  t.deepEqual(await diff(fs, l2.layer_id, working.layer_id), [{ path: '/same', change: 'modified', kind: 'file' }],
    'unsaved changes of the working layer count');
});

test('layer_diff: directories, renames, symlinks, metadata-only changes and non-UTF-8 names', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/dir');
  await fs.file('/dir/inner', 'x');
  await fs.mkdir('/empty');
  await fs.file('/mv-from', 'moving');
  await fs.file('/chmod', 'c');
  await fs.file('/xattr', 'x');
  await fs.file('/owner', 'o');
  await fs.symlink('/chmod', '/link');
  const l1 = await checkpoint(fs, 'l1');

  await fs.rename('/dir', '/dir2');
  await fs.rmdir('/empty');
  await fs.mkdir('/newdir');
  await fs.rename('/mv-from', '/mv-to');
  await fs.chmod('/chmod', 0o600);
  await fs.setxattr('/xattr', 'user.k', 'v');
  await fs.chown('/owner', 5, 5);
  await fs.unlink('/link');
  await fs.symlink('/xattr', '/link');
  await fs.symlink('/owner', '/newlink');
  const odd = Buffer.from([0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe]); // "/bad\xff\xfe"
  await fs.create(odd);
  const l2 = await checkpoint(fs, 'l2');

  const changes = await diff(fs, l1.layer_id, l2.layer_id);
  const byPath = Object.fromEntries(changes.map((c) => [c.path, `${c.change} ${c.kind}`]));
  t.like(byPath, {
    '/dir': 'deleted dir',
    '/dir2': 'added dir',
    '/empty': 'deleted dir',
    '/newdir': 'added dir',
    '/mv-from': 'deleted file',
    '/mv-to': 'added file',
    '/chmod': 'modified file',
    '/xattr': 'modified file',
    '/owner': 'modified file',
    '/link': 'modified symlink',
    '/newlink': 'added symlink',
  });
  t.false('/dir2/inner' in byPath || '/dir/inner' in byPath, 'a renamed directory is one change, not one per entry');
  const raw = await fs.sql<{ path_bytes: Buffer; change: string }[]>`
    select path_bytes, change from tarbox.layer_diff(${l1.layer_id}, ${l2.layer_id}) where change = 'added' and kind = 'file'`;
  t.true(raw.some((r) => r.path_bytes.equals(odd)), 'path_bytes carries the exact bytes of a non-UTF-8 name');
  t.is(changes.length, 12);
  t.is(changes.filter((c) => c.kind === 'symlink').length, 2);
  t.is((await fs.attr('/link')).mode & 0o170000, S_IFLNK);
});

test('layer_diff between sibling branches compares their views', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/common', 'c');
  const base = await checkpoint(fs, 'base');
  await fs.file('/left', 'l');
  await fs.write('/common', 0, 'L');
  await switchTo(fs, base.layer_id);                       // the left branch is auto-saved
  const left = (await layers(fs)).find((l) => l.message?.startsWith('auto-saved'));
  if (!left) return t.fail('no auto-saved layer');
  await fs.file('/right', 'r');
  const right = await checkpoint(fs, 'right');
  t.is(right.parent_layer_id, base.layer_id);
  t.deepEqual(await diff(fs, left.layer_id, right.layer_id), [
    { path: '/common', change: 'modified', kind: 'file' },
    { path: '/left', change: 'deleted', kind: 'file' },
    { path: '/right', change: 'added', kind: 'file' },
  ]);
});

// --- concurrency ----------------------------------------------------------------------------

/** A second and third session bound to the tenant, closed with the test. */
function sessions(t: ExecutionContext, fs: Fs): [Sql, Sql] {
  const make = () => client(env.db.url, { max: 1, connection: { 'tarbox.tenant_id': String(fs.tenantId) } });
  const a = make();
  const b = make();
  t.teardown(async () => { await a.end({ timeout: 5 }); await b.end({ timeout: 5 }); });
  return [a, b];
}

/**
 * Run `layerOp` on session b while session a holds an uncommitted write transaction. If
 * layerOp waits for the writer (a valid design), the writer is let go after 300 ms.
 */
async function duringWrite(a: Sql, write: (tx: Sql) => Promise<unknown>, layerOp: () => Promise<unknown>) {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let written!: () => void;
  const inside = new Promise<void>((r) => { written = r; });
  const writer = a.begin(async (tx) => {
    await write(tx as unknown as Sql);
    written();
    await gate;
  });
  await inside;
  const op = layerOp();
  const waited = await Promise.race([op.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 300))]);
  release();
  await writer;
  await op;
  return { layerOpWaitedForWriter: waited };
}

test('a write transaction in flight during a checkpoint does not change the frozen layer afterwards', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/before', 'b');
  const [a, b] = sessions(t, fs);
  const frozenId = (await current(fs)).layer_id;
  let snapshot: string[] = [];
  await duringWrite(a, (tx) => tx`select tarbox.write_file('/late', convert_to('late', 'UTF8'))`, async () => {
    await b`select tarbox.create_layer('checkpoint')`;
    snapshot = await layerRows(fs.tenantId, frozenId);
  });
  t.deepEqual(await layerRows(fs.tenantId, frozenId), snapshot,
    'rows committed by a transaction that started before the checkpoint must not land in the frozen layer afterwards');
  t.is(await text(fs, '/late'), 'late', 'the write is visible');
});

test('a write transaction in flight during a switch is not lost', async (t) => {
  const fs = await env.tenant(t);
  await fs.file('/base', 'b');
  const l1 = await checkpoint(fs, 'l1');          // the working layer on top is empty
  const [a, b] = sessions(t, fs);
  await duringWrite(a, (tx) => tx`select tarbox.write_file('/in-flight', convert_to('data', 'UTF8'))`,
    () => b`select tarbox.switch_layer(${l1.layer_id})`);
  t.is(await orphanRows(fs.tenantId), 0, 'no rows may be left in a layer that no longer exists');
  // the write must be somewhere: in the current view or in a layer one can switch to
  let found = await fs.exists('/in-flight');
  for (const layer of await layers(fs)) {
    if (found) break;
    await switchTo(fs, layer.layer_id);
    found = await fs.exists('/in-flight');
  }
  t.true(found, '/in-flight is in no layer');
});
