// Text storage through a real mount: a checkpoint written to /.tarbox/layers/new packs the
// frozen layer in the background ([text] pack_on_checkpoint); every file then reads back
// byte for byte from the mount, in every layer, and open files survive the pack.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { client, type Sql } from '../helpers/database.js';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

const TEXT = { max_file_size: 64 * 1024 * 1024, max_line_length: 65536, pack_on_checkpoint: true };

interface TextMount extends Mount { tsql: Sql }

async function mountFor(t: ExecutionContext): Promise<TextMount> {
  const m = await mountFresh({ blockSize: 4096, config: { text: TEXT } });
  const tsql = client(m.url, { max: 1, connection: { 'tarbox.tenant_id': String(m.tenantId) } });
  t.teardown(async () => {
    await tsql.end({ timeout: 5 });
    await finish(t, m);
  });
  return Object.assign(m, { tsql });
}

/** Checkpoint through the control file, then wait for the mount's background pack of it. */
async function checkpoint(m: TextMount, message: string): Promise<number> {
  fs.writeFileSync(m.path('.tarbox', 'layers', 'new'), `${message}\n`);
  const [{ parent_layer_id: layer }] = await m.tsql<{ parent_layer_id: number }[]>`select parent_layer_id from tarbox.current_layer()`;
  for (let i = 0; i < 200; i++) {
    const [{ n }] = await m.tsql<{ n: number }[]>`
      select count(*)::int as n from tarbox_private.packed_layers where tenant_id = ${m.tenantId} and layer_id = ${layer}`;
    if (n === 1) return layer;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`layer ${layer} was not packed:\n${m.log()}`);
}

function switchTo(m: TextMount, layer: number): void {
  fs.writeFileSync(m.path('.tarbox', 'layers', 'switch'), `${layer}\n`);
}

const FILES: Record<string, Buffer> = {
  'crlf.txt': Buffer.from('one\r\ntwo\r\n'),
  'mixed.txt': Buffer.from('a\nb\r\nc\rd\n\r\ne'),
  'unicode.md': Buffer.from('# Überschrift\n日本語\n🌍👍🏽\n'),
  'blank-lines.txt': Buffer.from('\n\n\nx\n\n'),
  'long-line.txt': Buffer.from('L'.repeat(50_000) + '\n'),
  'many-lines.py': Buffer.from(Array.from({ length: 2000 }, (_, i) => `def f${i}(x):\n    return x + ${i}\n`).join('')),
  'invalid-utf8.bin': Buffer.from([0x68, 0x69, 0x0a, 0xc3, 0x28, 0x0a]),
  'nul.bin': Buffer.from('a\0b\n'),
};

test('text files read back byte for byte after their layer is packed, in every layer', async (t) => {
  const m = await mountFor(t);
  for (const [name, data] of Object.entries(FILES)) fs.writeFileSync(m.path(name), data);
  fs.writeFileSync(m.path('empty.txt'), '');
  const first = await checkpoint(m, 'first');

  const [{ text, chunks }] = await m.tsql<{ text: number; chunks: number }[]>`
    select (select count(*)::int from tarbox_private.text_versions where tenant_id = ${m.tenantId}) as text,
           (select count(*)::int from tarbox_private.chunks where tenant_id = ${m.tenantId}) as chunks`;
  t.is(text, 6, 'the six text files are stored as lines');
  t.is(chunks, 2, 'only the two binary files keep chunks');
  for (const [name, data] of Object.entries(FILES)) t.deepEqual(fs.readFileSync(m.path(name)), data, name);
  t.is(fs.readFileSync(m.path('empty.txt')).length, 0);

  // a one-line edit in the middle of the big file, through the mount, then a second checkpoint
  const edited = Buffer.from(FILES['many-lines.py'].toString().replace('return x + 1000\n', 'return x * 1000  # edited\n'));
  const fd = fs.openSync(m.path('many-lines.py'), 'r+');
  fs.writeSync(fd, edited, 0, edited.length, 0);
  fs.closeSync(fd);
  const second = await checkpoint(m, 'second');
  t.deepEqual(fs.readFileSync(m.path('many-lines.py')), edited);
  const [{ depth }] = await m.tsql<{ depth: number }[]>`
    select depth from tarbox_private.text_versions t join tarbox_private.inodes i using (tenant_id, ino)
     where t.tenant_id = ${m.tenantId} and t.layer_id = ${second} and i.size = ${edited.length} limit 1`;
  t.is(depth, 1, 'the edit is stored as a delta');

  switchTo(m, first);
  t.deepEqual(fs.readFileSync(m.path('many-lines.py')), FILES['many-lines.py'], 'the first layer');
  switchTo(m, second);
  t.deepEqual(fs.readFileSync(m.path('many-lines.py')), edited, 'the second layer');
  for (const [name, data] of Object.entries(FILES)) if (name !== 'many-lines.py') t.deepEqual(fs.readFileSync(m.path(name)), data, name);

  // appending to packed text from the mount
  fs.appendFileSync(m.path('crlf.txt'), 'three\r\n');
  t.is(fs.readFileSync(m.path('crlf.txt')).toString(), 'one\r\ntwo\r\nthree\r\n');
});

