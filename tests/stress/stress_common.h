/* Helpers shared by the stress programs: a small deterministic PRNG, and
 * self-describing blocks whose contents can be verified by any thread. */
#ifndef LW_STRESS_COMMON_H
#define LW_STRESS_COMMON_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: a fixed seed gives the same sequence on every run. */
static inline uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A size from the mix real programs make: mostly small, some medium, a
 * few large (direct mappings). */
static inline size_t rng_size(uint64_t *s, unsigned scale) {
  uint64_t r = rng_next(s);
  unsigned kind = (unsigned)(r % 1000);
  size_t n;
  if (kind < 800) n = (size_t)(r >> 16) % 256 + 1;          /* small  */
  else if (kind < 990) n = (size_t)(r >> 16) % 16384 + 256; /* medium */
  else n = (size_t)(r >> 16) % (1u << 20) + 131072;         /* large  */
  return scale > 1 && kind < 990 ? n * (scale % 4 + 1) : n;
}

/* Block layout: word 0 = size, word 1 = key, then bytes derived from the
 * key. Blocks smaller than the header hold only as much of it as fits,
 * and are identified by their first byte. */
#define BLOCK_HDR (2 * sizeof(uint64_t))
static inline unsigned char block_byte(uint64_t key, size_t i) { return (unsigned char)(key + i * 31 + (i >> 9)); }

static inline void block_fill(void *p, size_t size, uint64_t key) {
  unsigned char *b = p;
  if (size < BLOCK_HDR) {
    for (size_t i = 0; i < size; i++) b[i] = block_byte(key, i);
    return;
  }
  uint64_t hdr[2] = {size, key};
  memcpy(b, hdr, sizeof hdr);
  /* Large blocks: only both ends, to keep the test about the allocator. */
  size_t head = size < 4096 ? size : 2048;
  for (size_t i = BLOCK_HDR; i < head; i++) b[i] = block_byte(key, i);
  for (size_t i = size - (size - head < 2048 ? size - head : 2048); i < size; i++) b[i] = block_byte(key, i);
}

/* Returns 0 when the block holds what block_fill wrote for (size, key). */
static inline int block_check(const void *p, size_t size, uint64_t key) {
  const unsigned char *b = p;
  if (size < BLOCK_HDR) {
    for (size_t i = 0; i < size; i++)
      if (b[i] != block_byte(key, i)) return -1;
    return 0;
  }
  uint64_t hdr[2];
  memcpy(hdr, b, sizeof hdr);
  if (hdr[0] != size || hdr[1] != key) return -1;
  size_t head = size < 4096 ? size : 2048;
  for (size_t i = BLOCK_HDR; i < head; i++)
    if (b[i] != block_byte(key, i)) return -1;
  for (size_t i = size - (size - head < 2048 ? size - head : 2048); i < size; i++)
    if (b[i] != block_byte(key, i)) return -1;
  return 0;
}

static inline unsigned arg_or(int argc, char **argv, int i, unsigned dflt) {
  return argc > i ? (unsigned)strtoul(argv[i], NULL, 10) : dflt;
}

#ifdef LWTEST_DIRECT_LW
/* The program calls lwmalloc's lw_* functions by name (linked with the
 * static library): the variant that ThreadSanitizer can watch, since its
 * runtime replaces the standard malloc names. */
#include "lwmalloc.h"
#define malloc lw_malloc
#define free lw_free
#define calloc lw_calloc
#define realloc lw_realloc
#define memalign lw_memalign
#define posix_memalign lw_posix_memalign
static inline void require_allocator(void) {}
#else
/* Exits the test unless the expected allocator serves malloc: lwmalloc,
 * or the C library's when LWTEST_ALLOCATOR=libc (the reference run). */
static inline void require_allocator(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  const char *owner = sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "(unresolved)";
  const char *want = getenv("LWTEST_ALLOCATOR");
  const char *needle = want && strcmp(want, "libc") == 0 ? "libc.so" : "liblwmalloc";
  if (!strstr(owner, needle)) {
    fprintf(stderr, "malloc resolves to %s, expected %s\n", owner, needle);
    printf("0 passed, 1 failed\n");
    exit(1);
  }
}
#endif /* LWTEST_DIRECT_LW */
#endif
