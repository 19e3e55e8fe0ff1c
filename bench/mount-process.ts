// A FUSE mount served by its own process: the benchmark must never make syscalls on a mount its
// own process serves. The tarbox mount is test/fixtures/mount-server.ts (restarting it empties
// every cache the shim holds: attributes, block maps, chunks); the "fuse floor" is
// test/fixtures/memfs-server.ts, an in-memory filesystem on the same FUSE binding.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mountProcessEnv } from '../cli/proc.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures');

export interface MountProcessOptions {
  /** Script and arguments. */
  command: string[];
  /** The line the server prints on stdout once mounted. */
  readyLine: string;
  mountpoint: string;
  /** stderr of every mount process goes here (appended). */
  logFile: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeArgs?: string[];
}

export function isMounted(mountpoint: string): boolean {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((line) => line.split(' ')[1] === mountpoint);
}

/** The tenant's filesystem, with the mount settings of the user's configuration. */
export function tarboxMount(o: { url: string; tenant: string; mountpoint: string; overrides: object; logFile: string; nodeArgs?: string[] }): MountProcess {
  return new MountProcess({
    command: [path.join(FIXTURES, 'mount-server.js'), o.url, o.tenant, o.mountpoint, JSON.stringify(o.overrides)],
    readyLine: 'mounted', mountpoint: o.mountpoint, logFile: o.logFile, nodeArgs: o.nodeArgs,
  });
}

/** The FUSE binding alone: an in-memory filesystem in JS with the binding's default options. */
export function memfsMount(o: { mountpoint: string; logFile: string; attrTimeout: number; entryTimeout: number }): MountProcess {
  return new MountProcess({
    command: [path.join(FIXTURES, 'memfs-server.js'), o.mountpoint, `--attr-timeout=${o.attrTimeout}`, `--entry-timeout=${o.entryTimeout}`],
    readyLine: 'READY', mountpoint: o.mountpoint, logFile: o.logFile,
  });
}

export class MountProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(private readonly opts: MountProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const { command, readyLine, mountpoint, logFile, nodeArgs = [] } = this.opts;
    const log = fs.openSync(logFile, 'a');
    const child = spawn(process.execPath, [...nodeArgs, ...command], {
      stdio: ['ignore', 'pipe', log],
      // as `tarbox mount` starts its serving process (the floor gets the same)
      env: mountProcessEnv(),
    });
    fs.closeSync(log);
    this.child = child;
    this.starts++;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onExit = (code: number | null, sig: string | null) =>
        reject(new Error(`mount process exited (${sig ?? code}) before mounting; see ${logFile}:\n${tail(logFile)}`));
      child.once('exit', onExit);
      child.stdout!.on('data', (data: Buffer) => {
        out += data.toString();
        if (out.split('\n').includes(readyLine)) {
          child.off('exit', onExit);
          resolve();
        }
      });
    });
    if (!isMounted(mountpoint)) throw new Error(`mount process reported ready but ${mountpoint} is not mounted`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
    if ((await Promise.race([this.exited, timeout])) === 'timeout') {
      child.kill('SIGKILL');
      await this.exited;
    }
    if (isMounted(this.opts.mountpoint)) spawnSync('fusermount', ['-uz', this.opts.mountpoint]);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
