/* calloc: zeroed memory, also when reused, and overflow of count*size. */
#include "api.h"

static const size_t calloc_sizes[] = {1, 8, 16, 24, 100, 512, 1000, 1024, 1500, 4096,
                                      10000, 65536, 100000, 131072, 200000, 1 << 20,
                                      (size_t)16 << 20};

TEST(calloc_returns_zeroed_memory) {
  for (size_t i = 0; i < sizeof calloc_sizes / sizeof calloc_sizes[0]; i++) {
    size_t n = calloc_sizes[i];
    unsigned char *p = calloc(lwtest_size(1), n);
    ASSERT(p != NULL);
    EXPECT(lwtest_aligned(p, n >= 16 ? 16 : 8));
    EXPECT(lwtest_all_zero(p, n));
    free(p);
  }
}

/* Dirty a block, free it, and calloc the same size: the allocator will
 * usually hand back the same (dirty) memory, which must come back zeroed. */
TEST(calloc_zeroes_reused_memory) {
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < sizeof calloc_sizes / sizeof calloc_sizes[0]; i++) {
      size_t n = calloc_sizes[i];
      if (round >= 3 && n >= ((size_t)1 << 20)) continue; /* big ones: a few rounds suffice */
      unsigned char *d = malloc(lwtest_size(n));
      ASSERT(d != NULL);
      memset(lwtest_opaque(d), 0xA5, malloc_usable_size(d));
      free(d);
      unsigned char *p = calloc(lwtest_size(n), 1);
      ASSERT(p != NULL);
      if (!lwtest_all_zero(p, n)) fprintf(stderr, "calloc(%zu, 1) not zeroed (reused %d)\n", n, p == d);
      EXPECT(lwtest_all_zero(p, n));
      free(p);
    }
  }
}

/* Many small dirty frees first, then callocs: the small pools' reuse path. */
TEST(calloc_zeroes_reused_small_slots) {
  enum { N = 4096 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(lwtest_size(48));
    ASSERT(p[i] != NULL);
    memset(lwtest_opaque(p[i]), 0xFF, 48);
  }
  for (int i = 0; i < N; i++) free(p[i]);
  for (int i = 0; i < N; i++) {
    p[i] = calloc(lwtest_size(6), 8);
    ASSERT(p[i] != NULL);
    EXPECT(lwtest_all_zero(p[i], 48));
  }
  for (int i = 0; i < N; i++) free(p[i]);
}

TEST(calloc_overflow_fails_with_enomem) {
  const size_t pairs[][2] = {
      {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
      {((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1}, {SIZE_MAX, SIZE_MAX}, {65537, SIZE_MAX / 65536},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = calloc(lwtest_size(pairs[i][0]), lwtest_size(pairs[i][1]));
    if (p || errno != ENOMEM) fprintf(stderr, "calloc(%#zx, %#zx) = %p errno %d\n", pairs[i][0], pairs[i][1], p, errno);
    EXPECT(p == NULL);
    EXPECT(errno == ENOMEM);
    free(p);
  }
}

/* count*size fits in size_t but no address space can hold it. */
TEST(calloc_impossible_size_fails_with_enomem) {
  errno = 0;
  void *p = calloc(lwtest_size(SIZE_MAX / 16), 8);
  EXPECT(p == NULL);
  EXPECT(errno == ENOMEM);
  free(p);
}

TEST(calloc_zero_count_or_size_is_freeable) {
  void *a = calloc(lwtest_size(0), 16);
  void *b = calloc(16, lwtest_size(0));
  void *c = calloc(lwtest_size(0), lwtest_size(0));
  EXPECT(a != NULL && b != NULL && c != NULL);
  EXPECT(a != b && b != c && a != c);
  free(a);
  free(b);
  free(c);
}

TEST_MAIN()
