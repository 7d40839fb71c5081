// Model-based test: random sequences of operations run against VersionedEmbrFS and against a
// plain in-memory model of a POSIX-like tree; after every step the whole tree (names, types,
// bytes, modes, link counts, inode sharing, symlink targets) is compared through the writing
// connection and through a second connection to the same file, and snapshots are re-compared. fast-check shrinks a failing sequence to a short one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { openEngram, type Engram } from '../../src/index.js';
import { assertBytesEqual, createTempEngram, describeError, expectEmbrError, slowTier } from './helpers.js';

interface ModelFile {
  kind: 'file';
  /** Shared by hard links. */
  inode: { id: number; data: Uint8Array; mode: number };
}
interface ModelDirectory {
  kind: 'directory';
  mode: number;
}
interface ModelSymlink {
  kind: 'symlink';
  target: string;
}
type ModelEntry = ModelFile | ModelDirectory | ModelSymlink;

/** The model: path -> entry for every path except the root. */
interface Model {
  entries: Map<string, ModelEntry>;
  /** Snapshot name -> a frozen copy of `entries`. */
  snapshots: Map<string, Map<string, ModelEntry>>;
  nextInodeId: number;
}

interface Real {
  engram: Engram;
  /** A second connection to the same engram file: it must see every commit at once (no stale caches). */
  observer: Engram;
}

type Command = fc.AsyncCommand<Model, Real, false>;

/** How many times each command kind ran (after its precondition held), over the whole property. */
const executedSteps = new Map<string, number>();
function countStep(kind: string): void {
  executedSteps.set(kind, (executedSteps.get(kind) ?? 0) + 1);
}

const names = ['a', 'b', 'c'];
// Paths up to two levels deep over three names: small enough that operations collide often.
const pathArbitrary = fc.oneof(
  { arbitrary: fc.constantFrom(...names.map((name) => `/${name}`)), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(...names), fc.constantFrom(...names)).map(([first, second]) => `/${first}/${second}`), weight: 1 },
);
const dataArbitrary = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  // Multi-chunk content at the default 4 KiB chunk size.
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 4000, max: 13_000 })).map(([value, length]) => {
    const bytes = new Uint8Array(length).fill(value);
    bytes[length >> 1] = value ^ 0xff;
    return bytes;
  }),
);

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === 0 ? '/' : path.slice(0, slash);
}

function isDirectory(model: Model, path: string): boolean {
  return path === '/' || model.entries.get(path)?.kind === 'directory';
}

function copyEntries(entries: Map<string, ModelEntry>): Map<string, ModelEntry> {
  // Inodes are copied once each so hard links in the copy still share one inode object.
  const inodeCopies = new Map<number, ModelFile['inode']>();
  const copy = new Map<string, ModelEntry>();
  for (const [path, entry] of entries) {
    if (entry.kind === 'file') {
      let inode = inodeCopies.get(entry.inode.id);
      if (inode === undefined) {
        inode = { ...entry.inode, data: entry.inode.data.slice() };
        inodeCopies.set(entry.inode.id, inode);
      }
      copy.set(path, { kind: 'file', inode });
    } else {
      copy.set(path, { ...entry });
    }
  }
  return copy;
}

