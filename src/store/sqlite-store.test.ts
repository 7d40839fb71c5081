import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isEmbrError } from '../errors.js';
import { LIVE, ROOT_INO } from './api.js';
import { runStoreConformance } from './conformance.js';
import { createMemoryStore } from './memory-store.js';
import { MAX_REF_RUN, openSqliteStore, rangeStatementSql, translateSqliteError } from './sqlite-store.js';
import type { Store } from './api.js';
import type { NewChunk } from './api.js';
import { batchPacks, preparePacks } from './pack.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-sqlite-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `store-${(counter += 1)}.engram`);
const create = { profile: 'positional' as const, chunkBytes: 4096, timeNs: 5n };

runStoreConformance('sqlite', () => {
  const file = freshFile();
  return { store: openSqliteStore(file, { create }), cleanup: () => rmSync(file, { force: true }) };
});

function expectCode(code: string, body: () => unknown): void {
  assert.throws(body, (error: unknown) => isEmbrError(error) && error.code === code);
}

describe('sqlite store files', () => {
  it('refuses a missing file unless asked to create it', () => {
    expectCode('NOT_FOUND', () => openSqliteStore(join(root, 'missing.engram')));
  });

  it('keeps commits across close and reopen', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    store.write({ kind: 'test', timeNs: 9n }, (writer) => writer.putDentry(ROOT_INO, 'kept', 77));
    store.close();
    const reopened = openSqliteStore(file);
    reopened.read((reader) => {
      assert.equal(reader.lookup(ROOT_INO, 'kept', LIVE), 77);
      assert.equal(reader.headCommit(), 2);
      assert.equal(reader.info.createdNs, 5n);
    });
    reopened.close();
  });

  it('keeps a non-durable commit once a durable one follows, across reopen', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    store.write({ kind: 'stage', timeNs: 1n, durable: false }, (writer) => writer.putDentry(ROOT_INO, 'staged', 5));
    store.write({ kind: 'write', timeNs: 2n }, (writer) => writer.putDentry(ROOT_INO, 'final', 6));
    store.close();
    const reopened = openSqliteStore(file);
    reopened.read((reader) => {
      assert.equal(reader.lookup(ROOT_INO, 'staged', LIVE), 5);
      assert.equal(reader.lookup(ROOT_INO, 'final', LIVE), 6);
    });
    reopened.close();
  });

  it('syncs commits made under normal durability, with and without a WAL file, and read-only', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create, durability: 'normal' });
    store.write({ kind: 'test', timeNs: 1n }, (writer) => writer.putDentry(ROOT_INO, 'synced', 8));
    assert.ok(existsSync(file + '-wal'));
    store.sync();
    store.close();
    // close checkpoints and removes the WAL: a sync then has only the database file to flush.
    assert.equal(existsSync(file + '-wal'), false);
    const reader = openSqliteStore(file, { readOnly: true });
    reader.sync();
    reader.read((view) => assert.equal(view.lookup(ROOT_INO, 'synced', LIVE), 8));
    reader.close();
    reader.sync();
  });

  it('syncs off the thread with syncAsync, while commits go on, and not at all once closed or read-only', async () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create, durability: 'normal' });
    store.write({ kind: 'test', timeNs: 1n }, (writer) => writer.putDentry(ROOT_INO, 'first', 8));
    const pending = store.syncAsync();
    // A commit while the fsyncs run on the thread pool.
    store.write({ kind: 'test', timeNs: 2n }, (writer) => writer.putDentry(ROOT_INO, 'second', 9));
    await pending;
    await store.syncAsync();
    store.read((view) => assert.deepEqual([view.lookup(ROOT_INO, 'first', LIVE), view.lookup(ROOT_INO, 'second', LIVE)], [8, 9]));
    store.close();
    await store.syncAsync();
    const reader = openSqliteStore(file, { readOnly: true });
    await reader.syncAsync();
    reader.close();
    // The database file itself is required (only a missing WAL is skipped).
    const doomedFile = freshFile();
    const doomed = openSqliteStore(doomedFile, { create, durability: 'normal' });
    doomed.write({ kind: 'test', timeNs: 1n }, (writer) => writer.putDentry(ROOT_INO, 'x', 8));
    rmSync(doomedFile, { force: true });
    await assert.rejects(doomed.syncAsync(), (error: NodeJS.ErrnoException) => error.code === 'ENOENT');
    doomed.close();
  });

  it('gives free pages back to the file system when it closes', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    store.write({ kind: 'test', timeNs: 1n }, (writer) => writer.putIndexRow('big', new Uint8Array(3 << 20).fill(7)));
    store.write({ kind: 'test', timeNs: 2n }, (writer) => writer.deleteIndexRow('big'));
    store.close();
    // 3 MiB were written then freed: the closed file is back near its empty size.
    assert.ok(statSync(file).size < 1 << 20, `${statSync(file).size} bytes`);
  });

  it('refuses writes when opened read-only', () => {
    const file = freshFile();
    openSqliteStore(file, { create }).close();
    const store = openSqliteStore(file, { readOnly: true });
    expectCode('READ_ONLY', () => store.write({ kind: 'test', timeNs: 1n }, () => undefined));
    assert.equal(store.read((reader) => reader.headCommit()), 1);
    store.close();
  });

  it('says NOT_ENGRAM for an empty, truncated, random or foreign file', () => {
    const empty = freshFile();
    writeFileSync(empty, '');
    expectCode('NOT_ENGRAM', () => openSqliteStore(empty));
    const random = freshFile();
    writeFileSync(random, Buffer.from(Array.from({ length: 8192 }, (_, index) => (index * 7919) & 0xff)));
    expectCode('NOT_ENGRAM', () => openSqliteStore(random));
    const foreign = freshFile();
    const db = new Database(foreign);
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    db.close();
    expectCode('NOT_ENGRAM', () => openSqliteStore(foreign));
    const good = freshFile();
    openSqliteStore(good, { create }).close();
    const truncated = freshFile();
    writeFileSync(truncated, readFileSync(good).subarray(0, 200));
    expectCode('NOT_ENGRAM', () => openSqliteStore(truncated));
  });

  it('says NOT_ENGRAM for a newer schema version', () => {
    const file = freshFile();
    openSqliteStore(file, { create }).close();
    const db = new Database(file);
    db.pragma('user_version = 999');
    db.close();
    expectCode('NOT_ENGRAM', () => openSqliteStore(file));
  });

  it('says CORRUPT (never crashes) when pages are damaged', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    for (let index = 0; index < 200; index += 1) {
      store.write({ kind: 'test', timeNs: 1n }, (writer) => writer.putDentry(ROOT_INO, `entry-${index}`, index + 100));
    }
    store.close();
    const db = new Database(file);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const bytes = readFileSync(file);
    // Zero every page after the first (the header page stays valid, so the file still looks like ours).
    bytes.fill(0xa5, 4096);
    writeFileSync(file, bytes);
    if (existsSync(`${file}-wal`)) rmSync(`${file}-wal`);
    assert.throws(
      () => {
        const damaged = openSqliteStore(file);
        try {
          damaged.read((reader) => reader.listDirectory(ROOT_INO, LIVE));
        } finally {
          damaged.close();
        }
      },
      (error: unknown) => isEmbrError(error) && (error.code === 'CORRUPT' || error.code === 'NOT_ENGRAM'),
    );
  });

  it('maps SQLite error codes to house error codes', () => {
    const sqliteError = (code: string): Error => Object.assign(new Error(code), { code });
    const codeOf = (code: string): unknown => (translateSqliteError(sqliteError(code), 'f') as { code?: string }).code;
    assert.equal(codeOf('SQLITE_FULL'), 'NO_SPACE');
    assert.equal(codeOf('SQLITE_IOERR_WRITE'), 'IO');
    assert.equal(codeOf('SQLITE_BUSY'), 'BUSY');
    assert.equal(codeOf('SQLITE_CORRUPT'), 'CORRUPT');
    assert.equal(codeOf('SQLITE_NOTADB'), 'NOT_ENGRAM');
    assert.equal(codeOf('SQLITE_READONLY'), 'READ_ONLY');
    assert.equal(codeOf('SQLITE_ERROR'), 'CORRUPT');
    const plain = new Error('plain');
    assert.equal(translateSqliteError(plain, 'f'), plain);
  });
});

