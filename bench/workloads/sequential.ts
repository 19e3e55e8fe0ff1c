// One large file: sequential write in 1 MiB blocks with fsync before close (durability is part
// of the number), then a sequential read of it from cold caches (mount process restarted, page
// cache dropped). Read-back is compared with what was written by sha256.
import fs from 'node:fs';
import path from 'node:path';
import { MB, MiB, VerificationError, type Workload } from '../types.js';
import { asNumber, asString, randomBytes, seconds, sha256 } from '../util.js';

const BLOCK = MiB;

export const sequential: Workload = {
  name: 'sequential',
  description: 'one file written in 1 MiB blocks + fsync, then read cold',
  metrics: [
    { key: 'seq_write', label: 'sequential write (+fsync)', unit: 'MB/s', higherIsBetter: true, goal: 250 },
    { key: 'seq_read_cold', label: 'sequential read, cold', unit: 'MB/s', higherIsBetter: true, goal: 400 },
  ],

  async run(ctx) {
    const size = (ctx.quick ? 32 : 256) * MiB;
    const file = path.join(ctx.dir, 'big.bin');
    const w = await ctx.step<{ seconds: number; sha256: string }>('write', { file, size });
    await ctx.cold();
    const r = await ctx.step<{ seconds: number; sha256: string; bytes: number }>('read', { file });
    if (r.bytes !== size || r.sha256 !== w.sha256) {
      throw new VerificationError(`read back ${r.bytes} bytes with sha256 ${r.sha256}; wrote ${size} with ${w.sha256}`);
    }
    return {
      values: { seq_write: size / MB / w.seconds, seq_read_cold: size / MB / r.seconds },
      details: { bytes: size, write_seconds: w.seconds, read_seconds: r.seconds },
    };
  },

  steps: {
    write(args) {
      const file = asString(args.file, 'file');
      const size = asNumber(args.size, 'size');
      const data = randomBytes(size); // generated before the clock starts
      const t0 = seconds();
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      for (let off = 0; off < size; off += BLOCK) {
        const n = Math.min(BLOCK, size - off);
        let done = 0;
        while (done < n) done += fs.writeSync(fd, data, off + done, n - done, off + done);
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const elapsed = seconds() - t0;
      return { seconds: elapsed, sha256: sha256(data) };
    },

    read(args) {
      const file = asString(args.file, 'file');
      const size = fs.statSync(file).size;
      const data = Buffer.alloc(size + BLOCK);
      // touched before the clock starts: a fresh buffer's page faults belong to neither filesystem
      data.fill(1);
      const t0 = seconds();
      const fd = fs.openSync(file, fs.constants.O_RDONLY);
      let off = 0;
      for (;;) {
        const n = fs.readSync(fd, data, off, BLOCK, off);
        if (n === 0) break;
        off += n;
      }
      fs.closeSync(fd);
      const elapsed = seconds() - t0;
      return { seconds: elapsed, bytes: off, sha256: sha256(data.subarray(0, off)) };
    },
  },
};
