// tarbox umount <dir>: stop the process serving <dir> (it unmounts cleanly), or, when none is
// alive, detach a leftover FUSE mount with fusermount -uz.
import type { Command } from 'commander';
import { CliError, ExitCode } from '../errors.js';
import { canonicalMountpoint, fusermountUnmount, isMounted, liveRecord } from '../mounts.js';
import { isLive, signal, sleep } from '../proc.js';

export async function umount(dir: string, timeoutMs = 30_000): Promise<'stopped' | 'detached'> {
  const mountpoint = canonicalMountpoint(dir);
  const rec = liveRecord(mountpoint);
  if (rec) {
    signal(rec.pid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (isLive(rec.pid, rec.identity)) {
      if (Date.now() > deadline) throw new CliError(`process ${rec.pid} serving ${mountpoint} did not exit within ${timeoutMs / 1000} s`, ExitCode.runtime);
      await sleep(50);
    }
    if (!isMounted(mountpoint)) return 'stopped';
  }
  if (!isMounted(mountpoint)) throw new CliError(`${mountpoint} is not mounted`, ExitCode.runtime);
  if (!fusermountUnmount(mountpoint)) throw new CliError(`cannot unmount ${mountpoint} (fusermount -uz failed)`, ExitCode.runtime);
  return 'detached';
}

export function register(program: Command): void {
  program
    .command('umount <dir>')
    .alias('unmount')
    .description('unmount a tarbox filesystem')
    .action(async (dir: string) => {
      await umount(dir);
    });
}
