// Random writes, truncates and reads against one file on the mount and against an
// in-memory model, compared byte for byte after every read, at the end, and after a
// remount. 4 KiB blocks, so operations cross block boundaries all the time.
// The seed is random per run (TARBOX_RANDOM_SEED=<n> replays one) and is printed with
// every failure together with the last operations.
import test from 'ava';
import * as fs from 'node:fs';
import { allowTime, finish, mountFresh, type Mount, type MountServer } from '../helpers/mount.js';

const BS = 4096;
const MAX_SIZE = 24 * BS;
let m: Mount;

test.before(async () => {
  m = await mountFresh({ blockSize: BS });
});

test.after.always((t) => finish(t, m));

/** mulberry32: small, fast, good enough to pick offsets. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Model {
  data = Buffer.alloc(0);
  write(off: number, buf: Buffer): void {
    if (off + buf.length > this.data.length) {
      const grown = Buffer.alloc(off + buf.length);
      this.data.copy(grown);
      this.data = grown;
    }
    buf.copy(this.data, off);
  }
  truncate(size: number): void {
    const next = Buffer.alloc(size);
    this.data.copy(next, 0, 0, Math.min(size, this.data.length));
    this.data = next;
  }
}

function diff(actual: Buffer, expected: Buffer): string {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      return `first difference at byte ${i} (block ${Math.floor(i / BS)}, +${i % BS}): got ${actual[i]}, want ${expected[i]}; lengths ${actual.length} vs ${expected.length}`;
    }
  }
  return `lengths ${actual.length} vs ${expected.length}`;
}

function runRandom(t: import('ava').ExecutionContext, name: string, seed: number, ops: number): Model {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const model = new Model();
  const file = m.path(name);
  const history: string[] = [];
  const context = () => `seed ${seed} (TARBOX_RANDOM_SEED=${seed} to replay); last operations:\n  ${history.slice(-15).join('\n  ')}`;
  let fd = fs.openSync(file, 'w+');
  let fill = 1;
  /** An offset that is often near a block boundary. */
  const offset = (limit: number) => {
    const r = rand();
    if (r < 0.3) return Math.max(0, Math.min(limit, int(Math.ceil(limit / BS) + 1) * BS + int(7) - 3));
    return int(limit + 1);
  };
  /** A length: mostly small, sometimes up to 3 blocks. */
  const length = () => {
    const r = rand();
    if (r < 0.4) return 1 + int(64);
    if (r < 0.8) return 1 + int(BS + 10);
    return 1 + int(3 * BS);
  };
  let failed = false;
  try {
    for (let i = 0; i < ops && !failed; i++) {
      const r = rand();
      if (r < 0.45) {
        const off = offset(Math.min(model.data.length + BS, MAX_SIZE - 3 * BS));
        const len = length();
        const buf = Buffer.alloc(len);
        for (let j = 0; j < len; j++) buf[j] = (fill + j * 13) & 0xff || 1;
        fill = (fill + 1) & 0xff;
        history.push(`#${i} pwrite(${off}, ${len})`);
        const n = fs.writeSync(fd, buf, 0, len, off);
        model.write(off, buf);
        if (n !== len) { failed = true; t.fail(`short write ${n} of ${len}; ${context()}`); }
      } else if (r < 0.55) {
        const size = offset(Math.min(model.data.length + 2 * BS, MAX_SIZE));
        history.push(`#${i} ftruncate(${size})`);
        fs.ftruncateSync(fd, size);
        model.truncate(size);
      } else if (r < 0.93) {
        const off = offset(model.data.length + 10);
        const len = length();
        history.push(`#${i} pread(${off}, ${len})`);
        const buf = Buffer.alloc(len, 0xee);
        const n = fs.readSync(fd, buf, 0, len, off);
        const want = model.data.subarray(Math.min(off, model.data.length), Math.min(off + len, model.data.length));
        if (n !== want.length || !buf.subarray(0, n).equals(want)) {
          failed = true;
          t.fail(`pread(${off}, ${len}) returned ${n} bytes, want ${want.length}: ${diff(buf.subarray(0, n), want)}; ${context()}`);
        }
      } else if (r < 0.97) {
        history.push(`#${i} fstat`);
        const size = fs.fstatSync(fd).size;
        if (size !== model.data.length) { failed = true; t.fail(`fstat size ${size}, want ${model.data.length}; ${context()}`); }
      } else if (r < 0.99) {
        history.push(`#${i} close + reopen`);
        fs.closeSync(fd);
        fd = fs.openSync(file, 'r+');
      } else {
        history.push(`#${i} fsync`);
        fs.fsyncSync(fd);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (!failed) {
    const whole = fs.readFileSync(file);
    t.true(whole.equals(model.data), `whole file after close: ${diff(whole, model.data)}; ${context()}`);
  }
  return model;
}

function seedFor(index: number): number {
  const fixed = process.env.TARBOX_RANDOM_SEED;
  return fixed ? Number(fixed) + index : (Math.random() * 2 ** 32) >>> 0;
}

const files: { name: string; model: Model; seed: number }[] = [];

for (const [index, ops] of [[0, 1500], [1, 1500]] as const) {
  test.serial(`random pwrite/ftruncate/pread against a model (run ${index + 1}, ${ops} ops)`, async (t) => {
    await allowTime(t, 120_000);
    const seed = seedFor(index);
    t.log(`seed ${seed}`);
    const name = `random-${index}`;
    files.push({ name, model: runRandom(t, name, seed, ops), seed });
  });
}

test.serial('after a remount, and from a second mount process, the files equal their models', async (t) => {
  await allowTime(t, 60_000);
  t.true(files.length > 0);
  await m.remount();
  for (const { name, model, seed } of files) {
    const back = fs.readFileSync(m.path(name));
    t.true(back.equals(model.data), `${name} after remount (seed ${seed}): ${diff(back, model.data)}`);
  }
  let other: MountServer | undefined;
  try {
    other = await m.mountAgain();
    for (const { name, model, seed } of files) {
      const back = fs.readFileSync(`${other.mountpoint}/${name}`);
      t.true(back.equals(model.data), `${name} from a second mount (seed ${seed}): ${diff(back, model.data)}`);
    }
  } finally {
    await other?.stop();
  }
});
