/*
 * EmbrFS's SQLite VFS shim "embrfs-batch": the default VFS ("unix") with the writes of a WAL file
 * gathered into one write per transaction (up to BATCH_BYTES at a time).
 *
 * Why: SQLite writes a WAL frame as two writes (its 24-byte header, then the page), each a
 * pwrite system call, and on the VMs EmbrFS runs on a 4 KiB pwrite costs ~3.3 us where one
 * 64 KiB pwrite costs ~1.2 us per 4 KiB. A 10 MB write is ~2,700 frames.
 *
 * What is buffered, and why that is safe:
 * - Only sequential writes to a WAL file (each starting where the previous write to that file
 *   ended) are gathered. Anything else (a rewrite of an earlier frame or header, the WAL header
 *   at offset 0) first writes out what is gathered, then goes straight to the file.
 * - A commit frame is written out as soon as its page is complete, whichever way its header was
 *   written: SQLite publishes a commit in the shared WAL index only after walFrames() has written
 *   every frame of it, so when another connection (or process) can see the commit, its frames are
 *   in the file. The commit frame is the frame header whose "database size after commit" field
 *   (bytes 4-7) is not zero.
 * - Frames still gathered when the connection gives up the WAL write lock (an unlock of
 *   WAL_WRITE_LOCK on the database file's shared memory) belong to no commit: a transaction that
 *   spilled pages into the WAL and then rolled back. They are dropped there, before the lock is
 *   released; written later, they would land on frames another connection committed meanwhile.
 * - Every other method of the WAL file (read, sync, truncate, size, file control, close) writes
 *   out what is gathered first, so this connection's own reads and syncs see everything.
 * - What can be lost in a crash is only what SQLite itself has not committed: frames of an
 *   unfinished transaction (which recovery ignores without their commit frame).
 * - A failed write-out drops the gathered bytes and returns the error to the write or method
 *   that triggered it (SQLITE_FULL for a full disk, like the unix VFS); SQLite then rolls the
 *   transaction back, and its frames were never published.
 * - A WAL file whose device does not promise power-safe overwrites is not gathered (SQLite then
 *   pads commits to a sector boundary, splitting the last frame around a sync).
 * The database file itself is passed through untouched (a checkpoint's writes were gathered in
 * a first version, but SQLite does not check the result of the last call of a checkpoint that
 * would have written them out).
 *
 * Loaded with sqlite3_load_extension() (better-sqlite3's Database#loadExtension, which opens
 * every database with the default VFS) into a helper connection per thread. It registers the VFS
 * (not as the default) and, on that connection, the SQL function embrfs_batch_vfs(on): 1 makes
 * the VFS the process's default, 0 gives the default back to the unix VFS. The calls are counted
 * (a mutex), so engram opens in several threads at once all get the VFS, and databases other
 * code in the process opens at other times do not.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_VFS_NAME "embrfs-batch"
#define BATCH_BYTES (1 << 20)
#define WRITE_PIECE_BYTES (1 << 16)
#define WAL_WRITE_LOCK_SLOT 0
#define WAL_HEADER_BYTES 32
#define FRAME_HEADER_BYTES 24

typedef struct BatchFile BatchFile;
struct BatchFile {
  sqlite3_file base;
  sqlite3_file *real; /* the underlying file, allocated right after this struct */
  int wal;            /* 1: a WAL file, whose sequential writes are gathered */
  BatchFile *walFile; /* for a main database file: its open WAL file, if that is ours */
  BatchFile *dbFile;  /* for a WAL file: its main database file, if that is ours */
  unsigned char *buffer;
  sqlite3_int64 bufferOffset;
  int bufferBytes;
  sqlite3_int64 nextOffset;   /* end of the last write (buffered or not); -1: unknown */
  sqlite3_int64 flushAt;      /* write out once the file is written up to here; -1: none */
  int pageSize;               /* from the WAL header; 0: not known yet */
};

static sqlite3_vfs batchVfs;
/* Writes gathered into a buffer, process-wide (embrfs_batch_vfs_writes(): tests, benches). */
static sqlite3_int64 gatheredWrites = 0;
static sqlite3_vfs *realVfs;
static sqlite3_io_methods batchMethods[3];

static unsigned int get4(const unsigned char *p) {
  return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) | (unsigned int)p[3];
}

/*
 * Writes out what is gathered, in pieces the unix VFS accepts. On failure the gathered bytes are
 * dropped: they are frames of a transaction that then rolls back (they were never published).
 */
static int flushBuffer(BatchFile *p) {
  int bytes = p->bufferBytes;
  p->bufferBytes = 0;
  for (int done = 0; done < bytes; done += WRITE_PIECE_BYTES) {
    int piece = bytes - done < WRITE_PIECE_BYTES ? bytes - done : WRITE_PIECE_BYTES;
    int rc = p->real->pMethods->xWrite(p->real, p->buffer + done, piece, p->bufferOffset + done);
    if (rc != SQLITE_OK) {
      p->flushAt = -1;
      return rc;
    }
  }
  return SQLITE_OK;
}

