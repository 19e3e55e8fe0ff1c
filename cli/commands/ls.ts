// tarbox ls [-l] [--json] <path>
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, printJson, withTenant } from '../context.js';
import { modeString, tenantOption } from './fs.js';

export interface Entry {
  name: string;
  kind: string;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: Date;
  target: string | null;
}

export async function ls(sql: postgres.Sql<{}>, path: string): Promise<Entry[]> {
  return sql<Entry[]>`select * from tarbox.ls(${fsPath(path)})`;
}

export function formatLong(entries: Entry[]): string[] {
  const w = (k: keyof Entry) => Math.max(0, ...entries.map((e) => String(e[k]).length));
  const [nl, uid, gid, size] = [w('nlink'), w('uid'), w('gid'), w('size')];
  return entries.map((e) => [modeString(e.kind, e.mode), String(e.nlink).padStart(nl), String(e.uid).padEnd(uid),
    String(e.gid).padEnd(gid), String(e.size).padStart(size), e.mtime.toISOString().slice(0, 19).replace('T', ' '),
    e.target ? `${e.name} -> ${e.target}` : e.name].join(' '));
}

export function register(program: Command): void {
  tenantOption(program.command('ls [path]'))
    .description('list a directory (or show one file)')
    .option('-l, --long', 'long format')
    .option('--json', 'print JSON')
    .action(async (path: string | undefined, opts: { tenant?: string; long?: boolean; json?: boolean }, cmd: Command) => {
      const entries = await withTenant(configFor(cmd), opts.tenant, (sql) => ls(sql, path ?? '/'));
      if (opts.json) return printJson(entries);
      for (const line of opts.long ? formatLong(entries) : entries.map((e) => e.name)) console.log(line);
    });
}
