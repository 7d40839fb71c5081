/**
 * Vector-kernel benchmark: bind, bundle and cosine in the sparse and packed forms, plus basis
 * generation and majority accumulation, at dimension 10,000 and several densities.
 *
 * One line per (kernel, form, nonZeroCount):
 * `{"bench":"vsa","kernel":"bind","form":"sparse","dimension":10000,"nonZeroCount":200,"opsPerSecond":X,"sha256MBps":X}`
 * where `sha256MBps` is node:crypto SHA-256 over a fixed buffer in the same run: the yardstick
 * that makes figures comparable across noisy machines. Every kernel writes into a preallocated
 * output, so the loop measures the kernel and not the allocator.
 *
 * @example
 * ```sh
 * npx tsc -p tsconfig.json && npm run bench -- --json vsa
 * ```
 */
import { medianSeconds, sha256MegabytesPerSecond, type BenchContext } from '../benchmark.js';
import { BundleAccumulator } from './accumulator.js';
import { SparseScratch, bindInto, bundleInto } from './algebra.js';
import { basisVector } from './basis.js';
import { PackedVector, packedBindInto, packedBundleInto, packedCosine } from './packed.js';
import { cosine, type SparseVector } from './sparse.js';

const DIMENSION = 10_000;

interface Kernel {
  kernel: string;
  form: 'sparse' | 'packed';
  /** Runs the kernel once; returns a number so the work cannot be optimized away. */
  once: () => number;
}

/**
 * Runs the benchmark at `context.size`.
 *
 * @example
 * ```ts
 * await run({ size: 'small', emit: console.log, tmpDir: '/tmp' });
 * ```
 */
export async function run(context: BenchContext): Promise<void> {
  const small = context.size === 'small';
  const yardstick = new Uint8Array(small ? 1 << 18 : 16 << 20);
  for (let at = 0; at < yardstick.length; at += 1) yardstick[at] = Math.imul(at, 2654435761) >>> 24;
  const sha256MBps = await sha256MegabytesPerSecond([yardstick], small ? 1 : 5);
  const runs = small ? 1 : 7;
  let sink = 0;

  for (const nonZeroCount of small ? [200] : [200, 2000, 5000]) {
    const a = basisVector('bench', 0, { dimension: DIMENSION, nonZeroCount });
    const b = basisVector('bench', 1, { dimension: DIMENSION, nonZeroCount });
    const scratch = new SparseScratch(2 * nonZeroCount);
    const packedA = PackedVector.fromSparse(a);
    const packedB = PackedVector.fromSparse(b);
    const packedOut = PackedVector.zero(DIMENSION);
    const accumulator = new BundleAccumulator(DIMENSION);
    let basisIndex = 0;
    const kernels: Kernel[] = [
      { kernel: 'bind', form: 'sparse', once: () => (bindInto(a, b, scratch), scratch.positiveLength) },
      { kernel: 'bundle', form: 'sparse', once: () => (bundleInto(a, b, scratch), scratch.positiveLength) },
      { kernel: 'cosine', form: 'sparse', once: () => cosine(a, b) },
      { kernel: 'bind', form: 'packed', once: () => (packedBindInto(packedA, packedB, packedOut), packedOut.positive[0]) },
      { kernel: 'bundle', form: 'packed', once: () => (packedBundleInto(packedA, packedB, packedOut), packedOut.positive[0]) },
      { kernel: 'cosine', form: 'packed', once: () => packedCosine(packedA, packedB) },
      // The majority bundle: add then subtract keeps the counts bounded however long it runs.
      { kernel: 'majority-add', form: 'sparse', once: () => (accumulator.add(a).subtract(a), accumulator.counts[a.positive[0]]) },
      { kernel: 'basis', form: 'sparse', once: () => basisVector('bench-basis', basisIndex++, { dimension: DIMENSION, nonZeroCount }).nonZeroCount },
    ];
    for (const { kernel, form, once } of kernels) {
      const iterations = small ? 20 : await calibrate(once);
      const seconds = await medianSeconds(runs, () => {
        for (let iteration = 0; iteration < iterations; iteration += 1) sink += once();
      });
      context.emit({
        bench: 'vsa',
        kernel,
        form,
        dimension: DIMENSION,
        nonZeroCount,
        opsPerSecond: Math.round(iterations / seconds),
        sha256MBps,
      });
    }
    sink += checkEquivalence(a, b, packedA, packedB);
  }
  if (!Number.isFinite(sink)) throw new Error('bench sink is not finite');
}

/** Iterations that take about 100 ms, so each timed sample is well above timer noise. */
async function calibrate(once: () => number): Promise<number> {
  let iterations = 16;
  for (let attempt = 0; attempt < 24; attempt += 1) {
    const seconds = await medianSeconds(1, () => {
      for (let iteration = 0; iteration < iterations; iteration += 1) once();
    });
    if (seconds >= 0.1) break;
    iterations *= 2;
  }
  return iterations;
}

/** The bench would be meaningless if the two forms disagreed: check once per density. */
function checkEquivalence(a: SparseVector, b: SparseVector, packedA: PackedVector, packedB: PackedVector): number {
  const sparseCosine = cosine(a, b);
  if (sparseCosine !== packedCosine(packedA, packedB)) throw new Error('packed and sparse cosine disagree');
  return sparseCosine;
}
