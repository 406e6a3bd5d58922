/* Large blocks: arena spans, page reuse and the footprint limit, own
 * mappings for huge ones, realloc. */
#include <string.h>

#include "internal.h"
#include "testhelper.h"

TEST(large_blocks_come_from_an_arena_that_trim_unmaps) {
  lw_trim(0);
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
  EXPECT_EQ_U(s2.os_unmaps, s1.os_unmaps); /* the last arena stays */
  lw_trim(0);
  lw_stats(&s2);
  EXPECT(s2.os_unmaps > s1.os_unmaps);
  EXPECT(s2.mapped_bytes + (1 << 20) <= s1.mapped_bytes);
}

/* An arena left wholly free keeps its resident pages while the footprint
 * limit allows them (a new block in any arena reuses them); trim unmaps it. */
TEST(a_free_arena_with_resident_pages_stays_until_trim) {
  lw_trim(0);
  enum { N = 5, SZ = 15 << 20 }; /* 75 MiB: two arenas of 64 MiB */
  unsigned char *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = lw_malloc(SZ);
    ASSERT(b[i]);
    memset(b[i], i + 1, SZ);
  }
  lw_stats_t s0, s1, s2;
  lw_stats(&s0);
  for (int i = N; i-- > 0;) lw_free(b[i]);
  lw_stats(&s1);
  EXPECT_EQ_U(s1.os_unmaps, s0.os_unmaps); /* both arenas stay */
  unsigned char *c = lw_malloc(SZ); /* on resident pages: no new mapping */
  ASSERT(c);
  memset(c, 9, SZ);
  lw_stats(&s2);
  EXPECT_EQ_U(s2.os_maps, s1.os_maps);
  lw_free(c);
  lw_trim(0);
  lw_stats(&s2);
  EXPECT(s2.os_unmaps >= s1.os_unmaps + 2);
  EXPECT(lw_check() == 0);
}

TEST(freed_pages_are_reused_and_calloc_still_zeroes) {
  lw_trim(0);
  void *keep = lw_malloc(4 << 20);
  unsigned char *p = lw_malloc(3 << 20);
  ASSERT(p && keep);
  memset(p, 0xff, 3 << 20);
  lw_free(p);
  lw_stats_t s0, s1;
  lw_stats(&s0);
  unsigned char *q = lw_calloc(1, 1 << 20); /* on p's pages, which are resident */
  ASSERT(q);
  EXPECT(q == p);
  for (size_t i = 0; i < (1u << 20); i += 511) EXPECT(q[i] == 0);
  unsigned char *r = lw_malloc(1 << 20); /* the rest of them */
  ASSERT(r);
  EXPECT(r > q && r < p + (3 << 20));
  lw_stats(&s1);
  EXPECT_EQ_U(s1.os_maps, s0.os_maps);
  EXPECT_EQ_U(s1.os_decommits, s0.os_decommits);
  lw_free(q);
  lw_free(r);
  lw_free(keep);
  lw_trim(0);
}

/* A new block that finds no run of resident free pages long enough gets
 * those of free spans elsewhere moved into it (mremap, where the kernel
 * can), instead of faulting fresh pages in; where they cannot move, it
 * faults them in and the free pages past the recent peak of live large
 * bytes (live + resident free) are given back. Either way calloc's block
 * reads as zeros. */
TEST(free_pages_move_into_a_new_block_or_are_given_back) {
  lw_trim(0);
  unsigned char *b[4];
  for (int i = 0; i < 4; i++) {
    b[i] = lw_malloc(2 << 20);
    ASSERT(b[i]);
    memset(b[i], i + 1, 2 << 20);
  }
  lw_stats_t s0, s1;
  lw_free(b[0]); /* two resident free runs of 2 MiB, apart */
  lw_free(b[2]);
  lw_stats(&s0);
  unsigned char *e = lw_calloc(1, 5 << 20); /* fits neither */
  ASSERT(e);
  for (size_t i = 0; i < (5u << 20); i += 4093) EXPECT(e[i] == 0);
  lw_stats(&s1);
  if (s1.os_moves > s0.os_moves) { /* both runs moved in, nothing given back */
    EXPECT_EQ_U(s1.os_moves - s0.os_moves, 2);
    EXPECT_EQ_U(s1.os_decommits, s0.os_decommits);
  } else {
    EXPECT(s1.os_decommits > s0.os_decommits);
  }
  EXPECT(lw_check() == 0);
  lw_free(e);
  lw_free(b[1]);
  lw_free(b[3]);
  lw_trim(0);
}

