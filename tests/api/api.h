/* Shared helpers for the C/POSIX conformance tests.
 *
 * Each test program is built twice (tests/api/CMakeLists.txt): linked
 * against liblwmalloc.so, and as a plain binary run with LD_PRELOAD. A
 * third run of the plain binary, with LWTEST_ALLOCATOR=libc, checks the
 * test itself against the C library's allocator. The allocator_in_use test
 * below makes sure the allocator under test really is the one serving
 * malloc: a test that silently ran against glibc would prove nothing. */
#ifndef LW_API_TEST_H
#define LW_API_TEST_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhelper.h"

/* Hides a value from the optimiser, so that it can neither fold a
 * malloc/free pair away nor reason about an object's size. */
static inline void *lwtest_opaque(void *p) { __asm__ volatile("" : "+r"(p)); return p; }
static inline size_t lwtest_size(size_t n) { __asm__ volatile("" : "+r"(n)); return n; }

/* Path of the shared object that defines `sym` as this process sees it. */
static inline const char *lwtest_owner_of(const char *sym) {
  Dl_info info;
  void *addr = dlsym(RTLD_DEFAULT, sym);
  if (!addr || !dladdr(addr, &info) || !info.dli_fname) return "(unresolved)";
  return info.dli_fname;
}

/* 1 when the tests are meant to run against lwmalloc (the default). */
static inline int lwtest_want_lwmalloc(void) {
  const char *want = getenv("LWTEST_ALLOCATOR");
  return !want || strcmp(want, "libc") != 0;
}

static inline int lwtest_is_lwmalloc_in_use(void) {
  return strstr(lwtest_owner_of("malloc"), "liblwmalloc") != NULL;
}

/* Deterministic byte pattern of block `id` at offset `i`. */
static inline unsigned char lwtest_byte(uintptr_t id, size_t i) {
  return (unsigned char)((id * 131u + i * 7u + (i >> 8)) ^ 0x5a);
}
static inline void lwtest_fill(void *p, size_t n, uintptr_t id) {
  unsigned char *b = lwtest_opaque(p);
  for (size_t i = 0; i < n; i++) b[i] = lwtest_byte(id, i);
}
/* Returns the first offset whose byte differs, or n when all match. */
static inline size_t lwtest_verify(const void *p, size_t n, uintptr_t id) {
  const unsigned char *b = lwtest_opaque((void *)p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != lwtest_byte(id, i)) return i;
  return n;
}
static inline int lwtest_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }
static inline int lwtest_all_zero(const void *p, size_t n) {
  const unsigned char *b = lwtest_opaque((void *)p);
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

#ifndef LWTEST_NO_ALLOCATOR_CHECK
TEST(allocator_in_use) {
  const char *owner = lwtest_owner_of("malloc");
  if (lwtest_want_lwmalloc()) {
    if (!lwtest_is_lwmalloc_in_use())
      fprintf(stderr, "malloc resolves to %s, not liblwmalloc\n", owner);
    ASSERT(lwtest_is_lwmalloc_in_use());
    size_t (*usable)(const void *) = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "lw_usable_size");
    ASSERT(usable != NULL);
    void *p = malloc(lwtest_size(100));
    ASSERT(p != NULL);
    EXPECT(usable(p) >= 100); /* lwmalloc recognises malloc's block */
    free(p);
  } else {
    EXPECT(strstr(owner, "libc.so") != NULL);
  }
}
#endif /* LWTEST_NO_ALLOCATOR_CHECK */
#endif
