#!/usr/bin/env node
// Runs every compiled benchmark (dist/**/*.bench.js). Each exports `run(context)` (see src/benchmark.ts).
// Usage: npm run bench -- [--json] [--small] [filter...]
//   --json   print only one JSON object per line (machine-readable)
//   --small  the CI size (what `npm test` runs), not the measurement size
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';

function findBenches(directory) {
  const found = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) found.push(...findBenches(path));
    else if (name.endsWith('.bench.js')) found.push(path);
  }
  return found;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const size = args.includes('--small') ? 'small' : 'real';
const filters = args.filter((argument) => !argument.startsWith('--'));
const files = findBenches('dist')
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  const tmpDir = mkdtempSync(join(tmpdir(), 'embrfs-bench-'));
  const module = await import(pathToFileURL(resolve(file)).href);
  const emit = (record) => {
    if (json) console.log(JSON.stringify(record));
    else console.log(`${file}: ${JSON.stringify(record)}`);
  };
  try {
    await module.run({ size, emit, tmpDir });
  } catch (error) {
    failed += 1;
    console.error(`bench ${file} failed:`, error);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}
process.exit(failed === 0 ? 0 : 1);
