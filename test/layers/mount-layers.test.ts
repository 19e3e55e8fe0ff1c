// Layers through a real mount: the control directory /.tarbox/layers (shim/control.ts),
// a whole tree checkpointed, changed in every way and switched back and forth, open files
// across a switch, and what a second mount of the same tenant sees.
//
// Every test has its own mount (and database), so no test depends on another's layers.
// Some use a mount with the kernel's attribute and entry caches off
// (attr_timeout = entry_timeout = 0) to check layer semantics exactly; the tests named
// "default caches" use the default 1 s and document what those caches do across a switch.
// The test process is only ever the client: the mounts are served by child processes.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { client, type Sql } from '../helpers/database.js';
import { allowTime, errorCode, finish, mountFresh, type Mount, type MountFreshOptions } from '../helpers/mount.js';

const BS = 4096;
const NO_KERNEL_CACHE = { filesystem: { attr_timeout: 0, entry_timeout: 0 } };

interface LayerRow {
  layer_id: number;
  parent_layer_id: number | null;
  message: string | null;
  frozen_at: Date | null;
  is_working: boolean;
  in_view: boolean;
}

interface TestMount extends Mount {
  /** A client bound to the mount's tenant, to look at layers from SQL. */
  tsql: Sql;
}

async function mountFor(t: ExecutionContext, options: MountFreshOptions = {}): Promise<TestMount> {
  const m = await mountFresh({ blockSize: BS, ...options });
  const tsql = client(m.url, { max: 1, connection: { 'tarbox.tenant_id': String(m.tenantId) } });
  t.teardown(async () => {
    await tsql.end({ timeout: 5 });
    await finish(t, m);
  });
  return Object.assign(m, { tsql });
}

/** A command through the control directory, as a user would: echo VALUE > /.tarbox/layers/FILE. */
function control(m: Mount, file: 'new' | 'switch', value: string | number): void {
  fs.writeFileSync(m.path('.tarbox', 'layers', file), `${value}\n`);
}

async function layers(m: TestMount): Promise<LayerRow[]> {
  return [...(await m.tsql<LayerRow[]>`select * from tarbox.list_layers()`)];
}

async function currentLayer(m: TestMount): Promise<LayerRow> {
  const [row] = await m.tsql<LayerRow[]>`select * from tarbox.current_layer()`;
  return row;
}

/** Checkpoint through the control file; returns the id of the frozen layer. */
async function checkpoint(m: TestMount, message: string): Promise<number> {
  control(m, 'new', message);
  const cur = await currentLayer(m);
  if (cur.parent_layer_id === null) throw new Error('checkpoint made no layer');
  return cur.parent_layer_id;
}

/** Every stat field that a layer must bring back (all but atime), xattrs, link targets and content hashes. */
const MANIFEST_PY = `
import hashlib, stat
def entry(p):
    st = os.lstat(p)
    e = {'mode': st.st_mode, 'uid': st.st_uid, 'gid': st.st_gid, 'nlink': st.st_nlink, 'ino': st.st_ino,
         'mtime_ns': st.st_mtime_ns, 'ctime_ns': st.st_ctime_ns}
    if stat.S_ISLNK(st.st_mode):
        e['target'] = os.readlink(p)
    else:
        e['xattrs'] = {n: os.getxattr(p, n, follow_symlinks=False).hex() for n in sorted(os.listxattr(p, follow_symlinks=False))}
    if stat.S_ISREG(st.st_mode):
        e['size'] = st.st_size
        with open(p, 'rb') as f:
            e['sha256'] = hashlib.sha256(f.read()).hexdigest()
    return e
res = {}
def walk(rel):
    res[rel] = entry(rel)
    if stat.S_ISDIR(os.lstat(rel).st_mode):
        for n in sorted(os.listdir(rel)):
            walk(os.path.join(rel, n))
walk('.')
out(res)
`;

interface Entry {
  mode: number; uid: number; gid: number; nlink: number; ino: number; mtime_ns: number; ctime_ns: number;
  target?: string; xattrs?: Record<string, string>; size?: number; sha256?: string;
}
type Manifest = Record<string, Entry>;