/* Drops what is gathered (frames of no commit) and forgets where the last write ended. */
static void dropBuffer(BatchFile *p) {
  p->bufferBytes = 0;
  p->flushAt = -1;
  p->nextOffset = -1;
}

/* The WAL's page size, from its header (written by this handle, or read from the file). */
static int walPageSize(BatchFile *p) {
  if (p->pageSize == 0) {
    unsigned char header[WAL_HEADER_BYTES];
    if (p->real->pMethods->xRead(p->real, header, WAL_HEADER_BYTES, 0) == SQLITE_OK) {
      unsigned int size = get4(header + 8);
      if (size >= 512 && size <= 65536 && (size & (size - 1)) == 0) p->pageSize = (int)size;
    }
  }
  return p->pageSize;
}

/*
 * Appends a write that continues the previous one to the buffer (writing the buffer out first
 * when it is full); any other write goes to the file after the buffer is written out.
 */
static int gatherOrWrite(BatchFile *p, const void *data, int amount, sqlite3_int64 offset) {
  int sequential = offset >= WAL_HEADER_BYTES && p->nextOffset >= 0 && offset == p->nextOffset;
  if (!sequential || p->bufferBytes + amount > BATCH_BYTES) {
    int rc = flushBuffer(p);
    if (rc != SQLITE_OK) return rc;
  }
  p->nextOffset = offset + amount;
  if (sequential && p->buffer == NULL && amount <= BATCH_BYTES) p->buffer = sqlite3_malloc(BATCH_BYTES);
  if (!sequential || p->buffer == NULL || amount > BATCH_BYTES) return p->real->pMethods->xWrite(p->real, data, amount, offset);
  if (p->bufferBytes == 0) p->bufferOffset = offset;
  memcpy(p->buffer + p->bufferBytes, data, (size_t)amount);
  p->bufferBytes += amount;
  __atomic_add_fetch(&gatheredWrites, 1, __ATOMIC_RELAXED);
  return SQLITE_OK;
}

static int batchWrite(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset) {
  BatchFile *p = (BatchFile *)file;
  if (!p->wal) return p->real->pMethods->xWrite(p->real, data, amount, offset);
  if (offset == 0 && amount >= WAL_HEADER_BYTES) {
    unsigned int size = get4((const unsigned char *)data + 8);
    if (size >= 512 && size <= 65536 && (size & (size - 1)) == 0) p->pageSize = (int)size;
  }
  int rc = gatherOrWrite(p, data, amount, offset);
  if (rc != SQLITE_OK) return rc;
  if (amount == FRAME_HEADER_BYTES && get4((const unsigned char *)data + 4) != 0) {
    /* A commit frame's header, gathered or not: write out once its page is complete (without a
       known page size, at the next write, the page, at the latest). */
    int pageSize = walPageSize(p);
    sqlite3_int64 pageEnd = offset + FRAME_HEADER_BYTES + (pageSize > 0 ? pageSize : 1);
    if (p->flushAt < pageEnd) p->flushAt = pageEnd;
  }
  if (p->flushAt >= 0 && offset + amount >= p->flushAt) {
    p->flushAt = -1;
    return flushBuffer(p);
  }
  return SQLITE_OK;
}

static int batchClose(sqlite3_file *file) {
  BatchFile *p = (BatchFile *)file;
  if (p->dbFile != NULL && p->dbFile->walFile == p) p->dbFile->walFile = NULL;
  if (p->walFile != NULL && p->walFile->dbFile == p) p->walFile->dbFile = NULL;
  int rc = flushBuffer(p);
  int closeRc = p->real->pMethods->xClose(p->real);
  sqlite3_free(p->buffer);
  p->buffer = NULL;
  return rc != SQLITE_OK ? rc : closeRc;
}

/* Every method of a WAL file but write writes out what is gathered first. */
#define FLUSH_OR_RETURN(p)                    \
  do {                                        \
    int flushRc = flushBuffer(p);             \
    if (flushRc != SQLITE_OK) return flushRc; \
  } while (0)

static int batchRead(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xRead(p->real, data, amount, offset);
}

static int batchTruncate(sqlite3_file *file, sqlite3_int64 size) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  p->nextOffset = -1;
  return p->real->pMethods->xTruncate(p->real, size);
}

static int batchSync(sqlite3_file *file, int flags) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xSync(p->real, flags);
}

static int batchFileSize(sqlite3_file *file, sqlite3_int64 *size) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xFileSize(p->real, size);
}

static int batchLock(sqlite3_file *file, int level) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xLock(p->real, level);
}

