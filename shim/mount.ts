// Mount one tenant: open its database connections, build the op table and hand it to
// the FUSE binding with the options that make FUSE fast (big writes, attribute and entry
// caching, kernel permission checks with the caller's identity).

import os from 'node:os';
import { AuditLog, type AuditLevel } from './audit.js';
import { ChunkStore } from './chunks.js';
import { ControlFs } from './control.js';
import { listenForChanges, newOrigin, type ChangeSink } from './notifications.js';
import { TenantDatabase, type Sql } from './database.js';
import { TarboxFs } from './filesystem.js';
import { mount } from './fuse/binding.js';
import { NativeFs } from './native-fs.js';
import { checkNativeMount, resolveNativeMounts, type NativeMountSpec } from './native-mounts.js';
import { OpenFiles } from './open-files.js';
import { operations } from './operations.js';

/** The parts of the configuration the mount uses (see cli/config.ts for the whole). */
export interface MountConfig {
  database: { pool_size: number; connection_timeout: number; statement_timeout: number };
  filesystem: { attr_timeout: number; entry_timeout: number };
  cache: { block_size: number; metadata_size: number };
  /** `[[native_mounts]]` of the config file (every tenant); the tenant's own come from SQL. */
  native_mounts?: readonly NativeMountSpec[];
  audit: { enabled: boolean; level: 'writes' | 'all'; retention_days: number; partition: 'daily' | 'weekly' | 'monthly' };
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
  const origin = newOrigin();
  const db = await TenantDatabase.open({
    origin,
    url: options.databaseUrl,
    tenant: options.tenant,
    poolSize: config.database.pool_size,
    statementTimeoutMs: config.database.statement_timeout,
    connectTimeoutSeconds: config.database.connection_timeout,
    auditNode: `${os.hostname()}:${options.mountpoint}`,
  });
  const audit = new AuditLog(db.sql, await configureAudit(db, config.audit), log);
  const maintenance = maintainAuditHourly(db, log);
  const [{ block_size: blockSize }] = await db.sql`select (tarbox.statfs()).bsize as block_size`;
  const chunks = new ChunkStore(db.data, db.tenantId, config.cache.block_size);
  const files = new OpenFiles(db.sql, chunks, blockSize as number, FLUSH_THRESHOLD_BYTES);
  const fs = new TarboxFs({ sql: db.sql, files, metadataCacheBytes: config.cache.metadata_size, audit });

  let native: NativeFs;
  try {
    native = await openNativeMounts(db.sql, options, db.tenantId, log);
  } catch (err) {
    await db.close();
    throw err;
  }

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
    // layers do not snapshot native mounts: say so where the layers are listed
    extraListLines: () => native.describe(),
  });
  // another mount (or the CLI, or SQL) switched this tenant's layer, or changed its native
  // mounts: forget what we knew, and read the native mounts again
  const reloadNative = () => nativeMountsOf(db.sql, options, db.tenantId, log)
    .then((mounts) => native.reload(mounts))
    .catch((err) => log(`tarbox: reloading native mounts failed, keeping the previous ones: ${(err as Error).message}`));
  // what other mounts, the CLI or SQL change reaches the caches as notices; the cache
  // stays off until the listener is listening
  const listener = await listenForChanges(options.databaseUrl, db.tenantId, origin, changeSink(fs, reloadNative), log,
    (channel, payload) => db.sql`select pg_notify(${channel}, ${payload})`);

  let handle;
  try {
    handle = await mount(options.mountpoint, operations(fs, control, log, audit, native), {
      fsname: `tarbox-${options.tenant}`,
      subtype: 'tarbox',
      allowOther: true,
      defaultPermissions: true,
      bigWrites: true,
      // unlink of an open file really unlinks (POSIX); the SQL keeps the inode until release
      hardRemove: true,
      // No auto_cache: it keeps pages across opens when mtime and size look unchanged, which
      // a layer switch (or a copy that restores mtime) defeats; see docs/architecture.md.
      attrTimeout: config.filesystem.attr_timeout,
      entryTimeout: config.filesystem.entry_timeout,
      // keep every SQL statement below fuse's 15 s watchdog so callers get our errno
      opTimeoutMs: Math.max(config.database.statement_timeout + 2000, 15000),
      logger: { error: (message) => log(message) },
    });
  } catch (err) {
    clearInterval(maintenance);
    await listener.close();
    await db.close();
    native.close();
    throw err;
  }

  let finished = false;
  const unmount = async () => {
    if (finished) return;
    finished = true;
    await fs.flushAll();
    await packing;
    await handle.unmount();
    clearInterval(maintenance);
    await audit.flush();
    await listener.close();
    await db.close();
    native.close();
  };
  const closed = handle.closed.then(async () => {
    if (!finished) {
      finished = true;
      clearInterval(maintenance);
      await audit.flush();
      await listener.close().catch(() => {});
      await db.close().catch(() => {});
      native.close();
    }
  });
  return { unmount, closed, fs };
}



