import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SimilarityIndex } from './similarity-index.js';
import { bruteForceSearch, queryVector, rootScore, searchIndex, similarFiles } from './search.js';
import { MemoryIndexStorage } from './storage.js';

/** xorshift32 stream: the same corpus in every run. */
function seededRandom(seed: number): () => number {
  let state = seed | 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

const BOILERPLATE = 'Copyright (C) the authors. This file is free software; you can redistribute it and/or modify it under the terms of the license.\n';

/**
 * Pseudo-English files over one shared vocabulary plus a shared licence header, so files have
 * common n-grams and boilerplate like a real tree does.
 */
function makeCorpus(fileCount: number, seed: number): Map<string, Uint8Array> {
  const random = seededRandom(seed);
  const vocabulary: string[] = [];
  for (let word = 0; word < 3000; word += 1) {
    let text = '';
    const length = 2 + Math.floor(random() * 8);
    for (let letter = 0; letter < length; letter += 1) text += String.fromCharCode(97 + Math.floor(random() * 26));
    vocabulary.push(text);
  }
  const corpus = new Map<string, Uint8Array>();
  for (let file = 0; file < fileCount; file += 1) {
    const targetBytes = 2000 + Math.floor(random() * 30_000);
    let text = BOILERPLATE;
    while (text.length < targetBytes) {
      // Zipf-like: common words are common, as in real text.
      text += vocabulary[Math.floor(vocabulary.length * random() ** 3)];
      text += random() < 0.08 ? '\n' : ' ';
    }
    corpus.set(`/corpus/dir${file % 4}/file${file}.txt`, new TextEncoder().encode(text));
  }
  return corpus;
}

const corpus = makeCorpus(80, 2024);

function buildIndex(): SimilarityIndex {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  for (const [path, bytes] of corpus) index.addFileBytes(path, bytes, 4096);
  index.flush();
  return index;
}

const sharedIndex = buildIndex();

function excerpt(path: string, offset: number, length: number): Uint8Array {
  const bytes = corpus.get(path);
  assert.ok(bytes !== undefined && bytes.length >= offset + length, `${path} holds ${offset}+${length}`);
  return bytes.slice(offset, offset + length);
}

/** Paths with at least `minBytes`, in a fixed order. */
function pathsWithAtLeast(minBytes: number): string[] {
  return [...corpus].filter(([, bytes]) => bytes.length >= minBytes).map(([path]) => path);
}

test('searchIndex finds the source file of an excerpt shifted by an arbitrary number of bytes', () => {
  const random = seededRandom(7);
  let found = 0;
  const candidates = pathsWithAtLeast(12_000);
  for (let trial = 0; trial < 30; trial += 1) {
    const path = candidates[trial % candidates.length];
    const offset = 1 + Math.floor(random() * 6000);
    const matches = searchIndex(sharedIndex, excerpt(path, offset, 4096), { k: 10 });
    if (matches[0]?.path === path) found += 1;
    assert.ok(matches.some((match) => match.path === path), `trial ${trial}: ${path} at ${offset} in the top 10`);
  }
  assert.ok(found >= 28, `top-1 for ${found} of 30`);
});

test('searchIndex finds the source of an excerpt with 5% of its bytes edited', () => {
  const random = seededRandom(8);
  const candidates = pathsWithAtLeast(9000);
  let found = 0;
  for (let trial = 0; trial < 30; trial += 1) {
    const path = candidates[trial % candidates.length];
    const bytes = excerpt(path, Math.floor(random() * 4000), 4096);
    for (let edit = 0; edit < bytes.length * 0.05; edit += 1) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    const matches = searchIndex(sharedIndex, bytes, { k: 10 });
    if (matches.some((match) => match.path === path)) found += 1;
  }
  assert.ok(found >= 28, `top-10 for ${found} of 30`);
});

test('searchIndex reports the offset and length of the region holding the excerpt', () => {
  const path = pathsWithAtLeast(20_000)[0];
  const matches = searchIndex(sharedIndex, excerpt(path, 8192 + 100, 3000), { k: 3 });
  assert.equal(matches[0].path, path);
  // The excerpt lies inside chunk 2 (bytes 8192..12287): the region is that chunk.
  assert.equal(matches[0].offset, 8192);
  assert.equal(matches[0].length, 4096);
  assert.ok(matches[0].score > 0.5 && matches[0].score <= 1, `score ${matches[0].score}`);
  assert.ok(matches[0].cosine > 0.3, `cosine ${matches[0].cosine}`);
  const spanning = searchIndex(sharedIndex, excerpt(path, 4096 + 2048, 8192), { k: 1 });
  assert.deepEqual([spanning[0].path, spanning[0].offset, spanning[0].length], [path, 4096, 12_288]);
});

test('searchIndex returns matches in descending score order, at most k, one per file', () => {
  const path = pathsWithAtLeast(8000)[3];
  const matches = searchIndex(sharedIndex, excerpt(path, 0, 8000), { k: 7 });
  assert.equal(matches.length, 7);
  assert.equal(new Set(matches.map((match) => match.path)).size, 7);
  for (let position = 1; position < matches.length; position += 1) assert.ok(matches[position - 1].score >= matches[position].score);
  assert.throws(() => searchIndex(sharedIndex, 'x', { k: 0 }), RangeError);
  assert.throws(() => searchIndex(sharedIndex, 42 as unknown as string), TypeError);
});

test('searchIndex no longer returns a file once it is removed', () => {
  const index = buildIndex();
  const path = pathsWithAtLeast(8000)[1];
  const query = excerpt(path, 1234, 4096);
  assert.equal(searchIndex(index, query)[0].path, path);
  index.removeFile(path);
  index.flush();
  assert.ok(searchIndex(index, query, { k: 100 }).every((match) => match.path !== path));
  assert.ok(bruteForceSearch(index, query, { k: 100 }).every((match) => match.path !== path));
});

test('searchIndex returns the same matches on every run and after reopening the storage', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  for (const [path, bytes] of corpus) index.addFileBytes(path, bytes);
  index.flush();
  const query = excerpt(pathsWithAtLeast(6000)[5], 500, 5000);
  const first = searchIndex(index, query, { k: 10 });
  assert.deepEqual(searchIndex(index, query, { k: 10 }), first);
  assert.deepEqual(searchIndex(new SimilarityIndex(storage), query, { k: 10 }), first);
  assert.deepEqual(searchIndex(sharedIndex, query, { k: 10 }), first);
});

