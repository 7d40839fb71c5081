import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pseudoRandomBytes, runCli } from './helpers.js';

let root = '';
let engram = '';
const alpha = pseudoRandomBytes('alpha', 80_000);
const beta = pseudoRandomBytes('beta', 50_000);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'embrfs-cli-search-'));
  const source = join(root, 'source');
  await mkdir(join(source, 'docs'), { recursive: true });
  await writeFile(join(source, 'docs', 'alpha.bin'), alpha);
  await writeFile(join(source, 'beta.bin'), beta);
  // A near-duplicate of alpha: 40 bytes changed.
  const near = Buffer.from(alpha);
  for (let index = 0; index < 40; index += 1) near[index * 1999] ^= 0xff;
  await writeFile(join(source, 'near.bin'), near);
  engram = join(root, 'corpus.engram');
  const ingest = await runCli(['ingest', source, '-o', engram, '--quiet']);
  assert.equal(ingest.code, 0, ingest.stderr);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('query --file --json names the source file and region of a shifted excerpt, best first', async () => {
  const excerptFile = join(root, 'excerpt.bin');
  await writeFile(excerptFile, beta.subarray(10_001, 22_001));
  const result = await runCli(['query', engram, '--file', excerptFile, '-k', '2', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const document = JSON.parse(result.stdout) as { k: number; queryBytes: number; rootScore: number; matches: Array<{ path: string; offset: number; length: number; score: number }> };
  assert.equal(document.k, 2);
  assert.equal(document.queryBytes, 12_000);
  assert.ok(document.rootScore > 0);
  assert.equal(document.matches[0].path, '/beta.bin');
  assert.ok(document.matches[0].offset < 22_001 && document.matches[0].offset + document.matches[0].length > 10_001, result.stdout);
  assert.ok(document.matches[0].score > 0.5, result.stdout);
  assert.ok(document.matches.length <= 2);
});

test('query --path keeps to a directory, and --text prints a table and the root score', async () => {
  const excerptFile = join(root, 'alpha-excerpt.bin');
  await writeFile(excerptFile, alpha.subarray(30_000, 40_000));
  const underDocs = await runCli(['query', engram, '--file', excerptFile, '--path', '/docs', '--json']);
  assert.equal(underDocs.code, 0, underDocs.stderr);
  assert.deepEqual((JSON.parse(underDocs.stdout) as { matches: Array<{ path: string }> }).matches.map((match) => match.path), ['/docs/alpha.bin']);
  const text = await runCli(['query', engram, '--text', 'nothing like this is stored anywhere', '-k', '3']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /root score \d\.\d{3}/);
});

test('similar --json lists the near-duplicate first and leaves the file itself out', async () => {
  const result = await runCli(['similar', engram, '/docs/alpha.bin', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const document = JSON.parse(result.stdout) as { path: string; matches: Array<{ path: string; score: number }> };
  assert.equal(document.path, '/docs/alpha.bin');
  assert.equal(document.matches[0].path, '/near.bin');
  assert.ok(document.matches[0].score > 0.5, result.stdout);
  assert.ok(document.matches.every((match) => match.path !== '/docs/alpha.bin'));
});

test('info reports the index bytes, verify passes, and bad query usage exits 2 naming the problem', async () => {
  const info = await runCli(['info', engram, '--json']);
  assert.equal(info.code, 0, info.stderr);
  assert.ok((JSON.parse(info.stdout) as { indexBytes: number }).indexBytes > 0, info.stdout);
  const verify = await runCli(['verify', engram, '--json', '--quiet']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const neither = await runCli(['query', engram]);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /exactly one of --file and --text/);
  const both = await runCli(['query', engram, '--text', 'a', '--file', engram]);
  assert.equal(both.code, 2);
  const badK = await runCli(['query', engram, '--text', 'a', '-k', '0']);
  assert.equal(badK.code, 2);
  const missing = await runCli(['similar', engram, '/missing.bin']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /not found/);
});
