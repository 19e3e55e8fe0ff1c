// Line diffs over line ids (docs/text-storage.md). SQL returns each version of a text file as
// an array of line ids, equal exactly when the lines are equal (tarbox.file_line_ids), so
// diffing is comparing integers: no file is re-read or re-split. The algorithm is patience
// diff (anchor on lines that occur once on both sides, recurse between anchors) with a
// dynamic-programming LCS for the small gaps left, as git's --patience does.
import type postgres from 'postgres';

/** A changed region: a[aStart, aEnd) became b[bStart, bEnd) (0-based, half-open). */
export interface Edit { aStart: number; aEnd: number; bStart: number; bEnd: number }

type Ids = ArrayLike<number>;

/** Gaps without unique anchors up to this many cells get an exact LCS; larger ones are replaced whole. */
const LCS_CELLS = 4_000_000;

export function diffIds(a: Ids, b: Ids): Edit[] {
  const [da, db, distinct] = dense(a, b);
  const scratch = { countA: new Uint8Array(distinct), countB: new Uint8Array(distinct), posA: new Int32Array(distinct), posB: new Int32Array(distinct) };
  const out: Edit[] = [];
  diffRange(da, 0, da.length, db, 0, db.length, out, scratch);
  return merge(out);
}

/**
 * The ids renumbered 0..distinct-1, so uniqueness is counted in typed arrays rather than
 * Maps (a Map of 1M numbers cost seconds here). Ids from SQL are mostly a dense range of
 * positive integers: then an offset is enough; otherwise (negative ids of unstored lines,
 * sparse ids) one Map interns them.
 */
function dense(a: Ids, b: Ids): [Int32Array, Int32Array, number] {
  let min = Infinity;
  let max = -Infinity;
  for (const ids of [a, b]) for (let i = 0; i < ids.length; i++) { const x = ids[i]; if (x < min) min = x; if (x > max) max = x; }
  const total = a.length + b.length;
  const da = new Int32Array(a.length);
  const db = new Int32Array(b.length);
  if (total === 0) return [da, db, 0];
  if (Number.isSafeInteger(min) && Number.isSafeInteger(max) && max - min < 4 * total + 1024) {
    for (let i = 0; i < a.length; i++) da[i] = a[i] - min;
    for (let j = 0; j < b.length; j++) db[j] = b[j] - min;
    return [da, db, max - min + 1];
  }
  const intern = new Map<number, number>();
  const id = (x: number) => { let v = intern.get(x); if (v === undefined) { v = intern.size; intern.set(x, v); } return v; };
  for (let i = 0; i < a.length; i++) da[i] = id(a[i]);
  for (let j = 0; j < b.length; j++) db[j] = id(b[j]);
  return [da, db, intern.size];
}

interface Scratch { countA: Uint8Array; countB: Uint8Array; posA: Int32Array; posB: Int32Array }

function diffRange(a: Int32Array, aLo: number, aHi: number, b: Int32Array, bLo: number, bHi: number, out: Edit[], s: Scratch): void {
  while (aLo < aHi && bLo < bHi && a[aLo] === b[bLo]) { aLo++; bLo++; }
  while (aLo < aHi && bLo < bHi && a[aHi - 1] === b[bHi - 1]) { aHi--; bHi--; }
  if (aLo === aHi || bLo === bHi) {
    if (aLo < aHi || bLo < bHi) out.push({ aStart: aLo, aEnd: aHi, bStart: bLo, bEnd: bHi });
    return;
  }
  const anchors = uniqueAnchors(a, aLo, aHi, b, bLo, bHi, s);
  if (anchors.length === 0) {
    lcs(a, aLo, aHi, b, bLo, bHi, out);
    return;
  }
  let pa = aLo;
  let pb = bLo;
  for (let k = 0; k < anchors.length; k += 2) {
    diffRange(a, pa, anchors[k], b, pb, anchors[k + 1], out, s);
    pa = anchors[k] + 1;
    pb = anchors[k + 1] + 1;
  }
  diffRange(a, pa, aHi, b, pb, bHi, out, s);
}

/**
 * Pairs (i, j) of lines that occur exactly once in a[aLo, aHi) and once in b[bLo, bHi), the
 * longest run of them in the same order on both sides (patience sorting), flattened as
 * [i0, j0, i1, j1, ...]. Counts live in shared typed arrays, reset before returning.
 */
