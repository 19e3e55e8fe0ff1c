// Two processes appending to one log file at the same time (O_APPEND): no line lost,
// none torn, each writer's lines in order.
import test from 'ava';
import * as fs from 'node:fs';
import { finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

function checkLines(t: import('ava').ExecutionContext, text: string, writers: string[], count: number): void {
  const lines = text.split('\n');
  t.is(lines.pop(), '', 'the file ends with a newline');
  t.is(lines.length, writers.length * count, 'every line is there');
  const seen = new Map<string, number>(writers.map((w) => [w, 0]));
  const bad: string[] = [];
  for (const line of lines) {
    const match = /^([A-Z]) (\d+)$/.exec(line);
    if (!match || !seen.has(match[1])) { bad.push(line); continue; }
    const next = seen.get(match[1])! + 1;
    if (Number(match[2]) !== next) bad.push(`${line} (expected ${match[1]} ${next})`);
    seen.set(match[1], Number(match[2]));
  }
  t.deepEqual(bad.slice(0, 10), [], 'no torn, lost or reordered lines');
  for (const w of writers) t.is(seen.get(w), count, `all lines of ${w}`);
}

test.serial('two shells appending with >> (open, write, close per line)', async (t) => {
  t.timeout(180_000);
  const loop = (w: string) => m.check(`for i in $(seq 1 500); do echo "${w} $i" >> log; done`, { timeoutMs: 170_000 });
  await Promise.all([loop('A'), loop('B')]);
  checkLines(t, fs.readFileSync(m.path('log'), 'utf8'), ['A', 'B'], 500);
});

test.serial('four shells appending with >> at once', async (t) => {
  t.timeout(180_000);
  const loop = (w: string) => m.check(`for i in $(seq 1 250); do echo "${w} $i" >> log4; done`, { timeoutMs: 170_000 });
  await Promise.all(['A', 'B', 'C', 'D'].map(loop));
  checkLines(t, fs.readFileSync(m.path('log4'), 'utf8'), ['A', 'B', 'C', 'D'], 250);
});

test.serial('two processes each holding an O_APPEND fd open', async (t) => {
  t.timeout(120_000);
  const writer = (w: string) => m.python(`
import os
fd = os.open('log2', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(1, 2001):
    os.write(fd, b'${w} %d\\n' % i)
os.close(fd)
out(1)`);
  await Promise.all([writer('A'), writer('B'), writer('C')]);
  checkLines(t, fs.readFileSync(m.path('log2'), 'utf8'), ['A', 'B', 'C'], 2000);
});

test.serial('appends from two mount processes of the same tenant, taking turns', async (t) => {
  t.timeout(60_000);
  // O_APPEND means "at the end of the file" even when the end was written by another mount
  // a moment ago: each append must land after the other mount's committed data.
  const other = await m.mountAgain();
  try {
    for (let i = 1; i <= 20; i++) {
      fs.appendFileSync(m.path('log3'), `A ${i}\n`);
      fs.appendFileSync(`${other.mountpoint}/log3`, `B ${i}\n`);
    }
  } finally {
    await other.stop();
  }
  // reading the other mount's data through this one waits out the 1 s attribute caches
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const text = fs.readFileSync(m.path('log3'), 'utf8');
  const expected = Array.from({ length: 20 }, (_, k) => `A ${k + 1}\nB ${k + 1}\n`).join('');
  t.is(text, expected);
});
