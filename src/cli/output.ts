/**
 * Writing to stdout with backpressure, and the one JSON form every `--json` command uses.
 */
import { once } from 'node:events';

/**
 * Writes text or bytes to stdout, waiting when the pipe is full so memory stays bounded.
 *
 * @example
 * ```ts
 * await writeOut('hello\n');
 * ```
 */
export async function writeOut(data: string | Uint8Array): Promise<void> {
  if (!process.stdout.write(data)) await once(process.stdout, 'drain');
}

/**
 * Serializes one stable JSON document: bigint (nanosecond times) become decimal strings so no
 * precision is lost in consumers that parse numbers as doubles.
 *
 * @example
 * ```ts
 * toJson({ mtimeNs: 1n }); // '{"mtimeNs":"1"}'
 * ```
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item));
}

/**
 * Formats nanoseconds since the epoch as an ISO-like UTC time with nanoseconds.
 *
 * @example
 * ```ts
 * formatTimeNs(1_700_000_000_000_000_007n); // '2023-11-14 22:13:20.000000007'
 * ```
 */
export function formatTimeNs(timeNs: bigint): string {
  const milliseconds = Number(timeNs / 1_000_000n);
  const iso = new Date(milliseconds).toISOString(); // 2026-11-24T01:26:49.123Z
  const fractionNs = ((timeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${fractionNs.toString().padStart(9, '0')}`;
}

/**
 * Formats a byte count for people (decimal units, like restic and df -H).
 *
 * @example
 * ```ts
 * formatBytes(1500); // '1.50 kB'
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
