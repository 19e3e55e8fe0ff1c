// tarbox layer list|create|switch|delete|diff: checkpoints of a tenant (docs/layers.md).
// Each subcommand is one call of the matching SQL function.
import type { Command } from 'commander';
import type postgres from 'postgres';
import { configFor, printJson, withTenant } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { diffFile, type FileDiff } from '../text-diff.js';
import { printDiffs } from './diff.js';
import { packText } from './pack.js';
import { tenantOption } from './fs.js';

export interface LayerInfo {
  layer_id: number;
  parent_layer_id: number | null;
  message: string | null;
  created_at: Date;
  frozen_at: Date | null;
  is_working: boolean;
  in_view: boolean;
  changed_entries: number;
  changed_bytes: number;
}

export interface LayerChange { path: string; change: 'added' | 'modified' | 'deleted'; kind: string }

export const listLayers = (sql: postgres.Sql<{}>) => sql<LayerInfo[]>`select * from tarbox.list_layers()`;

export async function createLayer(sql: postgres.Sql<{}>, message: string | null): Promise<LayerInfo> {
  const [layer] = await sql<LayerInfo[]>`select * from tarbox.create_layer(${message})`;
  return layer;
}

export async function switchLayer(sql: postgres.Sql<{}>, id: number): Promise<LayerInfo> {
  const [layer] = await sql<LayerInfo[]>`select * from tarbox.switch_layer(${id})`;
  return layer;
}

export async function deleteLayer(sql: postgres.Sql<{}>, id: number): Promise<void> {
  await sql`select tarbox.delete_layer(${id})`;
}

export const diffLayers = (sql: postgres.Sql<{}>, from: number, to: number) =>
  sql<LayerChange[]>`select path, change, kind from tarbox.layer_diff(${from}, ${to})`;

/** The text diffs of the regular files that differ between two layers (docs/text-storage.md). */
export async function patchLayers(sql: postgres.Sql<{}>, from: number, to: number): Promise<FileDiff[]> {
  const diffs: FileDiff[] = [];
  for (const c of await diffLayers(sql, from, to)) {
    if (c.kind !== 'file') continue;
    diffs.push(await diffFile(sql, c.path, c.change === 'added' ? null : from, c.change === 'deleted' ? null : to));
  }
  return diffs;
}

export function layerId(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new CliError(`expected a layer id (a number), got "${value}"`, ExitCode.usage);
  return Number(value);
}

function state(layer: LayerInfo): string {
  return layer.is_working ? 'working' : layer.in_view ? 'in-view' : 'frozen';
}

export function formatLayers(layers: LayerInfo[]): string[] {
  const rows = [['ID', 'PARENT', 'CREATED', 'ENTRIES', 'BYTES', 'STATE', 'MESSAGE'],
    ...layers.map((l) => [String(l.layer_id), l.parent_layer_id === null ? '-' : String(l.parent_layer_id),
      l.created_at.toISOString().slice(0, 19).replace('T', ' '), String(l.changed_entries), String(l.changed_bytes),
      state(l), l.message ?? ''])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

const SIGN = { added: 'A', modified: 'M', deleted: 'D' } as const;

export function register(program: Command): void {
  const layer = program.command('layer').description('checkpoints: list, create, switch, delete, diff');

  tenantOption(layer.command('list'))
    .description('the layer history of a tenant')
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; json?: boolean }, cmd: Command) => {
      const layers = await withTenant(configFor(cmd), opts.tenant, listLayers);
      if (opts.json) return printJson(layers);
      for (const line of formatLayers(layers)) console.log(line);
    });

  tenantOption(layer.command('create'))
    .description('checkpoint: freeze the working layer and start a new one')
    .option('-m, --message <text>', 'what this checkpoint is')
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; message?: string; json?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const created = await withTenant(config, opts.tenant, async (sql) => {
        const layer = await createLayer(sql, opts.message ?? null);
        if (config.text.pack_on_checkpoint) await packText(sql, config);
        return layer;
      }, { operation: 'layer_create' });
      if (opts.json) return printJson(created);
      console.log(`checkpoint ${created.layer_id}${created.message ? `: ${created.message}` : ''}`);
    });

  tenantOption(layer.command('switch <id>'))
    .description('show the filesystem as it was in a layer (unsaved changes are checkpointed first)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { tenant?: string; json?: boolean }, cmd: Command) => {
      const target = await withTenant(configFor(cmd), opts.tenant, (sql) => switchLayer(sql, layerId(id)),
        { operation: 'layer_switch' });
      if (opts.json) return printJson(target);
      console.log(`switched to layer ${target.layer_id}`);
    });

  tenantOption(layer.command('delete <id>'))
    .description('delete a layer nothing depends on (not in the current view, no child layer)')
    .action(async (id: string, opts: { tenant?: string }, cmd: Command) => {
      await withTenant(configFor(cmd), opts.tenant, (sql) => deleteLayer(sql, layerId(id)), { operation: 'layer_delete' });
      console.log(`deleted layer ${id}`);
    });

  tenantOption(layer.command('diff <from> <to>'))
    .description('paths added (A), modified (M) or deleted (D) between two layers')
    .option('-p, --patch', 'show the text diffs of the files that differ')
    .option('--stat', 'a diffstat of the files that differ')
    .option('--json', 'print JSON')
    .action(async (from: string, to: string, opts: { tenant?: string; json?: boolean; patch?: boolean; stat?: boolean }, cmd: Command) => {
      if (opts.patch || opts.stat) {
        const diffs = await withTenant(configFor(cmd), opts.tenant, (sql) => patchLayers(sql, layerId(from), layerId(to)));
        return printDiffs(diffs, opts);
      }
      const changes = await withTenant(configFor(cmd), opts.tenant, (sql) => diffLayers(sql, layerId(from), layerId(to)));
      if (opts.json) return printJson(changes);
      for (const c of changes) console.log(`${SIGN[c.change]}  ${c.path}${c.kind === 'dir' ? '/' : ''}`);
    });
}
