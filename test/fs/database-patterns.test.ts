// Database patterns (the seed's 12): VersionedEmbrFS used as a record store, with optimistic
// and pessimistic concurrency, multi-file transactions, history and snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engram } from '../../src/index.js';
import {
  SeededRandom,
  createTempEngram,
  expectEmbrError,
  fromUtf8,
  isVersionMismatch,
  sha256Hex,
  sleep,
  utf8,
} from './helpers.js';
import { runCounterProcess } from './workers.js';

interface User {
  id: number;
  name: string;
  email: string;
  balanceCents: number;
  tags: string[];
}

function encodeJson(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(fromUtf8(bytes)) as T;
}

async function readJson<T>(engram: Pick<Engram, 'readFile'>, path: string): Promise<{ value: T; version: number }> {
  const { data, version } = await engram.readFile(path);
  return { value: decodeJson<T>(data), version };
}

function makeUser(id: number): User {
  return { id, name: `user ${id}`, email: `user${id}@example.test`, balanceCents: 1000 * id, tags: id % 2 === 0 ? ['even'] : ['odd', 'x'] };
}

test('CRUD of JSON records: create-only, read, conditional update, delete', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/users');
    const created = await engram.writeFile('/users/1.json', encodeJson(makeUser(1)), { exclusive: true });
    await expectEmbrError(engram.writeFile('/users/1.json', encodeJson(makeUser(99)), { exclusive: true }), 'EXISTS');
    const read = await readJson<User>(engram, '/users/1.json');
    assert.deepEqual(read.value, makeUser(1));
    assert.equal(read.version, created);

    const updated = await engram.writeFile('/users/1.json', encodeJson({ ...read.value, name: 'renamed' }), { expectedVersion: read.version });
    assert.ok(updated > created);
    // A second update based on the old read is a lost-update attempt and must be refused.
    const conflict = await expectEmbrError(
      engram.writeFile('/users/1.json', encodeJson({ ...read.value, email: 'stale' }), { expectedVersion: read.version }),
      'VERSION_MISMATCH',
    );
    assert.equal(conflict.data.expected, created);
    assert.equal(conflict.data.actual, updated);
    assert.equal((await readJson<User>(engram, '/users/1.json')).value.name, 'renamed');

    await expectEmbrError(engram.deleteFile('/users/1.json', { expectedVersion: created }), 'VERSION_MISMATCH');
    await engram.deleteFile('/users/1.json', { expectedVersion: updated });
    await expectEmbrError(engram.readFile('/users/1.json'), 'NOT_FOUND');
    assert.deepEqual(await engram.readdir('/users'), []);
  } finally {
    await scratch.cleanup();
  }
});

test('1000 records written one by one all read back and list in the directory', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/records');
    const count = 1000;
    for (let id = 0; id < count; id += 1) await engram.writeFile(`/records/${String(id).padStart(4, '0')}.json`, encodeJson(makeUser(id)));
    const entries = await engram.readdir('/records');
    assert.equal(entries.length, count);
    assert.deepEqual(
      entries.map((entry) => entry.name).sort(),
      Array.from({ length: count }, (_, id) => `${String(id).padStart(4, '0')}.json`),
    );
    assert.ok(entries.every((entry) => entry.type === 'file'));
    for (let id = 0; id < count; id += 1) {
      assert.deepEqual((await readJson<User>(engram, `/records/${String(id).padStart(4, '0')}.json`)).value, makeUser(id));
    }
    assert.equal((await engram.stats()).files, count);
  } finally {
    await scratch.cleanup();
  }
});

