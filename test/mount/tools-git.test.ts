// git on the mount: init, add, commit, status, log, branches, a clone, fsck.
import test from 'ava';
import * as fs from 'node:fs';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;
// no system or global configuration: the test sets what it needs in the repository
const GIT_ENV = { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/nonexistent' };
const git = (cmd: string, cwd = 'repo') => m.check(`cd ${cwd} && ${cmd}`, { env: GIT_ENV });

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

test.serial('git init, add, commit, status, log', async (t) => {
  t.timeout(60_000);
  await m.check('mkdir repo');
  await git('git init -q -b main . && git config user.name Tester && git config user.email tester@example.com');
  t.true(fs.statSync(m.path('repo', '.git', 'HEAD')).isFile());
  fs.mkdirSync(m.path('repo', 'src'));
  fs.writeFileSync(m.path('repo', 'README.md'), '# test repo\n');
  for (let i = 0; i < 20; i++) fs.writeFileSync(m.path('repo', 'src', `mod${i}.txt`), `module ${i}\n`.repeat(i + 1));
  fs.writeFileSync(m.path('repo', 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  fs.symlinkSync('README.md', m.path('repo', 'link'));
  await git('git add -A && git commit -q -m "first commit"');
  t.is(await git('git status --porcelain'), '', 'clean after commit');
  fs.appendFileSync(m.path('repo', 'README.md'), 'more\n');
  fs.unlinkSync(m.path('repo', 'src', 'mod3.txt'));
  fs.writeFileSync(m.path('repo', 'new.txt'), 'new\n');
  const status = (await git('git status --porcelain')).split('\n').filter(Boolean).sort();
  t.deepEqual(status, [' D src/mod3.txt', ' M README.md', '?? new.txt']);
  await git('git add -A && git commit -q -m "second commit"');
  const log = (await git('git log --format=%s')).trim().split('\n');
  t.deepEqual(log, ['second commit', 'first commit']);
  const files = (await git('git ls-files')).trim().split('\n');
  t.is(files.length, 23); // README.md, link, new.txt, run.sh, 19 modules
  t.is((await git('git ls-files -s run.sh')).split(' ')[0], '100755', 'the executable bit is recorded');
  t.is((await git('git ls-files -s link')).split(' ')[0], '120000', 'the symlink is recorded as one');
  t.is((await git('git diff HEAD~1 --stat | tail -1')).trim(), '3 files changed, 2 insertions(+), 4 deletions(-)');
});

test.serial('branches, checkout, merge and fsck', async (t) => {
  t.timeout(60_000);
  await git('git checkout -q -b feature && echo feature > feature.txt && git add feature.txt && git commit -q -m feature');
  await git('git checkout -q main');
  t.false(fs.existsSync(m.path('repo', 'feature.txt')), 'checkout removes the file');
  await git('git merge -q --no-edit feature');
  t.is(fs.readFileSync(m.path('repo', 'feature.txt'), 'utf8'), 'feature\n');
  await git('git gc -q');
  const fsck = await m.run('cd repo && git fsck --full --strict', { env: GIT_ENV });
  t.is(fsck.code, 0, fsck.stderr);
  t.is(await git('git status --porcelain'), '');
});

test.serial('git clone of the repository on the mount, and the clone after a remount', async (t) => {
  t.timeout(60_000);
  await git('git clone -q repo clone', '.');
  t.is(fs.readFileSync(m.path('clone', 'README.md'), 'utf8'), '# test repo\nmore\n');
  await m.remount();
  const log = (await git('git log --format=%s', 'clone')).trim().split('\n');
  t.deepEqual(log.slice(-2), ['second commit', 'first commit']);
  const fsck = await m.run('cd clone && git fsck --full', { env: GIT_ENV });
  t.is(fsck.code, 0, fsck.stderr);
  t.is(await git('git status --porcelain', 'clone'), '');
});
