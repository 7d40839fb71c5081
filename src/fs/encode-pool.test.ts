/**
 * The encode pool's large-write path (hashAndEncode): its parts travel through shared staging
 * slots, and every slot comes back whatever happens to the call; each part comes back as one pack
 * batch whose columns and fingerprint indices describe exactly the chunks it encoded.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { seededBytes, wordText as text } from '../../test/support/seeded-bytes.js';
import type { NewChunk, PackBatch } from '../store/api.js';
import { batchPacks, preparePacks, unbatchPacks, unpack } from '../store/pack.js';
import { deserializeVector } from '../vsa/serialize.js';
import { batchVectors, createPipeline, encodeChunk, encodePositionalBatch } from './encode.js';
import { STAGING_SLOTS, STAGING_SLOT_BYTES, encodePool } from './encode-pool.js';

const CHUNK = 4096;
const pool = encodePool({ profile: 'positional', chunkBytes: CHUNK });

async function slotsBack(): Promise<void> {
  for (let round = 0; round < 200 && (pool?.stagingSlotsFree ?? STAGING_SLOTS) !== STAGING_SLOTS; round += 1) await sleep(5);
  assert.equal(pool?.stagingSlotsFree, STAGING_SLOTS, 'every staging slot is free again');
}

describe('encode pool: hashAndEncode', { skip: pool === undefined ? `no pool on this machine (${availableParallelism()} core(s) or EMBRFS_ENCODE_THREADS=0)` : false }, () => {
  it('hashes and encodes many concurrent calls (more parts than slots) exactly, and gives every slot back', async () => {
    assert.ok(pool !== undefined);
    const inputs = Array.from({ length: 12 }, (_, index) => seededBytes(STAGING_SLOT_BYTES + 3 * CHUNK + index, index + 1));
    // A hole in one input: no hash, not encoded.
    inputs[3].fill(0, CHUNK, 2 * CHUNK);
    const results = await Promise.all(inputs.map((bytes) => pool.hashAndEncode(bytes, CHUNK, (shas) => shas.map((sha) => sha !== null))));
    results.forEach(({ shas, batches }, call) => {
      const bytes = inputs[call];
      assert.equal(shas.length, Math.ceil(bytes.length / CHUNK));
      const payloads: Uint8Array[] = [];
      shas.forEach((sha, chunk) => {
        const piece = bytes.subarray(chunk * CHUNK, (chunk + 1) * CHUNK);
        if (call === 3 && chunk === 1) return assert.equal(sha, null);
        assert.deepEqual(Buffer.from(sha ?? []), createHash('sha256').update(piece).digest());
        payloads.push(piece);
      });
      let encoded = 0;
      for (const batch of batches) {
        const vectors = batchVectors(batch);
        let inBatch = 0;
        for (const pack of unbatchPacks(batch)) {
          const raw = unpack(pack.data, pack.rawBytes);
          for (const chunk of pack.chunks) {
            // Positional payloads end with the chunk's bytes.
            const payload = raw.subarray(chunk.offset, chunk.offset + chunk.payloadBytes);
            assert.deepEqual(Buffer.from(payload.subarray(payload.length - chunk.byteLength)), Buffer.from(payloads[encoded]));
            assert.deepEqual(Buffer.from(chunk.sha256), createHash('sha256').update(payloads[encoded]).digest());
            // The vector built from the batch's indices is the fingerprint's parse.
            assert.ok(vectors[inBatch].equals(deserializeVector(chunk.fingerprint)));
            inBatch += 1;
            encoded += 1;
          }
        }
        assert.equal(inBatch, vectors.length);
      }
      assert.equal(encoded, payloads.length, 'every chunk chosen was encoded once');
    });
    await slotsBack();
  });

  it('gives the slots back when the choice of chunks throws, and the pool still works after', async () => {
    assert.ok(pool !== undefined);
    const bytes = seededBytes(2 * STAGING_SLOT_BYTES, 77);
    await assert.rejects(
      pool.hashAndEncode(bytes, CHUNK, () => {
        throw new Error('refused');
      }),
      /refused/,
    );
    await slotsBack();
    const { batches } = await pool.hashAndEncode(bytes, CHUNK, (shas) => shas.map(() => false));
    assert.equal(batches.reduce((sum, batch) => sum + batch.fingerprintEnds.length, 0), 0, 'nothing chosen, nothing encoded');
    await slotsBack();
  });

  it('does not change the caller\'s bytes, and a part larger than a slot is still hashed right', async () => {
    assert.ok(pool !== undefined);
    const bytes = seededBytes(3 * STAGING_SLOT_BYTES, 5);
    const copy = Uint8Array.from(bytes);
    const { shas } = await pool.hashAndEncode(bytes, CHUNK, (hashes) => hashes.map(() => false));
    assert.deepEqual(Buffer.from(bytes), Buffer.from(copy));
    const last = bytes.subarray(bytes.length - CHUNK);
    assert.deepEqual(Buffer.from(shas[shas.length - 1] ?? []), createHash('sha256').update(last).digest());
    await slotsBack();
  });
});

describe('encode pool: a worker that cannot start', () => {
  it('fails the pool step, not the write: a 10 MB writeFile under a flag workers refuse encodes inline and reads back', () => {
    // Node refuses to start workers with some process flags (ERR_WORKER_INVALID_EXEC_ARGV, here
    // --stack-trace-limit): the pool's first step throws, and no staging slot may stay taken
    // (a taken slot made every later large write wait forever).
    const directory = mkdtempSync(join(tmpdir(), 'embrfs-pool-refused-'));
    try {
      const script = join(directory, 'write.mjs');
      const index = new URL('./index.js', import.meta.url).href;
      writeFileSync(
        script,
        `import { openEngram } from ${JSON.stringify(index)};
const engram = await openEngram(${JSON.stringify(join(directory, 'e.engram'))}, { create: true });
for (let round = 0; round < 3; round += 1) {
  const data = new Uint8Array(10_000_000).map((_, at) => (at * 2654435761 + round) >>> 24);
  await engram.writeFile('/f', data);
  const back = (await engram.readFile('/f')).data;
  if (Buffer.compare(back, data) !== 0) throw new Error('read back differs');
}
await engram.close();
console.log('written');
`,
      );
      const child = spawnSync(process.execPath, ['--stack-trace-limit=50', script], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(child.signal, null, `the child did not finish: ${child.stderr}`);
      assert.equal(child.status, 0, child.stderr);
      assert.match(child.stdout, /written/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('positional batches written straight into packs', () => {
  const pipeline = createPipeline({ profile: 'positional', chunkBytes: CHUNK });
  function plain(batch: PackBatch): unknown {
    return {
      packs: batch.packs.map((pack) => ({ data: Buffer.from(pack.data).toString('base64'), rawBytes: pack.rawBytes, chunkCount: pack.chunkCount })),
      sha256s: Buffer.from(batch.sha256s).toString('hex'),
      fields: [...batch.fields],
      fingerprints: Buffer.from(batch.fingerprints).toString('hex'),
      fingerprintEnds: [...batch.fingerprintEnds],
      dims: [...(batch.dims ?? [])],
      dimCounts: [...(batch.dimCounts ?? [])],
      // An empty batch has no vectors, so no dimension to agree on.
      dimension: batch.fingerprintEnds.length > 0 ? batch.dimension : undefined,
    };
  }

  it('gives the columns and pack bytes of encoding chunk by chunk, for every kind of selection', () => {
    const inputs: Array<[string, Uint8Array]> = [
      ['random', seededBytes(70 * CHUNK + 1234, 21)],
      ['text', text(90 * CHUNK, 4)],
      ['mixed, short last chunk', (() => {
        const bytes = seededBytes(64 * CHUNK + 17, 9);
        bytes.set(text(20 * CHUNK, 2), 10 * CHUNK);
        return bytes;
      })()],
    ];
    for (const [name, bytes] of inputs) {
      const count = Math.ceil(bytes.length / CHUNK);
      const sha256s = new Uint8Array(32 * count);
      pipeline.sha256Chunks(bytes, CHUNK, sha256s);
      const selections: Array<[string, (chunk: number) => boolean]> = [
        ['all', () => true],
        ['none', () => false],
        ['every other', (chunk) => chunk % 2 === 0],
        ['runs', (chunk) => chunk % 7 < 4],
        ['the last only', (chunk) => chunk === count - 1],
      ];
      for (const [how, picked] of selections) {
        const select = Uint8Array.from({ length: count }, (_, chunk) => (picked(chunk) ? 1 : 0));
        const fresh: NewChunk[] = [];
        for (let chunk = 0; chunk < count; chunk += 1) {
          if (select[chunk] !== 1) continue;
          fresh.push(encodeChunk(pipeline, bytes.subarray(chunk * CHUNK, (chunk + 1) * CHUNK), sha256s.subarray(32 * chunk, 32 * chunk + 32), true));
        }
        const expected = batchPacks(preparePacks(fresh), true);
        assert.deepEqual(plain(encodePositionalBatch(bytes, CHUNK, sha256s, select)), plain(expected), `${name}, ${how}`);
      }
    }
  });
});
