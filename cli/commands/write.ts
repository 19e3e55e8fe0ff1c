// tarbox write <path> [data]: data from the argument (UTF-8) or, without one, all of stdin (binary-safe).
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, withTenant } from '../context.js';
import { parseMode, tenantOption } from './fs.js';

export async function writeFile(sql: postgres.Sql<{}>, path: string, data: Buffer, mode = 0o644): Promise<number> {
  const [{ size }] = await sql<{ size: number }[]>`select tarbox.write_file(${fsPath(path)}, ${data}, ${mode}) as size`;
  return size;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function register(program: Command): void {
  tenantOption(program.command('write <path> [data]'))
    .description('create or replace a file with the given data or stdin')
    .option('-m, --mode <octal>', 'permission bits for a new file', parseMode, 0o644)
    .action(async (path: string, data: string | undefined, opts: { tenant?: string; mode: number }, cmd: Command) => {
      const config = configFor(cmd);
      // Read stdin before touching the database, so a slow producer does not hold a connection.
      const bytes = data !== undefined ? Buffer.from(data, 'utf8') : await readStdin();
      await withTenant(config, opts.tenant, (sql) => writeFile(sql, path, bytes, opts.mode), { operation: 'write', path });
    });
}
