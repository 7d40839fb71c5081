import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isEmbrError } from '../errors.js';
import type { Engram, QueryMatch } from './api.js';
import { openEngram, openEngramOnStore } from './index.js';
import { createMemoryStore } from '../store/memory-store.js';
import { livePathsOf } from './similarity.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-similarity-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `s-${(counter += 1)}.engram`);
const CHUNK = 4096;

/** Deterministic bytes without repeats (SHA-256 counter stream), so failures reproduce. */
function bytesOf(seed: string, length: number): Uint8Array {
  const output = new Uint8Array(length);
  for (let offset = 0, block = 0; offset < length; block += 1) {
    const digest = createHash('sha256').update(`${seed}:${block}`).digest();
    output.set(digest.subarray(0, Math.min(digest.length, length - offset)), offset);
    offset += digest.length;
  }
  return output;
}

/** A copy of `bytes` with `fraction` of its bytes changed at seeded positions. */
function edited(bytes: Uint8Array, fraction: number, seed: string): Uint8Array {
  const copy = bytes.slice();
  const positions = bytesOf(seed, Math.ceil(bytes.length * fraction) * 4);
  for (let index = 0; index + 4 <= positions.length; index += 4) {
    const position = new DataView(positions.buffer, index, 4).getUint32(0) % copy.length;
    copy[position] ^= 0x5a;
  }
  return copy;
}

/** True when the match's region overlaps [start, end). */
function overlaps(match: QueryMatch, start: number, end: number): boolean {
  return match.offset < end && match.offset + match.length > start;
}

async function withEngram(body: (engram: Engram, file: string) => Promise<void>): Promise<void> {
  const file = freshFile();
  const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
  try {
    await body(engram, file);
  } finally {
    await engram.close();
  }
}

const alpha = bytesOf('alpha', 96 * 1024);
const beta = bytesOf('beta', 64 * 1024);
const gamma = bytesOf('gamma', 48 * 1024);

async function writeCorpus(engram: Engram): Promise<void> {
  await engram.mkdir('/docs');
  await engram.writeFile('/docs/alpha.bin', alpha);
  await engram.writeFile('/docs/beta.bin', beta);
  await engram.writeFile('/gamma.bin', gamma);
}

