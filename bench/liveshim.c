/* libliveshim.so: measures the peak of live *requested* bytes of a real
 * program, for the "waste" metric (peak RSS - base RSS - peak live bytes).
 *
 * The workloads count their own live bytes; real programs (sqlite3,
 * python3, redis-server, mosquitto) cannot, so run.sh runs each of them
 * once more, untimed, with this shim preloaded. Requested sizes do not
 * depend on the allocator (the programs are deterministic, or nearly so
 * for the servers), so one run on top of glibc serves every allocator.
 *
 * Every block gets a 16-byte header in front of the user pointer holding
 * the requested size and the distance back to the start of the underlying
 * glibc block (non-zero for aligned requests):
 *
 *   raw ... [ size:64 | back:32 | magic:32 ] user bytes ...
 *                                            ^ pointer given to the program
 *
 * Live bytes are one atomic counter, the peak an atomic maximum (this run
 * is not timed, so the contention does not matter). At exit the shim
 * appends "peak_live_bytes=N" to the file named by $LWB_LIVE_OUT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHIM_API __attribute__((visibility("default")))
#define HDR 16u
#define MAGIC 0x4c495645u /* "LIVE" */

extern void *__libc_malloc(size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

typedef struct hdr_s {
  uint64_t size;
  uint32_t back; /* user pointer - raw pointer */
  uint32_t magic;
} hdr_t;

static _Atomic int64_t live, peak;

static void account(int64_t delta) {
  int64_t v = atomic_fetch_add_explicit(&live, delta, memory_order_relaxed) + delta;
  int64_t p = atomic_load_explicit(&peak, memory_order_relaxed);
  while (v > p && !atomic_compare_exchange_weak_explicit(&peak, &p, v, memory_order_relaxed,
                                                         memory_order_relaxed)) {
  }
}

static hdr_t *hdr_of(void *p) { return (hdr_t *)((char *)p - HDR); }

/* Allocates `size` bytes aligned to `align` (a power of two >= 16). */
static void *shim_alloc(size_t align, size_t size) {
  if (size > SIZE_MAX - HDR - align) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = align <= 16 ? __libc_malloc(size + HDR) : __libc_memalign(align, size + align);
  if (!raw) return NULL;
  char *user = align <= 16 ? raw + HDR : raw + align; /* align >= HDR */
  hdr_t *h = hdr_of(user);
  h->size = size;
  h->back = (uint32_t)(user - raw);
  h->magic = MAGIC;
  account((int64_t)size);
  return user;
}

SHIM_API void free(void *p) {
  if (!p) return;
  hdr_t *h = hdr_of(p);
  if (h->magic != MAGIC) return; /* not ours (e.g. from ld.so's early malloc): leak it */
  h->magic = 0;
  account(-(int64_t)h->size);
  __libc_free((char *)p - h->back);
}

SHIM_API void *malloc(size_t n) { return shim_alloc(16, n); }

SHIM_API void *calloc(size_t c, size_t n) {
  if (n && c > SIZE_MAX / n) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = shim_alloc(16, c * n);
  if (p) memset(p, 0, c * n);
  return p;
}

SHIM_API void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (n == 0) {
    free(p);
    return NULL;
  }
  hdr_t *h = hdr_of(p);
  if (h->magic == MAGIC && h->back == HDR && n <= SIZE_MAX - HDR) { /* plain block: grow in place */
    size_t old = h->size;
    char *raw = __libc_realloc((char *)p - HDR, n + HDR);
    if (!raw) return NULL;
    hdr_of(raw + HDR)->size = n;
    account((int64_t)n - (int64_t)old);
    return raw + HDR;
  }
  void *q = malloc(n);
  if (!q) return NULL;
  size_t old = h->magic == MAGIC ? h->size : 0;
  memcpy(q, p, old < n ? old : n);
  free(p);
  return q;
}

SHIM_API void *reallocarray(void *p, size_t c, size_t n) {
  if (n && c > SIZE_MAX / n) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, c * n);
}

SHIM_API void *memalign(size_t a, size_t n) { return shim_alloc(a < 16 ? 16 : a, n); }
SHIM_API void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
SHIM_API void *valloc(size_t n) { return memalign(4096, n); }
SHIM_API void *pvalloc(size_t n) { return memalign(4096, (n + 4095) & ~(size_t)4095); }

SHIM_API int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

SHIM_API size_t malloc_usable_size(void *p) { return p ? hdr_of(p)->size : 0; }

__attribute__((destructor)) static void report(void) {
  const char *path = getenv("LWB_LIVE_OUT");
  if (!path) return;
  char line[64];
  int len = snprintf(line, sizeof line, "peak_live_bytes=%lld\n",
                     (long long)atomic_load_explicit(&peak, memory_order_relaxed));
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)len) < 0) {
  }
  close(fd);
}