function manifest(m: Mount, dir = m.mountpoint): Promise<Manifest> {
  return m.python<Manifest>(MANIFEST_PY, { cwd: dir });
}

/** What cp -a carries to another filesystem: everything but inode numbers and ctime. */
function portable(man: Manifest): Record<string, Omit<Entry, 'ino' | 'ctime_ns'>> {
  return Object.fromEntries(Object.entries(man).map(([p, { ino: _ino, ctime_ns: _ctime, ...rest }]) => [p, rest]));
}

/** Paths grouped by inode: hard links share one. */
function linkGroups(man: Manifest): string[][] {
  const byIno = new Map<number, string[]>();
  for (const [p, e] of Object.entries(man)) byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), p]);
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
}

const BUILD_TREE = String.raw`set -e
mkdir -p tree/sub/deeper tree/emptydir tree/sticky
printf 'hello\n' > tree/a.txt
head -c 300000 /dev/urandom > tree/big.bin
: > tree/empty
printf 'with space' > 'tree/with space'
printf 'unicode' > tree/ünï
printf 'deep' > tree/sub/deeper/deep.txt
printf '#!/bin/sh\n' > tree/sub/run.sh
chmod 4755 tree/sub/run.sh
chmod 1777 tree/sticky
chmod 700 tree/sub/deeper
printf 'linked' > tree/hard1
ln tree/hard1 tree/sub/hard2
ln -s a.txt tree/sym-rel
ln -s /nonexistent/target tree/sym-dangling
ln -s sub tree/sym-dir
mkfifo tree/fifo
chown 1234:5678 tree/a.txt
chown -h 42:43 tree/sym-rel
chown 1000:1000 tree/sub
chown 7:8 tree/hard1
python3 -c "
import os
os.setxattr('tree/a.txt', 'user.color', b'blue')
os.setxattr('tree/a.txt', 'user.empty', b'')
os.setxattr('tree/sub', 'user.dir', b'\x00\x01binary')
os.setxattr('tree/hard1', 'trusted.t', b'v')
"
touch -h -d '2001-02-03 04:05:06.123456789' tree/sym-rel
touch -d '2001-02-03 04:05:06.123456789' tree/a.txt
touch -d '1999-12-31 23:59:59.999999999' tree/big.bin
touch -d '2010-01-01 00:00:00.000000001' tree/sub/deeper tree/sub tree/emptydir
printf 'top' > top.txt
`;

const CHANGE_EVERYTHING = String.raw`set -e
printf 'changed\n' > tree/a.txt
python3 -c "
f = open('tree/big.bin', 'r+b'); f.seek(150000); f.write(b'MIDDLE'); f.close()
"
rm tree/empty
mv 'tree/with space' tree/renamed
mv tree/sub tree/sub-moved
chmod 600 tree/ünï
chown 99:98 tree/hard1
rm tree/sub-moved/hard2
ln tree/ünï tree/new-hard
rm tree/sym-rel
ln -s big.bin tree/sym-rel
chown -h 5:6 tree/sym-dangling
rm tree/fifo
rmdir tree/emptydir
mkdir tree/newdir
printf 'new' > tree/newdir/new.txt
chmod 755 tree/sticky
python3 -c "
import os
os.setxattr('tree/a.txt', 'user.color', b'red')
os.removexattr('tree/a.txt', 'user.empty')
os.setxattr('tree/renamed', 'user.added', b'1')
os.removexattr('tree/sub-moved', 'user.dir')
"
touch -d '2020-05-05 05:05:05.555555555' tree/big.bin
rm top.txt
`;

// --- a whole tree, back and forth --------------------------------------------------------------

