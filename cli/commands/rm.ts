// tarbox rm [-r] <path>
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, withTenant } from '../context.js';
import { tenantOption } from './fs.js';

export async function remove(sql: postgres.Sql<{}>, path: string, recursive = false): Promise<void> {
  await sql`select tarbox.remove(${fsPath(path)}, ${recursive})`;
}

export function register(program: Command): void {
  tenantOption(program.command('rm <path>'))
    .description('remove a file, or a directory with -r')
    .option('-r, --recursive', 'remove a directory and everything in it')
    .action(async (path: string, opts: { tenant?: string; recursive?: boolean }, cmd: Command) => {
      await withTenant(configFor(cmd), opts.tenant, (sql) => remove(sql, path, opts.recursive ?? false),
        { operation: opts.recursive ? 'rmdir' : 'unlink', path });
    });
}
