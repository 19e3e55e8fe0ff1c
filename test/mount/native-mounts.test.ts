// Native mounts through a real mount: a shared read-only host directory, per-tenant read-write
// directories ({tenant_id}), longest-match and priority routing, mount points in their parents'
// listings, EXDEV across the boundary, per-tenant definitions from SQL, and the layers list.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorCode, finish, mountFresh, type Mount, type MountServer } from '../helpers/mount.js';

let m: Mount;
let host: string;
const src = (...parts: string[]) => path.join(host, ...parts);

test.before(async () => {
  host = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-native-'));
  fs.chmodSync(host, 0o755);
  fs.mkdirSync(src('ro', 'sub'), { recursive: true });
  fs.writeFileSync(src('ro', 'words'), 'apple\nbanana\n');
  fs.writeFileSync(src('ro', 'sub', 'bin'), Buffer.from([0, 1, 2, 255, 254]));
  fs.symlinkSync('words', src('ro', 'link'));
  for (const d of ['pri-low', 'pri-high', 'inner', 'deep']) fs.mkdirSync(src(d));
  fs.writeFileSync(src('pri-low', 'which'), 'low');
  fs.writeFileSync(src('pri-high', 'which'), 'high');
  m = await mountFresh({
    config: {
      native_mounts: [
        { path: '/ro', source: src('ro'), mode: 'ro', shared: true, priority: 0 },
        { path: '/rw', source: src('rw', '{tenant_id}'), mode: 'rw', shared: false, priority: 0 },
        { path: '/rw/inner', source: src('inner'), mode: 'rw', shared: true, priority: 0 },
        { path: '/pri', source: src('pri-low'), mode: 'ro', shared: true, priority: 0 },
        { path: '/pri', source: src('pri-high'), mode: 'ro', shared: true, priority: 5 },
        { path: '/deep/a/b', source: src('deep'), mode: 'rw', shared: true, priority: 0 },
      ],
    },
  });
});

test.after.always(async (t) => {
  await finish(t, m);
  fs.rmSync(host, { recursive: true, force: true });
});

test.serial('shared read-only mount: reads work, byte for byte', (t) => {
  t.is(fs.readFileSync(m.path('ro/words'), 'utf8'), 'apple\nbanana\n');
  t.deepEqual(fs.readFileSync(m.path('ro/sub/bin')), Buffer.from([0, 1, 2, 255, 254]));
  t.deepEqual(fs.readdirSync(m.path('ro')).sort(), ['link', 'sub', 'words']);
  t.is(fs.readlinkSync(m.path('ro/link')), 'words');
  t.is(fs.readFileSync(m.path('ro/link'), 'utf8'), 'apple\nbanana\n');
  t.true(fs.statSync(m.path('ro/sub')).isDirectory());
  t.is(fs.statSync(m.path('ro/words')).size, 13);
});

test.serial('shared read-only mount: every change is EROFS and the host is untouched', async (t) => {
  const r = await m.python<Record<string, string>>(`
out({
  'open_w': E(os.open, 'ro/words', os.O_WRONLY),
  'open_trunc': E(os.open, 'ro/words', os.O_RDONLY | os.O_TRUNC),
  'create': E(os.open, 'ro/new', os.O_WRONLY | os.O_CREAT, 0o644),
  'mkdir': E(os.mkdir, 'ro/d'),
  'unlink': E(os.unlink, 'ro/words'),
  'rmdir': E(os.rmdir, 'ro/sub'),
  'rename': E(os.rename, 'ro/words', 'ro/w2'),
  'symlink': E(os.symlink, 'x', 'ro/s'),
  'link': E(os.link, 'ro/words', 'ro/l2'),
  'chmod': E(os.chmod, 'ro/words', 0o600),
  'chown': E(os.chown, 'ro/words', 1, 1),
  'utime': E(os.utime, 'ro/words', (1, 1)),
  'truncate': E(os.truncate, 'ro/words', 0),
  'mknod': E(os.mkfifo, 'ro/fifo'),
  'read': open('ro/words').read(),
})`);
  t.deepEqual(r, {
    open_w: 'EROFS', open_trunc: 'EROFS', create: 'EROFS', mkdir: 'EROFS', unlink: 'EROFS', rmdir: 'EROFS',
    rename: 'EROFS', symlink: 'EROFS', link: 'EROFS', chmod: 'EROFS', chown: 'EROFS', utime: 'EROFS',
    truncate: 'EROFS', mknod: 'EROFS', read: 'apple\nbanana\n',
  });
  t.deepEqual(fs.readdirSync(src('ro')).sort(), ['link', 'sub', 'words']);
  t.is(fs.readFileSync(src('ro', 'words'), 'utf8'), 'apple\nbanana\n');
  t.is(fs.statSync(src('ro', 'words')).mode & 0o777, 0o644);
});