test.serial('a checkpointed tree comes back exactly after everything in it changed, and forth again', async (t) => {
  await allowTime(t, 120_000);
  const m = await mountFor(t, { config: NO_KERNEL_CACHE });
  await m.check(BUILD_TREE);
  const base = await checkpoint(m, 'base tree');
  t.is((await layers(m)).find((l) => l.layer_id === base)?.message, 'base tree');

  const before = await manifest(m);
  const copyBefore = path.join(m.scratch, 'before');
  await m.check(`cp -a . '${copyBefore}'`);
  t.false(fs.existsSync(path.join(copyBefore, '.tarbox')), 'cp -a does not copy the control directory');
  t.deepEqual(portable(await manifest(m, copyBefore)), portable(before), 'the copy aside is faithful');
  t.deepEqual(linkGroups(before), [['./tree/hard1', './tree/sub/hard2']]);
  t.is(before['./tree/a.txt'].mtime_ns, 981173106123456789);
  t.is(before['./tree/a.txt'].uid, 1234);
  t.is(before['./tree/sub/run.sh'].mode, 0o104755);

  await m.check(CHANGE_EVERYTHING);
  const after = await manifest(m);
  const copyAfter = path.join(m.scratch, 'after');
  await m.check(`cp -a . '${copyAfter}'`);
  t.notDeepEqual(after, before);
  t.deepEqual(linkGroups(after), [['./tree/new-hard', './tree/ünï']]);
  const changed = await currentLayer(m);

  control(m, 'switch', base);
  const back = await manifest(m);
  t.deepEqual(back, before, 'every file, link, mode, owner, time (ns), xattr and inode number is as checkpointed');
  t.deepEqual(portable(back), portable(await manifest(m, copyBefore)), 'and matches the copy made at checkpoint time');
  t.deepEqual(linkGroups(back), [['./tree/hard1', './tree/sub/hard2']], 'hard links share one inode again');

  const saved = (await layers(m)).find((l) => l.layer_id === changed.layer_id);
  t.is(saved?.message, `auto-saved before switching to layer ${base}`, 'the changes were auto-saved, not lost');
  control(m, 'switch', changed.layer_id);
  const forth = await manifest(m);
  t.deepEqual(forth, after, 'switching forward brings every change back');
  t.deepEqual(portable(forth), portable(await manifest(m, copyAfter)));

  for (let round = 0; round < 2; round++) {
    control(m, 'switch', base);
    t.deepEqual(await manifest(m), before, `round ${round}: back`);
    control(m, 'switch', changed.layer_id);
    t.deepEqual(await manifest(m), after, `round ${round}: forth`);
  }
});

// --- the control directory ---------------------------------------------------------------------

