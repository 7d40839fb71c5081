/**
 * A small pool of `worker_threads` that encode chunks and build packs for large writes, so
 * several concurrent writes (and one large one) keep every core busy. Only the main thread uses
 * it (a worker thread of the CLI encodes inline, so threads do not multiply). Workers are
 * unreferenced while idle, so the pool never keeps a process alive.
 *
 * @example
 * ```ts
 * const packs = await encodePool({ profile: 'positional', chunkBytes: 4096 }).encode(chunks);
 * ```
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread } from 'node:worker_threads';
import type { CodecProfileName } from '../codec/api.js';
import type { PackBatch, PreparedPack } from '../store/api.js';
import { concatenate } from '../store/pack.js';
import { EmbrError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { pickWorker, type PoolWorker } from './pool-worker.js';

/** Writes at least this large are encoded in the pool (smaller ones inline: a round trip costs more). */
export const POOL_MIN_BYTES = 256 * 1024;

/** Bytes of one staging slot: a {@link EncodePool.hashAndEncode} part at most this large is copied into shared memory. */
export const STAGING_SLOT_BYTES = 1 << 20;

/** Staging slots per pool (8 MiB of shared memory, allocated at the first large write). */
export const STAGING_SLOTS = 8;

/**
 * Shared memory the pool's workers read a large write's bytes from: fixed slots of one
 * SharedArrayBuffer, each lent to one part of a {@link EncodePool.hashAndEncode} call until the
 * worker has encoded it. Copying a part into a slot replaces copying it into a new ArrayBuffer and
 * transferring that: the new buffer's pages were fresh each time (about 10 us per 4 KiB page to
 * fault in on this project's VM, ~25 ms per 10 MB), and transferring detached and re-created its
 * backing store per part. A slot's pages are touched once per process.
 */
class StagingSlots {
  private readonly memory = new SharedArrayBuffer(STAGING_SLOT_BYTES * STAGING_SLOTS);
  private readonly free: number[] = Array.from({ length: STAGING_SLOTS }, (_, slot) => slot);
  private readonly waiting: Array<{ count: number; grant: (slots: number[]) => void }> = [];

  /**
   * `count` free slots at once (at most {@link STAGING_SLOTS}), waiting in line until that many
   * are free. All at once, never one by one: concurrent calls each holding some of their slots
   * while waiting for the rest would wait for each other forever.
   */
  acquire(count: number): Promise<number[]> | number[] {
    if (this.waiting.length === 0 && this.free.length >= count) return this.free.splice(this.free.length - count, count);
    return new Promise((grant) => this.waiting.push({ count, grant }));
  }

  view(slot: number, byteLength: number): Uint8Array {
    return new Uint8Array(this.memory, slot * STAGING_SLOT_BYTES, byteLength);
  }

  release(slot: number): void {
    this.free.push(slot);
    // First come, first served: a large request is not passed over by smaller ones.
    while (this.waiting.length > 0 && this.free.length >= this.waiting[0].count) {
      const next = this.waiting.shift();
      next?.grant(this.free.splice(this.free.length - (next?.count ?? 0), next?.count ?? 0));
    }
  }

  /** Slots not lent (tests). */
  get available(): number {
    return this.free.length;
  }
}

/** One batch of chunks for a worker to encode: their bytes back to back. */
export interface EncodeTask {
  kind: 'encode';
  id: number;
  bytes: Uint8Array;
  offsets: number[];
  lengths: number[];
  /** SHA-256 of each chunk, 32 bytes each, as the main thread computed them (not hashed again). */
  sha256s: Uint8Array;
}

/** SHA-256s of the chunks a {@link HashTask} cut (32 bytes each; zeros where `holes[i]` is 1: an all-zero chunk). */
export interface HashResult {
  sha256s: Uint8Array;
  holes: Uint8Array;
}

/** One batch of payloads for a worker to decode (each checked against its SHA-256), output back to back. */
export interface DecodeTask {
  kind: 'decode';
  id: number;
  payloads: Uint8Array;
  offsets: number[];
  lengths: number[];
  /** 32 bytes per chunk. */
  sha256s: Uint8Array;
  byteLengths: number[];
}

/**
 * First half of {@link EncodePool.hashAndEncode}: hash the chunks of `bytes` (cut every
 * `chunkBytes`) and keep them in the worker, under this task's id, for an {@link EncodeHeldTask}.
 */
export interface HashTask {
  kind: 'hash';
  id: number;
  bytes: Uint8Array;
  chunkBytes: number;
}

