/*
 * Native fingerprint kernel of EmbrFS (fingerprint format version 1, docs/design/query.md §1).
 *
 * The same construction as contentFingerprint in src/query/fingerprint.ts, which stays the
 * reference and the fallback: a gear rolling hash h = (h << 4) + GEAR[byte] (32 bits), an anchor
 * where the top 6 bits of h are zero (never in the first 7 positions), a murmur3 finalizer of
 * h ^ SEED per anchor giving a dimension and a sign, the sign of the per-dimension count, and
 * consistent (bottom-k by seeded priority) thinning to maxNonZero. The output must be identical
 * to the JavaScript one bit for bit: src/query/fingerprint.test.ts compares them on thousands of
 * seeded inputs and the loader compares them once at load time.
 *
 * Exports (plain Node-API, no C++ wrapper, loadable in worker threads):
 *   version: 1 (the fingerprint format version), dimension: 10000
 *   fingerprint(bytes: Uint8Array, maxNonZero: int, out: Uint32Array(>= 10000)) -> int
 *     positive dimensions at out[0 .. p), negative at out[p .. p + n), both increasing;
 *     returns p * 16384 + n.
 *   fingerprintSerialized(bytes: Uint8Array, maxNonZero: int, out: Uint32Array(>= 10000),
 *                         serialized: Uint8Array(>= 20007)) -> number
 *     as fingerprint, and also writes the vector in the vsa vector format version 1
 *     (src/vsa/serialize.ts: u8 1, varint dimension, varint p, varint n, then the gaps of the
 *     positive and of the negative dimensions as canonical LEB128 varints) to serialized;
 *     returns p * 16384 + n + serializedLength * 2^28 (exact in a double).
 *   fingerprintChunks(bytes: Uint8Array, chunkBytes: int, maxNonZero: int, dims: Uint32Array,
 *                     counts: Uint32Array) -> int
 *     fingerprints bytes[i*chunkBytes .. ) for every chunk i in one call; chunk i's positive then
 *     negative dimensions follow chunk i-1's in dims, counts[2i] = p, counts[2i+1] = n; returns
 *     the number of dims written. Throws RangeError when dims or counts are too short.
 *
 *   sha256Chunks(bytes: Uint8Array, chunkBytes: int, out: Uint8Array) -> int   (only when found)
 *     SHA-256 of bytes[i*chunkBytes .. min(length, (i+1)*chunkBytes)) for every chunk i, written to
 *     out[32i .. 32i+32); returns the number of chunks. One call instead of one createHash per
 *     4 KiB chunk (about 40 % less CPU for a run of chunks). The hash is OpenSSL's SHA256(), looked
 *     up at load time in the running Node (which exports its OpenSSL); when it is not there, the
 *     function is not exported and callers use node:crypto (src/fs/encode.ts).
 *
 *   allocLarge(byteLength: int) -> ArrayBuffer | null
 *     A zero-filled ArrayBuffer of byteLength bytes in a mapping of its own, 2 MiB-aligned and
 *     advised MADV_HUGEPAGE (transparent huge pages, where the kernel has them in "madvise"
 *     mode). Its size is reported to V8 as external memory while in use, so GC pressure is what
 *     it would be for a plain ArrayBuffer. When V8 collects it, the mapping is kept for the next
 *     call (up to 32 MiB and 16 mappings per process, reused when at most twice the size needed,
 *     zeroed again) or unmapped. When a call asks for the same size as the one before (at most
 *     16 MiB) and the pool holds no fit, one detached thread maps and touches a mapping of that
 *     size and adds it to the pool (one such thread at a time), so a program reading large files
 *     one after another takes the page faults off its own thread: V8 frees an output only at its
 *     next GC, often after the next read has begun. The library is pinned in memory (linked with
 *     -z nodelete), so a worker thread's exit never unloads code that thread may still run.
 *     null when the mapping fails (callers then allocate a plain one). Why: on this project's VM
 *     a fresh 4 KiB page costs ~10 us to fault in, so a fresh 10 MB buffer took 25-39 ms to fill;
 *     fresh 2 MiB pages take ~18 ms per 10 MiB, a reused mapping ~1 ms (src/fs/output-memory.ts).
 *     Such a buffer is not transferable: Node 20 copies it when it is in a transfer list, Node 21+
 *     throws (output-memory.ts checks which, once).
 *
 * Scratch state is thread-local (worker threads each load the addon) and all zero between calls.
 */