function uniqueAnchors(a: Int32Array, aLo: number, aHi: number, b: Int32Array, bLo: number, bHi: number, s: Scratch): number[] {
  for (let i = aLo; i < aHi; i++) { const x = a[i]; if (s.countA[x] < 2) s.countA[x]++; s.posA[x] = i; }
  for (let j = bLo; j < bHi; j++) { const x = b[j]; if (s.countB[x] < 2) s.countB[x]++; s.posB[x] = j; }
  const pairsI: number[] = [];
  const pairsJ: number[] = [];
  for (let i = aLo; i < aHi; i++) {
    const x = a[i];
    if (s.countA[x] === 1 && s.countB[x] === 1) { pairsI.push(i); pairsJ.push(s.posB[x]); }
  }
  for (let i = aLo; i < aHi; i++) s.countA[a[i]] = 0;
  for (let j = bLo; j < bHi; j++) s.countB[b[j]] = 0;
  // longest increasing subsequence of j (pairs are already ordered by i)
  const tails: number[] = [];      // index into pairs of the smallest tail of each length
  const prev = new Int32Array(pairsJ.length);
  for (let k = 0; k < pairsJ.length; k++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pairsJ[tails[mid]] < pairsJ[k]) lo = mid + 1; else hi = mid;
    }
    prev[k] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = k;
  }
  const result: number[] = new Array(tails.length * 2);
  for (let k = tails.length ? tails[tails.length - 1] : -1, n = tails.length - 1; k >= 0; k = prev[k], n--) {
    result[2 * n] = pairsI[k];
    result[2 * n + 1] = pairsJ[k];
  }
  return result;
}

