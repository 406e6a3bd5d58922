/* Embedded mode: one caller-given region, no mmap. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "testhelper.h"

static _Alignas(16) unsigned char arena[1 << 20];

TEST(fills_up_then_null_with_enomem) {
  lw_region_t *r = lw_region_init(arena, sizeof arena);
  ASSERT(r);
  void *p[100000];
  int n = 0;
  while (n < 100000 && (p[n] = lw_region_malloc(r, 100))) {
    EXPECT((uintptr_t)p[n] % 16 == 0);
    EXPECT((unsigned char *)p[n] >= arena && (unsigned char *)p[n] + 100 <= arena + sizeof arena);
    memset(p[n], n & 0xff, 100);
    n++;
  }
  EXPECT(n > 7000);
  EXPECT(errno == ENOMEM);
  lw_region_check(r);
  for (int i = 0; i < n; i++) lw_region_free(r, p[i]);
  lw_region_check(r);
  /* everything merged back: one block of nearly the whole region fits */
  void *big = lw_region_malloc(r, sizeof arena - 16384);
  EXPECT(big != NULL);
  lw_region_free(r, big);
  lw_region_check(r);
}

TEST(memalign_realloc_usable) {
  lw_region_t *r = lw_region_init(arena + 3, sizeof arena - 3); /* unaligned start */
  ASSERT(r);
  void *a = lw_region_memalign(r, 4096, 1000);
  ASSERT(a);
  EXPECT((uintptr_t)a % 4096 == 0);
  EXPECT(lw_region_usable_size(r, a) >= 1000);
  memset(a, 1, 1000);
  void *b = lw_region_realloc(r, a, 50000);
  ASSERT(b);
  EXPECT(((unsigned char *)b)[999] == 1);
  EXPECT(lw_region_memalign(r, 3, 10) == NULL && errno == EINVAL);
  EXPECT(lw_region_malloc(r, (size_t)-1) == NULL && errno == ENOMEM);
  lw_region_free(r, b);
  lw_region_check(r);
}

TEST(too_small_region_is_refused) {
  EXPECT(lw_region_init(arena, 64) == NULL);
  EXPECT(lw_region_init(NULL, 4096) == NULL);
}

TEST_MAIN()
