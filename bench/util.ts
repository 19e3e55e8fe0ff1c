// Small helpers shared by workload steps (child side) and the driver.
import { createHash, randomFillSync } from 'node:crypto';

/** Seconds since an arbitrary origin, with nanosecond resolution. */
export function seconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function sha256(data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Incompressible bytes, different on every call (so content-addressed storage cannot dedupe them). */
export function randomBytes(size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  // randomFillSync takes at most 2^31-1 bytes per call
  for (let off = 0; off < size; off += 1 << 30) randomFillSync(buf, off, Math.min(1 << 30, size - off));
  return buf;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function asNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`step argument ${name}: expected a number`);
  return value;
}

export function asString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new Error(`step argument ${name}: expected a string`);
  return value;
}
