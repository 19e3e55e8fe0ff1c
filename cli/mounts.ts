// Bookkeeping for `tarbox mount` / `tarbox umount`: one pid file per mountpoint in a per-user runtime
// directory (not the project's .tarbox), so `tarbox umount DIR` works from any directory.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError, ExitCode } from './errors.js';
import { identity, isLive } from './proc.js';

export interface MountRecord {
  pid: number;
  identity: string | null;
  mountpoint: string;
  tenant: string;
  started: string;
}

/** $XDG_RUNTIME_DIR/tarbox, else <tmpdir>/tarbox-<uid>; private to the user. */
export function runtimeDir(): string {
  const base = process.env.XDG_RUNTIME_DIR
    ? path.join(process.env.XDG_RUNTIME_DIR, 'tarbox')
    : path.join(os.tmpdir(), `tarbox-${process.getuid?.() ?? 'user'}`);
  const dir = path.join(base, 'mounts');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // In a shared /tmp someone else could have created the directory first.
  const st = fs.lstatSync(base);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new CliError(`${base} is not a directory owned by you`, ExitCode.runtime);
  }
  return dir;
}

/**
 * The absolute mountpoint, resolving symlinks in its parent only: stat() on the mountpoint itself
 * fails with ENOTCONN when its FUSE server died, and umount must still work then.
 */
export function canonicalMountpoint(dir: string): string {
  const abs = path.resolve(dir);
  if (abs === '/') return abs;
  let parent = path.dirname(abs);
  try {
    parent = fs.realpathSync(parent);
  } catch {
    // Keep the unresolved parent; the caller reports a missing mountpoint.
  }
  return path.join(parent, path.basename(abs));
}

export function recordFile(mountpoint: string): string {
  const hash = crypto.createHash('sha1').update(mountpoint).digest('hex');
  return path.join(runtimeDir(), `${hash}.pid`);
}

export function logFile(mountpoint: string): string {
  return recordFile(mountpoint).replace(/\.pid$/, '.log');
}

export function writeRecord(mountpoint: string, tenant: string): void {
  const rec: MountRecord = { pid: process.pid, identity: identity(process.pid), mountpoint, tenant, started: new Date().toISOString() };
  fs.writeFileSync(recordFile(mountpoint), `${JSON.stringify(rec)}\n`);
}

/** The record of a live serving process for this mountpoint, or null (a stale record is removed). */
export function liveRecord(mountpoint: string): MountRecord | null {
  const file = recordFile(mountpoint);
  let rec: MountRecord;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  if (rec.pid !== process.pid && isLive(rec.pid, rec.identity)) return rec;
  if (rec.pid !== process.pid) fs.rmSync(file, { force: true });
  return null;
}

export function removeRecord(mountpoint: string): void {
  const file = recordFile(mountpoint);
  try {
    const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as MountRecord;
    if (rec.pid === process.pid) fs.rmSync(file, { force: true });
  } catch {
    // Already gone.
  }
}

/** Whether the kernel has something mounted exactly at this path (from /proc/self/mountinfo). */
export function isMounted(mountpoint: string): boolean {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  // Field 5 is the mount point, with space, tab, newline and backslash escaped as octal.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info.split('\n').some((line) => unescape(line.split(' ')[4] ?? '') === mountpoint);
}

/** Lazy unmount with fusermount (fuse 2) or fusermount3; true on success. */
export function fusermountUnmount(mountpoint: string): boolean {
  for (const bin of ['fusermount', 'fusermount3']) {
    try {
      execFileSync(bin, ['-uz', mountpoint], { stdio: 'ignore' });
      return true;
    } catch {
      // Missing binary or not mounted; try the next one.
    }
  }
  return false;
}