static int batchUnlock(sqlite3_file *file, int level) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xUnlock(p->real, level);
}

static int batchCheckReservedLock(sqlite3_file *file, int *out) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int batchFileControl(sqlite3_file *file, int op, void *arg) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  int rc = p->real->pMethods->xFileControl(p->real, op, arg);
  if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK && arg != NULL) {
    char **name = (char **)arg;
    char *combined = sqlite3_mprintf("%s/%s", BATCH_VFS_NAME, *name != NULL ? *name : "");
    sqlite3_free(*name);
    *name = combined;
  }
  return rc;
}

static int batchSectorSize(sqlite3_file *file) {
  BatchFile *p = (BatchFile *)file;
  return p->real->pMethods->xSectorSize(p->real);
}

static int batchDeviceCharacteristics(sqlite3_file *file) {
  BatchFile *p = (BatchFile *)file;
  return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int batchShmMap(sqlite3_file *file, int page, int pageBytes, int extend, void volatile **out) {
  BatchFile *p = (BatchFile *)file;
  return p->real->pMethods->xShmMap(p->real, page, pageBytes, extend, out);
}

static int batchShmLock(sqlite3_file *file, int offset, int n, int flags) {
  BatchFile *p = (BatchFile *)file;
  /* The connection gives up the WAL write lock: what its WAL file still holds belongs to no
     commit (every commit was written out at its commit frame). Dropped before another writer
     can take the lock and write frames where these would go. */
  if (p->walFile != NULL && (flags & SQLITE_SHM_UNLOCK) && (flags & SQLITE_SHM_EXCLUSIVE) && offset <= WAL_WRITE_LOCK_SLOT && offset + n > WAL_WRITE_LOCK_SLOT) {
    dropBuffer(p->walFile);
  }
  return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void batchShmBarrier(sqlite3_file *file) {
  BatchFile *p = (BatchFile *)file;
  p->real->pMethods->xShmBarrier(p->real);
}

static int batchShmUnmap(sqlite3_file *file, int deleteFlag) {
  BatchFile *p = (BatchFile *)file;
  return p->real->pMethods->xShmUnmap(p->real, deleteFlag);
}

static int batchFetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out) {
  BatchFile *p = (BatchFile *)file;
  FLUSH_OR_RETURN(p);
  return p->real->pMethods->xFetch(p->real, offset, amount, out);
}

static int batchUnfetch(sqlite3_file *file, sqlite3_int64 offset, void *page) {
  BatchFile *p = (BatchFile *)file;
  return p->real->pMethods->xUnfetch(p->real, offset, page);
}

static int batchOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *outFlags) {
  (void)vfs;
  BatchFile *p = (BatchFile *)file;
  memset(p, 0, sizeof(BatchFile));
  p->real = (sqlite3_file *)&p[1];
  p->nextOffset = -1;
  p->flushAt = -1;
  p->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = realVfs->xOpen(realVfs, name, p->real, flags, outFlags);
  if (rc == SQLITE_OK && p->real->pMethods != NULL && p->wal) {
    /* Without power-safe overwrites SQLite pads commits and syncs inside their last frame. */
    if ((p->real->pMethods->xDeviceCharacteristics(p->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) == 0) p->wal = 0;
    sqlite3_file *db = name != NULL ? sqlite3_database_file_object(name) : NULL;
    if (p->wal && db != NULL && db->pMethods != NULL && db->pMethods->xShmLock == batchShmLock) {
      p->dbFile = (BatchFile *)db;
      p->dbFile->walFile = p;
    } else {
      /* Its write-lock release could not be watched: gather nothing. */
      p->wal = 0;
    }
  }
  if (p->real->pMethods != NULL) {
    int version = p->real->pMethods->iVersion;
    if (version < 1) version = 1;
    if (version > 3) version = 3;
    p->base.pMethods = &batchMethods[version - 1];
  }
  return rc;
}

static int batchDelete(sqlite3_vfs *vfs, const char *name, int syncDir) {
  (void)vfs;
  return realVfs->xDelete(realVfs, name, syncDir);
}

static int batchAccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return realVfs->xAccess(realVfs, name, flags, out);
}

static int batchFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
  (void)vfs;
  return realVfs->xFullPathname(realVfs, name, size, out);
}

static void *batchDlOpen(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return realVfs->xDlOpen(realVfs, name);
}

static void batchDlError(sqlite3_vfs *vfs, int size, char *out) {
  (void)vfs;
  realVfs->xDlError(realVfs, size, out);
}

static void (*batchDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
  (void)vfs;
  return realVfs->xDlSym(realVfs, handle, symbol);
}

static void batchDlClose(sqlite3_vfs *vfs, void *handle) {
  (void)vfs;
  realVfs->xDlClose(realVfs, handle);
}

