// Small process helpers shared by the embedded-server bookkeeping and the mount pid files.
import net from 'node:net';
import fs from 'node:fs';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The process start time from /proc, so a reused pid is not mistaken for the original process. */
export function identity(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Alive, not a zombie, and (where /proc tells) the same process that recorded `recordedIdentity`. */
export function isLive(pid: number, recordedIdentity: string | null): boolean {
  if (!isAlive(pid) || isZombie(pid)) return false;
  const now = identity(pid);
  return !recordedIdentity || !now || now === recordedIdentity;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers started in tests and benchmarks). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The environment of a process that serves a mount: glibc malloc on transparent huge pages
 * (`glibc.malloc.hugetlb=1`, added to any GLIBC_TUNABLES already set; a hugetlb value the
 * user chose is kept). A fresh mount process fills its chunk cache with new memory, and on
 * this kind of virtual machine every 4 KiB page fault is expensive: a cold read of 256 MiB by
 * a just-started mount went from 90-107 to 113-175 MB/s (docs/performance.md, "Fresh memory
 * in the mount process"). glibc reads tunables only when a process starts, so whoever starts
 * the mount process sets them (the Makefile's `run` target does the same).
 */
export function mountProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const tunables = env.GLIBC_TUNABLES ?? '';
  if (/(^|:)glibc\.malloc\.hugetlb=/.test(tunables)) return env;
  return { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:glibc.malloc.hugetlb=1` : 'glibc.malloc.hugetlb=1' };
}