/** Compares the whole tree of the engram (live or at `snapshot`) with `entries`. */
async function compareTree(engram: Engram, entries: Map<string, ModelEntry>, snapshot?: string): Promise<void> {
  const options = snapshot === undefined ? {} : { snapshot };
  const where = snapshot === undefined ? 'live' : `snapshot ${snapshot}`;
  const inodeOfModelInode = new Map<number, number>();
  const linkCounts = new Map<number, number>();
  for (const entry of entries.values()) if (entry.kind === 'file') linkCounts.set(entry.inode.id, (linkCounts.get(entry.inode.id) ?? 0) + 1);
  const walk = async (directory: string): Promise<void> => {
    const listed = await engram.readdir(directory, options);
    const prefix = directory === '/' ? '/' : `${directory}/`;
    const expectedNames = [...entries.keys()]
      .filter((path) => path.startsWith(prefix) && !path.slice(prefix.length).includes('/') && path !== directory)
      .map((path) => path.slice(prefix.length))
      .sort();
    assert.deepEqual(listed.map((entry) => entry.name).sort(), expectedNames, `${where}: readdir ${directory}`);
    for (const listedEntry of listed) {
      const path = `${prefix}${listedEntry.name}`;
      const expected = entries.get(path);
      assert.ok(expected !== undefined);
      assert.equal(listedEntry.type, expected.kind, `${where}: type of ${path}`);
      const stat = await engram.stat(path, options);
      assert.equal(stat.type, expected.kind, `${where}: stat type of ${path}`);
      assert.equal(stat.ino, listedEntry.ino, `${where}: readdir and stat agree on the inode of ${path}`);
      if (expected.kind === 'file') {
        const { data, version } = await engram.readFile(path, options);
        assertBytesEqual(data, expected.inode.data, `${where}: content of ${path}`);
        assert.equal(version, stat.version, `${where}: readFile and stat agree on the version of ${path}`);
        assert.equal(stat.size, expected.inode.data.length, `${where}: size of ${path}`);
        assert.equal(stat.mode, expected.inode.mode, `${where}: mode of ${path}`);
        assert.equal(stat.nlink, linkCounts.get(expected.inode.id), `${where}: nlink of ${path}`);
        const known = inodeOfModelInode.get(expected.inode.id);
        if (known === undefined) inodeOfModelInode.set(expected.inode.id, stat.ino);
        else assert.equal(stat.ino, known, `${where}: hard links share an inode (${path})`);
      } else if (expected.kind === 'directory') {
        assert.equal(stat.mode, expected.mode, `${where}: mode of ${path}`);
        await walk(path);
      } else {
        assert.equal(await engram.readlink(path, options), expected.target, `${where}: target of ${path}`);
      }
    }
  };
  await walk('/');
  // Distinct model inodes must be distinct engram inodes.
  assert.equal(new Set(inodeOfModelInode.values()).size, inodeOfModelInode.size, `${where}: distinct files have distinct inodes`);
}

async function compareAll(model: Model, real: Real): Promise<void> {
  await compareTree(real.engram, model.entries);
  await compareTree(real.observer, model.entries);
}

/**
 * Runs `action` and checks it against the model's prediction: either success (then `apply`
 * updates the model) or one of the listed error codes (then the model is unchanged).
 */
async function expectOutcome(
  action: () => Promise<unknown>,
  prediction: { errorCodes: Parameters<typeof expectEmbrError>[1][] } | { apply: () => void },
): Promise<void> {
  if ('apply' in prediction) {
    try {
      await action();
    } catch (error) {
      assert.fail(`expected success, got ${describeError(error)}`);
    }
    prediction.apply();
  } else {
    await expectEmbrError(action(), ...prediction.errorCodes);
  }
}

function missingParentCodes(model: Model, path: string): ('NOT_FOUND' | 'NOT_DIRECTORY')[] | undefined {
  const parent = parentOf(path);
  if (isDirectory(model, parent)) return undefined;
  return model.entries.has(parent) ? ['NOT_DIRECTORY', 'NOT_FOUND'] : ['NOT_FOUND', 'NOT_DIRECTORY'];
}

class WriteFileCommand implements Command {
  constructor(readonly path: string, readonly data: Uint8Array) {}
  check(model: Model): boolean {
    // Writing through a symlink path is left to the FUSE layer's semantics; not modelled here.
    return model.entries.get(this.path)?.kind !== 'symlink';
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('WriteFile');
    const existing = model.entries.get(this.path);
    const missing = missingParentCodes(model, this.path);
    let returnedVersion = 0;
    const action = async () => {
      returnedVersion = await real.engram.writeFile(this.path, this.data);
    };
    if (missing !== undefined) await expectOutcome(action, { errorCodes: missing });
    else if (existing?.kind === 'directory') await expectOutcome(action, { errorCodes: ['IS_DIRECTORY'] });
    else {
      await expectOutcome(action, {
        apply: () => {
          if (existing?.kind === 'file') existing.inode.data = this.data.slice();
          else model.entries.set(this.path, { kind: 'file', inode: { id: model.nextInodeId++, data: this.data.slice(), mode: 0o644 } });
        },
      });
      assert.equal((await real.engram.stat(this.path)).version, returnedVersion, 'writeFile returns the stored version');
    }
    await compareAll(model, real);
  }
  toString(): string {
    return `writeFile(${this.path}, ${this.data.length} bytes)`;
  }
}