describe('sqlite store payload views', () => {
  /** A compressible payload (so its pack is a zstd frame) that differs per index. */
  function payloadChunk(index: number): NewChunk {
    const payload = new TextEncoder().encode(`payload ${index} `.repeat(300));
    return { sha256: new Uint8Array(32).fill(index & 0xff), byteLength: payload.length, payload, vectorCorrectBytes: 0, correctionBytes: 0, fingerprint: Uint8Array.of(1) };
  }

  it('views give the same bytes as chunkPayload for every chunk, in any order, and refuse a damaged pack', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    const chunks = Array.from({ length: 150 }, (_, index) => payloadChunk(index));
    const ids = store.write({ kind: 'test', timeNs: 9n }, (writer) => preparePacks(chunks).flatMap((pack) => writer.putPack(pack)));
    const packIds = new Set<number>();
    store.read((reader) => {
      const infos = ids.map((id) => reader.chunkInfo(id)!);
      for (const info of infos) packIds.add(info.packId);
      assert.ok(packIds.size >= 3, `several packs (${packIds.size})`);
      // In order (one unpack per pack), backwards, and jumping between packs (the scratch reused).
      const orders = [infos, [...infos].reverse(), infos.map((_, index) => infos[(index * 37) % infos.length])];
      for (const order of orders) {
        for (const info of order) {
          const expected = chunks[ids.indexOf(info.chunkId)].payload;
          assert.deepEqual(Buffer.from(reader.chunkPayloadView(info)), Buffer.from(expected));
        }
      }
    });
    store.close();
    const db = new Database(file);
    const [packId] = [...packIds];
    const stored = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(packId) as Buffer;
    assert.equal(stored[0], 1, 'the pack is a zstd frame');
    stored[stored.length >> 1] ^= 0x55;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(stored, packId);
    db.close();
    const damaged = openSqliteStore(file);
    damaged.read((reader) => {
      const victim = ids.map((id) => reader.chunkInfo(id)!).find((info) => info.packId === packId)!;
      const other = ids.map((id) => reader.chunkInfo(id)!).find((info) => info.packId !== packId)!;
      assert.deepEqual(Buffer.from(reader.chunkPayloadView(other)), Buffer.from(chunks[ids.indexOf(other.chunkId)].payload));
      expectCode('CORRUPT', () => reader.chunkPayloadView(victim));
      // A failed unpack leaves no stale bytes behind under either id.
      expectCode('CORRUPT', () => reader.chunkPayloadView(victim));
      assert.deepEqual(Buffer.from(reader.chunkPayloadView(other)), Buffer.from(chunks[ids.indexOf(other.chunkId)].payload));
    });
    damaged.close();
  });
});

