/**
 * The `embrfs` command line (SPEC section 4). Thin: each command parses its arguments here and
 * calls one function of `src/cli`; this module maps every failure to one line on stderr and an
 * exit code (0 success, 1 failed check or conflict, 2 bad usage or input). It never calls
 * `process.exit`: `bin/embrfs.js` sets `process.exitCode` from the returned value.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ProfileName } from '../fs/api.js';
import { catCommand, infoCommand, listCommand, logCommand } from './browse.js';
import { mkdirCommand, moveCommand, putCommand, removeCommand } from './edit.js';
import { extract } from './extract.js';
import { describeFailure, ExitCode, type ExitCodeValue } from './failure.js';
import { ingest } from './ingest.js';
import { compactCommand, snapshotCommand, verifyCommand } from './maintain.js';
import { mountCommand, umountCommand } from './mount.js';
import { queryCommand, similarCommand } from './search.js';
import { formatBytes } from './output.js';

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new InvalidArgumentError('too large');
  return parsed;
}

function parseOctalMode(value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new InvalidArgumentError('expected an octal mode such as 755');
  return Number.parseInt(value, 8);
}

function example(lines: string): string {
  return `\nExample:\n${lines
    .split('\n')
    .map((line) => `  $ ${line}`)
    .join('\n')}\n`;
}

/** State shared between the actions and the error handler of one `main` call. */
interface RunState {
  exitCode: ExitCodeValue;
  engramFile: string | undefined;
}

