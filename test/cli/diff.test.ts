// tarbox diff, tarbox pack and tarbox layer diff --patch through the built CLI.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { cliRunner, failsWith, text } from '../helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-cli-diff-'));
let db: FreshDatabase;
const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

test.before(async () => {
  db = await freshDatabase();
  await ok(['tenant', 'create', 'dif']);
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

const json = async <T>(args: string[]): Promise<T> => JSON.parse(text(await ok([...args, '--json']))) as T;
const numbered = (n: number, change: (i: number) => string | null = () => null) =>
  Array.from({ length: n }, (_, i) => change(i + 1) ?? `line ${i + 1}`).join('\n') + '\n';
interface Layer { layer_id: number }
interface Version { layer_id: number; storage: string; size: number; is_working: boolean; message: string | null; line_count: number | null }

let v1: number;
let v2: number;

test.serial('history, and the diff of the last two versions by default', async (t) => {
  await ok(['write', '-t', 'dif', '/notes.md', numbered(20)]);
  v1 = (await json<Layer>(['layer', 'create', '-t', 'dif', '-m', 'first'])).layer_id;
  await ok(['write', '-t', 'dif', '/notes.md', numbered(20, (i) => (i === 2 ? 'two' : i === 15 ? 'fifteen' : null))]);
  v2 = (await json<Layer>(['layer', 'create', '-t', 'dif', '-m', 'second'])).layer_id;

  const versions = await json<Version[]>(['diff', '-t', 'dif', '/notes.md', '--history']);
  t.deepEqual(versions.map((v) => [v.layer_id, v.storage, v.line_count, v.message]),
    [[v1, 'text', 20, 'first'], [v2, 'text', 20, 'second']], 'layer create packed both versions');
  t.regex(text(await ok(['diff', '-t', 'dif', 'notes.md', '--history'])), /^LAYER\s+PARENT\s+CREATED\s+SIZE\s+LINES\s+STORAGE\s+MESSAGE\n/);

  t.is(text(await ok(['diff', '-t', 'dif', '/notes.md'])), [
    '--- a/notes.md', '+++ b/notes.md',
    '@@ -1,5 +1,5 @@', ' line 1', '-line 2', '+two', ' line 3', ' line 4', ' line 5',
    '@@ -12,7 +12,7 @@', ' line 12', ' line 13', ' line 14', '-line 15', '+fifteen', ' line 16', ' line 17', ' line 18', '',
  ].join('\n'));
  t.is(text(await ok(['diff', '-t', 'dif', '/notes.md', '--stat'])),
    ' /notes.md |    4 ++--\n 1 file changed, 2 insertions(+), 2 deletions(-)\n');
  t.is(text(await ok(['diff', '-t', 'dif', '/notes.md', '-U', '0'])), [
    '--- a/notes.md', '+++ b/notes.md', '@@ -2 +2 @@', '-line 2', '+two', '@@ -15 +15 @@', '-line 15', '+fifteen', '',
  ].join('\n'));
});

test.serial('--from/--to (either order, the working layer too) and --json', async (t) => {
  await ok(['write', '-t', 'dif', '/notes.md', numbered(3)]);  // unsaved, in the working layer
  const versions = await json<Version[]>(['diff', '-t', 'dif', '/notes.md', '--history']);
  t.is(versions.length, 3);
  const working = versions[2];
  t.true(working.is_working);
  t.is(working.storage, 'blocks');

  const back = await json<{ insertions: number; deletions: number; hunks: { lines: string[] }[] }[]>(
    ['diff', '-t', 'dif', '/notes.md', '--from', String(v2), '--to', String(v1)]);
  t.is(back[0].insertions, 2);
  t.is(back[0].deletions, 2);
  t.deepEqual(back[0].hunks[0].lines.slice(0, 4), ['@@ -1,5 +1,5 @@', ' line 1', '-two', '+line 2']);

  t.is(text(await ok(['diff', '-t', 'dif', '/notes.md', '--stat'])),
    ` /notes.md |   19 +${'-'.repeat(18)}\n 1 file changed, 1 insertion(+), 18 deletions(-)\n`, 'the last two: v2 and the working layer');
});

test.serial('layer diff --patch: added, modified, deleted and binary files', async (t) => {
  await ok(['write', '-t', 'dif', '/gone.txt', 'bye\n']);
  await ok(['write', '-t', 'dif', '/data.bin'], { input: Buffer.from([0, 1, 2, 3]) });
  const before = (await json<Layer>(['layer', 'create', '-t', 'dif'])).layer_id;
  await ok(['rm', '-t', 'dif', '/gone.txt']);
  await ok(['write', '-t', 'dif', '/new.txt', 'hello\nworld\n']);
  await ok(['write', '-t', 'dif', '/data.bin'], { input: Buffer.from([0, 1, 2, 4]) });
  const after = (await json<Layer>(['layer', 'create', '-t', 'dif'])).layer_id;

  t.is(text(await ok(['layer', 'diff', '-t', 'dif', String(before), String(after), '--patch'])), [
    'Binary files a/data.bin and b/data.bin differ',
    '--- a/gone.txt', '+++ /dev/null', '@@ -1 +0,0 @@', '-bye',
    '--- /dev/null', '+++ b/new.txt', '@@ -0,0 +1,2 @@', '+hello', '+world', '',
  ].join('\n'));
  t.is(text(await ok(['layer', 'diff', '-t', 'dif', String(before), String(after), '--stat'])), [
    ' /data.bin | Bin', ' /gone.txt |    1 -', ' /new.txt  |    2 ++', ' 3 files changed, 2 insertions(+), 1 deletion(-)', '',
  ].join('\n'));
  // without --patch: unchanged A/M/D listing
  t.is(text(await ok(['layer', 'diff', '-t', 'dif', String(before), String(after)])), 'M  /data.bin\nD  /gone.txt\nA  /new.txt\n');
});

test.serial('tarbox pack reports what it did; errors are one line with the documented exit code', async (t) => {
  const config = path.join(work, 'nopack.toml');
  fs.writeFileSync(config, '[text]\npack_on_checkpoint = false\n');
  await ok(['write', '-t', 'dif', '/late.txt', 'a\nb\n']);
  await ok(['--config', config, 'layer', 'create', '-t', 'dif']);
  const result = await json<{ layers: number; text_files: number }>(['pack', '-t', 'dif']);
  t.deepEqual([result.layers, result.text_files], [1, 1]);
  t.regex(text(await ok(['pack', '-t', 'dif'])), /^packed 0 layers: 0 text files/);

  failsWith(t, await tarbox(['diff', '-t', 'dif', '/missing.txt']), 3, /no such file/);
  failsWith(t, await tarbox(['diff', '-t', 'dif', '/notes.md', '--from', 'x']), 2, /layer id/);
  failsWith(t, await tarbox(['diff', '-t', 'dif', '/notes.md', '--from', '999999']), 3, /no such layer/);
  failsWith(t, await tarbox(['diff', '-t', 'dif', '/notes.md', '-U', '-1']), 2, /context lines/);
  failsWith(t, await tarbox(['diff', '-t', 'dif', '/']), 1, /directory/);
});
