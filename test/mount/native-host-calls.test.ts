// The host calls Node lacks, through a real mount (shim/native/host-ops.c): extended attributes
// on the entry itself (never a symlink's target), unix sockets and fifos created by mknod, and
// utimens to the nanosecond with UTIME_OMIT and UTIME_NOW. Each probe runs in a child process;
// the host directory is checked from this process.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
let host: string;
const src = (...parts: string[]) => path.join(host, ...parts);

/** The host's own view of an attribute (getfattr does not follow symlinks with -h). */
function hostXattr(file: string, name: string): string {
  const r = spawnSync('python3', ['-c', `import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())`, file, name]);
  return r.status === 0 ? r.stdout.toString().trim() : `error: ${r.stderr.toString().trim().split('\n').pop()}`;
}

test.before(async () => {
  host = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-native-host-'));
  fs.chmodSync(host, 0o755);
  fs.mkdirSync(src('rw'));
  fs.mkdirSync(src('ro'));
  fs.writeFileSync(src('ro', 'f'), 'x');
  const set = spawnSync('python3', ['-c', `import os; os.setxattr('${src('ro', 'f')}', 'user.kept', b'ro value')`]);
  if (set.status !== 0) throw new Error(`the host directory has no user xattrs: ${set.stderr}`);
  m = await mountFresh({
    config: {
      native_mounts: [
        { path: '/rw', source: src('rw'), mode: 'rw', shared: true, priority: 0 },
        { path: '/ro', source: src('ro'), mode: 'ro', shared: true, priority: 0 },
      ],
    },
  });
});

test.after.always(async (t) => {
  await finish(t, m);
  fs.rmSync(host, { recursive: true, force: true });
});

test.serial('xattrs: set, get, list and remove land on the host entry', async (t) => {
  const r = await m.python<Record<string, unknown>>(`
open('rw/f', 'w').write('data')
os.mkdir('rw/d')
os.setxattr('rw/f', 'user.one', b'\\x00\\x01binary\\xff')
os.setxattr('rw/f', 'user.two', b'')
os.setxattr('rw/d', 'user.dir', b'on a directory')
os.setxattr('rw', 'user.root', b'on the mount point')
out({
  'one': E(os.getxattr, 'rw/f', 'user.one').hex(), 'two': E(os.getxattr, 'rw/f', 'user.two').hex(),
  'list': sorted(os.listxattr('rw/f')), 'dir': os.getxattr('rw/d', 'user.dir').decode(),
  'root': os.getxattr('rw', 'user.root').decode(),
  'missing': E(os.getxattr, 'rw/f', 'user.none'),
  'create_existing': E(os.setxattr, 'rw/f', 'user.one', b'x', os.XATTR_CREATE),
  'replace_missing': E(os.setxattr, 'rw/f', 'user.none', b'x', os.XATTR_REPLACE),
  'remove': E(os.removexattr, 'rw/f', 'user.two'), 'remove_missing': E(os.removexattr, 'rw/f', 'user.two'),
  'after': sorted(os.listxattr('rw/f')),
  'no_file': E(os.getxattr, 'rw/nope', 'user.one'),
})`);
  t.deepEqual(r, {
    one: '000162696e617279ff', two: '', list: ['user.one', 'user.two'], dir: 'on a directory', root: 'on the mount point',
    missing: 'ENODATA', create_existing: 'EEXIST', replace_missing: 'ENODATA', remove: 'OK', remove_missing: 'ENODATA',
    after: ['user.one'], no_file: 'ENOENT',
  });
  t.is(hostXattr(src('rw', 'd'), 'user.dir'), 'on a directory');
  t.is(hostXattr(src('rw'), 'user.root'), 'on the mount point');
  t.deepEqual(spawnSync('python3', ['-c', `import os; print(os.getxattr('${src('rw', 'f')}', 'user.one').hex())`]).stdout.toString().trim(), '000162696e617279ff');
});

test.serial('xattrs of a symlink are its own, never its target\'s', async (t) => {
  const r = await m.python<Record<string, unknown>>(`
open('rw/target', 'w').write('t')
os.setxattr('rw/target', 'user.t', b'target')
os.symlink('target', 'rw/link')
out({
  'list_link': os.listxattr('rw/link', follow_symlinks=False),
  'get_link': E(os.getxattr, 'rw/link', 'user.t', follow_symlinks=False),
  'set_link': E(os.setxattr, 'rw/link', 'user.l', b'l', follow_symlinks=False),
  'followed': os.getxattr('rw/link', 'user.t').decode(),
  'target_list': sorted(os.listxattr('rw/target')),
})`);
  // Linux allows no user.* attributes on symlinks (EPERM); the kernel follows the link itself
  // when the caller asks it to, so the shim never has to.
  t.deepEqual(r, { list_link: [], get_link: 'ENODATA', set_link: 'EPERM', followed: 'target', target_list: ['user.t'] });
});

