/* malloc, free and malloc_usable_size: C/POSIX semantics. */
#include "api.h"
#include <stddef.h>

/* Sizes that cross every plausible class boundary: each size to 2 KiB,
 * then powers of two (and their neighbours) up to 8 MiB. */
static size_t sweep_sizes(size_t *out, size_t cap) {
  size_t n = 0;
  for (size_t s = 0; s <= 2048 && n < cap; s++) out[n++] = s;
  for (size_t p = 4096; p <= ((size_t)8 << 20) && n + 3 <= cap; p <<= 1) {
    out[n++] = p - 1;
    out[n++] = p;
    out[n++] = p + 1;
  }
  return n;
}

TEST(malloc_zero_returns_unique_freeable_pointers) {
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(lwtest_size(0));
    ASSERT(p[i] != NULL);
    for (int j = 0; j < i; j++) EXPECT(p[i] != p[j]);
  }
  for (int i = 0; i < N; i++) free(p[i]);
}

/* Alignment of max_align_t (16) for requests of 16 bytes and more; a
 * smaller object cannot need more than 8. */
TEST(malloc_alignment_every_size) {
  static size_t sizes[2200];
  size_t n = sweep_sizes(sizes, 2200);
  for (size_t i = 0; i < n; i++) {
    void *p = malloc(lwtest_size(sizes[i]));
    ASSERT(p != NULL);
    size_t want = sizes[i] >= 16 ? 16 : 8;
    if (!lwtest_aligned(p, want))
      fprintf(stderr, "malloc(%zu) = %p is not %zu-aligned\n", sizes[i], p, want);
    EXPECT(lwtest_aligned(p, want));
    free(p);
  }
}

/* Every size kept live at once, each filled to its full usable size with
 * its own pattern: an overlap between two blocks, or a usable size larger
 * than the block really is, corrupts a pattern. */
TEST(usable_size_bytes_are_writable_and_disjoint) {
  static size_t sizes[2200];
  static void *blocks[2200];
  size_t n = sweep_sizes(sizes, 2200);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = malloc(lwtest_size(sizes[i]));
    ASSERT(blocks[i] != NULL);
    size_t u = malloc_usable_size(blocks[i]);
    EXPECT(u >= sizes[i]);
    lwtest_fill(blocks[i], u, i);
  }
  for (size_t i = 0; i < n; i++) {
    size_t u = malloc_usable_size(blocks[i]);
    size_t bad = lwtest_verify(blocks[i], u, i);
    if (bad != u) fprintf(stderr, "block %zu (size %zu) corrupted at byte %zu\n", i, sizes[i], bad);
    EXPECT(bad == u);
  }
  for (size_t i = 0; i < n; i += 2) free(blocks[i]); /* odd order: neighbours free apart */
  for (size_t i = 1; i < n; i += 2) free(blocks[i]);
}

TEST(usable_size_of_null_is_zero) { EXPECT_EQ_U(malloc_usable_size(NULL), 0); }

TEST(free_null_is_a_no_op) {
  free(NULL);
  void *p = malloc(lwtest_size(10));
  EXPECT(p != NULL);
  free(p);
}

/* Requests no address space can hold fail cleanly with ENOMEM. */
TEST(impossible_sizes_fail_with_enomem) {
  const size_t sizes[] = {
      SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4095, SIZE_MAX - (1u << 20),
      SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4095,
      (size_t)1 << 62, (size_t)1 << 60,
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    void *p = malloc(lwtest_size(sizes[i]));
    if (p || errno != ENOMEM)
      fprintf(stderr, "malloc(%#zx) = %p, errno %d\n", sizes[i], p, errno);
    EXPECT(p == NULL);
    EXPECT(errno == ENOMEM);
    free(p);
  }
  /* ... and the allocator still works afterwards. */
  void *q = malloc(lwtest_size(1000));
  EXPECT(q != NULL);
  free(q);
}

/* Many blocks of mixed sizes, freed in a scrambled order, twice over, so
 * that the second round runs on reused memory. */
TEST(many_mixed_blocks_reuse) {
  enum { N = 20000 };
  static void *p[N];
  static size_t sz[N];
  uint32_t x = 12345;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      x = x * 1103515245u + 12345u;
      uint32_t r = x >> 8;
      sz[i] = (r & 7) == 0 ? (r % 200000) : (r & 3) == 0 ? (r % 8192) : (r % 256);
      p[i] = malloc(lwtest_size(sz[i]));
      ASSERT(p[i] != NULL);
      lwtest_fill(p[i], sz[i] < 64 ? sz[i] : 64, (uintptr_t)i + round);
    }
    for (int i = 0; i < N; i++) {
      size_t n = sz[i] < 64 ? sz[i] : 64;
      EXPECT(lwtest_verify(p[i], n, (uintptr_t)i + round) == n);
    }
    for (int k = 0; k < N; k++) {
      int i = (int)(((uint64_t)k * 7919u) % N); /* 7919 is prime, coprime to N */
      free(p[i]);
    }
  }
}

TEST_MAIN()
