/* A deliberately broken allocator for lwreplay's tests, loaded as
 * --allocator=PATH/liblwr-badalloc.so. It forwards to glibc, except that
 * from the BADALLOC_AFTER-th malloc on (default 5000: well inside a
 * replay, after the engine's own start-up allocations) it misbehaves as
 * BADALLOC_MODE says:
 *   null      malloc returns NULL
 *   misalign  malloc returns an odd address
 *   overlap   malloc returns the previous malloc's block + 16 (still live) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong calls;
static void *_Atomic last;
static void *_Atomic fakes[256]; /* overlap mode's results: never freed */
static atomic_uint nfakes;

static int mode(void) {
  static int m = -1;
  if (m < 0) {
    const char *s = getenv("BADALLOC_MODE");
    m = !s ? 0 : !strcmp(s, "null") ? 1 : !strcmp(s, "misalign") ? 2 : !strcmp(s, "overlap") ? 3 : 0;
  }
  return m;
}

static unsigned long after(void) {
  const char *s = getenv("BADALLOC_AFTER");
  return s ? strtoul(s, NULL, 10) : 5000;
}

__attribute__((visibility("default"))) void *malloc(size_t n) {
  unsigned long k = atomic_fetch_add(&calls, 1);
  if (k >= after()) {
    switch (mode()) {
    case 1: return NULL;
    case 2: return (char *)__libc_malloc(n + 16) + 1;
    case 3:
      if (last && atomic_load(&nfakes) < 256) {
        void *f = (char *)last + 16;
        fakes[atomic_fetch_add(&nfakes, 1)] = f;
        return f;
      }
      break;
    }
  }
  void *p = __libc_malloc(n);
  last = p;
  return p;
}

__attribute__((visibility("default"))) void free(void *p) {
  for (unsigned i = 0, n = atomic_load(&nfakes); i < n && i < 256; i++)
    if (fakes[i] == p) return;
  if ((uintptr_t)p & 1) p = (char *)p - 1; /* misalign mode */
  __libc_free(p);
}

__attribute__((visibility("default"))) void *calloc(size_t c, size_t n) { return __libc_calloc(c, n); }
__attribute__((visibility("default"))) void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
__attribute__((visibility("default"))) int posix_memalign(void **out, size_t a, size_t n) {
  void *p = __libc_memalign(a, n);
  if (!p) return 12;
  *out = p;
  return 0;
}
__attribute__((visibility("default"))) void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
__attribute__((visibility("default"))) void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