static int batchRandomness(sqlite3_vfs *vfs, int size, char *out) {
  (void)vfs;
  return realVfs->xRandomness(realVfs, size, out);
}

static int batchSleep(sqlite3_vfs *vfs, int microseconds) {
  (void)vfs;
  return realVfs->xSleep(realVfs, microseconds);
}

static int batchCurrentTime(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return realVfs->xCurrentTime(realVfs, out);
}

static int batchGetLastError(sqlite3_vfs *vfs, int size, char *out) {
  (void)vfs;
  return realVfs->xGetLastError != NULL ? realVfs->xGetLastError(realVfs, size, out) : 0;
}

static int batchCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  return realVfs->xCurrentTimeInt64(realVfs, out);
}

static void fillMethods(void) {
  for (int index = 0; index < 3; index += 1) {
    sqlite3_io_methods *m = &batchMethods[index];
    m->iVersion = index + 1;
    m->xClose = batchClose;
    m->xRead = batchRead;
    m->xWrite = batchWrite;
    m->xTruncate = batchTruncate;
    m->xSync = batchSync;
    m->xFileSize = batchFileSize;
    m->xLock = batchLock;
    m->xUnlock = batchUnlock;
    m->xCheckReservedLock = batchCheckReservedLock;
    m->xFileControl = batchFileControl;
    m->xSectorSize = batchSectorSize;
    m->xDeviceCharacteristics = batchDeviceCharacteristics;
    if (index >= 1) {
      m->xShmMap = batchShmMap;
      m->xShmLock = batchShmLock;
      m->xShmBarrier = batchShmBarrier;
      m->xShmUnmap = batchShmUnmap;
    }
    if (index >= 2) {
      m->xFetch = batchFetch;
      m->xUnfetch = batchUnfetch;
    }
  }
}

static pthread_mutex_t defaultLock = PTHREAD_MUTEX_INITIALIZER;
static int defaultHolders = 0;

/* embrfs_batch_vfs(on): see the top of this file. Returns the number of holders after the call. */
static void batchVfsFunction(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  int on = sqlite3_value_int(argv[0]);
  int rc = SQLITE_OK;
  pthread_mutex_lock(&defaultLock);
  if (on) {
    if (defaultHolders == 0) rc = sqlite3_vfs_register(&batchVfs, 1);
    if (rc == SQLITE_OK) defaultHolders += 1;
  } else if (defaultHolders > 0) {
    defaultHolders -= 1;
    if (defaultHolders == 0) rc = sqlite3_vfs_register(realVfs, 1);
  }
  int holders = defaultHolders;
  pthread_mutex_unlock(&defaultLock);
  if (rc != SQLITE_OK) {
    sqlite3_result_error_code(context, rc);
    return;
  }
  sqlite3_result_int(context, holders);
}

static void batchWritesFunction(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(context, __atomic_load_n(&gatheredWrites, __ATOMIC_RELAXED));
}

int sqlite3_embrfswalbatch_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  (void)error;
  SQLITE_EXTENSION_INIT2(api);
  pthread_mutex_lock(&defaultLock);
  int rc = SQLITE_OK;
  if (realVfs == NULL) {
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    /* The shim wraps the unix VFS's file objects; it needs version 2 of the VFS at least. */
    if (base == NULL || base->iVersion < 2 || strcmp(base->zName, BATCH_VFS_NAME) == 0) {
      rc = SQLITE_ERROR;
    } else {
      realVfs = base;
      fillMethods();
      batchVfs.iVersion = 2;
      batchVfs.szOsFile = (int)sizeof(BatchFile) + base->szOsFile;
      batchVfs.mxPathname = base->mxPathname;
      batchVfs.zName = BATCH_VFS_NAME;
      batchVfs.xOpen = batchOpen;
      batchVfs.xDelete = batchDelete;
      batchVfs.xAccess = batchAccess;
      batchVfs.xFullPathname = batchFullPathname;
      batchVfs.xDlOpen = batchDlOpen;
      batchVfs.xDlError = batchDlError;
      batchVfs.xDlSym = batchDlSym;
      batchVfs.xDlClose = batchDlClose;
      batchVfs.xRandomness = batchRandomness;
      batchVfs.xSleep = batchSleep;
      batchVfs.xCurrentTime = batchCurrentTime;
      batchVfs.xGetLastError = batchGetLastError;
      batchVfs.xCurrentTimeInt64 = batchCurrentTimeInt64;
      rc = sqlite3_vfs_register(&batchVfs, 0);
      if (rc != SQLITE_OK) realVfs = NULL;
    }
  }
  pthread_mutex_unlock(&defaultLock);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_create_function(db, "embrfs_batch_vfs", 1, SQLITE_UTF8, NULL, batchVfsFunction, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "embrfs_batch_vfs_writes", 0, SQLITE_UTF8, NULL, batchWritesFunction, NULL, NULL);
  return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