#include <dlfcn.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define DIMENSION 10000u
#define VERSION 1
#define WINDOW_BYTES 8u
#define ANCHOR_MASK_BITS 6u
#define SEED 0x45465031u
#define OCCUPIED_WORDS ((DIMENSION + 31u) / 32u)

static uint32_t gear[256];

static inline uint32_t mix32(uint32_t value) {
  value ^= value >> 16;
  value *= 0x85ebca6bu;
  value ^= value >> 13;
  value *= 0xc2b2ae35u;
  value ^= value >> 16;
  return value;
}

static inline uint32_t priority_of(uint32_t dimension) { return mix32(dimension ^ (SEED * 0x27d4eb2du)); }

static void init_gear(void) {
  for (uint32_t byte_value = 0; byte_value < 256; byte_value += 1) {
    gear[byte_value] = mix32(mix32(SEED ^ ((byte_value + 1u) * 0x9e3779b9u)) + byte_value);
  }
}

typedef struct {
  int32_t counts[DIMENSION];
  uint32_t occupied[OCCUPIED_WORDS];
  uint32_t positive[DIMENSION];
  uint32_t negative[DIMENSION];
  uint32_t priorities[DIMENSION];
  uint32_t staging[DIMENSION];
} scratch_t;

static _Thread_local scratch_t scratch;

static inline void count_feature(uint32_t hash) {
  uint32_t feature = mix32(hash ^ SEED);
  uint32_t dimension = (feature & 0x7fffffffu) % DIMENSION;
  scratch.occupied[dimension >> 5] |= 1u << (dimension & 31u);
  scratch.counts[dimension] += (feature & 0x80000000u) ? -1 : 1;
}

static int compare_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Fingerprints bytes into out (positive then negative dims); returns p * 16384 + n. */
static uint32_t fingerprint_into(const uint8_t *bytes, size_t length, uint32_t max_non_zero, uint32_t *out) {
  const uint32_t anchor_limit = 1u << (32u - ANCHOR_MASK_BITS);
  uint32_t hash = 0;
  size_t warm_up_end = length < WINDOW_BYTES - 1 ? length : WINDOW_BYTES - 1;
  size_t position = 0;
  for (; position < warm_up_end; position += 1) hash = (hash << 4) + gear[bytes[position]];
  for (; position < length; position += 1) {
    hash = (hash << 4) + gear[bytes[position]];
    if (__builtin_expect(hash < anchor_limit, 0)) count_feature(hash);
  }
  /* Collect in increasing dimension order and reset the scratch state. */
  uint32_t positive_count = 0, negative_count = 0;
  for (uint32_t word = 0; word < OCCUPIED_WORDS; word += 1) {
    uint32_t bits = scratch.occupied[word];
    if (bits == 0) continue;
    scratch.occupied[word] = 0;
    while (bits != 0) {
      uint32_t dimension = (word << 5) + (uint32_t)__builtin_ctz(bits);
      bits &= bits - 1;
      int32_t count = scratch.counts[dimension];
      scratch.counts[dimension] = 0;
      if (count > 0) scratch.positive[positive_count++] = dimension;
      else if (count < 0) scratch.negative[negative_count++] = dimension;
    }
  }
  uint32_t total = positive_count + negative_count;
  if (total <= max_non_zero) {
    memcpy(out, scratch.positive, positive_count * sizeof(uint32_t));
    memcpy(out + positive_count, scratch.negative, negative_count * sizeof(uint32_t));
    return positive_count * 16384u + negative_count;
  }
  /* Consistent thinning: keep the max_non_zero dimensions of lowest priority. Priorities are a
     bijection of dimensions, so they are distinct and the threshold keeps exactly that many. */
  uint32_t kept_positive = 0, kept_negative = 0;
  if (max_non_zero > 0) {
    for (uint32_t index = 0; index < positive_count; index += 1) scratch.priorities[index] = priority_of(scratch.positive[index]);
    for (uint32_t index = 0; index < negative_count; index += 1) scratch.priorities[positive_count + index] = priority_of(scratch.negative[index]);
    qsort(scratch.priorities, total, sizeof(uint32_t), compare_u32);
    uint32_t threshold = scratch.priorities[max_non_zero - 1];
    for (uint32_t index = 0; index < positive_count; index += 1) {
      if (priority_of(scratch.positive[index]) <= threshold) out[kept_positive++] = scratch.positive[index];
    }
    for (uint32_t index = 0; index < negative_count; index += 1) {
      if (priority_of(scratch.negative[index]) <= threshold) out[kept_positive + kept_negative++] = scratch.negative[index];
    }
  }
  return kept_positive * 16384u + kept_negative;
}