test('a file held open across the checkpoint and pack keeps reading the right bytes', async (t) => {
  const m = await mountFor(t);
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => `row ${i}\n`).join(''));
  fs.writeFileSync(m.path('open.txt'), data);
  const out = await m.python<string>(`
import subprocess
f = open('open.txt', 'rb', buffering=0)
first = f.read(100)
with open('.tarbox/layers/new', 'w') as c:
    c.write('while open\\n')
import time
time.sleep(1.5)   # the pack runs in the mount's background
f.seek(0)
out((f.read()).hex())
`);
  t.deepEqual(Buffer.from(out, 'hex'), data);
  const [{ n }] = await m.tsql<{ n: number }[]>`select count(*)::int as n from tarbox_private.text_versions where tenant_id = ${m.tenantId}`;
  t.is(n, 1, 'it was packed meanwhile');
});

// Found under load: a file read right after its layer was packed came back as zeros of the
// right length. The pack's commit sends a layer notice; the mount dropped its block maps
// while a read waited for its window's chunks, and the read took the missing entries for
// holes. A chunk cache of one byte makes every read fetch, so each one is exposed.
const UNCACHED_TEXT_MOUNT = { blockSize: 4096, config: { cache: { block_size: 1 }, text: TEXT } };

test('reads stay byte for byte while layer notices drop block maps mid-read', async (t) => {
  const m = await mountFresh(UNCACHED_TEXT_MOUNT);
  t.teardown(() => finish(t, m));
  const data = FILES['many-lines.py'];
  fs.writeFileSync(m.path('many-lines.py'), data);
  // the reader reads until 60 notices have gone out after it started (however slowly a
  // loaded machine sends them); files outside the mount say when
  const signals = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-notices-'));
  t.teardown(() => fs.rmSync(signals, { recursive: true, force: true }));
  const reading = path.join(signals, 'reading');
  const enough = path.join(signals, 'enough');
  let stop = false;
  let notices = 0;
  const notify = (async () => {
    while (!stop) {
      await m.sql`select pg_notify('tarbox_layers', ${String(m.tenantId)})`;
      if (fs.existsSync(reading) && ++notices === 60) fs.writeFileSync(enough, '');
    }
  })();
  try {
    const [wrong, reads, heardEnough] = await m.python<[number, number, boolean]>(`
import time
want = open('many-lines.py', 'rb').read()
def read_uncached():
    # the kernel keeps an unchanged file's pages across opens: drop them, so the read reaches the mount
    with open('many-lines.py', 'rb') as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        return f.read()
deadline, reads, wrong = time.time() + 120, 0, 0
open(${JSON.stringify(reading)}, 'w').close()
while not os.path.exists(${JSON.stringify(enough)}) and time.time() < deadline:
    wrong += read_uncached() != want
    reads += 1
out([wrong, reads, os.path.exists(${JSON.stringify(enough)})])
`);
    t.true(heardEnough, `60 notices went out during the reads (${notices})`);
    t.is(wrong, 0, `no read differed (${reads} reads)`);
  } finally {
    stop = true;
    await notify;
  }
});

test('a file read again and again while its layer packs reads the same bytes', async (t) => {
  const m = await mountFresh(UNCACHED_TEXT_MOUNT);
  t.teardown(() => finish(t, m));
  const wrong = await m.python<string[]>(`
import time
data = ${JSON.stringify(FILES['many-lines.py'].toString())}.encode()
wrong = []
for r in range(6):
    name = 'f%d.py' % r
    with open(name, 'wb') as f: f.write(data)
    with open('.tarbox/layers/new', 'w') as c: c.write('round %d\\n' % r)   # packs in the background
    end = time.time() + 0.5
    while time.time() < end:
        got = open(name, 'rb').read()
        if got != data: wrong.append('%s: %d bytes, %d zero' % (name, len(got), got.count(0)))
out(wrong)
`);
  t.deepEqual(wrong, []);
  let packed = 0;
  for (let i = 0; i < 200 && packed < 6; i++, await new Promise((r) => setTimeout(r, 50))) {
    [{ packed }] = await m.sql<{ packed: number }[]>`
      select count(*)::int as packed from tarbox_private.text_versions where tenant_id = ${m.tenantId}`;
  }
  t.is(packed, 6, 'every round was packed');
});