describe('sqlite store payloads read alone', () => {
  /** An incompressible payload (its pack stays uncompressed) that differs per index. */
  function randomChunk(index: number): NewChunk {
    const payload = new Uint8Array(4096);
    for (let block = 0; block < payload.length / 32; block += 1) payload.set(createHash('sha256').update(`${index}:${block}`).digest(), block * 32);
    return { sha256: new Uint8Array(32).fill(index & 0xff), byteLength: payload.length, payload, vectorCorrectBytes: 0, correctionBytes: 0, fingerprint: Uint8Array.of(1) };
  }
  function textChunk(index: number): NewChunk {
    const payload = new TextEncoder().encode(`text ${index} `.repeat(300));
    return { sha256: new Uint8Array(32).fill(index & 0xff), byteLength: payload.length, payload, vectorCorrectBytes: 0, correctionBytes: 0, fingerprint: Uint8Array.of(1) };
  }

  it('give the same bytes as chunkPayload from uncompressed and zstd packs, in any order, and CORRUPT for a missing pack', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    const chunks = [...Array.from({ length: 70 }, (_, index) => randomChunk(index)), ...Array.from({ length: 70 }, (_, index) => textChunk(index + 70))];
    const ids = store.write({ kind: 'test', timeNs: 9n }, (writer) => [...preparePacks(chunks.slice(0, 70)), ...preparePacks(chunks.slice(70))].flatMap((pack) => writer.putPack(pack)));
    store.close();
    const db = new Database(file);
    const formats = new Set((db.prepare('SELECT data FROM packs').pluck().all() as Buffer[]).map((data) => data[0]));
    assert.deepEqual([...formats].sort(), [0, 1], 'both uncompressed and zstd packs');
    db.close();
    const reopened = openSqliteStore(file);
    const infos = reopened.read((reader) => ids.map((id) => reader.chunkInfo(id)!));
    reopened.read((reader) => {
      assert.ok(reader.chunkPayloadAlone !== undefined);
      const orders = [infos, [...infos].reverse(), infos.map((_, index) => infos[(index * 37) % infos.length])];
      for (const order of orders) {
        for (const info of order) {
          const expected = chunks[ids.indexOf(info.chunkId)].payload;
          assert.deepEqual(Buffer.from(reader.chunkPayloadAlone!(info)), Buffer.from(expected), `chunk ${info.chunkId}`);
          // Interleaved with views of another pack: neither disturbs the other.
          const other = infos[(infos.indexOf(info) + 50) % infos.length];
          assert.deepEqual(Buffer.from(reader.chunkPayloadView(other)), Buffer.from(chunks[ids.indexOf(other.chunkId)].payload));
        }
      }
      const rawInfo = infos[0];
      expectCode('CORRUPT', () => reader.chunkPayloadAlone!({ ...rawInfo, packId: 999_999 }));
      expectCode('CORRUPT', () => reader.chunkPayloadAlone!({ ...rawInfo, packOffset: 200_000 }));
    });
    reopened.close();
  });
});

