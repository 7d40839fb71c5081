/**
 * {@link IndexStorage} over a store's `index_rows` table: reads go through the current
 * {@link StoreReader}, writes through the current {@link StoreWriter}, so that index rows change
 * only inside the commit transaction whose content they describe. The engram binds a reader or
 * writer around each use ({@link StoreIndexStorage.bind}); using the storage outside a binding is
 * a bug (it would read outside any consistent view), so it throws.
 *
 * @example
 * ```ts
 * const storage = new StoreIndexStorage();
 * store.write({ kind: 'write', timeNs }, (writer) => storage.bind(writer, () => {
 *   index.addFile('/7', chunks);
 *   index.flush();
 * }));
 * ```
 */
import { invariant } from '../errors.js';
import type { StoreReader, StoreWriter } from '../store/api.js';
import type { IndexStorage } from './storage.js';

export class StoreIndexStorage implements IndexStorage {
  private reader: StoreReader | undefined;
  private writer: StoreWriter | undefined;

  /** Runs `body` with index reads (and, for a writer, writes) going to `access`; nestable for the same access. */
  bind<T>(access: StoreReader | StoreWriter, body: () => T, writable = false): T {
    const previous = { reader: this.reader, writer: this.writer };
    this.reader = access;
    this.writer = writable ? (access as StoreWriter) : undefined;
    try {
      return body();
    } finally {
      this.reader = previous.reader;
      this.writer = previous.writer;
    }
  }

  get(key: string): Uint8Array | undefined {
    invariant(this.reader !== undefined, 'index storage used outside a store read or commit');
    return this.reader.indexRow(key);
  }

  put(key: string, value: Uint8Array): void {
    invariant(this.writer !== undefined, `index row ${key} written outside a commit`);
    this.writer.putIndexRow(key, value);
  }

  delete(key: string): void {
    invariant(this.writer !== undefined, `index row ${key} deleted outside a commit`);
    this.writer.deleteIndexRow(key);
  }
}
