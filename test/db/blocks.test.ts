import crypto from 'node:crypto';
import test from 'ava';
import { ctime, mtime, perms, prng, tick, useDatabase, type Attr, type Fs } from './_support.js';

const env = useDatabase(test);
const BS = 4096;

const sha = (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();
const fill = (n: number, byte: number): Buffer => Buffer.alloc(n, byte);

/**
 * The shim's write path: in one transaction, ask which chunks are missing, store those
 * (the shim COPYs them into tarbox_private.chunks; an INSERT does the same here), then
 * commit the block map.
 */
function uploader(fs: Fs) {
  return {
    async missing(hashes: Buffer[]): Promise<Buffer[]> {
      return (await fs.sql<{ h: Buffer }[]>`select h from tarbox.missing_chunks(${fs.sql.array(hashes, 17)}) h`).map((r) => r.h);
    },
    /** Upload the chunks of blocks (null: a hole) and commit them, all in one transaction. */
    async flush(ino: number, blocks: [number, Buffer | null][], end: number, uid = 0): Promise<Attr> {
      return (await fs.sql.begin(async (tx) => {
        const hashes = blocks.map(([, data]) => (data ? sha(data) : null));
        const wanted = hashes.filter((h): h is Buffer => h !== null);
        const missing = new Set(
          (await tx<{ h: Buffer }[]>`select h from tarbox.missing_chunks(${tx.array(wanted, 17)}) h`).map((r) => r.h.toString('hex')),
        );
        for (const [, data] of blocks) {
          if (data && missing.delete(sha(data).toString('hex'))) {
            await tx`insert into tarbox_private.chunks (tenant_id, hash, data) values (${fs.tenantId}, ${sha(data)}, ${data})`;
          }
        }
        const [a] = await tx<Attr[]>`
          select * from tarbox.commit_blocks(${ino}, ${tx.array(blocks.map(([n]) => n), 20)}, ${tx.array(hashes, 17)}, ${end}, ${uid})`;
        return a;
      })) as Attr;
    },
    /** commit_blocks alone, for chunks the tenant is supposed to have already. */
    async commit(ino: number, blockNos: number[], hashes: (Buffer | null)[], end: number, uid = 0): Promise<Attr> {
      const [a] = await fs.sql<Attr[]>`
        select * from tarbox.commit_blocks(${ino}, ${fs.sql.array(blockNos, 20)}, ${fs.sql.array(hashes, 17)}, ${end}, ${uid})`;
      return a;
    },
  };
}

async function fileBlocks(fs: Fs, ino: number, first = 0, count = 1000) {
  const rows = await fs.sql<{ block_no: number; chunk_hash: Buffer }[]>`
    select * from tarbox.file_blocks(${ino}, ${first}, ${count})`;
  return rows.map((r) => ({ block_no: Number(r.block_no), chunk_hash: r.chunk_hash }));
}

/** Chunks that no block of the tenant refers to any more (should always be none). */
async function orphanChunks(tenantId: number): Promise<number> {
  const [{ n }] = await env.admin<{ n: number }[]>`
    select count(*)::int as n from tarbox_private.chunks c
     where c.tenant_id = ${tenantId}
       and not exists (select 1 from tarbox_private.file_blocks b where b.tenant_id = c.tenant_id and b.chunk_hash = c.hash)`;
  return n;
}

test('missing_chunks returns exactly the hashes the tenant does not store', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.file('/f', fill(100, 1));
  const up = uploader(fs);
  const known = sha(fill(100, 1));
  const unknown1 = sha(fill(100, 2));
  const unknown2 = sha(fill(100, 3));
  const missing = await up.missing([known, unknown1, unknown2]);
  t.deepEqual(missing.map((h) => h.toString('hex')).sort(), [unknown1, unknown2].map((h) => h.toString('hex')).sort());
  t.deepEqual(await up.missing([known]), []);
  t.deepEqual(await up.missing([]), []);
});