class WriteAtCommand implements Command {
  constructor(readonly path: string, readonly offset: number, readonly data: Uint8Array) {}
  check(model: Model): boolean {
    return model.entries.get(this.path)?.kind === 'file';
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('WriteAt');
    const entry = model.entries.get(this.path) as ModelFile;
    await expectOutcome(() => real.engram.write(this.path, this.offset, this.data), {
      apply: () => {
        const old = entry.inode.data;
        const next = new Uint8Array(Math.max(old.length, this.offset + this.data.length));
        next.set(old);
        next.set(this.data, this.offset);
        entry.inode.data = next;
      },
    });
    await compareAll(model, real);
  }
  toString(): string {
    return `write(${this.path}, offset ${this.offset}, ${this.data.length} bytes)`;
  }
}

class TruncateCommand implements Command {
  constructor(readonly path: string, readonly size: number) {}
  check(model: Model): boolean {
    return model.entries.get(this.path)?.kind === 'file';
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Truncate');
    const entry = model.entries.get(this.path) as ModelFile;
    await expectOutcome(() => real.engram.truncate(this.path, this.size), {
      apply: () => {
        const next = new Uint8Array(this.size);
        next.set(entry.inode.data.subarray(0, this.size));
        entry.inode.data = next;
      },
    });
    await compareAll(model, real);
  }
  toString(): string {
    return `truncate(${this.path}, ${this.size})`;
  }
}

class DeleteCommand implements Command {
  constructor(readonly path: string) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Delete');
    const entry = model.entries.get(this.path);
    const action = () => real.engram.deleteFile(this.path);
    if (missingParentCodes(model, this.path) !== undefined) await expectOutcome(action, { errorCodes: ['NOT_FOUND', 'NOT_DIRECTORY'] });
    else if (entry === undefined) await expectOutcome(action, { errorCodes: ['NOT_FOUND'] });
    else if (entry.kind === 'directory') await expectOutcome(action, { errorCodes: ['IS_DIRECTORY'] });
    else await expectOutcome(action, { apply: () => model.entries.delete(this.path) });
    await compareAll(model, real);
  }
  toString(): string {
    return `deleteFile(${this.path})`;
  }
}

class MkdirCommand implements Command {
  constructor(readonly path: string) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Mkdir');
    const action = () => real.engram.mkdir(this.path);
    const missing = missingParentCodes(model, this.path);
    if (missing !== undefined) await expectOutcome(action, { errorCodes: missing });
    else if (model.entries.has(this.path)) await expectOutcome(action, { errorCodes: ['EXISTS'] });
    else await expectOutcome(action, { apply: () => model.entries.set(this.path, { kind: 'directory', mode: 0o755 }) });
    await compareAll(model, real);
  }
  toString(): string {
    return `mkdir(${this.path})`;
  }
}

class RmdirCommand implements Command {
  constructor(readonly path: string) {}
  check(model: Model): boolean {
    // rmdir of a missing parent or of a non-directory is covered by the error arms below.
    return model.entries.has(this.path) || missingParentCodes(model, this.path) === undefined;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Rmdir');
    const entry = model.entries.get(this.path);
    const action = () => real.engram.rmdir(this.path);
    if (entry === undefined) await expectOutcome(action, { errorCodes: ['NOT_FOUND'] });
    else if (entry.kind !== 'directory') await expectOutcome(action, { errorCodes: ['NOT_DIRECTORY'] });
    else if ([...model.entries.keys()].some((path) => path.startsWith(`${this.path}/`))) await expectOutcome(action, { errorCodes: ['NOT_EMPTY'] });
    else await expectOutcome(action, { apply: () => model.entries.delete(this.path) });
    await compareAll(model, real);
  }
  toString(): string {
    return `rmdir(${this.path})`;
  }
}

class RenameCommand implements Command {
  constructor(readonly from: string, readonly to: string) {}
  check(model: Model): boolean {
    const source = model.entries.get(this.from);
    const target = model.entries.get(this.to);
    if (source === undefined || this.from === this.to) return false;
    if (this.to.startsWith(`${this.from}/`) || !isDirectory(model, parentOf(this.to))) return false;
    // Renames over directories (and of a directory over a file) have several valid POSIX
    // outcomes; the model keeps to the unambiguous ones.
    if (target !== undefined && (target.kind === 'directory' || source.kind === 'directory')) return false;
    // POSIX makes a rename between two links of one inode a no-op; also left out as a corner.
    if (target?.kind === 'file' && source.kind === 'file' && target.inode === source.inode) return false;
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Rename');
    await expectOutcome(() => real.engram.rename(this.from, this.to), {
      apply: () => {
        const moved = [...model.entries].filter(([path]) => path === this.from || path.startsWith(`${this.from}/`));
        for (const [path] of moved) model.entries.delete(path);
        model.entries.delete(this.to);
        for (const [path, entry] of moved) model.entries.set(this.to + path.slice(this.from.length), entry);
      },
    });
    await compareAll(model, real);
  }
  toString(): string {
    return `rename(${this.from}, ${this.to})`;
  }
}