test('an atomic transfer rolls back entirely when an account changed after the transaction read it', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.writeFile('/alice', encodeJson({ balanceCents: 1000 }));
    await engram.writeFile('/bob', encodeJson({ balanceCents: 500 }));
    const bobBefore = await engram.readFile('/bob');

    await expectEmbrError(
      engram.transaction(async (tx) => {
        const alice = await readJson<{ balanceCents: number }>(tx, '/alice');
        const bob = await readJson<{ balanceCents: number }>(tx, '/bob');
        // Someone else spends from Alice between our read and our commit.
        await engram.writeFile('/alice', encodeJson({ balanceCents: 100 }));
        await tx.writeFile('/bob', encodeJson({ balanceCents: bob.value.balanceCents + 300 }));
        await tx.writeFile('/alice', encodeJson({ balanceCents: alice.value.balanceCents - 300 }));
      }),
      'VERSION_MISMATCH',
    );
    assert.deepEqual((await readJson(engram, '/alice')).value, { balanceCents: 100 }, 'the outside write stands');
    const bobAfter = await engram.readFile('/bob');
    assert.deepEqual(decodeJson(bobAfter.data), { balanceCents: 500 }, 'nothing of the failed transaction was applied');
    assert.equal(bobAfter.version, bobBefore.version);

    // Without interference the same transfer commits both sides in one commit.
    await engram.transaction(async (tx) => {
      const alice = await readJson<{ balanceCents: number }>(tx, '/alice');
      const bob = await readJson<{ balanceCents: number }>(tx, '/bob');
      await tx.writeFile('/alice', encodeJson({ balanceCents: alice.value.balanceCents - 50 }));
      await tx.writeFile('/bob', encodeJson({ balanceCents: bob.value.balanceCents + 50 }));
    });
    const alice = await readJson<{ balanceCents: number }>(engram, '/alice');
    const bob = await readJson<{ balanceCents: number }>(engram, '/bob');
    assert.equal(alice.value.balanceCents, 50);
    assert.equal(bob.value.balanceCents, 550);
    assert.equal(alice.version, bob.version, 'both files changed in one commit share its number');
  } finally {
    await scratch.cleanup();
  }
});

test('50 concurrent transfer transactions with optimistic retry keep the exact balances, in one process and across 4', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    const accountCount = 5;
    const initialCents = 10_000;
    for (let account = 0; account < accountCount; account += 1) await engram.writeFile(`/acct${account}`, encodeJson(initialCents));
    const random = new SeededRandom(50);
    const transfers = Array.from({ length: 50 }, () => {
      const from = random.integer(0, accountCount - 1);
      const to = (from + random.integer(1, accountCount - 1)) % accountCount;
      return { from, to, amountCents: random.integer(1, 500) };
    });
    let attempts = 0;
    await Promise.all(
      transfers.map((transfer) =>
        engram.transaction(
          async (tx) => {
            attempts += 1;
            const from = await readJson<number>(tx, `/acct${transfer.from}`);
            const to = await readJson<number>(tx, `/acct${transfer.to}`);
            await tx.writeFile(`/acct${transfer.from}`, encodeJson(from.value - transfer.amountCents));
            await tx.writeFile(`/acct${transfer.to}`, encodeJson(to.value + transfer.amountCents));
          },
          { retries: 200 },
        ),
      ),
    );
    const expected = Array.from({ length: accountCount }, () => initialCents);
    for (const transfer of transfers) {
      expected[transfer.from] -= transfer.amountCents;
      expected[transfer.to] += transfer.amountCents;
    }
    const actual: number[] = [];
    for (let account = 0; account < accountCount; account += 1) actual.push((await readJson<number>(engram, `/acct${account}`)).value);
    assert.deepEqual(actual, expected, 'every transfer applied exactly once');
    assert.equal(actual.reduce((sum, cents) => sum + cents, 0), accountCount * initialCents);
    assert.ok(attempts >= transfers.length);

    // The same across 4 OS processes, each with its own connection: transactions validated across processes.
    const paths = Array.from({ length: accountCount }, (_, account) => `/acct${account}`);
    const outputs = await Promise.all(
      [0, 1, 2, 3].map((index) => runCounterProcess({ mode: 'transfer', engramFile: scratch.file, paths, rounds: 15, seed: 4000 + index })),
    );
    for (const [index, output] of outputs.entries()) {
      assert.ok(output.ok, `process ${index}: ${output.error}`);
      for (const [from, to, amount] of output.transfers ?? []) {
        expected[from] -= amount;
        expected[to] += amount;
      }
    }
    assert.equal(outputs.reduce((sum, output) => sum + (output.transfers?.length ?? 0), 0), 60);
    const afterProcesses: number[] = [];
    for (let account = 0; account < accountCount; account += 1) afterProcesses.push((await readJson<number>(engram, `/acct${account}`)).value);
    assert.deepEqual(afterProcesses, expected, 'every cross-process transfer applied exactly once');
  } finally {
    await scratch.cleanup();
  }
});

