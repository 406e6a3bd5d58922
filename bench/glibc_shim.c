/* libglibcshim.so: forces glibc's allocator on a program linked against
 * another malloc.
 *
 * Debian's redis-server is linked with libjemalloc, so running it "without
 * preload" measures jemalloc, not glibc. Preloading this shim puts glibc's
 * malloc in front again: each standard name forwards to glibc's __libc_*
 * entry points (exported for exactly this purpose), and
 * malloc_usable_size to glibc's own, looked up in libc.so.6 itself (a
 * plain RTLD_NEXT lookup would find jemalloc's). jemalloc-only calls such
 * as mallctl still reach jemalloc, which then only reports its own, unused
 * heap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define SHIM_API __attribute__((visibility("default")))

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

SHIM_API void *malloc(size_t n) { return __libc_malloc(n); }
SHIM_API void *calloc(size_t c, size_t n) { return __libc_calloc(c, n); }
SHIM_API void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
SHIM_API void free(void *p) { __libc_free(p); }
SHIM_API void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
SHIM_API void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
SHIM_API void *valloc(size_t n) { return __libc_memalign(4096, n); }

SHIM_API int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

SHIM_API size_t malloc_usable_size(void *p) {
  static size_t (*libc_usable)(void *);
  if (!libc_usable) {
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc) libc_usable = (size_t(*)(void *))dlsym(libc, "malloc_usable_size");
    if (!libc_usable) return 0;
  }
  return libc_usable(p);
}
