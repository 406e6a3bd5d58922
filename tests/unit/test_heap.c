/* Medium chunks: deferred coalescing, bounded runs, in-place realloc. */
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "testhelper.h"

static lw_stats_t stats(void) {
  lw_stats_t s;
  lw_stats(&s);
  return s;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

TEST(frees_are_deferred_not_merged) {
  lw_trim(0);
  lw_stats_t s0 = stats();
  void *a = lw_malloc(5000), *b = lw_malloc(5000), *c = lw_malloc(5000);
  ASSERT(a && b && c);
  EXPECT(lw_segment_of(a)->kind == LW_SEG_MEDIUM);
  lw_free(a);
  lw_free(b);
  lw_stats_t s1 = stats();
  EXPECT_EQ_U(s1.unmerged_bytes - s0.unmerged_bytes, 2 * (lw_usable_size(b) + LW_CHUNK_OVERHEAD));
  EXPECT_EQ_U(s1.coalesce_runs, s0.coalesce_runs);
  lw_check();
  /* the same size comes straight back from its quick list */
  void *d = lw_malloc(5000);
  EXPECT(d == a || d == b);
  lw_free(d);
  lw_free(c);
  lw_trim(0);
  lw_stats_t s2 = stats();
  EXPECT_EQ_U(s2.unmerged_bytes, 0);
  EXPECT(s2.coalesce_runs > s0.coalesce_runs);
  lw_check();
}

/* A heap over a fixed buffer, so that nothing but parked chunks exists. */
static _Alignas(16) unsigned char span[1 << 20];

TEST(a_miss_merges_neighbours_in_bounded_runs) {
  static lw_heap_t h;
  _lw_heap_init(&h, 0);
  _lw_heap_add_span(&h, span, sizeof span);
  h.unmerged_limit = (size_t)-1; /* only misses may merge here */
  void *p[400];
  int n = 0;
  while (n < 400 && (p[n] = _lw_heap_alloc(&h, 2500, LW_ALIGN))) n++;
  EXPECT(n > 300);
  for (int i = 0; i < n; i++) _lw_heap_free(&h, p[i]);
  EXPECT_EQ_U(h.coalesce_runs, 0);
  EXPECT(h.unmerged_bytes >= (size_t)n * 2500);
  _lw_heap_check(&h);
  /* nothing parked fits 100 KiB: one bounded run merges enough neighbours */
  void *big = _lw_heap_alloc(&h, 100000, LW_ALIGN);
  ASSERT(big);
  EXPECT_EQ_U(h.coalesce_runs, 1);
  EXPECT(h.coalesced_chunks <= 64);
  EXPECT(h.unmerged_bytes > 0); /* the rest stays parked: no full drain */
  _lw_heap_check(&h);
  _lw_heap_free(&h, big);
  EXPECT_EQ_U(_lw_heap_trim(&h), 0);
  EXPECT_EQ_U(h.unmerged_bytes, 0);
  _lw_heap_check(&h);
}

TEST(unmerged_bytes_stay_bounded) {
  enum { N = 4000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = lw_malloc(2100 + next_rand() % 30000);
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_stats_t s = stats();
  EXPECT(s.unmerged_bytes <= s.free_bytes + s.unmerged_bytes);
  EXPECT(s.unmerged_bytes <= ((size_t)16 << 20) / 8 + 64 * 130000);
  lw_check();
}

TEST(random_medium_workload_keeps_invariants) {
  enum { N = 512 };
  static void *p[N];
  static size_t len[N];
  for (int op = 0; op < 40000; op++) {
    int i = (int)(next_rand() % N);
    if (p[i]) {
      for (size_t k = 0; k < len[i]; k += 997) EXPECT(((unsigned char *)p[i])[k] == (unsigned char)(i + k));
      if (next_rand() % 4 == 0) {
        size_t nl = 2049 + next_rand() % 60000;
        void *q = lw_realloc(p[i], nl);
        ASSERT(q);
        size_t keep = nl < len[i] ? nl : len[i];
        for (size_t k = 0; k < keep; k += 997) EXPECT(((unsigned char *)q)[k] == (unsigned char)(i + k));
        p[i] = q;
        len[i] = nl;
        for (size_t k = 0; k < nl; k += 997) ((unsigned char *)q)[k] = (unsigned char)(i + k);
      } else {
        lw_free(p[i]);
        p[i] = NULL;
      }
    } else {
      size_t a = next_rand() % 8 == 0 ? (size_t)64 << (next_rand() % 7) : 0;
      len[i] = 2049 + next_rand() % 60000;
      p[i] = a ? lw_memalign(a, len[i]) : lw_malloc(len[i]);
      ASSERT(p[i]);
      if (a) EXPECT((uintptr_t)p[i] % a == 0);
      EXPECT(lw_usable_size(p[i]) >= len[i]);
      for (size_t k = 0; k < len[i]; k += 997) ((unsigned char *)p[i])[k] = (unsigned char)(i + k);
    }
    if (op % 2000 == 0) lw_check();
  }
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_check();
  lw_trim(0);
  lw_stats_t s = stats();
  EXPECT_EQ_U(s.medium_bytes, 0);
  EXPECT_EQ_U(s.unmerged_bytes, 0);
}

TEST(realloc_grows_in_place_into_a_free_neighbour) {
  lw_trim(0);
  void *a = lw_malloc(4000), *b = lw_malloc(4000), *c = lw_malloc(4000);
  memset(a, 7, 4000);
  lw_free(b);
  void *a2 = lw_realloc(a, 7000);
  EXPECT(a2 == a);
  EXPECT(((unsigned char *)a2)[3999] == 7);
  void *a3 = lw_realloc(a2, 3000); /* shrinks in place */
  EXPECT(a3 == a);
  lw_check();
  lw_free(a3);
  lw_free(c);
}

TEST(empty_segments_are_returned) {
  lw_trim(0);
  lw_stats_t s0 = stats();
  enum { N = 200 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = lw_malloc(60000); /* ~12 MiB: several segments */
  lw_stats_t s1 = stats();
  EXPECT(s1.mapped_bytes >= s0.mapped_bytes + 8 * LW_SEG_SIZE / 4);
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_trim(0);
  lw_stats_t s2 = stats();
  EXPECT(s2.mapped_bytes <= s0.mapped_bytes + LW_SEG_SIZE);
  lw_check();
}

/* Pages of [p, p + size) that are resident. */
static size_t resident_pages(void *p, size_t size) {
  uintptr_t lo = lw_align_up((uintptr_t)p, _lw_g.os_page), hi = lw_align_down((uintptr_t)p + size, _lw_g.os_page);
  unsigned char vec[64];
  size_t n = (hi - lo) / _lw_g.os_page, in = 0;
  bool ok = hi > lo && n <= sizeof vec && mincore((void *)lo, hi - lo, vec) == 0;
  EXPECT(ok);
  if (!ok) return 0;
  for (size_t i = 0; i < n; i++) in += vec[i] & 1;
  return in;
}

TEST(trim_gives_back_the_pages_of_small_free_chunks) {
  /* merged free chunks below LW_RELEASE keep their pages (the next
   * allocations reuse them), but malloc_trim gives back every whole page
   * inside every free chunk */
  enum { N = 8, SIZE = 100000 };
  if (_lw_g.os_page * 4 > SIZE) return; /* 64 KiB pages: too few inside a medium chunk */
  lw_trim(0);
  void *big[N], *pin[N];
  for (int i = 0; i < N; i++) {
    big[i] = lw_malloc(SIZE);
    pin[i] = lw_malloc(3000); /* keeps the freed neighbours apart */
    ASSERT(big[i] && pin[i]);
    EXPECT(lw_segment_of(big[i])->kind == LW_SEG_MEDIUM);
    memset(big[i], 1, SIZE);
  }
  EXPECT(SIZE + 2 * 3000 < _lw_g.release_min); /* each merged chunk stays below it */
  for (int i = 0; i < N; i++) lw_free(big[i]);
  lw_heap_t *h = lw_segment_of(pin[0])->heap;
  while (h->unmerged_bytes) _lw_coalesce_run(h, 1000, 0);
  size_t kept = 0, left = 0;
  for (int i = 0; i < N; i++) kept += resident_pages(big[i], SIZE);
  lw_trim(0);
  for (int i = 0; i < N; i++) left += resident_pages(big[i], SIZE);
  EXPECT(kept >= N * (SIZE / _lw_g.os_page - 1));
  EXPECT_EQ_U(left, 0);
  lw_check();
  for (int i = 0; i < N; i++) lw_free(pin[i]);
}

TEST_MAIN()
