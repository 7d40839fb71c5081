/**
 * Memory for large read outputs (a whole-file `readFile`, a long `read`).
 *
 * A read must hand its caller new memory, and on this project's machine (a Firecracker VM) the
 * first touch of each fresh 4 KiB page costs about 10 us: filling a fresh 10 MB buffer took
 * 27-39 ms, several times the read's own work (SHA-256 of the same bytes: ~6 ms). Whether
 * `new Uint8Array(n)` gets fresh pages depends on when V8 last freed an earlier output and on
 * glibc's trimming, so the same read took 15 ms or 50-95 ms from run to run. Outputs of
 * {@link LARGE_OUTPUT_MIN_BYTES} or more are therefore allocated by the native addon in a mapping
 * of their own, advised for transparent huge pages (`allocLarge` in native/fingerprint.c): a fresh
 * 10 MB output then fills in ~2 ms (measured: 2 ms against 39 ms for 10 MB, `/tmp` script, 15
 * allocations each). Where the kernel has no transparent huge pages, the mapping behaves like any
 * other fresh memory. Without the addon, or when the mapping fails, a plain Uint8Array is used.
 *
 * Such a buffer is a Uint8Array like any other, with one difference a caller may notice:
 * `postMessage(data, [data.buffer])` copies it instead of moving it (Node never transfers
 * external memory), so the sender's view is not detached.
 *
 * @example
 * ```ts
 * const out = allocateOutput(row.size); // zero-filled
 * ```
 */
import { loadNativeKernels } from '../query/native.js';

/** Outputs at least this large come from the addon's huge-page mappings. */
export const LARGE_OUTPUT_MIN_BYTES = 4 << 20;

let allocLarge: ((byteLength: number) => ArrayBuffer | null) | undefined | null = null;

function largeAllocator(): ((byteLength: number) => ArrayBuffer | null) | undefined {
  if (allocLarge === null) allocLarge = loadNativeKernels().kernels?.allocLarge;
  return allocLarge;
}

/** A zero-filled Uint8Array of `byteLength` bytes (huge-page backed from {@link LARGE_OUTPUT_MIN_BYTES} on). */
export function allocateOutput(byteLength: number): Uint8Array {
  if (byteLength >= LARGE_OUTPUT_MIN_BYTES) {
    const buffer = largeAllocator()?.(byteLength);
    if (buffer !== undefined && buffer !== null) return new Uint8Array(buffer);
  }
  return new Uint8Array(byteLength);
}

/** Which allocator large outputs use here: 'huge-pages' (the addon) or 'plain'. */
export function largeOutputImplementation(): 'huge-pages' | 'plain' {
  return largeAllocator() === undefined ? 'plain' : 'huge-pages';
}