test.serial('xattrs on a read-only mount: read, never changed', async (t) => {
  const r = await m.python<Record<string, unknown>>(`
out({
  'get': os.getxattr('ro/f', 'user.kept').decode(), 'list': os.listxattr('ro/f'),
  'set': E(os.setxattr, 'ro/f', 'user.new', b'x'), 'remove': E(os.removexattr, 'ro/f', 'user.kept'),
})`);
  t.deepEqual(r, { get: 'ro value', list: ['user.kept'], set: 'EROFS', remove: 'EROFS' });
  t.is(hostXattr(src('ro', 'f'), 'user.kept'), 'ro value');
});

test.serial('a unix socket bound in a native mount works, and fifos carry data', async (t) => {
  const r = await m.python<Record<string, unknown>>(`
import socket, stat, threading
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind('rw/sock')
server.listen(1)
def serve():
    conn, _ = server.accept()
    conn.sendall(conn.recv(100).upper())
    conn.close()
th = threading.Thread(target=serve); th.start()
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect('rw/sock')
client.sendall(b'hello')
reply = client.recv(100).decode()
th.join(); client.close(); server.close()
os.mkfifo('rw/fifo', 0o640)
def writer():
    with open('rw/fifo', 'w') as f: f.write('through the fifo')
th = threading.Thread(target=writer); th.start()
with open('rw/fifo') as f: got = f.read()
th.join()
out({
  'reply': reply, 'is_sock': stat.S_ISSOCK(os.lstat('rw/sock').st_mode), 'again': E(os.mknod, 'rw/sock', 0o600 | stat.S_IFSOCK),
  'fifo': got, 'fifo_mode': oct(os.lstat('rw/fifo').st_mode),
  'device': E(os.mknod, 'rw/dev', 0o600 | stat.S_IFCHR, os.makedev(1, 3)),
  'ro_sock': E(os.mknod, 'ro/sock', 0o600 | stat.S_IFSOCK),
})`);
  t.deepEqual(r, {
    reply: 'HELLO', is_sock: true, again: 'EEXIST', fifo: 'through the fifo', fifo_mode: '0o10640', device: 'EPERM', ro_sock: 'EROFS',
  });
  t.true(fs.lstatSync(src('rw', 'sock')).isSocket(), 'a socket inode on the host');
  t.true(fs.lstatSync(src('rw', 'fifo')).isFIFO());
  t.false(fs.existsSync(src('rw', 'dev')));
});

test.serial('utimens keeps nanoseconds, and UTIME_OMIT and UTIME_NOW, on the entry itself', async (t) => {
  const before = Date.now();
  const r = await m.python<Record<string, unknown>>(`
import subprocess
open('rw/times', 'w').write('t')
os.utime('rw/times', ns=(1_000_000_001, 2_000_000_123_456_789))
a = os.stat('rw/times')
subprocess.run(['touch', '-a', '-d', '@5.123456789', 'rw/times'], check=True)   # mtime: UTIME_OMIT
b = os.stat('rw/times')
subprocess.run(['touch', '-m', 'rw/times'], check=True)                         # mtime: UTIME_NOW, atime omitted
c = os.stat('rw/times')
os.symlink('times', 'rw/tlink')
os.utime('rw/tlink', ns=(7, 8_000_000_009), follow_symlinks=False)
out({
  'a': [str(a.st_atime_ns), str(a.st_mtime_ns)], 'b': [str(b.st_atime_ns), str(b.st_mtime_ns)],
  'c_atime': str(c.st_atime_ns), 'c_mtime': str(c.st_mtime_ns),
  'link': str(os.lstat('rw/tlink').st_mtime_ns), 'target_after_link': str(os.stat('rw/times').st_mtime_ns),
})`);
  // nanosecond values as decimal strings: they exceed 2^53
  t.deepEqual(r.a, ['1000000001', '2000000123456789']);
  t.deepEqual(r.b, ['5123456789', '2000000123456789']);
  t.is(r.c_atime, '5123456789');
  t.true(BigInt(r.c_mtime as string) >= BigInt(before - 2000) * 1_000_000n, 'UTIME_NOW took the clock');
  t.is(r.link, '8000000009');
  t.is(r.target_after_link, r.c_mtime);
  t.is(fs.statSync(src('rw', 'times'), { bigint: true }).atimeNs, 5_123_456_789n);
});
