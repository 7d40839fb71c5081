#!/usr/bin/env node
// Builds EmbrFS's two optional native parts with node-gyp at `npm ci` ("install" script of
// package.json). Never fails the install:
// - the fingerprint kernel (native/fingerprint.c); without it EmbrFS uses its JavaScript
//   fingerprint (same output, ~1.5x slower per chunk);
// - the SQLite VFS shim that gathers WAL writes (native/walbatch/walbatch.c, an SQLite extension
//   better-sqlite3 loads); without it engrams use SQLite's unix VFS (same files, more system calls);
// - fuse-native's C side with our changes (native/fuse/patch.mjs: nanosecond times, utimens with
//   one time omitted, the caller's uid/gid on create), built from the installed fuse-native's own
//   source into native/fuse/build/Release/embrfs_fuse.node; without it the mount uses the stock
//   prebuild and its documented limits (docs/design/fuse.md, "Binding decision").
//
// Node's headers: when the running Node's prefix has include/node/node_api.h (distribution
// packages and the nodejs.org tarballs both install it), node-gyp is pointed at it with
// --nodedir, so the build needs no download. An explicit npm_config_nodedir wins.
// EMBRFS_SKIP_NATIVE_BUILD=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PATCH_LEVEL, patchFuseNative } from './fuse/patch.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function nodeGypCommand() {
  // npm exports its bundled node-gyp to lifecycle scripts.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, bundled];
  return ['node-gyp'];
}

function nodeGyp(directory, what) {
  const [command, ...prefixArgs] = nodeGypCommand();
  const args = [...prefixArgs, 'rebuild'];
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  console.log(`embrfs: building ${what}: ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: directory, stdio: 'inherit' });
  if (result.status === 0) return undefined;
  return result.error ? result.error.message : `exit ${result.status ?? result.signal}`;
}

function buildFingerprint() {
  const failure = nodeGyp(here, 'the native fingerprint');
  if (failure === undefined) console.log('embrfs: native fingerprint built (native/build/Release/embrfs_native.node)');
  else console.warn(`embrfs: native fingerprint not built (${failure}); using the JavaScript one (same output, slower)`);
}

function buildFuse() {
  const directory = join(here, 'fuse');
  const output = join(directory, 'build', 'Release', 'embrfs_fuse.node');
  const fallback = 'the mount uses the stock fuse-native prebuild (millisecond times, no single-time utimens, created files owned by the mount)';
  let source;
  try {
    const fuseNative = dirname(createRequire(join(here, '..', 'package.json')).resolve('fuse-native/package.json'));
    source = patchFuseNative(readFileSync(join(fuseNative, 'fuse-native.c'), 'utf8'));
  } catch (error) {
    console.warn(`embrfs: fuse-native not patched (${error.message}); ${fallback}`);
    return;
  }
  mkdirSync(join(directory, 'gen'), { recursive: true });
  writeFileSync(join(directory, 'gen', 'fuse-native-patched.c'), source);
  const failure = nodeGyp(directory, 'the patched fuse-native');
  // Loaded once in a child process: a build that links but cannot load (a missing libfuse.so.2)
  // is removed, so the mount never tries it.
  const check = failure === undefined ? spawnSync(process.execPath, ['-e', `process.exit(require(${JSON.stringify(output)}).embrfs_patch_level === ${PATCH_LEVEL} ? 0 : 1)`]) : undefined;
  if (failure === undefined && check?.status === 0) {
    console.log('embrfs: patched fuse-native built (native/fuse/build/Release/embrfs_fuse.node)');
    return;
  }
  rmSync(output, { force: true });
  console.warn(`embrfs: patched fuse-native not built (${failure ?? 'it does not load'}); ${fallback}`);
}

function buildWalBatch() {
  const directory = join(here, 'walbatch');
  const output = join(directory, 'build', 'Release', 'embrfs_walbatch.node');
  const failure = nodeGyp(directory, 'the WAL-batching SQLite VFS');
  // Loaded once in a child process through better-sqlite3, as the store loads it.
  const probe = `const D = require('better-sqlite3'); const d = new D(':memory:'); d.loadExtension(${JSON.stringify(output)}); process.exit(d.prepare('SELECT embrfs_batch_vfs(1) + embrfs_batch_vfs(0)').pluck().get() === 1 ? 0 : 1);`;
  const check = failure === undefined ? spawnSync(process.execPath, ['-e', probe], { cwd: join(here, '..') }) : undefined;
  if (failure === undefined && check?.status === 0) {
    console.log('embrfs: WAL-batching VFS built (native/walbatch/build/Release/embrfs_walbatch.node)');
    return;
  }
  rmSync(output, { force: true });
  console.warn(`embrfs: WAL-batching VFS not built (${failure ?? 'it does not load'}); engrams use SQLite's unix VFS`);
}

function main() {
  if (process.env.EMBRFS_SKIP_NATIVE_BUILD === '1') {
    console.log('embrfs: native builds skipped (EMBRFS_SKIP_NATIVE_BUILD=1); the JavaScript fingerprint and the stock fuse-native are used');
    return;
  }
  buildFingerprint();
  buildWalBatch();
  buildFuse();
}

main();
