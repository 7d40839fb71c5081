/**
 * The in-memory store: the same MVCC-by-interval model as the SQLite store, kept in maps, for
 * fast tests and as the reference a future backend can be compared with. A write keeps an undo
 * log and rolls back when its body throws, so it is atomic like an SQLite transaction. Nothing
 * survives `close()`.
 *
 * @example
 * ```ts
 * const store = createMemoryStore({ profile: 'positional', chunkBytes: 4096 });
 * store.write({ kind: 'mkdir', timeNs: 1n }, (writer) => writer.allocateIno());
 * ```
 */
import { EmbrError } from '../errors.js';
import type { CodecProfileName } from '../codec/api.js';
import type {
  ChunkInfo,
  ChunkPlacement,
  ChunkRef,
  CommitRow,
  CommitStart,
  DentryRow,
  GcReport,
  GcRule,
  InodeData,
  InodeRow,
  PreparedPack,
  SnapshotRow,
  Store,
  StoreInfo,
  StoreReader,
  StoreTotals,
  StoreWriter,
  PayloadLocation,
} from './api.js';
import { ROOT_INO } from './api.js';
import { PackCache } from './pack-cache.js';
import { encodePackBytes, unpack } from './pack.js';

interface Interval {
  fromCommit: number;
  toCommit: number | null;
}
interface RefRow extends Interval {
  chunkId: number;
}
interface XattrRow extends Interval {
  value: Uint8Array;
}
interface ChunkRow extends ChunkInfo {
  fingerprint: Uint8Array;
  addedCommit: number;
}
interface PackRow {
  rawBytes: number;
  data: Uint8Array;
}

const REPACK_LIVE_SHARE = 0.5;
const textEncoder = new TextEncoder();

