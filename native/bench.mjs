#!/usr/bin/env node
// JS vs native chunk fingerprint on real bytes: node native/bench.mjs [megabytes=243] [reps=5]
// (after `npx tsc -p tsconfig.json`). Files of /usr/include then /usr/share/doc, concatenated and
// cut into 4 KiB chunks. Each rep runs, side by side: the JavaScript construction per chunk,
// chunkFingerprint per chunk (native when loaded), chunkFingerprints over the whole buffer
// (one native call), and the write path's vector + serialization per chunk (JavaScript
// construction + serializeVector vs serializedChunkFingerprint). Prints one JSON line: medians in CPU ns/byte (process CPU time, so other
// processes on the machine inflate it far less than wall time) and the median per-rep ratios.
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';

const fingerprint = await import(new URL('../dist/src/query/fingerprint.js', import.meta.url).href);
const { serializeVector } = await import(new URL('../dist/src/vsa/serialize.js', import.meta.url).href);
const limit = Number(process.argv[2] ?? 243) * 1e6;
const reps = Number(process.argv[3] ?? 5);
const parts = [];
let total = 0;
function walk(directory) {
  let names;
  try { names = readdirSync(directory).sort(); } catch { return; }
  for (const name of names) {
    if (total >= limit) return;
    const path = join(directory, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) walk(path);
    else if (stat.isFile()) {
      const bytes = readFileSync(path);
      parts.push(bytes);
      total += bytes.length;
    }
  }
}
walk('/usr/include');
walk('/usr/share/doc');
const all = new Uint8Array(Buffer.concat(parts).subarray(0, limit));
const CHUNK = 4096;
const chunks = [];
for (let offset = 0; offset < all.length; offset += CHUNK) chunks.push(all.subarray(offset, offset + CHUNK));

const variants = {
  js: () => chunks.reduce((sum, chunk) => sum + fingerprint.contentFingerprintJs(chunk, { maxNonZero: fingerprint.CHUNK_FINGERPRINT_MAX_NON_ZERO }).nonZeroCount, 0),
  perChunk: () => chunks.reduce((sum, chunk) => sum + fingerprint.chunkFingerprint(chunk).nonZeroCount, 0),
  batch: () => fingerprint.chunkFingerprints(all, CHUNK).reduce((sum, vector) => sum + vector.nonZeroCount, 0),
  // The write path's call (encodeChunk): the vector and its vsa serialization.
  jsSerialized: () => chunks.reduce((sum, chunk) => {
    const vector = fingerprint.contentFingerprintJs(chunk, { maxNonZero: fingerprint.CHUNK_FINGERPRINT_MAX_NON_ZERO });
    return sum + vector.nonZeroCount + 0 * serializeVector(vector).length;
  }, 0),
  serialized: () => chunks.reduce((sum, chunk) => sum + fingerprint.serializedChunkFingerprint(chunk).vector.nonZeroCount, 0),
};
const nsPerByte = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
const nonZeros = {};
for (let rep = 0; rep < reps; rep += 1) {
  for (const [name, run] of Object.entries(variants)) {
    const start = process.cpuUsage();
    nonZeros[name] = run();
    const used = process.cpuUsage(start);
    nsPerByte[name].push(((used.user + used.system) * 1000) / all.length);
  }
}
if (new Set(Object.values(nonZeros)).size !== 1) throw new Error(`outputs differ: ${JSON.stringify(nonZeros)}`);
const median = (values) => values.slice().sort((a, b) => a - b)[values.length >> 1];
const ratio = (name, base = 'js') => median(nsPerByte[base].map((value, rep) => value / nsPerByte[name][rep]));
console.log(JSON.stringify({
  bench: 'native.fingerprint',
  implementation: fingerprint.fingerprintImplementation(),
  bytes: all.length,
  chunks: chunks.length,
  reps,
  nonZeros: nonZeros.js,
  nsPerByte: Object.fromEntries(Object.entries(nsPerByte).map(([name, values]) => [name, Number(median(values).toFixed(3))])),
  jsOverPerChunk: Number(ratio('perChunk').toFixed(2)),
  jsOverBatch: Number(ratio('batch').toFixed(2)),
  jsSerializedOverSerialized: Number(ratio('serialized', 'jsSerialized').toFixed(2)),
  loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
}));
