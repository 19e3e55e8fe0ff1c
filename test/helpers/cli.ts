// Runs the built CLI (bin/tarbox.js) as a child process, as a user would, and checks the
// documented failure shape. Shared by the CLI test files.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = path.join(root, 'bin', 'tarbox.js');

export interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions { input?: Buffer | string; url?: string | null; env?: Record<string, string> }

/** A runner bound to a database and a working directory, with no tarbox environment. */
export function cliRunner(defaults: { url: () => string; cwd: string }) {
  function tarbox(args: string[], opts: RunOptions = {}): Promise<Result> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('TARBOX_')) env[k] = v;
    }
    const url = opts.url === undefined ? defaults.url() : opts.url;
    const argv = [bin, ...(url ? ['--database-url', url] : []), ...args];
    const child = spawn(process.execPath, argv, { cwd: defaults.cwd, env: { ...env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.end(opts.input ?? '');
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    });
  }

  async function ok(args: string[], opts?: RunOptions): Promise<Result> {
    const r = await tarbox(args, opts);
    if (r.code !== 0) throw new Error(`tarbox ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  }

  return { tarbox, ok };
}

export const text = (r: Result) => r.stdout.toString();

/** Asserts the documented failure shape: exit code, one "tarbox: ..." line on stderr, no stack. */
export function failsWith(t: ExecutionContext, r: Result, code: number, message: RegExp): void {
  t.is(r.code, code, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0] ?? '', /^tarbox: /);
  t.regex(lines[0] ?? '', message);
}
