// tarbox mount [dir] [--tenant T] [--foreground]
//
// The serving process runs mountTenant() (shim/mount.ts) until SIGINT/SIGTERM, then unmounts and
// releases the database; or until the filesystem is unmounted from outside. Without --foreground
// the command starts that process detached, waits until it reports the mount ready, and returns.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config.js';
import { configFor, connect, withDatabase } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { waitForSignal } from '../lifecycle.js';
import { mountProcessEnv } from '../proc.js';
import { canonicalMountpoint, fusermountUnmount, isMounted, liveRecord, logFile, removeRecord, writeRecord } from '../mounts.js';
import { tenantOption } from './fs.js';

// Loaded at run time so that only `tarbox mount` loads the FUSE binding; typed against the shim.
type MountTenant = typeof import('../../shim/mount.js').mountTenant;

async function loadShim(): Promise<MountTenant> {
  const spec = new URL('../../shim/mount.js', import.meta.url);
  try {
    const mod = (await import(spec.href)) as { mountTenant?: MountTenant };
    if (typeof mod.mountTenant === 'function') return mod.mountTenant;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes(spec.pathname)) throw err;
  }
  throw new CliError('the FUSE layer (shim/mount.js) is not built', ExitCode.runtime);
}

/** Refuses a missing, non-directory or already mounted mountpoint, with one-line errors. */
export function checkMountpoint(dir: string): string {
  const mountpoint = canonicalMountpoint(dir);
  if (liveRecord(mountpoint) || isMounted(mountpoint)) {
    throw new CliError(`${mountpoint} is busy: already mounted (tarbox umount ${mountpoint})`, ExitCode.runtime);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(mountpoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`mountpoint ${mountpoint} does not exist`, ExitCode.notFound);
    throw new CliError(`mountpoint ${mountpoint}: ${code ?? (err as Error).message}`, ExitCode.runtime);
  }
  if (!st.isDirectory()) throw new CliError(`mountpoint ${mountpoint} is not a directory`, ExitCode.usage);
  return mountpoint;
}

/** Serves the mount in this process until a signal or an outside unmount. */
export async function serve(config: Config, tenant: string, mountpoint: string, onReady: () => void): Promise<void> {
  const mountTenant = await loadShim();
  await withDatabase(config, async (db) => {
    // Check the tenant first: "unknown tenant" reads better than a failed mount.
    const sql = connect(db.url, config);
    try {
      await sql`select tarbox.use_tenant(${tenant})`;
    } finally {
      await sql.end({ timeout: 2 });
    }
    writeRecord(mountpoint, tenant);
    // If this process dies without unmounting, do not leave a dead FUSE mount behind.
    const onExit = () => {
      if (isMounted(mountpoint)) fusermountUnmount(mountpoint);
    };
    process.on('exit', onExit);
    try {
      // Timestamped, and unlike errors not prefixed "tarbox: " (daemonize() looks for that prefix).
      const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
      const signalled = waitForSignal();
      const handle = await mountTenant({ databaseUrl: db.url, tenant, mountpoint, config, log });
      onReady();
      const reason = await Promise.race([handle.closed.then(() => 'closed' as const), signalled]);
      if (reason !== 'closed') await handle.unmount();
    } finally {
      removeRecord(mountpoint);
      process.off('exit', onExit);
      onExit();
    }
  });
}

/** Starts `tarbox mount --foreground` detached and waits until it is serving or has failed. */
async function daemonize(mountpoint: string): Promise<number> {
  const log = fs.openSync(logFile(mountpoint), 'w');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...process.argv.slice(2), '--foreground'], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: mountProcessEnv(),
  });
  fs.closeSync(log);
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => {
      // Its last "tarbox: ..." line is the error it printed.
      const lines = fs.readFileSync(logFile(mountpoint), 'utf8').trim().split('\n').reverse();
      const last = lines.find((l) => l.startsWith('tarbox: '))?.slice('tarbox: '.length);
      reject(new CliError(last ?? `mount process exited with code ${code}`, code || ExitCode.runtime));
    };
    child.once('error', reject);
    child.once('exit', onExit);
    child.on('message', (msg) => {
      if (!(msg as { ready?: boolean }).ready) return;
      child.off('exit', onExit);
      child.disconnect();
      child.unref();
      resolve(child.pid!);
    });
  });
}

export function register(program: Command): void {
  tenantOption(program.command('mount [dir]'))
    .description('mount a tenant\'s filesystem at <dir> (default: filesystem.mountpoint, created if missing)')
    .option('-f, --foreground', 'serve in this process until Ctrl-C / SIGTERM')
    .action(async (dir: string | undefined, opts: { tenant?: string; foreground?: boolean }, cmd: Command) => {
      const config = configFor(cmd);
      const tenant = opts.tenant ?? config.filesystem.default_tenant;
      if (dir === undefined) {
        dir = config.filesystem.mountpoint;
        if (!fs.existsSync(dir) && !isMounted(canonicalMountpoint(dir))) fs.mkdirSync(dir, { recursive: true });
      }
      const mountpoint = checkMountpoint(dir);
      if (!opts.foreground) {
        const pid = await daemonize(mountpoint);
        console.log(`mounted tenant "${tenant}" at ${mountpoint} (pid ${pid}, log ${logFile(mountpoint)}); "tarbox umount ${mountpoint}" to stop`);
        return;
      }
      try {
        await serve(config, tenant, mountpoint, () => {
          if (process.send) {
            process.send({ ready: true });
            process.disconnect?.();
          } else {
            console.log(`mounted tenant "${tenant}" at ${mountpoint}; Ctrl-C to unmount`);
          }
        });
      } finally {
        // Started by daemonize(): an open IPC channel would keep this process alive after a failure.
        if (process.connected) process.disconnect?.();
      }
    });
}

