#!/usr/bin/env node
// Developer helper: rewrites the `--! Previous:` / `--! Hash:` headers of committed migrations
// numbered FROM and later, so that the chain graphile-migrate verifies holds after an unlanded
// migration was edited or renumbered. Landed migrations are never edited (fix forward), so FROM
// must be the first migration that has not landed: `node scripts/rehash-migrations.mjs 3`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { calculateHash } = require('graphile-migrate/dist/hash.js');

const from = Number(process.argv[2]);
if (!Number.isInteger(from) || from < 1) {
  console.error('usage: rehash-migrations.mjs FROM   (the number of the first unlanded migration)');
  process.exit(2);
}
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'db', 'migrations', 'committed');
const files = fs.readdirSync(dir).filter((f) => /^\d{6}(-.*)?\.sql$/.test(f)).sort();

let previous = null;
for (const file of files) {
  const full = path.join(dir, file);
  const text = fs.readFileSync(full, 'utf8');
  const lines = text.split('\n');
  let n = 0;
  const headers = [];
  while (/^--! [A-Z]/.test(lines[n])) headers.push(lines[n++]);
  const body = lines.slice(n).join('\n').trim() + '\n';
  const hash = calculateHash(body, previous);
  if (Number(file.slice(0, 6)) >= from) {
    const kept = headers.filter((h) => !/^--! (Previous|Hash):/.test(h));
    const out = [`--! Previous: ${previous ?? '-'}`, `--! Hash: ${hash}`, ...kept, '', body].join('\n');
    if (out !== text) {
      fs.writeFileSync(full, out);
      console.log(`rehashed ${file}`);
    }
  } else if (!headers.includes(`--! Hash: ${hash}`)) {
    console.error(`${file} has landed but its hash does not verify: it was edited; restore it`);
    process.exit(1);
  }
  previous = hash;
}