TEST(realloc_grows_in_place_into_free_pages) {
  lw_trim(0);
  unsigned char *p = lw_malloc(1 << 20);
  ASSERT(p);
  memset(p, 9, 1 << 20);
  unsigned char *q = lw_realloc(p, 3 << 20); /* the arena's free rest follows it */
  EXPECT(q == p);
  for (size_t i = 0; i < (1u << 20); i += 4093) EXPECT(q[i] == 9);
  EXPECT(lw_usable_size(q) >= (3u << 20));
  unsigned char *r = lw_realloc(q, 512 << 10); /* shrinks in place, the tail goes back */
  EXPECT(r == q);
  unsigned char *s = lw_malloc(1 << 20);
  ASSERT(s);
  EXPECT(s > r && s < r + (3 << 20));
  lw_free(s);
  lw_free(r);
}

/* Random large mallocs, reallocs and frees (some past the arena limit),
 * each block marked with its own byte every 64 KiB and at its end:
 * contents survive, calloc zeroes reused pages, and the free spans keep
 * their invariants (lw_check) after every operation. */
static void mark(unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i += 65536) p[i] = v;
  p[n - 1] = v;
}
static bool marked(const unsigned char *p, size_t n, size_t old, unsigned char v) { /* first n of old bytes */
  for (size_t i = 0; i < n && i < old; i += 65536)
    if (p[i] != v) return false;
  return n < old || p[old - 1] == v;
}

TEST(random_large_operations_keep_contents_and_invariants) {
  enum { SLOTS = 24, OPS = 3000 };
  unsigned char *p[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint64_t x = 12345;
  for (int op = 0; op < OPS; op++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    unsigned k = (unsigned)(x >> 33) % SLOTS;
    size_t want = ((size_t)128 << 10) + (size_t)(x >> 20) % ((op % 97 == 0) ? (24u << 20) : (3u << 20));
    if (p[k] && (x & 1)) {
      EXPECT(marked(p[k], size[k], size[k], (unsigned char)k));
      unsigned char *q = lw_realloc(p[k], want);
      ASSERT(q);
      EXPECT(marked(q, want, size[k], (unsigned char)k));
      p[k] = q;
    } else {
      if (p[k]) EXPECT(marked(p[k], size[k], size[k], (unsigned char)k));
      lw_free(p[k]);
      p[k] = (x & 2) ? lw_calloc(1, want) : lw_malloc(want);
      ASSERT(p[k]);
      if (x & 2) EXPECT(marked(p[k], want, want, 0));
    }
    size[k] = want;
    mark(p[k], want, (unsigned char)k);
    lw_check();
  }
  for (unsigned k = 0; k < SLOTS; k++) lw_free(p[k]);
  lw_check();
  lw_trim(0);
  lw_check();
}

TEST(huge_blocks_have_their_own_mapping) {
  lw_stats_t s0, s1;
  lw_stats(&s0);
  unsigned char *p = lw_malloc(40 << 20);
  ASSERT(p);
  p[0] = 1;
  p[(40 << 20) - 1] = 2;
  unsigned char *q = lw_realloc(p, 80 << 20); /* mremap: no copy by us */
  ASSERT(q);
  EXPECT(q[0] == 1 && q[(40 << 20) - 1] == 2);
  lw_free(q);
  lw_stats(&s1);
  EXPECT(s1.os_unmaps > s0.os_unmaps);
  EXPECT_EQ_U(s1.large_bytes, s0.large_bytes);
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
