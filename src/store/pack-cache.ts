/**
 * A small least-recently-used cache of decompressed packs, bounded in bytes, so sequential reads
 * decompress each pack once.
 *
 * @example
 * ```ts
 * const cache = new PackCache(8 << 20);
 * const raw = cache.get(packId) ?? cache.put(packId, unpack(data, rawBytes));
 * ```
 */
export class PackCache {
  private readonly entries = new Map<number, Uint8Array>();
  private cachedBytes = 0;

  constructor(private readonly capacityBytes: number) {}

  get(packId: number): Uint8Array | undefined {
    const raw = this.entries.get(packId);
    if (raw !== undefined) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.entries.delete(packId);
      this.entries.set(packId, raw);
    }
    return raw;
  }

  put(packId: number, raw: Uint8Array): Uint8Array {
    const previous = this.entries.get(packId);
    if (previous !== undefined) {
      this.cachedBytes -= previous.length;
      this.entries.delete(packId);
    }
    this.entries.set(packId, raw);
    this.cachedBytes += raw.length;
    for (const [oldestId, oldest] of this.entries) {
      if (this.cachedBytes <= this.capacityBytes || this.entries.size <= 1) break;
      this.entries.delete(oldestId);
      this.cachedBytes -= oldest.length;
    }
    return raw;
  }

  clear(): void {
    this.entries.clear();
    this.cachedBytes = 0;
  }
}