test('a batch of 1000 writes in one transaction is invisible until commit, then all share one version', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/batch');
    const count = 1000;
    await engram.transaction(async (tx) => {
      for (let index = 0; index < count; index += 1) await tx.writeFile(`/batch/${index}`, encodeJson({ index }));
      assert.equal(await engram.exists('/batch/0'), false, 'uncommitted writes are not visible outside the transaction');
      assert.deepEqual(await engram.readdir('/batch'), []);
      assert.deepEqual((await readJson(tx, '/batch/999')).value, { index: 999 }, 'a transaction reads its own writes');
    });
    const versions = new Set<number>();
    for (let index = 0; index < count; index += 1) {
      const { value, version } = await readJson<{ index: number }>(engram, `/batch/${index}`);
      assert.equal(value.index, index);
      versions.add(version);
    }
    assert.equal(versions.size, 1, 'one commit, one version');
    assert.equal((await engram.readdir('/batch')).length, count);
  } finally {
    await scratch.cleanup();
  }
});

test('a key-value store on files matches a Map over 600 random puts, gets and deletes', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/kv');
    // Keys are arbitrary strings; hex makes them safe file names.
    const keyPath = (key: string) => `/kv/${Buffer.from(key, 'utf8').toString('hex')}`;
    const model = new Map<string, string>();
    const random = new SeededRandom(600);
    const keys = Array.from({ length: 40 }, (_, index) => `key/${index}:${'é'.repeat(index % 3)}`);
    for (let step = 0; step < 600; step += 1) {
      const key = random.pick(keys);
      const action = random.integer(0, 9);
      if (action < 5) {
        const value = `value ${step} ${'z'.repeat(random.integer(0, 5000))}`;
        await engram.writeFile(keyPath(key), utf8(value));
        model.set(key, value);
      } else if (action < 8) {
        if (model.has(key)) assert.equal(fromUtf8((await engram.readFile(keyPath(key))).data), model.get(key));
        else await expectEmbrError(engram.readFile(keyPath(key)), 'NOT_FOUND');
      } else if (model.has(key)) {
        await engram.deleteFile(keyPath(key));
        model.delete(key);
      } else {
        await expectEmbrError(engram.deleteFile(keyPath(key)), 'NOT_FOUND');
      }
    }
    const listed = (await engram.readdir('/kv')).map((entry) => Buffer.from(entry.name, 'hex').toString('utf8')).sort();
    assert.deepEqual(listed, [...model.keys()].sort());
    for (const [key, value] of model) assert.equal(fromUtf8((await engram.readFile(keyPath(key))).data), value);
  } finally {
    await scratch.cleanup();
  }
});

test('a time series appended with writes at the end reads back in order, also by byte range', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/series');
    // Fixed-width records (32 bytes) so record n lives at byte 32 * n.
    const recordBytes = 32;
    const record = (sensor: number, index: number) => `${String(index).padStart(8, '0')},${String(sensor * 1000 + index * 7).padStart(22, '0')}\n`;
    const sensorCount = 12;
    const points = 100;
    for (let index = 0; index < points; index += 1) {
      for (let sensor = 0; sensor < sensorCount; sensor += 1) {
        const path = `/series/sensor${sensor}.csv`;
        const line = utf8(record(sensor, index));
        assert.equal(line.length, recordBytes);
        if (index === 0) await engram.writeFile(path, line, { exclusive: true });
        else await engram.write(path, index * recordBytes, line);
      }
    }
    for (let sensor = 0; sensor < sensorCount; sensor += 1) {
      const path = `/series/sensor${sensor}.csv`;
      const expected = Array.from({ length: points }, (_, index) => record(sensor, index)).join('');
      assert.equal(fromUtf8((await engram.readFile(path)).data), expected);
      assert.equal((await engram.stat(path)).size, points * recordBytes);
      // Range query: points 40..59.
      const range = await engram.read(path, 40 * recordBytes, 20 * recordBytes);
      assert.equal(fromUtf8(range.data), expected.slice(40 * recordBytes, 60 * recordBytes));
      const tail = await engram.read(path, (points - 1) * recordBytes, 10 * recordBytes);
      assert.equal(fromUtf8(tail.data), record(sensor, points - 1), 'a read past the end is short');
    }
  } finally {
    await scratch.cleanup();
  }
});

