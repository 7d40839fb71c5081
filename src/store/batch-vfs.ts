/**
 * Loader of EmbrFS's SQLite VFS shim `embrfs-batch` (native/walbatch/walbatch.c, an SQLite
 * extension built by node-gyp at `npm ci` through native/build.mjs): SQLite's unix VFS with the
 * sequential writes of a WAL file gathered into one write per commit (the file's comment says
 * why that is safe; the database file is passed through). Without it, engrams open with the unix VFS: the same files, byte for byte, with about
 * two `pwrite` calls per 4 KiB page.
 *
 * better-sqlite3 opens every database with SQLite's default VFS, so an engram opens inside
 * {@link withBatchVfs}, which makes the shim the default for the duration of the open (counted
 * across threads in C; other databases the process opens meanwhile get the shim too, which
 * changes no file's contents). Each thread loads the extension once into a helper connection of
 * its own (the switch is an SQL function on that connection).
 *
 * - `EMBRFS_WAL_BATCH=0` never loads it (A/B measurements; the unix VFS is used).
 * - `EMBRFS_EXPECT_NATIVE=1` (CI) makes the tests fail when it is not loaded.
 *
 * @example
 * ```ts
 * const db = withBatchVfs(() => new Database(file));
 * batchVfsStatus().reason; // 'loaded'
 * ```
 */
import Database from 'better-sqlite3';
import { fileURLToPath } from 'node:url';

/** Where node-gyp puts the extension, relative to this module once compiled (dist/src/store/batch-vfs.js). */
const EXTENSION_URL = new URL('../../../native/walbatch/build/Release/embrfs_walbatch.node', import.meta.url);

interface Helper {
  acquire: Database.Statement;
  release: Database.Statement;
  writes: Database.Statement;
}

let helper: Helper | undefined;
let reason: string | undefined;

function loadedHelper(): Helper | undefined {
  if (reason !== undefined) return helper;
  if (process.env.EMBRFS_WAL_BATCH === '0') {
    reason = 'disabled by EMBRFS_WAL_BATCH=0';
    return undefined;
  }
  try {
    const db = new Database(':memory:');
    // SQLite finds the entry point sqlite3_embrfswalbatch_init from the file name.
    db.loadExtension(fileURLToPath(EXTENSION_URL));
    helper = {
      acquire: db.prepare('SELECT embrfs_batch_vfs(1)').pluck(),
      release: db.prepare('SELECT embrfs_batch_vfs(0)').pluck(),
      writes: db.prepare('SELECT embrfs_batch_vfs_writes()').pluck(),
    };
    reason = 'loaded';
  } catch (error) {
    reason = `not loaded: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
  return helper;
}

/** Runs `open` (which opens a better-sqlite3 database) with the shim as SQLite's default VFS, when it is loaded. */
export function withBatchVfs<T>(open: () => T): T {
  const loaded = loadedHelper();
  if (loaded === undefined) return open();
  loaded.acquire.get();
  try {
    return open();
  } finally {
    loaded.release.get();
  }
}

/** Whether the shim is loaded in this thread (and if not, why), and the writes it has gathered in this process. */
export function batchVfsStatus(): { loaded: boolean; reason: string; gatheredWrites: number } {
  const loaded = loadedHelper();
  return { loaded: loaded !== undefined, reason: reason ?? 'not loaded', gatheredWrites: loaded === undefined ? 0 : Number(loaded.writes.get()) };
}
