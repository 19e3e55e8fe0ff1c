// cp -a of a tree with symlinks, hard links, modes, times and xattrs: on the mount, and
// from outside onto the mount. Compared with diff -r and by inode numbers.
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finish, mountFresh, run, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

const BUILD = `
set -e
mkdir -p tree/a/b/c tree/empty tree/x
for i in $(seq 1 30); do head -c $((i * 997)) /dev/urandom > tree/a/f$i; done
echo hello > tree/a/b/hello.txt
printf '#!/bin/sh\\necho hi\\n' > tree/a/b/c/script.sh && chmod 0750 tree/a/b/c/script.sh
chmod 0700 tree/x && chmod 1777 tree/empty
ln tree/a/f1 tree/a/b/hard1
ln tree/a/f1 tree/x/hard1-again
ln tree/a/b/hello.txt tree/hello-hard
ln -s ../a/b/hello.txt tree/x/rel-link
ln -s /nonexistent/target tree/dangling
ln -s b tree/a/dir-link
chown 1000:1000 tree/a/f2 && chown 0:50 tree/a/b
touch -d '2020-02-02 02:02:02.123456789' tree/a/f3 tree/a/b
touch -h -d '2019-09-09 09:09:09' tree/dangling
mkfifo tree/a/fifo
`;

/** A line per entry: path, type, mode, owner, size, mtime (ns), link target. */
async function describe(root: string): Promise<string[]> {
  const r = await run("find . -printf '%P|%y|%m|%U:%G|%s|%T@|%l\\n' | sort", { cwd: root });
  if (r.code !== 0) throw new Error(r.stderr);
  // directories' sizes are filesystem-specific
  return r.stdout.trim().split('\n').map((l) => {
    const f = l.split('|');
    if (f[1] === 'd') f[4] = '-';
    return f.join('|');
  });
}

function ino(p: string): number {
  return fs.lstatSync(p).ino;
}

/**
 * Attributes of other names of a hard-linked file can be stale for the 1 s attribute
 * timeout (fs-links.test.ts shows that bug); wait it out so this file tests cp itself.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1100));

function checkLinks(t: import('ava').ExecutionContext, root: string): void {
  t.is(ino(`${root}/a/f1`), ino(`${root}/a/b/hard1`), 'hard link a/f1 = a/b/hard1');
  t.is(ino(`${root}/a/f1`), ino(`${root}/x/hard1-again`), 'hard link a/f1 = x/hard1-again');
  t.is(fs.statSync(`${root}/a/f1`).nlink, 3);
  t.is(ino(`${root}/a/b/hello.txt`), ino(`${root}/hello-hard`));
  t.not(ino(`${root}/a/f1`), ino(`${root}/a/f2`));
  t.true(fs.lstatSync(`${root}/x/rel-link`).isSymbolicLink());
  t.is(fs.readlinkSync(`${root}/x/rel-link`), '../a/b/hello.txt');
  t.is(fs.readFileSync(`${root}/x/rel-link`, 'utf8'), 'hello\n');
  t.true(fs.lstatSync(`${root}/dangling`).isSymbolicLink());
  t.is(fs.readlinkSync(`${root}/dangling`), '/nonexistent/target');
  t.true(fs.lstatSync(`${root}/a/dir-link`).isSymbolicLink());
  t.true(fs.lstatSync(`${root}/a/fifo`).isFIFO());
}

test.serial('cp -a within the mount keeps links, modes, owners, times and xattrs', async (t) => {
  t.timeout(90_000);
  await m.check(BUILD);
  await m.python(`os.setxattr('tree/a/f5', 'user.note', b'copied?'); out(1)`);
  await settle();
  checkLinks(t, m.path('tree'));
  await m.check('cp -a tree copy');
  await settle();
  const diff = await m.run('diff -r --no-dereference --exclude=fifo tree copy');
  t.is(diff.code, 0, diff.stdout + diff.stderr);
  t.deepEqual(await describe(m.path('copy')), await describe(m.path('tree')));
  checkLinks(t, m.path('copy'));
  t.not(ino(m.path('copy', 'a', 'f1')), ino(m.path('tree', 'a', 'f1')), 'the copy is a new file');
  t.deepEqual(await m.python(`out(os.getxattr('copy/a/f5', 'user.note').decode())`), 'copied?');
});

test.serial('cp -a from outside onto the mount, and back out', async (t) => {
  t.timeout(90_000);
  const src = path.join(m.scratch, 'outside');
  fs.mkdirSync(src);
  const built = await run(BUILD, { cwd: src });
  t.is(built.code, 0, built.stderr);
  await m.check(`cp -a ${src}/tree in`);
  await settle();
  const diff = await m.run(`diff -r --no-dereference --exclude=fifo ${src}/tree in`);
  t.is(diff.code, 0, diff.stdout + diff.stderr);
  t.deepEqual(await describe(m.path('in')), await describe(path.join(src, 'tree')));
  checkLinks(t, m.path('in'));
  const out = path.join(m.scratch, 'back-out');
  await m.check(`cp -a in ${out}`);
  t.deepEqual(await describe(out), await describe(path.join(src, 'tree')));
  checkLinks(t, out);
});

test.serial('the copies are intact after a remount', async (t) => {
  t.timeout(60_000);
  const before = await describe(m.path('copy'));
  await m.remount();
  t.deepEqual(await describe(m.path('copy')), before);
  const diff = await m.run('diff -r --no-dereference --exclude=fifo tree copy');
  t.is(diff.code, 0, diff.stdout + diff.stderr);
  checkLinks(t, m.path('copy'));
});
