/**
 * Loader of the optional native kernels (`native/fingerprint.c`, a plain Node-API addon built by
 * node-gyp at `npm ci` through `native/build.mjs`). The addon only makes the fingerprint faster:
 * every caller goes through src/query/fingerprint.ts, which falls back to its JavaScript
 * construction (the reference) when the addon is missing, disabled or disagrees with it.
 *
 * - `EMBRFS_NO_NATIVE=1` never loads the addon (tests and A/B measurements of the JS path).
 * - `EMBRFS_EXPECT_NATIVE=1` is read by the tests (and set by `.ci/run`): there, a missing addon
 *   is a failure instead of a silent fallback.
 *
 * @example
 * ```ts
 * const loaded = loadNativeKernels();
 * if (loaded.kernels !== undefined) loaded.kernels.fingerprint(bytes, 256, out);
 * ```
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The functions the addon exports (see the comment at the top of native/fingerprint.c). */
export interface NativeKernels {
  /** Fingerprint format version the addon implements. */
  readonly version: number;
  /** Fingerprint dimension the addon implements. */
  readonly dimension: number;
  /** Positive dims at out[0, p), negative at out[p, p + n); returns p * 16384 + n. `out` holds >= dimension entries. */
  fingerprint(bytes: Uint8Array, maxNonZero: number, out: Uint32Array): number;
  /** As fingerprint, plus the vsa vector format v1 bytes in serialized[0, s) (serialized holds >= 20,007); returns p * 16384 + n + s * 2^28. */
  fingerprintSerialized(bytes: Uint8Array, maxNonZero: number, out: Uint32Array, serialized: Uint8Array): number;
  /** Every chunk of `bytes` in one call: dims packed chunk after chunk, counts[2i] = p, counts[2i+1] = n; returns dims written. */
  fingerprintChunks(bytes: Uint8Array, chunkBytes: number, maxNonZero: number, dims: Uint32Array, counts: Uint32Array): number;
  /**
   * SHA-256 of every `chunkBytes` piece of `bytes` into out[32i, 32i + 32); returns the piece count.
   * Absent when the running Node does not export OpenSSL's SHA256 (src/fs/encode.ts checks it).
   */
  sha256Chunks?: (bytes: Uint8Array, chunkBytes: number, out: Uint8Array) => number;
  /**
   * A zero-filled ArrayBuffer in a 2 MiB-aligned mapping of its own advised for transparent huge
   * pages, unmapped when collected; null when the mapping fails. Absent from builds before it.
   */
  allocLarge?: (byteLength: number) => ArrayBuffer | null;
}

/** Result of {@link loadNativeKernels}: the kernels, or why there are none. */
export interface NativeLoadResult {
  readonly kernels?: NativeKernels;
  /** 'loaded', or a one-line reason the JavaScript construction is used. */
  readonly reason: string;
}

/** Where node-gyp puts the addon, relative to this module once compiled (dist/src/query/native.js). */
const ADDON_URL = new URL('../../../native/build/Release/embrfs_native.node', import.meta.url);

/**
 * Loads the addon unless `EMBRFS_NO_NATIVE=1`. Never throws: a missing or broken build gives a reason.
 *
 * @example
 * ```ts
 * loadNativeKernels().reason; // 'loaded' after a successful npm ci
 * ```
 */
export function loadNativeKernels(): NativeLoadResult {
  if (process.env.EMBRFS_NO_NATIVE === '1') return { reason: 'disabled by EMBRFS_NO_NATIVE=1' };
  try {
    const kernels = createRequire(import.meta.url)(fileURLToPath(ADDON_URL)) as NativeKernels;
    if (typeof kernels.fingerprint !== 'function' || typeof kernels.fingerprintSerialized !== 'function' || typeof kernels.fingerprintChunks !== 'function') {
      return { reason: 'native addon lacks fingerprint functions (stale build? run npm ci)' };
    }
    return { kernels, reason: 'loaded' };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { reason: `native addon not loaded: ${message}` };
  }
}
