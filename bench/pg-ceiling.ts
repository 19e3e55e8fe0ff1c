// What PostgreSQL alone can do on this machine, measured from Node with postgres.js the way the
// shim talks to it: the ceilings the mount's numbers should be read against.
//   node dist/bench/pg-ceiling.js <database-url> [--quick]     (prints one JSON line)
// It works in its own schema and tenant of the given (benchmark) database and removes both.
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { copyHeader, copyTrailer, copyTuple } from '../shim/copy-binary.js';
import { MB, MiB } from './types.js';
import { dropCaches } from './machine.js';
import { median, randomBytes, seconds } from './util.js';
import { createHash } from 'node:crypto';

export interface CeilingResult {
  /** Binary COPY of 1 MiB rows into a table shaped like tarbox_private.chunks, one transaction, synchronous commit. */
  copy_in_one_tx_MBps: number;
  /** The same in 8 MiB transactions committed asynchronously (as the shim batches), one synchronous commit at the end. */
  copy_in_8mib_tx_MBps: number;
  /** Binary COPY TO STDOUT of the same rows (bytes counted, not parsed). */
  copy_out_MBps: number;
  /** The same after dropping the OS page cache (root only; PostgreSQL's shared_buffers stay warm). */
  copy_out_cold_MBps: number | null;
  /** select 1, one at a time. */
  select1_per_s: number;
  /** Tiny insert committed with synchronous_commit = on, one at a time (fsync latency bound). */
  sync_commit_per_s: number;
  /** The SQL side of a create / uncached stat / unlink: tarbox.create, tarbox.lookup, tarbox.unlink, serial. */
  sql_create_per_s: number;
  sql_lookup_per_s: number;
  sql_unlink_per_s: number;
  /** One transaction holding a COPY of one 100-byte row: on a plain postgres.js connection (as the shim connects) and with TCP_NODELAY set here. */
  small_copy_tx_ms_default: number;
  small_copy_tx_ms_nodelay: number;
  bytes: number;
}

const bigintAsNumber = { to: 20, from: [20], serialize: (n: number | bigint) => String(n), parse: (s: string) => Number(s) };

/**
 * Unpatched postgres.js opens its sockets without TCP_NODELAY. A binary COPY sends many small
 * CopyData messages and a small CopyDone, which Nagle's algorithm holds back until the server's
 * delayed ACK (40 ms on Linux): ~88 ms per COPY transaction. patches/postgres-3.4.9-tcp-nodelay.patch
 * fixes that; the ceilings set TCP_NODELAY themselves, and the small-transaction probe on a plain
 * connection shows whether the patch is in place (~1 ms) or not (~88 ms).
 */
function noDelay<T extends object>(url: string, options: T): T {
  // `socket` is a documented postgres.js option its type declarations leave out
  return { ...options, socket: noDelaySocket(url) } as T;
}

function noDelaySocket(url: string): () => Promise<net.Socket> {
  const u = new URL(url);
  return () => new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port || 5432), u.hostname || 'localhost');
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => { socket.off('error', reject); resolve(socket); });
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = seconds();
  await fn();
  return seconds() - t0;
}

