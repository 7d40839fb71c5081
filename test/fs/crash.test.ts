// Crash test: writer processes (default, fsync'd durability) are SIGKILLed at random moments;
// after each batch the engram must open, verify clean, and hold every acknowledged write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openEngram } from '../../src/index.js';
import type { CrashWriterInput } from './crash-writer.js';
import { SeededRandom, createTempEngram, sha256Hex, sleep, slowTier } from './helpers.js';

const writerScript = new URL('./crash-writer.js', import.meta.url).pathname;

interface Acknowledged {
  path: string;
  version: number;
  sha256: string;
}

/** Everything the parent learned from its children: what was attempted and what was acknowledged. */
interface Ledger {
  /** path -> SHA-256 of every content a child started writing there. */
  intents: Map<string, Set<string>>;
  /** path -> the acknowledged write with the highest version. */
  latestAck: Map<string, Acknowledged>;
  /** path -> a version the path must have reached (acknowledged transactions give only a bound). */
  minimumVersion: Map<string, number>;
  ackCount: number;
  /** Steps that failed with BUSY (lock wait past the busy timeout): reported, not failures. */
  busyCount: number;
}

/**
 * Starts one writer, kills it with SIGKILL after a random delay (mostly after it opened the
 * engram, sometimes during startup and open), and records its reports into the ledger.
 * Resolves to true when the SIGKILL hit a live process.
 */
function runAndKill(input: CrashWriterInput, random: SeededRandom, ledger: Ledger, maxKillDelayMs = 200, afterFirstAck = false): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const killAfter = (delayMs: number) => {
      if (killTimer !== undefined) return;
      killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    const handleLine = (line: string) => {
      const [kind, path, ...rest] = line.split(' ');
      if (kind === 'ready') {
        if (!afterFirstAck) killAfter(random.integer(0, maxKillDelayMs));
      } else if (kind === 'intent') {
        let shas = ledger.intents.get(path);
        if (shas === undefined) ledger.intents.set(path, (shas = new Set()));
        shas.add(rest[0]);
      } else if (kind === 'busy') {
        ledger.busyCount += 1;
      } else if (kind === 'ack-at-least') {
        ledger.ackCount += 1;
        ledger.minimumVersion.set(path, Math.max(ledger.minimumVersion.get(path) ?? 0, Number(rest[0])));
      } else if (kind === 'ack') {
        // With afterFirstAck the kill lands in a later write, whatever the machine's speed.
        if (afterFirstAck) killAfter(random.integer(0, maxKillDelayMs));
        const ack = { path, version: Number(rest[0]), sha256: rest[1] };
        ledger.ackCount += 1;
        const previous = ledger.latestAck.get(path);
        if (previous === undefined || ack.version > previous.version) ledger.latestAck.set(path, ack);
      }
    };
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      // A trailing partial line was cut by the kill; it acknowledges nothing.
      pending = lines.pop() ?? '';
      for (const line of lines) handleLine(line);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    // One kill in eight lands during startup or open, before the child reports ready.
    if (random.integer(0, 7) === 0) killAfter(random.integer(0, 250));
    // Safety net: a child that never gets ready is killed anyway.
    const deadline = setTimeout(() => killAfter(0), 20_000);
    child.once('error', reject);
    child.once('close', (exitCode, signal) => {
      clearTimeout(deadline);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (signal === 'SIGKILL') resolve(true);
      else reject(new Error(`crash writer ended by itself (code ${exitCode}, signal ${signal}): ${stderr.slice(-3000)}`));
    });
  });
}

/** Reopens the engram, verifies it and checks every acknowledged write against the ledger. */
async function checkEngram(file: string, ledger: Ledger, paths: string[], pairPaths: [string, string]): Promise<void> {
  const engram = await openEngram(file);
  try {
    const report = await engram.verify();
    assert.ok(report.ok, `verify after crashes: ${report.problems.slice(0, 5).join('; ')}`);
    assert.deepEqual(report.damagedPaths, []);
    for (const [path, ack] of ledger.latestAck) {
      const { data, version } = await engram.readFile(path);
      const sha256 = sha256Hex(data);
      assert.ok(version >= ack.version, `${path}: acknowledged version ${ack.version} lost (found ${version})`);
      if (version === ack.version) assert.equal(sha256, ack.sha256, `${path}: content of acknowledged version ${ack.version}`);
      assert.ok(ledger.intents.get(path)?.has(sha256), `${path}: content ${sha256} was never written there`);
      assert.equal((await engram.stat(path)).size, data.length);
    }
    for (const [path, minimum] of ledger.minimumVersion) {
      const { data, version } = await engram.readFile(path);
      assert.ok(version >= minimum, `${path}: acknowledged transaction (version >= ${minimum}) lost (found ${version})`);
      assert.ok(ledger.intents.get(path)?.has(sha256Hex(data)), `${path}: content was never written there`);
    }
    // Transactions are atomic across a crash: both pair files always hold the same commit.
    if (ledger.minimumVersion.has(pairPaths[0])) {
      const first = await engram.readFile(pairPaths[0]);
      const second = await engram.readFile(pairPaths[1]);
      assert.equal(first.version, second.version, 'both files of a transaction carry its commit');
      assert.equal(sha256Hex(first.data), sha256Hex(second.data), 'a transaction is all or nothing');
    }
    const listed = (await engram.readdir('/crash')).map((entry) => `/crash/${entry.name}`);
    for (const path of listed) assert.ok(paths.includes(path), `unexpected entry ${path}`);
    for (const path of [...ledger.latestAck.keys(), ...ledger.minimumVersion.keys()]) assert.ok(listed.includes(path), `${path} missing from readdir`);
  } finally {
    await engram.close();
  }
}

