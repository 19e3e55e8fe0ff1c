import test from 'ava';
import { useDatabase } from './_support.js';

const env = useDatabase(test);

const F_OK = 0;
const X_OK = 1;
const W_OK = 2;
const R_OK = 4;

test('F_OK checks existence only', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o000, 1000, 1000);
  await t.notThrowsAsync(fs.access('/f', F_OK, 2000, 2000));
  await t.throwsAsync(fs.access('/missing', F_OK), { code: 'TBNOE' });
});

test('the owner class uses the owner bits', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o640, 1000, 100);
  await t.notThrowsAsync(fs.access('/f', R_OK | W_OK, 1000, 555));
  await t.throwsAsync(fs.access('/f', X_OK, 1000, 555), { code: 'TBACC' });
  await t.throwsAsync(fs.access('/f', R_OK | X_OK, 1000, 555), { code: 'TBACC' });
});

test('the group class uses the group bits', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o640, 1000, 100);
  await t.notThrowsAsync(fs.access('/f', R_OK, 2000, 100));
  await t.throwsAsync(fs.access('/f', W_OK, 2000, 100), { code: 'TBACC' });
});

test('everyone else uses the other bits', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o754, 1000, 100);
  await t.notThrowsAsync(fs.access('/f', R_OK, 2000, 200));
  await t.throwsAsync(fs.access('/f', W_OK, 2000, 200), { code: 'TBACC' });
  await t.throwsAsync(fs.access('/f', X_OK, 2000, 200), { code: 'TBACC' });
  await fs.chmod('/f', 0o750);
  await t.throwsAsync(fs.access('/f', R_OK, 2000, 200), { code: 'TBACC' });
});

test('only the first matching class counts: an owner denied by the owner bits is denied', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o077, 1000, 100);
  await t.throwsAsync(fs.access('/f', R_OK, 1000, 100), { code: 'TBACC' });
  await t.notThrowsAsync(fs.access('/f', R_OK | W_OK | X_OK, 2000, 100));
  await fs.chmod('/f', 0o707);
  await t.throwsAsync(fs.access('/f', R_OK, 2000, 100), { code: 'TBACC' }); // group member, group bits 0
  await t.notThrowsAsync(fs.access('/f', R_OK, 3000, 300));
});

test('uid 0 may read and write anything and execute a file only if some x bit is set', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/f', 0o000, 1000, 1000);
  await t.notThrowsAsync(fs.access('/f', R_OK | W_OK, 0, 0));
  await t.throwsAsync(fs.access('/f', X_OK, 0, 0), { code: 'TBACC' });
  await fs.chmod('/f', 0o001);
  await t.notThrowsAsync(fs.access('/f', X_OK, 0, 0));
  // directories can always be searched by root
  await fs.mkdir('/d', 0o000, 1000, 1000);
  await t.notThrowsAsync(fs.access('/d', R_OK | W_OK | X_OK, 0, 0));
});

test('directories: X_OK is the search bit', async (t) => {
  const fs = await env.tenant(t);
  await fs.mkdir('/d', 0o751, 1000, 100);
  await t.notThrowsAsync(fs.access('/d', X_OK, 5, 5));
  await t.throwsAsync(fs.access('/d', R_OK, 5, 5), { code: 'TBACC' });
  await t.notThrowsAsync(fs.access('/d', R_OK | X_OK, 6, 100));
  await t.throwsAsync(fs.access('/d', W_OK, 6, 100), { code: 'TBACC' });
});

test('access follows symlinks (checks the target\'s mode)', async (t) => {
  const fs = await env.tenant(t);
  await fs.create('/secret', 0o600, 1000, 1000);
  await fs.symlink('/secret', '/l'); // the link itself is 0777
  await t.throwsAsync(fs.access('/l', R_OK, 2000, 2000), { code: 'TBACC' });
  await t.notThrowsAsync(fs.access('/l', R_OK, 1000, 1000));
  await fs.symlink('/gone', '/dangling');
  await t.throwsAsync(fs.access('/dangling', F_OK), { code: 'TBNOE' });
});
