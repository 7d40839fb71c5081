/**
 * The store conformance suite: one set of behaviours every {@link Store} implementation must show
 * (STYLE habit 2). Each implementation's test file calls {@link runStoreConformance} with a
 * factory; a future PostgreSQL or S3 store runs the same suite.
 *
 * @example
 * ```ts
 * runStoreConformance('memory', () => ({ store: createMemoryStore({ profile: 'positional', chunkBytes: 4096 }), cleanup: () => {} }));
 * ```
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { InodeData, NewChunk, PreparedPack, Store, StoreWriter } from './api.js';
import { LIVE, ROOT_INO } from './api.js';
import { preparePacks } from './pack.js';

/** A store under test and how to dispose of it. */
export interface StoreFixture {
  store: Store;
  cleanup(): void;
}

/** Makes a fresh, writable store (profile 'positional', chunkBytes 4096) per test. */
export type StoreFactory = () => StoreFixture | Promise<StoreFixture>;

function sha(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** A chunk whose payload is its bytes reversed (the store never interprets payloads). */
function chunk(text: string): NewChunk {
  const bytes = new TextEncoder().encode(text);
  return {
    sha256: sha(bytes),
    byteLength: bytes.length,
    payload: bytes.slice().reverse(),
    vectorCorrectBytes: bytes.length,
    correctionBytes: 0,
    fingerprint: Uint8Array.of(1, 2, 3, bytes.length & 0xff),
  };
}

function fileData(size: number, change: InodeData['change'] = 'create'): InodeData {
  return {
    type: 'file',
    mode: 0o644,
    uid: 1,
    gid: 2,
    size,
    nlink: 1,
    atimeNs: 1_700_000_000_123_456_789n,
    mtimeNs: 1_700_000_000_123_456_789n,
    ctimeNs: 1_700_000_000_123_456_789n,
    birthtimeNs: 1_700_000_000_123_456_789n,
    symlinkTarget: null,
    contentSha256: null,
    change,
  };
}

const start = (kind = 'test') => ({ kind, timeNs: 1_800_000_000_000_000_000n });

async function withStore(factory: StoreFactory, body: (store: Store) => void): Promise<void> {
  const fixture = await factory();
  try {
    body(fixture.store);
  } finally {
    fixture.store.close();
    fixture.cleanup();
  }
}

function putOnePack(writer: StoreWriter, chunks: NewChunk[]): number[] {
  const packs: PreparedPack[] = preparePacks(chunks);
  return packs.flatMap((pack) => writer.putPack(pack));
}

/**
 * Registers the conformance tests for one store implementation.
 *
 * @example
 * ```ts
 * runStoreConformance('sqlite', async () => makeSqliteFixture());
 * ```
 */
export function runStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    it('holds only the root directory at commit 1 when fresh', () =>
      withStore(factory, (store) => {
        store.read((reader) => {
          assert.equal(reader.headCommit(), 1);
          const root = reader.inode(ROOT_INO, LIVE);
          assert.equal(root?.type, 'directory');
          assert.equal(root?.fromCommit, 1);
          assert.equal(root?.toCommit, null);
          assert.deepEqual(reader.listDirectory(ROOT_INO, LIVE), []);
          assert.equal(reader.info.profile, 'positional');
          assert.equal(reader.info.chunkBytes, 4096);
        });
      }));

    it('numbers commits 2, 3, ... and records their kind and time', () =>
      withStore(factory, (store) => {
        const first = store.write(start('alpha'), (writer) => writer.commit);
        const second = store.write(start('beta'), (writer) => writer.commit);
        assert.equal(first, 2);
        assert.equal(second, 3);
        store.read((reader) => {
          assert.equal(reader.headCommit(), 3);
          assert.deepEqual(reader.commitInfo(3), { commit: 3, timeNs: 1_800_000_000_000_000_000n, kind: 'beta' });
          assert.equal(reader.commitInfo(99), undefined);
        });
      }));

    it('keeps every inode version visible at its own commits and the newest live', () =>
      withStore(factory, (store) => {
        const ino = store.write(start(), (writer) => {
          const allocated = writer.allocateIno();
          writer.putInode(allocated, fileData(10));
          return allocated;
        });
        store.write(start(), (writer) => writer.putInode(ino, fileData(20, 'write')));
        const third = store.write(start(), (writer) => {
          writer.putInode(ino, fileData(30, 'write'));
          // A second change in the same commit replaces the first: one version per commit.
          writer.putInode(ino, fileData(31, 'write'));
          return writer.commit;
        });
        store.read((reader) => {
          assert.equal(reader.inode(ino, 1), undefined);
          assert.equal(reader.inode(ino, 2)?.size, 10);
          assert.equal(reader.inode(ino, 3)?.size, 20);
          assert.equal(reader.inode(ino, LIVE)?.size, 31);
          assert.equal(reader.inode(ino, LIVE)?.fromCommit, third);
          assert.equal(reader.inode(ino, LIVE)?.atimeNs, 1_700_000_000_123_456_789n);
          assert.deepEqual(
            reader.inodeVersions(ino).map((row) => [row.fromCommit, row.toCommit, row.size]),
            [
              [2, 3, 10],
              [3, 4, 20],
              [4, null, 31],
            ],
          );
        });
        store.write(start(), (writer) => writer.removeInode(ino));
        store.read((reader) => {
          assert.equal(reader.inode(ino, LIVE), undefined);
          assert.equal(reader.inode(ino, 4)?.size, 31);
        });
      }));

    it('allocates inode numbers that are never reused', () =>
      withStore(factory, (store) => {
        const first = store.write(start(), (writer) => writer.allocateIno());
        const second = store.write(start(), (writer) => writer.allocateIno());
        assert.ok(first > ROOT_INO);
        assert.ok(second > first);
      }));

    it('lists, looks up, replaces and removes directory entries with history', () =>
      withStore(factory, (store) => {
        store.write(start(), (writer) => {
          writer.putDentry(ROOT_INO, 'b', 11);
          writer.putDentry(ROOT_INO, 'a', 10);
          writer.putDentry(ROOT_INO, 'é', 12);
        });
        store.write(start(), (writer) => writer.putDentry(ROOT_INO, 'a', 13));
        store.write(start(), (writer) => writer.removeDentry(ROOT_INO, 'b'));
        store.read((reader) => {
          assert.deepEqual(reader.listDirectory(ROOT_INO, LIVE), [
            { name: 'a', childIno: 13 },
            { name: 'é', childIno: 12 },
          ]);
          assert.deepEqual(reader.listDirectory(ROOT_INO, 2), [
            { name: 'a', childIno: 10 },
            { name: 'b', childIno: 11 },
            { name: 'é', childIno: 12 },
          ]);
          assert.equal(reader.lookup(ROOT_INO, 'a', 2), 10);
          assert.equal(reader.lookup(ROOT_INO, 'a', LIVE), 13);
          assert.equal(reader.lookup(ROOT_INO, 'b', LIVE), undefined);
          assert.deepEqual(
            reader.dentryHistory(ROOT_INO, 'a').map((row) => [row.childIno, row.fromCommit, row.toCommit]),
            [
              [10, 2, 3],
              [13, 3, null],
            ],
          );
          assert.deepEqual(reader.dentriesOf(12, LIVE).map((row) => row.name), ['é']);
          assert.deepEqual(reader.dentriesOf(11, LIVE), []);
        });
      }));

    it('stores a chunk once per SHA-256 and gives its payload back', () =>
      withStore(factory, (store) => {
        const [a, b] = [chunk('alpha'), chunk('bravo')];
        const ids = store.write(start(), (writer) => putOnePack(writer, [a, b]));
        const again = store.write(start(), (writer) => putOnePack(writer, [chunk('alpha'), chunk('charlie')]));
        assert.equal(new Set(ids).size, 2);
        assert.equal(again[0], ids[0]);
        assert.notEqual(again[1], ids[1]);
        store.read((reader) => {
          assert.equal(reader.chunkIdBySha256(a.sha256), ids[0]);
          assert.equal(reader.chunkIdBySha256(sha(Uint8Array.of(0))), undefined);
          const info = reader.chunkInfo(ids[1]);
          assert.ok(info !== undefined);
          assert.deepEqual([...info.sha256], [...b.sha256]);
          assert.equal(info.byteLength, 5);
          assert.deepEqual([...reader.chunkPayload(info)], [...b.payload]);
          assert.deepEqual([...(reader.chunkFingerprint(ids[1]) ?? [])], [...b.fingerprint]);
          assert.deepEqual(reader.allChunkIds(), [...new Set([...ids, ...again])].sort((x, y) => x - y));
        });
      }));

    it('keeps chunk references per commit and closes only the range asked for', () =>
      withStore(factory, (store) => {
        const ids = store.write(start(), (writer) => putOnePack(writer, [chunk('c0'), chunk('c1'), chunk('c2'), chunk('c3')]));
        const ino = 50;
        store.write(start(), (writer) => writer.insertChunkRefs(ino, 0, ids.slice(0, 3)));
        const closed = store.write(start(), (writer) => {
          const ended = writer.closeChunkRefs(ino, 1, 2);
          writer.insertChunkRefs(ino, 1, [ids[3]]);
          return ended;
        });
        assert.equal(closed, 1);
        store.read((reader) => {
          assert.deepEqual(reader.chunkRefs(ino, 3, 0, 10).map((ref) => ref.chunkId), ids.slice(0, 3));
          assert.deepEqual(reader.chunkRefs(ino, LIVE, 0, 10).map((ref) => ref.chunkId), [ids[0], ids[3], ids[2]]);
          assert.deepEqual(reader.chunkRefs(ino, LIVE, 1, 2).map((ref) => ref.chunkIndex), [1]);
          assert.equal(reader.chunkRefs(ino, LIVE, 2, 3)[0].chunk?.chunkId, ids[2]);
          // Placements are the refs without their hashes.
          const placed = (at: number): unknown[] =>
            reader.chunkRefs(ino, at, 0, 10).map((ref) => ({
              chunkIndex: ref.chunkIndex,
              chunkId: ref.chunkId,
              chunk:
                ref.chunk === undefined
                  ? undefined
                  : { chunkId: ref.chunk.chunkId, byteLength: ref.chunk.byteLength, packId: ref.chunk.packId, packOffset: ref.chunk.packOffset, payloadBytes: ref.chunk.payloadBytes },
            }));
          for (const at of [3, LIVE]) {
            const placements = reader.chunkPlacements(ino, at, 0, 10).map((placement) => ({ ...placement, chunk: placement.chunk === undefined ? undefined : { chunkId: placement.chunk.chunkId, byteLength: placement.chunk.byteLength, packId: placement.chunk.packId, packOffset: placement.chunk.packOffset, payloadBytes: placement.chunk.payloadBytes } }));
            assert.deepEqual(placements, placed(at));
          }
          assert.deepEqual([...reader.chunkPayload(reader.chunkPlacements(ino, LIVE, 1, 2)[0].chunk!)], [...chunk('c3').payload]);
        });
        // Refs begun and ended in one commit leave no trace.
        store.write(start(), (writer) => {
          writer.insertChunkRefs(ino, 5, [ids[0]]);
          assert.equal(writer.closeChunkRefs(ino, 5, 6), 1);
          assert.equal(writer.closeChunkRefs(ino, 5, 6), 0);
        });
        store.read((reader) => assert.deepEqual(reader.chunkRefs(ino, LIVE, 5, 6), []));
      }));

    it('versions extended attributes', () =>
      withStore(factory, (store) => {
        store.write(start(), (writer) => {
          writer.setXattr(7, 'user.b', Uint8Array.of(2));
          writer.setXattr(7, 'user.a', Uint8Array.of(1));
        });
        store.write(start(), (writer) => {
          writer.setXattr(7, 'user.a', Uint8Array.of(9));
          writer.removeXattr(7, 'user.b');
        });
        store.read((reader) => {
          assert.deepEqual(reader.xattrNames(7, 2), ['user.a', 'user.b']);
          assert.deepEqual(reader.xattrNames(7, LIVE), ['user.a']);
          assert.deepEqual([...(reader.xattr(7, 'user.a', 2) ?? [])], [1]);
          assert.deepEqual([...(reader.xattr(7, 'user.a', LIVE) ?? [])], [9]);
          assert.equal(reader.xattr(7, 'user.b', LIVE), undefined);
        });
      }));

    it('applies nothing of a write whose body throws', () =>
      withStore(factory, (store) => {
        assert.throws(
          () =>
            store.write(start(), (writer) => {
              writer.putInode(writer.allocateIno(), fileData(1));
              writer.putDentry(ROOT_INO, 'x', 99);
              putOnePack(writer, [chunk('lost')]);
              writer.putSnapshot({ name: 's', commit: writer.commit, createdNs: 1n });
              throw new Error('boom');
            }),
          /boom/,
        );
        store.read((reader) => {
          assert.equal(reader.headCommit(), 1);
          assert.equal(reader.lookup(ROOT_INO, 'x', LIVE), undefined);
          assert.equal(reader.chunkIdBySha256(chunk('lost').sha256), undefined);
          assert.deepEqual(reader.snapshots(), []);
        });
        const ino = store.write(start(), (writer) => writer.allocateIno());
        assert.equal(ino, ROOT_INO + 1);
      }));

    it('shows a speculative commit to its body only', () =>
      withStore(factory, (store) => {
        const seen = store.speculate(start(), (writer) => {
          writer.putDentry(ROOT_INO, 'ghost', 5);
          const [id] = putOnePack(writer, [chunk('ghost')]);
          return { ino: writer.lookup(ROOT_INO, 'ghost', LIVE), payload: [...writer.chunkPayload(writer.chunkInfo(id)!)] };
        });
        assert.equal(seen.ino, 5);
        assert.deepEqual(seen.payload, [...chunk('ghost').payload]);
        store.read((reader) => {
          assert.equal(reader.lookup(ROOT_INO, 'ghost', LIVE), undefined);
          assert.equal(reader.headCommit(), 1);
          assert.equal(reader.chunkIdBySha256(chunk('ghost').sha256), undefined);
        });
        // A real pack written after the rollback reads back its own bytes, not the ghost's.
        const [id] = store.write(start(), (writer) => putOnePack(writer, [chunk('real')]));
        store.read((reader) => assert.deepEqual([...reader.chunkPayload(reader.chunkInfo(id)!)], [...chunk('real').payload]));
      }));

    it('keeps snapshots, index rows and orphans', () =>
      withStore(factory, (store) => {
        store.write(start(), (writer) => {
          writer.putSnapshot({ name: 'b', commit: writer.commit, createdNs: 5n });
          writer.putSnapshot({ name: 'a', commit: writer.commit, createdNs: 5n });
          writer.putIndexRow('meta', Uint8Array.of(4));
          writer.putIndexRow('gone', Uint8Array.of(5));
          writer.deleteIndexRow('gone');
          writer.putInode(30, { ...fileData(0), nlink: 0 });
          writer.setOrphanOwner(30, 'host:1:token');
          writer.putInode(31, { ...fileData(0), nlink: 0 });
          writer.setOrphanOwner(31, 'host:2:token');
        });
        store.write(start(), (writer) => writer.removeInode(31));
        store.write(start(), (writer) => writer.removeSnapshot('b'));
        store.read((reader) => {
          assert.deepEqual(reader.snapshots(), [{ name: 'a', commit: 2, createdNs: 5n }]);
          assert.equal(reader.headCommit(), 4);
          assert.deepEqual(reader.snapshot('a'), { name: 'a', commit: 2, createdNs: 5n });
          assert.equal(reader.snapshot('b'), undefined);
          assert.deepEqual([...(reader.indexRow('meta') ?? [])], [4]);
          assert.equal(reader.indexRow('gone'), undefined);
          assert.deepEqual(reader.orphanInodes(), [30]);
          assert.equal(reader.orphanOwner(30), 'host:1:token');
          assert.equal(reader.orphanOwner(31), undefined);
        });
      }));

    it('counts live files, directories, symlinks and chunk bytes', () =>
      withStore(factory, (store) => {
        store.write(start(), (writer) => {
          writer.putInode(20, fileData(100));
          writer.putInode(21, { ...fileData(5), type: 'symlink', symlinkTarget: 'abcde' });
          writer.putInode(22, { ...fileData(0), type: 'directory', nlink: 2 });
          writer.putInode(23, { ...fileData(7), nlink: 0 });
          putOnePack(writer, [chunk('one'), chunk('three')]);
        });
        store.read((reader) => {
          const totals = reader.totals();
          assert.equal(totals.files, 1);
          assert.equal(totals.symlinks, 1);
          assert.equal(totals.directories, 2);
          assert.equal(totals.logicalBytes, 100);
          assert.equal(totals.chunks, 2);
          assert.equal(totals.uniqueChunkBytes, 8);
          assert.equal(totals.vectorCorrectBytes, 8);
          assert.equal(totals.commits, 2);
          assert.ok(totals.storedBytes > 0);
        });
      }));

    it('frees exactly the rows and chunks outside live, pinned and retained commits', () =>
      withStore(factory, (store) => {
        const [a, b, c, d] = store.write(start(), (writer) => putOnePack(writer, [chunk('a'), chunk('b'), chunk('c'), chunk('d')]));
        store.write(start(), (writer) => {
          writer.putInode(40, fileData(1));
          writer.insertChunkRefs(40, 0, [a]);
          writer.putInode(41, fileData(1));
          writer.insertChunkRefs(41, 0, [b]);
        }); // commit 3
        const pinned = store.write(start(), (writer) => {
          writer.putInode(40, fileData(1, 'write'));
          writer.closeChunkRefs(40, 0, 1);
          writer.insertChunkRefs(40, 0, [c]);
          return writer.commit;
        }); // commit 4: a is only reachable at commit 3
        store.write(start(), (writer) => {
          writer.putInode(41, fileData(1, 'write'));
          writer.closeChunkRefs(41, 0, 1);
          writer.insertChunkRefs(41, 0, [d]);
        }); // commit 5: b is reachable at commits 3 and 4 (pinned)
        const head = store.read((reader) => reader.headCommit());
        const report = store.collectGarbage({ pinnedCommits: [pinned], retainAfterCommit: head, stagedGraceAfterNs: 0n });
        store.read((reader) => {
          assert.equal(reader.chunkInfo(a), undefined);
          assert.ok(reader.chunkInfo(b) !== undefined);
          assert.ok(reader.chunkInfo(c) !== undefined);
          assert.ok(reader.chunkInfo(d) !== undefined);
          assert.deepEqual(reader.allChunkIds(), [b, c, d].sort((x, y) => x - y));
          assert.equal(reader.inode(40, 3), undefined);
          assert.equal(reader.inode(41, pinned)?.fromCommit, 3);
          assert.deepEqual(reader.chunkRefs(41, pinned, 0, 1).map((ref) => ref.chunkId), [b]);
          // Payloads of the surviving chunks still read right after the pack was rewritten.
          assert.deepEqual([...reader.chunkPayload(reader.chunkInfo(c)!)], [...chunk('c').payload]);
          assert.deepEqual([...reader.chunkPayload(reader.chunkInfo(d)!)], [...chunk('d').payload]);
        });
        assert.equal(report.freedChunks, 1);
        assert.equal(report.freedVersions, 1);
        // Without the pin, b goes too; with retention covering everything, nothing would.
        const second = store.collectGarbage({ pinnedCommits: [], retainAfterCommit: head, stagedGraceAfterNs: 0n });
        assert.equal(second.freedChunks, 1);
        store.read((reader) => assert.deepEqual(reader.allChunkIds(), [c, d].sort((x, y) => x - y)));
      }));

    it('keeps rows that history retention still covers and chunks a snapshot pins', () =>
      withStore(factory, (store) => {
        const [a, b] = store.write(start(), (writer) => putOnePack(writer, [chunk('ra'), chunk('rb')]));
        store.write(start(), (writer) => {
          writer.putInode(60, fileData(1));
          writer.insertChunkRefs(60, 0, [a]);
          writer.putSnapshot({ name: 'keep', commit: writer.commit, createdNs: 1n });
        }); // 3
        store.write(start(), (writer) => {
          writer.closeChunkRefs(60, 0, 1);
          writer.insertChunkRefs(60, 0, [b]);
          writer.putInode(60, fileData(1, 'write'));
        }); // 4
        const report = store.collectGarbage({ pinnedCommits: [], retainAfterCommit: 2, stagedGraceAfterNs: 0n });
        assert.equal(report.freedChunks, 0);
        store.read((reader) => assert.deepEqual(reader.chunkRefs(60, 3, 0, 1).map((ref) => ref.chunkId), [a]));
        store.write(start(), (writer) => writer.removeSnapshot('keep'));
        const after = store.collectGarbage({ pinnedCommits: [], retainAfterCommit: 5, stagedGraceAfterNs: 0n });
        assert.equal(after.freedChunks, 1);
        store.read((reader) => assert.deepEqual(reader.allChunkIds(), [b]));
      }));

    it('spares unreferenced chunks of a recent stage commit', () =>
      withStore(factory, (store) => {
        const [staged] = store.write({ kind: 'stage', timeNs: 1_000n }, (writer) => putOnePack(writer, [chunk('staged')]));
        const [loose] = store.write({ kind: 'write', timeNs: 1_000n }, (writer) => putOnePack(writer, [chunk('loose')]));
        const report = store.collectGarbage({ pinnedCommits: [], retainAfterCommit: 10, stagedGraceAfterNs: 999n });
        assert.equal(report.freedChunks, 1);
        store.read((reader) => {
          assert.ok(reader.chunkInfo(staged) !== undefined);
          assert.equal(reader.chunkInfo(loose), undefined);
        });
        store.collectGarbage({ pinnedCommits: [], retainAfterCommit: 10, stagedGraceAfterNs: 1_000n });
        store.read((reader) => assert.equal(reader.chunkInfo(staged), undefined));
        // A staged chunk claimed by a later commit loses the grace once unreferenced.
        const [claimed] = store.write({ kind: 'stage', timeNs: 2_000n }, (writer) => putOnePack(writer, [chunk('claimed')]));
        const claimedStage = store.read((reader) => reader.headCommit());
        store.write({ kind: 'write', timeNs: 2_000n }, (writer) => writer.claimStages([claimedStage]));
        // A claim inside a rolled-back commit claims nothing.
        const [kept] = store.write({ kind: 'stage', timeNs: 3_000n }, (writer) => putOnePack(writer, [chunk('kept')]));
        const keptStage = store.read((reader) => reader.headCommit());
        assert.throws(() =>
          store.write({ kind: 'write', timeNs: 3_000n }, (writer) => {
            writer.claimStages([keptStage]);
            throw new Error('rolled back');
          }),
        );
        store.collectGarbage({ pinnedCommits: [], retainAfterCommit: 10, stagedGraceAfterNs: 1_999n });
        store.read((reader) => {
          assert.equal(reader.chunkInfo(claimed), undefined);
          assert.ok(reader.chunkInfo(kept) !== undefined);
        });
      }));
  });
}