test.serial('control files: checkpoint, current and list; errors are the errno of the write', async (t) => {
  const m = await mountFor(t);
  fs.writeFileSync(m.path('f'), 'one');
  const first = await checkpoint(m, 'first');
  const cur = await currentLayer(m);
  const r = await m.python<unknown[]>(`
def cmd(name, data, flags=os.O_WRONLY | os.O_TRUNC):
    fd = os.open('.tarbox/layers/' + name, flags)
    try:
        return E(os.write, fd, data)
    finally:
        os.close(fd)
out([
  cmd('switch', b'987654321\\n'),      # unknown layer
  cmd('switch', b'abc\\n'),            # not a number
  cmd('switch', b'-1\\n'),
  cmd('switch', b'1.5\\n'),
  cmd('switch', b'\\n'),
  cmd('new', b'bell\\x07\\n'),         # a message with a control character
  cmd('new', b'x' * 1001),
  E(os.open, '.tarbox/layers/list', os.O_WRONLY | os.O_TRUNC),
  E(os.open, '.tarbox/layers/nope', os.O_RDONLY),
  cmd('switch', b'%d\\n' % ${first}),  # a valid switch still works afterwards
])`);
  t.deepEqual(r, ['ENOENT', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EACCES', 'ENOENT', String(first).length + 1]);
  const after = await currentLayer(m);
  t.is(after.parent_layer_id, first, 'the valid switch happened');
  t.not(after.layer_id, cur.layer_id);
  t.is((await layers(m)).filter((l) => l.message === 'first').length, 1, 'failed checkpoints made no layer');

  // echo through a shell; the shell (dash) reports any failed write as "I/O error", the errno is ENOENT
  const echo = await m.run('echo 987654321 > .tarbox/layers/switch');
  t.not(echo.code, 0);
  const bash = await m.run(`bash -c 'echo 987654321 > .tarbox/layers/switch'`);
  t.regex(bash.stderr, /No such file or directory/);
});

test.serial('control files cannot be removed, renamed, created, linked or changed (EPERM)', async (t) => {
  const m = await mountFor(t);
  fs.writeFileSync(m.path('plain'), 'x');
  const r = await m.python<Record<string, string>>(`
L = '.tarbox/layers/'
out({
  'rm new': E(os.unlink, L + 'new'),
  'rm list': E(os.unlink, L + 'list'),
  'rmdir layers': E(os.rmdir, '.tarbox/layers'),
  'rmdir .tarbox': E(os.rmdir, '.tarbox'),
  'mv new': E(os.rename, L + 'new', 'moved'),
  'mv into': E(os.rename, 'plain', L + 'switch'),
  'mv dir': E(os.rename, '.tarbox', 'elsewhere'),
  'create': E(os.open, L + 'mine', os.O_WRONLY | os.O_CREAT, 0o644),
  'mkdir': E(os.mkdir, '.tarbox/x'),
  'link': E(os.link, L + 'new', 'hard'),
  'symlink': E(os.symlink, 'x', L + 'sym'),
  'chmod': E(os.chmod, L + 'switch', 0o777),
  'chown': E(os.chown, L + 'switch', 5, 5),
  'utime': E(os.utime, L + 'switch', (1, 1)),
  'setxattr': E(os.setxattr, L + 'switch', 'user.k', b'v'),
})`);
  for (const [op, code] of Object.entries(r)) t.is(code, 'EPERM', op);
  const rmrf = await m.run('rm -rf .tarbox');
  t.not(rmrf.code, 0);
  t.regex(rmrf.stderr, /Operation not permitted/);
  t.deepEqual(fs.readdirSync(m.path('.tarbox', 'layers')).sort(), ['current', 'list', 'new', 'switch']);
  t.false(fs.existsSync(m.path('moved')) || fs.existsSync(m.path('hard')) || fs.existsSync(m.path('elsewhere')));
});

test.serial('/.tarbox is hidden from listings and walks but reachable by name', async (t) => {
  const m = await mountFor(t);
  await m.check('mkdir -p d/e && echo x > d/e/f && echo y > top');
  t.deepEqual((await m.check('ls -a')).split('\n').filter(Boolean), ['.', '..', 'd', 'top']);
  t.deepEqual((await m.check('ls -A .')).split('\n').filter(Boolean), ['d', 'top']);
  t.deepEqual((await m.check('find . | sort')).split('\n').filter(Boolean), ['.', './d', './d/e', './d/e/f', './top']);
  t.deepEqual((await m.check('tar cf - . | tar tf - | sort')).split('\n').filter(Boolean), ['./', './d/', './d/e/', './d/e/f', './top']);
  t.deepEqual(fs.readdirSync(m.mountpoint).sort(), ['d', 'top']);
  // by name
  t.true(fs.statSync(m.path('.tarbox')).isDirectory());
  t.deepEqual(fs.readdirSync(m.path('.tarbox')), ['layers']);
  t.deepEqual(fs.readdirSync(m.path('.tarbox', 'layers')).sort(), ['current', 'list', 'new', 'switch']);
  t.is(errorCode(() => fs.mkdirSync(m.path('.tarbox'))), 'EEXIST', 'the name is taken');
  t.is(errorCode(() => fs.statSync(m.path('.tarbox', 'nothing'))), 'ENOENT');
});

test.serial('reading a control file returns exactly its content, every time (default caches)', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t);
  const expectedCurrent = async () => {
    const cur = await currentLayer(m);
    return `${cur.layer_id}\t${cur.parent_layer_id ?? '-'}\n`;
  };
  const listLines = async () => (await layers(m)).length + 1;
  const problems: string[] = [];

  // 1. many reads in a row, alone and with another process stat()ing the file meanwhile
  const want = await expectedCurrent();
  const sizes = async (cmd: string) => (await m.check(cmd)).split('\n').filter(Boolean).map(Number);
  const alone = await sizes('for i in $(seq 30); do cat .tarbox/layers/current | wc -c; done');
  const statting = await sizes(
    '(while :; do stat .tarbox/layers/current >/dev/null; done) & S=$!; for i in $(seq 30); do cat .tarbox/layers/current | wc -c; done; kill $S');
  const wrong = [...alone, ...statting].filter((n) => n !== want.length);
  if (wrong.length) problems.push(`${wrong.length} of 60 reads of current gave ${[...new Set(wrong)].join('/')} bytes instead of ${want.length} (the rest NULs)`);
  // 2. a read after the kernel's attributes expired
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 1100));
    const out = (await m.run('cat .tarbox/layers/current')).stdout;
    if (out !== want) problems.push(`cat current after 1.1 s gave ${out.length} bytes, want ${JSON.stringify(want)}`);
  }

  // 3. the list grows while the kernel still holds the size of the previous read
  fs.writeFileSync(m.path('f'), 'x');
  await m.run('cat .tarbox/layers/list');
  control(m, 'new', 'a checkpoint with a long message to make the list grow');
  const grown = (await m.run('cat .tarbox/layers/list')).stdout;
  if (grown.split('\n').length - 1 !== (await listLines()) || !grown.endsWith('\n')) {
    problems.push(`list right after a checkpoint: ${JSON.stringify(grown)}`);
  }
  // 4. current right after a checkpoint on the same mount (its content changed, maybe not its length)
  const cur = (await m.run('cat .tarbox/layers/current')).stdout;
  if (cur !== (await expectedCurrent())) problems.push(`current right after a checkpoint: ${JSON.stringify(cur)}`);

  t.deepEqual(problems, []);
});