/* Largest serialization: header (version, dimension, two counts) + 2 bytes per dimension below 2^14. */
#define MAX_SERIALIZED_BYTES (1u + 2u + 2u + 2u + 2u * DIMENSION)

static inline size_t write_varint(uint8_t *out, size_t offset, uint32_t value) {
  while (value >= 0x80u) {
    out[offset++] = (uint8_t)((value & 0x7fu) | 0x80u);
    value >>= 7;
  }
  out[offset++] = (uint8_t)value;
  return offset;
}

static size_t write_gaps(const uint32_t *dims, uint32_t count, uint8_t *out, size_t offset) {
  for (uint32_t index = 0; index < count; index += 1) {
    offset = write_varint(out, offset, index == 0 ? dims[0] : dims[index] - dims[index - 1] - 1u);
  }
  return offset;
}

/* The vsa vector format version 1 of (positive = dims[0, p), negative = dims[p, p + n)). */
static size_t serialize_vector(const uint32_t *dims, uint32_t positive, uint32_t negative, uint8_t *out) {
  size_t offset = 0;
  out[offset++] = 1;
  offset = write_varint(out, offset, DIMENSION);
  offset = write_varint(out, offset, positive);
  offset = write_varint(out, offset, negative);
  offset = write_gaps(dims, positive, out, offset);
  return write_gaps(dims + positive, negative, out, offset);
}

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, NULL, "embrfs native fingerprint: " #call);     \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

static int get_typed_array(napi_env env, napi_value value, napi_typedarray_type wanted, void **data, size_t *length, const char *what) {
  bool is_typed_array = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array ||
      napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || type != wanted) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  return 1;
}

static int get_limit(napi_env env, napi_value value, uint32_t *limit, const char *what) {
  int64_t number;
  if (napi_get_value_int64(env, value, &number) != napi_ok || number < 0) {
    napi_throw_range_error(env, NULL, what);
    return 0;
  }
  *limit = number > (int64_t)DIMENSION ? DIMENSION : (uint32_t)number;
  return 1;
}

static napi_value js_fingerprint(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "fingerprint(bytes, maxNonZero, out) takes 3 arguments");
    return NULL;
  }
  void *bytes, *out;
  size_t length, out_length;
  uint32_t max_non_zero;
  if (!get_typed_array(env, argv[0], napi_uint8_array, &bytes, &length, "fingerprint: bytes must be a Uint8Array")) return NULL;
  if (!get_limit(env, argv[1], &max_non_zero, "fingerprint: maxNonZero must be an integer >= 0")) return NULL;
  if (!get_typed_array(env, argv[2], napi_uint32_array, &out, &out_length, "fingerprint: out must be a Uint32Array")) return NULL;
  if (out_length < DIMENSION) {
    napi_throw_range_error(env, NULL, "fingerprint: out must hold 10000 dimensions");
    return NULL;
  }
  uint32_t packed = fingerprint_into((const uint8_t *)bytes, length, max_non_zero, (uint32_t *)out);
  napi_value result;
  CHECK(napi_create_uint32(env, packed, &result));
  return result;
}

