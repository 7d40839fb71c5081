/**
 * Large whole-file writes are staged while they encode (docs/design/store.md §3.7): the packs of
 * each 1 MiB batch go into `stage` commits (on the SQLite store's background connection) and one
 * final commit switches the file to them. These tests pin what that must keep: the bytes, holes,
 * dedup within the write and against stored chunks, preconditions checked before anything is
 * staged, the fallback when a chunk found stored is gone, a clean verify after a write refused at
 * its final commit, and GC freeing that write's staged chunks once past the staging grace. Also
 * the similarity index's log fold, which runs in a commit of its own right after the commit that
 * crossed the fold mark.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isEmbrError } from '../errors.js';
import type { Store } from '../store/api.js';
import { LIVE } from '../store/api.js';
import { createMemoryStore } from '../store/memory-store.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Engram } from './api.js';
import { STAGED_WRITE_MIN_BYTES } from './engram.js';
import { openEngramOnStore } from './index.js';
import { nowNs } from './session.js';
import { INDEX_FOLD_DUE_CHUNKS } from './similarity.js';
import { pattern } from '../../test/support/seeded-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-staged-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const CHUNK = 4096;
const MiB = 1 << 20;


type Opened = { engram: Engram; store: Store };
const makers: Array<[string, (chunkBytes?: number) => Opened]> = [
  [
    'sqlite',
    (chunkBytes = CHUNK) => {
      const file = join(root, `e-${(counter += 1)}.engram`);
      const store = openSqliteStore(file, { create: { profile: 'positional', chunkBytes, timeNs: nowNs() } });
      return { engram: openEngramOnStore(file, store), store };
    },
  ],
  [
    'memory',
    (chunkBytes = CHUNK) => {
      const store = createMemoryStore({ profile: 'positional', chunkBytes });
      return { engram: openEngramOnStore('memory', store), store };
    },
  ],
];

async function using(make: (chunkBytes?: number) => Opened, body: (opened: Opened) => Promise<void>, chunkBytes?: number): Promise<void> {
  const opened = make(chunkBytes);
  try {
    await body(opened);
  } finally {
    await opened.engram.close();
  }
}

/** Kinds of the commits after `after` (exclusive) up to the head. */
function kindsSince(store: Store, after: number): string[] {
  return store.read((reader) => {
    const kinds: string[] = [];
    for (let commit = after + 1; commit <= reader.headCommit(); commit += 1) kinds.push(reader.commitInfo(commit)?.kind ?? '?');
    return kinds;
  });
}

const head = (store: Store): number => store.read((reader) => reader.headCommit());

