// What a create and an unlink cost inside PostgreSQL, without FUSE: N serial calls of
// tarbox.create_and_stat_dir, then N of tarbox.unlink_and_stat_dir (the calls a mount makes),
// each its own transaction, as the tenant's role with synchronous_commit off like a mount.
// Prints wall time and the backend's CPU time (utime+stime from /proc) per call: on a shared
// machine the CPU time is the figure that load disturbs least. Needs the server on this host.
//   node dist/bench/sql-calls.js <admin database url> <tenant> [N=2000]
import fs from 'node:fs';
import postgres from 'postgres';

const [url, tenant, count = '2000'] = process.argv.slice(2);
if (!url || !tenant) {
  process.stderr.write('usage: node dist/bench/sql-calls.js <admin database url> <tenant> [N]\n');
  process.exit(2);
}
const n = Number(count);
const dir = `/sql-calls-${process.pid}`;

const admin = postgres(url, { max: 1, onnotice: () => {} });
const [{ role }] = await admin`select tarbox.tenant_role(${tenant}) as role`;
await admin`select tarbox.use_tenant(${tenant})`;
await admin`select tarbox.mkdir(${Buffer.from(dir)})`;
const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { role, synchronous_commit: 'off' } });
const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;

/** CPU milliseconds the backend has used (clock ticks of 10 ms). */
function backendCpuMs(): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(label: string, call: (path: Buffer) => Promise<unknown>): Promise<string> {
  const cpu0 = backendCpuMs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await call(Buffer.from(`${dir}/f${i}`));
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  const cpuUs = ((backendCpuMs() - cpu0) * 1000) / n;
  return `${label} ${wallUs.toFixed(0)} us wall, ${cpuUs.toFixed(0)} us backend CPU`;
}

try {
  await sql`select 1 from tarbox.lookup(${Buffer.from('/')})`; // warm the session
  const created = await measure('create', (p) => sql`select * from tarbox.create_and_stat_dir(${p}, 420, 0, 0)`);
  const unlinked = await measure('unlink', (p) => sql`select * from tarbox.unlink_and_stat_dir(${p}, 0, false)`);
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  process.stdout.write(`${created}; ${unlinked}; per call, ${n} calls; load ${load}\n`);
} finally {
  await admin`select tarbox.rmdir(${Buffer.from(dir)})`.catch(() => {});
  await sql.end({ timeout: 2 });
  await admin.end({ timeout: 2 });
}
