#!/usr/bin/env node
// Keeps the import direction honest (STYLE habit 1). Layers, bottom to top:
//   errors -> vsa -> codec -> store -> query -> fs -> fuse -> cli
// A module may import its own layer and layers below it. vsa and codec are pure: no `node:*`
// imports, no clock (Date, performance, process.hrtime) and no Math.random in their non-test code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const order = ['errors', 'vsa', 'codec', 'store', 'query', 'fs', 'fuse', 'cli', 'index', 'benchmark'];
const pure = new Set(['errors', 'vsa', 'codec']);
const root = resolve('src');

function layerOf(file) {
  const first = relative(root, file).split('/')[0].replace(/(\.(test|bench))?\.(ts|js)$/, '');
  return first;
}

function walk(directory) {
  const files = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...walk(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

const problems = [];
for (const file of walk(root)) {
  const isTestOrBench = /\.(test|bench)\.ts$/.test(file);
  const layer = layerOf(file);
  const source = readFileSync(file, 'utf8');
  const rank = order.indexOf(layer);
  if (rank < 0) problems.push(`${relative('.', file)}: unknown layer '${layer}' (add it to scripts/check-layers.mjs)`);
  for (const match of source.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
    const specifier = match[1];
    if (specifier.startsWith('.')) {
      const target = layerOf(resolve(dirname(file), specifier));
      const targetRank = order.indexOf(target);
      if (!isTestOrBench && targetRank > rank && target !== 'benchmark') {
        problems.push(`${relative('.', file)}: layer '${layer}' imports '${specifier}' from higher layer '${target}'`);
      }
    } else if (pure.has(layer) && !isTestOrBench && specifier.startsWith('node:')) {
      problems.push(`${relative('.', file)}: pure layer '${layer}' imports '${specifier}'`);
    }
  }
  if (pure.has(layer) && !isTestOrBench) {
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const forbidden of ['Math.random', 'Date.now', 'new Date', 'performance.now', 'process.hrtime', 'process.']) {
      if (code.includes(forbidden)) problems.push(`${relative('.', file)}: pure layer '${layer}' uses '${forbidden}'`);
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('check-layers: import direction ok');
