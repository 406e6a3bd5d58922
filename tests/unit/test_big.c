/* Large blocks: direct mappings, mremap growth, tags. */
#include <string.h>

#include "internal.h"
#include "testhelper.h"

TEST(large_blocks_are_mapped_and_unmapped) {
  lw_stats_t s0, s1, s2;
  lw_stats(&s0);
  void *p = lw_malloc(1 << 20);
  ASSERT(p);
  EXPECT(lw_segment_of(p) == NULL);
  EXPECT((uintptr_t)p % 16 == 0);
  EXPECT(lw_usable_size(p) >= (1 << 20));
  memset(p, 3, lw_usable_size(p));
  lw_stats(&s1);
  EXPECT(s1.large_bytes >= s0.large_bytes + (1 << 20));
  lw_free(p);
  lw_stats(&s2);
  EXPECT_EQ_U(s2.large_bytes, s0.large_bytes);
  /* the mapping waits in the cache; a trim unmaps it */
  lw_trim(0);
  lw_stats(&s2);
  EXPECT(s2.os_unmaps > s1.os_unmaps);
  EXPECT(s2.mapped_bytes < s1.mapped_bytes);
}

TEST(cached_mappings_are_reused_and_calloc_still_zeroes) {
  lw_trim(0);
  void *keep = lw_malloc(4 << 20); /* the cache may hold as much as is live */
  unsigned char *p = lw_malloc(3 << 20);
  ASSERT(p && keep);
  memset(p, 0xff, 3 << 20);
  lw_free(p);
  lw_stats_t s0, s1;
  lw_stats(&s0);
  unsigned char *q = lw_calloc(1, 1 << 20); /* cut from the cached 3 MiB */
  ASSERT(q);
  lw_stats(&s1);
  EXPECT_EQ_U(s1.os_maps, s0.os_maps);
  for (size_t i = 0; i < (1u << 20); i += 511) EXPECT(q[i] == 0);
  unsigned char *r = lw_malloc(1 << 20); /* the rest of it */
  ASSERT(r);
  lw_stats(&s1);
  EXPECT_EQ_U(s1.os_maps, s0.os_maps);
  lw_free(q);
  lw_free(r);
  lw_free(keep);
  lw_trim(0);
}

TEST(the_cache_holds_no_more_than_the_live_large_bytes) {
  lw_trim(0);
  lw_stats_t s0, s1;
  lw_stats(&s0);
  void *p = lw_malloc(8 << 20);
  ASSERT(p);
  lw_free(p); /* nothing else large is live: 8 MiB is over the limit */
  lw_stats(&s1);
  EXPECT(s1.mapped_bytes <= s0.mapped_bytes);
}

TEST(realloc_grows_by_remap_and_keeps_contents) {
  size_t n = 200000;
  unsigned char *p = lw_malloc(n);
  ASSERT(p);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7);
  for (int k = 0; k < 6; k++) {
    size_t m = n * 2;
    unsigned char *q = lw_realloc(p, m);
    ASSERT(q);
    for (size_t i = 0; i < n; i += 4093) EXPECT(q[i] == (unsigned char)(i * 7));
    for (size_t i = n; i < m; i++) q[i] = (unsigned char)(i * 7);
    p = q;
    n = m;
  }
  unsigned char *small = lw_realloc(p, 100); /* shrinks into a pool slot */
  ASSERT(small);
  EXPECT(lw_segment_of(small) != NULL);
  for (size_t i = 0; i < 100; i++) EXPECT(small[i] == (unsigned char)(i * 7));
  lw_free(small);
}

TEST(large_aligned) {
  for (size_t a = 4096; a <= ((size_t)1 << 22); a <<= 2) {
    void *p = lw_memalign(a, 300000);
    ASSERT(p);
    EXPECT((uintptr_t)p % a == 0);
    memset(p, 1, 300000);
    lw_free(p);
  }
}

TEST(calloc_of_large_is_zero) {
  unsigned char *p = lw_calloc(1, 5 << 20);
  ASSERT(p);
  for (size_t i = 0; i < (5u << 20); i += 4096) EXPECT(p[i] == 0);
  lw_free(p);
}

TEST_MAIN()
