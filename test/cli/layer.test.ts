// tarbox layer list|create|switch|delete|diff through the built CLI, against a fresh database.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { cliRunner, failsWith, text } from '../helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-cli-layer-'));
let db: FreshDatabase;
const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

test.before(async () => {
  db = await freshDatabase();
  await ok(['tenant', 'create', 'lay']);
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

const json = async <T>(args: string[]): Promise<T> => JSON.parse(text(await ok([...args, '--json']))) as T;
interface Layer { layer_id: number; parent_layer_id: number | null; message: string | null; is_working: boolean; in_view: boolean }
interface Change { path: string; change: string; kind: string }

test.serial('create, list, diff, switch back and forth, delete', async (t) => {
  await ok(['write', '-t', 'lay', '/keep.txt', 'v1']);
  await ok(['write', '-t', 'lay', '/gone.txt', 'bye']);
  const first = await json<Layer>(['layer', 'create', '-t', 'lay', '-m', 'first']);
  t.is(first.message, 'first');

  await ok(['write', '-t', 'lay', '/keep.txt', 'v2']);
  await ok(['rm', '-t', 'lay', '/gone.txt']);
  await ok(['write', '-t', 'lay', '/new.txt', 'new']);
  const second = await json<Layer>(['layer', 'create', '-t', 'lay', '-m', 'second']);

  const layers = await json<Layer[]>(['layer', 'list', '-t', 'lay']);
  t.deepEqual(layers.map((l) => [l.layer_id, l.message, l.is_working]),
    [[first.layer_id, 'first', false], [second.layer_id, 'second', false], [layers[2].layer_id, null, true]]);
  t.regex(text(await ok(['layer', 'list', '-t', 'lay'])), /^ID\s+PARENT\s+CREATED/);

  const changes = await json<Change[]>(['layer', 'diff', '-t', 'lay', String(first.layer_id), String(second.layer_id)]);
  t.deepEqual(changes.map((c) => [c.path, c.change]), [['/gone.txt', 'deleted'], ['/keep.txt', 'modified'], ['/new.txt', 'added']]);
  t.is(text(await ok(['layer', 'diff', '-t', 'lay', String(first.layer_id), String(second.layer_id)])),
    'D  /gone.txt\nM  /keep.txt\nA  /new.txt\n');

  await ok(['layer', 'switch', '-t', 'lay', String(first.layer_id)]);
  t.is(text(await ok(['cat', '-t', 'lay', '/keep.txt'])), 'v1');
  t.is(text(await ok(['cat', '-t', 'lay', '/gone.txt'])), 'bye');
  failsWith(t, await tarbox(['cat', '-t', 'lay', '/new.txt']), 3, /new\.txt/);

  await ok(['layer', 'switch', '-t', 'lay', String(second.layer_id)]);
  t.is(text(await ok(['cat', '-t', 'lay', '/keep.txt'])), 'v2');

  // the first checkpoint is part of the view (an ancestor): it cannot go
  failsWith(t, await tarbox(['layer', 'delete', '-t', 'lay', String(first.layer_id)]), 1, /current view/);
});

test.serial('errors: unknown layer, bad id, unknown tenant', async (t) => {
  failsWith(t, await tarbox(['layer', 'switch', '-t', 'lay', '999999']), 3, /no such layer/);
  failsWith(t, await tarbox(['layer', 'switch', '-t', 'lay', 'abc']), 2, /layer id/);
  failsWith(t, await tarbox(['layer', 'list', '-t', 'nobody']), 3, /unknown tenant/);
});