/** Second half: encode the held chunks whose `select` byte is 1 into packs, then drop them. */
export interface EncodeHeldTask {
  kind: 'encode-held';
  id: number;
  heldId: number;
  select: Uint8Array;
}

export type EncodeTaskResult =
  | { id: number; packs: PreparedPack[] }
  | { id: number; batch: PackBatch }
  | { id: number; bytes: Uint8Array }
  | { id: number; hashes: { sha256s: Uint8Array; holes: Uint8Array } }
  | { id: number; error: string; code?: string; data?: Record<string, unknown> };

/** A chunk to decode: its payload, SHA-256 and expected length. */
export interface DecodeRequest {
  payload: Uint8Array;
  sha256: Uint8Array;
  byteLength: number;
}

/** One part of a hashAndEncode call, held by its worker between the hash and the encode step. */
interface HeldPart {
  id: number;
  owner: PoolWorker;
  hashed: Promise<HashResult>;
  chunks: number;
  /** Its staging slot, if it has one. */
  slot?: number;
}

/** The encode pool of one (profile, chunk size). */
export class EncodePool {
  private readonly workers: PoolWorker[] = [];
  private readonly waiting = new Map<number, { resolve: (result: PreparedPack[] | PackBatch | Uint8Array | HashResult) => void; reject: (error: Error) => void; owner: PoolWorker }>();
  private nextId = 1;
  private staging: StagingSlots | undefined;

  constructor(
    private readonly profile: CodecProfileName,
    private readonly chunkBytes: number,
    private readonly size: number,
  ) {}

  private spawn(): PoolWorker {
    const worker = new Worker(new URL('./encode-worker.js', import.meta.url), {
      workerData: { profile: this.profile, chunkBytes: this.chunkBytes },
      // `--input-type` (node -e) and similar entry flags make a file-based worker fail to start.
      execArgv: process.execArgv.filter((flag) => !flag.startsWith('--input-type') && !flag.startsWith('--eval') && flag !== '-e'),
    });
    const entry: PoolWorker = { worker, busy: 0 };
    worker.on('message', (result: EncodeTaskResult) => {
      const waiter = this.waiting.get(result.id);
      if (waiter === undefined) return;
      this.waiting.delete(result.id);
      entry.busy -= 1;
      if (entry.busy === 0) worker.unref();
      if ('error' in result) {
        // A codec verdict (CORRUPT) keeps its type; anything else is a pool failure the caller may retry inline.
        waiter.reject(result.code === undefined ? new Error(`encode worker failed: ${result.error}`) : new EmbrError(result.code as ErrorCode, result.error, result.data ?? {}));
      } else waiter.resolve('packs' in result ? result.packs : 'batch' in result ? result.batch : 'hashes' in result ? result.hashes : result.bytes);
    });
    worker.on('error', (error) => {
      // A crashed worker fails its own tasks and leaves the pool; the next task spawns a new one.
      for (const [id, waiter] of this.waiting) {
        if (waiter.owner !== entry) continue;
        this.waiting.delete(id);
        waiter.reject(error);
      }
      this.workers.splice(this.workers.indexOf(entry), 1);
    });
    worker.unref();
    this.workers.push(entry);
    return entry;
  }

  /** Staging slots not lent to a worker right now ({@link STAGING_SLOTS} when idle; tests). */
  get stagingSlotsFree(): number {
    return this.staging?.available ?? STAGING_SLOTS;
  }

  private pick(): PoolWorker {
    return pickWorker(this.workers, this.size, () => this.spawn());
  }

  /** Encodes `chunks` (in order; `sha256s[i]` is the SHA-256 of `chunks[i]`) into packs, split across the workers. */
  async encode(chunks: Uint8Array[], sha256s: Uint8Array[]): Promise<PreparedPack[]> {
    if (chunks.length === 0) return [];
    if (sha256s.length !== chunks.length) throw new RangeError(`encode: ${chunks.length} chunks but ${sha256s.length} hashes`);
    const parts = Math.min(this.size, chunks.length);
    const perPart = Math.ceil(chunks.length / parts);
    const tasks: Array<Promise<PreparedPack[]>> = [];
    for (let first = 0; first < chunks.length; first += perPart) {
      tasks.push(this.run(chunks.slice(first, first + perPart), sha256s.slice(first, first + perPart)));
    }
    return (await Promise.all(tasks)).flat();
  }