test('chunks uploaded and committed in one transaction: blocks mapped, size grown, read sees the data', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.create('/f');
  const up = uploader(fs);
  const b0 = fill(BS, 0x61);
  const b1 = Buffer.from(crypto.randomBytes(BS));
  t.is((await up.missing([sha(b0), sha(b1)])).length, 2);
  await tick();
  const a = await up.flush(f.ino, [[0, b0], [1, b1]], 2 * BS);
  t.is(a.size, 2 * BS);
  t.true(mtime(a) > mtime(f));
  t.true(ctime(a) > ctime(f));
  t.deepEqual(await up.missing([sha(b0), sha(b1)]), []);
  t.deepEqual(await fs.read('/f'), Buffer.concat([b0, b1]));
  t.deepEqual(await fileBlocks(fs, f.ino), [
    { block_no: 0, chunk_hash: sha(b0) },
    { block_no: 1, chunk_hash: sha(b1) },
  ]);
  t.deepEqual(await fileBlocks(fs, f.ino, 1, 1), [{ block_no: 1, chunk_hash: sha(b1) }]);
  const chunks = await fs.sql<{ hash: Buffer; data: Buffer }[]>`
    select * from tarbox.read_chunks(${fs.sql.array([sha(b1), sha(fill(1, 9))], 17)})`;
  t.is(chunks.length, 1);
  t.deepEqual(chunks[0].hash, sha(b1));
  t.deepEqual(chunks[0].data, b1);
  t.is(await env.chunkCount(fs.tenantId), 2);
});

test('a chunk shorter than its block reads as zeros to the end of the block; p_end sets the size', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.create('/f');
  const up = uploader(fs);
  const short = Buffer.from('short chunk');
  await up.flush(f.ino, [[2, short]], 2 * BS + 3000);
  const got = await fs.read('/f');
  t.is(got.length, 2 * BS + 3000);
  t.true(got.subarray(0, 2 * BS).equals(Buffer.alloc(2 * BS)));
  t.deepEqual(got.subarray(2 * BS, 2 * BS + short.length), short);
  t.true(got.subarray(2 * BS + short.length).equals(Buffer.alloc(3000 - short.length)));
  t.deepEqual((await fileBlocks(fs, f.ino)).map((b) => b.block_no), [2]);
});

test('commit_blocks never shrinks the file', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.file('/f', fill(3 * BS, 7));
  const up = uploader(fs);
  const c = fill(BS, 8);
  const a = await up.flush(f.ino, [[0, c]], BS);
  t.is(a.size, 3 * BS);
  t.deepEqual(await fs.read('/f'), Buffer.concat([c, fill(2 * BS, 7)]));
});

test('commit_blocks can refer to a chunk the tenant already has without uploading it', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const data = fill(BS, 0x33);
  await fs.file('/a', data);
  const b = await fs.create('/b');
  const up = uploader(fs);
  t.deepEqual(await up.missing([sha(data)]), []);
  await up.commit(b.ino, [0], [sha(data)], BS);
  t.deepEqual(await fs.read('/b'), data);
  t.is(await env.chunkCount(fs.tenantId), 1);
});

test('commit_blocks of a hash the tenant does not store fails and changes nothing', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.file('/f', 'abc');
  const up = uploader(fs);
  const err = await t.throwsAsync(up.commit(f.ino, [0], [sha(Buffer.from('nowhere'))], BS));
  t.truthy(err);
  t.deepEqual(await fs.read('/f'), Buffer.from('abc'));
});

