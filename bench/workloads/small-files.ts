// Many 1 MiB files: each written with one 1 MiB write and closed, one durability barrier at the
// end; then all read back from cold caches and compared by sha256.
//
// The barrier: on the mount, fsync(2) of any file makes every earlier commit durable (tarbox.fsync
// commits synchronously, and WAL is flushed in order), so one fsync covers all files. A native
// filesystem gives no such promise (fsync covers one file), so there the barrier is syncfs(2) of
// the filesystem (`sync -f`), which is what "fsync once at the end" has to mean to be durable.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MB, MiB, VerificationError, type Workload } from '../types.js';
import { asNumber, asString, randomBytes, seconds, sha256 } from '../util.js';

const FILE_SIZE = MiB;
const name = (i: number) => `f${String(i).padStart(4, '0')}.bin`;

export const smallFiles: Workload = {
  name: 'files-1mib',
  description: 'N files of 1 MiB: write (one barrier at the end), then read cold',
  metrics: [
    { key: 'files_write', label: '1 MiB files write', unit: 'MB/s', higherIsBetter: true, goal: 150 },
    { key: 'files_read_cold', label: '1 MiB files read, cold', unit: 'MB/s', higherIsBetter: true, goal: 300 },
  ],

  async run(ctx) {
    const count = ctx.quick ? 32 : 100;
    const w = await ctx.step<{ seconds: number; hashes: string[] }>('write', { dir: ctx.dir, count, target: ctx.target });
    await ctx.cold();
    const r = await ctx.step<{ seconds: number; hashes: string[]; bytes: number }>('read', { dir: ctx.dir, count });
    const bad = w.hashes.findIndex((h, i) => r.hashes[i] !== h);
    if (bad >= 0 || r.bytes !== count * FILE_SIZE) {
      throw new VerificationError(`read back ${r.bytes} bytes; first mismatch at ${bad >= 0 ? name(bad) : '(size)'}`);
    }
    const total = count * FILE_SIZE;
    return {
      values: { files_write: total / MB / w.seconds, files_read_cold: total / MB / r.seconds },
      details: { files: count, write_seconds: w.seconds, read_seconds: r.seconds },
    };
  },

  steps: {
    write(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      const data = randomBytes(count * FILE_SIZE);
      const t0 = seconds();
      for (let i = 0; i < count; i++) {
        const fd = fs.openSync(path.join(dir, name(i)), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
        let done = 0;
        while (done < FILE_SIZE) done += fs.writeSync(fd, data, i * FILE_SIZE + done, FILE_SIZE - done, done);
        fs.closeSync(fd);
      }
      if (args.target === 'mount') {
        const fd = fs.openSync(path.join(dir, name(count - 1)), fs.constants.O_RDONLY);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      } else {
        const res = spawnSync('sync', ['-f', dir]);
        if (res.status !== 0) throw new Error(`sync -f ${dir} failed: ${res.stderr}`);
      }
      const elapsed = seconds() - t0;
      const hashes = Array.from({ length: count }, (_, i) => sha256(data.subarray(i * FILE_SIZE, (i + 1) * FILE_SIZE)));
      return { seconds: elapsed, hashes };
    },

    read(args) {
      const dir = asString(args.dir, 'dir');
      const count = asNumber(args.count, 'count');
      const data = Buffer.alloc(count * FILE_SIZE);
      // touched before the clock starts: a fresh buffer's page faults belong to neither filesystem
      data.fill(1);
      const lengths: number[] = [];
      const t0 = seconds();
      for (let i = 0; i < count; i++) {
        const fd = fs.openSync(path.join(dir, name(i)), fs.constants.O_RDONLY);
        let off = 0;
        // one extra read past the end, as a reader that does not know the size would do
        for (;;) {
          const room = FILE_SIZE - off;
          const n = room > 0 ? fs.readSync(fd, data, i * FILE_SIZE + off, room, off) : fs.readSync(fd, Buffer.alloc(1), 0, 1, off);
          if (n === 0) break;
          if (room <= 0) { off += n; break; } // longer than written: caught by the size check
          off += n;
        }
        fs.closeSync(fd);
        lengths.push(off);
      }
      const elapsed = seconds() - t0;
      const hashes = lengths.map((len, i) => (len === FILE_SIZE ? sha256(data.subarray(i * FILE_SIZE, (i + 1) * FILE_SIZE)) : `length ${len}`));
      return { seconds: elapsed, hashes, bytes: lengths.reduce((a, b) => a + b, 0) };
    },
  },
};
