// Two mounts of one tenant (two server processes, one database), each with its metadata
// cache kept coherent by NOTIFY (shim/metadata-cache.ts, shim/notifications.ts). The bound
// for attributes and names is the kernel's attr/entry timeout (1 s here) plus the notice's
// delivery: tests poll for the change within BOUND_MS rather than sleep.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { allowTime, errorCode, finish, mountFresh, type Mount, type MountServer } from '../helpers/mount.js';

const BOUND_MS = 1000 + 1000; // entry/attr timeout + generous delivery and scheduling slack
let m: Mount;
let b: MountServer;
const onB = (...parts: string[]) => path.join(b.mountpoint, ...parts);

test.before(async () => {
  m = await mountFresh();
  b = await m.mountAgain();
});
test.after.always(async (t) => { await b?.stop(); await finish(t, m); });

/** Poll until probe() returns true; resolves with the ms it took, or fails the test after deadline. */
async function within(t: { fail(msg: string): void }, what: string, probe: () => boolean, deadlineMs = BOUND_MS * 2): Promise<number> {
  const start = Date.now();
  while (!probe()) {
    if (Date.now() - start > deadlineMs) { t.fail(`${what}: not seen after ${deadlineMs} ms`); return -1; }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - start;
}

const sqlOf = (mount: Mount) => mount.sql;

/** The cache counters of server b (it prints them on SIGUSR2). */
async function statsOf(server: MountServer): Promise<{ metadata: Record<string, number | boolean>; chunks: Record<string, number>; pages: Record<string, number> }> {
  const before = server.log().split('\n').filter((l) => l.startsWith('cache-stats ')).length;
  process.kill(server.pid, 'SIGUSR2');
  for (let i = 0; i < 200; i++) {
    const lines = server.log().split('\n').filter((l) => l.startsWith('cache-stats '));
    if (lines.length > before) return JSON.parse(lines[lines.length - 1].slice('cache-stats '.length));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no cache-stats line');
}

test.serial('write+close on A, then open and read on B returns the new bytes (close-to-open)', (t) => {
  fs.writeFileSync(m.path('data.bin'), Buffer.alloc(3000, 1));
  t.true(fs.readFileSync(onB('data.bin')).equals(Buffer.alloc(3000, 1)));   // B caches it
  for (let round = 2; round < 6; round++) {
    const bytes = Buffer.alloc(3000 + round, round);
    fs.writeFileSync(m.path('data.bin'), bytes);                            // closed on A
    t.true(fs.readFileSync(onB('data.bin')).equals(bytes), `round ${round}`); // next open on B
  }
  const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  fs.writeFileSync(m.path('data.bin'), big);
  t.true(fs.readFileSync(onB('data.bin')).equals(big));
});

test.serial('create, chmod, rename and unlink on A are seen on B within the bound', async (t) => {
  await allowTime(t, 60_000);
  fs.mkdirSync(m.path('d'));
  t.is(errorCode(() => fs.statSync(onB('d', 'new'))), 'ENOENT');           // B caches a negative entry
  fs.readdirSync(onB('d'));                                                 // and d as complete
  fs.writeFileSync(m.path('d', 'new'), 'x');
  const created = await within(t, 'create', () => fs.existsSync(onB('d', 'new')));

  t.is(fs.statSync(onB('d', 'new')).mode & 0o777, 0o644);
  fs.chmodSync(m.path('d', 'new'), 0o600);
  const chmodded = await within(t, 'chmod', () => (fs.statSync(onB('d', 'new')).mode & 0o777) === 0o600);

  fs.mkdirSync(m.path('d', 'sub'));
  fs.writeFileSync(m.path('d', 'sub', 'deep'), 'deep');
  t.is(fs.readFileSync(onB('d', 'sub', 'deep'), 'utf8'), 'deep');
  fs.renameSync(m.path('d', 'sub'), m.path('d', 'moved'));
  const renamed = await within(t, 'rename', () => !fs.existsSync(onB('d', 'sub', 'deep')) && fs.existsSync(onB('d', 'moved', 'deep')));
  t.is(fs.readFileSync(onB('d', 'moved', 'deep'), 'utf8'), 'deep');

  fs.unlinkSync(m.path('d', 'new'));
  const unlinked = await within(t, 'unlink', () => !fs.existsSync(onB('d', 'new')));
  t.deepEqual(fs.readdirSync(onB('d')).sort(), ['moved']);
  t.log(`seen on B after: create ${created} ms, chmod ${chmodded} ms, rename ${renamed} ms, unlink ${unlinked} ms`);
});

test.serial('changes made with SQL (no mount) reach B as well', async (t) => {
  fs.writeFileSync(m.path('by-sql'), 'before');
  t.is(fs.readFileSync(onB('by-sql'), 'utf8'), 'before');
  await sqlOf(m).begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    await tx`select tarbox.chmod(convert_to('/by-sql', 'UTF8'), 384)`;
  });
  await within(t, 'chmod by SQL', () => (fs.statSync(onB('by-sql')).mode & 0o777) === 0o600);
  t.pass();
});