describe('similarity search through the SQLite engram', () => {
  it('finds the file and the offset of a shifted excerpt when it is written', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const start = 40_001; // not a chunk boundary: the excerpt is shifted against the chunks
      const result = await engram.query(alpha.subarray(start, start + 8192), { k: 3 });
      assert.equal(result.matches[0].path, '/docs/alpha.bin');
      assert.ok(overlaps(result.matches[0], start, start + 8192), JSON.stringify(result.matches[0]));
      assert.equal(result.matches[0].offset % CHUNK, 0);
      assert.ok(result.matches[0].score > 0.5, `score ${result.matches[0].score}`);
      assert.ok(result.rootScore > 0, `rootScore ${result.rootScore}`);
      for (const other of result.matches.slice(1)) assert.ok(other.score < 0.25, JSON.stringify(other));
    });
  });

  it('finds the file of an excerpt with 5% of its bytes edited', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const start = 20_000;
      const excerpt = edited(beta.subarray(start, start + 16_384), 0.05, 'edit');
      const result = await engram.query(excerpt, { k: 3 });
      assert.equal(result.matches[0].path, '/docs/beta.bin');
      assert.ok(overlaps(result.matches[0], start, start + 16_384));
    });
  });

  it('answers a text query and keeps to the path prefix when one is given', async () => {
    await withEngram(async (engram) => {
      const prose = new TextEncoder().encode(Array.from({ length: 400 }, (_, index) => `line ${index}: the quick brown fox ${index * 7919} jumps`).join('\n'));
      await engram.mkdir('/a');
      await engram.mkdir('/b');
      await engram.writeFile('/a/prose.txt', prose);
      await engram.writeFile('/b/prose-copy.txt', prose);
      const text = new TextDecoder().decode(prose.subarray(5000, 9000));
      const all = await engram.query(text, { k: 5 });
      assert.deepEqual(all.matches.map((match) => match.path).sort(), ['/a/prose.txt', '/b/prose-copy.txt']);
      const underB = await engram.query(text, { k: 5, path: '/b' });
      assert.deepEqual(underB.matches.map((match) => match.path), ['/b/prose-copy.txt']);
      assert.deepEqual((await engram.query(text, { k: 5, path: '/c' })).matches, []);
    });
  });

  it('stops naming a file when it is deleted', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const excerpt = gamma.subarray(10_000, 18_000);
      assert.equal((await engram.query(excerpt)).matches[0].path, '/gamma.bin');
      await engram.deleteFile('/gamma.bin');
      const after = await engram.query(excerpt);
      assert.ok(after.matches.every((match) => match.path !== '/gamma.bin' && match.score < 0.25), JSON.stringify(after.matches));
    });
  });

  it('names the new path after a rename, also over an existing file, and a remaining hard link after unlink', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const excerpt = alpha.subarray(50_000, 58_000);
      await engram.rename('/docs/alpha.bin', '/renamed.bin');
      assert.equal((await engram.query(excerpt)).matches[0].path, '/renamed.bin');
      await engram.rename('/renamed.bin', '/docs/beta.bin'); // replaces beta
      const betaGone = await engram.query(beta.subarray(1000, 9000));
      assert.ok(betaGone.matches.every((match) => match.score < 0.25), JSON.stringify(betaGone.matches));
      assert.equal((await engram.query(excerpt)).matches[0].path, '/docs/beta.bin');
      await engram.link('/docs/beta.bin', '/link.bin');
      const linked = await engram.query(excerpt);
      assert.equal(linked.matches.length, 1 + linked.matches.filter((match) => match.path !== '/docs/beta.bin' && match.path !== '/link.bin').length);
      await engram.deleteFile('/docs/beta.bin');
      assert.equal((await engram.query(excerpt)).matches[0].path, '/link.bin');
    });
  });

  it('re-indexes the changed region after a partial write, an append and a truncate', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const patch = bytesOf('patch', 12_288);
      await engram.write('/docs/alpha.bin', 30_000, patch);
      const found = await engram.query(patch.subarray(1000, 9000));
      assert.equal(found.matches[0].path, '/docs/alpha.bin');
      assert.ok(overlaps(found.matches[0], 31_000, 39_000), JSON.stringify(found.matches[0]));
      // The overwritten bytes are gone from the index.
      const overwritten = await engram.query(alpha.subarray(32_768, 36_864));
      assert.ok(overwritten.matches.every((match) => match.score < 0.25), JSON.stringify(overwritten.matches));
      const tail = bytesOf('tail', 20_000);
      await engram.write('/gamma.bin', gamma.length, tail);
      const appended = await engram.query(tail.subarray(4000, 16_000));
      assert.equal(appended.matches[0].path, '/gamma.bin');
      assert.ok(overlaps(appended.matches[0], gamma.length + 4000, gamma.length + 16_000), JSON.stringify(appended.matches[0]));
      await engram.truncate('/gamma.bin', 8192);
      const cut = await engram.query(tail.subarray(4000, 16_000));
      assert.ok(cut.matches.every((match) => match.score < 0.25), JSON.stringify(cut.matches));
      assert.equal((await engram.query(gamma.subarray(0, 8192))).matches[0].path, '/gamma.bin');
      assert.equal((await engram.verify()).ok, true);
    });
  });

  it('leaves the empty root and no matches when everything is deleted, and compaction leaves only the meta row', async () => {
    await withEngram(async (engram, file) => {
      await writeCorpus(engram);
      await engram.write('/docs/alpha.bin', 5000, bytesOf('x', 9000));
      await engram.deleteFile('/docs/alpha.bin');
      await engram.deleteFile('/docs/beta.bin');
      await engram.deleteFile('/gamma.bin');
      const result = await engram.query(alpha.subarray(0, 8192));
      assert.deepEqual(result, { matches: [], rootScore: 0 });
      const stats = await engram.stats();
      assert.equal(stats.rootVector.nonZeroCount, 0);
      await engram.compact();
      const db = new Database(file, { readonly: true });
      try {
        // The root vector is the index's root:/ row (dropped when all zero); the legacy table stays empty.
        assert.equal(db.prepare('SELECT count(*) FROM root_vector').pluck().get(), 0);
        assert.deepEqual(db.prepare('SELECT key FROM index_rows ORDER BY key').pluck().all(), ['meta']);
      } finally {
        db.close();
      }
      assert.equal((await engram.verify()).ok, true);
    });
  });

  it('sees the index changes of another handle (another process) on the same engram', async () => {
    const file = freshFile();
    const first = await openEngram(file, { create: true, chunkBytes: CHUNK });
    const second = await openEngram(file);
    try {
      await writeCorpus(first);
      assert.equal((await second.query(beta.subarray(9000, 17_000))).matches[0].path, '/docs/beta.bin');
      await second.deleteFile('/docs/beta.bin');
      await second.writeFile('/delta.bin', bytesOf('delta', 40_000));
      const afterDelete = await first.query(beta.subarray(9000, 17_000));
      assert.ok(afterDelete.matches.every((match) => match.path !== '/docs/beta.bin'));
      assert.equal((await first.query(bytesOf('delta', 40_000).subarray(8000, 16_000))).matches[0].path, '/delta.bin');
      // Interleaved commits: each handle's cached index must be reloaded, never overwrite the other's rows.
      await first.writeFile('/epsilon.bin', bytesOf('epsilon', 30_000));
      await second.writeFile('/zeta.bin', bytesOf('zeta', 30_000));
      await first.write('/zeta.bin', 0, bytesOf('eta', 8192));
      for (const engram of [first, second]) {
        assert.equal((await engram.query(bytesOf('epsilon', 30_000).subarray(5000, 13_000))).matches[0].path, '/epsilon.bin');
        assert.equal((await engram.query(bytesOf('eta', 8192))).matches[0].path, '/zeta.bin');
        assert.equal((await engram.query(bytesOf('zeta', 30_000).subarray(12_000, 20_000))).matches[0].path, '/zeta.bin');
      }
      assert.equal((await second.verify()).ok, true);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('keeps two handles interleaving hundreds of commits, across checkpoints and a rebuild, answering like a fresh open', async () => {
    const file = freshFile();
    const handles = [await openEngram(file, { create: true, chunkBytes: CHUNK, durability: 'normal' }), await openEngram(file, { durability: 'normal' })];
    const live = new Map<string, Uint8Array>();
    try {
      // Seeded choices: which handle commits, and what (a new file, a partial write, a delete).
      const choices = bytesOf('interleave', 4 * 320);
      for (let step = 0; step < 320; step += 1) {
        const [who, what, pick, size] = choices.subarray(step * 4, step * 4 + 4);
        const engram = handles[who & 1];
        const names = [...live.keys()];
        if (what % 3 === 0 || names.length < 4) {
          const path = `/f${step}.bin`;
          const data = bytesOf(`file-${step}`, CHUNK * (1 + (size % 3)) + size);
          await engram.writeFile(path, data);
          live.set(path, data);
        } else if (what % 3 === 1) {
          const path = names[pick % names.length];
          const patch = bytesOf(`patch-${step}`, CHUNK);
          await engram.write(path, CHUNK, patch);
          const data = live.get(path) as Uint8Array;
          const grown = new Uint8Array(Math.max(data.length, CHUNK * 2));
          grown.set(data);
          grown.set(patch, CHUNK);
          live.set(path, grown);
        } else {
          const path = names[pick % names.length];
          await engram.deleteFile(path);
          live.delete(path);
        }
        // A compaction rebuilds the index rows under the other handle's cache.
        if (step === 200) await handles[1].compact();
      }
      const fresh = await openEngram(file);
      try {
        for (const [path, data] of live) {
          const excerpt = data.subarray(100, 100 + 2 * CHUNK);
          const expected = (await fresh.query(excerpt, { k: 3 })).matches;
          assert.equal(expected[0].path, path);
          for (const engram of handles) assert.deepEqual((await engram.query(excerpt, { k: 3 })).matches, expected, `query for ${path}`);
        }
        assert.equal((await fresh.verify()).ok, true);
      } finally {
        await fresh.close();
      }
    } finally {
      for (const engram of handles) await engram.close();
    }
  });

  it('lists near-duplicates first with similar, leaving the file itself out', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      await engram.writeFile('/near.bin', edited(alpha, 0.01, 'near'));
      const similar = await engram.similar('/docs/alpha.bin', { k: 3 });
      assert.equal(similar[0].path, '/near.bin');
      assert.ok(similar[0].score > 0.5);
      assert.ok(similar.every((match) => match.path !== '/docs/alpha.bin'));
    });
  });

  it('answers a query and similar as of a snapshot after the live tree changed', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      await engram.writeFile('/near.bin', edited(alpha, 0.02, 'near'));
      await engram.createSnapshot('s1');
      await engram.deleteFile('/docs/beta.bin');
      await engram.rename('/docs/alpha.bin', '/moved.bin');
      const excerpt = beta.subarray(5001, 5001 + 8192);
      // Live: beta is gone, so it is not the best match any more.
      const live = await engram.query(excerpt, { k: 3 });
      assert.ok(live.matches.every((match) => match.path !== '/docs/beta.bin'));
      // At the snapshot: beta is found with its region, under its old path.
      const atSnapshot = await engram.query(excerpt, { k: 3, snapshot: 's1' });
      assert.equal(atSnapshot.matches[0].path, '/docs/beta.bin');
      assert.ok(overlaps(atSnapshot.matches[0], 5001, 5001 + 8192));
      assert.ok(atSnapshot.rootScore > 0);
      const prefixed = await engram.query(alpha.subarray(1000, 9000), { k: 3, snapshot: 's1', path: '/docs' });
      assert.ok(prefixed.matches.length > 0 && prefixed.matches.every((match) => match.path.startsWith('/docs/')));
      assert.equal(prefixed.matches[0].path, '/docs/alpha.bin');
      const similar = await engram.similar('/docs/alpha.bin', { k: 2, snapshot: 's1' });
      assert.equal(similar[0].path, '/near.bin');
      assert.ok(similar.every((match) => match.path !== '/docs/alpha.bin'));
      await assert.rejects(engram.similar('/moved.bin', { snapshot: 's1' }), (error: unknown) => isEmbrError(error, 'NOT_FOUND'));
      await assert.rejects(engram.query('x', { snapshot: 'nope' }), (error: unknown) => isEmbrError(error, 'NOT_FOUND'));
    });
  });

  it('refuses a bad k and a missing path with clear errors', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      await assert.rejects(engram.query('x', { k: 0 }), RangeError);
      await assert.rejects(engram.similar('/missing.bin'), (error: unknown) => isEmbrError(error, 'NOT_FOUND'));
    });
  });

  it('keeps query results and verify sound across compaction and reports the index bytes', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const excerpt = beta.subarray(3000, 11_000);
      const before = await engram.query(excerpt);
      assert.ok((await engram.stats()).indexBytes > 0);
      await engram.compact();
      assert.deepEqual(await engram.query(excerpt), before);
      assert.ok((await engram.stats()).indexBytes > 0);
      assert.equal((await engram.verify()).ok, true);
    });
  });

  it('names no path for a file unlinked while open, and its path again when a new link is made', async () => {
    await withEngram(async (engram) => {
      await writeCorpus(engram);
      const handle = await engram.open('/gamma.bin');
      try {
        await engram.deleteFile('/gamma.bin');
        const result = await engram.query(gamma.subarray(0, 8192));
        assert.ok(result.matches.every((match) => match.path !== '/gamma.bin'));
      } finally {
        await handle.close();
      }
    });
  });
});

