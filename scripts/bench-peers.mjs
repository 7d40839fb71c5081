#!/usr/bin/env node
// Benchmarks `embrfs ingest/extract` against the tools people use today (issue 4, item 7):
// restic (compression auto), borg (-e none, default lz4) and `tar | zstd -3`, on one corpus
// copied from /usr/share/doc and /usr/include (about 250 MB, 12k files).
//
// Usage: node scripts/bench-peers.mjs [--keep] [--rounds 3] [--tools embrfs,restic,borg,tar] [--sources dir,dir]
//   (run `npx tsc -p tsconfig.json` first; the script runs the built CLI bin/embrfs.js)
//
// Steps per tool, all in one run on the same warm page cache: ingest (backup/create) into a new
// repository, stored size, extract (restore), in `--rounds` interleaved rounds (median reported);
// then, per round, re-ingest after changing another 1% of the files (every 100th file in sorted
// order: a third get a line inserted at the start, a third 16 bytes flipped in the middle, a
// third a line appended) and the growth of the stored size. Each round and each step prints one
// JSON line; the last lines give the ratios to restic and the floors of issue 4. After the last
// round's ingest, a 'stored-breakdown' line tells where the engram's bytes go (tables, packs).
// Times are wall-clock seconds from /usr/bin/time (with peak RSS); the machine is shared, so
// compare ratios within one run, never figures across runs.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, lstatSync, readFileSync, writeFileSync, rmSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const argv = process.argv.slice(2);
const keep = argv.includes('--keep');
const roundsIndex = argv.indexOf('--rounds');
const rounds = roundsIndex >= 0 ? Number(argv[roundsIndex + 1]) : 3;
const toolsIndex = argv.indexOf('--tools');
const tools = toolsIndex >= 0 ? argv[toolsIndex + 1].split(',') : ['embrfs', 'restic', 'borg', 'tar'];
const sourcesIndex = argv.indexOf('--sources');
// --sources a,b: a smaller corpus for trying the script out; the figures use the default.
const corpusSources = sourcesIndex >= 0 ? argv[sourcesIndex + 1].split(',') : ['/usr/share/doc', '/usr/include'];
const repoRoot = resolve(new URL('..', import.meta.url).pathname);
const embrfsBin = join(repoRoot, 'bin', 'embrfs.js');

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function ensurePackages() {
  const missing = [];
  if (tools.includes('restic') && !have('restic')) missing.push('restic');
  if (tools.includes('borg') && !have('borg')) missing.push('borgbackup');
  if (tools.includes('tar') && !have('zstd')) missing.push('zstd');
  if (missing.length === 0) return;
  process.stderr.write(`bench-peers: installing ${missing.join(' ')} with apt-get\n`);
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  const result = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
}

