/**
 * Child process of the conformance suite for the permission cases: started with an unprivileged
 * uid/gid, reads `{ root, steps }` as JSON on stdin and prints the outcomes as JSON.
 */
import { readFileSync } from 'node:fs';
import { runSteps, type Step } from './posix-steps.js';

const input = JSON.parse(readFileSync(0, 'utf8')) as { root: string; steps: Step[] };
process.stdout.write(JSON.stringify(runSteps(input.root, input.steps)));
