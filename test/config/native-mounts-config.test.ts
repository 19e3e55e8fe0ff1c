// [[native_mounts]] validation beyond the shape config.test.ts checks: sources (absolute, not
// "/", placeholders as whole components, a directory or creatable), a read-write source shared
// by every tenant only when asked for, paths inside /.tarbox, and ambiguous definitions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../cli/config.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tarbox-native-config-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function load(toml: string) {
  const dir = path.join(tmp, String(++n));
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'tarbox.toml'), toml);
  return loadConfig({ cwd: dir, env: {} });
}
const one = (body: string) => load(`[[native_mounts]]\n${body}\n`);

function rejects(t: import('ava').ExecutionContext, fn: () => unknown, message: RegExp) {
  const err = t.throws(fn, { name: 'ConfigError' });
  t.regex(err?.message ?? '', message);
}

test('sources: absolute, normalized, not "/", placeholders as whole components', (t) => {
  rejects(t, () => one('path = "/a"\nsource = "/"'), /#1 source: "\/" would expose the whole host/);
  rejects(t, () => one('path = "/a"\nsource = "/srv/../etc"'), /#1 source: expected a normalized path/);
  rejects(t, () => one('path = "/a"\nsource = "/srv/"'), /#1 source: expected a normalized path/);
  rejects(t, () => one('path = "/a"\nsource = "/srv//x"'), /#1 source: expected a normalized path/);
  rejects(t, () => one('path = "/a"\nsource = "relative/dir"'), /#1 source: expected an absolute path/);
  rejects(t, () => one('path = "/a"\nsource = "/srv/x-{tenant}"\nmode = "rw"'), /#1 source: a placeholder must be a whole path component/);
  rejects(t, () => one('path = "/a"\nsource = "/srv/{home}"'), /#1 source: unknown placeholder \{home\}/);
  t.is(one(`path = "/a"\nsource = "${tmp}/{tenant}/{tenant_id}"\nmode = "rw"`).native_mounts[0].source, `${tmp}/{tenant}/{tenant_id}`);
});

test('sources must be directories, or creatable', (t) => {
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, '');
  rejects(t, () => one(`path = "/a"\nsource = "${file}"`), /#1 source: .*a-file exists and is not a directory/);
  rejects(t, () => one(`path = "/a"\nsource = "${file}/{tenant}"\nmode = "rw"`), /#1 source: .*a-file exists and is not a directory/);
  t.is(one(`path = "/a"\nsource = "${tmp}/not/yet/there"`).native_mounts.length, 1, 'a missing source is created at mount');
});

test('a read-write source without placeholder is written by every tenant: only when shared', (t) => {
  rejects(t, () => one(`path = "/a"\nsource = "${tmp}"\nmode = "rw"`), /#1 source: every tenant would write the same directory .*set shared = true/);
  t.is(one(`path = "/a"\nsource = "${tmp}"\nmode = "rw"\nshared = true`).native_mounts[0].shared, true);
  t.is(one(`path = "/a"\nsource = "${tmp}"`).native_mounts[0].mode, 'ro', 'read-only is harmless to share');
});

test('paths inside /.tarbox and ambiguous definitions are rejected', (t) => {
  rejects(t, () => one(`path = "/.tarbox/x"\nsource = "${tmp}"`), /#1 path: "\/.tarbox\/x" is inside the control directory/);
  rejects(t, () => one(`path = "/.tarbox"\nsource = "${tmp}"`), /#1 path: .*control directory/);
  rejects(t, () => load(`[[native_mounts]]\npath = "/a"\nsource = "${tmp}"\npriority = 3\n[[native_mounts]]\npath = "/a"\nsource = "/usr"\npriority = 3\n`),
    /#2 path: duplicate of an earlier mount with path "\/a" and priority 3: which one wins would be ambiguous/);
  // nested paths and equal paths with different priorities are not ambiguous: longest path, then priority
  const c = load(`[[native_mounts]]\npath = "/a"\nsource = "${tmp}"\n[[native_mounts]]\npath = "/a/b"\nsource = "${tmp}"\n[[native_mounts]]\npath = "/a"\nsource = "/usr"\npriority = 1\n`);
  t.is(c.native_mounts.length, 3);
});
