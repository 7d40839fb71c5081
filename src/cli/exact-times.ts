/**
 * Restores file times to the nanosecond on extract.
 *
 * Why this exists: Node's `fs.utimes`/`lutimes` take seconds as a double and libuv truncates
 * them to microseconds, so a file whose mtime has a sub-microsecond part would come back
 * different and `stat` comparison against the source would fail. Node 20 has no bigint
 * utimes. We set times with `lutimes` first (exact when the nanoseconds are a multiple of
 * 1000, which covers every whole-second mtime), then fix the remaining entries in one batch
 * with a helper that can call utimensat with nanoseconds: `python3` (one process for all
 * entries, `os.utime(ns=..., follow_symlinks=False)`) or, if absent, `touch -h -d @S.N`
 * (one process per distinct time). Links are never followed.
 */
import { spawn } from 'node:child_process';

/** One path whose times need nanosecond precision. */
export interface ExactTime {
  path: string;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/**
 * True when `lutimes` (microsecond precision) cannot set this time exactly.
 *
 * @example
 * ```ts
 * needsExactTime(1_700_000_000_123_456_789n); // true
 * ```
 */
export function needsExactTime(timeNs: bigint): boolean {
  return timeNs % 1000n !== 0n;
}

/**
 * Seconds as a double for `lutimes`; exact whenever {@link needsExactTime} is false.
 *
 * @example
 * ```ts
 * await lutimes(path, secondsOf(atimeNs), secondsOf(mtimeNs));
 * ```
 */
export function secondsOf(timeNs: bigint): number {
  const wholeSeconds = timeNs / 1_000_000_000n;
  const remainderNs = timeNs - wholeSeconds * 1_000_000_000n;
  // libuv truncates the double to microseconds, and x.123456 s is often stored as the double just
  // below it (doubles near 1.8e9 s are 238 ns apart): half of all microsecond times came back one
  // microsecond early. A quarter-microsecond nudge lands inside the right microsecond for any
  // time before 2106 (spacing there is under 500 ns, so the rounding error stays under 250 ns).
  const nudgeNs = timeNs >= 0n ? 250 : 0;
  return Number(wholeSeconds) + (Number(remainderNs) + nudgeNs) / 1e9;
}

function formatSeconds(timeNs: bigint): string {
  const negative = timeNs < 0n;
  const absoluteNs = negative ? -timeNs : timeNs;
  const text = `${absoluteNs / 1_000_000_000n}.${(absoluteNs % 1_000_000_000n).toString().padStart(9, '0')}`;
  return negative ? `-${text}` : text;
}

function run(command: string, args: string[], input: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let stderrText = '';
    child.stderr?.on('data', (data: Buffer) => {
      stderrText += data.toString();
    });
    child.on('error', () => resolve(127));
    child.on('close', (code) => {
      if (code !== 0 && code !== null && stderrText.length > 0 && code !== 127) process.stderr.write(stderrText);
      resolve(code ?? 1);
    });
    if (input !== undefined && child.stdin !== null) {
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

const pythonProgram = [
  'import os, sys',
  'data = sys.stdin.buffer.read().split(b"\\0")',
  'for i in range(0, len(data) - 2, 3):',
  '    os.utime(data[i], ns=(int(data[i + 1]), int(data[i + 2])), follow_symlinks=False)',
].join('\n');

/**
 * Sets atime and mtime of every entry to the nanosecond without following links. Returns false
 * when no helper could do it (the times then stay exact to the microsecond).
 *
 * @example
 * ```ts
 * await setExactTimes([{ path: '/tmp/out/a', atimeNs: 1n, mtimeNs: 1_700_000_000_123_456_789n }]);
 * ```
 */
export async function setExactTimes(entries: readonly ExactTime[]): Promise<boolean> {
  if (entries.length === 0) return true;
  // NUL cannot occur in a path, so it separates records safely.
  const input = entries.map((entry) => `${entry.path}\0${entry.atimeNs}\0${entry.mtimeNs}\0`).join('');
  if ((await run('python3', ['-c', pythonProgram], input)) === 0) return true;
  const byMtime = new Map<bigint, string[]>();
  for (const entry of entries) {
    const paths = byMtime.get(entry.mtimeNs) ?? [];
    paths.push(entry.path);
    byMtime.set(entry.mtimeNs, paths);
  }
  for (const [mtimeNs, paths] of byMtime) {
    // Bounded argument lists keep each command line far below ARG_MAX.
    for (let start = 0; start < paths.length; start += 500) {
      const code = await run('touch', ['-h', '-c', '-m', '-d', `@${formatSeconds(mtimeNs)}`, '--', ...paths.slice(start, start + 500)], undefined);
      if (code !== 0) return false;
    }
  }
  return true;
}