function visible(row: Interval, at: number): boolean {
  return row.fromCommit <= at && (row.toCommit === null || row.toCommit > at);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/**
 * Creates an empty in-memory store holding only the root directory (commit 1).
 *
 * @example
 * ```ts
 * const store = createMemoryStore({ profile: 'positional', chunkBytes: 4096 });
 * ```
 */
export function createMemoryStore(options: { profile: CodecProfileName; chunkBytes: number; timeNs?: bigint; readOnly?: boolean }): Store {
  return new MemoryStore(options);
}

class MemoryStore implements Store, StoreWriter {
  readonly info: StoreInfo;
  readonly readOnly: boolean;
  private readonly commits: CommitRow[] = [];
  private nextIno = ROOT_INO + 1;
  private nextPackId = 1;
  private nextChunkId = 1;
  private readonly inodes = new Map<number, InodeRow[]>();
  private readonly dentries = new Map<number, Map<string, DentryRow[]>>();
  private readonly refs = new Map<number, Map<number, RefRow[]>>();
  private readonly xattrs = new Map<number, Map<string, XattrRow[]>>();
  private readonly packs = new Map<number, PackRow>();
  private readonly chunks = new Map<number, ChunkRow>();
  private readonly chunkBySha = new Map<string, number>();
  private readonly snapshotRows = new Map<string, SnapshotRow>();
  private readonly indexRows = new Map<string, Uint8Array>();
  private readonly orphanOwners = new Map<number, string>();
  private readonly packCache = new PackCache(8 << 20);
  private undoLog: Array<() => void> | null = null;
  private currentCommit = 0;
  private closed = false;

  constructor(options: { profile: CodecProfileName; chunkBytes: number; timeNs?: bigint; readOnly?: boolean }) {
    const timeNs = options.timeNs ?? 0n;
    this.info = { profile: options.profile, chunkBytes: options.chunkBytes, schemaVersion: 1, createdNs: timeNs };
    this.readOnly = options.readOnly === true;
    this.commits.push({ commit: 1, timeNs, kind: 'create' });
    this.inodes.set(ROOT_INO, [
      {
        ino: ROOT_INO,
        fromCommit: 1,
        toCommit: null,
        type: 'directory',
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 2,
        atimeNs: timeNs,
        mtimeNs: timeNs,
        ctimeNs: timeNs,
        birthtimeNs: timeNs,
        symlinkTarget: null,
        contentSha256: null,
        change: 'create',
      },
    ]);
  }

  get commit(): number {
    return this.currentCommit;
  }

  private assertOpen(): void {
    if (this.closed) throw new EmbrError('CLOSED', 'the memory store is closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new EmbrError('READ_ONLY', 'the memory store is read-only', {});
  }

  // ---- undo log primitives: every mutation goes through these ----

  private record(undo: () => void): void {
    this.undoLog?.push(undo);
  }

  private setTo(row: Interval, to: number): void {
    const previous = row.toCommit;
    row.toCommit = to;
    this.record(() => {
      row.toCommit = previous;
    });
  }

  private pushRow<T>(list: T[], row: T): void {
    list.push(row);
    this.record(() => {
      list.splice(list.lastIndexOf(row), 1);
    });
  }

  private removeRow<T>(list: T[], row: T): void {
    const position = list.indexOf(row);
    list.splice(position, 1);
    this.record(() => {
      list.splice(position, 0, row);
    });
  }

  private mapSet<K, V>(map: Map<K, V>, key: K, value: V): void {
    const had = map.has(key);
    const previous = map.get(key);
    map.set(key, value);
    this.record(() => {
      if (had) map.set(key, previous as V);
      else map.delete(key);
    });
  }

  private mapDelete<K, V>(map: Map<K, V>, key: K): void {
    if (!map.has(key)) return;
    const previous = map.get(key) as V;
    map.delete(key);
    this.record(() => {
      map.set(key, previous);
    });
  }

  /** Ends the live rows of a list at this commit (a row begun in this commit is dropped). */
  private closeLive<T extends Interval>(list: T[] | undefined): T[] {
    if (list === undefined) return [];
    const closed: T[] = [];
    for (const row of [...list]) {
      if (row.toCommit !== null) continue;
      closed.push(row);
      if (row.fromCommit === this.currentCommit) this.removeRow(list, row);
      else this.setTo(row, this.currentCommit);
    }
    return closed;
  }

  private runInCommit<T>(start: CommitStart, body: (writer: StoreWriter) => T, keep: boolean): T {
    this.assertWritable();
    if (this.undoLog !== null) throw new Error('invariant failed: nested memory store write');
    this.undoLog = [];
    const commit = this.commits.length + 1;
    this.currentCommit = commit;
    this.pushRow(this.commits, { commit, timeNs: start.timeNs, kind: start.kind });
    let committed = false;
    try {
      const result = body(this);
      committed = keep;
      return result;
    } finally {
      const log = this.undoLog;
      this.undoLog = null;
      this.currentCommit = 0;
      if (!committed) {
        for (let position = log.length - 1; position >= 0; position -= 1) log[position]();
        this.packCache.clear();
      }
    }
  }

  read<T>(body: (reader: StoreReader) => T): T {
    this.assertOpen();
    return body(this);
  }

  write<T>(start: CommitStart, body: (writer: StoreWriter) => T): T {
    return this.runInCommit(start, body, true);
  }

  speculate<T>(start: CommitStart, body: (writer: StoreWriter) => T): T {
    return this.runInCommit(start, body, false);
  }

  // ---- reader ----

  headCommit(): number {
    return this.commits.length;
  }

  commitInfo(commit: number): CommitRow | undefined {
    const row = this.commits[commit - 1];
    return row === undefined ? undefined : { ...row };
  }

  inode(ino: number, at: number): InodeRow | undefined {
    const row = this.inodes.get(ino)?.find((candidate) => visible(candidate, at));
    return row === undefined ? undefined : { ...row };
  }

  inodeVersions(ino: number): InodeRow[] {
    return (this.inodes.get(ino) ?? []).map((row) => ({ ...row })).sort((left, right) => left.fromCommit - right.fromCommit);
  }

  lookup(parentIno: number, name: string, at: number): number | undefined {
    return this.dentries.get(parentIno)?.get(name)?.find((row) => visible(row, at))?.childIno;
  }

  listDirectory(parentIno: number, at: number): Array<{ name: string; childIno: number }> {
    const entries: Array<{ name: string; childIno: number }> = [];
    for (const [name, rows] of this.dentries.get(parentIno) ?? []) {
      const row = rows.find((candidate) => visible(candidate, at));
      if (row !== undefined) entries.push({ name, childIno: row.childIno });
    }
    return entries.sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  }

  dentryHistory(parentIno: number, name: string): DentryRow[] {
    return (this.dentries.get(parentIno)?.get(name) ?? []).map((row) => ({ ...row })).sort((left, right) => left.fromCommit - right.fromCommit);
  }

  dentriesOf(childIno: number, at: number): DentryRow[] {
    const found: DentryRow[] = [];
    for (const names of this.dentries.values()) {
      for (const rows of names.values()) {
        for (const row of rows) if (row.childIno === childIno && visible(row, at)) found.push({ ...row });
      }
    }
    return found;
  }

  chunkRefs(ino: number, at: number, firstIndex: number, endIndex: number): ChunkRef[] {
    const found: ChunkRef[] = [];
    for (const [chunkIndex, rows] of this.refs.get(ino) ?? []) {
      if (chunkIndex < firstIndex || chunkIndex >= endIndex) continue;
      const row = rows.find((candidate) => visible(candidate, at));
      if (row !== undefined) found.push({ chunkIndex, chunkId: row.chunkId, chunk: this.chunkInfo(row.chunkId) });
    }
    return found.sort((left, right) => left.chunkIndex - right.chunkIndex);
  }

  chunkPlacements(ino: number, at: number, firstIndex: number, endIndex: number): ChunkPlacement[] {
    return this.chunkRefs(ino, at, firstIndex, endIndex);
  }

  chunkInfo(chunkId: number): ChunkInfo | undefined {
    const row = this.chunks.get(chunkId);
    if (row === undefined) return undefined;
    return {
      chunkId: row.chunkId,
      sha256: row.sha256,
      byteLength: row.byteLength,
      packId: row.packId,
      packOffset: row.packOffset,
      payloadBytes: row.payloadBytes,
      vectorCorrectBytes: row.vectorCorrectBytes,
      correctionBytes: row.correctionBytes,
    };
  }

  chunkIdBySha256(sha256: Uint8Array): number | undefined {
    return this.chunkBySha.get(hex(sha256));
  }

  chunkPayloadView(chunk: PayloadLocation): Uint8Array {
    return this.chunkPayload(chunk);
  }

  chunkPayload(chunk: PayloadLocation): Uint8Array {
    let raw = this.packCache.get(chunk.packId);
    if (raw === undefined) {
      const pack = this.packs.get(chunk.packId);
      if (pack === undefined) throw new EmbrError('CORRUPT', `pack ${chunk.packId} of chunk ${chunk.chunkId} is missing`, { what: 'pack', chunkId: chunk.chunkId });
      raw = this.packCache.put(chunk.packId, unpack(pack.data, pack.rawBytes));
    }
    if (chunk.packOffset + chunk.payloadBytes > raw.length) {
      throw new EmbrError('CORRUPT', `chunk ${chunk.chunkId} lies outside its pack`, { what: 'chunk', chunkId: chunk.chunkId });
    }
    return raw.subarray(chunk.packOffset, chunk.packOffset + chunk.payloadBytes);
  }

  chunkFingerprint(chunkId: number): Uint8Array | undefined {
    return this.chunks.get(chunkId)?.fingerprint;
  }

  xattr(ino: number, name: string, at: number): Uint8Array | undefined {
    return this.xattrs.get(ino)?.get(name)?.find((row) => visible(row, at))?.value;
  }

  xattrNames(ino: number, at: number): string[] {
    const names: string[] = [];
    for (const [name, rows] of this.xattrs.get(ino) ?? []) if (rows.some((row) => visible(row, at))) names.push(name);
    return names.sort();
  }

  snapshot(name: string): SnapshotRow | undefined {
    const row = this.snapshotRows.get(name);
    return row === undefined ? undefined : { ...row };
  }

  snapshots(): SnapshotRow[] {
    return [...this.snapshotRows.values()]
      .map((row) => ({ ...row }))
      .sort((left, right) => left.commit - right.commit || (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  }

  orphanInodes(): number[] {
    const found: number[] = [];
    for (const [ino, rows] of this.inodes) if (rows.some((row) => row.toCommit === null && row.nlink === 0)) found.push(ino);
    return found.sort((left, right) => left - right);
  }

  totals(): StoreTotals {
    const totals: StoreTotals = {
      files: 0,
      directories: 0,
      symlinks: 0,
      logicalBytes: 0,
      storedBytes: this.storedBytes(),
      uniqueChunkBytes: 0,
      correctionBytes: 0,
      vectorCorrectBytes: 0,
      chunks: this.chunks.size,
      snapshots: this.snapshotRows.size,
      commits: this.headCommit(),
      indexBytes: 0,
    };
    for (const [key, value] of this.indexRows) totals.indexBytes += textEncoder.encode(key).length + value.length;
    for (const rows of this.inodes.values()) {
      const row = rows.find((candidate) => candidate.toCommit === null);
      if (row === undefined) continue;
      if (row.type === 'directory') totals.directories += 1;
      else if (row.nlink === 0) continue;
      else if (row.type === 'symlink') totals.symlinks += 1;
      else {
        totals.files += 1;
        totals.logicalBytes += row.size;
      }
    }
    for (const chunk of this.chunks.values()) {
      totals.uniqueChunkBytes += chunk.byteLength;
      totals.correctionBytes += chunk.correctionBytes;
      totals.vectorCorrectBytes += chunk.vectorCorrectBytes;
    }
    return totals;
  }

  allChunkIds(): number[] {
    return [...this.chunks.keys()].sort((left, right) => left - right);
  }

  indexRow(key: string): Uint8Array | undefined {
    return this.indexRows.get(key);
  }

  // ---- writer ----

  private assertInCommit(): void {
    if (this.undoLog === null) throw new Error('invariant failed: memory store mutation outside a write');
  }

  allocateIno(): number {
    this.assertInCommit();
    const ino = this.nextIno;
    this.nextIno += 1;
    this.record(() => {
      this.nextIno = ino;
    });
    return ino;
  }

  putInode(ino: number, data: InodeData): void {
    this.assertInCommit();
    const list = getOrCreate(this.inodes, ino, () => []);
    this.closeLive(list);
    this.pushRow(list, { ...data, ino, fromCommit: this.currentCommit, toCommit: null });
  }

  removeInode(ino: number): void {
    this.assertInCommit();
    this.closeLive(this.inodes.get(ino));
    this.closeChunkRefs(ino, 0, Number.MAX_SAFE_INTEGER);
    for (const rows of this.xattrs.get(ino)?.values() ?? []) this.closeLive(rows);
    this.mapDelete(this.orphanOwners, ino);
  }

  putDentry(parentIno: number, name: string, childIno: number): void {
    this.removeDentry(parentIno, name);
    const list = getOrCreate(getOrCreate(this.dentries, parentIno, () => new Map()), name, () => []);
    this.pushRow(list, { parentIno, name, childIno, fromCommit: this.currentCommit, toCommit: null });
  }

  removeDentry(parentIno: number, name: string): void {
    this.assertInCommit();
    this.closeLive(this.dentries.get(parentIno)?.get(name));
  }

  putPack(pack: PreparedPack): number[] {
    this.assertInCommit();
    const packId = this.nextPackId;
    this.nextPackId += 1;
    this.record(() => {
      this.nextPackId = packId;
    });
    this.mapSet(this.packs, packId, { rawBytes: pack.rawBytes, data: pack.data });
    return pack.chunks.map((chunk) => {
      const key = hex(chunk.sha256);
      const existing = this.chunkBySha.get(key);
      if (existing !== undefined) return existing;
      const chunkId = this.nextChunkId;
      this.nextChunkId += 1;
      this.record(() => {
        this.nextChunkId = chunkId;
      });
      this.mapSet(this.chunks, chunkId, {
        chunkId,
        sha256: new Uint8Array(chunk.sha256),
        byteLength: chunk.byteLength,
        packId,
        packOffset: chunk.offset,
        payloadBytes: chunk.payloadBytes,
        vectorCorrectBytes: chunk.vectorCorrectBytes,
        correctionBytes: chunk.correctionBytes,
        fingerprint: chunk.fingerprint,
        addedCommit: this.currentCommit,
      });
      this.mapSet(this.chunkBySha, key, chunkId);
      return chunkId;
    });
  }

  closeChunkRefs(ino: number, firstIndex: number, endIndex: number): number {
    this.assertInCommit();
    let ended = 0;
    for (const [chunkIndex, rows] of this.refs.get(ino) ?? []) {
      if (chunkIndex < firstIndex || chunkIndex >= endIndex) continue;
      ended += this.closeLive(rows).length;
    }
    return ended;
  }

  insertChunkRefs(ino: number, firstIndex: number, chunkIds: number[]): void {
    this.assertInCommit();
    const byIndex = getOrCreate(this.refs, ino, () => new Map<number, RefRow[]>());
    chunkIds.forEach((chunkId, position) => {
      const list = getOrCreate(byIndex, firstIndex + position, (): RefRow[] => []);
      if (list.some((row) => row.toCommit === null)) throw new Error(`invariant failed: chunk index ${firstIndex + position} of inode ${ino} already has a live ref`);
      this.pushRow(list, { chunkId, fromCommit: this.currentCommit, toCommit: null });
    });
  }

  setXattr(ino: number, name: string, value: Uint8Array): void {
    this.removeXattr(ino, name);
    const list = getOrCreate(getOrCreate(this.xattrs, ino, () => new Map()), name, () => []);
    this.pushRow(list, { value: new Uint8Array(value), fromCommit: this.currentCommit, toCommit: null });
  }

  removeXattr(ino: number, name: string): void {
    this.assertInCommit();
    this.closeLive(this.xattrs.get(ino)?.get(name));
  }

  putSnapshot(row: SnapshotRow): void {
    this.assertInCommit();
    if (this.snapshotRows.has(row.name)) throw new EmbrError('EXISTS', `snapshot ${row.name} exists`, { snapshot: row.name });
    this.mapSet(this.snapshotRows, row.name, { ...row });
  }

  removeSnapshot(name: string): void {
    this.assertInCommit();
    this.mapDelete(this.snapshotRows, name);
  }

  putIndexRow(key: string, value: Uint8Array): void {
    this.assertInCommit();
    this.mapSet(this.indexRows, key, value);
  }

  deleteIndexRow(key: string): void {
    this.assertInCommit();
    this.mapDelete(this.indexRows, key);
  }

  clearIndexRows(): void {
    this.assertInCommit();
    for (const key of [...this.indexRows.keys()]) this.mapDelete(this.indexRows, key);
  }

  orphanOwner(ino: number): string | undefined {
    return this.orphanOwners.get(ino);
  }

  setOrphanOwner(ino: number, owner: string): void {
    this.assertInCommit();
    this.mapSet(this.orphanOwners, ino, owner);
  }

  claimStages(stageCommits: number[]): void {
    this.assertInCommit();
    for (const commit of new Set(stageCommits)) {
      const row = this.commits[commit - 1];
      if (row === undefined || row.kind !== 'stage') continue;
      this.commits[commit - 1] = { ...row, kind: 'stage-claimed' };
      this.record(() => {
        this.commits[commit - 1] = row;
      });
    }
  }

  // ---- maintenance ----

  collectGarbage(rule: GcRule): GcReport {
    this.assertWritable();
    const bytesBefore = this.storedBytes();
    const pins = [...rule.pinnedCommits, ...[...this.snapshotRows.values()].map((row) => row.commit)];
    const dead = (row: Interval): boolean =>
      row.toCommit !== null && row.toCommit <= rule.retainAfterCommit && !pins.some((pin) => pin >= row.fromCommit && pin < (row.toCommit as number));
    const prune = <T extends Interval>(list: T[]): number => {
      const before = list.length;
      const kept = list.filter((row) => !dead(row));
      list.splice(0, list.length, ...kept);
      return before - kept.length;
    };
    let freedVersions = 0;
    for (const [ino, rows] of this.inodes) {
      freedVersions += prune(rows);
      if (rows.length === 0) this.inodes.delete(ino);
    }
    for (const names of this.dentries.values()) for (const rows of names.values()) prune(rows);
    for (const byIndex of this.refs.values()) for (const rows of byIndex.values()) prune(rows);
    for (const names of this.xattrs.values()) for (const rows of names.values()) prune(rows);
    const referenced = new Set<number>();
    for (const byIndex of this.refs.values()) for (const rows of byIndex.values()) for (const row of rows) referenced.add(row.chunkId);
    const graceCommits = new Set(this.commits.filter((row) => row.kind === 'stage' && row.timeNs > rule.stagedGraceAfterNs).map((row) => row.commit));
    let freedChunks = 0;
    for (const [chunkId, chunk] of this.chunks) {
      if (referenced.has(chunkId) || graceCommits.has(chunk.addedCommit)) continue;
      this.chunks.delete(chunkId);
      this.chunkBySha.delete(hex(chunk.sha256));
      freedChunks += 1;
    }
    const livePayload = new Map<number, number>();
    for (const chunk of this.chunks.values()) livePayload.set(chunk.packId, (livePayload.get(chunk.packId) ?? 0) + chunk.payloadBytes);
    for (const [packId, pack] of this.packs) {
      const live = livePayload.get(packId) ?? 0;
      if (live === 0) this.packs.delete(packId);
      else if (live < pack.rawBytes * REPACK_LIVE_SHARE) this.repack(packId, pack, live);
    }
    this.packCache.clear();
    return { freedChunks, freedVersions, bytesBefore, bytesAfter: this.storedBytes() };
  }

  private repack(packId: number, pack: PackRow, liveBytes: number): void {
    const raw = unpack(pack.data, pack.rawBytes);
    const members = [...this.chunks.values()].filter((chunk) => chunk.packId === packId).sort((left, right) => left.packOffset - right.packOffset);
    const rebuilt = new Uint8Array(liveBytes);
    const newPackId = this.nextPackId;
    this.nextPackId += 1;
    let offset = 0;
    for (const chunk of members) {
      rebuilt.set(raw.subarray(chunk.packOffset, chunk.packOffset + chunk.payloadBytes), offset);
      chunk.packId = newPackId;
      chunk.packOffset = offset;
      offset += chunk.payloadBytes;
    }
    this.packs.set(newPackId, { rawBytes: liveBytes, data: encodePackBytes(rebuilt) });
    this.packs.delete(packId);
  }

  integrityCheck(): string[] {
    // Maps and arrays in memory have no pages to damage; the invariants are asserted as rows change.
    return [];
  }

  sync(): void {
    // Nothing here outlives the process, so there is nothing to make durable.
  }

  async syncAsync(): Promise<void> {
    // As sync: nothing to make durable.
  }

  checkpoint(): void {
    // No log: every commit is already in place.
  }

  holdCheckpoints(): { release(): void } {
    // No log to checkpoint.
    return { release: () => undefined };
  }

  syncAhead(): void {
    // Nothing here reaches a disk.
  }

  storedBytes(): number {
    let total = 0;
    for (const pack of this.packs.values()) total += pack.data.length;
    return total;
  }

  close(): void {
    this.closed = true;
  }
}