test.serial('concurrent creates of the same names on both mounts: exactly one succeeds, the other gets EEXIST', async (t) => {
  await allowTime(t, 120_000);
  fs.mkdirSync(m.path('race'));
  const code = `
import os
res = []
for i in range(200):
    try:
        os.close(os.open('race/n%d' % i, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)); res.append('OK')
    except OSError as e:
        res.append(errno.errorcode[e.errno])
out(res)`;
  const [onA, onBres] = await Promise.all([m.python<string[]>(code), m.python<string[]>(code, { cwd: b.mountpoint })]);
  for (let i = 0; i < 200; i++) {
    t.deepEqual([onA[i], onBres[i]].sort(), ['EEXIST', 'OK'], `name n${i}`);
  }
  t.is(fs.readdirSync(m.path('race')).length, 200);
  t.is(fs.readdirSync(onB('race')).length, 200);
});

test.serial('the listener connection killed: the mount serves correctly meanwhile and caches again once it is back', async (t) => {
  await allowTime(t, 60_000);
  fs.writeFileSync(m.path('watched'), 'w');
  fs.statSync(onB('watched'));
  const before = await statsOf(b);
  t.true(before.metadata.enabled);
  const killed = await sqlOf(m)`
    select pg_terminate_backend(pid) as done from pg_stat_activity
     where application_name = 'tarbox-listen' and datname = current_database()`;
  t.true(killed.length >= 2, 'both mounts listen');
  // changed while (or right after) B's listener is down: B must not serve the old mode
  await sqlOf(m).begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    await tx`select tarbox.chmod(convert_to('/watched', 'UTF8'), 416)`;
  });
  await within(t, 'chmod while the listener was down', () => (fs.statSync(onB('watched')).mode & 0o777) === 0o640);
  await within(t, 'listener back', () => b.log().includes('cache invalidation listener reconnected'));
  t.true(b.log().includes('cache invalidation listener lost its connection'));
  const after = await statsOf(b);
  t.true(after.metadata.enabled, 'caching again');
  t.true((after.metadata.clears as number) >= (before.metadata.clears as number) + 2, 'cleared when lost and when back');
  // and notices work again on the new connection
  fs.chmodSync(m.path('watched'), 0o604);
  await within(t, 'chmod after the reconnect', () => (fs.statSync(onB('watched')).mode & 0o777) === 0o604);
});

/** Pages B's kernel kept (keep_cache) and dropped at opens so far. */
const pagesOf = async (server: MountServer) => (await statsOf(server)).pages;

test.serial('the kernel keeps an unchanged file\'s pages across opens, and drops them once it changed anywhere', async (t) => {
  await allowTime(t, 60_000);
  const size = 256 * 1024;
  const version = (n: number) => Buffer.alloc(size, n);
  fs.writeFileSync(m.path('paged.bin'), version(1));
  const before = await pagesOf(b);
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(1)));
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(1)));
  const kept = await pagesOf(b);
  t.is(kept.keeps, before.keeps + 1, 'the second open keeps the pages of the first');

  // changed on A, same size: B's next open drops its pages
  fs.writeFileSync(m.path('paged.bin'), version(2));
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(2)));
  // changed on A with its mtime put back (cp -a, tar): size and mtime equal, ctime is not
  const { mtime } = fs.statSync(m.path('paged.bin'));
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(2)));
  fs.writeFileSync(m.path('paged.bin'), version(3));
  fs.utimesSync(m.path('paged.bin'), mtime, mtime);
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(3)), 'same size and mtime, new bytes');
  // changed with SQL
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(3)));
  await sqlOf(m).begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    await tx`select tarbox.write_file('/paged.bin', ${version(4)})`;
  });
  t.true(fs.readFileSync(onB('paged.bin')).equals(version(4)));
  // changed through B itself, in place
  const fd = fs.openSync(onB('paged.bin'), 'r+');
  fs.writeSync(fd, Buffer.alloc(4096, 5), 0, 4096, 8192);
  fs.closeSync(fd);
  const expected = version(4);
  expected.fill(5, 8192, 8192 + 4096);
  t.true(fs.readFileSync(onB('paged.bin')).equals(expected));
  t.true(fs.readFileSync(m.path('paged.bin')).equals(expected));
  const after = await pagesOf(b);
  t.true(after.drops >= kept.drops + 4, `${after.drops - kept.drops} opens dropped the pages`);
});