function buildProgram(state: RunState): Command {
  const program = new Command();
  const run = (engramFile: string | undefined, action: () => Promise<ExitCodeValue>) => async () => {
    state.engramFile = engramFile;
    state.exitCode = await action();
  };
  program
    .name('embrfs')
    .description('A holographic, versioned filesystem in one file: ingest trees, extract them bit-perfectly, browse, edit, snapshot, verify and mount engrams.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`embrfs: ${text.replace(/^error: /, '').trim()} (usage): run 'embrfs --help' or 'embrfs <command> --help'\n`),
    })
    .helpCommand(true)
    .addHelpText('after', example('embrfs ingest ./photos -o photos.engram\nembrfs extract photos.engram ./restored\nembrfs verify photos.engram'));

  program
    .command('ingest')
    .description('Create or update an engram from source trees (unchanged files cost nothing; removed files are removed).')
    .argument('<source...>', 'files or directories; a single directory becomes the engram root, several sources become entries of the root')
    .requiredOption('-o, --output <file>', 'the engram file to create or update')
    .addOption(new Option('--profile <profile>', 'codec profile for a new engram').choices(['positional', 'holographic']))
    .option('--chunk-size <bytes>', 'chunk size in bytes for a new engram', parseCount)
    .option('--compact', 'end with a compaction that keeps all history and frees unreferenced packs')
    .option('-j, --jobs <n>', 'worker threads encoding files (default 2; 1 = no workers)', parseCount)
    .option('-q, --quiet', 'no progress bar and no summary')
    .addHelpText('after', example('embrfs ingest ~/projects -o projects.engram\nembrfs ingest notes.txt photos -o mixed.engram --quiet'))
    .action(async (sources: string[], options: { output: string; profile?: ProfileName; chunkSize?: number; jobs?: number; quiet?: boolean; compact?: boolean }, command: Command) => {
      await run(options.output, async () => {
        const summary = await ingest({
          sources,
          engramFile: options.output,
          quiet: options.quiet === true,
          compact: options.compact === true,
          ...(options.profile === undefined ? {} : { profile: options.profile }),
          ...(options.chunkSize === undefined ? {} : { chunkBytes: options.chunkSize }),
          ...(options.jobs === undefined ? {} : { jobs: Math.max(1, options.jobs) }),
        });
        if (options.quiet !== true) {
          const seconds = summary.elapsedMs / 1000;
          process.stderr.write(
            `${command.name()}: ${summary.files} files, ${summary.directories} directories, ${summary.symlinks} symlinks; ` +
              `${summary.writtenFiles} written (${formatBytes(summary.writtenBytes)}), ${summary.unchangedFiles} unchanged, ${summary.removedEntries} removed; ` +
              `${summary.commits} commits${summary.compactedBytes > 0 ? `, ${formatBytes(summary.compactedBytes)} freed by compaction` : ''} in ${seconds.toFixed(1)} s\n`,
          );
        }
        return ExitCode.success;
      })();
    });

  program
    .command('extract')
    .description('Write the tree of an engram (or a snapshot, or a subtree) into a new or empty directory.')
    .argument('<engram>', 'the engram file')
    .argument('<out-dir>', 'a directory that does not exist yet or is empty')
    .option('--snapshot <name>', 'extract the named snapshot instead of the live tree')
    .option('--path <prefix>', 'extract only this path and what is below it')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', example('embrfs extract photos.engram ./restored\nembrfs extract photos.engram ./old --snapshot monday --path /2024'))
    .action(async (engramFile: string, outDir: string, options: { snapshot?: string; path?: string; quiet?: boolean }) => {
      await run(engramFile, async () => {
        const summary = await extract({
          engramFile,
          outDir,
          quiet: options.quiet === true,
          ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
          ...(options.path === undefined ? {} : { pathPrefix: options.path }),
        });
        for (const refused of summary.refusedEntries) process.stderr.write(`embrfs: refused unsafe entry ${refused} (${engramFile}): nothing was written for it\n`);
        if (options.quiet !== true) {
          process.stderr.write(
            `extract: ${summary.files} files (${formatBytes(summary.bytes)}), ${summary.directories} directories, ${summary.symlinks} symlinks, ${summary.hardLinks} hard links in ${(summary.elapsedMs / 1000).toFixed(1)} s\n`,
          );
        }
        return summary.refusedEntries.length > 0 ? ExitCode.failedCheck : ExitCode.success;
      })();
    });

  program
    .command('ls')
    .description('List a directory (or describe one entry) of an engram.')
    .argument('<engram>', 'the engram file')
    .argument('[path]', 'absolute path inside the engram', '/')
    .option('-l, --long', 'long listing: mode, links, owner, size, mtime (ns)')
    .option('--snapshot <name>', 'list the named snapshot')
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs ls photos.engram /2024 -l\nembrfs ls photos.engram --json'))
    .action(async (engramFile: string, path: string, options: { long?: boolean; snapshot?: string; json?: boolean }) => {
      await run(engramFile, () =>
        listCommand({ engramFile, path, long: options.long === true, json: options.json === true, ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }) }),
      )();
    });

  program
    .command('cat')
    .description('Stream a file of an engram to stdout.')
    .argument('<engram>', 'the engram file')
    .argument('<path>', 'absolute path inside the engram')
    .option('--snapshot <name>', 'read from the named snapshot')
    .addHelpText('after', example('embrfs cat notes.engram /todo.txt | less'))
    .action(async (engramFile: string, path: string, options: { snapshot?: string }) => {
      await run(engramFile, () => catCommand({ engramFile, path, ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }) }))();
    });

  program
    .command('put')
    .description('Store a local file (or - for stdin) at a path; prints the new version.')
    .argument('<engram>', 'the engram file')
    .argument('<local-file>', 'the file to store, or - for stdin')
    .argument('<path>', 'absolute path inside the engram')
    .option('--if-version <n>', 'write only if the current version is n (0: only if the path does not exist); exit 1 otherwise', parseCount)
    .addHelpText('after', example('embrfs put notes.engram todo.txt /todo.txt --if-version 12'))
    .action(async (engramFile: string, localFile: string, path: string, options: { ifVersion?: number }) => {
      await run(engramFile, () => putCommand({ engramFile, localFile, path, ...(options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion }) }))();
    });

  program
    .command('rm')
    .description('Remove files, symlinks or directories (one atomic commit).')
    .argument('<engram>', 'the engram file')
    .argument('<paths...>', 'absolute paths inside the engram')
    .option('-r, --recursive', 'remove directories and their contents')
    .option('-d, --dir', 'remove empty directories')
    .option('--if-version <n>', 'remove a file only if its current version is n; exit 1 otherwise', parseCount)
    .addHelpText('after', example('embrfs rm notes.engram /old.txt\nembrfs rm notes.engram /drafts -r'))
    .action(async (engramFile: string, paths: string[], options: { recursive?: boolean; dir?: boolean; ifVersion?: number }) => {
      await run(engramFile, () =>
        removeCommand({
          engramFile,
          paths,
          recursive: options.recursive === true,
          directories: options.dir === true,
          ...(options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion }),
        }),
      )();
    });

  program
    .command('mv')
    .description('Rename atomically (replacing an existing file unless --no-clobber).')
    .argument('<engram>', 'the engram file')
    .argument('<from>', 'existing path')
    .argument('<to>', 'new path')
    .option('-n, --no-clobber', 'fail (exit 1) if the target exists')
    .addHelpText('after', example('embrfs mv notes.engram /draft.txt /final.txt'))
    .action(async (engramFile: string, from: string, to: string, options: { clobber: boolean }) => {
      await run(engramFile, () => moveCommand({ engramFile, from, to, noReplace: !options.clobber }))();
    });

  program
    .command('mkdir')
    .description('Create directories.')
    .argument('<engram>', 'the engram file')
    .argument('<paths...>', 'absolute paths inside the engram')
    .option('-p, --parents', 'create missing parents; no error if the directory exists')
    .option('-m, --mode <octal>', 'permission bits such as 755', parseOctalMode)
    .addHelpText('after', example('embrfs mkdir notes.engram /2025/january -p'))
    .action(async (engramFile: string, paths: string[], options: { parents?: boolean; mode?: number }) => {
      await run(engramFile, () => mkdirCommand({ engramFile, paths, parents: options.parents === true, ...(options.mode === undefined ? {} : { mode: options.mode }) }))();
    });

  program
    .command('info')
    .description('Show what an engram holds and what it costs: files, bytes, stored ratio, dedup, corrections, snapshots.')
    .argument('<engram>', 'the engram file')
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs info photos.engram\nembrfs info photos.engram --json | jq .storedRatio'))
    .action(async (engramFile: string, options: { json?: boolean }) => {
      await run(engramFile, () => infoCommand({ engramFile, json: options.json === true }))();
    });

  program
    .command('verify')
    .description('Decode every chunk and check its SHA-256; exit 1 and name the damaged files on any failure.')
    .argument('<engram>', 'the engram file')
    .option('--json', 'one JSON document')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', example('embrfs verify photos.engram || echo damaged'))
    .action(async (engramFile: string, options: { json?: boolean; quiet?: boolean }) => {
      await run(engramFile, () => verifyCommand({ engramFile, json: options.json === true, quiet: options.quiet === true }))();
    });

  const snapshot = program
    .command('snapshot')
    .description('Create, list, restore or delete named snapshots.')
    .addHelpText('after', example('embrfs snapshot create photos.engram monday\nembrfs snapshot list photos.engram'));
  for (const action of ['create', 'restore', 'delete'] as const) {
    snapshot
      .command(action)
      .description(`${action === 'create' ? 'Create' : action === 'restore' ? 'Make the live tree equal to' : 'Delete'} a named snapshot.`)
      .argument('<engram>', 'the engram file')
      .argument('<name>', 'snapshot name')
      .option('--json', 'one JSON document')
      .addHelpText('after', example(`embrfs snapshot ${action} photos.engram monday`))
      .action(async (engramFile: string, name: string, options: { json?: boolean }) => {
        await run(engramFile, () => snapshotCommand({ engramFile, action, name, json: options.json === true }))();
      });
  }
  snapshot
    .command('list')
    .description('List snapshots.')
    .argument('<engram>', 'the engram file')
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs snapshot list photos.engram --json'))
    .action(async (engramFile: string, options: { json?: boolean }) => {
      await run(engramFile, () => snapshotCommand({ engramFile, action: 'list', json: options.json === true }))();
    });

  program
    .command('log')
    .description('Show the history of a path (or the newest changes across the live tree), newest first.')
    .argument('<engram>', 'the engram file')
    .argument('[path]', 'absolute path inside the engram')
    .option('-n, --max-count <n>', 'show at most n entries', parseCount, 50)
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs log notes.engram /todo.txt\nembrfs log notes.engram -n 10 --json'))
    .action(async (engramFile: string, path: string | undefined, options: { maxCount: number; json?: boolean }) => {
      await run(engramFile, () => logCommand({ engramFile, json: options.json === true, limit: options.maxCount, ...(path === undefined ? {} : { path }) }))();
    });

  program
    .command('compact')
    .description('Free chunks and old versions that no live file or snapshot reaches.')
    .argument('<engram>', 'the engram file')
    .option('--retain-commits <n>', 'keep file history newer than n commits back', parseCount)
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs compact photos.engram'))
    .action(async (engramFile: string, options: { retainCommits?: number; json?: boolean }) => {
      await run(engramFile, () =>
        compactCommand({ engramFile, json: options.json === true, ...(options.retainCommits === undefined ? {} : { retainCommits: options.retainCommits }) }),
      )();
    });

  program
    .command('query')
    .description('Find the files and byte regions that look like a local file or a text (similarity search; also when shifted or edited). Prints score, offset, length and path, best first, and the root score.')
    .argument('<engram>', 'the engram file')
    .option('--file <local-file>', 'query with the content of this local file')
    .option('--text <text>', 'query with this text (UTF-8)')
    .option('-k, --k <k>', 'number of files to return', parseCount, 10)
    .option('--path <prefix>', 'only files at or under this path of the engram')
    .option('--json', 'one JSON document')
    .addHelpText(
      'after',
      example("embrfs query docs.engram --text 'error: disk quota exceeded' -k 5\nembrfs query src.engram --file excerpt.c --path /lib --json") +
        `\nScores are in [0, 1]: the weighted share of the query's features found in the region; below 0.25 is marked (weak).\nSearch covers the live tree (not snapshots).\n`,
    )
    .action(async (engramFile: string, options: { file?: string; text?: string; k: number; path?: string; json?: boolean }) => {
      await run(engramFile, () =>
        queryCommand({
          engramFile,
          k: options.k,
          json: options.json === true,
          ...(options.file === undefined ? {} : { file: options.file }),
          ...(options.text === undefined ? {} : { text: options.text }),
          ...(options.path === undefined ? {} : { path: options.path }),
        }),
      )();
    });

  program
    .command('similar')
    .description('List the files most similar to a file of the engram, near-duplicates first (the file itself left out).')
    .argument('<engram>', 'the engram file')
    .argument('<path>', 'absolute path of a file inside the engram')
    .option('-k, --k <k>', 'number of files to return', parseCount, 10)
    .option('--json', 'one JSON document')
    .addHelpText('after', example('embrfs similar docs.engram /reports/2025-q1.txt -k 5'))
    .action(async (engramFile: string, path: string, options: { k: number; json?: boolean }) => {
      await run(engramFile, () => similarCommand({ engramFile, path, k: options.k, json: options.json === true }))();
    });

  program
    .command('mount')
    .description('Serve an engram through FUSE, in the foreground, until unmounted or interrupted.')
    .argument('<engram>', 'the engram file')
    .argument('<mountpoint>', 'an existing empty directory')
    .option('--read-only', 'refuse every write')
    .option('--snapshot <name>', 'serve the named snapshot (read-only)')
    .option('-q, --quiet', 'no start-up message')
    .option('--durability <mode>', "'normal' (default: fsync, fdatasync and closing a written file sync; everything else within 1 s) or 'full' (every commit synced before it answers)")
    .addHelpText('after', example('embrfs mount photos.engram /mnt/photos &\nls /mnt/photos\nembrfs umount /mnt/photos'))
    .action(async (engramFile: string, mountpoint: string, options: { readOnly?: boolean; snapshot?: string; quiet?: boolean; durability?: string }) => {
      await run(engramFile, () =>
        mountCommand({
          engramFile,
          mountpoint,
          readOnly: options.readOnly === true,
          quiet: options.quiet === true,
          ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
          ...(options.durability === undefined ? {} : { durability: options.durability as 'full' | 'normal' }),
        }),
      )();
    });

  program
    .command('umount')
    .description('Unmount an embrfs mount point (fusermount -u, then -uz if busy).')
    .argument('<mountpoint>', 'the mount point')
    .addHelpText('after', example('embrfs umount /mnt/photos'))
    .action(async (mountpoint: string) => {
      await run(undefined, () => umountCommand({ mountpoint }))();
    });

  return program;
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and returns the exit code.
 *
 * @example
 * ```ts
 * const exitCode = await main(['info', 'photos.engram', '--json']);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  const state: RunState = { exitCode: ExitCode.success, engramFile: undefined };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version were printed on request: success. Everything else is bad usage.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.success;
      if (error.code === 'commander.help' && error.exitCode === 0) return ExitCode.success;
      return ExitCode.badInput;
    }
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return ExitCode.success;
    const { exitCode, line } = describeFailure(error, state.engramFile);
    process.stderr.write(`embrfs: ${line}\n`);
    // EMBRFS_DEBUG=1 adds the stack (and its causes) for bug reports; the one line stays first.
    if (process.env.EMBRFS_DEBUG === '1' && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n${error.cause instanceof Error ? (error.cause.stack ?? '') : ''}\n`);
    return exitCode;
  }
}

