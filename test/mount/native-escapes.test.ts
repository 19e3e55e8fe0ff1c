// Nothing outside a native mount's source is reachable through it: "..", symlinks pointing out
// (absolute and relative, and swapped in while operations run), hard links, device nodes, very
// long paths. Every probe runs in a child process through the mount; "outside" holds a secret
// that no probe may read or change.
//
// Relative symlinks are chosen so that they lead to the secret from the source's place on the
// host but to nothing from the mount's place: reading "SECRET" would prove the shim resolved a
// symlink on the host instead of letting the kernel resolve it in the caller's view.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Errno } from '../../shim/errors.js';
import { NativeFs } from '../../shim/native-fs.js';
import { allowTime, errorCode, finish, mountFresh, PYTHON, run, type Mount } from '../helpers/mount.js';

let m: Mount;
let base: string;
let source: string;
let outside: string;
// From <source>/<x>, three levels up is <base>; from <mountpoint>/nat/<x> it is os.tmpdir().
const UP = '../../../outside';

test.before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-escape-'));
  fs.chmodSync(base, 0o755);
  source = path.join(base, 'a', 'b', 'src');
  outside = path.join(base, 'outside');
  fs.mkdirSync(source, { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'SECRET');
  fs.writeFileSync(path.join(outside, 'f'), 'SECRET');
  fs.chmodSync(path.join(outside, 'secret'), 0o640);
  fs.symlinkSync(path.join(outside, 'secret'), path.join(source, 'abs'));
  fs.symlinkSync(`${UP}/secret`, path.join(source, 'rel'));
  fs.symlinkSync(UP, path.join(source, 'reldir'));
  t0Files();
  // No kernel caching of names or attributes: every access looks the path up again, which
  // opens the window between the kernel's lookup and the shim's operation as wide as it gets.
  m = await mountFresh({
    config: {
      filesystem: { attr_timeout: 0, entry_timeout: 0 },
      native_mounts: [{ path: '/nat', source, mode: 'rw', shared: true, priority: 0 }],
    },
  });
});

function t0Files() {
  fs.mkdirSync(path.join(source, 'd'));
  fs.writeFileSync(path.join(source, 'd', 'f'), 'inside');
  fs.writeFileSync(path.join(source, 'g'), 'inside');
}

test.after.always(async (t) => {
  await finish(t, m);
  spawnSync('rm', ['-rf', base]); // rm walks with openat: the deep test's paths are over PATH_MAX
});

function outsideUnchanged(t: { deepEqual(a: unknown, b: unknown, msg?: string): void; is(a: unknown, b: unknown, msg?: string): void }) {
  t.deepEqual(fs.readdirSync(outside).sort(), ['f', 'secret'], 'nothing was created outside');
  t.is(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'SECRET');
  t.is(fs.statSync(path.join(outside, 'secret')).mode & 0o777, 0o640);
  t.is(fs.statSync(path.join(outside, 'secret')).nlink, 1);
}

test.serial('symlinks pointing out are shown as symlinks and never followed by the shim', async (t) => {
  const r = await m.python<Record<string, unknown>>(`
import stat
out({
  'abs_is_link': stat.S_ISLNK(os.lstat('nat/abs').st_mode), 'abs_target': os.readlink('nat/abs'),
  'rel_target': os.readlink('nat/rel'),
  'rel_read': E(lambda: open('nat/rel').read()),
  'reldir_list': E(os.listdir, 'nat/reldir'),
  'reldir_create': E(lambda: open('nat/reldir/new', 'w').write('x')),
  'nofollow_open': E(os.open, 'nat/abs', os.O_RDONLY | os.O_NOFOLLOW),
  'lchown': E(os.chown, 'nat/abs', 1234, 1234, follow_symlinks=False),
  'link_to_symlink': E(os.link, 'nat/abs', 'nat/abs2', follow_symlinks=False),
  'abs2_is_link': stat.S_ISLNK(os.lstat('nat/abs2').st_mode),
  'dotdot': sorted(os.listdir('nat/..')) == sorted(os.listdir('.')),
  'dotdot_outside': E(os.stat, 'nat/../../outside/secret'),
})`);
  t.true(r.abs_is_link);
  t.is(r.abs_target, path.join(outside, 'secret'));
  t.is(r.rel_target, `${UP}/secret`);
  t.is(r.rel_read, 'ENOENT', 'resolved by the kernel in the mount, not by the shim on the host');
  t.is(r.reldir_list, 'ENOENT');
  t.is(r.reldir_create, 'ENOENT');
  t.is(r.nofollow_open, 'ELOOP');
  t.is(r.lchown, 'OK');
  t.is(r.link_to_symlink, 'OK');
  t.true(r.abs2_is_link, 'a hard link to a symlink is a link to the symlink, not to its target');
  t.true(r.dotdot);
  t.is(r.dotdot_outside, 'ENOENT');
  t.is(fs.lstatSync(path.join(source, 'abs')).uid, 1234, 'lchown changed the symlink');
  t.not(fs.statSync(path.join(outside, 'secret')).uid, 1234, 'and not its target');
  outsideUnchanged(t);
});