test('commit_blocks errors: EISDIR on a directory, ENOENT on an unknown inode, EFBIG past max_file_size', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const d = await fs.mkdir('/d');
  const f = await fs.create('/f');
  const up = uploader(fs);
  await t.throwsAsync(up.commit(d.ino, [], [], 0), { code: 'TBISD' });
  await t.throwsAsync(up.commit(987654321, [], [], 0), { code: 'TBNOE' });
  await env.admin`update tarbox_private.tenants set max_file_size = ${2 * BS} where tenant_id = ${fs.tenantId}`;
  const c = fill(BS, 1);
  await t.throwsAsync(up.flush(f.ino, [[2, c]], 2 * BS + 1), { code: 'TBFBG' });
  t.is((await fs.attr('/f')).size, 0);
  // the chunk uploaded in the failed transaction is rolled back with it
  t.is(await env.chunkCount(fs.tenantId), 0);
});

test('commit_blocks by a non-root uid clears setuid', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.create('/f', 0o4755, 1000, 1000);
  const up = uploader(fs);
  t.is(perms(await up.flush(f.ino, [[0, fill(10, 1)]], 10, 1000)), 0o755);
  await fs.chmod('/f', 0o4755);
  t.is(perms(await up.flush(f.ino, [[0, fill(10, 2)]], 10, 0)), 0o4755);
});

test('identical blocks are stored once, within a file and across files', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const block = fill(BS, 0x5a);
  await fs.file('/a', Buffer.concat([block, block, block]));
  t.is(await env.chunkCount(fs.tenantId), 1);
  await fs.file('/b', block);
  t.is(await env.chunkCount(fs.tenantId), 1);
  const ia = (await fs.attr('/a')).ino;
  t.deepEqual((await fileBlocks(fs, ia)).map((b) => b.chunk_hash), [sha(block), sha(block), sha(block)]);
});

test('a chunk shared by two files stays while one refers to it and goes when none does', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const shared = fill(BS, 0x11);
  const own = fill(BS, 0x22);
  await fs.file('/a', Buffer.concat([shared, own]));
  await fs.file('/b', shared);
  t.is(await env.chunkCount(fs.tenantId), 2);
  await fs.unlink('/a');
  t.is(await env.chunkCount(fs.tenantId), 1, 'the chunk only /a used is released');
  t.deepEqual(await fs.read('/b'), shared);
  await fs.unlink('/b');
  t.is(await env.chunkCount(fs.tenantId), 0);
});

test('overwriting a block releases its old chunk unless another file still uses it', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const v1 = fill(BS, 1);
  const v2 = fill(BS, 2);
  const v3 = fill(BS, 3);
  await fs.file('/f', v1);
  await fs.write('/f', 0, v2);
  t.is(await env.chunkCount(fs.tenantId), 1);
  await fs.file('/keeper', v2);
  await fs.write('/f', 0, v3);
  t.is(await env.chunkCount(fs.tenantId), 2, 'v2 is still used by /keeper');
  t.deepEqual(await fs.read('/keeper'), v2);
  // through commit_blocks too
  const up = uploader(fs);
  const v4 = fill(BS, 4);
  await up.flush((await fs.attr('/f')).ino, [[0, v4]], BS);
  t.is(await env.chunkCount(fs.tenantId), 2, 'v3 released, v4 stored');
  t.is(await orphanChunks(fs.tenantId), 0);
});

test('overwriting a block with zeros turns it into a hole and releases its chunk', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.file('/f', Buffer.concat([fill(BS, 1), fill(BS, 2)]));
  t.is(await env.chunkCount(fs.tenantId), 2);
  await fs.write('/f', 0, Buffer.alloc(BS));
  t.deepEqual(await fs.read('/f'), Buffer.concat([Buffer.alloc(BS), fill(BS, 2)]));
  t.deepEqual((await fileBlocks(fs, (await fs.attr('/f')).ino)).map((b) => b.block_no), [1]);
  t.is(await orphanChunks(fs.tenantId), 0, 'the chunk of the zeroed block is unreferenced but still stored');
  t.is(await env.chunkCount(fs.tenantId), 1);
});