/** The config file's native mounts and the tenant's own (tarbox.list_native_mounts), opened on the host. */
async function openNativeMounts(sql: Sql, options: MountOptions, tenantId: number, log: (msg: string) => void): Promise<NativeFs> {
  return new NativeFs(await nativeMountsOf(sql, options, tenantId, log));
}

/** The native mounts in effect for the tenant: the config file's and its own, checked. */
async function nativeMountsOf(sql: Sql, options: MountOptions, tenantId: number, log: (msg: string) => void) {
  const rows = await sql`select path, source, mode, shared, priority from tarbox.list_native_mounts()`;
  // Checked again here, as the config file's were at load: rows may have been written by hand.
  const valid = (rows as unknown as NativeMountSpec[]).filter((row) => {
    const bad = checkNativeMount(row);
    if (bad) log(`tarbox: native mount ${row.path} of tenant ${options.tenant} ignored: ${bad}`);
    return !bad;
  });
  const { mounts, conflicts } = resolveNativeMounts(options.config.native_mounts ?? [], valid, options.tenant, tenantId);
  for (const line of conflicts) log(`tarbox: ${line}`);
  return mounts;
}

/** [audit] into the database: the tenant's level (SQL callers follow it too) and partitioning. */
async function configureAudit(db: TenantDatabase, audit: MountConfig['audit']): Promise<AuditLevel> {
  const level: AuditLevel = audit.enabled ? audit.level : 'off';
  // tenant roles may not change their own audit settings: the admin login does it
  await db.asAdmin(async (sql) => {
    await sql`select tarbox.set_audit_level(${level})`;
    await sql`select tarbox.configure_audit(${audit.partition}, ${audit.retention_days})`;
  });
  return level;
}

const MAINTENANCE_INTERVAL_MS = 3600_000;

/** Partitions ahead and retention, now and every hour while mounted (any mount may do it). */
function maintainAuditHourly(db: TenantDatabase, log: (msg: string) => void): NodeJS.Timeout {
  const run = () => db.asAdmin((sql) => sql`select * from tarbox.maintain_audit()`).catch((err: Error) => {
    log(`tarbox: audit maintenance failed: ${err.message}`);
  });
  void run();
  const timer = setInterval(run, MAINTENANCE_INTERVAL_MS);
  timer.unref();
  return timer;
}

/** Notices from the listener, applied to this mount's caches. */
function changeSink(fs: TarboxFs, reloadNative: () => void): ChangeSink {
  const cache = fs.attrs;
  return {
    suspend: () => cache.suspend(),
    resume: () => cache.resume(),
    viewChanged: () => { fs.dropCaches(); reloadNative(); },
    inodeChanged: (ino) => cache.inodeChanged(ino),
    entryChanged: (parent, name) => cache.entryChanged(parent, name),
    counted: (own) => { cache.counters.notices++; if (own) cache.counters.ownNotices++; },
  };
}
