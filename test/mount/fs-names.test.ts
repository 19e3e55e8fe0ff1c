// File names are bytes: not-UTF-8 names, every byte value, 255-byte limits.
import test from 'ava';
import * as fs from 'node:fs';
import { allowTime, errorCode, finish, mountFresh, type Mount } from '../helpers/mount.js';

let m: Mount;

test.before(async () => {
  m = await mountFresh();
});

test.after.always((t) => finish(t, m));

const P = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat([Buffer.from(m.mountpoint), ...parts.flatMap((p) => [Buffer.from('/'), Buffer.isBuffer(p) ? p : Buffer.from(p)])]);

function hasName(dir: Buffer, name: Buffer): boolean {
  return fs.readdirSync(dir, { encoding: 'buffer' }).some((n) => n.equals(name));
}

test.serial('names with bytes 0x80-0xff that are not UTF-8: create, list, stat, rename, unlink', (t) => {
  fs.mkdirSync(P('raw'));
  const name = Buffer.from([0x66, 0x80, 0xff, 0xc3, 0x28, 0xfe]);
  const file = P('raw', name);
  fs.writeFileSync(file, 'latin');
  t.true(hasName(P('raw'), name), 'readdir gives the exact bytes');
  t.is(fs.readFileSync(file, 'utf8'), 'latin');
  t.true(fs.statSync(file).isFile());
  const renamed = Buffer.from([0xe9, 0x74, 0xe9]);
  fs.renameSync(file, P('raw', renamed));
  t.false(hasName(P('raw'), name));
  t.true(hasName(P('raw'), renamed));
  const dirName = Buffer.from([0x64, 0xa0, 0xa1]);
  fs.mkdirSync(P('raw', dirName));
  fs.writeFileSync(P('raw', dirName, Buffer.from([0xff])), 'nested');
  t.is(fs.readFileSync(P('raw', dirName, Buffer.from([0xff])), 'utf8'), 'nested');
  fs.symlinkSync(Buffer.from([0xff]), P('raw', Buffer.from([0x6c, 0x99])));
  t.deepEqual(fs.readlinkSync(P('raw', Buffer.from([0x6c, 0x99])), { encoding: 'buffer' }), Buffer.from([0xff]));
  fs.unlinkSync(P('raw', renamed));
  t.false(hasName(P('raw'), renamed));
});

test.serial('every byte value 0x01-0xff except / appears in names and lists back exactly', async (t) => {
  await allowTime(t, 90_000);
  fs.mkdirSync(P('every'));
  const names: Buffer[] = [];
  for (let b = 1; b < 256; b++) {
    if (b === 0x2f || b === 0x2e) continue; // '/' cannot be in a name; '.' alone is special
    names.push(Buffer.from([0x5f, b]));
  }
  names.push(Buffer.from('.hidden'), Buffer.from('..x'), Buffer.from('a.b'));
  for (const n of names) fs.writeFileSync(P('every', n), n);
  const listed = fs.readdirSync(P('every'), { encoding: 'buffer' });
  t.is(listed.length, names.length);
  const key = (b: Buffer) => b.toString('hex');
  t.deepEqual(listed.map(key).sort(), names.map(key).sort());
  for (const n of names) t.true(fs.readFileSync(P('every', n)).equals(n), key(n));
});

test.serial('names differing only in case or Unicode normalisation are different files', (t) => {
  fs.mkdirSync(P('norm'));
  const nfc = 'caf\u00e9';
  const nfd = 'cafe\u0301';
  fs.writeFileSync(P('norm', nfc), 'nfc');
  fs.writeFileSync(P('norm', nfd), 'nfd');
  fs.writeFileSync(P('norm', 'Case'), 'upper');
  fs.writeFileSync(P('norm', 'case'), 'lower');
  t.is(fs.readdirSync(P('norm')).length, 4);
  t.is(fs.readFileSync(P('norm', nfc), 'utf8'), 'nfc');
  t.is(fs.readFileSync(P('norm', nfd), 'utf8'), 'nfd');
  t.is(fs.readFileSync(P('norm', 'Case'), 'utf8'), 'upper');
  t.is(fs.readFileSync(P('norm', 'case'), 'utf8'), 'lower');
});

test.serial('names with spaces, newlines, quotes and a leading dash work from the shell', async (t) => {
  fs.mkdirSync(P('shell'));
  const odd = ['with space', 'new\nline', "quo'te", '-dash', 'tab\there', '*star?'];
  for (const n of odd) fs.writeFileSync(P('shell', n), n);
  const count = await m.check("find shell -type f -printf x | wc -c");
  t.is(count.trim(), String(odd.length));
  await m.check("cd shell && mv -- '-dash' 'dash-moved' && rm -- 'with space'");
  t.deepEqual(fs.readdirSync(P('shell')).sort(), ['*star?', 'dash-moved', 'new\nline', "quo'te", 'tab\there']);
});

test.serial('a 255-byte name works (ASCII and multi-byte UTF-8)', (t) => {
  fs.mkdirSync(P('long'));
  const ascii = 'a'.repeat(255);
  fs.writeFileSync(P('long', ascii), 'ascii');
  t.is(fs.readFileSync(P('long', ascii), 'utf8'), 'ascii');
  const utf8 = Buffer.from('\u00e9'.repeat(127) + 'x'); // 255 bytes
  t.is(utf8.length, 255);
  fs.mkdirSync(P('long', utf8));
  fs.writeFileSync(P('long', utf8, ascii), 'deep');
  t.is(fs.readFileSync(P('long', utf8, ascii), 'utf8'), 'deep');
  const listed = fs.readdirSync(P('long'), { encoding: 'buffer' });
  t.true(listed.some((n) => n.equals(Buffer.from(ascii))));
  t.true(listed.some((n) => n.equals(utf8)));
  fs.symlinkSync(ascii, P('long', 'to-long'));
  t.is(fs.readFileSync(P('long', 'to-long'), 'utf8'), 'ascii');
});

test.serial('a 256-byte name is ENAMETOOLONG for every operation that makes a name', (t) => {
  fs.mkdirSync(P('toolong'));
  const name = 'b'.repeat(256);
  const utf8 = Buffer.from('\u00e9'.repeat(128)); // 256 bytes
  fs.writeFileSync(P('toolong', 'src'), '');
  t.is(errorCode(() => fs.writeFileSync(P('toolong', name), '')), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.writeFileSync(P('toolong', utf8), '')), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.mkdirSync(P('toolong', name))), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.symlinkSync('src', P('toolong', name))), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.linkSync(P('toolong', 'src'), P('toolong', name))), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.renameSync(P('toolong', 'src'), P('toolong', name))), 'ENAMETOOLONG');
  t.is(errorCode(() => fs.statSync(P('toolong', name))), 'ENAMETOOLONG');
  t.deepEqual(fs.readdirSync(P('toolong')), ['src'], 'nothing was created');
});