  /**
   * Decodes chunks in the workers, each checked against its SHA-256, and returns their bytes back
   * to back. Throws EmbrError CORRUPT like the codec.
   */
  async decode(requests: DecodeRequest[]): Promise<Uint8Array> {
    if (requests.length === 0) return new Uint8Array(0);
    const parts = Math.min(this.size, requests.length);
    const perPart = Math.ceil(requests.length / parts);
    const tasks: Array<Promise<Uint8Array>> = [];
    for (let first = 0; first < requests.length; first += perPart) tasks.push(this.runDecode(requests.slice(first, first + perPart)));
    const pieces = await Promise.all(tasks);
    if (pieces.length === 1) return pieces[0];
    return concatenate(pieces, (length) => new Uint8Array(length));
  }

  private runDecode(requests: DecodeRequest[]): Promise<Uint8Array> {
    const payloads = new Uint8Array(requests.reduce((sum, request) => sum + request.payload.length, 0));
    const sha256s = new Uint8Array(32 * requests.length);
    const offsets: number[] = [];
    const lengths: number[] = [];
    let offset = 0;
    requests.forEach((request, position) => {
      payloads.set(request.payload, offset);
      sha256s.set(request.sha256, 32 * position);
      offsets.push(offset);
      lengths.push(request.payload.length);
      offset += request.payload.length;
    });
    const task: DecodeTask = { kind: 'decode', id: 0, payloads, offsets, lengths, sha256s, byteLengths: requests.map((request) => request.byteLength) };
    return this.post(task, [payloads.buffer, sha256s.buffer]) as Promise<Uint8Array>;
  }

  /**
   * Hashes the chunks of `bytes` (cut every `chunkBytes` bytes) in the workers, asks `select`
   * which of them to encode (given each chunk's SHA-256, or null for an all-zero chunk, in order),
   * and encodes those into packs there: a large write's hashing leaves the calling thread. The
   * bytes are copied once, into a {@link StagingSlots} slot the worker reads in place (or, for a
   * part larger than a slot, into a buffer moved to the worker), and kept there between the two
   * steps. Each part's packs come back as one {@link PackBatch} (chunks in columns, fingerprints
   * with their indices).
   */
  async hashAndEncode(
    bytes: Uint8Array,
    chunkBytes: number,
    select: (shas: Array<Uint8Array | null>) => boolean[] | Promise<boolean[]>,
  ): Promise<{ shas: Array<Uint8Array | null>; batches: PackBatch[] }> {
    const chunkCount = Math.ceil(bytes.length / chunkBytes);
    if (chunkCount === 0) return { shas: [], batches: [] };
    const parts = Math.min(this.size, chunkCount);
    const perPart = Math.ceil(chunkCount / parts);
    const held: HeldPart[] = [];
    // Every part of the call fits a slot (the usual case: parts of a 1 MiB batch): the call takes
    // its slots together; otherwise each part gets a buffer of its own, moved to the worker. The
    // workers are chosen first: choosing one may start it, and that can throw.
    const owners: PoolWorker[] = [];
    for (let first = 0; first < chunkCount; first += perPart) owners.push(this.pick());
    const partBytes = perPart * chunkBytes;
    let slots: number[] | undefined;
    if (partBytes <= STAGING_SLOT_BYTES && parts <= STAGING_SLOTS) {
      this.staging ??= new StagingSlots();
      slots = await this.staging.acquire(owners.length);
    }
    try {
      for (let first = 0, index = 0; first < chunkCount; first += perPart, index += 1) {
        const part = bytes.subarray(first * chunkBytes, Math.min(bytes.length, (first + perPart) * chunkBytes));
        const chunks = Math.ceil(part.length / chunkBytes);
        let piece: Uint8Array;
        const slot = slots?.pop();
        const transfer: ArrayBuffer[] = [];
        if (slot !== undefined && this.staging !== undefined) {
          // Copied into a staging slot of shared memory the worker reads in place (released
          // below, once the worker is done with it).
          piece = this.staging.view(slot, part.length);
          piece.set(part);
        } else {
          // A copy of its own, transferred (detached here). `bytes.slice` would not do: on a
          // Node Buffer it is a view, and transferring its buffer detached the caller's bytes.
          piece = new Uint8Array(part);
          transfer.push(piece.buffer as ArrayBuffer);
        }
        const task: HashTask = { kind: 'hash', id: 0, bytes: piece, chunkBytes };
        // A slot is the part's from here: released after its encode step (post rejects at once
        // for a worker that is gone).
        const hashed = this.post(task, transfer, owners[index]) as Promise<HashResult>;
        held.push({ id: task.id, owner: owners[index], hashed, chunks, slot });
      }
    } catch (error) {
      // Not expected (posting does not throw for a live worker), but no slot may be lost.
      for (const slot of slots ?? []) this.staging?.release(slot);
      for (const part of held) this.dropHeld(part);
      throw error;
    }
    let results: HashResult[];
    try {
      results = await Promise.all(held.map((part) => part.hashed));
    } catch (error) {
      // The parts that did hash still hold their bytes: let them go. A part whose worker failed
      // fails this too (its slot comes back either way).
      for (const part of held) this.dropHeld(part);
      throw error;
    }
    const shas: Array<Uint8Array | null> = [];
    results.forEach((result, part) => {
      for (let chunk = 0; chunk < held[part].chunks; chunk += 1) {
        shas.push(result.holes[chunk] === 1 ? null : result.sha256s.subarray(32 * chunk, 32 * chunk + 32));
      }
    });
    let chosen: boolean[];
    try {
      chosen = await select(shas);
    } catch (error) {
      for (const part of held) this.dropHeld(part);
      throw error;
    }
    const encodes = held.map((part, index) => {
      const select = new Uint8Array(part.chunks);
      for (let chunk = 0; chunk < part.chunks; chunk += 1) select[chunk] = chosen[index * perPart + chunk] ? 1 : 0;
      return this.encodeHeld(part, select);
    });
    return { shas, batches: await Promise.all(encodes) };
  }

