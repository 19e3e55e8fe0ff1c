// Shared wiring for the file commands (ls, cat, write, mkdir, rm, stat): --tenant and the formatting
// of modes and times.
import { InvalidArgumentError, type Command } from 'commander';

export function tenantOption(cmd: Command): Command {
  return cmd.option('-t, --tenant <name>', 'tenant (default: filesystem.default_tenant)');
}

export function parseMode(value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new InvalidArgumentError(`expected an octal mode like 0644, got "${value}"`);
  return parseInt(value, 8);
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' };

/** "drwxr-xr-x" from a kind and permission bits (setuid/setgid/sticky shown as in ls). */
export function modeString(kind: string, mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (TYPE_CHAR[kind] ?? '?') +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't');
}