static napi_value js_fingerprint_serialized(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "fingerprintSerialized(bytes, maxNonZero, out, serialized) takes 4 arguments");
    return NULL;
  }
  void *bytes, *out, *serialized;
  size_t length, out_length, serialized_length;
  uint32_t max_non_zero;
  if (!get_typed_array(env, argv[0], napi_uint8_array, &bytes, &length, "fingerprintSerialized: bytes must be a Uint8Array")) return NULL;
  if (!get_limit(env, argv[1], &max_non_zero, "fingerprintSerialized: maxNonZero must be an integer >= 0")) return NULL;
  if (!get_typed_array(env, argv[2], napi_uint32_array, &out, &out_length, "fingerprintSerialized: out must be a Uint32Array")) return NULL;
  if (!get_typed_array(env, argv[3], napi_uint8_array, &serialized, &serialized_length, "fingerprintSerialized: serialized must be a Uint8Array")) return NULL;
  if (out_length < DIMENSION || serialized_length < MAX_SERIALIZED_BYTES) {
    napi_throw_range_error(env, NULL, "fingerprintSerialized: out must hold 10000 dimensions and serialized 20007 bytes");
    return NULL;
  }
  uint32_t packed = fingerprint_into((const uint8_t *)bytes, length, max_non_zero, (uint32_t *)out);
  size_t written = serialize_vector((const uint32_t *)out, packed >> 14, packed & 16383u, (uint8_t *)serialized);
  napi_value result;
  CHECK(napi_create_double(env, (double)packed + (double)written * 268435456.0, &result));
  return result;
}

static napi_value js_fingerprint_chunks(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "fingerprintChunks(bytes, chunkBytes, maxNonZero, dims, counts) takes 5 arguments");
    return NULL;
  }
  void *bytes, *dims, *counts;
  size_t length, dims_length, counts_length;
  uint32_t max_non_zero;
  int64_t chunk_bytes;
  if (!get_typed_array(env, argv[0], napi_uint8_array, &bytes, &length, "fingerprintChunks: bytes must be a Uint8Array")) return NULL;
  if (napi_get_value_int64(env, argv[1], &chunk_bytes) != napi_ok || chunk_bytes < 1) {
    napi_throw_range_error(env, NULL, "fingerprintChunks: chunkBytes must be an integer >= 1");
    return NULL;
  }
  if (!get_limit(env, argv[2], &max_non_zero, "fingerprintChunks: maxNonZero must be an integer >= 0")) return NULL;
  if (!get_typed_array(env, argv[3], napi_uint32_array, &dims, &dims_length, "fingerprintChunks: dims must be a Uint32Array")) return NULL;
  if (!get_typed_array(env, argv[4], napi_uint32_array, &counts, &counts_length, "fingerprintChunks: counts must be a Uint32Array")) return NULL;
  size_t chunk_count = length == 0 ? 0 : (length + (size_t)chunk_bytes - 1) / (size_t)chunk_bytes;
  if (counts_length < 2 * chunk_count) {
    napi_throw_range_error(env, NULL, "fingerprintChunks: counts must hold 2 entries per chunk");
    return NULL;
  }
  /* Room check per chunk before writing: a chunk yields at most min(maxNonZero, 10000, its length) dims. */
  uint32_t *staging = scratch.staging;
  size_t written = 0;
  for (size_t chunk = 0; chunk < chunk_count; chunk += 1) {
    size_t start = chunk * (size_t)chunk_bytes;
    size_t end = start + (size_t)chunk_bytes < length ? start + (size_t)chunk_bytes : length;
    uint32_t packed = fingerprint_into((const uint8_t *)bytes + start, end - start, max_non_zero, staging);
    uint32_t positive = packed >> 14, negative = packed & 16383u;
    if (written + positive + negative > dims_length) {
      napi_throw_range_error(env, NULL, "fingerprintChunks: dims is too short");
      return NULL;
    }
    memcpy((uint32_t *)dims + written, staging, (positive + negative) * sizeof(uint32_t));
    written += positive + negative;
    ((uint32_t *)counts)[2 * chunk] = positive;
    ((uint32_t *)counts)[2 * chunk + 1] = negative;
  }
  napi_value result;
  CHECK(napi_create_double(env, (double)written, &result));
  return result;
}