test.serial('hard links to files outside and device nodes are refused', async (t) => {
  const r = await m.python<Record<string, string>>(`
import stat
out({
  'link_in': E(os.link, ${JSON.stringify(path.join(outside, 'secret'))}, 'nat/stolen'),
  'link_out': E(os.link, 'nat/g', ${JSON.stringify(path.join(outside, 'g2'))}),
  'char_dev': E(os.mknod, 'nat/mem', 0o666 | stat.S_IFCHR, os.makedev(1, 1)),
  'block_dev': E(os.mknod, 'nat/sda', 0o666 | stat.S_IFBLK, os.makedev(8, 0)),
})`);
  t.is(r.link_in, 'EXDEV');
  t.is(r.link_out, 'EXDEV');
  t.is(r.char_dev, 'EPERM');
  t.is(r.block_dev, 'EPERM');
  t.false(fs.existsSync(path.join(source, 'mem')));
  outsideUnchanged(t);
});

test.serial('very long paths and over-long names', async (t) => {
  // 19 levels of 200-byte names and one of 255: about 4,080 bytes below the mount's root, near
  // PATH_MAX; one more level goes past PATH_MAX, which a host directory allows to relative
  // calls (libfuse's paths have no limit, and openat2 walks below the root whatever the length).
  const r = await m.python<Record<string, string>>(`
os.chdir('nat')
for i in range(19):
    n = ('%03d' % i) + 'x' * 197
    os.mkdir(n)
    os.chdir(n)
open('leaf', 'w').write('deep down')
back = open('leaf').read()
r = {'back': back, 'long_name': E(os.mkdir, 'y' * 256), 'max_name': E(os.mkdir, 'z' * 255)}
os.chdir('z' * 255)
r['past_path_max'] = E(os.mkdir, 'w' * 100)
out(r)`);
  t.deepEqual(r, { back: 'deep down', long_name: 'ENAMETOOLONG', max_name: 'OK', past_path_max: 'OK' });
  // on the host, walked with relative opens
  const check = await run(`${PYTHON} -c "
import os
fd = os.open('${source}', os.O_RDONLY)
for i in range(19):
    fd = os.open(('%03d' % i) + 'x' * 197, os.O_RDONLY, dir_fd=fd)
print(open(os.open('leaf', os.O_RDONLY, dir_fd=fd)).read(), os.listdir(os.open('z' * 255, os.O_RDONLY, dir_fd=fd)))"`);
  t.is(check.stdout.trim(), `deep down ['${'w'.repeat(100)}']`);
  await m.check('rm -rf nat/000*');
  t.false(fs.readdirSync(source).some((n) => n.startsWith('000')));
});

