/* realloc and reallocarray: contents preserved, failures leave the old
 * block intact. realloc(p, 0) is left out: its result is implementation-
 * defined in C17 and undefined in C23. */
#include "api.h"

/* Steps across small -> medium -> large and back. */
static const size_t steps[] = {1, 8, 15, 16, 24, 64, 100, 256, 500, 1000, 1024, 1025,
                               2000, 4000, 4096, 8192, 16384, 60000, 65536, 100000,
                               131072, 131073, 200000, 500000, 1 << 20, (size_t)4 << 20,
                               (size_t)9 << 20};
#define NSTEPS (sizeof steps / sizeof steps[0])

TEST(realloc_null_acts_as_malloc) {
  void *p = realloc(NULL, lwtest_size(100));
  ASSERT(p != NULL);
  EXPECT(malloc_usable_size(p) >= 100);
  lwtest_fill(p, 100, 1);
  free(p);
}

/* `interleave` keeps another allocation after each step, so that in-place
 * growth is blocked and the block has to move. */
static void grow_then_shrink(int interleave) {
  void *keep[2 * NSTEPS];
  size_t nkeep = 0;
  uintptr_t id = 77;
  void *p = malloc(steps[0]);
  ASSERT(p != NULL);
  lwtest_fill(p, steps[0], id);
  size_t cur = steps[0];
  for (int dir = 0; dir < 2; dir++) {
    for (size_t k = 1; k < NSTEPS; k++) {
      size_t next = dir == 0 ? steps[k] : steps[NSTEPS - 1 - k];
      void *q = realloc(p, lwtest_size(next));
      ASSERT(q != NULL);
      size_t kept = cur < next ? cur : next;
      size_t bad = lwtest_verify(q, kept, id);
      if (bad != kept) fprintf(stderr, "realloc %zu -> %zu lost byte %zu\n", cur, next, bad);
      EXPECT(bad == kept);
      EXPECT(lwtest_aligned(q, next >= 16 ? 16 : 8));
      EXPECT(malloc_usable_size(q) >= next);
      lwtest_fill(q, next, ++id); /* new pattern over the whole new size */
      p = q;
      cur = next;
      if (interleave) keep[nkeep++] = malloc(lwtest_size(next / 2 + 1));
    }
  }
  free(p);
  for (size_t i = 0; i < nkeep; i++) free(keep[i]);
}

TEST(realloc_grow_shrink_preserves_contents) { grow_then_shrink(0); }
TEST(realloc_moving_preserves_contents) { grow_then_shrink(1); }

TEST(realloc_same_size_keeps_contents) {
  for (size_t k = 0; k < NSTEPS; k++) {
    void *p = malloc(steps[k]);
    ASSERT(p != NULL);
    lwtest_fill(p, steps[k], k);
    void *q = realloc(p, lwtest_size(steps[k]));
    ASSERT(q != NULL);
    EXPECT(lwtest_verify(q, steps[k], k) == steps[k]);
    free(q);
  }
}

/* Growth by small increments, as string builders do. */
TEST(realloc_small_increments) {
  char *p = NULL;
  size_t n = 0;
  for (size_t next = 1; next <= 300000; next += 1 + next / 8) {
    char *q = realloc(p, lwtest_size(next));
    ASSERT(q != NULL);
    EXPECT(lwtest_verify(q, n, 5) == n);
    lwtest_fill(q, next, 5);
    p = q;
    n = next;
  }
  free(p);
}

static void failed_realloc_keeps_block(size_t size) {
  void *p = malloc(lwtest_size(size));
  ASSERT(p != NULL);
  lwtest_fill(p, size, size);
  const size_t huge[] = {SIZE_MAX / 2, SIZE_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4095};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    void *q = realloc(p, lwtest_size(huge[i]));
    if (q || errno != ENOMEM) fprintf(stderr, "realloc(%zu-byte block, %#zx) = %p errno %d\n", size, huge[i], q, errno);
    EXPECT(q == NULL);
    if (q) { p = q; continue; } /* (never taken when the test passes) */
    EXPECT(errno == ENOMEM);
    EXPECT(lwtest_verify(p, size, size) == size);
  }
  free(p);
}

TEST(failed_realloc_keeps_small_block) { failed_realloc_keeps_block(40); }
TEST(failed_realloc_keeps_medium_block) { failed_realloc_keeps_block(5000); }
TEST(failed_realloc_keeps_large_block) { failed_realloc_keeps_block((size_t)2 << 20); }

TEST(reallocarray_resizes_and_preserves) {
  int *a = reallocarray(NULL, lwtest_size(10), sizeof(int));
  ASSERT(a != NULL);
  for (int i = 0; i < 10; i++) a[i] = i * i;
  int *b = reallocarray(a, lwtest_size(100000), sizeof(int));
  ASSERT(b != NULL);
  for (int i = 0; i < 10; i++) EXPECT(b[i] == i * i);
  free(b);
}

TEST(reallocarray_overflow_keeps_block) {
  void *p = malloc(lwtest_size(300));
  ASSERT(p != NULL);
  lwtest_fill(p, 300, 3);
  const size_t pairs[][2] = {{SIZE_MAX / 2, 3}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 33, (size_t)1 << 33}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *q = reallocarray(p, lwtest_size(pairs[i][0]), lwtest_size(pairs[i][1]));
    EXPECT(q == NULL);
    if (q) { p = q; continue; } /* (never taken when the test passes) */
    EXPECT(errno == ENOMEM);
    EXPECT(lwtest_verify(p, 300, 3) == 300);
  }
  free(p);
}

TEST_MAIN()
