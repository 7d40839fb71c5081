import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { batchVfsStatus, withBatchVfs } from './batch-vfs.js';
import { openSqliteStore } from './sqlite-store.js';
import { preparePacks } from './pack.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-batch-vfs-'));
after(() => rmSync(root, { recursive: true, force: true }));
const loaded = batchVfsStatus().loaded;

/** Deterministic bytes of a row: what every check compares against. */
function rowBytes(key: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0, block = 0; offset < length; offset += 32, block += 1) {
    createHash('sha256').update(`${key}:${block}`).digest().copy(out, offset);
  }
  return out;
}

function contents(db: Database.Database): string {
  const hash = createHash('sha256');
  for (const row of db.prepare('SELECT key, version, data FROM rows ORDER BY key').raw(true).iterate() as Iterable<[number, number, Buffer]>) {
    hash.update(`${row[0]}:${row[1]}:`).update(row[2]);
  }
  return hash.digest('hex');
}

/**
 * One workload on a database: transactions larger than the page cache (SQLite spills pages into
 * the WAL before the commit and overwrites those frames when it changes the pages again, then
 * rewrites their checksums), rolled-back transactions, and checkpoints of each kind in between.
 * After every commit a second connection must see exactly what the writer sees.
 */
function workload(file: string, open: (file: string) => Database.Database): string {
  const db = open(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = 8');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE IF NOT EXISTS rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL)');
  const reader = open(file);
  const upsert = db.prepare('INSERT INTO rows(key, version, data) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET version = excluded.version, data = excluded.data');
  const checkpoints = ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'];
  for (let round = 0; round < 12; round += 1) {
    db.transaction(() => {
      // The same keys several times in one transaction: spilled pages are written again.
      for (let pass = 0; pass < 3; pass += 1) {
        for (let key = 0; key < 40; key += 1) {
          const length = 100 + ((key * 7919 + round * 104729 + pass) % 9000);
          upsert.run(key + round * 5, round * 10 + pass, rowBytes(key * 1000 + round * 10 + pass, length));
        }
      }
    })();
    assert.equal(contents(reader), contents(db), `round ${round}: another connection sees the commit`);
    if (round % 3 === 1) {
      assert.throws(() =>
        db.transaction(() => {
          for (let key = 0; key < 60; key += 1) upsert.run(key, -1, rowBytes(-key, 5000));
          throw new Error('rolled back');
        })(),
      );
    }
    if (round % 2 === 0) db.pragma(`wal_checkpoint(${checkpoints[(round / 2) % checkpoints.length]})`);
  }
  const result = contents(db);
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  reader.close();
  db.close();
  return result;
}