describe('similarity search on the memory store', () => {
  it('finds a written file when the engram lives in memory', async () => {
    const engram = await openEngramOnStore('memory', createMemoryStore({ profile: 'positional', chunkBytes: CHUNK }));
    try {
      await writeCorpus(engram);
      assert.equal((await engram.query(gamma.subarray(7000, 15_000))).matches[0].path, '/gamma.bin');
      await engram.deleteFile('/gamma.bin');
      assert.ok((await engram.query(gamma.subarray(7000, 15_000))).matches.every((match) => match.path !== '/gamma.bin'));
    } finally {
      await engram.close();
    }
  });
});

describe('livePathsOf', () => {
  it('returns every live path of a hard-linked inode, sorted', async () => {
    const engram = await openEngramOnStore('memory', createMemoryStore({ profile: 'positional', chunkBytes: CHUNK }));
    try {
      await engram.mkdir('/d');
      await engram.writeFile('/d/x', new Uint8Array(10));
      await engram.link('/d/x', '/a');
      const ino = (await engram.stat('/a')).ino;
      const paths = await (engram as unknown as { readStore<T>(body: (reader: import('../store/api.js').StoreReader) => T): T }).readStore((reader) => livePathsOf(reader, ino));
      assert.deepEqual(paths, ['/a', '/d/x']);
    } finally {
      await engram.close();
    }
  });
});