/** Runs a command under /usr/bin/time; returns wall seconds and peak RSS, throws on failure. */
function timed(command, args, options = {}) {
  const timeFile = join(work, `time-${process.pid}.txt`);
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, command, ...args], {
    cwd: options.cwd ?? work,
    env: { ...process.env, ...(options.env ?? {}) },
    stdio: ['ignore', options.stdout ?? 'ignore', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr?.toString().slice(-2000)}`);
  }
  const [seconds, maxRssKiB, userSeconds, systemSeconds] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { seconds, maxRssMiB: Math.round(maxRssKiB / 1024), cpuSeconds: Math.round((userSeconds + systemSeconds) * 100) / 100 };
}

function sizeOf(path) {
  // Bytes on disk of a file or a whole directory (apparent sizes, like du -sb).
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  return total;
}

function engramBytes(file) {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(file + suffix)) total += statSync(file + suffix).size;
  return total;
}

/**
 * Where an engram's bytes go: pages per table and index (SQLite's dbstat), the pack blobs and
 * their count, and the free pages. For the stored-size floor: the figures to compare with restic.
 */
function engramBreakdown(file) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const db = new Database(file, { readonly: true });
  try {
    const tables = Object.fromEntries(db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all().map((row) => [row.name, row.bytes]));
    const packs = db.prepare('SELECT count(*) AS count, coalesce(sum(length(data)), 0) AS storedBytes, coalesce(sum(raw_bytes), 0) AS rawBytes FROM packs').get();
    const smallPacks = db.prepare('SELECT count(*) AS count, coalesce(sum(length(data)), 0) AS storedBytes FROM packs WHERE raw_bytes < 8192').get();
    const pageSize = db.pragma('page_size', { simple: true });
    const freeBytes = db.pragma('freelist_count', { simple: true }) * pageSize;
    return { tables, packs, packsUnder8KiB: smallPacks, freeBytes };
  } finally {
    db.close();
  }
}

function listFiles(directory, into = []) {
  for (const name of readdirSync(directory).sort()) {
    const path = join(directory, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) listFiles(path, into);
    else if (stats.isFile()) into.push(path);
  }
  return into;
}

function identical(expected, actual) {
  return spawnSync('diff', ['-r', '--no-dereference', '-q', expected, actual], { stdio: 'ignore' }).status === 0;
}

ensurePackages();
const work = mkdtempSync(join(tmpdir(), 'embrfs-peers-'));
const corpus = join(work, 'corpus');
try {
  mkdirSync(corpus);
  for (const source of corpusSources) {
    const copy = spawnSync('cp', ['-a', source, corpus], { stdio: 'inherit' });
    if (copy.status !== 0) throw new Error(`cp -a ${source} failed`);
  }
  // Write the copy back to disk now, so no tool pays for the copy's writeback in its fsyncs.
  spawnSync('sync');
  const corpusFiles = listFiles(corpus);
  const corpusBytes = corpusFiles.reduce((sum, file) => sum + lstatSync(file).size, 0);
  emit({ tool: 'corpus', step: 'build', files: corpusFiles.length, bytes: corpusBytes, sources: corpusSources });
  // Warm the page cache for everyone alike.
  spawnSync('tar', ['-cf', '/dev/null', '-C', work, 'corpus']);

  const results = {};
  const record = (tool, step, fields) => {
    results[tool] ??= {};
    results[tool][step] = fields;
    emit({ tool, step, ...fields });
  };

  const resticEnv = { RESTIC_PASSWORD: 'bench-peers', RESTIC_REPOSITORY: join(work, 'restic-repo'), RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  const borgEnv = { BORG_BASE_DIR: join(work, 'borg-base'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  const engram = join(work, 'corpus.engram');

  let borgArchives = 0;
  const ingestSteps = {
    embrfs: () => timed('node', [embrfsBin, 'ingest', corpus, '-o', engram, '--quiet']),
    restic: (first) => {
      if (first) timed('restic', ['init', '--repository-version', '2'], { env: resticEnv });
      return timed('restic', ['backup', '--compression', 'auto', '--quiet', 'corpus'], { env: resticEnv });
    },
    borg: (first) => {
      if (first) timed('borg', ['init', '-e', 'none', join(work, 'borg-repo')], { env: borgEnv });
      borgArchives += 1;
      return timed('borg', ['create', `${join(work, 'borg-repo')}::${first ? 'first' : `next-${borgArchives}`}`, 'corpus'], { env: borgEnv });
    },
    tar: (first) => timed('sh', ['-c', `tar -cf - corpus | zstd -3 -q -f -o ${first ? 'corpus.tar.zst' : 'corpus2.tar.zst'}`]),
  };
  const storedSize = {
    embrfs: () => engramBytes(engram),
    restic: () => sizeOf(resticEnv.RESTIC_REPOSITORY),
    borg: () => sizeOf(join(work, 'borg-repo')),
    // tar has no increments: its "re-ingest" writes a second full archive; growth is that archive.
    tar: (first) => statSync(join(work, first ? 'corpus.tar.zst' : 'corpus2.tar.zst')).size,
  };
  const extractSteps = {
    embrfs: (out) => timed('node', [embrfsBin, 'extract', engram, out, '--quiet']),
    restic: (out) => timed('restic', ['restore', 'latest', '--target', out], { env: resticEnv }),
    borg: (out) => {
      mkdirSync(out);
      return timed('borg', ['extract', `${join(work, 'borg-repo')}::first`], { env: borgEnv, cwd: out });
    },
    tar: (out) => {
      mkdirSync(out);
      return timed('sh', ['-c', `zstd -dc -q corpus.tar.zst | tar -xf - -C ${out}`]);
    },
  };
  // Where each tool puts the corpus inside its output directory.
  const extractedRoot = {
    embrfs: (out) => out,
    restic: (out) => join(out, 'corpus'),
    borg: (out) => join(out, 'corpus'),
    tar: (out) => join(out, 'corpus'),
  };

  const median = (values) => {
    const sorted = [...values].sort((left, right) => left - right);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const resetRepository = {
    embrfs: () => ['', '-wal', '-shm'].forEach((suffix) => rmSync(engram + suffix, { force: true })),
    restic: () => {
      rmSync(resticEnv.RESTIC_REPOSITORY, { recursive: true, force: true });
      rmSync(resticEnv.RESTIC_CACHE_DIR, { recursive: true, force: true });
    },
    borg: () => {
      rmSync(join(work, 'borg-repo'), { recursive: true, force: true });
      rmSync(borgEnv.BORG_BASE_DIR, { recursive: true, force: true });
    },
    tar: () => rmSync(join(work, 'corpus.tar.zst'), { force: true }),
  };

  // Rounds interleave the tools (embrfs, restic, borg, tar, embrfs, ...) so a load change on the
  // shared machine hits all of them alike; each step reports the median of its rounds.
  const perRound = {};
  for (let round = 1; round <= rounds; round += 1) {
    for (const tool of tools) {
      resetRepository[tool]();
      const ingestTime = ingestSteps[tool](true);
      const storedBytes = storedSize[tool](true);
      if (tool === 'embrfs' && round === rounds) emit({ tool, step: 'stored-breakdown', round, ...engramBreakdown(engram) });
      const out = join(work, `${tool}-out`);
      const extractTime = extractSteps[tool](out);
      const same = identical(corpus, extractedRoot[tool](out));
      rmSync(out, { recursive: true, force: true });
      perRound[tool] ??= { ingest: [], extract: [], storedBytes: 0, identical: true };
      perRound[tool].ingest.push(ingestTime);
      perRound[tool].extract.push(extractTime);
      perRound[tool].storedBytes = storedBytes;
      perRound[tool].identical &&= same;
      emit({ tool, step: 'round', round, ingestSeconds: ingestTime.seconds, ingestCpuSeconds: ingestTime.cpuSeconds, extractSeconds: extractTime.seconds, extractCpuSeconds: extractTime.cpuSeconds, storedBytes, identical: same });
    }
  }
  for (const tool of tools) {
    const data = perRound[tool];
    const ingestSeconds = median(data.ingest.map((item) => item.seconds));
    const extractSeconds = median(data.extract.map((item) => item.seconds));
    record(tool, 'ingest', {
      rounds,
      seconds: ingestSeconds,
      cpuSeconds: median(data.ingest.map((item) => item.cpuSeconds)),
      maxRssMiB: Math.max(...data.ingest.map((item) => item.maxRssMiB)),
      storedBytes: data.storedBytes,
      storedRatio: Math.round((data.storedBytes / corpusBytes) * 1000) / 1000,
      mbPerSecond: Math.round((corpusBytes / 1e6 / ingestSeconds) * 10) / 10,
    });
    record(tool, 'extract', {
      rounds,
      seconds: extractSeconds,
      cpuSeconds: median(data.extract.map((item) => item.cpuSeconds)),
      maxRssMiB: Math.max(...data.extract.map((item) => item.maxRssMiB)),
      identical: data.identical,
      mbPerSecond: Math.round((corpusBytes / 1e6 / extractSeconds) * 10) / 10,
    });
  }

  // Re-ingest rounds: each changes another 1% of the files (every 100th file, shifted by the
  // round), the same way for everyone, then every tool takes in the changed tree.
  const reingest = {};
  for (let round = 1; round <= rounds; round += 1) {
    const changed = corpusFiles.filter((_file, index) => index % 100 === (50 + round) % 100);
    changed.forEach((file, index) => {
      const data = readFileSync(file);
      const line = Buffer.from(`embrfs bench-peers change ${round}.${index}\n`);
      let next;
      if (index % 3 === 0) next = Buffer.concat([line, data]);
      else if (index % 3 === 1) {
        next = Buffer.from(data);
        const at = Math.floor(next.length / 2);
        for (let offset = 0; offset < 16 && at + offset < next.length; offset += 1) next[at + offset] ^= 0x20;
        if (next.length === 0) next = line;
      } else next = Buffer.concat([data, line]);
      writeFileSync(file, next);
    });
    emit({ tool: 'corpus', step: 'change', round, changedFiles: changed.length, rule: 'every 100th file: insert a line at the start / flip 16 bytes in the middle / append a line' });
    for (const tool of tools) {
      const before = storedSize[tool](true);
      const time = ingestSteps[tool](false);
      const after = storedSize[tool](false) + (tool === 'tar' ? before : 0);
      if (tool === 'tar') rmSync(join(work, 'corpus2.tar.zst'), { force: true });
      reingest[tool] ??= [];
      reingest[tool].push({ ...time, growthBytes: after - before, storedBytes: after });
      emit({ tool, step: 'reingest-round', round, seconds: time.seconds, cpuSeconds: time.cpuSeconds, growthBytes: after - before });
    }
  }
  for (const tool of tools) {
    const data = reingest[tool];
    record(tool, 'reingest', {
      rounds,
      seconds: median(data.map((item) => item.seconds)),
      cpuSeconds: median(data.map((item) => item.cpuSeconds)),
      maxRssMiB: Math.max(...data.map((item) => item.maxRssMiB)),
      storedBytes: data[data.length - 1].storedBytes,
      growthBytes: median(data.map((item) => item.growthBytes)),
    });
  }

  if (results.embrfs !== undefined && results.restic !== undefined) {
    const ratio = (numerator, denominator) => Math.round((numerator / denominator) * 1000) / 1000;
    const embrfs = results.embrfs;
    const restic = results.restic;
    const ratios = {
      ingestTime: ratio(embrfs.ingest.seconds, restic.ingest.seconds),
      extractTime: ratio(embrfs.extract.seconds, restic.extract.seconds),
      storedBytes: ratio(embrfs.ingest.storedBytes, restic.ingest.storedBytes),
      reingestTime: ratio(embrfs.reingest.seconds, restic.reingest.seconds),
      growthBytes: ratio(Math.max(embrfs.reingest.growthBytes, 1), Math.max(restic.reingest.growthBytes, 1)),
    };
    const floors = { ingestTime: 2, extractTime: 1.5, storedBytes: 1.3, reingestTime: 2, growthBytes: 3 };
    const meetsFloor = Object.fromEntries(Object.entries(floors).map(([key, floor]) => [key, ratios[key] <= floor]));
    emit({ tool: 'embrfs', step: 'ratios-to-restic', ...ratios, floors, meetsFloor, beatsRestic: Object.fromEntries(Object.entries(ratios).map(([key, value]) => [key, value < 1])) });
    for (const tool of tools.filter((name) => name !== 'restic' && name !== 'embrfs')) {
      emit({ tool, step: 'ratios-to-restic', ingestTime: ratio(results[tool].ingest.seconds, restic.ingest.seconds), extractTime: ratio(results[tool].extract.seconds, restic.extract.seconds), storedBytes: ratio(results[tool].ingest.storedBytes, restic.ingest.storedBytes) });
    }
  }
} finally {
  if (keep) process.stderr.write(`bench-peers: kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}
