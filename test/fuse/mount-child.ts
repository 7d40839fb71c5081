/**
 * The mount process of the FUSE tests: a FUSE server and synchronous client syscalls in one Node
 * process deadlock, so every test mounts in a child running this file.
 *
 * Usage: node mount-child.js '<json MountOptions & { memory?: boolean }>'
 * Prints "ready" on stdout once the mount serves requests; exits 0 after a clean unmount (with the
 * in-memory engram, after printing its counters on stderr).
 */
import { mountEngram, serveEngram } from '../../src/fuse/index.js';
import type { MountOptions } from '../../src/fuse/index.js';
import { createMemoryEngram } from './memory-engram.js';

const options = JSON.parse(process.argv[2] ?? '{}') as MountOptions & { memory?: boolean };
try {
  const memory = options.memory ? createMemoryEngram() : undefined;
  const mounted =
    memory !== undefined ? await serveEngram(memory, { ...options, engramFile: options.engramFile, closeEngram: true }) : await mountEngram(options);
  process.stdout.write('ready\n');
  await mounted.closed;
  // Lets tests see what the mount asked of the in-memory engram (e.g. how often it synced).
  if (memory !== undefined) process.stderr.write(`memory-engram counters: ${JSON.stringify(memory.counters)}\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`mount-child: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