describe('sqlite store costs', () => {
  it('finds and replaces the live version of an inode without walking its old versions when it has thousands', () => {
    // A directory gains one version per entry created in it; creates must not slow down with it.
    const file = freshFile();
    const store = openSqliteStore(file, { create, durability: 'normal' });
    try {
      const bump = (): void =>
        store.write({ kind: 'test', timeNs: 9n }, (writer) => {
          const row = writer.inode(ROOT_INO, LIVE);
          assert.ok(row !== undefined);
          writer.putInode(ROOT_INO, { ...row, size: row.size + 1 });
        });
      // The live lookup and the replace (close + insert) of the statements a create runs, timed
      // inside one transaction each so commit costs do not hide them.
      const timeMs = (): number => {
        const start = process.hrtime.bigint();
        store.read((reader) => {
          const previous = Math.max(1, reader.headCommit() - 1);
          for (let lookup = 0; lookup < 2000; lookup += 1) {
            assert.ok(reader.inode(ROOT_INO, LIVE) !== undefined);
            assert.ok(reader.inode(ROOT_INO, previous) !== undefined);
          }
        });
        store.write({ kind: 'test', timeNs: 9n }, (writer) => {
          for (let replace = 0; replace < 300; replace += 1) {
            const row = writer.inode(ROOT_INO, LIVE);
            assert.ok(row !== undefined);
            writer.putInode(ROOT_INO, { ...row, mode: row.mode ^ 1 });
          }
        });
        return Number(process.hrtime.bigint() - start) / 1e6;
      };
      const fewVersionsMs = Math.min(timeMs(), timeMs());
      for (let version = 0; version < 3000; version += 1) bump();
      const manyVersionsMs = Math.min(timeMs(), timeMs());
      store.read((reader) => {
        const live = reader.inode(ROOT_INO, LIVE);
        assert.equal(live?.size, 3000);
        assert.equal(live?.fromCommit, reader.headCommit());
        assert.equal(live?.toCommit, null);
        // An old commit still sees its own version.
        assert.equal(reader.inode(ROOT_INO, 4)?.size, 1);
      });
      // Walking every version made this about 50x slower at 3,000 versions; 8x leaves room for noise.
      assert.ok(manyVersionsMs < fewVersionsMs * 8, `took ${manyVersionsMs.toFixed(1)} ms at 3,000 versions vs ${fewVersionsMs.toFixed(1)} ms at a few`);
    } finally {
      store.close();
    }
  });
});

