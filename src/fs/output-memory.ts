/**
 * Memory for large read outputs (a whole-file `readFile`, a long `read`).
 *
 * A read must hand its caller new memory, and on this project's machine (a Firecracker VM) the
 * first touch of each fresh 4 KiB page costs about 10 us: filling a fresh 10 MB buffer took
 * 27-39 ms, several times the read's own work (SHA-256 of the same bytes: ~6 ms). Whether
 * `new Uint8Array(n)` gets fresh pages depends on when V8 last freed an earlier output and on
 * glibc's trimming, so the same read took 15 ms or 50-95 ms from run to run. Outputs of
 * {@link LARGE_OUTPUT_MIN_BYTES} or more are therefore allocated by the native addon
 * (`allocLarge` in native/fingerprint.c): mappings of their own, advised for transparent huge
 * pages, kept in a small pool when V8 collects their buffer and zeroed again on reuse, with one
 * prepared ahead on a thread of its own when the same size is asked for twice in a row. Measured
 * here (`/tmp` scripts, 15 allocations of 10 MB each): a reused mapping fills in ~1 ms, a fresh
 * one in 2 MiB pages in ~18 ms, a fresh plain buffer in 25-39 ms. Where the kernel has no
 * transparent huge pages, a fresh mapping behaves like any other fresh memory. Without the addon,
 * or when the mapping fails, a plain Uint8Array is used.
 *
 * Such a buffer is a Uint8Array like any other, with one difference a caller may notice:
 * `postMessage(data, [data.buffer])` copies it instead of moving it (Node never moves external
 * memory), so the sender's view is not detached. Node 21 and later throw a DataCloneError there
 * instead; where a transfer throws (checked once), outputs are plain. Only the main thread uses
 * the addon: a worker thread's outputs are posted to other threads, which would copy them.
 *
 * @example
 * ```ts
 * const out = allocateOutput(row.size); // zero-filled
 * ```
 */
import { constants as bufferConstants } from 'node:buffer';
import { MessageChannel, isMainThread } from 'node:worker_threads';
import { loadNativeKernels } from '../query/native.js';

/** Outputs at least this large come from the addon's huge-page mappings. */
export const LARGE_OUTPUT_MIN_BYTES = 4 << 20;

let allocLarge: ((byteLength: number) => ArrayBuffer | null) | undefined | null = null;

/**
 * The addon's allocator, if it loaded, this is the main thread, and moving such a buffer to
 * another thread copies it rather than throwing (Node 20; checked once with a one-byte buffer).
 */
function largeAllocator(): ((byteLength: number) => ArrayBuffer | null) | undefined {
  if (allocLarge !== null) return allocLarge;
  allocLarge = undefined;
  const candidate = isMainThread ? loadNativeKernels().kernels?.allocLarge : undefined;
  if (candidate === undefined) return undefined;
  const probe = candidate(1);
  if (probe === null) return undefined;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(probe, [probe]);
    allocLarge = candidate;
  } catch {
    // Node 21+: external memory cannot be transferred, and a caller's transfer would throw.
  } finally {
    port1.close();
    port2.close();
  }
  return allocLarge;
}

/** A zero-filled Uint8Array of `byteLength` bytes (huge-page backed from {@link LARGE_OUTPUT_MIN_BYTES} on). */
export function allocateOutput(byteLength: number): Uint8Array {
  // Above Node's buffer limit the plain constructor throws its usual RangeError.
  if (byteLength >= LARGE_OUTPUT_MIN_BYTES && byteLength <= bufferConstants.MAX_LENGTH) {
    const buffer = largeAllocator()?.(byteLength);
    if (buffer !== undefined && buffer !== null) return new Uint8Array(buffer);
  }
  return new Uint8Array(byteLength);
}

/** Which allocator large outputs use on this thread: 'huge-pages' (the addon) or 'plain'. */
export function largeOutputImplementation(): 'huge-pages' | 'plain' {
  return largeAllocator() === undefined ? 'plain' : 'huge-pages';
}
