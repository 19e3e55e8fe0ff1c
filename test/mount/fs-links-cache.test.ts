// With the kernel's attribute caching on (attr_timeout 1 s, the default), another name of a
// hard link shows the new link count within that bound, not later.
import fs from 'node:fs';
import test from 'ava';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
test.before(async () => {
  m = await mountFresh({ config: { filesystem: { attr_timeout: 1, entry_timeout: 1 } } });
});
test.after.always((t) => finish(t, m));

test('another name of a hard link sees the new nlink within attr_timeout', async (t) => {
  const a = m.path('cached-orig');
  fs.writeFileSync(a, 'x');
  t.is(fs.statSync(a).nlink, 1);                    // now cached by the kernel for this name
  const linkedAt = Date.now();
  fs.linkSync(a, m.path('cached-second'));
  t.is(fs.statSync(m.path('cached-second')).nlink, 2);
  let seen = fs.statSync(a).nlink;
  while (seen !== 2 && Date.now() - linkedAt < 3000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen = fs.statSync(a).nlink;
  }
  t.is(seen, 2);
  t.true(Date.now() - linkedAt <= 1500, `took ${Date.now() - linkedAt} ms; the bound is attr_timeout (1 s)`);
});
