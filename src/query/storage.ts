/**
 * Where the similarity index keeps its rows: a plain key → blob map, so the store can hold the
 * index in one SQLite table (`key TEXT PRIMARY KEY, value BLOB`) and update it in the same
 * transaction as each commit. Synchronous on purpose: better-sqlite3 is synchronous and no
 * transaction may be held across an `await`.
 *
 * Row keys (see docs/design/query.md for the value formats): `meta`, `path:<path>`,
 * `file:<fileId>`, `slots:<block>`, `post:<dimension>:<block>`, `root:<directory>`.
 *
 * @example
 * ```ts
 * const storage = new MemoryIndexStorage();
 * storage.put('meta', Uint8Array.of(1));
 * storage.get('meta'); // Uint8Array [1]
 * ```
 */
export interface IndexStorage {
  /** The blob stored under `key`, or undefined. Callers must not mutate the returned bytes. */
  get(key: string): Uint8Array | undefined;
  /** Stores `value` under `key` (insert or replace). The storage may keep the array itself. */
  put(key: string, value: Uint8Array): void;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): void;
}

/**
 * An in-memory {@link IndexStorage} for tests and benches, with size accounting.
 *
 * @example
 * ```ts
 * const storage = new MemoryIndexStorage();
 * storage.put('post:7:0', Uint8Array.of(1, 2));
 * storage.byteSizeByPrefix(); // { post: 10 }  (key bytes + value bytes)
 * ```
 */
export class MemoryIndexStorage implements IndexStorage {
  private readonly rows = new Map<string, Uint8Array>();

  get(key: string): Uint8Array | undefined {
    return this.rows.get(key);
  }

  put(key: string, value: Uint8Array): void {
    if (!(value instanceof Uint8Array)) throw new TypeError(`MemoryIndexStorage.put: value of '${key}' must be a Uint8Array`);
    this.rows.set(key, value);
  }

  delete(key: string): void {
    this.rows.delete(key);
  }

  /** Number of rows stored. */
  get rowCount(): number {
    return this.rows.size;
  }

  /** All keys in sorted order (for tests that compare whole states). */
  keys(): string[] {
    return [...this.rows.keys()].sort();
  }

  /**
   * Bytes stored per key prefix (the text before the first ':'), counting UTF-8 key bytes plus
   * value bytes: what a `key TEXT, value BLOB` table holds before SQLite's per-row overhead.
   */
  byteSizeByPrefix(): Record<string, number> {
    const sizes: Record<string, number> = {};
    const encoder = new TextEncoder();
    for (const [key, value] of this.rows) {
      const colon = key.indexOf(':');
      const prefix = colon < 0 ? key : key.slice(0, colon);
      sizes[prefix] = (sizes[prefix] ?? 0) + encoder.encode(key).length + value.length;
    }
    return sizes;
  }
}
