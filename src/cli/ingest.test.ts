/**
 * `ingest` called in-process: the deferral of copies (content keys computed lazily, per size)
 * and the order in which deferred copies are committed, with and without worker threads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openEngram } from '../fs/index.js';
import type { Engram } from '../fs/api.js';
import { ingest } from './ingest.js';

/** Deterministic bytes that compress badly (so every file is distinct content). */
function bytesOf(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = Buffer.alloc(0);
  for (let offset = 0, counter = 0; offset < length; offset += block.length, counter += 1) {
    block = createHash('sha256').update(`${seed}/${counter}`).digest();
    block.copy(out, offset, 0, Math.min(block.length, length - offset));
  }
  return out;
}

/** The commit that last wrote `path`. */
async function writtenIn(engram: Engram, path: string): Promise<number> {
  const writes = (await engram.history(path)).filter((entry) => entry.kind === 'write');
  assert.ok(writes.length > 0, `no write of ${path}`);
  return writes[writes.length - 1].commit;
}

async function withBase(prefix: string, body: (base: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), prefix));
  try {
    await body(base);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

test('a copy is deferred past later files, one of the same size but other bytes is not, empty files are not', async () => {
  await withBase('embrfs-ingest-lazy-', async (base) => {
    const source = join(base, 'src');
    const content = bytesOf('x', 3000);
    await mkdir(join(source, 'a'), { recursive: true });
    await writeFile(join(source, 'a', '1-first'), content);
    // Same size, other bytes: the second file of a size hashes both, and they differ.
    await writeFile(join(source, 'a', '2-same-size'), bytesOf('y', 3000));
    await writeFile(join(source, 'a', '3-copy'), content);
    await writeFile(join(source, 'a', '4-empty'), '');
    await writeFile(join(source, 'a', '5-empty'), '');
    // 600 more files (each of its own size): this thread's batch commits at 512 ops, so the
    // files of /a commit first and a deferred copy lands in a later commit.
    await mkdir(join(source, 'b'));
    for (let index = 0; index < 600; index += 1) await writeFile(join(source, 'b', `f${index}`), bytesOf(`b${index}`, 100 + index));
    const engramFile = join(base, 'e.engram');
    const summary = await ingest({ sources: [source], engramFile, quiet: true, jobs: 1 });
    assert.equal(summary.writtenFiles, 605);
    assert.ok(summary.commits >= 2, `commits ${summary.commits}`);
    const engram = await openEngram(engramFile, { readOnly: true });
    try {
      const first = await writtenIn(engram, '/a/1-first');
      assert.equal(await writtenIn(engram, '/a/2-same-size'), first);
      assert.equal(await writtenIn(engram, '/a/4-empty'), first);
      assert.equal(await writtenIn(engram, '/a/5-empty'), first);
      // Walked before /b, written after all of it.
      const copy = await writtenIn(engram, '/a/3-copy');
      assert.ok(copy > (await writtenIn(engram, '/b/f599')), `copy in commit ${copy}`);
      assert.deepEqual(Buffer.from((await engram.readFile('/a/3-copy')).data), content);
      assert.deepEqual(Buffer.from((await engram.readFile('/a/2-same-size')).data), bytesOf('y', 3000));
      assert.equal((await engram.readFile('/a/5-empty')).data.length, 0);
    } finally {
      await engram.close();
    }
  });
});

test('with worker threads, copies of early and of last-batch files commit after their first copy and store nothing twice', async () => {
  await withBase('embrfs-ingest-pool-copies-', async (base) => {
    const source = join(base, 'src');
    // 2,600 distinct 1 KiB files: two worker batches (2,048 ops each), then the copies.
    for (let directory = 0; directory < 26; directory += 1) {
      await mkdir(join(source, `d${String(directory).padStart(2, '0')}`), { recursive: true });
      for (let file = 0; file < 100; file += 1) {
        await writeFile(join(source, `d${String(directory).padStart(2, '0')}`, `f${file}`), bytesOf(`${directory}/${file}`, 1024));
      }
    }
    await mkdir(join(source, 'z'));
    // Copies of a file of the first batch and of one of the last (maybe still encoding when the walk ends).
    await writeFile(join(source, 'z', 'copy-early'), bytesOf('0/0', 1024));
    await writeFile(join(source, 'z', 'copy-late'), bytesOf('25/99', 1024));
    const engramFile = join(base, 'e.engram');
    const summary = await ingest({ sources: [source], engramFile, quiet: true, jobs: 2 });
    assert.equal(summary.writtenFiles, 2602);
    const engram = await openEngram(engramFile, { readOnly: true });
    try {
      assert.ok((await writtenIn(engram, '/z/copy-early')) > (await writtenIn(engram, '/d00/f0')));
      assert.ok((await writtenIn(engram, '/z/copy-late')) > (await writtenIn(engram, '/d25/f99')));
      assert.deepEqual(Buffer.from((await engram.readFile('/z/copy-early')).data), bytesOf('0/0', 1024));
      assert.deepEqual(Buffer.from((await engram.readFile('/z/copy-late')).data), bytesOf('25/99', 1024));
      // Directory times are set after the copies were added to /z.
      const stats = await engram.stat('/z');
      const { statSync } = await import('node:fs');
      assert.equal(stats.mtimeNs, statSync(join(source, 'z'), { bigint: true }).mtimeNs);
    } finally {
      await engram.close();
    }
    // Each copy found its chunk committed: no pack was stored for nothing.
    const database = new Database(engramFile, { readonly: true });
    try {
      const orphans = database.prepare('SELECT count(*) AS count FROM packs WHERE pack_id NOT IN (SELECT pack_id FROM chunks)').get() as { count: number };
      assert.equal(orphans.count, 0);
    } finally {
      database.close();
    }
  });
});

test('a re-ingest replaces a directory by a file that copies another changed file', async () => {
  await withBase('embrfs-ingest-replace-copy-', async (base) => {
    const source = join(base, 'src');
    await mkdir(join(source, 'c'), { recursive: true });
    await writeFile(join(source, 'a'), 'one\n');
    await writeFile(join(source, 'c', 'inner'), 'inner\n');
    const engramFile = join(base, 'e.engram');
    await ingest({ sources: [source], engramFile, quiet: true, jobs: 1 });
    await rm(join(source, 'c'), { recursive: true });
    const content = bytesOf('changed', 5000);
    await writeFile(join(source, 'a'), content);
    // Walked after /a: a copy of it, where a directory was.
    await writeFile(join(source, 'c'), content);
    const summary = await ingest({ sources: [source], engramFile, quiet: true, jobs: 1 });
    assert.equal(summary.removedEntries, 1);
    const engram = await openEngram(engramFile, { readOnly: true });
    try {
      assert.equal((await engram.stat('/c')).type, 'file');
      assert.deepEqual(Buffer.from((await engram.readFile('/c')).data), content);
      assert.equal(await engram.exists('/c/inner'), false);
      assert.deepEqual((await engram.readdir('/')).map((entry) => entry.name).sort(), ['a', 'c']);
    } finally {
      await engram.close();
    }
  });
});