class LinkCommand implements Command {
  constructor(readonly existing: string, readonly path: string) {}
  check(model: Model): boolean {
    return model.entries.get(this.existing)?.kind === 'file' && isDirectory(model, parentOf(this.path));
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Link');
    const source = model.entries.get(this.existing) as ModelFile;
    const action = () => real.engram.link(this.existing, this.path);
    if (model.entries.has(this.path)) await expectOutcome(action, { errorCodes: ['EXISTS'] });
    else await expectOutcome(action, { apply: () => model.entries.set(this.path, { kind: 'file', inode: source.inode }) });
    await compareAll(model, real);
  }
  toString(): string {
    return `link(${this.existing}, ${this.path})`;
  }
}

class SymlinkCommand implements Command {
  constructor(readonly target: string, readonly path: string) {}
  check(model: Model): boolean {
    return isDirectory(model, parentOf(this.path));
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Symlink');
    const action = () => real.engram.symlink(this.target, this.path);
    if (model.entries.has(this.path)) await expectOutcome(action, { errorCodes: ['EXISTS'] });
    else await expectOutcome(action, { apply: () => model.entries.set(this.path, { kind: 'symlink', target: this.target }) });
    await compareAll(model, real);
  }
  toString(): string {
    return `symlink(${this.target}, ${this.path})`;
  }
}

class ChmodCommand implements Command {
  constructor(readonly path: string, readonly mode: number) {}
  check(model: Model): boolean {
    const entry = model.entries.get(this.path);
    // A symlink's mode is not meaningful on Linux (always 0777); not modelled.
    return entry !== undefined && entry.kind !== 'symlink';
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Chmod');
    const entry = model.entries.get(this.path) as ModelFile | ModelDirectory;
    const before = (await real.engram.stat(this.path)).version;
    await expectOutcome(() => real.engram.chmod(this.path, this.mode), {
      apply: () => {
        if (entry.kind === 'file') entry.inode.mode = this.mode;
        else entry.mode = this.mode;
      },
    });
    assert.ok((await real.engram.stat(this.path)).version > before, 'a metadata change is a new version');
    await compareAll(model, real);
  }
  toString(): string {
    return `chmod(${this.path}, 0o${this.mode.toString(8)})`;
  }
}

class SnapshotCommand implements Command {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Snapshot');
    const name = `s${model.snapshots.size}`;
    const info = await real.engram.createSnapshot(name);
    assert.equal(info.name, name);
    model.snapshots.set(name, copyEntries(model.entries));
    assert.deepEqual((await real.engram.listSnapshots()).map((snapshot) => snapshot.name).sort(), [...model.snapshots.keys()].sort());
    await compareTree(real.engram, model.snapshots.get(name) as Map<string, ModelEntry>, name);
  }
  toString(): string {
    return 'createSnapshot';
  }
}

class ReadSnapshotsCommand implements Command {
  check(model: Model): boolean {
    return model.snapshots.size > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('ReadSnapshots');
    // Every snapshot taken so far still shows the tree as it was, whatever happened since.
    for (const [name, entries] of model.snapshots) await compareTree(real.engram, entries, name);
  }
  toString(): string {
    return 'readSnapshots';
  }
}

class RestoreSnapshotCommand implements Command {
  constructor(readonly choice: number) {}
  check(model: Model): boolean {
    return model.snapshots.size > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('RestoreSnapshot');
    const name = [...model.snapshots.keys()][this.choice % model.snapshots.size];
    const before = await real.engram.currentCommit();
    const commit = await real.engram.restoreSnapshot(name);
    assert.ok(commit > before, 'a restore is a new commit');
    model.entries = copyEntries(model.snapshots.get(name) as Map<string, ModelEntry>);
    await compareAll(model, real);
    // The snapshot itself is untouched by the restore and by what follows it.
    await compareTree(real.engram, model.snapshots.get(name) as Map<string, ModelEntry>, name);
  }
  toString(): string {
    return `restoreSnapshot(#${this.choice})`;
  }
}

class CompactCommand implements Command {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    countStep('Compact');
    // Keep no history: whatever is freed must be exactly what neither the live tree nor a snapshot reaches.
    await real.engram.compact({ retainCommits: 0 });
    await compareAll(model, real);
    for (const [name, entries] of model.snapshots) await compareTree(real.engram, entries, name);
  }
  toString(): string {
    return 'compact(retainCommits 0)';
  }
}