test('mixed readers and writers: 20 readers always see whole, self-consistent records from 10 writers', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    interface Entry {
      writer: number;
      sequence: number;
      payload: string;
      checksum: string;
    }
    const makeEntry = (writer: number, sequence: number): Entry => {
      const payload = `${writer}:${sequence}:`.repeat(200 + ((writer * 31 + sequence) % 500));
      return { writer, sequence, payload, checksum: sha256Hex(utf8(payload)) };
    };
    const writerCount = 10;
    const writesPerWriter = 15;
    for (let writer = 0; writer < writerCount; writer += 1) await engram.writeFile(`/doc${writer}`, encodeJson(makeEntry(writer, 0)));
    let activeWriters = writerCount;
    const writers = Array.from({ length: writerCount }, async (_, writer) => {
      try {
        for (let sequence = 1; sequence <= writesPerWriter; sequence += 1) await engram.writeFile(`/doc${writer}`, encodeJson(makeEntry(writer, sequence)));
      } finally {
        activeWriters -= 1;
      }
    });
    const readers = Array.from({ length: 20 }, async (_, reader) => {
      const lastSequence = new Array<number>(writerCount).fill(0);
      let reads = 0;
      while (activeWriters > 0 || reads < writerCount) {
        const writer = (reader + reads) % writerCount;
        const { value } = await readJson<Entry>(engram, `/doc${writer}`);
        assert.equal(value.writer, writer);
        assert.equal(sha256Hex(utf8(value.payload)), value.checksum, 'a record is never torn');
        assert.ok(value.sequence >= lastSequence[writer], 'a reader never sees an older record after a newer one');
        lastSequence[writer] = value.sequence;
        reads += 1;
      }
    });
    await Promise.all([...writers, ...readers]);
    for (let writer = 0; writer < writerCount; writer += 1) {
      assert.equal((await readJson<Entry>(engram, `/doc${writer}`)).value.sequence, writesPerWriter);
    }
  } finally {
    await scratch.cleanup();
  }
});

test('pessimistic locking with an external mutex: no conflicts and no lost updates', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.writeFile('/locked-counter', utf8('0'));
    // A minimal async mutex: a promise chain, so holders run strictly one after another.
    let tail: Promise<void> = Promise.resolve();
    let holders = 0;
    let maxHolders = 0;
    const withLock = async <T>(body: () => Promise<T>): Promise<T> => {
      const previous = tail;
      let release!: () => void;
      tail = new Promise((resolve) => {
        release = resolve;
      });
      await previous;
      holders += 1;
      maxHolders = Math.max(maxHolders, holders);
      try {
        return await body();
      } finally {
        holders -= 1;
        release();
      }
    };
    const random = new SeededRandom(20);
    const taskCount = 20;
    const incrementsPerTask = 5;
    await Promise.all(
      Array.from({ length: taskCount }, async () => {
        for (let index = 0; index < incrementsPerTask; index += 1) {
          await withLock(async () => {
            const { data, version } = await engram.readFile('/locked-counter');
            await sleep(random.integer(0, 1));
            // Under the lock the expected version can never be stale: a conflict would be a bug.
            await engram.writeFile('/locked-counter', utf8(String(Number(fromUtf8(data)) + 1)), { expectedVersion: version });
          });
        }
      }),
    );
    assert.equal(maxHolders, 1);
    assert.equal(fromUtf8((await engram.readFile('/locked-counter')).data), String(taskCount * incrementsPerTask));
  } finally {
    await scratch.cleanup();
  }
});

test('multi-version consistency: history lists every version with its commit, size and SHA-256', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    const contents: Uint8Array[] = [];
    const versions: number[] = [];
    for (let index = 0; index < 10; index += 1) {
      const content = encodeJson({ index, body: 'x'.repeat(index * 700) });
      contents.push(content);
      versions.push(await engram.writeFile('/doc.json', content));
      await engram.writeFile(`/noise${index}`, utf8(String(index)));
    }
    const writes = (await engram.history('/doc.json')).filter((entry) => entry.kind === 'write');
    assert.equal(writes.length, 10);
    const byVersion = [...writes].sort((a, b) => a.version - b.version);
    for (const [index, entry] of byVersion.entries()) {
      assert.equal(entry.version, versions[index]);
      assert.equal(entry.commit, versions[index]);
      assert.equal(entry.size, contents[index].length);
      assert.equal(entry.sha256, sha256Hex(contents[index]));
      if (index > 0) assert.ok(entry.timeNs >= byVersion[index - 1].timeNs);
    }
    await engram.deleteFile('/doc.json');
    const afterDelete = await engram.history('/doc.json');
    const deletion = afterDelete.find((entry) => entry.kind === 'delete');
    assert.ok(deletion !== undefined, 'a delete appears in history');
    assert.equal(deletion.sha256, null);
    assert.equal(deletion.size, 0);
    assert.ok(deletion.commit > versions[9]);
  } finally {
    await scratch.cleanup();
  }
});

