#!/usr/bin/env node
// Builds the optional native fingerprint kernel (native/fingerprint.c) with node-gyp at `npm ci`
// ("install" script of package.json). Never fails the install: without a compiler, Python or
// Node's headers, EmbrFS uses its JavaScript fingerprint (same output, ~1.5x slower per chunk).
//
// Node's headers: when the running Node's prefix has include/node/node_api.h (distribution
// packages and the nodejs.org tarballs both install it), node-gyp is pointed at it with
// --nodedir, so the build needs no download. An explicit npm_config_nodedir wins.
// EMBRFS_SKIP_NATIVE_BUILD=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function nodeGypCommand() {
  // npm exports its bundled node-gyp to lifecycle scripts.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, bundled];
  return ['node-gyp'];
}

function main() {
  if (process.env.EMBRFS_SKIP_NATIVE_BUILD === '1') {
    console.log('embrfs: native fingerprint build skipped (EMBRFS_SKIP_NATIVE_BUILD=1); the JavaScript one is used');
    return;
  }
  const [command, ...prefixArgs] = nodeGypCommand();
  const args = [...prefixArgs, 'rebuild'];
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  console.log(`embrfs: building the native fingerprint: ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: here, stdio: 'inherit' });
  if (result.status === 0) {
    console.log('embrfs: native fingerprint built (native/build/Release/embrfs_native.node)');
    return;
  }
  const why = result.error ? result.error.message : `exit ${result.status ?? result.signal}`;
  console.warn(`embrfs: native fingerprint not built (${why}); using the JavaScript one (same output, slower)`);
}

main();
