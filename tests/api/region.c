/* Embedded mode: the medium allocator inside one caller-given region. */
/* lw_* are called by name; malloc itself may be anyone's (static link). */
#define LWTEST_NO_ALLOCATOR_CHECK
#include "api.h"
#include "lwmalloc.h"

#define REGION_SIZE ((size_t)1 << 20)
static _Alignas(64) unsigned char region_mem[REGION_SIZE];

/* Fills the region with `size`-byte blocks until NULL; returns the count. */
static size_t fill(lw_region_t *r, void **blocks, size_t cap, size_t size) {
  size_t n = 0;
  while (n < cap) {
    void *p = lw_region_malloc(r, lwtest_size(size));
    if (!p) break;
    EXPECT((unsigned char *)p >= region_mem && (unsigned char *)p + size <= region_mem + REGION_SIZE);
    EXPECT(lwtest_aligned(p, 16));
    EXPECT(lw_region_usable_size(r, p) >= size);
    lwtest_fill(p, size, n);
    blocks[n++] = p;
  }
  return n;
}

TEST(region_fill_free_reuse) {
  static void *blocks[REGION_SIZE / 16];
  lw_region_t *r = lw_region_init(region_mem, REGION_SIZE);
  ASSERT(r != NULL);
  EXPECT(lw_region_check(r) == 0);
  const size_t sizes[] = {1000, 24, 5000, 100};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t size = sizes[s];
    size_t n = fill(r, blocks, REGION_SIZE / 16, size);
    /* A full region holds nearly 1 MiB of payload (headers are compact). */
    if (n * size < REGION_SIZE / 2) fprintf(stderr, "region held only %zu x %zu bytes\n", n, size);
    EXPECT(n * size >= REGION_SIZE / 2);
    EXPECT(lw_region_check(r) == 0);
    for (size_t i = 0; i < n; i++) EXPECT(lwtest_verify(blocks[i], size, i) == size);
    for (size_t i = 0; i < n; i += 2) lw_region_free(r, blocks[i]); /* holes first */
    EXPECT(lw_region_check(r) == 0);
    for (size_t i = 1; i < n; i += 2) EXPECT(lwtest_verify(blocks[i], size, i) == size);
    for (size_t i = 1; i < n; i += 2) lw_region_free(r, blocks[i]);
    EXPECT(lw_region_check(r) == 0);
    /* Everything free again: the neighbours must merge into one big chunk. */
    void *whole = lw_region_malloc(r, REGION_SIZE / 2);
    if (!whole) fprintf(stderr, "after freeing %zu-byte blocks, no 512 KiB block\n", size);
    EXPECT(whole != NULL);
    lw_region_free(r, whole);
  }
  errno = 0;
  EXPECT(lw_region_malloc(r, REGION_SIZE) == NULL);
  EXPECT(lw_region_malloc(r, SIZE_MAX) == NULL);
  EXPECT(lw_region_check(r) == 0);
}

TEST(region_realloc_preserves) {
  lw_region_t *r = lw_region_init(region_mem, REGION_SIZE);
  ASSERT(r != NULL);
  void *other = lw_region_malloc(r, 100);
  void *p = lw_region_realloc(r, NULL, 10);
  ASSERT(p != NULL);
  lwtest_fill(p, 10, 10); /* id == cur, as verified below */
  size_t cur = 10;
  for (size_t next = 30; next < REGION_SIZE / 4; next = next * 2 + 7) {
    void *keep = lw_region_malloc(r, 64); /* block in-place growth now and then */
    void *q = lw_region_realloc(r, p, next);
    ASSERT(q != NULL);
    EXPECT(lwtest_verify(q, cur, cur) == cur);
    lwtest_fill(q, next, next);
    p = q;
    cur = next;
    lw_region_free(r, keep);
  }
  void *q = lw_region_realloc(r, p, 50); /* shrink */
  ASSERT(q != NULL);
  EXPECT(lwtest_verify(q, 50, cur) == 50);
  EXPECT(lw_region_realloc(r, q, REGION_SIZE * 2) == NULL); /* fails, q intact */
  EXPECT(lwtest_verify(q, 50, cur) == 50);
  lw_region_free(r, q);
  lw_region_free(r, other);
  EXPECT(lw_region_check(r) == 0);
}

TEST(region_memalign) {
  lw_region_t *r = lw_region_init(region_mem, REGION_SIZE);
  ASSERT(r != NULL);
  void *p[64];
  int n = 0;
  for (size_t a = 16; a <= 4096; a <<= 1) {
    for (size_t size = 1; size < 3000; size = size * 5 + 3) {
      void *q = lw_region_memalign(r, a, size);
      ASSERT(q != NULL);
      EXPECT(lwtest_aligned(q, a));
      EXPECT(lw_region_usable_size(r, q) >= size);
      lwtest_fill(q, size, a);
      if (n < 64) p[n++] = q; else lw_region_free(r, q);
    }
  }
  EXPECT(lw_region_check(r) == 0);
  for (int i = 0; i < n; i++) lw_region_free(r, p[i]);
  EXPECT(lw_region_check(r) == 0);
  void *whole = lw_region_malloc(r, REGION_SIZE / 2);
  EXPECT(whole != NULL);
  lw_region_free(r, whole);
}

TEST_MAIN()