for (const [storeName, make] of makers) {
  describe(`staged large writes on the ${storeName} store`, () => {
    it('leaves the caller\'s Node Buffer intact (it owns its ArrayBuffer, and only copies go to the workers)', () =>
      using(make, async ({ engram }) => {
        // Buffer.prototype.slice is a view: transferring one detached the caller's whole buffer
        // and stored an empty file (found 2026-12-07).
        const data = Buffer.from(pattern(5 * MiB + 123, 9));
        assert.equal(data.byteOffset === 0 && data.byteLength === data.buffer.byteLength, true, 'the Buffer owns its ArrayBuffer');
        const copy = Buffer.from(data);
        await engram.writeFile('/buffer.bin', data);
        assert.equal(data.length, 5 * MiB + 123, 'the caller still has its bytes');
        assert.equal(Buffer.compare(data, copy), 0);
        assert.equal((await engram.stat('/buffer.bin')).size, copy.length);
        assert.equal(Buffer.compare((await engram.readFile('/buffer.bin')).data, copy), 0);
      }));

    it('stages batches before the final commit; bytes, holes and repeated chunks come back exactly; verify is clean', () =>
      using(make, async ({ engram, store }) => {
        // 6 MiB + 1000 bytes: 7 batches; 3 zero chunks (holes) in the second; one chunk of the
        // first batch repeated in the fifth (stored once); a short last chunk.
        const data = pattern(6 * MiB + 1000, 1);
        data.fill(0, MiB + 5 * CHUNK, MiB + 8 * CHUNK);
        data.copyWithin(4 * MiB + 7 * CHUNK, 3 * CHUNK, 4 * CHUNK);
        const before = head(store);
        const chunksBefore = (await engram.stats()).chunks;
        const version = await engram.writeFile('/big.bin', data);
        const kinds = kindsSince(store, before);
        // Seven batches, each in a stage commit the final commit claimed (GC's staging grace ends).
        assert.equal(kinds.filter((kind) => kind === 'stage-claimed').length, 7, kinds.join(','));
        assert.equal(kinds.filter((kind) => kind === 'stage').length, 0, kinds.join(','));
        assert.equal(kinds[kinds.length - 1], 'write');
        assert.equal(version, head(store));
        assert.deepEqual((await engram.readFile('/big.bin')).data, data);
        const chunkCount = Math.ceil(data.length / CHUNK);
        // 3 holes store nothing; the repeated chunk is stored once.
        assert.equal((await engram.stats()).chunks - chunksBefore, chunkCount - 3 - 1);
        const ino = (await engram.stat('/big.bin')).ino;
        const refs = store.read((reader) => reader.chunkRefs(ino, LIVE, 0, chunkCount));
        assert.equal(refs.length, chunkCount - 3, 'holes have no chunk reference');
        const report = await engram.verify();
        assert.ok(report.ok, JSON.stringify(report.problems));
      }));

    it('stages only the chunks the store does not hold', () =>
      using(make, async ({ engram, store }) => {
        const first = pattern(5 * MiB, 2);
        await engram.writeFile('/a.bin', first);
        const second = first.slice();
        second.set(pattern(CHUNK, 3), 2 * MiB);
        const chunksBefore = (await engram.stats()).chunks;
        const before = head(store);
        await engram.writeFile('/b.bin', second);
        assert.equal((await engram.stats()).chunks - chunksBefore, 1);
        assert.ok(kindsSince(store, before).includes('stage-claimed'));
        assert.deepEqual((await engram.readFile('/b.bin')).data, second);
        assert.deepEqual((await engram.readFile('/a.bin')).data, first);
      }));

    it('checks preconditions before staging: a refused write leaves no commit at all', () =>
      using(make, async ({ engram, store }) => {
        const version = await engram.writeFile('/a.bin', pattern(100, 4));
        const before = head(store);
        const data = pattern(STAGED_WRITE_MIN_BYTES, 5);
        await assert.rejects(engram.writeFile('/a.bin', data, { exclusive: true }), (error) => isEmbrError(error, 'EXISTS'));
        await assert.rejects(engram.writeFile('/a.bin', data, { expectedVersion: version + 1 }), (error) => isEmbrError(error, 'VERSION_MISMATCH'));
        await assert.rejects(engram.writeFile('/missing/a.bin', data), (error) => isEmbrError(error, 'NOT_FOUND'));
        assert.equal(head(store), before);
        assert.equal(await engram.writeFile('/a.bin', data, { expectedVersion: version }), head(store));
      }));

    it('falls back to a full encode when a chunk it found stored is gone when its batch is staged', () =>
      using(make, async ({ engram, store }) => {
        // As if compaction freed every chunk right after the lookup said it was stored. The write
        // asks the store's background connection when there is one, else the engram.
        let lies = 1;
        const lie = (shas: Uint8Array[]): boolean[] | undefined => {
          if (lies === 0) return undefined;
          lies -= 1;
          return shas.map(() => true);
        };
        const background = store.lookupInBackground?.bind(store);
        if (background !== undefined) {
          store.lookupInBackground = (shas) => {
            const lied = lie(shas);
            return lied !== undefined ? Promise.resolve(lied) : background(shas);
          };
        } else {
          const host = engram as unknown as { lookupStored: (shas: Uint8Array[]) => boolean[] };
          const lookup = host.lookupStored;
          host.lookupStored = function (this: unknown, shas: Uint8Array[]): boolean[] {
            return lie(shas) ?? lookup.call(this, shas);
          };
        }
        const data = pattern(STAGED_WRITE_MIN_BYTES + 3 * CHUNK, 6);
        await engram.writeFile('/a.bin', data);
        assert.equal(lies, 0);
        assert.deepEqual((await engram.readFile('/a.bin')).data, data);
        assert.ok((await engram.verify()).ok);
      }));

    it('a write refused at its final commit leaves verify clean, and GC frees what it staged once past the staging grace', () =>
      using(make, async ({ engram, store }) => {
        const version = await engram.writeFile('/a.bin', pattern(100, 7));
        const live = (await engram.stats()).chunks;
        // Starts staging; the small write below commits while the big one still encodes.
        const big = engram.writeFile('/a.bin', pattern(5 * MiB, 8), { expectedVersion: version });
        await engram.writeFile('/a.bin', pattern(200, 9));
        await assert.rejects(big, (error) => isEmbrError(error, 'VERSION_MISMATCH'));
        assert.ok((await engram.verify()).ok);
        const staged = store.read((reader) => reader.totals().chunks) - live - 1;
        assert.ok(staged > 0, 'the refused write had staged chunks');
        // Within the grace (a stream in progress elsewhere could still claim them) they stay.
        const now = nowNs();
        const current = head(store);
        assert.equal(store.collectGarbage({ pinnedCommits: [], retainAfterCommit: current, stagedGraceAfterNs: now - 3_600_000_000_000n }).freedChunks, 1);
        assert.equal(store.collectGarbage({ pinnedCommits: [], retainAfterCommit: current, stagedGraceAfterNs: now }).freedChunks, staged);
        assert.equal((await engram.stats()).chunks, 1);
        assert.ok((await engram.verify()).ok);
      }));

    it('folds the similarity-index log in a commit of its own right after the commit that crossed the mark', () =>
      using(
        make,
        async ({ engram, store }) => {
          // 64-byte chunks: the mark (changed chunks) is crossed by a few MiB.
          const perFile = Math.ceil(INDEX_FOLD_DUE_CHUNKS / 3) * 64;
          const before = head(store);
          let crossed = -1;
          for (let file = 0; file < 4 && crossed < 0; file += 1) {
            const version = await engram.writeFile(`/f${file}.bin`, pattern(perFile, 20 + file));
            // No macrotask ran yet: a fold cannot have committed after this write.
            assert.equal(head(store), version);
            await new Promise((resolve) => setImmediate(resolve));
            if (head(store) > version) crossed = version;
          }
          assert.ok(crossed > 0, 'a fold commit followed one of the writes');
          const kinds = kindsSince(store, before);
          assert.equal(kinds.filter((kind) => kind === 'index-checkpoint').length, 1, kinds.join(','));
          assert.equal(kindsSince(store, crossed)[0], 'index-checkpoint');
          assert.ok(store.read((reader) => reader.commitInfo(crossed)?.kind) !== 'index-checkpoint');
          // The folded index still answers: the third file's own bytes find it first.
          const result = await engram.query(pattern(perFile, 22).subarray(0, 4096), { k: 1 });
          assert.equal(result.matches[0]?.path, '/f2.bin');
          assert.ok((await engram.verify()).ok);
        },
        64,
      ));
  });
}
