// Our changes to fuse-native 2.2.6's C side (node_modules/fuse-native/fuse-native.c, MIT), applied
// to a copy at `npm ci` and built as native/fuse/build/Release/embrfs_fuse.node. src/fuse/binding.ts
// puts its functions in place of the stock prebuild's when it loads and reports patch level 1.
// Each change names an exact anchor of the pinned source; a missing anchor throws, so a moved
// upstream file fails the build instead of building something half patched.
//
// 1. Times travel as (seconds, nanoseconds) instead of milliseconds, both ways: stat replies
//    (`populate_stat`) and utimens arguments. UTIME_NOW and UTIME_OMIT reach JS as they are
//    (their tv_nsec), instead of both becoming 1073 ms.
// 2. utimens passes mtime (stock passes atime twice).
// 3. `flag_utime_omit_ok`: libfuse 2.9 then calls utimens when the kernel sets only one of the two
//    times (touch -m, touch -a, futimens with one UTIME_OMIT, as tar -x does), with UTIME_OMIT for
//    the other; stock libfuse drops such a request.
// 4. create, mknod, mkdir and symlink pass the caller's uid and gid (fuse_get_context()), so what a
//    non-root user creates is owned by that user.
// 5. `embrfs_patch_level` (1) is exported, so JS can tell this build from the stock one.

/** The patch level the TypeScript side expects. */
export const PATCH_LEVEL = 1;

function replaceOnce(source, anchor, replacement, what) {
  const at = source.indexOf(anchor);
  if (at === -1 || source.indexOf(anchor, at + 1) !== -1) throw new Error(`fuse-native.c: anchor for ${what} not found exactly once`);
  return source.slice(0, at) + replacement + source.slice(at + anchor.length);
}

/** fuse-native.c with our changes, or an Error thrown when the source is not the one we patch. */
export function patchFuseNative(source) {
  let out = source;
  out = replaceOnce(
    out,
    `static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  uint64_t ms = uint32s_to_uint64(ints);
  ts->tv_sec = ms / 1000;
  ts->tv_nsec = (ms % 1000) * 1000000;
}`,
    `// embrfs: a time is two words, seconds then nanoseconds.
static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  ts->tv_sec = *((*ints)++);
  ts->tv_nsec = *((*ints)++);
}`,
    'stat times',
  );
  out = replaceOnce(
    out,
    `  size_t atime;
  size_t mtime;
  int32_t res;`,
    `  size_t atime;
  size_t mtime;
  uint32_t atime_nsec;
  uint32_t mtime_nsec;
  int32_t res;`,
    'request record times',
  );
  out = replaceOnce(
    out,
    `FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)
})`,
    `FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = tv[0].tv_sec;
  l->atime_nsec = tv[0].tv_nsec;
  l->mtime = tv[1].tv_sec;
  l->mtime_nsec = tv[1].tv_nsec;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_double(env, (double) (int64_t) l->atime, &(argv[3]));
  napi_create_uint32(env, l->atime_nsec, &(argv[4]));
  napi_create_double(env, (double) (int64_t) l->mtime, &(argv[5]));
  napi_create_uint32(env, l->mtime_nsec, &(argv[6]));
})`,
    'utimens',
  );
  // The caller's ids are read on the libfuse thread, in the request's context.
  const caller = '  l->uid = fuse_get_context()->uid;\n  l->gid = fuse_get_context()->gid;\n';
  const callerArgs = (first) => `  napi_create_uint32(env, l->uid, &(argv[${first}]));\n  napi_create_uint32(env, l->gid, &(argv[${first + 1}]));\n`;
  out = replaceOnce(
    out,
    `FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
}, {`,
    `FUSE_METHOD(create, 4, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
${caller}}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
${callerArgs(4)}}, {`,
    'create',
  );
  out = replaceOnce(
    out,
    `FUSE_METHOD_VOID(mknod, 3, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
})`,
    `FUSE_METHOD_VOID(mknod, 5, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
${caller}}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
${callerArgs(5)}})`,
    'mknod',
  );
  out = replaceOnce(
    out,
    `FUSE_METHOD_VOID(symlink, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})`,
    `FUSE_METHOD_VOID(symlink, 4, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
${caller}}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
${callerArgs(4)}})`,
    'symlink',
  );
  out = replaceOnce(
    out,
    `FUSE_METHOD_VOID(mkdir, 2, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
})`,
    `FUSE_METHOD_VOID(mkdir, 4, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
${caller}}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
${callerArgs(4)}})`,
    'mkdir',
  );
  out = replaceOnce(
    out,
    '  if (implemented[op_init]) ops.init = fuse_native_init;',
    '  if (implemented[op_init]) ops.init = fuse_native_init;\n  ops.flag_utime_omit_ok = 1;',
    'utime omit flag',
  );
  out = replaceOnce(out, 'NAPI_INIT() {\n', `NAPI_INIT() {\n  napi_value embrfs_patch_level_value;\n  napi_create_uint32(env, ${PATCH_LEVEL}, &embrfs_patch_level_value);\n  napi_set_named_property(env, exports, "embrfs_patch_level", embrfs_patch_level_value);\n`, 'patch level export');
  return out;
}
