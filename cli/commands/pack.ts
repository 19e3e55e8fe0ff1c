// tarbox pack: store the text files of frozen layers as line deltas and release their chunks
// (tarbox.pack_text; docs/text-storage.md). Mounts and `tarbox layer create` do this after
// every checkpoint unless [text] pack_on_checkpoint = false.
import type { Command } from 'commander';
import type postgres from 'postgres';
import type { Config } from '../config.js';
import { configFor, printJson, withTenant } from '../context.js';
import { tenantOption } from './fs.js';

export interface PackResult { layers: number; text_files: number; binary_files: number; lines_stored: number; lines_released: number }

export async function packText(sql: postgres.Sql<{}>, config: Config): Promise<PackResult> {
  const [result] = await sql<PackResult[]>`
    select * from tarbox.pack_text(${config.text.max_file_size}, ${config.text.max_line_length})`;
  return result;
}

export function register(program: Command): void {
  tenantOption(program.command('pack'))
    .description('store the text files of frozen layers as line deltas (shared lines) and release their chunks')
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const result = await withTenant(config, opts.tenant, (sql) => packText(sql, config));
      if (opts.json) return printJson(result);
      console.log(`packed ${result.layers} layer${result.layers === 1 ? '' : 's'}: ${result.text_files} text files, ` +
        `${result.binary_files} binary files kept as chunks, ${result.lines_stored} new lines stored, ${result.lines_released} lines released`);
    });
}
