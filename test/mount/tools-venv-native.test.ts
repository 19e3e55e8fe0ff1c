// A Python virtual environment created and used through a read-write native mount: the case
// native mounts exist for (thousands of small files, symlinks, executables, at host speed).
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { allowTime, finish, mountFresh, PYTHON, type Mount } from '../helpers/mount.js';

let m: Mount;
let host: string;

test.before(async () => {
  host = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-venv-'));
  fs.chmodSync(host, 0o755);
  m = await mountFresh({
    config: { native_mounts: [{ path: '/venvs', source: path.join(host, '{tenant}'), mode: 'rw', shared: false, priority: 0 }] },
  });
});

test.after.always(async (t) => {
  await finish(t, m);
  fs.rmSync(host, { recursive: true, force: true });
});

test('python3 -m venv, then its python and pip run from the mount', async (t) => {
  await allowTime(t, 300_000);
  await m.check(`${PYTHON} -m venv venvs/env`, { timeoutMs: 280_000 });
  const prefix = await m.check('venvs/env/bin/python -c "import sys; print(sys.prefix)"');
  t.is(prefix.trim(), m.path('venvs/env'));
  const pip = await m.check('venvs/env/bin/python -m pip --version');
  t.regex(pip, /^pip \d+/);
  // a module placed in the venv's site-packages is importable by the venv's python only
  const site = (await m.check('venvs/env/bin/python -c "import site; print(site.getsitepackages()[0])"')).trim();
  fs.writeFileSync(path.join(site, 'tarbox_probe.py'), 'VALUE = 42\n');
  t.is((await m.check('venvs/env/bin/python -c "import tarbox_probe; print(tarbox_probe.VALUE)"')).trim(), '42');
  // everything landed in the tenant's host directory
  t.true(fs.existsSync(path.join(host, m.tenant, 'env', 'pyvenv.cfg')));
  t.true(fs.lstatSync(path.join(host, m.tenant, 'env', 'bin', 'python')).isSymbolicLink());
});