// --- open files across a switch -----------------------------------------------------------------

test.serial('open files across a switch: buffered writes are saved first; later reads and writes use the new view', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t, { config: NO_KERNEL_CACHE });
  const MiB = 1 << 20;
  fs.writeFileSync(m.path('big'), Buffer.alloc(MiB, 'a'));
  fs.writeFileSync(m.path('small'), 'version one\n');
  fs.writeFileSync(m.path('resized'), 'version one\n');
  const l1 = await checkpoint(m, 'one');
  fs.writeFileSync(m.path('big'), Buffer.alloc(MiB, 'b'));
  fs.writeFileSync(m.path('small'), 'version two, longer\n');
  fs.writeFileSync(m.path('resized'), 'version two, longer\n');
  fs.writeFileSync(m.path('newfile'), 'only after the checkpoint\n');

  const reader = fs.openSync(m.path('big'), 'r');
  const resized = fs.openSync(m.path('resized'), 'r');
  const writer = fs.openSync(m.path('small'), 'r+');
  const orphan = fs.openSync(m.path('newfile'), 'r+');
  const buf = Buffer.alloc(4);
  try {
    fs.readSync(reader, buf, 0, 4, 0);
    t.is(buf.toString(), 'bbbb');
    fs.writeSync(writer, 'XX', 0);           // buffered in the mount, not yet committed
    fs.writeSync(orphan, 'YY', 0);
    const unsaved = await currentLayer(m);

    control(m, 'switch', l1);

    // reads: ranges not read before come from the new view; the kernel may still hold pages it read
    fs.readSync(reader, buf, 0, 4, 512 * 1024);
    t.is(buf.toString(), 'aaaa', 'an uncached range of an open file reads the switched-to layer');
    fs.readSync(reader, buf, 0, 4, 0);
    t.true(['aaaa', 'bbbb'].includes(buf.toString()), 'a range read before the switch may come from the page cache');
    t.log(`offset 0 of the open file after the switch reads ${JSON.stringify(buf.toString())} (page cache)`);

    // a file whose size differs between the layers, opened before the switch and not read before it
    const whole = Buffer.alloc(100);
    const n = fs.readSync(resized, whole, 0, 100, 0);
    t.is(whole.toString('latin1', 0, n), 'version one\n', "an open file reads the switched-to version, at that version's size");
    t.is(fs.fstatSync(resized).size, 12, "fstat of an open file gives the switched-to version's size");

    // writes through a descriptor opened before the switch go to the new working layer
    fs.writeSync(writer, 'ZZ', 2);
    fs.closeSync(writer);
    t.is(JSON.stringify(fs.readFileSync(m.path('small'), 'latin1')), JSON.stringify('veZZion one\n'),
      "applied to the switched-to layer's version of the file, which keeps its size");

    // a file that does not exist in the switched-to layer: its descriptor fails with ENOENT
    t.is(errorCode(() => fs.readSync(orphan, buf, 0, 2, 10)), 'ENOENT');
    t.is(errorCode(() => fs.writeSync(orphan, 'QQ', 2)), 'ENOENT');
    t.false(fs.existsSync(m.path('newfile')));

    // nothing buffered before the switch was lost: it is in the auto-saved layer
    t.is((await layers(m)).find((l) => l.layer_id === unsaved.layer_id)?.message, `auto-saved before switching to layer ${l1}`);
    control(m, 'switch', unsaved.layer_id);
    t.is(fs.readFileSync(m.path('small'), 'utf8'), 'XXrsion two, longer\n', 'the write made before the switch, without the later one');
    t.is(fs.readFileSync(m.path('newfile'), 'utf8'), 'YYly after the checkpoint\n');
    t.true(fs.readFileSync(m.path('big')).equals(Buffer.alloc(MiB, 'b')));
  } finally {
    for (const fd of [reader, resized, orphan]) errorCode(() => fs.closeSync(fd));
  }
});

