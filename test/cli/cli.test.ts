/**
 * End-to-end tests of the `embrfs` command line: the built CLI runs as a child process, as a
 * user would run it (`node bin/embrfs.js ...`, cwd = repository root). Run `npx tsc` first.
 * EMBRFS_SLOW=1 makes the big file 64 MiB instead of 9 MiB.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, chmod, link, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compareTrees, makeTree, pseudoRandomBytes, runCli, runProgram } from './helpers.js';

const slow = process.env.EMBRFS_SLOW === '1';
// Above the CLI's 8 MiB streaming threshold, so the big-file path runs in the default tier too.
const bigFileBytes = slow ? 64 * 1024 * 1024 : 9 * 1024 * 1024 + 123;

let base = '';
let source = '';
let engramFile = '';

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'embrfs-cli-e2e-'));
  source = join(base, 'source');
  engramFile = join(base, 'tree.engram');
  await makeTree(source, { bigFileBytes });
  // --jobs 2 starts the worker threads at once (by default they wait for 16 MiB of work).
  const ingested = await runCli(['ingest', source, '-o', engramFile, '--jobs', '2']);
  assert.equal(ingested.code, 0, ingested.stderr);
});

after(async () => {
  if (base !== '') await rm(base, { recursive: true, force: true });
});

async function diffTrees(expected: string, actual: string): Promise<void> {
  const differences = await compareTrees(expected, actual);
  assert.deepEqual(differences, []);
  const diff = await runProgram('diff', ['-r', '--no-dereference', expected, actual]);
  assert.equal(diff.code, 0, `diff -r: ${diff.stdout}${diff.stderr}`);
}

test('ingest then extract gives a tree equal to the source in bytes, modes, times, owners and links', async () => {
  const outDir = join(base, 'out-1');
  const extracted = await runCli(['extract', engramFile, outDir]);
  assert.equal(extracted.code, 0, extracted.stderr);
  assert.equal(extracted.stdout, '');
  await diffTrees(source, outDir);
});

test('verify exits 0 and --json prints one document when the engram is intact', async () => {
  const human = await runCli(['verify', engramFile]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^ok: /m);
  const json = await runCli(['verify', engramFile, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { ok: boolean; damagedPaths: string[]; checkedFiles: number };
  assert.equal(report.ok, true);
  assert.deepEqual(report.damagedPaths, []);
  assert.ok(report.checkedFiles >= 15);
  assert.equal(json.stdout.trim().split('\n').length, 1);
});

test('info, ls and log print one stable JSON document each with --json', async () => {
  const info = await runCli(['info', engramFile, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const document = JSON.parse(info.stdout) as Record<string, unknown>;
  for (const key of ['files', 'directories', 'logicalBytes', 'storedBytes', 'storedRatio', 'dedupRatio', 'correctionOverhead', 'vectorByteFraction', 'snapshots']) {
    assert.ok(key in document, `info --json has ${key}`);
  }
  assert.ok((document.logicalBytes as number) >= bigFileBytes);
  const human = await runCli(['info', engramFile]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /dedup ratio/);

  const listing = await runCli(['ls', engramFile, '/', '--json']);
  assert.equal(listing.code, 0, listing.stderr);
  const entries = (JSON.parse(listing.stdout) as { entries: { name: string; type: string; target?: string; mode: number }[] }).entries;
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  assert.equal(byName.get('absolute-link')?.type, 'symlink');
  assert.equal(byName.get('absolute-link')?.target, '/etc/passwd');
  assert.equal(byName.get('script.sh')?.mode, 0o755);
  assert.equal(byName.get('ünïcödé 日本語 ✓.txt')?.type, 'file');

  const long = await runCli(['ls', engramFile, '/', '-l']);
  assert.equal(long.code, 0, long.stderr);
  assert.match(long.stdout, /^-rwxr-xr-x .* script\.sh$/m);
  assert.match(long.stdout, /^l.* absolute-link -> \/etc\/passwd$/m);

  const log = await runCli(['log', engramFile, '/name with spaces.txt', '--json']);
  assert.equal(log.code, 0, log.stderr);
  const history = (JSON.parse(log.stdout) as { entries: { kind: string; size: number; sha256: string | null }[] }).entries;
  assert.ok(history.length >= 1);
  assert.equal(history[0].size, 'spaces\n'.length);
});

test('cat streams the exact bytes of a file, also of a big one', async () => {
  const cat = await runCli(['cat', engramFile, '/name with spaces.txt']);
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, 'spaces\n');
  const outFile = join(base, 'big-from-cat.bin');
  const viaShell = await runProgram('sh', ['-c', `node bin/embrfs.js cat "$1" /big.bin > "$2"`, 'sh', engramFile, outFile]);
  assert.equal(viaShell.code, 0, viaShell.stderr);
  assert.ok((await readFile(outFile)).equals(await readFile(join(source, 'big.bin'))));
});

test('re-ingest of an unchanged tree adds no chunks, and changes, additions and removals are applied', async () => {
  const before = JSON.parse((await runCli(['info', engramFile, '--json'])).stdout) as { chunks: number; uniqueChunkBytes: number };
  const again = await runCli(['ingest', source, '-o', engramFile]);
  assert.equal(again.code, 0, again.stderr);
  const unchanged = JSON.parse((await runCli(['info', engramFile, '--json'])).stdout) as { chunks: number; uniqueChunkBytes: number };
  assert.equal(unchanged.chunks, before.chunks);
  assert.equal(unchanged.uniqueChunkBytes, before.uniqueChunkBytes);

  // Change one chunk in the middle of the big file (same size), append to another, remove, add, chmod.
  const bigPath = join(source, 'big.bin');
  const big = await readFile(bigPath);
  big.fill(7, 4096 * 10, 4096 * 11);
  await writeFile(bigPath, big);
  await appendFile(join(source, 'text.txt'), 'one more line\n');
  await unlink(join(source, 'size-1.bin'));
  await rm(join(source, 'empty-dir-2'), { recursive: true });
  await writeFile(join(source, 'new file.txt'), pseudoRandomBytes('new', 10_000));
  await chmod(join(source, 'name with spaces.txt'), 0o600);
  await utimes(join(source, 'size-0.bin'), 1_600_000_000, 1_600_000_000);
  // Hard links change too: one path leaves its group, a new group appears.
  await unlink(join(source, 'hard-b.txt'));
  await writeFile(join(source, 'hard-b.txt'), 'now a separate file\n');
  await link(join(source, 'script.sh'), join(source, 'script-link.sh'));
  const changed = await runCli(['ingest', source, '-o', engramFile, '--jobs', '1']);
  assert.equal(changed.code, 0, changed.stderr);
  const after = JSON.parse((await runCli(['info', engramFile, '--json'])).stdout) as { chunks: number; uniqueChunkBytes: number };
  // One new 4 KiB chunk in big.bin, the new file (3 chunks), the changed tail of text.txt: far fewer than a rewrite.
  assert.ok(after.chunks - unchanged.chunks <= 8, `chunks grew by ${after.chunks - unchanged.chunks}`);
  const outDir = join(base, 'out-2');
  const extracted = await runCli(['extract', engramFile, outDir, '--quiet']);
  assert.equal(extracted.code, 0, extracted.stderr);
  await diffTrees(source, outDir);
});

test('extract --path writes only that subtree and --snapshot the tree as it was', async () => {
  const snap = await runCli(['snapshot', 'create', engramFile, 'first']);
  assert.equal(snap.code, 0, snap.stderr);
  const removed = await runCli(['rm', engramFile, '/sub', '-r']);
  assert.equal(removed.code, 0, removed.stderr);
  const listed = await runCli(['snapshot', 'list', engramFile, '--json']);
  assert.deepEqual((JSON.parse(listed.stdout) as { snapshots: { name: string }[] }).snapshots.map((item) => item.name), ['first']);
  const outDir = join(base, 'out-sub');
  const extracted = await runCli(['extract', engramFile, outDir, '--snapshot', 'first', '--path', '/sub', '--quiet']);
  assert.equal(extracted.code, 0, extracted.stderr);
  assert.deepEqual(await readdir(outDir), ['sub']);
  assert.deepEqual(await compareTrees(join(source, 'sub'), join(outDir, 'sub')).then((list) => list.filter((line) => !line.includes('linkGroup') && !line.includes('nlink'))), []);
  const restored = await runCli(['snapshot', 'restore', engramFile, 'first']);
  assert.equal(restored.code, 0, restored.stderr);
  const cat = await runCli(['cat', engramFile, '/sub/target.txt']);
  assert.equal(cat.stdout, 'link target\n');
});

test('put, mkdir, mv, rm and put --if-version behave and a version mismatch exits 1', async () => {
  const local = join(base, 'put.txt');
  await writeFile(local, 'version one\n');
  const created = await runCli(['put', engramFile, local, '/docs/put.txt']);
  assert.equal(created.code, 2, 'parent missing is bad input');
  assert.equal((await runCli(['mkdir', engramFile, '/docs/deeper', '-p'])).code, 0);
  const first = await runCli(['put', engramFile, local, '/docs/put.txt', '--if-version', '0']);
  assert.equal(first.code, 0, first.stderr);
  const version = Number(first.stdout.trim());
  assert.ok(version > 0);
  const again = await runCli(['put', engramFile, local, '/docs/put.txt', '--if-version', '0']);
  assert.equal(again.code, 1, again.stderr);
  await writeFile(local, 'version two\n');
  const stale = await runCli(['put', engramFile, local, '/docs/put.txt', '--if-version', String(version - 1)]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /^embrfs: version mismatch.*\(\/docs\/put\.txt\): /);
  const fresh = await runCli(['put', engramFile, local, '/docs/put.txt', '--if-version', String(version)]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.equal((await runCli(['cat', engramFile, '/docs/put.txt'])).stdout, 'version two\n');
  const fromStdin = await runCli(['put', engramFile, '-', '/docs/stdin.txt'], { input: 'piped\n' });
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.equal((await runCli(['cat', engramFile, '/docs/stdin.txt'])).stdout, 'piped\n');
  assert.equal((await runCli(['mv', engramFile, '/docs/put.txt', '/docs/deeper/moved.txt'])).code, 0);
  assert.equal((await runCli(['cat', engramFile, '/docs/deeper/moved.txt'])).stdout, 'version two\n');
  assert.equal((await runCli(['rm', engramFile, '/docs'])).code, 2, 'rm of a directory without -r');
  assert.equal((await runCli(['rm', engramFile, '/docs', '-r'])).code, 0);
  assert.equal((await runCli(['cat', engramFile, '/docs/deeper/moved.txt'])).code, 2);
});

test('usage errors and foreign or missing engrams exit 2 with one line naming the file', async () => {
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^embrfs: .*unknown command/);
  assert.equal((await runCli(['extract', engramFile])).code, 2);
  assert.equal((await runCli(['ls', engramFile, '--bogus'])).code, 2);
  const missing = await runCli(['info', join(base, 'missing.engram')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^embrfs: engram not found \(.*missing\.engram\): /);
  const foreign = join(base, 'foreign.bin');
  await writeFile(foreign, pseudoRandomBytes('foreign', 100_000));
  const notEngram = await runCli(['info', foreign]);
  assert.equal(notEngram.code, 2, notEngram.stderr);
  assert.match(notEngram.stderr, /^embrfs: not an engram.*foreign\.bin/);
  assert.equal(notEngram.stderr.trim().split('\n').length, 1);
  const foreignDatabase = join(base, 'foreign.sqlite');
  const database = new Database(foreignDatabase);
  database.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
  database.close();
  const notEngramDatabase = await runCli(['verify', foreignDatabase]);
  assert.equal(notEngramDatabase.code, 2, notEngramDatabase.stderr);
  assert.match(notEngramDatabase.stderr, /^embrfs: not an engram/);
  const truncated = join(base, 'truncated.engram');
  await writeFile(truncated, (await readFile(engramFile)).subarray(0, 64 * 1024));
  const damagedOpen = await runCli(['verify', truncated]);
  assert.equal(damagedOpen.code, 2, damagedOpen.stderr);
  assert.match(damagedOpen.stderr, /^embrfs: .*\(.*truncated\.engram\): /);
  assert.equal(damagedOpen.stderr.trim().split('\n').length, 1);
  const missingSnapshot = await runCli(['ls', engramFile, '/', '--snapshot', 'no-such-snapshot']);
  assert.equal(missingSnapshot.code, 2);
  assert.match(missingSnapshot.stderr, /^embrfs: snapshot not found \(no-such-snapshot\)/);
  const missingSource = await runCli(['ingest', join(base, 'no-such-dir'), '-o', join(base, 'x.engram')]);
  assert.equal(missingSource.code, 2);
  assert.match(missingSource.stderr, /no-such-dir/);
  const notEmpty = await runCli(['extract', engramFile, source]);
  assert.equal(notEmpty.code, 2);
  assert.match(notEmpty.stderr, /not empty/);
});

test('--help on every command prints an example and exits 0', async () => {
  const commands = ['ingest', 'extract', 'ls', 'cat', 'put', 'rm', 'mv', 'mkdir', 'info', 'verify', 'snapshot', 'log', 'compact', 'mount', 'umount'];
  const results = await Promise.all([runCli(['--help']), ...commands.map((command) => runCli([command, '--help'])), runCli(['snapshot', 'create', '--help'])]);
  for (const result of results) {
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Example:\n {2}\$ embrfs /);
  }
});

test('verify exits 1 and names the file when a stored chunk is damaged', async () => {
  const damaged = join(base, 'damaged.engram');
  const tree = join(base, 'small-tree');
  await makeTree(tree, { bigFileBytes: 300_000 });
  assert.equal((await runCli(['ingest', tree, '-o', damaged, '--quiet'])).code, 0);
  const database = new Database(damaged);
  try {
    // The pack holding big.bin's middle chunk: flip one byte in the middle of its payload.
    const row = database
      .prepare(
        `SELECT p.pack_id AS packId, length(p.data) AS dataBytes FROM dentries d
         JOIN file_chunks f ON f.ino = d.child_ino AND f.to_commit IS NULL AND f.chunk_index <= 30 AND f.chunk_index + f.run_count > 30
         JOIN chunks c ON c.chunk_id = f.chunk_id + (30 - f.chunk_index) JOIN packs p ON p.pack_id = c.pack_id
         WHERE d.parent_ino = 1 AND d.name = 'big.bin' AND d.to_commit IS NULL`,
      )
      .get() as { packId: number; dataBytes: number } | undefined;
    assert.ok(row !== undefined, 'found the pack of big.bin');
    const data = (database.prepare('SELECT data FROM packs WHERE pack_id = ?').get(row.packId) as { data: Buffer }).data;
    data[Math.floor(data.length / 2)] ^= 0x5a;
    database.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(data, row.packId);
  } finally {
    database.close();
  }
  const human = await runCli(['verify', damaged]);
  assert.equal(human.code, 1, human.stderr);
  assert.match(human.stdout, /^damaged .*big\.bin$/m);
  assert.match(human.stderr, /^embrfs: verify found \d+ damaged file\(s\).*big\.bin/);
  const json = await runCli(['verify', damaged, '--json']);
  assert.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; damagedPaths: string[] };
  assert.equal(report.ok, false);
  assert.ok(report.damagedPaths.some((path) => path.endsWith('/big.bin')), report.damagedPaths.join(','));
});

test('extract writes nothing outside its directory when names in the engram are hostile', async () => {
  const hostile = join(base, 'hostile.engram');
  const tree = join(base, 'hostile-tree');
  await makeTree(tree, { bigFileBytes: 10_000 });
  assert.equal((await runCli(['ingest', tree, '-o', hostile, '--quiet'])).code, 0);
  const database = new Database(hostile);
  try {
    const file = database.prepare(`SELECT child_ino AS ino, from_commit AS fromCommit FROM dentries WHERE parent_ino = 1 AND name = 'name with spaces.txt' AND to_commit IS NULL`).get() as {
      ino: number;
      fromCommit: number;
    };
    const insert = database.prepare('INSERT INTO dentries(parent_ino, name, from_commit, to_commit, child_ino) VALUES (1, ?, ?, NULL, ?)');
    for (const name of ['..', '../escape.txt', '../../escape2.txt', '/tmp/absolute.txt', 'a/b']) insert.run(name, file.fromCommit, file.ino);
  } finally {
    database.close();
  }
  const sandbox = join(base, 'sandbox');
  const outDir = join(sandbox, 'deep', 'out');
  const before = await readdir(base);
  const extracted = await runCli(['extract', hostile, outDir, '--quiet']);
  assert.ok(extracted.code === 1 || extracted.code === 2, `exit ${extracted.code}: ${extracted.stderr}`);
  assert.match(extracted.stderr, /^embrfs: refused unsafe entry "\/\.\."/m);
  assert.match(extracted.stderr, /^embrfs: refused unsafe entry "\/\.\.\/escape\.txt": slash in a name/m);
  assert.equal(await readFile(join(outDir, 'name with spaces.txt'), 'utf8'), 'spaces\n');
  // Only the sandbox is new (a read-only open may leave SQLite's -wal/-shm beside the engram).
  const isNew = (name: string) => !before.includes(name) && !name.endsWith('-wal') && !name.endsWith('-shm');
  assert.deepEqual((await readdir(base)).filter(isNew), ['sandbox']);
  assert.deepEqual(await readdir(join(sandbox, 'deep')), ['out']);
  await assert.rejects(stat('/tmp/absolute.txt'));
  await assert.rejects(stat(join(sandbox, 'escape.txt')));
});

test('ingest of several sources puts each under its name, and log, compact and snapshot delete work on it', async () => {
  const multi = join(base, 'multi.engram');
  const fileSource = join(base, 'single-file.txt');
  await writeFile(fileSource, 'single\n');
  const ingested = await runCli(['ingest', join(source, 'sub'), fileSource, '-o', multi, '--quiet']);
  assert.equal(ingested.code, 0, ingested.stderr);
  assert.equal((await runCli(['ls', multi])).stdout, 'single-file.txt\nsub\n');
  assert.equal((await runCli(['cat', multi, '/sub/target.txt'])).stdout, 'link target\n');
  assert.equal((await runCli(['snapshot', 'create', multi, 'before'])).code, 0);
  await writeFile(fileSource, 'single, changed\n');
  const compacting = await runCli(['ingest', join(source, 'sub'), fileSource, '-o', multi, '--compact']);
  assert.equal(compacting.code, 0, compacting.stderr);
  const log = await runCli(['log', multi, '--json']);
  assert.equal(log.code, 0, log.stderr);
  const entries = (JSON.parse(log.stdout) as { entries: { path: string; commit: number }[] }).entries;
  assert.equal(entries[0].path, '/single-file.txt');
  assert.ok(entries.length >= 2);
  assert.equal((await runCli(['cat', multi, '/single-file.txt', '--snapshot', 'before'])).stdout, 'single\n');
  assert.equal((await runCli(['snapshot', 'delete', multi, 'before'])).code, 0);
  assert.equal((await runCli(['cat', multi, '/single-file.txt', '--snapshot', 'before'])).code, 2);
  const compacted = await runCli(['compact', multi, '--json']);
  assert.equal(compacted.code, 0, compacted.stderr);
  const report = JSON.parse(compacted.stdout) as { freedChunks: number; bytesBefore: number; bytesAfter: number };
  assert.ok(report.bytesAfter <= report.bytesBefore);
  assert.equal((await runCli(['verify', multi, '--quiet'])).code, 0);
  await mkdir(join(base, 'other', 'sub'), { recursive: true });
  const duplicate = await runCli(['ingest', join(source, 'sub'), join(base, 'other', 'sub'), '-o', join(base, 'dup.engram')]);
  assert.equal(duplicate.code, 2);
  assert.match(duplicate.stderr, /two sources share the name 'sub'/);
});

test('the progress bar shows files, MB, MB/s and ETA on a terminal only, and never with --quiet', async () => {
  const tree = join(base, 'progress-tree');
  await mkdir(tree);
  for (let index = 0; index < 20; index += 1) await writeFile(join(tree, `f${index}`), pseudoRandomBytes(`p${index}`, 5000));
  const piped = await runCli(['ingest', tree, '-o', join(base, 'progress-1.engram')]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr, /\u001b\[|MB\/s/);
  // `script` gives the CLI a pseudo-terminal, as a person at a terminal would.
  const onTerminal = await runProgram('script', ['-qec', `node bin/embrfs.js ingest '${tree}' -o '${join(base, 'progress-2.engram')}'`, '/dev/null']);
  assert.equal(onTerminal.code, 0, onTerminal.stderr);
  assert.match(onTerminal.stdout, /ingest \[.*\] \d+% \| \d+\/20 files \| [\d.]+\/[\d.]+ MB \| [\d.]+ MB\/s \| ETA/);
  const quiet = await runProgram('script', ['-qec', `node bin/embrfs.js ingest '${tree}' -o '${join(base, 'progress-3.engram')}' --quiet`, '/dev/null']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /MB\/s/);
});

test('a big ingest of many identical files ends with no unreferenced packs and extracts equal', async () => {
  const tree = join(base, 'duplicates');
  await mkdir(tree);
  const content = pseudoRandomBytes('duplicate', 4 * 1024 * 1024);
  for (let index = 0; index < 9; index += 1) await writeFile(join(tree, `copy-${index}.bin`), content);
  const dupEngram = join(base, 'duplicates.engram');
  const ingested = await runCli(['ingest', tree, '-o', dupEngram, '--jobs', '2']);
  assert.equal(ingested.code, 0, ingested.stderr);
  const database = new Database(dupEngram, { readonly: true });
  try {
    const orphans = database.prepare('SELECT count(*) AS count FROM packs WHERE pack_id NOT IN (SELECT pack_id FROM chunks)').get() as { count: number };
    assert.equal(orphans.count, 0);
  } finally {
    database.close();
  }
  const info = JSON.parse((await runCli(['info', dupEngram, '--json'])).stdout) as { storedBytes: number; logicalBytes: number };
  assert.equal(info.logicalBytes, 9 * content.length);
  assert.ok(info.storedBytes < 2 * content.length, `stored ${info.storedBytes}`);
  const outDir = join(base, 'out-duplicates');
  assert.equal((await runCli(['extract', dupEngram, outDir, '--quiet'])).code, 0);
  await diffTrees(tree, outDir);
});

test('ingest never ingests the engram into itself when it lives inside the source', async () => {
  const tree = join(base, 'self-tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'a\n');
  const inside = join(tree, 'self.engram');
  for (let round = 0; round < 2; round += 1) {
    const ingested = await runCli(['ingest', tree, '-o', inside, '--quiet']);
    assert.equal(ingested.code, 0, ingested.stderr);
  }
  assert.equal((await runCli(['ls', inside])).stdout, 'a.txt\n');
});

test('an ingest killed between its workers\' commits leaves a sound engram, and running it again completes it', async () => {
  const tree = join(base, 'killed');
  // 6,000 distinct files of 2 KiB in 60 directories: three worker batches (2,048 ops each).
  const fileCount = 6000;
  for (let directory = 0; directory < 60; directory += 1) {
    await mkdir(join(tree, `d${directory}`), { recursive: true });
    for (let file = 0; file < 100; file += 1) {
      await writeFile(join(tree, `d${directory}`, `f${file}.bin`), pseudoRandomBytes(`killed-${directory}-${file}`, 2048));
    }
  }
  const killedEngram = join(base, 'killed.engram');
  const child = spawn(process.execPath, ['bin/embrfs.js', 'ingest', tree, '-o', killedEngram, '--jobs', '2', '--quiet'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Kill as soon as a first worker batch is committed (visible to another reader), before the rest.
  const committedFiles = (): number => {
    let database: Database.Database | undefined;
    try {
      database = new Database(killedEngram, { readonly: true, fileMustExist: true });
      const row = database.prepare("SELECT count(*) AS count FROM inodes WHERE type = 'file' AND to_commit IS NULL").get() as { count: number };
      return row.count;
    } catch {
      return 0; // not created yet, or its schema not committed yet
    } finally {
      database?.close();
    }
  };
  const deadline = Date.now() + 120_000;
  let killed = false;
  while (Date.now() < deadline && child.exitCode === null) {
    if (committedFiles() > 0) {
      killed = child.kill('SIGKILL');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await exited;
  assert.ok(killed, 'the ingest ended before it could be killed');
  const verified = await runCli(['verify', killedEngram, '--json']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const partial = JSON.parse((await runCli(['info', killedEngram, '--json'])).stdout) as { files: number };
  assert.ok(partial.files > 0 && partial.files < fileCount, `the killed ingest had ${partial.files} of ${fileCount} files`);
  const again = await runCli(['ingest', tree, '-o', killedEngram, '--jobs', '2', '--quiet']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await runCli(['verify', killedEngram])).code, 0);
  const outDir = join(base, 'out-killed');
  assert.equal((await runCli(['extract', killedEngram, outDir, '--quiet'])).code, 0);
  await diffTrees(tree, outDir);
});
