// Runs every benchmark at its small size so that benchmarks never rot, and checks that each
// emits at least one well-formed record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchContext } from './benchmark.js';

function findBenches(directory: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) found.push(...findBenches(path));
    else if (name.endsWith('.bench.js')) found.push(path);
  }
  return found;
}

const here = dirname(fileURLToPath(import.meta.url));
for (const file of findBenches(here).sort()) {
  test(`benchmark ${file.slice(here.length + 1)} runs at small size and emits records`, async () => {
    const tmpDir = mkdtempSync(join(tmpdir(), 'embrfs-bench-test-'));
    const records: Record<string, unknown>[] = [];
    const context: BenchContext = { size: 'small', tmpDir, emit: (record) => records.push(record) };
    try {
      const module = (await import(pathToFileURL(file).href)) as { run: (context: BenchContext) => Promise<void> };
      await module.run(context);
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
    assert.ok(records.length > 0, 'a benchmark must emit at least one record');
    for (const record of records) {
      assert.equal(typeof record.bench, 'string', `record without a bench name: ${JSON.stringify(record)}`);
      JSON.stringify(record);
    }
  });
}
