// The tarbox command line: commander wiring only; each command lives in cli/commands/<name>.ts.
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import * as audit from './commands/audit.js';
import * as cat from './commands/cat.js';
import * as init from './commands/init.js';
import * as ls from './commands/ls.js';
import * as mkdir from './commands/mkdir.js';
import * as mount from './commands/mount.js';
import * as native from './commands/native.js';
import * as rm from './commands/rm.js';
import * as stat from './commands/stat.js';
import * as layer from './commands/layer.js';
import * as diff from './commands/diff.js';
import * as pack from './commands/pack.js';
import * as tenant from './commands/tenant.js';
import * as umount from './commands/umount.js';
import * as write from './commands/write.js';
import { ExitCode, describeError } from './errors.js';
import { installSignalHandlers } from './lifecycle.js';
import { projectRoot } from './migrate.js';

export function buildProgram(): Command {
  const { version } = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  const program = new Command('tarbox')
    .description('a POSIX filesystem for AI agents, stored in PostgreSQL')
    .version(version)
    .option('-c, --config <file>', 'config file (default: $TARBOX_CONFIG, else ./tarbox.toml if present)')
    .option('--database-url <url>', 'PostgreSQL URL (default: database.url, else an embedded server)')
    // Set before adding commands: subcommands copy these settings.
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`tarbox: ${str.replace(/^error: /, '').trim()}\n`) });
  for (const command of [init, tenant, mount, umount, ls, cat, write, mkdir, rm, stat, layer, native, audit, diff, pack]) command.register(program);
  return program;
}

/** Runs the CLI; returns the exit code (docs/cli.md). Errors are printed as one line on stderr. */
export async function main(argv: string[] = process.argv): Promise<number> {
  installSignalHandlers();
  try {
    await buildProgram().parseAsync(argv);
    return ExitCode.ok;
  } catch (err) {
    // Commander already printed its message (usage errors) or the help/version text.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    const { message, exitCode } = describeError(err);
    process.stderr.write(`tarbox: ${message}\n`);
    if (process.env.TARBOX_DEBUG === '1') process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
    return exitCode;
  }
}
