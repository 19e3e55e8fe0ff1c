// tarbox mkdir [-p] <path>
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, withTenant } from '../context.js';
import { parseMode, tenantOption } from './fs.js';

export async function makeDirectory(sql: postgres.Sql<{}>, path: string, parents = false, mode = 0o755): Promise<void> {
  await sql`select tarbox.make_directory(${fsPath(path)}, ${parents}, ${mode})`;
}

export function register(program: Command): void {
  tenantOption(program.command('mkdir <path>'))
    .description('create a directory')
    .option('-p, --parents', 'create missing parents; no error if it exists')
    .option('-m, --mode <octal>', 'permission bits', parseMode, 0o755)
    .action(async (path: string, opts: { tenant?: string; parents?: boolean; mode: number }, cmd: Command) => {
      await withTenant(configFor(cmd), opts.tenant, (sql) => makeDirectory(sql, path, opts.parents ?? false, opts.mode),
        { operation: 'mkdir', path });
    });
}