const fileModeArbitrary = fc.constantFrom(0o600, 0o644, 0o755, 0o400, 0o1777, 0o4755, 0o000);

const writeFileArbitrary = fc.tuple(pathArbitrary, dataArbitrary).map(([path, data]) => new WriteFileCommand(path, data));
// fc.commands picks uniformly among these; creation is listed more than once so trees fill up,
// and the commands whose preconditions need an existing file twice so they run often enough.
const commandArbitraries: fc.Arbitrary<Command>[] = [
  writeFileArbitrary,
  writeFileArbitrary,
  writeFileArbitrary,
  pathArbitrary.map((path) => new MkdirCommand(path)),
  fc.tuple(pathArbitrary, fc.nat({ max: 10_000 }), fc.uint8Array({ minLength: 1, maxLength: 5000 })).map(([path, offset, data]) => new WriteAtCommand(path, offset, data)),
  fc.tuple(pathArbitrary, fc.nat({ max: 10_000 }), fc.uint8Array({ minLength: 1, maxLength: 5000 })).map(([path, offset, data]) => new WriteAtCommand(path, offset, data)),
  fc.tuple(pathArbitrary, fc.nat({ max: 12_000 })).map(([path, size]) => new TruncateCommand(path, size)),
  fc.tuple(pathArbitrary, fc.nat({ max: 12_000 })).map(([path, size]) => new TruncateCommand(path, size)),
  pathArbitrary.map((path) => new DeleteCommand(path)),
  pathArbitrary.map((path) => new MkdirCommand(path)),
  pathArbitrary.map((path) => new RmdirCommand(path)),
  fc.tuple(pathArbitrary, pathArbitrary).map(([from, to]) => new RenameCommand(from, to)),
  fc.tuple(pathArbitrary, pathArbitrary).map(([from, to]) => new RenameCommand(from, to)),
  fc.tuple(pathArbitrary, pathArbitrary).map(([existing, path]) => new LinkCommand(existing, path)),
  fc.tuple(pathArbitrary, pathArbitrary).map(([existing, path]) => new LinkCommand(existing, path)),
  fc.tuple(fc.constantFrom('target', '../x', '/abs/path', 'a/b'), pathArbitrary).map(([target, path]) => new SymlinkCommand(target, path)),
  fc.tuple(pathArbitrary, fileModeArbitrary).map(([path, mode]) => new ChmodCommand(path, mode)),
  fc.constant(new SnapshotCommand()),
  fc.constant(new ReadSnapshotsCommand()),
  fc.nat({ max: 20 }).map((choice) => new RestoreSnapshotCommand(choice)),
  fc.constant(new CompactCommand()),
];

test('random operation sequences keep VersionedEmbrFS equal to an in-memory model after every step', async () => {
  await fc.assert(
    fc.asyncProperty(fc.commands(commandArbitraries, { maxCommands: 60, size: 'max' }), async (commands) => {
      // 'normal' durability: this test is about semantics, not fsync, and runs thousands of commits.
      const scratch = await createTempEngram({ durability: 'normal' });
      const observer = await openEngram(scratch.file, { durability: 'normal' });
      try {
        await fc.asyncModelRun(
          () => ({ model: { entries: new Map(), snapshots: new Map(), nextInodeId: 1 }, real: { engram: scratch.engram, observer } }),
          commands,
        );
        const report = await observer.verify();
        assert.ok(report.ok, `verify after the sequence: ${report.problems.join('; ')}`);
      } finally {
        await observer.close();
        await scratch.cleanup();
      }
    }),
    { numRuns: slowTier ? 1000 : 100, seed: Number(process.env.EMBRFS_MODEL_SEED ?? 20261124), verbose: 1 },
  );
  // Guard against a model test that passes because its preconditions filtered everything out.
  console.log(`model test steps: ${JSON.stringify(Object.fromEntries(executedSteps))}`);
  for (const kind of ['WriteFile', 'WriteAt', 'Truncate', 'Delete', 'Mkdir', 'Rmdir', 'Rename', 'Link', 'Symlink', 'Chmod', 'Snapshot', 'ReadSnapshots', 'RestoreSnapshot', 'Compact']) {
    assert.ok((executedSteps.get(kind) ?? 0) >= 10, `${kind} ran only ${executedSteps.get(kind) ?? 0} times`);
  }
});
