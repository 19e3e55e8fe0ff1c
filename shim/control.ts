// The virtual control directory /.tarbox: layer commands from inside the mount.
//
//   echo "message" > /.tarbox/layers/new      checkpoint (tarbox.create_layer)
//   cat /.tarbox/layers/list                  history (tarbox.list_layers)
//   echo <id> > /.tarbox/layers/switch        switch (tarbox.switch_layer)
//   cat /.tarbox/layers/current               the working layer (tarbox.current_layer)
//
// Each command runs on write(), so its error is the write's errno (ENOENT for an unknown
// layer, EINVAL for bad text). /.tarbox is not listed in readdir of / (so find, tar and
// cp -r never descend into it) but can be looked up, listed and read by name. Nothing in
// it can be created, removed or renamed (EPERM). Files are opened direct_io (handles >= 2^52,
// see the binding patch): their content is made at open, so size in stat is only a hint.

import type { Sql } from './database.js';
import { Errno, FsError } from './errors.js';
import type { Attr } from './open-files.js';

export const CONTROL_ROOT = '/.tarbox';

const DIR = 0o040555;
const READABLE = 0o100444;
const WRITABLE = 0o100666;

interface Node { mode: number; ino: number; children?: string[] }

// Inode numbers far above the database's sequence, so they never collide with files.
const BASE_INO = 2 ** 52;
const NODES: Record<string, Node> = {
  '/.tarbox': { mode: DIR, ino: BASE_INO + 1, children: ['layers'] },
  '/.tarbox/layers': { mode: DIR, ino: BASE_INO + 2, children: ['current', 'list', 'new', 'switch'] },
  '/.tarbox/layers/new': { mode: WRITABLE, ino: BASE_INO + 3 },
  '/.tarbox/layers/list': { mode: READABLE, ino: BASE_INO + 4 },
  '/.tarbox/layers/switch': { mode: WRITABLE, ino: BASE_INO + 5 },
  '/.tarbox/layers/current': { mode: READABLE, ino: BASE_INO + 6 },
};

export function isControlPath(path: string): boolean {
  return path === CONTROL_ROOT || path.startsWith(CONTROL_ROOT + '/');
}

interface ControlHandle { path: string; content: Buffer }

export interface LayerRow {
  layer_id: number; parent_layer_id: number | null; message: string | null; created_at: Date;
  frozen_at: Date | null; is_working: boolean; in_view: boolean; changed_entries: number; changed_bytes: number;
}

/** The text of /.tarbox/layers/list: one line per layer, oldest first. */
export function formatLayerList(rows: LayerRow[], extraLines: string[] = []): string {
  const lines = ['ID\tPARENT\tCREATED\tENTRIES\tBYTES\tSTATE\tMESSAGE'];
  for (const row of rows) {
    const state = row.is_working ? 'working' : row.in_view ? 'in-view' : 'frozen';
    lines.push([row.layer_id, row.parent_layer_id ?? '-', row.created_at.toISOString(), row.changed_entries,
      row.changed_bytes, state, (row.message ?? '').replace(/[\t\n]/g, ' ')].join('\t'));
  }
  return lines.concat(extraLines).join('\n') + '\n';
}

export class ControlFs {
  private handles = new Map<number, ControlHandle>();
  // Handles from 2^52 up: far from TarboxFs's, and the binding opens them with direct_io,
  // so reads always come here rather than from a page cache sized by a stale stat.
  private nextHandle = 2 ** 52;

  constructor(
    private readonly sql: Sql,
    private readonly hooks: {
      /** Before a switch: commit buffered writes, so they land in the layer being left. */
      beforeSwitch(): Promise<void>;
      /** After a switch: drop every cache of this mount (others hear it by NOTIFY). */
      afterSwitch(): void;
      /**
       * How long the kernel may keep attributes and names it looked up (the larger of
       * attr_timeout and entry_timeout, in ms). libfuse 2 cannot invalidate them, so a switch
       * made here returns only after that long: when `echo id > switch` completes, everything
       * the kernel knows was looked up after the switch.
       */
      kernelCacheMs: number;
      /** Lines appended to the list file (e.g. native mounts, which layers do not snapshot). */
      extraListLines?(): string[];
      /** After a checkpoint: pack the frozen layer's text files (in the background). */
      afterCheckpoint?(): void;
    },
  ) {}

  private node(path: string): Node {
    const node = NODES[path];
    if (!node) throw new FsError(Errno.ENOENT);
    return node;
  }

  getattr(path: string): Attr {
    const node = this.node(path);
    const now = Math.floor(Date.now() / 1000);
    return {
      ino: node.ino, mode: node.mode, nlink: node.children ? 2 : 1, uid: 0, gid: 0, rdev: 0,
      size: 0, blocks: 0, blksize: 4096,  // content is made at open and read with direct_io
      atime_sec: now, atime_nsec: 0, mtime_sec: now, mtime_nsec: 0, ctime_sec: now, ctime_nsec: 0,
    };
  }

  readdir(path: string): string[] {
    const node = this.node(path);
    if (!node.children) throw new FsError(Errno.ENOTDIR);
    return ['.', '..', ...node.children];
  }

  async open(path: string): Promise<number> {
    const node = this.node(path);
    if (node.children) throw new FsError(Errno.EISDIR);
    const fh = this.nextHandle++;
    this.handles.set(fh, { path, content: await this.render(path) });
    return fh;
  }

  owns(fh: number): boolean {
    return this.handles.has(fh);
  }

  private async render(path: string): Promise<Buffer> {
    if (path === '/.tarbox/layers/list') {
      const rows = await this.sql`select * from tarbox.list_layers()`;
      return Buffer.from(formatLayerList(rows as unknown as LayerRow[], this.hooks.extraListLines?.() ?? []));
    }
    if (path === '/.tarbox/layers/current') {
      const [row] = await this.sql`select * from tarbox.current_layer()`;
      return Buffer.from(`${row.layer_id}\t${row.parent_layer_id ?? '-'}\n`);
    }
    return Buffer.alloc(0);
  }

  read(fh: number, buf: Buffer, length: number, offset: number): number {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError(Errno.EBADF);
    if (offset >= handle.content.length) return 0;
    return handle.content.copy(buf, 0, offset, Math.min(offset + length, handle.content.length));
  }

  /** Each write is one command; its failure is the write's errno. */
  async write(fh: number, buf: Buffer): Promise<number> {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError(Errno.EBADF);
    const text = buf.toString('utf8').trim();
    if (handle.path === '/.tarbox/layers/new') {
      await this.sql`select tarbox.create_layer(${text === '' ? null : text})`;
      this.hooks.afterCheckpoint?.();
    } else if (handle.path === '/.tarbox/layers/switch') {
      if (!/^\d{1,15}$/.test(text)) throw new FsError(Errno.EINVAL, `not a layer id: ${text}`);
      await this.hooks.beforeSwitch();
      await this.sql`select tarbox.switch_layer(${Number(text)})`;
      this.hooks.afterSwitch();
      await new Promise((resolve) => setTimeout(resolve, this.hooks.kernelCacheMs));
    } else {
      throw new FsError(Errno.EACCES);
    }
    return buf.length;
  }

  /** O_TRUNC on a command file is how `echo x > file` opens it: accept and ignore. */
  truncate(path: string): void {
    const node = this.node(path);
    if (node.mode !== WRITABLE) throw new FsError(Errno.EACCES);
  }

  release(fh: number): void {
    this.handles.delete(fh);
  }

  /** Everything that would create, remove or change a control node. */
  refuse(): never {
    throw new FsError(Errno.EPERM);
  }
}
