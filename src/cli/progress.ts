/**
 * A progress bar for long commands (ingest, extract, verify). Drawn on stderr, and only when
 * both stdout and stderr are terminals and `--quiet` was not given, so scripts and pipes never
 * see it.
 */
import cliProgress from 'cli-progress';

/** Receives progress; the no-op version is used when no bar is drawn. */
export interface Progress {
  /** Raises the known totals (ingest discovers work while it runs). */
  addTotal(files: number, bytes: number): void;
  /** Counts finished work. */
  advance(files: number, bytes: number): void;
  stop(): void;
}

const silent: Progress = {
  addTotal() {},
  advance() {},
  stop() {},
};

function formatMegabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/**
 * Creates a bar showing files, bytes, MB/s and ETA, or a silent sink when the bar must not
 * be drawn.
 *
 * @example
 * ```ts
 * const progress = createProgress({ label: 'ingest', quiet: false });
 * progress.addTotal(10, 4096);
 * progress.advance(1, 512);
 * progress.stop();
 * ```
 */
export function createProgress(options: { label: string; quiet: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  // A bar only for a person at a terminal: when either stream is redirected, a script is listening.
  if (options.quiet || stream.isTTY !== true || process.stdout.isTTY !== true) return silent;
  const startMs = Date.now();
  let totalFiles = 0;
  let totalBytes = 0;
  let doneFiles = 0;
  let doneBytes = 0;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${options.label} [{bar}] {percentage}% | {files} files | {megabytes} MB | {speed} MB/s | ETA {eta_formatted}`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = () => {
    const elapsedSeconds = Math.max((Date.now() - startMs) / 1000, 0.001);
    return {
      files: `${doneFiles}/${totalFiles}`,
      megabytes: `${formatMegabytes(doneBytes)}/${formatMegabytes(totalBytes)}`,
      speed: (doneBytes / 1e6 / elapsedSeconds).toFixed(1),
    };
  };
  // The bar counts bytes plus a small weight per file, so a tree of empty files still moves.
  const perFileWeight = 4096;
  bar.start(1, 0, payload());
  return {
    addTotal(files, bytes) {
      totalFiles += files;
      totalBytes += bytes;
      bar.setTotal(Math.max(1, totalBytes + totalFiles * perFileWeight));
      bar.update(doneBytes + doneFiles * perFileWeight, payload());
    },
    advance(files, bytes) {
      doneFiles += files;
      doneBytes += bytes;
      bar.update(doneBytes + doneFiles * perFileWeight, payload());
    },
    stop() {
      bar.update(doneBytes + doneFiles * perFileWeight, payload());
      bar.stop();
    },
  };
}