test('SIGKILLed writers lose no acknowledged write and leave an engram that verifies clean', async () => {
  const scratch = await createTempEngram();
  try {
    await scratch.engram.mkdir('/crash');
    await scratch.engram.close();
    const paths = Array.from({ length: 12 }, (_, index) => `/crash/file${index}`);
    const pairPaths: [string, string] = ['/crash/pair-a', '/crash/pair-b'];
    const allPaths = [...paths, ...pairPaths];
    const ledger: Ledger = { intents: new Map(), latestAck: new Map(), minimumVersion: new Map(), ackCount: 0, busyCount: 0 };
    const random = new SeededRandom(Number(process.env.EMBRFS_CRASH_SEED ?? 424242));
    const parallelWriters = 4;
    const rounds = slowTier ? 250 : 50;
    const roundsPerCheck = 10;
    let kills = 0;
    for (let round = 0; round < rounds; round += 1) {
      const results = await Promise.all(
        Array.from({ length: parallelWriters }, (_, slot) =>
          runAndKill({ engramFile: scratch.file, paths, pairPaths, seed: round * parallelWriters + slot }, random, ledger),
        ),
      );
      kills += results.filter(Boolean).length;
      if ((round + 1) % roundsPerCheck === 0) await checkEngram(scratch.file, ledger, allPaths, pairPaths);
      await sleep(random.integer(0, 5));
    }
    assert.ok(kills >= parallelWriters * rounds, `${kills} kills`);
    assert.ok(kills >= 200);
    assert.ok(ledger.ackCount > 0, 'the writers got some writes acknowledged before being killed');
    await checkEngram(scratch.file, ledger, allPaths, pairPaths);
    // Report the figures for the design notes.
    console.log(`crash test: ${kills} kills, ${ledger.ackCount} acknowledged writes, ${ledger.busyCount} BUSY, ${ledger.latestAck.size + ledger.minimumVersion.size} paths checked`);
  } finally {
    await scratch.cleanup();
  }
});

test('SIGKILLed writers of large staged writes lose no acknowledged write and leave an engram that verifies clean', async () => {
  const scratch = await createTempEngram();
  try {
    await scratch.engram.mkdir('/crash');
    await scratch.engram.close();
    const paths = Array.from({ length: 3 }, (_, index) => `/crash/large${index}`);
    const pairPaths: [string, string] = ['/crash/pair-a', '/crash/pair-b'];
    const allPaths = [...paths, ...pairPaths];
    const ledger: Ledger = { intents: new Map(), latestAck: new Map(), minimumVersion: new Map(), ackCount: 0, busyCount: 0 };
    const random = new SeededRandom(Number(process.env.EMBRFS_CRASH_SEED ?? 515151));
    const parallelWriters = 2;
    const rounds = slowTier ? 60 : 12;
    let kills = 0;
    for (let round = 0; round < rounds; round += 1) {
      const results = await Promise.all(
        Array.from({ length: parallelWriters }, (_, slot) =>
          // 4.5 MB per write (staged); kills up to 1.5 s after ready (odd rounds: after the first
          // acknowledged write) land in every phase of one.
          runAndKill({ engramFile: scratch.file, paths, pairPaths, seed: 10_000 + round * parallelWriters + slot, largeBytes: 4_500_000 }, random, ledger, 1500, round % 2 === 1),
        ),
      );
      kills += results.filter(Boolean).length;
      if ((round + 1) % 4 === 0) await checkEngram(scratch.file, ledger, allPaths, pairPaths);
    }
    assert.ok(kills >= parallelWriters * rounds, `${kills} kills`);
    assert.ok(ledger.latestAck.size > 0, 'some large writes were acknowledged before a kill');
    await checkEngram(scratch.file, ledger, allPaths, pairPaths);
    console.log(`staged crash test: ${kills} kills, ${ledger.ackCount} acknowledged writes, ${ledger.busyCount} BUSY`);
  } finally {
    await scratch.cleanup();
  }
});
