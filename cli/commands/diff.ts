// tarbox diff <path>: a file's history (versions by layer) and git-style diffs between them
// (docs/text-storage.md). Versions come from tarbox.file_versions; diffs from line ids
// (cli/text-diff.ts).
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, fsPath, printJson, withTenant } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { diffFile, formatPatch, formatStat, type FileDiff, type Side } from '../text-diff.js';
import { tenantOption } from './fs.js';
import { layerId } from './layer.js';

export interface FileVersion {
  layer_id: number;
  parent_layer_id: number | null;
  message: string | null;
  created_at: Date;
  frozen_at: Date | null;
  is_working: boolean;
  size: number | null;
  storage: 'text' | 'blocks';
  line_count: number | null;
}

export const fileVersions = (sql: postgres.Sql<{}>, path: string) =>
  sql<FileVersion[]>`select * from tarbox.file_versions(${path})`;

/** --from/--to, defaulting to the last two versions (a single version diffs against nothing). */
export function pickSides(versions: FileVersion[], from?: string, to?: string): { from: Side; to: Side } {
  const last = versions[versions.length - 1]?.layer_id ?? null;
  const before = versions.length >= 2 ? versions[versions.length - 2].layer_id : null;
  return { from: from === undefined ? before : layerId(from), to: to === undefined ? last : layerId(to) };
}

export function formatVersions(versions: FileVersion[]): string[] {
  const rows = [['LAYER', 'PARENT', 'CREATED', 'SIZE', 'LINES', 'STORAGE', 'MESSAGE'],
    ...versions.map((v) => [String(v.layer_id), v.parent_layer_id === null ? '-' : String(v.parent_layer_id),
      v.created_at.toISOString().slice(0, 19).replace('T', ' '), String(v.size ?? '-'), String(v.line_count ?? '-'),
      v.is_working ? 'working' : v.storage, v.message ?? ''])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

export function printDiffs(diffs: FileDiff[], opts: { stat?: boolean; json?: boolean }): void {
  if (opts.json) return printJson(diffs);
  const lines = opts.stat ? formatStat(diffs) : diffs.flatMap(formatPatch);
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
}

interface DiffOptions { tenant?: string; from?: string; to?: string; stat?: boolean; json?: boolean; history?: boolean; unified?: string }

function contextLines(value: string | undefined): number {
  if (value === undefined) return 3;
  if (!/^\d{1,6}$/.test(value)) throw new CliError(`expected a number of context lines, got "${value}"`, ExitCode.usage);
  return Number(value);
}

export function register(program: Command): void {
  tenantOption(program.command('diff <path>'))
    .description("a file's versions and the diff between two of them (default: the last two)")
    .option('--from <layer>', 'the older version: the file as seen in this layer')
    .option('--to <layer>', 'the newer version (default: the latest)')
    .option('-U, --unified <n>', 'lines of context (default 3)')
    .option('--history', 'list the versions instead of diffing')
    .option('--stat', 'a diffstat instead of the patch')
    .option('--json', 'print JSON')
    .action(async (rawPath: string, opts: DiffOptions, cmd: Command) => {
      const path = fsPath(rawPath);
      const context = contextLines(opts.unified);
      await withTenant(configFor(cmd), opts.tenant, async (sql) => {
        const versions = await fileVersions(sql, path);
        if (opts.history) {
          if (opts.json) return printJson(versions);
          for (const line of formatVersions(versions)) console.log(line);
          return;
        }
        const { from, to } = pickSides(versions, opts.from, opts.to);
        printDiffs([await diffFile(sql, path, from, to, context)], opts);
      });
    });
}