export async function measureCeiling(url: string, quick: boolean): Promise<CeilingResult> {
  const rows = quick ? 32 : 256;
  const data = randomBytes(rows * MiB);
  const hashes = Array.from({ length: rows }, (_, i) => createHash('sha256').update(data.subarray(i * MiB, (i + 1) * MiB)).digest());
  const tenantField = Buffer.alloc(8);
  tenantField.writeBigInt64BE(1n);
  const schema = `bench_ceiling_${process.pid}`;
  const sql = postgres(url, noDelay(url, { max: 1, onnotice: () => {}, types: { bigint: bigintAsNumber } }));
  const tenantName = `ceiling-${process.pid}`;
  try {
    await sql.unsafe(`create schema ${schema}`);
    const table = `${schema}.chunks`;
    const makeTable = () => sql.unsafe(`create table ${table} (like tarbox_private.chunks including all)`);
    const copyIn = async (tx: postgres.TransactionSql, from: number, to: number) => {
      const stream = await tx.unsafe(`copy ${table} (tenant_id, hash, data) from stdin (format binary)`).writable();
      stream.write(copyHeader());
      for (let i = from; i < to; i++) {
        for (const part of copyTuple([tenantField, hashes[i], data.subarray(i * MiB, (i + 1) * MiB)])) stream.write(part);
      }
      stream.end(copyTrailer());
      await once(stream, 'finish');
    };

    await makeTable();
    const oneTx = await timed(() => sql.begin((tx) => copyIn(tx, 0, rows)));

    const copyOut = async () => {
      let bytes = 0;
      const elapsed = await timed(async () => {
        const stream = await sql.unsafe(`copy (select hash, data from ${table}) to stdout (format binary)`).readable();
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      });
      if (bytes < rows * MiB) throw new Error(`COPY out returned ${bytes} bytes, expected at least ${rows * MiB}`);
      return bytes / MB / elapsed;
    };
    const outMBps = await copyOut();
    const outColdMBps = dropCaches() ? await copyOut() : null;

    await sql.unsafe(`drop table ${table}`);
    await makeTable();
    const batched = await timed(async () => {
      for (let i = 0; i < rows; i += 8) {
        await sql.begin(async (tx) => {
          await tx`set local synchronous_commit = off`;
          await copyIn(tx, i, Math.min(i + 8, rows));
        });
      }
      await sql.begin(async (tx) => {
        await tx`set local synchronous_commit = on`;
        await tx`select pg_catalog.txid_current()`;
      });
    });

    const n = quick ? 500 : 2000;
    const select1 = await timed(async () => { for (let i = 0; i < n; i++) await sql`select 1`; });
    await sql.unsafe(`create table ${schema}.t (id int)`);
    const commits = quick ? 100 : 300;
    const syncCommit = await timed(async () => {
      for (let i = 0; i < commits; i++) await sql.unsafe(`insert into ${schema}.t values (${i})`);
    });

    // The SQL functions behind create, stat and unlink, bound to a tenant as the shim's connections are.
    const [{ tenant_id }] = await sql<{ tenant_id: number }[]>`select tenant_id from tarbox.create_tenant(${tenantName})`;
    const tsql = postgres(url, noDelay(url, {
      max: 1, onnotice: () => {}, types: { bigint: bigintAsNumber },
      connection: { 'tarbox.tenant_id': String(tenant_id), synchronous_commit: 'off' } as Record<string, string>,
    }));
    let create = 0, lookup = 0, unlink = 0;
    try {
      await tsql`select * from tarbox.mkdir(${Buffer.from('/d')}, ${0o755}, 0, 0)`;
      const paths = Array.from({ length: n }, (_, i) => Buffer.from(`/d/e${i}`));
      create = await timed(async () => { for (const p of paths) await tsql`select * from tarbox.create(${p}, ${0o644}, 0, 0)`; });
      lookup = await timed(async () => { for (const p of paths) await tsql`select * from tarbox.lookup(${p})`; });
      unlink = await timed(async () => { for (const p of paths) await tsql`select tarbox.unlink(${p}, 0)`; });
    } finally {
      await tsql.end({ timeout: 2 });
    }

    // The Nagle probe: small COPY transactions on a default postgres.js connection and on ours.
    const probe = async (client: postgres.Sql) => {
      const row = randomBytes(100);
      const times: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t = await timed(() => client.begin(async (tx) => {
          await tx`set local synchronous_commit = off`;
          const stream = await tx.unsafe(`copy ${schema}.small (tenant_id, hash, data) from stdin (format binary)`).writable();
          stream.write(copyHeader());
          for (const part of copyTuple([tenantField, randomBytes(32), row])) stream.write(part);
          stream.end(copyTrailer());
          await once(stream, 'finish');
        }));
        times.push(t * 1000);
      }
      return median(times);
    };
    await sql.unsafe(`create table ${schema}.small (tenant_id bigint, hash bytea, data bytea)`);
    const plain = postgres(url, { max: 1, onnotice: () => {} });
    let smallDefault = NaN;
    try {
      smallDefault = await probe(plain);
    } finally {
      await plain.end({ timeout: 2 });
    }
    const smallNoDelay = await probe(sql);

    return {
      small_copy_tx_ms_default: smallDefault,
      small_copy_tx_ms_nodelay: smallNoDelay,
      copy_in_one_tx_MBps: (rows * MiB) / MB / oneTx,
      copy_in_8mib_tx_MBps: (rows * MiB) / MB / batched,
      copy_out_MBps: outMBps,
      copy_out_cold_MBps: outColdMBps,
      select1_per_s: n / select1,
      sync_commit_per_s: commits / syncCommit,
      sql_create_per_s: n / create,
      sql_lookup_per_s: n / lookup,
      sql_unlink_per_s: n / unlink,
      bytes: rows * MiB,
    };
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`).catch(() => {});
    await sql`select tarbox.delete_tenant(${tenantName})`.catch(() => {});
    await sql.end({ timeout: 2 });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, ...flags] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: node dist/bench/pg-ceiling.js <database-url> [--quick]\n');
    process.exit(2);
  }
  const result = await measureCeiling(url, flags.includes('--quick'));
  process.stdout.write(JSON.stringify(result) + '\n');
}