  /**
   * Asks a part's worker to encode the chosen chunks of the part it holds (none: just drop it)
   * and gives the part's staging slot back once the worker is done with its bytes, or gone.
   */
  private encodeHeld(part: HeldPart, select: Uint8Array): Promise<PackBatch> {
    const done = this.post({ kind: 'encode-held', id: 0, heldId: part.id, select }, [select.buffer as ArrayBuffer], part.owner) as Promise<PackBatch>;
    if (part.slot === undefined) return done;
    const slot = part.slot;
    return done.finally(() => this.staging?.release(slot));
  }

  /** Lets a part's worker drop its bytes (and its slot come back), ignoring the outcome. */
  private dropHeld(part: HeldPart): void {
    this.encodeHeld(part, new Uint8Array(0)).catch(() => undefined);
  }

  private post(task: EncodeTask | DecodeTask | HashTask | EncodeHeldTask, transfer: ArrayBuffer[], to?: PoolWorker): Promise<PreparedPack[] | PackBatch | Uint8Array | HashResult> {
    const id = this.nextId;
    this.nextId += 1;
    task.id = id;
    const owner = to ?? this.pick();
    // A task for a worker that crashed (its part's second step) would never be answered.
    if (!this.workers.includes(owner)) return Promise.reject(new Error('encode worker failed: it exited'));
    owner.busy += 1;
    owner.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, owner });
      owner.worker.postMessage(task, transfer);
    });
  }

  private run(chunks: Uint8Array[], hashes: Uint8Array[]): Promise<PreparedPack[]> {
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const bytes = new Uint8Array(total);
    const sha256s = new Uint8Array(32 * chunks.length);
    const offsets: number[] = [];
    const lengths: number[] = [];
    let offset = 0;
    // Chunks cut from one caller buffer back to back (a large write without holes or dedup hits)
    // are copied in one piece: a copy per 4 KiB chunk cost ~1 ms per MB on the main thread.
    const first = chunks[0];
    let contiguous = true;
    chunks.forEach((chunk, position) => {
      if (chunk.buffer !== first.buffer || chunk.byteOffset !== first.byteOffset + offset) contiguous = false;
      sha256s.set(hashes[position], 32 * position);
      offsets.push(offset);
      lengths.push(chunk.length);
      offset += chunk.length;
    });
    if (contiguous) bytes.set(new Uint8Array(first.buffer, first.byteOffset, total));
    else chunks.forEach((chunk, position) => bytes.set(chunk, offsets[position]));
    const task: EncodeTask = { kind: 'encode', id: 0, bytes, offsets, lengths, sha256s };
    return this.post(task, [bytes.buffer, sha256s.buffer]) as Promise<PreparedPack[]>;
  }
}

const pools = new Map<string, EncodePool>();

/**
 * The shared pool for a profile and chunk size, or undefined off the main thread or on a single core.
 *
 * @example
 * ```ts
 * const pool = encodePool({ profile: 'positional', chunkBytes: 4096 });
 * ```
 */
export function encodePool(options: { profile: CodecProfileName; chunkBytes: number }): EncodePool | undefined {
  const size = availableParallelism();
  if (!isMainThread || size < 2 || process.env.EMBRFS_ENCODE_THREADS === '0') return undefined;
  const key = `${options.profile}:${options.chunkBytes}`;
  let pool = pools.get(key);
  if (pool === undefined) {
    pool = new EncodePool(options.profile, options.chunkBytes, size);
    pools.set(key, pool);
  }
  return pool;
}
