// PostgreSQL's binary COPY format, for the two bulk paths: chunk upload and chunk read.
// postgres.js moves bytea as hex text (about 2x the bytes and CPU-bound on 2 cores);
// binary COPY moves raw bytes (see ../shared/MEASURED.md and docs/architecture.md).

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Header of a binary COPY stream: signature, flags, header extension length. */
export function copyHeader(): Buffer {
  const header = Buffer.alloc(SIGNATURE.length + 8);
  SIGNATURE.copy(header, 0);
  return header; // flags = 0, extension length = 0
}

/** Trailer: a field count of -1. */
export function copyTrailer(): Buffer {
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  return trailer;
}

/** One tuple of bytea fields, as a list of buffers to write without copying the data. */
export function copyTuple(fields: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const count = Buffer.alloc(2);
  count.writeInt16BE(fields.length, 0);
  out.push(count);
  for (const field of fields) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(field.length, 0);
    out.push(length, field);
  }
  return out;
}

/**
 * Incremental parser for a binary COPY stream whose tuples are all bytea (or null)
 * fields. Feed it chunks as they arrive; it calls onTuple for every complete tuple.
 */
export class CopyBinaryParser {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private headerDone = false;
  done = false;

  constructor(private readonly onTuple: (fields: (Buffer | null)[]) => void) {}

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    this.drain();
  }

  private drain(): void {
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    let pos = 0;
    if (!this.headerDone) {
      if (buf.length < SIGNATURE.length + 8) return this.keep(buf, 0);
      const extension = buf.readUInt32BE(SIGNATURE.length + 4);
      if (buf.length < SIGNATURE.length + 8 + extension) return this.keep(buf, 0);
      pos = SIGNATURE.length + 8 + extension;
      this.headerDone = true;
    }
    for (;;) {
      if (buf.length - pos < 2) break;
      const count = buf.readInt16BE(pos);
      if (count === -1) { this.done = true; pos += 2; break; }
      // make sure the whole tuple is here before consuming it
      let end = pos + 2;
      let complete = true;
      for (let i = 0; i < count; i++) {
        if (buf.length - end < 4) { complete = false; break; }
        const length = buf.readInt32BE(end);
        end += 4 + Math.max(length, 0);
        if (end > buf.length) { complete = false; break; }
      }
      if (!complete) break;
      const fields: (Buffer | null)[] = [];
      let at = pos + 2;
      for (let i = 0; i < count; i++) {
        const length = buf.readInt32BE(at);
        at += 4;
        if (length < 0) { fields.push(null); continue; }
        fields.push(buf.subarray(at, at + length));
        at += length;
      }
      this.onTuple(fields);
      pos = end;
    }
    this.keep(buf, pos);
  }

  private keep(buf: Buffer, pos: number): void {
    const rest = buf.subarray(pos);
    this.pending = rest.length ? [rest] : [];
    this.pendingLength = rest.length;
  }
}