describe('sqlite store background connection', () => {
  /** One prepared pack of `count` distinct payload-only chunks (fingerprint bytes are opaque to the store). */
  function packOf(seed: number, count: number): import('./api.js').PreparedPack {
    const chunks = Array.from({ length: count }, (_, index) => {
      const sha256 = new Uint8Array(32).fill(seed);
      sha256[0] = index;
      return { sha256, byteLength: 4096, vectorCorrectBytes: 0, correctionBytes: 0, fingerprint: Uint8Array.of(seed, index), offset: index * 10, payloadBytes: 10 };
    });
    const data = new Uint8Array(1 + 10 * count);
    data.fill(seed, 1);
    return { data, rawBytes: 10 * count, chunks };
  }

  it('stages packs in stage commits of another connection, in request order, and answers chunk ids per SHA-256', async () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    try {
      const first = packOf(1, 3);
      const second = packOf(2, 2);
      const known = first.chunks[1].sha256;
      const unknown = new Uint8Array(32).fill(9);
      const head = store.read((reader) => reader.headCommit());
      const firstBatch = batchPacks([first]);
      const staging = store.stageInBackground?.(7n, firstBatch, [first.chunks[0].sha256, null, first.chunks[2].sha256]);
      // The second request finds a chunk the first stored, and reports one that nobody stored.
      const later = store.stageInBackground?.(8n, batchPacks([second]), [second.chunks[0].sha256, known, unknown]);
      assert.ok(staging !== undefined && later !== undefined);
      assert.equal(first.data.byteLength, 0, 'the pack body was moved to the worker');
      const { ids, chunkIds } = await staging;
      const { ids: laterIds, chunkIds: laterChunkIds } = await later;
      // One chunk id per chunk of each batch, in batch order; a chunk stored before keeps its id.
      assert.equal(chunkIds.length, 3);
      assert.deepEqual([chunkIds[0], chunkIds[2]], [ids[0], ids[2]]);
      assert.equal(laterChunkIds[0], laterIds[0]);
      store.read((reader) => {
        assert.equal(reader.headCommit(), head + 2);
        assert.equal(reader.commitInfo(head + 1)?.kind, 'stage');
        assert.equal(reader.commitInfo(head + 2)?.kind, 'stage');
        assert.equal(ids[1], null);
        assert.deepEqual(reader.chunkInfo(chunkIds[1])?.sha256, first.chunks[1].sha256);
        assert.deepEqual(reader.chunkInfo(ids[0] as number)?.sha256, first.chunks[0].sha256);
        assert.equal(laterIds[1], reader.chunkIdBySha256(known));
        assert.equal(laterIds[2], undefined);
        assert.deepEqual(reader.chunkFingerprint(laterIds[0] as number), Uint8Array.of(2, 0));
      });
    } finally {
      store.close();
    }
  });

  it('holds automatic checkpoints until released, then copies the WAL in the background; close waits for it', async () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    const hold = store.holdCheckpoints();
    // ~6 MB of pack rows: far past the 1000-page threshold at which a commit checkpoints.
    for (let batch = 0; batch < 6; batch += 1) {
      store.write({ kind: 'stage', timeNs: 1n, durable: false }, (writer) => {
        writer.putPack({ data: new Uint8Array(1 + 1_000_000).fill(batch + 1), rawBytes: 1_000_000, chunks: [] });
      });
    }
    const walBytes = statSync(`${file}-wal`).size;
    const databaseBytes = statSync(file).size;
    assert.ok(walBytes > 6_000_000, `WAL ${walBytes}`);
    assert.ok(databaseBytes < 1_000_000, `the database file was not written: ${databaseBytes}`);
    store.syncAhead();
    hold.release();
    hold.release();
    // Close waits for the background connection (its checkpoint included) to be closed, and the
    // closing connection copies the rest: the database file then holds every page.
    store.close();
    assert.ok(statSync(file).size > 6_000_000);
    assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0);
    const reopened = openSqliteStore(file);
    assert.equal(reopened.read((reader) => reader.headCommit()), 7);
    reopened.close();
  });
});