test.serial('read-write mount: POSIX operations land in the host directory', async (t) => {
  const host1 = src('rw', String(m.tenantId));
  t.true(fs.statSync(host1).isDirectory(), 'the per-tenant source is created on first use');
  const odd = Buffer.from([0x6e, 0xff, 0x0a, 0x20, 0xe9]).toString('latin1');
  const r = await m.python<Record<string, unknown>>(`
os.makedirs('rw/a/b')
with open('rw/a/b/f', 'wb') as f: f.write(bytes(range(256)) * 1000)
with open('rw/a/b/f', 'ab') as f: f.write(b'tail')
os.truncate('rw/a/b/f', 256000 + 2)
os.rename('rw/a/b/f', 'rw/a/g')
os.link('rw/a/g', 'rw/a/hard')
os.symlink('g', 'rw/a/sym')
os.chmod('rw/a/g', 0o640)
os.mkfifo('rw/a/fifo', 0o600)
name = bytes([0x6e, 0xff, 0x0a, 0x20, 0xe9])
open(b'rw/a/' + name, 'w').write('odd')
fd = os.open('rw/a/g', os.O_RDWR)
os.ftruncate(fd, 256001)
os.fsync(fd)
st = os.fstat(fd)
os.close(fd)
os.utime('rw/a/g', ns=(1_000_000_000, 2_000_000_123_000))
os.rmdir('rw/a/b')
out({
  'size': st.st_size, 'mode': oct(os.stat('rw/a/g').st_mode & 0o777), 'mtime': os.stat('rw/a/g').st_mtime_ns,
  'nlink': os.stat('rw/a/hard').st_nlink, 'same': os.stat('rw/a/hard').st_ino == os.stat('rw/a/g').st_ino,
  'sym': os.readlink('rw/a/sym'), 'fifo': os.path.exists('rw/a/fifo') and (os.stat('rw/a/fifo').st_mode & 0o170000) == 0o010000,
  'list': sorted(n.hex() for n in os.listdir(b'rw/a')),
  'rmdir_nonempty': E(os.rmdir, 'rw/a'), 'mkdir_exists': E(os.mkdir, 'rw/a'), 'missing': E(os.stat, 'rw/nope'),
})`);
  t.is(r.size, 256001);
  t.is(r.mode, '0o640');
  t.is(r.mtime, 2_000_000_123_000); // to the nanosecond (utimensat)
  t.is(r.nlink, 2);
  t.true(r.same);
  t.is(r.sym, 'g');
  t.true(r.fifo);
  t.deepEqual(r.list, [Buffer.from('fifo'), Buffer.from('g'), Buffer.from('hard'), Buffer.from(odd, 'latin1'), Buffer.from('sym')]
    .map((b) => b.toString('hex')).sort());
  t.is(r.rmdir_nonempty, 'ENOTEMPTY');
  t.is(r.mkdir_exists, 'EEXIST');
  t.is(r.missing, 'ENOENT');
  // on the host, byte for byte
  const expected = Buffer.concat([Buffer.alloc(0), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
  const data = fs.readFileSync(path.join(host1, 'a', 'g'));
  t.is(data.length, 256001);
  t.deepEqual(data.subarray(0, 256), expected);
  t.deepEqual(data.subarray(256000), Buffer.from('t'));
  t.is(fs.readFileSync(Buffer.concat([Buffer.from(`${host1}/a/`), Buffer.from(odd, 'latin1')])).toString(), 'odd');
  t.is(fs.lstatSync(path.join(host1, 'a', 'g')).mode & 0o777, 0o640);
});

test.serial('what a caller creates is the caller\'s; a setgid directory gives its group', async (t) => {
  fs.mkdirSync(m.path('rw/shared-dir'), { mode: 0o777 });
  fs.chmodSync(m.path('rw/shared-dir'), 0o777);
  fs.mkdirSync(m.path('rw/shared-dir/sgid'));
  fs.chownSync(m.path('rw/shared-dir/sgid'), 0, 4242);
  fs.chmodSync(m.path('rw/shared-dir/sgid'), 0o2777);
  await m.check('umask 022 && echo x > shared-dir/f && mkdir shared-dir/d && ln -s f shared-dir/l && echo y > shared-dir/sgid/g',
    { uid: 1000, gid: 1000, cwd: m.path('rw') });
  const host1 = src('rw', String(m.tenantId), 'shared-dir');
  const owner = (p: string) => { const st = fs.lstatSync(path.join(host1, p)); return [st.uid, st.gid, st.mode & 0o7777]; };
  t.deepEqual(owner('f'), [1000, 1000, 0o644]);
  t.deepEqual(owner('d'), [1000, 1000, 0o755]);
  t.deepEqual(owner('l').slice(0, 2), [1000, 1000]);
  t.deepEqual(owner('sgid/g'), [1000, 4242, 0o644]);
  // and the kernel's permission checks see the host's owners: uid 1001 cannot write uid 1000's file
  const denied = await m.run('echo z >> shared-dir/f', { uid: 1001, cwd: m.path('rw') });
  t.not(denied.code, 0);
  t.regex(denied.stderr, /Permission denied/);
});

test.serial('per-tenant {tenant_id}: two tenants see different directories', async (t) => {
  await m.sql`select tarbox.create_tenant('t2')`;
  const [{ id }] = await m.sql`select tarbox.tenant_id('t2') as id`;
  const other: MountServer = await m.mountAgain('t2');
  try {
    fs.writeFileSync(m.path('rw/mine'), 'tenant one');
    fs.writeFileSync(path.join(other.mountpoint, 'rw/mine'), 'tenant two');
    t.is(fs.readFileSync(m.path('rw/mine'), 'utf8'), 'tenant one');
    t.is(fs.readFileSync(path.join(other.mountpoint, 'rw/mine'), 'utf8'), 'tenant two');
    t.is(fs.readFileSync(src('rw', String(m.tenantId), 'mine'), 'utf8'), 'tenant one');
    t.is(fs.readFileSync(src('rw', String(id), 'mine'), 'utf8'), 'tenant two');
    t.false(fs.existsSync(path.join(other.mountpoint, 'rw/a')), 'tenant two does not see tenant one\'s files');
    // the shared mounts are the same directory for both
    t.is(fs.readFileSync(path.join(other.mountpoint, 'ro/words'), 'utf8'), 'apple\nbanana\n');
  } finally {
    await other.stop();
  }
});

test.serial('routing: the longest path wins, and the higher priority among equal paths', (t) => {
  t.is(fs.readFileSync(m.path('pri/which'), 'utf8'), 'high');
  fs.writeFileSync(m.path('rw/inner/here'), 'inner');
  t.is(fs.readFileSync(src('inner', 'here'), 'utf8'), 'inner');
  t.false(fs.existsSync(src('rw', String(m.tenantId), 'inner', 'here')));
  t.true(fs.readdirSync(m.path('rw')).includes('inner'), 'a nested mount point shows in its parent mount');
  fs.writeFileSync(m.path('deep/a/b/file'), 'deep');
  t.is(fs.readFileSync(src('deep', 'file'), 'utf8'), 'deep');
});

test.serial('mount points appear in their parents, and directories above deep ones exist', (t) => {
  const root = fs.readdirSync(m.path());
  for (const name of ['ro', 'rw', 'pri', 'deep']) t.true(root.includes(name), name);
  t.true(fs.statSync(m.path('deep')).isDirectory());
  t.deepEqual(fs.readdirSync(m.path('deep')), ['a']);
  t.deepEqual(fs.readdirSync(m.path('deep/a')), ['b']);
  t.true(fs.statSync(m.path('ro')).isDirectory());
  // d_type from readdir is right for a mount point
  const entry = fs.readdirSync(m.path(), { withFileTypes: true }).find((e) => e.name === 'ro');
  t.true(entry?.isDirectory());
  t.is(errorCode(() => fs.rmdirSync(m.path('rw'))), 'EBUSY');
});

test.serial('rename and link across the boundary answer EXDEV; mv falls back to copy', async (t) => {
  fs.writeFileSync(m.path('in-db'), 'from the database');
  fs.writeFileSync(m.path('rw/in-host'), 'from the host');
  const r = await m.python<Record<string, string>>(`
out({
  'db_to_host': E(os.rename, 'in-db', 'rw/x'), 'host_to_db': E(os.rename, 'rw/in-host', 'x'),
  'link_db_to_host': E(os.link, 'in-db', 'rw/x'), 'link_host_to_db': E(os.link, 'rw/in-host', 'x'),
  'between_mounts': E(os.rename, 'rw/in-host', 'rw/inner/x'), 'link_between': E(os.link, 'rw/in-host', 'deep/a/b/x'),
})`);
  t.deepEqual(r, {
    db_to_host: 'EXDEV', host_to_db: 'EXDEV', link_db_to_host: 'EXDEV', link_host_to_db: 'EXDEV',
    between_mounts: 'EXDEV', link_between: 'EXDEV',
  });
  await m.check('mv in-db rw/moved && mv rw/in-host moved-back');
  t.is(fs.readFileSync(src('rw', String(m.tenantId), 'moved'), 'utf8'), 'from the database');
  t.is(fs.readFileSync(m.path('moved-back'), 'utf8'), 'from the host');
  t.false(fs.existsSync(m.path('in-db')));
  t.false(fs.existsSync(src('rw', String(m.tenantId), 'in-host')));
});

test.serial('layers list the native mounts, which they do not snapshot', async (t) => {
  const list = fs.readFileSync(m.path('.tarbox/layers/list'), 'utf8');
  t.regex(list, new RegExp(`^native\\t/rw\\t${src('rw', String(m.tenantId))}\\trw\\tconfig\\tnot in layers$`, 'm'));
  t.regex(list, new RegExp(`^native\\t/pri\\t${src('pri-high')}\\tro\\tconfig\\tnot in layers$`, 'm'));
  t.notRegex(list, /pri-low/);
  // a checkpoint and a switch back leave the host files as they are
  fs.writeFileSync(m.path('rw/kept'), 'before');
  fs.writeFileSync(m.path('.tarbox/layers/new'), 'cp');
  const [{ layer_id: cp }] = await m.sql`select layer_id from tarbox_private.layers where tenant_id = ${m.tenantId} and message = 'cp'`;
  fs.writeFileSync(m.path('rw/kept'), 'after');
  fs.writeFileSync(m.path('.tarbox/layers/switch'), String(cp));
  t.is(fs.readFileSync(m.path('rw/kept'), 'utf8'), 'after');
});

test.serial('per-tenant definitions added and removed in SQL reach the running mount', async (t) => {
  fs.mkdirSync(src('live'));
  fs.writeFileSync(src('live', 'here'), 'live');
  const tenantSql = (fn: (sql: typeof m.sql) => Promise<unknown>) => m.sql.begin(async (sql) => {
    await sql`select tarbox.use_tenant(${m.tenant})`;
    await fn(sql as unknown as typeof m.sql);
  });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 100));
    return cond();
  };
  await tenantSql((sql) => sql`select tarbox.add_native_mount('/live', ${src('live')}, 'ro', true, 0)`);
  t.true(await until(() => fs.existsSync(m.path('live/here'))), 'added mount appears without a remount');
  t.is(fs.readFileSync(m.path('live/here'), 'utf8'), 'live');
  const open = fs.openSync(m.path('live/here'), 'r');
  await tenantSql((sql) => sql`select tarbox.remove_native_mount('/live')`);
  t.true(await until(() => !fs.existsSync(m.path('live/here'))), 'removed mount disappears');
  const buf = Buffer.alloc(4);
  t.is(fs.readSync(open, buf, 0, 4, 0), 4, 'a file opened before the removal stays readable');
  t.is(buf.toString(), 'live');
  fs.closeSync(open);
});

test.serial('per-tenant definitions from SQL survive a remount, above the config file\'s', async (t) => {
  fs.mkdirSync(src('tenant-pri'));
  fs.writeFileSync(src('tenant-pri', 'which'), 'tenant');
  await m.sql.begin(async (sql) => {
    await sql`select tarbox.use_tenant(${m.tenant})`;
    await sql`select tarbox.add_native_mount('/pri', ${src('tenant-pri')}, 'ro', true, 10)`;
    await sql`select tarbox.add_native_mount('/mine', ${src('own', '{tenant}')}, 'rw', false, 0)`;
  });
  await m.remount();
  t.is(fs.readFileSync(m.path('pri/which'), 'utf8'), 'tenant');
  fs.writeFileSync(m.path('mine/f'), 'own');
  t.is(fs.readFileSync(src('own', m.tenant, 'f'), 'utf8'), 'own');
  const list = fs.readFileSync(m.path('.tarbox/layers/list'), 'utf8');
  t.regex(list, /^native\t\/mine\t.*\trw\ttenant\tnot in layers$/m);
});
