/* posix_memalign, aligned_alloc, memalign, valloc, pvalloc. */
#include "api.h"

static const size_t align_sizes[] = {1, 7, 16, 100, 1000, 4000, 70000, 300000};
#define NSIZES (sizeof align_sizes / sizeof align_sizes[0])
#define MAX_ALIGN ((size_t)1 << 20)

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }
static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Checks one aligned block and frees it; all of its usable bytes are written. */
static void check_block(void *p, size_t align, size_t size, const char *fn) {
  if (!p) { fprintf(stderr, "%s(%zu, %zu) = NULL\n", fn, align, size); EXPECT(p != NULL); return; }
  if (!lwtest_aligned(p, align)) fprintf(stderr, "%s(%zu, %zu) = %p misaligned\n", fn, align, size, p);
  EXPECT(lwtest_aligned(p, align));
  size_t u = malloc_usable_size(p);
  EXPECT(u >= size);
  lwtest_fill(p, u, align + size);
  EXPECT(lwtest_verify(p, u, align + size) == u);
  free(p);
}

TEST(posix_memalign_rejects_bad_alignment) {
  const size_t bad[] = {0, 1, 2, 4, sizeof(void *) / 2, 3 * sizeof(void *), 24, 48, 100, 4097, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *sentinel = (void *)&bad;
    void *p = sentinel;
    int rc = posix_memalign(&p, lwtest_size(bad[i]), 64);
    if (rc != EINVAL) fprintf(stderr, "posix_memalign(align %zu) = %d\n", bad[i], rc);
    EXPECT(rc == EINVAL);
    EXPECT(p == sentinel); /* POSIX: memptr is not modified on failure */
  }
}

TEST(posix_memalign_every_power_of_two) {
  for (size_t a = sizeof(void *); a <= MAX_ALIGN; a <<= 1) {
    for (size_t i = 0; i < NSIZES; i++) {
      void *p = NULL;
      int rc = posix_memalign(&p, lwtest_size(a), lwtest_size(align_sizes[i]));
      EXPECT(rc == 0);
      check_block(p, a, align_sizes[i], "posix_memalign");
    }
  }
}

TEST(posix_memalign_zero_size) {
  void *p = NULL;
  EXPECT(posix_memalign(&p, 64, lwtest_size(0)) == 0);
  EXPECT(lwtest_aligned(p, 64)); /* NULL or a freeable, aligned pointer */
  free(p);
}

TEST(posix_memalign_impossible_size_is_enomem) {
  void *sentinel = (void *)&sentinel, *p = sentinel;
  EXPECT(posix_memalign(&p, 64, lwtest_size(SIZE_MAX - 100)) == ENOMEM);
  EXPECT(p == sentinel);
  EXPECT(posix_memalign(&p, 4096, lwtest_size((size_t)PTRDIFF_MAX)) == ENOMEM);
}

/* Alignment requests kept live together: a mix of aligned blocks must not
 * overlap (their usable ranges get distinct patterns). */
TEST(aligned_blocks_live_together) {
  enum { N = 400 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    size_t a = (size_t)16 << (i % 9), size = 1 + (size_t)(i * 37) % 5000;
    ASSERT(posix_memalign(&p[i], a, size) == 0);
    EXPECT(lwtest_aligned(p[i], a));
    lwtest_fill(p[i], malloc_usable_size(p[i]), (uintptr_t)i);
  }
  for (int i = 0; i < N; i++) {
    size_t u = malloc_usable_size(p[i]);
    EXPECT(lwtest_verify(p[i], u, (uintptr_t)i) == u);
    free(p[i]);
  }
}

TEST(aligned_alloc_power_of_two) {
  for (size_t a = 1; a <= MAX_ALIGN; a <<= 1) {
    for (size_t k = 1; k <= 3; k++) /* size a multiple of the alignment (C11) */
      check_block(aligned_alloc(lwtest_size(a), a * k), a, a * k, "aligned_alloc");
  }
  errno = 0;
  EXPECT(aligned_alloc(64, lwtest_size(SIZE_MAX - 63)) == NULL);
  EXPECT(errno == ENOMEM);
}

TEST(memalign_power_of_two) {
  for (size_t a = 1; a <= MAX_ALIGN; a <<= 1)
    for (size_t i = 0; i < NSIZES; i++)
      check_block(memalign(lwtest_size(a), align_sizes[i]), a, align_sizes[i], "memalign");
  errno = 0;
  EXPECT(memalign(4096, lwtest_size(SIZE_MAX / 2)) == NULL);
  EXPECT(errno == ENOMEM);
}

TEST(valloc_is_page_aligned) {
  size_t pg = page_size();
  for (size_t i = 0; i < NSIZES; i++)
    check_block(valloc(lwtest_size(align_sizes[i])), pg, align_sizes[i], "valloc");
  errno = 0;
  EXPECT(valloc(lwtest_size(SIZE_MAX - 10)) == NULL);
  EXPECT(errno == ENOMEM);
}

/* pvalloc rounds the size up to whole pages: the usable size covers them. */
TEST(pvalloc_rounds_to_pages) {
  size_t pg = page_size();
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = align_sizes[i];
    void *p = pvalloc(lwtest_size(n));
    ASSERT(p != NULL);
    if (malloc_usable_size(p) < round_up(n, pg))
      fprintf(stderr, "pvalloc(%zu): usable %zu < %zu\n", n, malloc_usable_size(p), round_up(n, pg));
    EXPECT(malloc_usable_size(p) >= round_up(n, pg));
    check_block(p, pg, round_up(n, pg), "pvalloc");
  }
  errno = 0;
  EXPECT(pvalloc(lwtest_size(SIZE_MAX - 10)) == NULL);
  EXPECT(errno == ENOMEM);
}

TEST_MAIN()
