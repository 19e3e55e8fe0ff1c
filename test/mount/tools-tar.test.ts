// Extract a tar of 3,000 small files onto the mount and compare every sha256, mode and
// mtime with the source tree; then pack it again from the mount.
import test from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finish, mountFresh, run, type Mount } from '../helpers/mount.js';

let m: Mount;
// TARBOX_TEST_TAR_FILES: fewer files while developing
const FILES = Number(process.env.TARBOX_TEST_TAR_FILES ?? 3000);

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

/** Deterministic tree: nested directories, sizes 0-20 KiB, a few modes, fixed mtimes. */
function makeTree(root: string, seed: number): void {
  let x = seed;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(root, `d${rand(8)}`, `e${rand(10)}`, ...(rand(4) === 0 ? [`f${rand(5)}`] : []));
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `file-${i}.bin`);
    fs.writeFileSync(file, crypto.randomBytes(rand(20 * 1024 + 1)));
    fs.chmodSync(file, [0o644, 0o600, 0o755, 0o444][rand(4)]);
    const when = 1_600_000_000 + rand(10_000_000);
    fs.utimesSync(file, when, when);
  }
}

async function manifest(root: string): Promise<string> {
  // path, type, mode, size (files only: directory sizes are filesystem-specific), mtime
  // (whole seconds), then sha256 for files
  const out = await run(
    `find . -type d -printf '%P %y %m - %TY%Tm%Td%TH%TM%TS\\n' -o -printf '%P %y %m %s %TY%Tm%Td%TH%TM%TS\\n' | sed 's/\\.[0-9]*$//' | sort > /tmp/manifest.$$ && ` +
      `find . -type f -print0 | sort -z | xargs -0 sha256sum >> /tmp/manifest.$$ && cat /tmp/manifest.$$ && rm /tmp/manifest.$$`,
    { cwd: root, timeoutMs: 120_000 },
  );
  if (out.code !== 0) throw new Error(out.stderr);
  return out.stdout;
}

test.serial(`tar xf of ${FILES} files: every sha256, mode and mtime matches the source`, async (t) => {
  t.timeout(240_000);
  const src = path.join(m.scratch, 'src');
  makeTree(src, 12345);
  const tarball = path.join(m.scratch, 'tree.tar');
  const packed = await run(`tar cf ${tarball} -C ${src} .`);
  t.is(packed.code, 0, packed.stderr);
  const started = Date.now();
  await m.check(`mkdir out && tar xf ${tarball} -C out`, { timeoutMs: 230_000 });
  t.log(`extracted ${FILES} files in ${Date.now() - started} ms`);
  const want = await manifest(src);
  const got = await manifest(m.path('out'));
  t.is(got.split('\n').length, want.split('\n').length);
  if (got !== want) {
    const w = new Set(want.split('\n'));
    const g = new Set(got.split('\n'));
    t.fail(`manifests differ:\nmissing on the mount: ${[...w].filter((l) => !g.has(l)).slice(0, 10).join('\n')}\nunexpected: ${[...g].filter((l) => !w.has(l)).slice(0, 10).join('\n')}`);
  } else {
    t.pass();
  }
});

test.serial('tar cf from the mount gives back the same files', async (t) => {
  t.timeout(120_000);
  const tarball = path.join(m.scratch, 'again.tar');
  await m.check(`tar cf ${tarball} -C out .`, { timeoutMs: 110_000 });
  const back = path.join(m.scratch, 'back');
  fs.mkdirSync(back);
  const r = await run(`tar xf ${tarball} -C ${back}`);
  t.is(r.code, 0, r.stderr);
  t.is(await manifest(back), await manifest(path.join(m.scratch, 'src')));
});