typedef unsigned char *(*sha256_function)(const unsigned char *data, size_t length, unsigned char *digest);
static sha256_function openssl_sha256;

static void find_sha256(void) { openssl_sha256 = (sha256_function)dlsym(RTLD_DEFAULT, "SHA256"); }

static napi_value js_sha256_chunks(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_type_error(env, NULL, "sha256Chunks(bytes, chunkBytes, out) takes 3 arguments");
    return NULL;
  }
  void *bytes, *out;
  size_t length, out_length;
  uint32_t chunk_bytes;
  if (!get_typed_array(env, argv[0], napi_uint8_array, &bytes, &length, "sha256Chunks: bytes must be a Uint8Array")) return NULL;
  int64_t chunk_number;
  if (napi_get_value_int64(env, argv[1], &chunk_number) != napi_ok || chunk_number <= 0 || chunk_number > 0x7fffffff) {
    napi_throw_range_error(env, NULL, "sha256Chunks: chunkBytes must be a positive integer");
    return NULL;
  }
  chunk_bytes = (uint32_t)chunk_number;
  if (!get_typed_array(env, argv[2], napi_uint8_array, &out, &out_length, "sha256Chunks: out must be a Uint8Array")) return NULL;
  size_t count = (length + chunk_bytes - 1) / chunk_bytes;
  if (out_length < 32 * count) {
    napi_throw_range_error(env, NULL, "sha256Chunks: out must hold 32 bytes per chunk");
    return NULL;
  }
  for (size_t chunk = 0; chunk < count; chunk += 1) {
    size_t start = chunk * chunk_bytes;
    size_t size = length - start < chunk_bytes ? length - start : chunk_bytes;
    openssl_sha256((const unsigned char *)bytes + start, size, (unsigned char *)out + 32 * chunk);
  }
  napi_value result;
  CHECK(napi_create_double(env, (double)count, &result));
  return result;
}

#define LARGE_ALIGN ((size_t)2 << 20)
/* Idle mappings kept for reuse: at most this many bytes and this many mappings per process. */
#define LARGE_RETAIN_BYTES ((size_t)32 << 20)
/* Mappings are prepared ahead only up to this size, and only for a size asked for twice in a row. */
#define LARGE_PREPARE_MAX_BYTES ((size_t)16 << 20)
#define LARGE_RETAIN_COUNT 16

typedef struct {
  void *base;
  size_t mapped;
  /* 1 when every byte is still zero (a mapping prepared ahead, never handed out). */
  int clean;
} LargeMapping;

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static LargeMapping large_idle[LARGE_RETAIN_COUNT];
static size_t large_idle_count;
static size_t large_idle_bytes;
/* 1 while a thread prepares a mapping ahead (at most one at a time). */
static int large_preparing;

/* An idle mapping of at least `mapped` bytes and at most twice that, taken out of the pool; base NULL if none. */
static LargeMapping take_idle(size_t mapped) {
  LargeMapping found = {NULL, 0, 0};
  pthread_mutex_lock(&large_lock);
  size_t best = large_idle_count;
  for (size_t index = 0; index < large_idle_count; index += 1) {
    size_t size = large_idle[index].mapped;
    if (size >= mapped && size <= 2 * mapped && (best == large_idle_count || size < large_idle[best].mapped)) best = index;
  }
  if (best < large_idle_count) {
    found = large_idle[best];
    large_idle[best] = large_idle[large_idle_count - 1];
    large_idle_count -= 1;
    large_idle_bytes -= found.mapped;
  }
  pthread_mutex_unlock(&large_lock);
  return found;
}

