// Mount one tenant: open its database connections, build the op table and hand it to
// the FUSE binding with the options that make FUSE fast (big writes, attribute and entry
// caching, kernel permission checks with the caller's identity).

import { ChunkStore } from './chunks.js';
import { ControlFs } from './control.js';
import { listenForLayerSwitches } from './notifications.js';
import { TenantDatabase } from './database.js';
import { TarboxFs } from './filesystem.js';
import { mount } from './fuse/binding.js';
import { OpenFiles } from './open-files.js';
import { operations } from './operations.js';

/** The parts of the configuration the mount uses (see cli/config.ts for the whole). */
export interface MountConfig {
  database: { pool_size: number; connection_timeout: number; statement_timeout: number };
  filesystem: { attr_timeout: number; entry_timeout: number };
  cache: { block_size: number; metadata_size: number };
  /** Text storage; without it the mount does not pack layers (docs/text-storage.md). */
  text?: { max_file_size: number; max_line_length: number; pack_on_checkpoint: boolean };
}

export interface MountOptions {
  databaseUrl: string;
  tenant: string;
  mountpoint: string;
  config: MountConfig;
  log?: (msg: string) => void;
}

export interface MountedTenant {
  unmount(): Promise<void>;
  /** Resolves when the filesystem is unmounted, by us or from outside (fusermount -u). */
  closed: Promise<void>;
  fs: TarboxFs;
}

/** Dirty bytes per file before a background commit starts. */
const FLUSH_THRESHOLD_BYTES = 8 * 1024 * 1024;

export async function mountTenant(options: MountOptions): Promise<MountedTenant> {
  const log = options.log ?? ((msg: string) => process.stderr.write(msg + '\n'));
  const { config } = options;
  const db = await TenantDatabase.open({
    url: options.databaseUrl,
    tenant: options.tenant,
    poolSize: config.database.pool_size,
    statementTimeoutMs: config.database.statement_timeout,
    connectTimeoutSeconds: config.database.connection_timeout,
  });
  const [{ block_size: blockSize }] = await db.sql`select (tarbox.statfs()).bsize as block_size`;
  const chunks = new ChunkStore(db.data, db.tenantId, config.cache.block_size);
  const files = new OpenFiles(db.sql, chunks, blockSize as number, FLUSH_THRESHOLD_BYTES);
  const fs = new TarboxFs({ sql: db.sql, files, attrCacheMs: config.filesystem.attr_timeout * 1000 });

  // Packing runs after the checkpoint's write has returned, one pack at a time; a failure
  // (e.g. statement_timeout on a huge layer) loses nothing: the layer stays in chunks and
  // the next pack retries it.
  let packing: Promise<void> = Promise.resolve();
  const text = config.text;
  const packLayers = text?.pack_on_checkpoint
    ? () => {
        packing = packing.then(async () => {
          await db.sql`select tarbox.pack_text(${text.max_file_size}, ${text.max_line_length})`;
        }).catch((err: Error) => log(`tarbox: packing text failed: ${err.message}`));
      }
    : undefined;

  const control = new ControlFs(db.sql, {
    beforeSwitch: () => fs.flushAll(),
    afterSwitch: () => fs.dropCaches(),
    afterCheckpoint: packLayers,
    kernelCacheMs: Math.max(config.filesystem.attr_timeout, config.filesystem.entry_timeout) * 1000,
  });
  // another mount (or the CLI, or SQL) switched this tenant's layer: forget what we knew
  const listener = await listenForLayerSwitches(options.databaseUrl, db.tenantId, () => fs.dropCaches(), log);

  let handle;
  try {
    handle = await mount(options.mountpoint, operations(fs, control, log), {
      fsname: `tarbox-${options.tenant}`,
      subtype: 'tarbox',
      allowOther: true,
      defaultPermissions: true,
      bigWrites: true,
      // unlink of an open file really unlinks (POSIX); the SQL keeps the inode until release
      hardRemove: true,
      attrTimeout: config.filesystem.attr_timeout,
      entryTimeout: config.filesystem.entry_timeout,
      // keep every SQL statement below fuse's 15 s watchdog so callers get our errno
      opTimeoutMs: Math.max(config.database.statement_timeout + 2000, 15000),
      logger: { error: (message) => log(message) },
    });
  } catch (err) {
    await listener.close();
    await db.close();
    throw err;
  }

  let finished = false;
  const unmount = async () => {
    if (finished) return;
    finished = true;
    await fs.flushAll();
    await packing;
    await handle.unmount();
    await listener.close();
    await db.close();
  };
  const closed = handle.closed.then(async () => {
    if (!finished) { finished = true; await listener.close().catch(() => {}); await db.close().catch(() => {}); }
  });
  return { unmount, closed, fs };
}