test('snapshot isolation: reads at a snapshot do not change when the live tree does', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/db');
    for (let id = 0; id < 20; id += 1) await engram.writeFile(`/db/${id}.json`, encodeJson(makeUser(id)));
    const lastWrite = (await engram.stat('/db/19.json')).version;
    const snapshot = await engram.createSnapshot('before-migration');
    assert.equal(snapshot.name, 'before-migration');
    assert.ok(snapshot.commit >= lastWrite && snapshot.commit <= (await engram.currentCommit()), 'a snapshot pins the commit it was taken at');

    for (let id = 0; id < 20; id += 2) await engram.writeFile(`/db/${id}.json`, encodeJson({ ...makeUser(id), migrated: true }));
    for (let id = 1; id < 20; id += 4) await engram.deleteFile(`/db/${id}.json`);
    await engram.writeFile('/db/new.json', encodeJson({ created: 'after' }));
    await engram.rename('/db/3.json', '/db/three.json');

    const snapshotNames = (await engram.readdir('/db', { snapshot: 'before-migration' })).map((entry) => entry.name).sort();
    assert.deepEqual(snapshotNames, Array.from({ length: 20 }, (_, id) => `${id}.json`).sort());
    for (let id = 0; id < 20; id += 1) {
      assert.deepEqual((await readJson(snapshotReader(engram, 'before-migration'), `/db/${id}.json`)).value, makeUser(id));
    }
    await expectEmbrError(engram.readFile('/db/new.json', { snapshot: 'before-migration' }), 'NOT_FOUND');
    // The live tree has all the changes.
    assert.deepEqual((await readJson(engram, '/db/0.json')).value, { ...makeUser(0), migrated: true });
    assert.equal(await engram.exists('/db/1.json'), false);
    assert.equal(await engram.exists('/db/three.json'), true);
    assert.equal((await engram.listSnapshots()).length, 1);
    await expectEmbrError(engram.readFile('/db/0.json', { snapshot: 'no-such-snapshot' }), 'NOT_FOUND');
  } finally {
    await scratch.cleanup();
  }
});

test('a secondary index updated in the same transaction as its records is never out of step', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/rows');
    await engram.writeFile('/index.json', encodeJson({}));
    const rowCount = 30;
    let inserting = true;
    const inserters = (async () => {
      try {
        await Promise.all(
          Array.from({ length: rowCount }, (_, id) =>
            engram.transaction(
              async (tx) => {
                const index = await readJson<Record<string, string>>(tx, '/index.json');
                const email = `row${id}@example.test`;
                await tx.writeFile(`/rows/${id}.json`, encodeJson({ id, email }), { exclusive: true });
                await tx.writeFile('/index.json', encodeJson({ ...index.value, [email]: `/rows/${id}.json` }));
              },
              { retries: 500 },
            ),
          ),
        );
      } finally {
        inserting = false;
      }
    })();
    let checks = 0;
    while (inserting || checks === 0) {
      // Observe inside a read-only transaction but assert only after it committed: a committed
      // transaction's reads were validated, so they are one consistent moment.
      const observed = await engram.transaction(async (tx) => {
        const index = await readJson<Record<string, string>>(tx, '/index.json');
        const rows = await tx.readdir('/rows');
        const missing: string[] = [];
        for (const path of Object.values(index.value)) if (!(await tx.exists(path))) missing.push(path);
        return { rowCount: rows.length, indexCount: Object.keys(index.value).length, missing };
      }, { retries: 200 });
      assert.equal(observed.rowCount, observed.indexCount, 'rows and index entries agree');
      assert.deepEqual(observed.missing, [], 'every indexed row exists');
      checks += 1;
      await sleep(1);
    }
    await inserters;
    const index = await readJson<Record<string, string>>(engram, '/index.json');
    assert.equal(Object.keys(index.value).length, rowCount);
    assert.equal((await engram.readdir('/rows')).length, rowCount);
  } catch (error) {
    if (isVersionMismatch(error)) assert.fail(`retries exhausted: ${error.message}`);
    throw error;
  } finally {
    await scratch.cleanup();
  }
});

/** A read view of `engram` at the named snapshot, so readJson can be reused. */
function snapshotReader(engram: Engram, snapshot: string): Pick<Engram, 'readFile'> {
  return { readFile: (path: string) => engram.readFile(path, { snapshot }) };
}
