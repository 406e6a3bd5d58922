/* The standard names, as aliases of the lw_* functions (same symbol, no
 * extra call). Included by api.c in the shared library only, which makes
 * it the only place that defines malloc, free & co. The glibc-internal
 * names (__libc_*) are covered too, so no pointer of ours ever reaches
 * glibc's free and no glibc pointer reaches ours. */
#ifndef LW_OVERRIDE
#error "override.c is included by api.c when LW_OVERRIDE is defined"
#endif
#include <malloc.h>

#define LW_ALIAS(target) __attribute__((alias(#target), visibility("default")))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-attributes" /* glibc's prototypes carry fewer */
#endif

void *malloc(size_t) LW_ALIAS(lw_malloc);
void free(void *) LW_ALIAS(lw_free);
void *calloc(size_t, size_t) LW_ALIAS(lw_calloc);
void *realloc(void *, size_t) LW_ALIAS(lw_realloc);
void *reallocarray(void *, size_t, size_t) LW_ALIAS(lw_reallocarray);
void *memalign(size_t, size_t) LW_ALIAS(lw_memalign);
int posix_memalign(void **, size_t, size_t) LW_ALIAS(lw_posix_memalign);
void *aligned_alloc(size_t, size_t) LW_ALIAS(lw_aligned_alloc);
void *valloc(size_t) LW_ALIAS(lw_valloc);
void *pvalloc(size_t) LW_ALIAS(lw_pvalloc);
size_t malloc_usable_size(void *) LW_ALIAS(lw_usable_size);
void free_sized(void *, size_t) LW_ALIAS(lw_free_sized);
void free_aligned_sized(void *, size_t, size_t) LW_ALIAS(lw_free_aligned_sized);
void cfree(void *) LW_ALIAS(lw_free);

void *__libc_malloc(size_t) LW_ALIAS(lw_malloc);
void __libc_free(void *) LW_ALIAS(lw_free);
void *__libc_calloc(size_t, size_t) LW_ALIAS(lw_calloc);
void *__libc_realloc(void *, size_t) LW_ALIAS(lw_realloc);
void *__libc_memalign(size_t, size_t) LW_ALIAS(lw_memalign);
void *__libc_valloc(size_t) LW_ALIAS(lw_valloc);
void *__libc_pvalloc(size_t) LW_ALIAS(lw_pvalloc);
int __posix_memalign(void **, size_t, size_t) LW_ALIAS(lw_posix_memalign);

__attribute__((visibility("default"))) int malloc_trim(size_t pad) { return lw_trim(pad); }

/* glibc's tunables mean nothing here: accepted and ignored. */
__attribute__((visibility("default"))) int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}

__attribute__((visibility("default"))) void malloc_stats(void) { lw_stats_print(NULL, NULL); }

__attribute__((visibility("default"))) struct mallinfo2 mallinfo2(void) {
  lw_stats_t s;
  lw_stats(&s);
  struct mallinfo2 m = {0};
  m.arena = s.mapped_bytes - s.large_bytes;
  m.hblks = 0;
  m.hblkhd = s.large_bytes;
  m.uordblks = s.small_bytes + s.medium_bytes;
  m.fordblks = s.free_bytes + s.unmerged_bytes;
  m.keepcost = 0;
  return m;
}

__attribute__((visibility("default"))) struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m = {0};
  m.arena = (int)m2.arena;
  m.hblkhd = (int)m2.hblkhd;
  m.uordblks = (int)m2.uordblks;
  m.fordblks = (int)m2.fordblks;
  return m;
}
