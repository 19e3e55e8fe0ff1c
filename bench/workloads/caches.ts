// Caches and many mounts (issue 6):
// - invalidation latency: a change committed through SQL (as another mount commits it) until
//   the listener of a mount has dropped the entry, p50/p99 over N changes. The listener is the
//   shim's own (shim/notifications.ts + metadata-cache.ts) in a step process.
// - warm re-read of one large file: read once, then again (the kernel keeps its pages: shim/page-cache.ts).
// - two mounts of the tenant, one writer and one reader of the same tree: files written and
//   closed on A per second, files found and verified on B per second, and how long after the
//   close on A the reader found each file (the kernel's entry cache of 1 s included).
// Warm stat is the metadata workload's "stat cached" line. Native directories have no
// notices and no second mount: only the re-read is measured on them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { MetadataCache } from '../../shim/metadata-cache.js';
import { listenForChanges } from '../../shim/notifications.js';
import { tarboxMount } from '../mount-process.js';
import { MB, MiB, VerificationError, type Workload } from '../types.js';
import { asNumber, asString, randomBytes, seconds, sha256 } from '../util.js';

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const content = (i: number) => Buffer.alloc(4096, i % 251);

export const caches: Workload = {
  name: 'caches',
  description: 'invalidation latency, warm re-read of one big file, one writer and one reader on two mounts',
  metrics: [
    { key: 'invalidate_p50', label: 'invalidation latency p50 (send -> dropped)', unit: 's', higherIsBetter: false },
    { key: 'invalidate_p99', label: 'invalidation latency p99 (send -> dropped)', unit: 's', higherIsBetter: false, goal: 0.02 },
    { key: 'reread_warm', label: 'warm re-read of one file', unit: 'MB/s', higherIsBetter: true, goal: 1000 },
    { key: 'two_write', label: 'two mounts: writer on A (4 KiB files)', unit: 'files/s', higherIsBetter: true },
    { key: 'two_read', label: 'two mounts: reader on B, same tree', unit: 'files/s', higherIsBetter: true },
    { key: 'two_lag_p50', label: 'two mounts: close on A -> found on B, p50', unit: 's', higherIsBetter: false },
  ],

  async run(ctx) {
    const size = (ctx.quick ? 32 : 256) * MiB;
    const file = path.join(ctx.dir, 'big.bin');
    const w = await ctx.step<{ sha256: string }>('write', { file, size });
    await ctx.step('read', { file });                       // fills the caches
    const r = await ctx.step<{ seconds: number; sha256: string }>('read', { file });
    if (r.sha256 !== w.sha256) throw new VerificationError('re-read differs from what was written');
    const values: Record<string, number> = { reread_warm: size / MB / r.seconds };
    if (ctx.target !== 'mount') return { values };

    const changes = ctx.quick ? 200 : 1000;
    type Rates = { create: number; unlink: number };
    const lat = await ctx.step<{ sent: number[]; acked: number[]; withTriggers: Rates; withoutTriggers: Rates }>('latency', {
      url: ctx.databaseUrl, tenant: ctx.tenant, path: '/' + path.basename(ctx.dir) + '/watched', count: changes,
    });
    const sent = [...lat.sent].sort((a, b) => a - b);
    values.invalidate_p50 = percentile(sent, 0.5) / 1000;
    values.invalidate_p99 = percentile(sent, 0.99) / 1000;
    ctx.log(`SQL creates/unlinks per s with notify triggers ${lat.withTriggers.create.toFixed(0)}/${lat.withTriggers.unlink.toFixed(0)}, `
      + `without ${lat.withoutTriggers.create.toFixed(0)}/${lat.withoutTriggers.unlink.toFixed(0)}`);

    // the second mount, in its own process, on the same tenant
    const mountpoint = fs.mkdtempSync(path.join(ctx.scratch, 'mount-b-'));
    const b = tarboxMount({ url: ctx.databaseUrl, tenant: ctx.tenant, mountpoint, overrides: {}, logFile: path.join(ctx.scratch, 'mount-b.log') });
    await b.start();
    try {
      const count = ctx.quick ? 300 : 2000;
      const tree = path.join(ctx.dir, 'tree');
      fs.mkdirSync(tree);
      const [writer, reader] = await Promise.all([
        ctx.step<{ seconds: number; closedAt: number[] }>('writer', { dir: tree, count }),
        ctx.step<{ seconds: number; foundAt: number[] }>('reader', { dir: path.join(mountpoint, path.basename(ctx.dir), 'tree'), count }),
      ]);
      const lags = reader.foundAt.map((t, i) => t - writer.closedAt[i]).sort((x, y) => x - y);
      Object.assign(values, {
        two_write: count / writer.seconds, two_read: count / reader.seconds, two_lag_p50: percentile(lags, 0.5) / 1000,
      });
      return {
        values,
        details: {
          invalidate_ms: { p50: percentile(sent, 0.5), p99: percentile(sent, 0.99), max: sent[sent.length - 1],
            ack_to_drop_p50: percentile([...lat.acked].sort((x, y) => x - y), 0.5) },
          lag_ms: { p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: lags[lags.length - 1] },
        },
      };
    } finally {
      await b.stop();
      fs.rmSync(mountpoint, { recursive: true, force: true });
    }
  },

  steps: {
    write(args) {
      const file = asString(args.file, 'file');
      const data = randomBytes(asNumber(args.size, 'size'));
      fs.writeFileSync(file, data);
      return { sha256: sha256(data) };
    },

    /** Read in 1 MiB blocks into one buffer, as dd or cp do; only the reads are timed. */
    read(args) {
      const file = asString(args.file, 'file');
      const buf = Buffer.allocUnsafe(MiB);
      const hash = createHash('sha256');
      let spent = 0;
      const fd = fs.openSync(file, 'r');
      try {
        for (;;) {
          const t0 = seconds();
          const n = fs.readSync(fd, buf, 0, MiB, null);
          spent += seconds() - t0;
          if (n === 0) break;
          hash.update(buf.subarray(0, n));
        }
      } finally {
        fs.closeSync(fd);
      }
      return { seconds: spent, sha256: hash.digest('hex') };
    },

    /** Commit chmods through SQL; time until the shim's listener has dropped the inode (ms). */
    async latency(args) {
      const url = asString(args.url, 'url');
      const file = Buffer.from(asString(args.path, 'path'));
      const count = asNumber(args.count, 'count');
      const admin = postgres(url, { max: 1, onnotice: () => {} });
      const [{ id }] = await admin`select tarbox.tenant_id(${asString(args.tenant, 'tenant')})::int as id`;
      await admin.end();
      const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { 'tarbox.tenant_id': String(id) } });
      const cache = new MetadataCache(MiB);
      let waiting: { ino: number; done: (at: number) => void } | undefined;
      const listener = await listenForChanges(url, id, 'bench-listener', {
        suspend: () => cache.suspend(), resume: () => cache.resume(), viewChanged: () => cache.clear(),
        inodeChanged: (ino) => { cache.inodeChanged(ino); if (waiting?.ino === ino) waiting.done(performance.now()); },
        entryChanged: (parent, name) => cache.entryChanged(parent, name), counted: () => {},
      }, () => {}, (channel, payload) => sql`select pg_notify(${channel}, ${payload})`);
      try {
        const [{ ino }] = await sql`select ino::float8 as ino from tarbox.create(${file})`;
        const sent: number[] = [];
        const acked: number[] = [];
        for (let i = 0; i < count; i++) {
          const dropped = new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new VerificationError(`no notice for change ${i} within 10 s`)), 10_000);
            waiting = { ino: ino as number, done: (at) => { clearTimeout(timer); resolve(at); } };
          });
          const t0 = performance.now();
          await sql`select tarbox.chmod(${file}, ${i % 2 ? 0o600 : 0o644})`;
          const ack = performance.now();
          const at = await dropped;
          sent.push(at - t0);
          acked.push(Math.max(0, at - ack));
        }
        // what the triggers cost: creates and unlinks through SQL with them, then without
        // (session_replication_role = replica skips ordinary triggers)
        const dir = path.posix.dirname(file.toString());
        const cost = async () => {
          const n = Math.min(count, 1000);
          let t0 = seconds();
          for (let i = 0; i < n; i++) await sql`select 1 from tarbox.create(${Buffer.from(`${dir}/t${i}`)})`;
          const create = n / (seconds() - t0);
          t0 = seconds();
          for (let i = 0; i < n; i++) await sql`select tarbox.unlink(${Buffer.from(`${dir}/t${i}`)})`;
          return { create, unlink: n / (seconds() - t0) };
        };
        const withTriggers = await cost();
        await sql`set session_replication_role = replica`;
        const withoutTriggers = await cost();
        await sql`set session_replication_role = origin`;
        return { sent, acked, withTriggers, withoutTriggers };
      } finally {
        await listener.close();
        await sql.end();
      }
    },

    writer(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      const closedAt: number[] = [];
      const t0 = seconds();
      for (let i = 0; i < count; i++) {
        fs.writeFileSync(path.join(dir, `f${i}`), content(i));
        closedAt.push(Date.now());
      }
      return { seconds: seconds() - t0, closedAt };
    },

    /** Read f0, f1, ... as they appear (polling), each verified byte for byte. */
    async reader(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      const foundAt: number[] = [];
      const t0 = seconds();
      for (let i = 0; i < count; i++) {
        const name = path.join(dir, `f${i}`);
        for (;;) {
          try {
            const data = fs.readFileSync(name);
            // a file seen between its create and its close on A is still empty: look again
            if (data.equals(content(i))) break;
            if (data.length > 0 && data.length >= 4096) throw new VerificationError(`${name}: wrong content`);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
          if (seconds() - t0 > 300) throw new VerificationError(`${name} never appeared on the second mount`);
          await new Promise((resolve) => setTimeout(resolve, 10)); // gentle: every look is a lookup (and an open) on B
        }
        foundAt.push(Date.now());
      }
      return { seconds: seconds() - t0, foundAt };
    },
  },
};