test('indexed search equals brute force when no dimension is skipped', () => {
  const random = seededRandom(9);
  const paths = pathsWithAtLeast(3000);
  for (let trial = 0; trial < 10; trial += 1) {
    const path = paths[trial * 3 % paths.length];
    const bytes = corpus.get(path) as Uint8Array;
    const length = Math.min(bytes.length, 256 + Math.floor(random() * 3000));
    const query = queryVector(excerpt(path, Math.floor(random() * (bytes.length - length)), length));
    const indexed = searchIndex(sharedIndex, query, { k: 10, maxPostingFraction: 1, maxScannedDimensions: Number.POSITIVE_INFINITY });
    const brute = bruteForceSearch(sharedIndex, query, { k: 10 });
    assert.deepEqual(indexed.map((match) => [match.path, match.offset, match.length]), brute.map((match) => [match.path, match.offset, match.length]));
    indexed.forEach((match, position) => assert.ok(Math.abs(match.score - brute[position].score) < 1e-9));
  }
});

test('pathPrefix keeps only files at or under the prefix', () => {
  const path = '/corpus/dir1/file1.txt';
  const query = excerpt(path, 0, 1500);
  const matches = searchIndex(sharedIndex, query, { k: 50, pathPrefix: '/corpus/dir2' });
  assert.ok(matches.length > 0);
  assert.ok(matches.every((match) => match.path.startsWith('/corpus/dir2/')));
  assert.equal(searchIndex(sharedIndex, query, { k: 1, pathPrefix: path })[0].path, path);
  assert.deepEqual(searchIndex(sharedIndex, query, { pathPrefix: '/corpus/dir' }), []);
});