test('commit_blocks with a null hash punches a hole and releases the old chunk', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const f = await fs.file('/f', Buffer.concat([fill(BS, 1), fill(BS, 2)]));
  const up = uploader(fs);
  await up.flush(f.ino, [[1, null]], 2 * BS);
  t.deepEqual(await fs.read('/f'), Buffer.concat([fill(BS, 1), Buffer.alloc(BS)]));
  t.deepEqual((await fileBlocks(fs, f.ino)).map((b) => b.block_no), [0]);
  t.is(await orphanChunks(fs.tenantId), 0, 'the chunk of the punched block is unreferenced but still stored');
});

test('truncate releases the chunks of dropped blocks and re-stores a cut block', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  await fs.file('/f', Buffer.concat([fill(BS, 1), fill(BS, 2), fill(BS, 3)]));
  t.is(await env.chunkCount(fs.tenantId), 3);
  await fs.truncate('/f', BS + 10);
  // block 0 unchanged, block 1 cut to 10 bytes (a new chunk), block 2 gone
  t.is(await env.chunkCount(fs.tenantId), 2);
  t.is(await orphanChunks(fs.tenantId), 0);
  t.deepEqual(await fs.read('/f'), Buffer.concat([fill(BS, 1), fill(10, 2)]));
  await fs.truncate('/f', 0);
  t.is(await env.chunkCount(fs.tenantId), 0);
});

test('truncate that leaves only zeros in the cut block releases its chunk', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const block = Buffer.concat([Buffer.alloc(100), fill(BS - 100, 9)]);
  await fs.file('/f', block);
  await fs.truncate('/f', 50);
  t.deepEqual(await fs.read('/f'), Buffer.alloc(50));
  t.is(await orphanChunks(fs.tenantId), 0, 'the old chunk of the cut block is unreferenced but still stored');
});

test('a mixed workload of writes, zero writes, truncates, rename and unlink leaves no unreferenced chunk', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const rand = prng(7);
  const files = ['/a', '/b', '/c'];
  for (const f of files) await fs.create(f);
  for (let i = 0; i < 60; i++) {
    const f = files[Math.floor(rand() * files.length)];
    const off = Math.floor(rand() * 4 * BS);
    const len = 1 + Math.floor(rand() * 2 * BS);
    const zero = rand() < 0.3;
    const data = zero ? Buffer.alloc(len) : fill(len, 1 + Math.floor(rand() * 4));
    if (rand() < 0.8) await fs.write(f, off, data);
    else await fs.truncate(f, Math.floor(rand() * 5 * BS));
  }
  await fs.rename('/a', '/b');
  t.is(await orphanChunks(fs.tenantId), 0);
  await fs.unlink('/b');
  await fs.unlink('/c');
  t.is(await env.chunkCount(fs.tenantId), 0);
});

test('file_blocks and read_chunks are confined to the tenant; file_blocks of an unknown inode is ENOENT', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const other = await env.tenant(t, { blockSize: BS });
  const data = fill(BS, 0x77);
  const f = await fs.file('/f', data);
  await t.throwsAsync(other.sql`select * from tarbox.file_blocks(${f.ino}, 0, 10)`, { code: 'TBNOE' });
  const rows = await other.sql`select * from tarbox.read_chunks(${other.sql.array([sha(data)], 17)})`;
  t.is(rows.length, 0);
  const up = uploader(other);
  t.deepEqual(await up.missing([sha(data)]), [sha(data)]);
});

// commit_blocks_inline: the mount's path for small commits, one statement with the bytes.
async function commitInline(fs: Fs, ino: number, blocks: [number, Buffer | null][], end: number, uid = 0): Promise<Attr> {
  const [a] = await fs.sql<Attr[]>`
    select * from tarbox.commit_blocks_inline(${ino}, ${fs.sql.array(blocks.map(([n]) => n), 20)},
      ${fs.sql.array(blocks.map(([, data]) => data?.length ?? null) as number[], 23)},
      ${Buffer.concat(blocks.flatMap(([, data]) => (data ? [data] : [])))}, ${end}, ${uid})`;
  return a;
}