// --- visibility: the switching mount and other mounts ----------------------------------------------

/** A tenant state with two layers that differ in names, sizes and contents. */
async function twoStates(m: TestMount): Promise<number> {
  fs.writeFileSync(m.path('f'), 'v1');
  fs.mkdirSync(m.path('dir'));
  fs.writeFileSync(m.path('dir', 'g'), 'first version of g');
  const l1 = await checkpoint(m, 'v1');
  fs.writeFileSync(m.path('f'), 'version two is longer');
  fs.writeFileSync(m.path('dir', 'g'), 'g2');
  fs.writeFileSync(m.path('only-new'), 'new');
  return l1;
}

/** Does the tree under root look like layer v1 of twoStates? (Reads names, sizes and contents.) */
function showsV1(root: string): string | null {
  try {
    if (fs.existsSync(path.join(root, 'only-new'))) return 'only-new still exists';
    const names = fs.readdirSync(root).sort().join(',');
    if (names !== 'dir,f') return `root lists ${names}`;
    const f = fs.readFileSync(path.join(root, 'f'), 'latin1');
    if (f !== 'v1') return `f reads ${JSON.stringify(f)}`;
    const g = fs.readFileSync(path.join(root, 'dir', 'g'), 'latin1');
    if (g !== 'first version of g') return `dir/g reads ${JSON.stringify(g)}`;
    if (fs.statSync(path.join(root, 'f')).size !== 2) return 'f has the wrong size';
    return null;
  } catch (err) {
    return String(err);
  }
}

/** Look at the new state from root first (filling every cache), then switch with `doSwitch`. */
async function measureSwitch(root: string, doSwitch: () => void): Promise<{ first: string | null; latencyMs: number; stable: boolean }> {
  const look = () => {
    fs.existsSync(path.join(root, 'only-new'));
    fs.readdirSync(root);
    fs.readFileSync(path.join(root, 'f'));
    fs.readFileSync(path.join(root, 'dir', 'g'));
  };
  look();
  look();
  const start = Date.now();
  doSwitch();
  const first = showsV1(root);
  let latencyMs = 0;
  if (first !== null) {
    while (showsV1(root) !== null) {
      if (Date.now() - start > 10_000) return { first, latencyMs: Infinity, stable: false };
      await new Promise((r) => setTimeout(r, 10));
    }
    latencyMs = Date.now() - start;
  }
  let stable = true;
  for (let i = 0; i < 20; i++) {
    if (showsV1(root) !== null) stable = false;
    await new Promise((r) => setTimeout(r, 60));
  }
  return { first, latencyMs, stable };
}

