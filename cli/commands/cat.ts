// tarbox cat <path>: writes the file's bytes to stdout unchanged.
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, withTenant } from '../context.js';
import { tenantOption } from './fs.js';

export async function readFile(sql: postgres.Sql<{}>, path: string): Promise<Buffer> {
  const [{ data }] = await sql<{ data: Buffer }[]>`select tarbox.read_file(${fsPath(path)}) as data`;
  return data ?? Buffer.alloc(0);
}

export function register(program: Command): void {
  tenantOption(program.command('cat <path>'))
    .description('print a file')
    .action(async (path: string, opts: { tenant?: string }, cmd: Command) => {
      const data = await withTenant(configFor(cmd), opts.tenant, (sql) => readFile(sql, path), { operation: 'read', path });
      await new Promise<void>((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
    });
}