static void free_large(napi_env env, void *data, void *hint) {
  (void)data;
  LargeMapping *mapping = hint;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)mapping->mapped, &ignored);
  int kept = 0;
  mapping->clean = 0;
  pthread_mutex_lock(&large_lock);
  if (large_idle_count < LARGE_RETAIN_COUNT && large_idle_bytes + mapping->mapped <= LARGE_RETAIN_BYTES) {
    large_idle[large_idle_count] = *mapping;
    large_idle_count += 1;
    large_idle_bytes += mapping->mapped;
    kept = 1;
  }
  pthread_mutex_unlock(&large_lock);
  if (!kept) munmap(mapping->base, mapping->mapped);
  free(mapping);
}

/* A fresh 2 MiB-aligned mapping of `mapped` bytes advised for huge pages; base NULL on failure. */
static LargeMapping map_large(size_t mapped) {
  LargeMapping result = {NULL, 0, 1};
  /* One extra huge page of address space, so an aligned start can be cut out of it. */
  uint8_t *raw = mmap(NULL, mapped + LARGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return result;
  uint8_t *start = (uint8_t *)(((uintptr_t)raw + LARGE_ALIGN - 1) & ~(uintptr_t)(LARGE_ALIGN - 1));
  if (start > raw) munmap(raw, (size_t)(start - raw));
  size_t tail = (size_t)((raw + mapped + LARGE_ALIGN) - (start + mapped));
  if (tail > 0) munmap(start + mapped, tail);
  madvise(start, mapped, MADV_HUGEPAGE);
  result.base = start;
  result.mapped = mapped;
  return result;
}

/*
 * Maps and touches one mapping of (size_t)arg bytes off the calling thread and puts it in the
 * pool, so the next output of that size finds its pages already there: the page faults (about
 * 10 us per 4 KiB page on this project's VM) are taken here instead of on the reading thread.
 */
static void *prepare_large(void *arg) {
  size_t mapped = (size_t)(uintptr_t)arg;
  LargeMapping mapping = map_large(mapped);
  if (mapping.base != NULL) {
    /* Writing the zero that is already there faults the page in and leaves it zero. */
    for (size_t offset = 0; offset < mapped; offset += 4096) ((volatile uint8_t *)mapping.base)[offset] = 0;
  }
  int kept = 0;
  pthread_mutex_lock(&large_lock);
  if (mapping.base != NULL && large_idle_count < LARGE_RETAIN_COUNT && large_idle_bytes + mapped <= LARGE_RETAIN_BYTES) {
    large_idle[large_idle_count] = mapping;
    large_idle_count += 1;
    large_idle_bytes += mapped;
    kept = 1;
  }
  large_preparing = 0;
  pthread_mutex_unlock(&large_lock);
  if (!kept && mapping.base != NULL) munmap(mapping.base, mapped);
  return NULL;
}

/* The mapped size of the previous allocLarge call (0 before the first). */
static size_t large_last_mapped;

/*
 * Starts prepare_large for `mapped` bytes when the previous call asked for the same size (a
 * program reading large files one after another) and it is at most LARGE_PREPARE_MAX_BYTES,
 * unless the pool already holds a fit or one is being prepared.
 */
static void prepare_ahead(size_t mapped) {
  int start = 0;
  pthread_mutex_lock(&large_lock);
  int repeated = large_last_mapped == mapped;
  large_last_mapped = mapped;
  if (repeated && mapped <= LARGE_PREPARE_MAX_BYTES && !large_preparing && large_idle_bytes + mapped <= LARGE_RETAIN_BYTES && large_idle_count < LARGE_RETAIN_COUNT) {
    start = 1;
    for (size_t index = 0; index < large_idle_count; index += 1) {
      if (large_idle[index].mapped >= mapped && large_idle[index].mapped <= 2 * mapped) start = 0;
    }
  }
  if (start) large_preparing = 1;
  pthread_mutex_unlock(&large_lock);
  if (!start) return;
  pthread_attr_t attributes;
  pthread_t thread;
  int ok = pthread_attr_init(&attributes) == 0;
  if (ok) ok = pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED) == 0;
  if (ok) ok = pthread_create(&thread, &attributes, prepare_large, (void *)(uintptr_t)mapped) == 0;
  pthread_attr_destroy(&attributes);
  if (!ok) {
    pthread_mutex_lock(&large_lock);
    large_preparing = 0;
    pthread_mutex_unlock(&large_lock);
  }
}