/** A connection through the VFS as the tests below use it: WAL, NORMAL sync, no automatic checkpoints. */
function openBatched(file: string): Database.Database {
  const db = withBatchVfs(() => new Database(file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

const CHILD = `
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
const { withBatchVfs } = await import(process.argv[1]);
const db = withBatchVfs(() => new Database(process.argv[2]));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL)');
const insert = db.prepare('INSERT INTO rows(key, version, data) VALUES (?, 0, ?)');
const rowLength = (key) => (key % 10 === 9 ? 1_100_000 + key * 61 : 200 + (key * 7919) % 60000);
const bytes = (key, length) => { const out = Buffer.alloc(length); for (let o = 0, b = 0; o < length; o += 32, b += 1) createHash('sha256').update(key + ':' + b).digest().copy(out, o); return out; };
for (let key = 0; ; key += 1) {
  insert.run(key, bytes(key, rowLength(key)));
  process.stdout.write(key + '\\n');
}
`;

describe('the WAL-batching VFS (native/walbatch)', () => {
  it('is loaded where the install built it (EMBRFS_EXPECT_NATIVE=1 in CI) and gathers the writes of engram commits', () => {
    const status = batchVfsStatus();
    if (process.env.EMBRFS_EXPECT_NATIVE === '1') assert.equal(status.loaded, true, `npm ci builds native/walbatch: ${status.reason}`);
    if (!status.loaded) return;
    const store = openSqliteStore(join(root, 'gathered.engram'), { create: { profile: 'positional', chunkBytes: 4096, timeNs: 1n } });
    try {
      const before = batchVfsStatus().gatheredWrites;
      // Incompressible payload (the pack is zstd-compressed when that saves space).
      const data = new Uint8Array(rowBytes(7, 64 * 1024));
      const chunk = { sha256: createHash('sha256').update(data).digest(), byteLength: data.length, payload: data, vectorCorrectBytes: 0, correctionBytes: data.length, fingerprint: new Uint8Array(8) };
      store.write({ kind: 'stage', timeNs: 2n }, (writer) => preparePacks([chunk]).flatMap((pack) => writer.putPack(pack)));
      // 64 KiB of payload: at least 16 WAL frames, two writes each, all gathered.
      assert.ok(batchVfsStatus().gatheredWrites - before >= 32, `gathered ${batchVfsStatus().gatheredWrites - before} writes`);
    } finally {
      store.close();
    }
  });

  it('leaves the same data as the unix VFS through spills, rewritten frames, rollbacks and every kind of checkpoint', { skip: loaded ? false : 'the VFS is not built here' }, () => {
    const before = batchVfsStatus().gatheredWrites;
    const batched = workload(join(root, 'batched.db'), (file) => withBatchVfs(() => new Database(file)));
    assert.ok(batchVfsStatus().gatheredWrites > before, 'the batched database went through the VFS');
    const plain = workload(join(root, 'plain.db'), (file) => new Database(file));
    assert.equal(batched, plain);
    // Reopened cold, without the VFS: the files themselves hold it.
    for (const file of ['batched.db', 'plain.db']) {
      const db = new Database(join(root, file), { readonly: true });
      assert.equal(contents(db), plain);
      db.close();
    }
  });

  it('writes out a commit frame that crosses the end of the buffer, and the one-frame commit of a connection that had not written yet', { skip: loaded ? false : 'the VFS is not built here' }, () => {
    const file = join(root, 'boundary.db');
    const open = (): Database.Database => openBatched(file);
    const writer = open();
    writer.exec('CREATE TABLE rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL); CREATE TABLE pad(n INTEGER)');
    const reader = new Database(file, { readonly: true });
    const insert = writer.prepare('INSERT INTO rows(key, version, data) VALUES (?, 0, ?)');
    const pad = writer.prepare('INSERT INTO pad(n) VALUES (1)');
    const walFrames = (): number => (statSync(`${file}-wal`).size - 32) / (4096 + 24);
    const seen = new Set<number>();
    let key = 0;
    // Transactions of 230-270 rows of 3,000 bytes, with and without one more page (the pad row):
    // together they commit every frame count from ~235 to ~280, so for one of them the commit
    // frame's header is the last thing that fits the 1 MiB buffer (255 frames) and its page goes
    // to the next buffer.
    for (let rows = 230; rows <= 270; rows += 1) {
      for (const padded of [false, true]) {
        writer.transaction(() => {
          for (let row = 0; row < rows; row += 1, key += 1) insert.run(key, rowBytes(key, 3000));
          if (padded) pad.run();
        })();
        const frames = walFrames();
        seen.add(frames);
        assert.ok(Number.isInteger(frames), `the WAL holds whole frames after a commit of ${frames} frames`);
        assert.equal(reader.prepare('SELECT count(*) FROM rows').pluck().get(), key, `after the commit of ${rows} rows another connection reads them all`);
        writer.pragma('wal_checkpoint(TRUNCATE)');
      }
    }
    assert.ok(seen.has(255), `a commit of exactly 255 frames was among ${[...seen].sort((x, y) => x - y).join(',')}`);
    // A second connection's first write is a one-frame commit whose header does not follow any
    // write of its own.
    const second = open();
    second.prepare('UPDATE rows SET version = 1 WHERE key = 0').run();
    assert.equal(reader.prepare('SELECT version FROM rows WHERE key = 0').pluck().get(), 1);
    assert.equal(writer.prepare('SELECT version FROM rows WHERE key = 0').pluck().get(), 1);
    for (const db of [second, reader, writer]) db.close();
  });

  it('drops the frames of a transaction that spilled into the WAL and rolled back, never writing them over a later commit', { skip: loaded ? false : 'the VFS is not built here' }, () => {
    const file = join(root, 'rolled-back.db');
    const open = (): Database.Database => openBatched(file);
    const a = open();
    const b = open();
    a.exec('CREATE TABLE rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL)');
    // Everything checkpointed: a's next transaction restarts the WAL at its start.
    a.pragma('wal_checkpoint(TRUNCATE)');
    a.pragma('cache_size = 20');
    const insertA = a.prepare('INSERT INTO rows(key, version, data) VALUES (?, 0, ?)');
    assert.throws(() =>
      a.transaction(() => {
        // Far more than 20 pages: SQLite spills them into the WAL before the commit that never comes.
        for (let key = 1000; key < 1100; key += 1) insertA.run(key, rowBytes(key, 3000));
        throw new Error('rolled back');
      })(),
    );
    const insertB = b.prepare('INSERT INTO rows(key, version, data) VALUES (?, 0, ?)');
    b.transaction(() => {
      for (let key = 0; key < 30; key += 1) insertB.run(key, rowBytes(key, 3000));
    })();
    // a reads (any call of a's WAL file used to write its stale frames out over b's commit).
    assert.equal(a.prepare('SELECT count(*) FROM rows').pluck().get(), 30);
    a.prepare('SELECT * FROM rows').all();
    const fresh = new Database(file, { readonly: true });
    assert.equal(fresh.prepare('SELECT count(*) FROM rows').pluck().get(), 30);
    for (const [key, data] of fresh.prepare('SELECT key, data FROM rows').raw(true).all() as Array<[number, Buffer]>) assert.ok(data.equals(rowBytes(key, 3000)), `row ${key}`);
    assert.equal(fresh.pragma('integrity_check', { simple: true }), 'ok');
    for (const db of [fresh, a, b]) db.close();
  });

  it('has every commit in the file when the commit returns: a reader in another process sees it, and so does recovery after kill -9', { skip: loaded ? false : 'the VFS is not built here', timeout: 60_000 }, async () => {
    const file = join(root, 'killed.db');
    const moduleUrl = new URL('./batch-vfs.js', import.meta.url).href;
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, moduleUrl, file], { stdio: ['ignore', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
    let acknowledged = -1;
    let pending = '';
    let readerChecks = 0;
    let reader: Database.Database | undefined;
    const check = (db: Database.Database, through: number): void => {
      const rows = db.prepare('SELECT key, data FROM rows WHERE key <= ? ORDER BY key').raw(true).all(through) as Array<[number, Buffer]>;
      assert.equal(rows.length, through + 1, `rows 0..${through} are there`);
      for (const [key, data] of rows) assert.ok(data.equals(rowBytes(key, key % 10 === 9 ? 1_100_000 + key * 61 : 200 + ((key * 7919) % 60000))), `row ${key} intact`);
    };
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (acknowledged < 300) reject(new Error(`the writer exited early (${code ?? signal}) after ${acknowledged} commits`));
      });
      child.stdout.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        if (lines.length > 0) acknowledged = Number(lines[lines.length - 1]);
        try {
          // Every 25 acknowledged commits, this process reads them all (the WAL the child writes).
          if (acknowledged >= (readerChecks + 1) * 25 && acknowledged < 300) {
            reader ??= new Database(file, { readonly: true });
            check(reader, acknowledged);
            readerChecks += 1;
          }
        } catch (error) {
          child.kill('SIGKILL');
          reject(error);
          return;
        }
        if (acknowledged >= 300) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    reader?.close();
    assert.ok(readerChecks >= 2, `the reader checked ${readerChecks} times`);
    // Recovery from the killed writer's WAL: every acknowledged commit is there.
    const db = new Database(file);
    check(db, acknowledged);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
});