test.serial('a directory swapped for a symlink during operations never leads out', async (t) => {
  await allowTime(t, 60_000);
  // On the host: d flips between a real directory and a symlink that leads to outside/ from
  // the source's place. Through the mount: read d/f, append to it, create in d, chmod d/f.
  const swapper = run(`${PYTHON} -c "
import os, time
os.chdir('${source}')
os.symlink('${UP}', 'd.link')
end = time.time() + 3
while time.time() < end:
    os.rename('d', 'd.real'); os.rename('d.link', 'd')
    time.sleep(0.0005)
    os.rename('d', 'd.link'); os.rename('d.real', 'd')
    time.sleep(0.002)
"`);
  const prober = m.python<Record<string, number>>(`
import time
seen = {}
end = time.time() + 3
i = 0
while time.time() < end:
    i += 1
    r = E(lambda: open('nat/d/f').read())
    seen[r] = seen.get(r, 0) + 1
    E(lambda: open('nat/d/f', 'a').write(''))
    E(lambda: open('nat/d/w%d' % i, 'w').write('x'))
    E(os.chmod, 'nat/d/f', 0o600)
    E(os.truncate, 'nat/d/f', 6)
out(seen)`);
  const [swapped, seen] = await Promise.all([swapper, prober]);
  t.is(swapped.code, 0, swapped.stderr);
  t.log(seen);
  t.false('SECRET' in seen, 'read the secret through a swapped directory');
  t.true((seen.inside ?? 0) > 0, 'the probe did run against the real directory');
  t.deepEqual(fs.readdirSync(outside).sort(), ['f', 'secret']);
  t.is(fs.readFileSync(path.join(outside, 'f'), 'utf8'), 'SECRET');
  t.is(fs.statSync(path.join(outside, 'f')).mode & 0o777, 0o644);
});

test.serial('a file swapped for a symlink during operations never leads out', async (t) => {
  await allowTime(t, 60_000);
  const swapper = run(`${PYTHON} -c "
import os, time
os.chdir('${source}')
os.symlink('${UP}/secret', 'g.link')
end = time.time() + 3
while time.time() < end:
    os.rename('g', 'g.real'); os.rename('g.link', 'g')
    time.sleep(0.0005)
    os.rename('g', 'g.link'); os.rename('g.real', 'g')
    time.sleep(0.002)
"`);
  const prober = m.python<Record<string, number>>(`
import time
seen = {}
end = time.time() + 3
while time.time() < end:
    r = E(lambda: open('nat/g').read())
    seen[r] = seen.get(r, 0) + 1
    E(lambda: open('nat/g', 'a').write(''))
    E(os.chmod, 'nat/g', 0o600)
    E(os.chown, 'nat/g', 4321, 4321)
    E(os.truncate, 'nat/g', 6)
    E(os.utime, 'nat/g', (5, 5))
out(seen)`);
  const [swapped, seen] = await Promise.all([swapper, prober]);
  t.is(swapped.code, 0, swapped.stderr);
  t.log(seen);
  t.false('SECRET' in seen);
  t.true((seen.inside ?? 0) > 0);
  outsideUnchanged(t);
  t.not(fs.statSync(path.join(outside, 'secret')).uid, 4321);
  t.not(Math.floor(fs.statSync(path.join(outside, 'secret')).mtimeMs), 5000);
});

test.serial('paths with "." or ".." components are refused before touching the host', (t) => {
  // The kernel never sends such paths; NativeFs refuses them anyway (no FUSE involved here).
  const nfs = new NativeFs([{ path: '/nat', source, hostPath: source, mode: 'rw', shared: true, priority: 0, origin: 'config' }]);
  try {
    for (const p of ['/nat/../outside/secret', '/nat/d/../../outside', '/nat/./g', '/nat//g', '/nat/..']) {
      const err = t.throws(() => nfs.getattr(nfs.route(p)!), undefined, p) as { errno?: number } | undefined;
      t.is(err?.errno, Errno.EINVAL, p);
    }
    t.is(errorCode(() => nfs.readlink(nfs.route('/nat/abs')!)), 'OK');
    // chmod acts on the entry itself, never on a symlink's target (there is no lchmod on Linux)
    const chmodLink = t.throws(() => nfs.chmod(nfs.route('/nat/abs')!, 0o777)) as { errno?: number } | undefined;
    t.is(chmodLink?.errno, Errno.EOPNOTSUPP);
    t.is(fs.statSync(path.join(outside, 'secret')).mode & 0o777, 0o640);
  } finally {
    nfs.close();
  }
});
