/* The lw_* API of lwmalloc.h, called directly (linked against the shared
 * and the static library): the same semantics as the standard names, plus
 * statistics and the invariant checker. */
/* lw_* are called by name; malloc itself may be anyone's (static link). */
#define LWTEST_NO_ALLOCATOR_CHECK
#include "api.h"
#include "lwmalloc.h"

TEST(lw_family_basic_semantics) {
  void *z = lw_malloc(lwtest_size(0));
  EXPECT(z != NULL);
  lw_free(z);
  lw_free(NULL);

  for (size_t n = 1; n < ((size_t)4 << 20); n = n * 3 + 1) {
    void *p = lw_malloc(lwtest_size(n));
    ASSERT(p != NULL);
    EXPECT(lwtest_aligned(p, n >= 16 ? 16 : 8));
    size_t u = lw_usable_size(p);
    EXPECT(u >= n);
    lwtest_fill(p, u, n);
    p = lw_realloc(p, n * 2);
    ASSERT(p != NULL);
    EXPECT(lwtest_verify(p, n, n) == n);
    lw_free_sized(p, n * 2);
  }
  EXPECT_EQ_U(lw_usable_size(NULL), 0);
}

TEST(lw_calloc_and_overflow) {
  unsigned char *p = lw_calloc(lwtest_size(1000), 3);
  ASSERT(p != NULL);
  EXPECT(lwtest_all_zero(p, 3000));
  lw_free(p);
  errno = 0;
  EXPECT(lw_calloc(lwtest_size(SIZE_MAX / 2 + 1), 2) == NULL);
  EXPECT(errno == ENOMEM);
  errno = 0;
  EXPECT(lw_malloc(lwtest_size(SIZE_MAX)) == NULL);
  EXPECT(errno == ENOMEM);
  void *q = lw_malloc(lwtest_size(64));
  ASSERT(q != NULL);
  lwtest_fill(q, 64, 4);
  errno = 0;
  void *r = lw_reallocarray(q, lwtest_size(SIZE_MAX / 4), 8);
  EXPECT(r == NULL);
  EXPECT(errno == ENOMEM);
  if (!r) EXPECT(lwtest_verify(q, 64, 4) == 64);
  lw_free(r ? r : q);
}

TEST(lw_aligned_family) {
  for (size_t a = 8; a <= ((size_t)1 << 16); a <<= 1) {
    void *p = NULL;
    EXPECT(lw_posix_memalign(&p, a, 100) == 0);
    EXPECT(p != NULL && lwtest_aligned(p, a));
    lw_free(p);
    void *q = lw_memalign(a, 3000);
    EXPECT(q != NULL && lwtest_aligned(q, a));
    lw_free_aligned_sized(q, a, 3000);
    void *r = lw_aligned_alloc(a, a * 2);
    EXPECT(r != NULL && lwtest_aligned(r, a));
    lw_free_aligned_sized(r, a, a * 2);
  }
  void *p = NULL;
  EXPECT(lw_posix_memalign(&p, 24, 100) == EINVAL);
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  void *v = lw_valloc(10);
  EXPECT(v != NULL && lwtest_aligned(v, pg));
  lw_free(v);
  void *pv = lw_pvalloc(10);
  EXPECT(pv != NULL && lwtest_aligned(pv, pg) && lw_usable_size(pv) >= pg);
  lw_free(pv);
}

/* Statistics follow this thread's own allocations exactly enough. */
TEST(lw_stats_follow_allocations) {
  enum { N = 1000 };
  static void *p[N];
  static lw_stats_t s0, s1, s2;
  lw_stats(&s0);
  for (int i = 0; i < N; i++) {
    p[i] = lw_malloc(lwtest_size(100));
    ASSERT(p[i] != NULL);
  }
  void *big = lw_malloc(lwtest_size((size_t)8 << 20));
  ASSERT(big != NULL);
  lw_stats(&s1);
  EXPECT(s1.live_bytes >= s0.live_bytes + (size_t)N * 100 + ((size_t)8 << 20));
  /* the first few blocks of a class per thread may come from the medium
   * heap (lwmalloc's warm-up, see lib/api.c), the rest from pools */
  EXPECT(s1.small_bytes + s1.medium_bytes >= s0.small_bytes + s0.medium_bytes + (size_t)N * 100);
  EXPECT(s1.large_bytes >= s0.large_bytes + ((size_t)8 << 20));
  EXPECT(s1.live_bytes == s1.small_bytes + s1.medium_bytes + s1.large_bytes);
  EXPECT(s1.mapped_bytes >= s1.live_bytes);
  EXPECT(s1.committed_bytes <= s1.mapped_bytes);
  EXPECT(s1.os_maps >= s0.os_maps);
  EXPECT(s1.nclasses > 0 && s1.nclasses <= LW_MAX_CLASSES);
  uint64_t used = 0;
  for (uint32_t c = 0; c < s1.nclasses && c < LW_MAX_CLASSES; c++) {
    EXPECT(s1.classes[c].slots_used <= s1.classes[c].slots_total);
    EXPECT(c == 0 || s1.classes[c].slot_size > s1.classes[c - 1].slot_size);
    used += s1.classes[c].slots_used;
  }
  EXPECT(used + 16 >= N); /* warm-up: at most 8 per class and thread */
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_free(big);
  lw_stats(&s2);
  EXPECT(s2.live_bytes + (size_t)N * 100 + ((size_t)8 << 20) <= s1.live_bytes);
  EXPECT(s2.os_unmaps >= s1.os_unmaps);
  EXPECT(s2.coalesce_runs >= s1.coalesce_runs);
}

static void collect(const char *text, void *arg) {
  size_t *len = arg;
  *len += strlen(text);
}

TEST(lw_stats_print_and_check) {
  size_t len = 0;
  lw_stats_print(collect, &len);
  EXPECT(len > 0);
  EXPECT(lw_check() == 0);
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = lw_malloc((size_t)i * 97);
  for (int i = 0; i < 100; i += 2) lw_free(p[i]);
  EXPECT(lw_check() == 0);
  for (int i = 1; i < 100; i += 2) lw_free(p[i]);
  int rc = lw_trim(0);
  EXPECT(rc == 0 || rc == 1);
  EXPECT(lw_check() == 0);
}

TEST_MAIN()