static napi_value js_alloc_large(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t requested;
  if (argc != 1 || napi_get_value_int64(env, argv[0], &requested) != napi_ok || requested <= 0 || requested > ((int64_t)1 << 40)) {
    napi_throw_range_error(env, NULL, "allocLarge: byteLength must be a positive integer below 2^40");
    return NULL;
  }
  napi_value result;
  size_t mapped = ((size_t)requested + LARGE_ALIGN - 1) / LARGE_ALIGN * LARGE_ALIGN;
  LargeMapping mapping = take_idle(mapped);
  if (mapping.base != NULL) {
    /* Reused: its pages are already there; zero what the caller will see. */
    if (!mapping.clean) memset(mapping.base, 0, (size_t)requested);
  } else {
    mapping = map_large(mapped);
  }
  prepare_ahead(mapped);
  LargeMapping *owned = mapping.base == NULL ? NULL : malloc(sizeof *owned);
  if (owned == NULL) {
    if (mapping.base != NULL) munmap(mapping.base, mapping.mapped);
    CHECK(napi_get_null(env, &result));
    return result;
  }
  *owned = mapping;
  /* Reported before the buffer exists: free_large subtracts it, also if Node runs it on failure. */
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)owned->mapped, &ignored);
  if (napi_create_external_arraybuffer(env, owned->base, (size_t)requested, free_large, owned, &result) != napi_ok) {
    /* Node may already have run free_large on `owned` (it does for a length above its buffer
       limit): touching it again would be a double free. Callers stay below that limit. */
    napi_value pending;
    napi_get_and_clear_last_exception(env, &pending);
    CHECK(napi_get_null(env, &result));
    return result;
  }
  return result;
}

NAPI_MODULE_INIT() {
  /* Once per process, also when worker threads load the addon concurrently. */
  static pthread_once_t gear_once = PTHREAD_ONCE_INIT;
  pthread_once(&gear_once, init_gear);
  napi_value value;
  CHECK(napi_create_int32(env, VERSION, &value));
  CHECK(napi_set_named_property(env, exports, "version", value));
  CHECK(napi_create_int32(env, (int32_t)DIMENSION, &value));
  CHECK(napi_set_named_property(env, exports, "dimension", value));
  CHECK(napi_create_function(env, "fingerprint", NAPI_AUTO_LENGTH, js_fingerprint, NULL, &value));
  CHECK(napi_set_named_property(env, exports, "fingerprint", value));
  CHECK(napi_create_function(env, "fingerprintSerialized", NAPI_AUTO_LENGTH, js_fingerprint_serialized, NULL, &value));
  CHECK(napi_set_named_property(env, exports, "fingerprintSerialized", value));
  CHECK(napi_create_function(env, "fingerprintChunks", NAPI_AUTO_LENGTH, js_fingerprint_chunks, NULL, &value));
  CHECK(napi_set_named_property(env, exports, "fingerprintChunks", value));
  static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
  pthread_once(&sha256_once, find_sha256);
  if (openssl_sha256 != NULL) {
    CHECK(napi_create_function(env, "sha256Chunks", NAPI_AUTO_LENGTH, js_sha256_chunks, NULL, &value));
    CHECK(napi_set_named_property(env, exports, "sha256Chunks", value));
  }
  CHECK(napi_create_function(env, "allocLarge", NAPI_AUTO_LENGTH, js_alloc_large, NULL, &value));
  CHECK(napi_set_named_property(env, exports, "allocLarge", value));
  return exports;
}