test('unrelated content scores far below a real excerpt', () => {
  const random = seededRandom(10);
  const noise = new Uint8Array(4096);
  for (let position = 0; position < noise.length; position += 1) noise[position] = Math.floor(random() * 256);
  const top = searchIndex(sharedIndex, noise, { k: 1 })[0]?.score ?? 0;
  assert.ok(top < 0.1, `random bytes score ${top}`);
  const real = searchIndex(sharedIndex, excerpt(pathsWithAtLeast(5000)[0], 100, 4096), { k: 1 })[0].score;
  assert.ok(real > 0.5, `excerpt score ${real}`);
});

test('similarFiles lists a near-duplicate first and leaves the file itself out', () => {
  const index = buildIndex();
  const path = pathsWithAtLeast(16_000)[2];
  const copy = (corpus.get(path) as Uint8Array).slice();
  for (let position = 100; position < copy.length; position += 400) copy[position] ^= 0x20;
  index.addFileBytes('/elsewhere/copy.txt', copy);
  const matches = similarFiles(index, path, { k: 5 });
  assert.equal(matches[0].path, '/elsewhere/copy.txt');
  assert.ok(matches.every((match) => match.path !== path));
  assert.deepEqual(similarFiles(index, '/missing'), []);
});

test('rootScore is 0 for an empty engram and higher for its own content than for noise', () => {
  const empty = new SimilarityIndex(new MemoryIndexStorage());
  assert.equal(rootScore(empty, 'anything at all, long enough to have features'), 0);
  const own = rootScore(sharedIndex, corpus.get('/corpus/dir0/file0.txt') as Uint8Array);
  const random = seededRandom(11);
  const noise = new Uint8Array(20_000);
  for (let position = 0; position < noise.length; position += 1) noise[position] = Math.floor(random() * 256);
  const unrelated = rootScore(sharedIndex, noise);
  assert.ok(own > unrelated + 0.05, `own ${own}, unrelated ${unrelated}`);
  assert.ok(rootScore(sharedIndex, corpus.get('/corpus/dir0/file0.txt') as Uint8Array, '/corpus') > 0);
});

test('searchIndex reports file offsets in a file indexed as several segments', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  // 1.6 MB of text: 400 chunks, two segments of the index.
  const random = seededRandom(12);
  let text = '';
  while (text.length < 400 * 4096) {
    const wordLength = 2 + Math.floor(random() * 8);
    for (let letter = 0; letter < wordLength; letter += 1) text += String.fromCharCode(97 + Math.floor(random() * 26));
    text += random() < 0.1 ? '\n' : ' ';
  }
  const big = new TextEncoder().encode(text.slice(0, 400 * 4096));
  index.addFileBytes('/big.txt', big);
  const queryOffset = 300 * 4096 + 1000;
  const matches = searchIndex(index, big.slice(queryOffset, queryOffset + 2000), { k: 3 });
  assert.equal(matches.length, 1, 'one match per file, however many segments hold it');
  assert.deepEqual([matches[0].path, matches[0].offset, matches[0].length], ['/big.txt', 300 * 4096, 4096]);
});

test('every match lies inside its file, on chunk boundaries, with a score in [-1, 1], in descending order', () => {
  const paths = [...corpus.keys()];
  fc.assert(
    fc.property(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 40_000 }), fc.integer({ min: 0, max: 30 }), (pathPick, offsetPick, length, editPercent) => {
      const source = corpus.get(paths[pathPick % paths.length]) as Uint8Array;
      const offset = offsetPick % source.length;
      const query = source.slice(offset, offset + length);
      for (let position = 0; position < query.length; position += 1) if ((position * 7919) % 100 < editPercent) query[position] ^= 0x55;
      const matches = searchIndex(sharedIndex, query, { k: 10 });
      matches.forEach((match, position) => {
        const file = corpus.get(match.path);
        assert.ok(file !== undefined, `${match.path} is in the corpus`);
        assert.ok(match.offset % 4096 === 0 && match.length > 0 && match.offset + match.length <= file.length);
        assert.ok(match.score > 0 && match.score <= 1, `score ${match.score}`);
        assert.ok(match.cosine >= -1 && match.cosine <= 1);
        if (position > 0) assert.ok(matches[position - 1].score >= match.score);
      });
    }),
    { numRuns: 60, seed: 6 },
  );
});