test.serial('a listener that goes silent (its backend stopped, no reset) stops the caches within the lease', async (t) => {
  await allowTime(t, 60_000);
  fs.writeFileSync(m.path('leased'), 'l');
  fs.chmodSync(m.path('leased'), 0o644);
  t.is(fs.statSync(onB('leased')).mode & 0o777, 0o644);
  const listeners = await sqlOf(m)`
    select pid from pg_stat_activity where application_name = 'tarbox-listen' and datname = current_database()`;
  t.true(listeners.length >= 2, 'both mounts listen');
  // only a server on this machine can be stopped (a DATABASE_URL elsewhere cannot)
  const local = listeners.every((l) => fs.existsSync(`/proc/${l.pid}/cmdline`)
    && fs.readFileSync(`/proc/${l.pid}/cmdline`, 'latin1').includes('postgres'));
  if (!local) { t.log('the database server is not on this machine: not run'); return; }
  const signal = (sig: NodeJS.Signals) => { for (const l of listeners) process.kill(Number(l.pid), sig); };
  signal('SIGSTOP');
  try {
    await sqlOf(m).begin(async (tx) => {
      await tx`select tarbox.use_tenant(${m.tenant})`;
      await tx`select tarbox.chmod(convert_to('/leased', 'UTF8'), 416)`;
    });
    // the notice cannot arrive: the lease (3 s, checked every 1 s) runs out instead
    const expired = await within(t, 'the lease runs out', () => /listener silent for \d+ ms/.test(b.log()), 6000);
    t.log(`lease out ${expired} ms after the backend stopped`);
    t.false((await statsOf(b)).metadata.enabled, 'caching is off while the lease is out');
    // and from then on, at most the kernel's 1 s: B serves the new mode from the database
    await within(t, 'chmod while the listener was silent', () => (fs.statSync(onB('leased')).mode & 0o777) === 0o640, BOUND_MS);
  } finally {
    signal('SIGCONT');
  }
  await within(t, 'listener answers again', () => b.log().includes('listener answers again'), 10_000);
  t.true((await statsOf(b)).metadata.enabled, 'caching again');
  fs.chmodSync(m.path('leased'), 0o604);
  await within(t, 'chmod after the lease is back', () => (fs.statSync(onB('leased')).mode & 0o777) === 0o604);
});

test.serial('a layer switch on A is seen on B', async (t) => {
  await allowTime(t, 60_000);
  fs.writeFileSync(m.path('layered'), 'one');
  fs.writeFileSync(m.path('.tarbox/layers/new'), 'one');
  fs.writeFileSync(m.path('layered'), 'two');
  t.is(fs.readFileSync(onB('layered'), 'utf8'), 'two');
  t.is(fs.readFileSync(onB('layered'), 'utf8'), 'two'); // B's kernel keeps these pages
  const [layer] = await sqlOf(m).begin(async (tx) => {
    await tx`select tarbox.use_tenant(${m.tenant})`;
    return tx`select parent_layer_id as id from tarbox.current_layer()`;
  });
  fs.writeFileSync(m.path('.tarbox/layers/switch'), String(layer.id));
  await within(t, 'switch', () => fs.readFileSync(onB('layered'), 'utf8') === 'one');
  t.pass();
});

test.serial('the metadata cache stays within [cache] metadata_size under a large tree', async (t) => {
  await allowTime(t, 180_000);
  const small = await mountFresh({ config: { cache: { metadata_size: 64 * 1024 } } });
  let reader: MountServer | undefined;
  try {
    await small.check(`mkdir -p tree && cd tree && for d in $(seq 1 20); do mkdir d$d; for f in $(seq 1 100); do : > d$d/f$f; done; done`);
    reader = await small.mountAgain();
    for (let d = 1; d <= 20; d++) {
      t.is(fs.readdirSync(path.join(reader.mountpoint, 'tree', `d${d}`)).length, 100);
      for (let f = 1; f <= 100; f++) fs.statSync(path.join(reader.mountpoint, 'tree', `d${d}`, `f${f}`));
    }
    const stats = await statsOf(reader);
    t.log(stats.metadata);
    t.true((stats.metadata.bytes as number) <= 64 * 1024, `${stats.metadata.bytes} bytes cached`);
    t.true((stats.metadata.entries as number) > 100, 'it does cache');
    t.true((stats.metadata.evictions as number) > 0, 'by evicting');
    // still correct after all that evicting
    t.is(fs.readdirSync(path.join(reader.mountpoint, 'tree')).length, 20);
    t.is(fs.statSync(path.join(reader.mountpoint, 'tree', 'd7', 'f42')).size, 0);
  } finally {
    await reader?.stop();
    await finish(t, small);
  }
});
