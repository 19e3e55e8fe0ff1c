// The line-id diff of cli/text-diff.ts: edits that turn a into b exactly, minimal where the
// answer is known, hunks and unified-diff text as git prints them.
import test from 'ava';
import { diffIds, formatStat, hunkLines, hunksOf, parseIds, type Edit } from '../../cli/text-diff.js';
import { prng } from '../db/_support.js';

/** Applying the edits to a must give b, and everything outside them must be equal. */
function apply(a: number[], b: number[], edits: Edit[]): number[] {
  const out: number[] = [];
  let i = 0;
  for (const e of edits) {
    for (; i < e.aStart; i++) out.push(a[i]);
    out.push(...b.slice(e.bStart, e.bEnd));
    i = e.aEnd;
  }
  for (; i < a.length; i++) out.push(a[i]);
  return out;
}

/** A unified diff of two texts, as `tarbox diff` prints it (ids interned from the lines). */
function patch(before: string, after: string, context = 3): string[] {
  const split = (s: string) => s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const intern = new Map<string, number>();
  const ids = (lines: string[]) => lines.map((l) => intern.get(l) ?? (intern.set(l, intern.size + 1), intern.size));
  const la = split(before);
  const lb = split(after);
  const hunks = hunksOf(diffIds(ids(la), ids(lb)), la.length, context);
  return hunks.flatMap((h) => hunkLines(h, (n) => Buffer.from(la[n - 1]), (n) => Buffer.from(lb[n - 1])));
}

test('random edits: the edits rebuild b from a and touch only changed lines', (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const random = prng(seed);
    const alphabet = 2 + Math.floor(random() * 40);  // small alphabets: many repeated lines
    const a = Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * alphabet));
    const b = [...a];
    for (let e = Math.floor(random() * 6); e > 0; e--) {
      const at = Math.floor(random() * (b.length + 1));
      if (random() < 0.5) b.splice(at, Math.floor(random() * 3));
      else b.splice(at, 0, ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => Math.floor(random() * alphabet)));
    }
    const edits = diffIds(a, b);
    t.deepEqual(apply(a, b, edits), b, `seed ${seed}`);
    for (const e of edits) t.true(e.aEnd > e.aStart || e.bEnd > e.bStart, `seed ${seed}: no empty edit`);
    if (a.length === b.length && a.every((x, i) => x === b[i])) t.is(edits.length, 0);
  }
});

test('a one-line change in a million lines is one edit of one line', (t) => {
  const a = Array.from({ length: 1_000_000 }, (_, i) => i + 1);
  const b = [...a];
  b[500_000] = -7;
  t.deepEqual(diffIds(a, b), [{ aStart: 500_000, aEnd: 500_001, bStart: 500_000, bEnd: 500_001 }]);
  // 1% scattered changes: every change found, nothing else
  const c = [...a];
  const random = prng(9);
  const changed = new Set<number>();
  while (changed.size < 10_000) changed.add(Math.floor(random() * c.length));
  for (const i of changed) c[i] = -(i + 1);
  const edits = diffIds(a, c);
  t.is(edits.reduce((n, e) => n + (e.aEnd - e.aStart), 0), 10_000);
  t.deepEqual(apply(a, c, edits), c);
});

test('known patches, as diff -u / git print them', (t) => {
  t.deepEqual(patch('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n', 'a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n'), [
    '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h',
  ]);
  // two changes far apart: two hunks; a change near the start: context clipped at line 1
  t.deepEqual(patch('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n', 'x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\nnew\n'), [
    '@@ -1,4 +1,4 @@', '-1', '+x', ' 2', ' 3', ' 4',
    '@@ -10,3 +10,4 @@', ' 10', ' 11', ' 12', '+new',
  ]);
  // the final newline: added, removed
  t.deepEqual(patch('a\nb', 'a\nb\n'), ['@@ -1,2 +1,2 @@', ' a', '-b', '\\ No newline at end of file', '+b']);
  t.deepEqual(patch('a\n', 'a'), ['@@ -1 +1 @@', '-a', '+a', '\\ No newline at end of file']);
  // from nothing, to nothing
  t.deepEqual(patch('', 'x\ny\n'), ['@@ -0,0 +1,2 @@', '+x', '+y']);
  t.deepEqual(patch('x\ny\n', ''), ['@@ -1,2 +0,0 @@', '-x', '-y']);
  // CRLF lines keep their \r (as git shows them)
  t.deepEqual(patch('a\r\nb\r\n', 'a\r\nc\r\n'), ['@@ -1,2 +1,2 @@', ' a\r', '-b\r', '+c\r']);
  // a moved block: deleted at one place, added at the other
  t.deepEqual(patch('m1\nm2\na\nb\nc\n', 'a\nb\nc\nm1\nm2\n', 0), ['@@ -1,2 +0,0 @@', '-m1', '-m2', '@@ -5,0 +4,2 @@', '+m1', '+m2']);
  t.deepEqual(patch('same\n', 'same\n'), []);
});

test('parseIds and --stat', (t) => {
  t.deepEqual([...parseIds('')], []);
  t.deepEqual([...parseIds('1,-23,456789012345')], [1, -23, 456789012345]);
  t.deepEqual(formatStat([{ path: '/a.txt', from: 1, to: 2, binary: false, insertions: 2, deletions: 1, hunks: [] },
    { path: '/bin', from: 1, to: 2, binary: true, insertions: 0, deletions: 0, hunks: [] }]), [
    ' /a.txt |    3 ++-', ' /bin   | Bin', ' 2 files changed, 2 insertions(+), 1 deletion(-)',
  ]);
});
