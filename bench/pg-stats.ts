// PostgreSQL-side timings for --pg-stats: the benchmark database gets track_functions = 'pl', and
// after each workload on the mount the calls and time of every tarbox.* function (the SQL the
// shim issues, one top-level call per statement) are read from pg_stat_user_functions.
// A diagnostic: tracking costs a little, so runs with --pg-stats are not the reference numbers.
import postgres from 'postgres';

export interface FunctionStat {
  function: string;
  calls: number;
  total_ms: number;
  self_ms: number;
  us_per_call: number;
}

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

export function enableFunctionStats(url: string, database: string): Promise<void> {
  return withSql(url, async (sql) => {
    await sql.unsafe(`alter database "${database}" set track_functions = 'pl'`);
  });
}

export function resetStats(url: string): Promise<void> {
  return withSql(url, async (sql) => {
    await sql`select pg_stat_reset()`;
  });
}

/** Counters of the tarbox.* functions; call after the mount's sessions ended (they flush at exit). */
export function functionStats(url: string): Promise<FunctionStat[]> {
  return withSql(url, async (sql) => {
    await sql`select pg_stat_force_next_flush()`;
    const rows = await sql<{ function: string; calls: string; total_ms: number; self_ms: number }[]>`
      select schemaname || '.' || funcname as function, calls, total_time as total_ms, self_time as self_ms
        from pg_stat_user_functions
       where schemaname = 'tarbox' and calls > 0
       order by total_time desc`;
    return rows.map((r) => ({
      function: r.function, calls: Number(r.calls), total_ms: Math.round(r.total_ms), self_ms: Math.round(r.self_ms),
      us_per_call: Math.round((r.total_ms * 1000) / Number(r.calls)),
    }));
  });
}

export function functionStatsText(stats: FunctionStat[]): string {
  const rows = [['function', 'calls', 'total ms', 'us/call'],
    ...stats.map((s) => [s.function, String(s.calls), String(s.total_ms), String(s.us_per_call)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')).join('\n');
}
