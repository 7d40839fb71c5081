/**
 * A small pure SHA-256 (FIPS 180-4). The vsa layer may not import `node:crypto`, yet the basis
 * scheme needs a well-known, documented pseudo-random stream: SHA-256 in counter mode is one
 * anybody can re-implement from the standard. Correctness is pinned by `sha256.test.ts`, which
 * compares it with node:crypto on random inputs of every length around block boundaries.
 *
 * Not a hot path for chunk hashing: the codec's chunk hashes are injected node:crypto hashes.
 *
 * @example
 * ```ts
 * const digest = sha256(new TextEncoder().encode('abc'));
 * // ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
 * ```
 */

const ROUND_CONSTANTS = Uint32Array.of(
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
);

const INITIAL_STATE = Uint32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);

const BLOCK_BYTES = 64;

/** SHA-256 digest length in bytes. */
export const SHA256_BYTES = 32;

/**
 * Incremental SHA-256. `update` any number of times, then `digest` once; `reset` to reuse the
 * object without allocating (the basis generator hashes thousands of short messages).
 *
 * @example
 * ```ts
 * const hash = new Sha256();
 * hash.update(Uint8Array.of(0x61)).update(Uint8Array.of(0x62, 0x63));
 * hash.digest(); // same as sha256(bytes of 'abc')
 * ```
 */
export class Sha256 {
  private readonly state = new Uint32Array(8);
  private readonly schedule = new Uint32Array(64);
  private readonly block = new Uint8Array(BLOCK_BYTES);
  private blockLength = 0;
  /** Total message length in bytes; a double is exact up to 2^53 bytes, far beyond any input here. */
  private messageBytes = 0;
  private finished = false;

  constructor() {
    this.reset();
  }

  /** Starts a new message. */
  reset(): this {
    this.state.set(INITIAL_STATE);
    this.blockLength = 0;
    this.messageBytes = 0;
    this.finished = false;
    return this;
  }

  /** Appends bytes to the message. */
  update(bytes: Uint8Array): this {
    if (this.finished) throw new TypeError('Sha256.update after digest; call reset() first');
    let offset = 0;
    this.messageBytes += bytes.length;
    if (this.blockLength > 0) {
      const taken = Math.min(BLOCK_BYTES - this.blockLength, bytes.length);
      this.block.set(bytes.subarray(0, taken), this.blockLength);
      this.blockLength += taken;
      offset = taken;
      if (this.blockLength < BLOCK_BYTES) return this;
      this.compress(this.block, 0);
      this.blockLength = 0;
    }
    while (offset + BLOCK_BYTES <= bytes.length) {
      this.compress(bytes, offset);
      offset += BLOCK_BYTES;
    }
    if (offset < bytes.length) {
      this.block.set(bytes.subarray(offset), 0);
      this.blockLength = bytes.length - offset;
    }
    return this;
  }

  /** Finishes the message and writes the 32-byte digest into `out` at `offset` (no allocation). */
  digestInto(out: Uint8Array, offset = 0): void {
    if (this.finished) throw new TypeError('Sha256.digest called twice; call reset() first');
    if (offset < 0 || offset + SHA256_BYTES > out.length) throw new RangeError('digest does not fit in the output buffer');
    this.finished = true;
    const bitLengthHigh = Math.floor(this.messageBytes / 0x2000_0000);
    const bitLengthLow = (this.messageBytes * 8) >>> 0;
    const block = this.block;
    block[this.blockLength] = 0x80;
    block.fill(0, this.blockLength + 1);
    if (this.blockLength + 1 > BLOCK_BYTES - 8) {
      this.compress(block, 0);
      block.fill(0);
    }
    writeUint32BigEndian(block, 56, bitLengthHigh);
    writeUint32BigEndian(block, 60, bitLengthLow);
    this.compress(block, 0);
    for (let word = 0; word < 8; word += 1) writeUint32BigEndian(out, offset + word * 4, this.state[word]);
  }

  /** Finishes the message and returns its 32-byte digest. */
  digest(): Uint8Array {
    const out = new Uint8Array(SHA256_BYTES);
    this.digestInto(out);
    return out;
  }

  private compress(bytes: Uint8Array, offset: number): void {
    const schedule = this.schedule;
    for (let word = 0; word < 16; word += 1) {
      const at = offset + word * 4;
      schedule[word] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
    }
    for (let word = 16; word < 64; word += 1) {
      const w15 = schedule[word - 15];
      const w2 = schedule[word - 2];
      const sigma0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const sigma1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      schedule[word] = (schedule[word - 16] + sigma0 + schedule[word - 7] + sigma1) | 0;
    }
    const state = this.state;
    let a = state[0];
    let b = state[1];
    let c = state[2];
    let d = state[3];
    let e = state[4];
    let f = state[5];
    let g = state[6];
    let h = state[7];
    for (let round = 0; round < 64; round += 1) {
      const sum1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const choose = (e & f) ^ (~e & g);
      const temp1 = (h + sum1 + choose + ROUND_CONSTANTS[round] + schedule[round]) | 0;
      const sum0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const majority = (a & b) ^ (a & c) ^ (b & c);
      const temp2 = (sum0 + majority) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + temp1) | 0;
      d = c;
      c = b;
      b = a;
      a = (temp1 + temp2) | 0;
    }
    state[0] = (state[0] + a) | 0;
    state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0;
    state[3] = (state[3] + d) | 0;
    state[4] = (state[4] + e) | 0;
    state[5] = (state[5] + f) | 0;
    state[6] = (state[6] + g) | 0;
    state[7] = (state[7] + h) | 0;
  }
}

/**
 * One-shot SHA-256 of `bytes` (32-byte digest).
 *
 * @example
 * ```ts
 * sha256(new Uint8Array(0)); // e3b0c442...52b855
 * ```
 */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Sha256().update(bytes).digest();
}

function writeUint32BigEndian(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}
