// tarbox native add|list|remove through the built CLI: per-tenant definitions merged with the
// config file's in `list`, validation with one-line errors and documented exit codes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freshDatabase, type FreshDatabase } from '../helpers/database.js';
import { cliRunner, failsWith, text } from '../helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-cli-native-'));
let db: FreshDatabase;
const { tarbox, ok } = cliRunner({ url: () => db.url, cwd: work });

test.before(async () => {
  fs.writeFileSync(path.join(work, 'tarbox.toml'),
    `[[native_mounts]]\npath = "/dict"\nsource = "${work}/dict"\nshared = true\n\n`
    + `[[native_mounts]]\npath = "/scratch"\nsource = "${work}/scratch/{tenant}"\nmode = "rw"\n`);
  db = await freshDatabase();
  await ok(['tenant', 'create', 'nat']);
  await ok(['tenant', 'create', 'other']);
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Listing { path: string; host_path: string; mode: string; priority: number; origin: string; state: string }
const list = async (tenant: string) => JSON.parse(text(await ok(['native', 'list', '-t', tenant, '--json']))) as Listing[];

test.serial('add, list with the config file\'s, remove', async (t) => {
  t.regex(text(await ok(['native', 'add', '-t', 'nat', '/models', `${work}/models/{tenant_id}`, '--mode', 'rw'])),
    /^native mount \/models -> .*models\/\{tenant_id\} \(rw, priority 0\); mounts of the tenant pick it up at once\n$/);
  await ok(['native', 'add', '-t', 'nat', '/scratch', `${work}/mine/{tenant}`, '-m', 'rw', '-p', '5']);
  const rows = await list('nat');
  t.deepEqual(rows.map((r) => [r.path, r.priority, r.origin, r.state, r.host_path]), [
    ['/dict', 0, 'config', 'active', `${work}/dict`],
    ['/models', 0, 'tenant', 'active', `${work}/models/1`],
    ['/scratch', 5, 'tenant', 'active', `${work}/mine/nat`],
    ['/scratch', 0, 'config', 'shadowed', `${work}/scratch/nat`],
  ]);
  // the other tenant has only the config file's
  t.deepEqual((await list('other')).map((r) => [r.path, r.host_path]),
    [['/dict', `${work}/dict`], ['/scratch', `${work}/scratch/other`]]);
  t.regex(text(await ok(['native', 'list', '-t', 'nat'])), /^PATH\s+SOURCE\s+MODE\s+PRIORITY\s+FROM\s+STATE\n\/dict\s/);

  t.is(text(await ok(['native', 'remove', '-t', 'nat', '/scratch', '-p', '5'])), 'removed 1 native mount of /scratch\n');
  t.is(text(await ok(['native', 'remove', '-t', 'nat', '/models'])), 'removed 1 native mount of /models\n');
  t.deepEqual((await list('nat')).map((r) => r.origin), ['config', 'config']);
});

test.serial('errors: bad definitions, ambiguity with the config file, unknown entries and tenants', async (t) => {
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/x', '/']), 2, /source: "\/" would expose the whole host/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', 'x', '/srv']), 2, /path: expected an absolute, normalized path/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/x', `${work}/shared`, '-m', 'rw']), 2, /every tenant would write the same directory/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/x', '/srv', '-m', 'rx']), 2, /expected ro or rw/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/x', '/srv', '-p', 'high']), 2, /expected an integer/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/x', path.join(work, 'tarbox.toml')]), 2, /exists and is not a directory/);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/dict', `${work}/d2`]), 5, /defined in the config file: which one wins would be ambiguous/);
  await ok(['native', 'add', '-t', 'nat', '/twice', `${work}/twice`]);
  failsWith(t, await tarbox(['native', 'add', '-t', 'nat', '/twice', `${work}/twice2`]), 5, /exists/);
  failsWith(t, await tarbox(['native', 'remove', '-t', 'nat', '/nothing']), 3, /no native mount of \/nothing/);
  failsWith(t, await tarbox(['native', 'list', '-t', 'nobody']), 3, /nobody/);
});
