// tarbox stat [--json] <path>
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, printJson, withTenant } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { modeString, tenantOption } from './fs.js';

export interface Stat {
  path: string;
  ino: number;
  kind: string;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  target: string | null;
}

export async function stat(sql: postgres.Sql<{}>, path: string): Promise<Stat> {
  const [row] = await sql<Stat[]>`select * from tarbox.stat(${fsPath(path)})`;
  if (!row) throw new CliError(`${fsPath(path)}: no such file or directory (ENOENT)`, ExitCode.notFound);
  return row;
}

export function register(program: Command): void {
  tenantOption(program.command('stat <path>'))
    .description('show a file\'s attributes')
    .option('--json', 'print JSON')
    .action(async (path: string, opts: { tenant?: string; json?: boolean }, cmd: Command) => {
      const s = await withTenant(configFor(cmd), opts.tenant, (sql) => stat(sql, path));
      if (opts.json) return printJson(s);
      const mode = `${(s.mode & 0o7777).toString(8).padStart(4, '0')} (${modeString(s.kind, s.mode)})`;
      const rows: [string, unknown][] = [['path', s.path], ['kind', s.kind], ['ino', s.ino], ['mode', mode],
        ['nlink', s.nlink], ['uid', s.uid], ['gid', s.gid], ['size', s.size], ['blocks', s.blocks],
        ['atime', s.atime.toISOString()], ['mtime', s.mtime.toISOString()], ['ctime', s.ctime.toISOString()]];
      if (s.target !== null) rows.push(['target', s.target]);
      for (const [k, v] of rows) console.log(`${k.padStart(6)}: ${v}`);
    });
}