/** Exact longest common subsequence for a small region (else the region is one replacement). */
function lcs(a: Int32Array, aLo: number, aHi: number, b: Int32Array, bLo: number, bHi: number, out: Edit[]): void {
  const n = aHi - aLo;
  const m = bHi - bLo;
  if (n * m > LCS_CELLS) {
    out.push({ aStart: aLo, aEnd: aHi, bStart: bLo, bEnd: bHi });
    return;
  }
  // suffix table: len[i][j] = LCS of a[aLo+i..] and b[bLo+j..]
  const width = m + 1;
  const len = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      len[i * width + j] = a[aLo + i] === b[bLo + j]
        ? len[(i + 1) * width + j + 1] + 1
        : Math.max(len[(i + 1) * width + j], len[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  let open: Edit | null = null;
  const close = () => { if (open) { out.push(open); open = null; } };
  while (i < n || j < m) {
    if (i < n && j < m && a[aLo + i] === b[bLo + j]) { close(); i++; j++; continue; }
    open ??= { aStart: aLo + i, aEnd: aLo + i, bStart: bLo + j, bEnd: bLo + j };
    if (j >= m || (i < n && len[(i + 1) * width + j] >= len[i * width + j + 1])) { i++; open.aEnd = aLo + i; }
    else { j++; open.bEnd = bLo + j; }
  }
  close();
}

function merge(edits: Edit[]): Edit[] {
  const out: Edit[] = [];
  for (const e of edits) {
    const last = out[out.length - 1];
    if (last && last.aEnd === e.aStart && last.bEnd === e.bStart) { last.aEnd = e.aEnd; last.bEnd = e.bEnd; }
    else out.push({ ...e });
  }
  return out;
}

// --- hunks ----------------------------------------------------------------------------------

export interface Hunk {
  from_start: number; from_lines: number; to_start: number; to_lines: number;
  /** the edits this hunk shows */
  edits: Edit[];
}

/** Edits grouped into hunks with `context` unchanged lines around them, as diff -U does. */
export function hunksOf(edits: Edit[], aLength: number, context = 3): Hunk[] {
  const hunks: Hunk[] = [];
  for (const e of edits) {
    const last = hunks[hunks.length - 1];
    const lastEdit = last?.edits[last.edits.length - 1];
    if (last && lastEdit && e.aStart - lastEdit.aEnd <= 2 * context) { last.edits.push(e); continue; }
    hunks.push({ from_start: 0, from_lines: 0, to_start: 0, to_lines: 0, edits: [e] });
  }
  for (const h of hunks) {
    const first = h.edits[0];
    const last = h.edits[h.edits.length - 1];
    const aFrom = Math.max(0, first.aStart - context);
    const aTo = Math.min(aLength, last.aEnd + context);
    const bFrom = first.bStart - (first.aStart - aFrom);
    const bTo = last.bEnd + (aTo - last.aEnd);
    h.from_start = aFrom; h.from_lines = aTo - aFrom; h.to_start = bFrom; h.to_lines = bTo - bFrom;
  }
  return hunks;
}

/** git's "l,s" (",1" left out; an empty side names the line before it). */
function range(start: number, count: number): string {
  if (count === 1) return String(start + 1);
  return `${count === 0 ? start : start + 1},${count}`;
}

/** The lines of a hunk: context and deletions from a, additions from b (1-based line numbers needed). */
export function hunkLines(h: Hunk, lineA: (n: number) => Buffer, lineB: (n: number) => Buffer): string[] {
  const out = [`@@ -${range(h.from_start, h.from_lines)} +${range(h.to_start, h.to_lines)} @@`];
  const push = (sign: string, data: Buffer) => {
    const hasEol = data.length > 0 && data[data.length - 1] === 0x0a;
    out.push(sign + data.subarray(0, hasEol ? data.length - 1 : data.length).toString('utf8'));
    if (!hasEol) out.push('\\ No newline at end of file');
  };
  let a = h.from_start;
  for (const e of h.edits) {
    for (; a < e.aStart; a++) push(' ', lineA(a + 1));
    for (let i = e.aStart; i < e.aEnd; i++) push('-', lineA(i + 1));
    for (let j = e.bStart; j < e.bEnd; j++) push('+', lineB(j + 1));
    a = e.aEnd;
  }
  for (; a < h.from_start + h.from_lines; a++) push(' ', lineA(a + 1));
  return out;
}

/** Line numbers (1-based) each side must supply to print these hunks. */
export function neededLines(hunks: Hunk[]): { a: number[]; b: number[] } {
  const a: number[] = [];
  const b: number[] = [];
  for (const h of hunks) {
    for (let i = h.from_start; i < h.from_start + h.from_lines; i++) a.push(i + 1);
    for (const e of h.edits) for (let j = e.bStart; j < e.bEnd; j++) b.push(j + 1);
  }
  return { a, b };
}

// --- versions from SQL ----------------------------------------------------------------------

/** "1,2,3" -> numbers, without building a string per id (1M ids in tens of ms). */
export function parseIds(list: string): Float64Array {
  if (list === '') return new Float64Array(0);
  let count = 1;
  for (let i = 0; i < list.length; i++) if (list.charCodeAt(i) === 44) count++;
  const ids = new Float64Array(count);
  let n = 0;
  let value = 0;
  let negative = false;
  for (let i = 0; i <= list.length; i++) {
    const c = i < list.length ? list.charCodeAt(i) : 44;
    if (c === 44) { ids[n++] = negative ? -value : value; value = 0; negative = false; }
    else if (c === 45) negative = true;
    else value = value * 10 + (c - 48);
  }
  return ids;
}

/** A side of a diff: a layer id, or null for "no file" (before the first version). */
export type Side = number | null;

/** Both versions' line ids in one query; null for a side that is not text. */
export async function fetchIds(sql: postgres.Sql<{}>, path: string, from: Side, to: Side): Promise<{ a: Float64Array | null; b: Float64Array | null }> {
  const [row] = await sql<{ a: string | null; b: string | null }[]>`
    select case when ${from}::bigint is null then '' else array_to_string(tarbox.file_line_ids(${path}, ${from}), ',') end as a,
           case when ${to}::bigint is null then '' else array_to_string(tarbox.file_line_ids(${path}, ${to}), ',') end as b`;
  return { a: row.a === null ? null : parseIds(row.a), b: row.b === null ? null : parseIds(row.b) };
}

/**
 * The edits between two versions when one is stored as a delta against the other
 * (tarbox.file_delta), else null. The stored hunks say which regions changed; each region
 * is diffed here, so the work is proportional to the change, not to the file: two
 * consecutive versions of a million-line file cost what their few thousand changed lines
 * cost.
 */
async function storedEdits(sql: postgres.Sql<{}>, path: string, from: number, to: number): Promise<{ edits: Edit[]; aLength: number } | null> {
  const delta = async (x: number, y: number) => (await sql<{ from_lines: number; hunks: number[]; from_ids: string; to_ids: string }[]>`
    select from_lines, hunks, array_to_string(from_ids, ',') as from_ids, array_to_string(to_ids, ',') as to_ids
      from tarbox.file_delta(${path}, ${x}, ${y})`)[0];
  const forward = await delta(from, to);
  const row = forward ?? (from === to ? undefined : await delta(to, from));
  if (!row) return null;
  const edits = regionEdits(row.hunks, parseIds(row.from_ids), parseIds(row.to_ids));
  if (forward) return { edits, aLength: row.from_lines };
  // stored the other way round: the same edits, with the sides swapped
  const swapped = edits.map((e) => ({ aStart: e.bStart, aEnd: e.bEnd, bStart: e.aStart, bEnd: e.aEnd }));
  const bLength = row.from_lines + edits.reduce((n, e) => n + (e.bEnd - e.bStart) - (e.aEnd - e.aStart), 0);
  return { edits: swapped, aLength: bLength };
}

/** Edits from stored hunks (triples: lines before, lines replaced, lines inserted), each region diffed. */
function regionEdits(hunks: number[], replaced: Float64Array, inserted: Float64Array): Edit[] {
  const edits: Edit[] = [];
  let shift = 0;  // lines b has gained over a before this hunk
  let ra = 0;
  let rb = 0;
  for (let k = 0; k < hunks.length; k += 3) {
    const [before, aCount, bCount] = [hunks[k], hunks[k + 1], hunks[k + 2]];
    for (const e of diffIds(replaced.subarray(ra, ra + aCount), inserted.subarray(rb, rb + bCount))) {
      edits.push({ aStart: before + e.aStart, aEnd: before + e.aEnd, bStart: before + shift + e.bStart, bEnd: before + shift + e.bEnd });
    }
    ra += aCount;
    rb += bCount;
    shift += bCount - aCount;
  }
  return merge(edits);
}

/** The edits that turn the version in `from` into the one in `to`; null when either is not text. */
export async function fileEdits(sql: postgres.Sql<{}>, path: string, from: Side, to: Side): Promise<{ edits: Edit[]; aLength: number } | null> {
  if (from !== null && to !== null) {
    const stored = await storedEdits(sql, path, from, to);
    if (stored) return stored;
  }
  const { a, b } = await fetchIds(sql, path, from, to);
  if (a === null || b === null) return null;
  return { edits: diffIds(a, b), aLength: a.length };
}

async function fetchLines(sql: postgres.Sql<{}>, path: string, layer: Side, lineNos: number[]): Promise<Map<number, Buffer>> {
  const lines = new Map<number, Buffer>();
  if (layer === null || lineNos.length === 0) return lines;
  const rows = await sql<{ line_no: number; data: Buffer }[]>`
    select line_no, data from tarbox.file_lines(${path}, ${layer}, ${sql.array(lineNos)}::integer[])`;
  for (const r of rows) lines.set(r.line_no, r.data);
  return lines;
}

export interface FileDiff {
  path: string;
  from: Side;
  to: Side;
  binary: boolean;
  insertions: number;
  deletions: number;
  hunks: { from_start: number; from_lines: number; to_start: number; to_lines: number; lines: string[] }[];
}

/** The diff of the file at `path` between the views of two layers (null: absent). */
export async function diffFile(sql: postgres.Sql<{}>, path: string, from: Side, to: Side, context = 3): Promise<FileDiff> {
  const found = await fileEdits(sql, path, from, to);
  if (found === null) return { path, from, to, binary: true, insertions: 0, deletions: 0, hunks: [] };
  const { edits, aLength } = found;
  const hunks = hunksOf(edits, aLength, context);
  const need = neededLines(hunks);
  const [linesA, linesB] = await Promise.all([fetchLines(sql, path, from, need.a), fetchLines(sql, path, to, need.b)]);
  const get = (m: Map<number, Buffer>) => (n: number) => m.get(n) ?? Buffer.alloc(0);
  let insertions = 0;
  let deletions = 0;
  for (const e of edits) { insertions += e.bEnd - e.bStart; deletions += e.aEnd - e.aStart; }
  return {
    path, from, to, binary: false, insertions, deletions,
    hunks: hunks.map((h) => ({ from_start: h.from_start + (h.from_lines ? 1 : 0), from_lines: h.from_lines,
      to_start: h.to_start + (h.to_lines ? 1 : 0), to_lines: h.to_lines, lines: hunkLines(h, get(linesA), get(linesB)) })),
  };
}

/** git-style patch text of one file (nothing when it did not change). */
export function formatPatch(d: FileDiff): string[] {
  const a = d.from === null ? '/dev/null' : `a${d.path}`;
  const b = d.to === null ? '/dev/null' : `b${d.path}`;
  if (d.binary) return [`Binary files ${a} and ${b} differ`];
  if (d.hunks.length === 0) return [];
  return [`--- ${a}`, `+++ ${b}`, ...d.hunks.flatMap((h) => h.lines)];
}

/** git's --stat lines for these diffs. */
export function formatStat(diffs: FileDiff[]): string[] {
  const width = Math.max(0, ...diffs.map((d) => d.path.length));
  const most = Math.max(1, ...diffs.map((d) => d.insertions + d.deletions));
  const scale = most > 50 ? 50 / most : 1;
  const lines = diffs.map((d) => {
    if (d.binary) return ` ${d.path.padEnd(width)} | Bin`;
    const plus = Math.round(d.insertions * scale);
    const minus = Math.round(d.deletions * scale);
    return ` ${d.path.padEnd(width)} | ${String(d.insertions + d.deletions).padStart(4)} ${'+'.repeat(plus)}${'-'.repeat(minus)}`;
  });
  const ins = diffs.reduce((s, d) => s + d.insertions, 0);
  const del = diffs.reduce((s, d) => s + d.deletions, 0);
  const files = diffs.length;
  lines.push(` ${files} file${files === 1 ? '' : 's'} changed, ${ins} insertion${ins === 1 ? '' : 's'}(+), ${del} deletion${del === 1 ? '' : 's'}(-)`);
  return lines;
}
