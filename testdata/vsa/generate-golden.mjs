#!/usr/bin/env node
// Writes the golden files of the vsa formats from the CURRENT build (run `npx tsc` first):
//   node testdata/vsa/generate-golden.mjs
// Only run it when introducing a NEW format or scheme version, and add the new cases beside the
// old ones: the point of these files is that a change to an existing version fails a test.
import { writeFileSync } from 'node:fs';
import {
  basisVector, thin, serializeVector, SparseVector, BundleAccumulator, BASIS_SCHEME_VERSION, VECTOR_FORMAT_VERSION,
  BUNDLE_FORMAT_VERSION,
} from '../../dist/src/vsa/index.js';

const directory = new URL('./', import.meta.url);
const hex = (bytes) => Buffer.from(bytes).toString('hex');
// Number arrays on one line: the files stay readable and diffs stay small.
const format = (value) => JSON.stringify(value, null, 1).replace(/\[\s+([-\d,\s]+?)\s+\]/g, (_, body) => `[${body.split(/,\s*/).join(',')}]`) + '\n';
const lists = (v) => ({ positive: [...v.positive], negative: [...v.negative] });

const basisCases = [
  { seed: 'bytes', index: 0, dimension: 10_000, nonZeroCount: 200 },
  { seed: 'position', index: 4095, dimension: 10_000, nonZeroCount: 200 },
  { seed: '', index: 0, dimension: 64, nonZeroCount: 7 },
  { seed: 'ünïcode/☃', index: 4_294_967_295, dimension: 1000, nonZeroCount: 20 },
  { seed: 'full', index: 1, dimension: 40, nonZeroCount: 40 },
  { seed: 'a seed longer than one sixty-four byte SHA-256 block, to cover the two-block messages', index: 7, dimension: 100_003, nonZeroCount: 33 },
].map((input) => ({ ...input, ...lists(basisVector(input.seed, input.index, input)) }));
const thinSource = basisVector('thin', 0, { dimension: 10_000, nonZeroCount: 2000 });
const thinCases = [50, 1, 1999].map((targetNonZeroCount) => ({
  source: { seed: 'thin', index: 0, dimension: 10_000, nonZeroCount: 2000 },
  targetNonZeroCount,
  ...lists(thin(thinSource, targetNonZeroCount)),
}));
writeFileSync(new URL('basis-v1.json', directory), format({ scheme: BASIS_SCHEME_VERSION, basis: basisCases, thin: thinCases }));

const vectorCases = [
  { name: 'empty', dimension: 16, positive: [], negative: [] },
  { name: 'doc example', dimension: 16, positive: [1, 5], negative: [7] },
  { name: 'position zero', dimension: 1, positive: [0], negative: [] },
  { name: 'largest dimension', dimension: 2_147_483_647, positive: [0], negative: [2_147_483_646] },
  { name: 'basis bytes/0', ...lists(basisVector('bytes', 0)), dimension: 10_000 },
].map((input) => {
  const v = new SparseVector(input.dimension, Uint32Array.from(input.positive), Uint32Array.from(input.negative));
  return { ...input, hex: hex(serializeVector(v)) };
});
const accumulator = new BundleAccumulator(64);
const a = basisVector('bundle', 0, { dimension: 64, nonZeroCount: 10 });
const b = basisVector('bundle', 1, { dimension: 64, nonZeroCount: 10 });
accumulator.add(a).add(a).add(b).subtract(basisVector('bundle', 2, { dimension: 64, nonZeroCount: 10 }));
const bundleCases = [
  { name: 'empty', dimension: 8, counts: [...new BundleAccumulator(8).counts], vectorCount: 0, hex: hex(new BundleAccumulator(8).serialize()) },
  { name: 'a+a+b-c', dimension: 64, counts: [...accumulator.counts], vectorCount: accumulator.vectorCount, hex: hex(accumulator.serialize()) },
];
writeFileSync(
  new URL('serialization-v1.json', directory),
  format({ vectorFormat: VECTOR_FORMAT_VERSION, bundleFormat: BUNDLE_FORMAT_VERSION, vectors: vectorCases, bundles: bundleCases }),
);
console.log('wrote basis-v1.json and serialization-v1.json');