// A checkpoint drops the mount's metadata cache, and until the root is looked up again the
// cache cannot place new names. It used to mark a directory made then as complete and empty
// anyway, so the third level of a `mkdir -p` right after a checkpoint answered ENOENT (the
// directory was made, its lookup said it was not there).
test.serial('right after a checkpoint a new tree can be made and used at once (default caches)', async (t) => {
  const m = await mountFor(t);
  for (let i = 0; i < 3; i++) {
    await checkpoint(m, `c${i}`);
    fs.mkdirSync(m.path(`t${i}`, 'a', 'b'), { recursive: true });
    fs.writeFileSync(m.path(`t${i}`, 'a', 'b', 'f'), `file ${i}`);
    t.is(fs.readFileSync(m.path(`t${i}`, 'a', 'b', 'f'), 'utf8'), `file ${i}`);
    t.deepEqual(fs.readdirSync(m.path(`t${i}`, 'a')), ['b']);
    t.deepEqual(fs.readdirSync(m.path(`t${i}`, 'a', 'b')), ['f']);
  }
});

test.serial('the switching mount shows the switched-to layer at once (default caches)', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t);
  const l1 = await twoStates(m);
  const r = await measureSwitch(m.mountpoint, () => control(m, 'switch', l1));
  t.log(`same mount: first look after the switch: ${r.first ?? 'correct'}; correct after ${r.latencyMs} ms`);
  t.true(r.stable);
  t.true(r.latencyMs <= 1500, 'stale for at most the kernel cache time');
  t.is(r.first, null, 'the mount that switched must not show the old state (kernel entry/attribute caches)');
});

test.serial('the switching mount shows the switched-to layer at once (kernel caches off)', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t, { config: NO_KERNEL_CACHE });
  const l1 = await twoStates(m);
  const r = await measureSwitch(m.mountpoint, () => control(m, 'switch', l1));
  t.is(r.first, null);
  t.true(r.stable);
});

test.serial('a second mount of the tenant sees a switch within the cache time (default caches)', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t);
  const other = await m.mountAgain();
  const l1 = await twoStates(m);
  const r = await measureSwitch(other.mountpoint, () => control(m, 'switch', l1));
  t.log(`second mount: first look after the switch: ${r.first ?? 'correct'}; correct after ${r.latencyMs} ms`);
  t.true(r.stable, 'once correct, it stays correct');
  t.true(r.latencyMs <= 2500, `the documented bound (about 1 s of kernel caches, plus NOTIFY): took ${r.latencyMs} ms`);
  // and the other way round: a switch made on the second mount reaches the first
  const unsaved = (await layers(m)).find((l) => l.message === `auto-saved before switching to layer ${l1}`);
  if (!unsaved) return t.fail('no auto-saved layer');
  const start = Date.now();
  fs.writeFileSync(path.join(other.mountpoint, '.tarbox', 'layers', 'switch'), `${unsaved.layer_id}\n`);
  while (fs.existsSync(m.path('only-new')) === false || fs.readFileSync(m.path('f'), 'utf8') !== 'version two is longer') {
    if (Date.now() - start > 10_000) return t.fail('the first mount never saw the switch made on the second');
    await new Promise((r) => setTimeout(r, 10));
  }
  t.true(Date.now() - start <= 2500, `took ${Date.now() - start} ms`);
});

test.serial('a second mount of the tenant sees a switch as soon as its notice arrives (kernel caches off)', async (t) => {
  await allowTime(t, 60_000);
  const m = await mountFor(t, { config: NO_KERNEL_CACHE });
  const other = await m.mountAgain();
  const l1 = await twoStates(m);
  const r = await measureSwitch(other.mountpoint, () => control(m, 'switch', l1));
  t.log(`second mount, caches off: first look ${r.first ?? 'correct'}; correct after ${r.latencyMs} ms`);
  // the other mount hears of the switch by NOTIFY: usually before the first look (0 ms on a
  // quiet machine), and within the notice's delivery time when the machine is loaded
  t.true(r.latencyMs <= 1000, `correct after ${r.latencyMs} ms`);
  t.true(r.stable);
  // writes on the second mount after the switch land on top of the switched-to layer
  fs.writeFileSync(path.join(other.mountpoint, 'from-b'), 'b');
  const cur = await currentLayer(m);
  t.is(cur.parent_layer_id, l1);
  t.is(fs.readFileSync(m.path('from-b'), 'utf8'), 'b');
});