test('commit_blocks_inline stores new chunks under their sha256, once, and maps the blocks like commit_blocks', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const known = fill(BS, 0x41);
  await fs.file('/known', known);
  const f = await fs.create('/f', 0o4755, 1000, 1000);
  const fresh = Buffer.from(crypto.randomBytes(BS));
  const tail = Buffer.from('tail');
  await tick();
  // block 1 is a hole, blocks 0 and 3 hold the same bytes, block 2 reuses a chunk of /known
  const a = await commitInline(fs, f.ino, [[0, fresh], [1, null], [2, known], [3, fresh], [4, tail]], 4 * BS + 100, 1000);
  t.is(a.size, 4 * BS + 100);
  t.true(mtime(a) > mtime(f));
  t.is(perms(a), 0o755, 'a non-root writer clears setuid, as with commit_blocks');
  t.deepEqual(await fileBlocks(fs, f.ino), [
    { block_no: 0, chunk_hash: sha(fresh) },
    { block_no: 2, chunk_hash: sha(known) },
    { block_no: 3, chunk_hash: sha(fresh) },
    { block_no: 4, chunk_hash: sha(tail) },
  ]);
  t.deepEqual(await fs.read('/f'), Buffer.concat([fresh, Buffer.alloc(BS), known, fresh, tail, Buffer.alloc(96)]));
  t.is(await env.chunkCount(fs.tenantId), 3, 'known, fresh and tail: each stored once');
  // the same bytes again store nothing new
  await commitInline(fs, (await fs.create('/g')).ino, [[0, fresh]], BS);
  t.is(await env.chunkCount(fs.tenantId), 3);
  t.is(await orphanChunks(fs.tenantId), 0);
});

test('commit_blocks_inline errors: TBINV for mismatched arrays, bad lengths or an oversized block, and the errors of commit_blocks; nothing stored', async (t) => {
  const fs = await env.tenant(t, { blockSize: BS });
  const d = await fs.mkdir('/d');
  const f = await fs.file('/f', 'abc');
  const chunksBefore = await env.chunkCount(fs.tenantId);
  const one = fill(10, 1);
  const raw = (blockNos: number[], lengths: (number | null)[], data: Buffer) =>
    fs.sql`select tarbox.commit_blocks_inline(${f.ino}, ${fs.sql.array(blockNos, 20)}, ${fs.sql.array(lengths as number[], 23)}, ${data}, 10)`;
  await t.throwsAsync(raw([0, 1], [10], one), { code: 'TBINV' }, 'two blocks, one length');
  await t.throwsAsync(raw([0], [9], one), { code: 'TBINV' }, 'the lengths do not add up to the data');
  await t.throwsAsync(raw([0, 1], [10, 5], one), { code: 'TBINV' }, 'more lengths than data');
  await t.throwsAsync(raw([0, 1], [-1, 11], one), { code: 'TBINV' }, 'a negative length');
  await t.throwsAsync(commitInline(fs, f.ino, [[0, fill(BS + 1, 2)]], BS + 1), { code: 'TBINV' });
  await t.throwsAsync(commitInline(fs, d.ino, [[0, one]], 10), { code: 'TBISD' });
  await t.throwsAsync(commitInline(fs, 987654321, [[0, one]], 10), { code: 'TBNOE' });
  await env.admin`update tarbox_private.tenants set max_file_size = ${2 * BS} where tenant_id = ${fs.tenantId}`;
  await t.throwsAsync(commitInline(fs, f.ino, [[2, one]], 2 * BS + 10), { code: 'TBFBG' });
  t.deepEqual(await fs.read('/f'), Buffer.from('abc'));
  t.is(await env.chunkCount(fs.tenantId), chunksBefore, 'the chunks of failed calls are rolled back with them');
});
