/**
 * Commands that check or maintain a whole engram: `verify`, `snapshot ...`, `compact`.
 */
import { ExitCode, type ExitCodeValue } from './failure.js';
import { formatBytes, formatTimeNs, toJson, writeOut } from './output.js';
import { createProgress } from './progress.js';
import { withEngram } from './session.js';

/**
 * `embrfs verify`: decodes every chunk and checks its SHA-256. Exit 1 and the damaged paths
 * when anything fails.
 *
 * @example
 * ```ts
 * const exitCode = await verifyCommand({ engramFile: 'data.engram', json: false, quiet: true });
 * ```
 */
export async function verifyCommand(options: { engramFile: string; json: boolean; quiet: boolean }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const progress = createProgress({ label: 'verify', quiet: options.quiet || options.json });
    let reportedBytes = 0;
    let report;
    try {
      const stats = await engram.stats();
      progress.addTotal(0, stats.uniqueChunkBytes);
      report = await engram.verify({
        onProgress: (checkedBytes) => {
          progress.advance(0, checkedBytes - reportedBytes);
          reportedBytes = checkedBytes;
        },
      });
    } finally {
      progress.stop();
    }
    if (options.json) {
      await writeOut(`${toJson({ file: options.engramFile, ...report })}\n`);
    } else {
      for (const path of report.damagedPaths) await writeOut(`damaged ${path}\n`);
      for (const problem of report.problems) await writeOut(`problem ${problem}\n`);
      await writeOut(`${report.ok ? 'ok' : 'FAILED'}: ${report.checkedFiles} files, ${report.checkedChunks} chunks, ${formatBytes(report.checkedBytes)} checked\n`);
    }
    if (report.ok) return ExitCode.success;
    const named = report.damagedPaths.slice(0, 3).join(', ') + (report.damagedPaths.length > 3 ? ', ...' : '');
    process.stderr.write(
      `embrfs: verify found ${report.damagedPaths.length} damaged file(s)${named ? `: ${named}` : ''} (${options.engramFile}): restore them from a snapshot or re-ingest the source\n`,
    );
    return ExitCode.failedCheck;
  });
}

/**
 * `embrfs snapshot create|list|restore|delete`.
 *
 * @example
 * ```ts
 * await snapshotCommand({ engramFile: 'data.engram', action: 'create', name: 'before-upgrade', json: false });
 * ```
 */
export async function snapshotCommand(options: { engramFile: string; action: 'create' | 'list' | 'restore' | 'delete'; name?: string; json: boolean }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, { readOnly: options.action === 'list' }, async (engram) => {
    const name = options.name ?? '';
    switch (options.action) {
      case 'create': {
        const info = await engram.createSnapshot(name);
        await writeOut(options.json ? `${toJson(info)}\n` : `snapshot ${info.name} at commit ${info.commit}\n`);
        return ExitCode.success;
      }
      case 'list': {
        const snapshots = await engram.listSnapshots();
        if (options.json) {
          await writeOut(`${toJson({ snapshots })}\n`);
        } else {
          for (const snapshot of snapshots) await writeOut(`${snapshot.name}\tcommit ${snapshot.commit}\t${formatTimeNs(snapshot.createdNs)}\n`);
        }
        return ExitCode.success;
      }
      case 'restore': {
        const commit = await engram.restoreSnapshot(name);
        await writeOut(options.json ? `${toJson({ name, commit })}\n` : `restored ${name} as commit ${commit}\n`);
        return ExitCode.success;
      }
      case 'delete': {
        await engram.deleteSnapshot(name);
        if (options.json) await writeOut(`${toJson({ name, deleted: true })}\n`);
        return ExitCode.success;
      }
    }
  });
}

/**
 * `embrfs compact`: frees chunks and old versions that no live file or snapshot reaches.
 *
 * @example
 * ```ts
 * await compactCommand({ engramFile: 'data.engram', json: false });
 * ```
 */
export async function compactCommand(options: { engramFile: string; retainCommits?: number; json: boolean }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, {}, async (engram) => {
    const report = await engram.compact(options.retainCommits === undefined ? {} : { retainCommits: options.retainCommits });
    if (options.json) {
      await writeOut(`${toJson(report)}\n`);
    } else {
      await writeOut(
        `freed ${report.freedChunks} chunks and ${report.freedVersions} versions; ${formatBytes(report.bytesBefore)} -> ${formatBytes(report.bytesAfter)}\n`,
      );
    }
    return ExitCode.success;
  });
}