describe('sqlite store: runs of chunk references (schema 3)', () => {
  /** Distinct incompressible payloads, so every chunk is its own row. */
  function refChunk(index: number): NewChunk {
    const payload = createHash('sha256').update(`ref chunk ${index}`).digest();
    return { sha256: createHash('sha256').update(payload).digest(), byteLength: payload.length, payload, vectorCorrectBytes: 0, correctionBytes: payload.length, fingerprint: Uint8Array.of(index & 0xff) };
  }

  it('answers like the memory store (a row per reference) through random ends and inserts across run boundaries, at every commit', () => {
    const sqlite = openSqliteStore(freshFile(), { create });
    const memory = createMemoryStore({ profile: 'positional', chunkBytes: 4096, timeNs: 5n });
    try {
      const stores: Store[] = [sqlite, memory];
      const chunkCount = 600;
      const chunks = Array.from({ length: chunkCount }, (_, index) => refChunk(index));
      const ids = stores.map((store) => store.write({ kind: 'test', timeNs: 9n }, (writer) => preparePacks(chunks, 8 * 1024).flatMap((pack) => writer.putPack(pack))));
      assert.deepEqual(ids[0].map((id) => id - ids[0][0]), ids[1].map((id) => id - ids[1][0]), 'both stores number the chunks consecutively');
      let state = 12345;
      const next = (bound: number): number => {
        state = (state * 1103515245 + 12345) >>> 0;
        return state % bound;
      };
      const inodes = [70, 71];
      const commits: number[] = [];
      for (let step = 0; step < 150; step += 1) {
        const ino = inodes[next(inodes.length)];
        const first = next(300);
        const length = 1 + next(step % 5 === 0 ? 200 : 20);
        // Consecutive ids (one run or more, up to MAX_REF_RUN each), sometimes with a break.
        const base = next(chunkCount - length);
        const positions = Array.from({ length }, (_, offset) => (offset === (length >> 1) && step % 3 === 0 ? next(chunkCount) : base + offset));
        const closeEnd = step % 7 === 0 ? Number.MAX_SAFE_INTEGER : first + length + next(3);
        const ended = stores.map((store, which) =>
          store.write({ kind: 'test', timeNs: 10n }, (writer) => {
            const count = writer.closeChunkRefs(ino, first, closeEnd);
            if (step % 11 !== 10) writer.insertChunkRefs(ino, first, positions.map((position) => ids[which][position]));
            // Sometimes the same commit ends part of what it just began.
            if (step % 4 === 1) writer.closeChunkRefs(ino, first + (length >> 2), first + (length >> 1));
            return count;
          }),
        );
        assert.equal(ended[0], ended[1], `step ${step}: refs ended`);
        commits.push(sqlite.read((reader) => reader.headCommit()));
      }
      const normalize = (store: Store, which: number, ino: number, at: number, first: number, end: number): Array<[number, number, boolean]> =>
        store.read((reader) => reader.chunkRefs(ino, at, first, end).map((ref) => [ref.chunkIndex, ref.chunkId - ids[which][0], ref.chunk !== undefined] as [number, number, boolean]));
      for (const at of [...commits.filter((_, index) => index % 10 === 0), LIVE]) {
        for (const ino of inodes) {
          const ranges: Array<[number, number]> = [[0, 1000], [MAX_REF_RUN - 1, MAX_REF_RUN + 1], [next(300), 0]];
          ranges[2][1] = ranges[2][0] + 1 + next(150);
          for (const [first, end] of ranges) {
            assert.deepEqual(normalize(sqlite, 0, ino, at, first, end), normalize(memory, 1, ino, at, first, end), `ino ${ino} at ${at}, [${first}, ${end})`);
            const placements = sqlite.read((reader) => reader.chunkPlacements(ino, at, first, end).map((placement) => [placement.chunkIndex, placement.chunkId - ids[0][0], placement.chunk !== undefined]));
            assert.deepEqual(placements, normalize(sqlite, 0, ino, at, first, end));
          }
        }
      }
    } finally {
      sqlite.close();
      memory.close();
    }
  });

  it('bounds every range statement\'s scan of the primary key on both sides (query plans)', () => {
    const file = freshFile();
    openSqliteStore(file, { create }).close();
    const db = new Database(file, { readonly: true });
    try {
      for (const [name, sql] of Object.entries(rangeStatementSql('run_count'))) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ ino: 1, first: 10, end: 20, at: 5, commit: 6 }) as Array<{ detail: string }>).map((row) => row.detail);
        // Without its upper bound a one-chunk write scanned every row to the end of the file.
        assert.ok(plan.some((detail) => /SEARCH (f|file_chunks) USING PRIMARY KEY \(ino=\? AND chunk_index>\? AND chunk_index<\?\)/.test(detail)), `${name}: ${plan.join(' / ')}`);
      }
    } finally {
      db.close();
    }
  });

  it('stores a whole file of consecutive chunks as runs, and reports a chunk row missing inside a run', () => {
    const file = freshFile();
    const store = openSqliteStore(file, { create });
    const chunks = Array.from({ length: 150 }, (_, index) => refChunk(1000 + index));
    const ids = store.write({ kind: 'test', timeNs: 9n }, (writer) => preparePacks(chunks, 8 * 1024).flatMap((pack) => writer.putPack(pack)));
    store.write({ kind: 'test', timeNs: 10n }, (writer) => writer.insertChunkRefs(80, 0, ids));
    store.close();
    const db = new Database(file);
    assert.deepEqual(db.prepare('SELECT chunk_index, run_count FROM file_chunks WHERE ino = 80 ORDER BY chunk_index').raw(true).all(), [[0, MAX_REF_RUN], [MAX_REF_RUN, MAX_REF_RUN], [2 * MAX_REF_RUN, 150 - 2 * MAX_REF_RUN]]);
    db.prepare('DELETE FROM chunks WHERE chunk_id = ?').run(ids[70]);
    db.close();
    const reopened = openSqliteStore(file);
    try {
      const refs = reopened.read((reader) => reader.chunkRefs(80, LIVE, 60, 80));
      assert.deepEqual(refs.map((ref) => ref.chunkIndex), Array.from({ length: 20 }, (_, offset) => 60 + offset));
      assert.deepEqual(refs.filter((ref) => ref.chunk === undefined).map((ref) => ref.chunkIndex), [70]);
      assert.deepEqual(refs.map((ref) => ref.chunkId), ids.slice(60, 80));
    } finally {
      reopened.close();
    }
  });
});
