/**
 * The mount process of the FUSE tests: a FUSE server and synchronous client syscalls in one Node
 * process deadlock, so every test mounts in a child running this file.
 *
 * Usage: node mount-child.js '<json MountOptions & { memory?: boolean }>'
 * Prints "ready" on stdout once the mount serves requests; exits 0 after a clean unmount.
 */
import { mountEngram, serveEngram } from '../../src/fuse/index.js';
import type { MountOptions } from '../../src/fuse/index.js';
import { createMemoryEngram } from './memory-engram.js';

const options = JSON.parse(process.argv[2] ?? '{}') as MountOptions & { memory?: boolean };
try {
  const mounted = options.memory
    ? await serveEngram(createMemoryEngram(), { ...options, engramFile: options.engramFile, closeEngram: true })
    : await mountEngram(options);
  process.stdout.write('ready\n');
  await mounted.closed;
  process.exit(0);
} catch (error) {
  process.stderr.write(`mount-child: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
