/* Small pools: O(1) slots, lazy carving, reuse, page release. */
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "internal.h"
#include "testhelper.h"

static void *first_block(void *out) {
  *(void **)out = lw_malloc(72);
  return NULL;
}

/* Past the warm-up (the first LW_WARMUP blocks of each class come from
 * the medium heap), every class of this thread has a pool page. */
static void warm_up_all_classes(void) {
  void *p[LW_WARMUP];
  for (unsigned c = 0; c < LW_NSMALL; c++) {
    for (int i = 0; i < LW_WARMUP; i++) p[i] = lw_malloc(_lw_class_size[c]);
    for (int i = 0; i < LW_WARMUP; i++) lw_free(p[i]);
    void *q = lw_malloc(_lw_class_size[c]);
    lw_free(q);
  }
}

static uint64_t class_used(unsigned c) {
  lw_stats_t s;
  lw_stats(&s);
  return s.classes[c].slots_used;
}

TEST(slots_are_distinct_aligned_and_writable) {
  enum { N = 5000 };
  static void *p[N];
  warm_up_all_classes();
  for (unsigned c = LW_CHECKED ? 1 : 0; c < LW_NSMALL; c++) { /* checked: no 8-byte class */
    size_t sz = _lw_class_size[c];
    uint64_t before = class_used(c);
    for (int i = 0; i < N; i++) {
      p[i] = lw_malloc(sz);
      ASSERT(p[i]);
      EXPECT(((uintptr_t)p[i] % (sz >= 16 ? 16 : 8)) == 0);
      EXPECT_EQ_U(lw_usable_size(p[i]), sz);
      memset(p[i], (int)i, sz);
    }
    EXPECT_EQ_U(class_used(c) - before, N);
    for (int i = 0; i < N; i++) EXPECT(((unsigned char *)p[i])[sz - 1] == (unsigned char)i);
    lw_check();
    for (int i = 0; i < N; i += 2) lw_free(p[i]);
    lw_check();
    for (int i = 1; i < N; i += 2) lw_free(p[i]);
    EXPECT_EQ_U(class_used(c), before);
    lw_check();
  }
}

/* The classes past LW_SMALL_MAX serve aligned requests only: a request
 * aligned to the largest power of two dividing the slot size takes a slot
 * of the class, aligned; plain malloc of the same size does not. */
TEST(aligned_classes_serve_aligned_requests) {
  enum { N = 40 };
  static void *p[N];
  for (unsigned c = LW_NSMALL; c < LW_NCLASSES; c++) {
    size_t sz = _lw_class_size[c], align = sz & -sz;
    uint64_t before = class_used(c);
    for (int i = 0; i < N; i++) {
      ASSERT(lw_posix_memalign(&p[i], align, sz - 16) == 0);
      EXPECT(((uintptr_t)p[i] & (align - 1)) == 0);
      EXPECT_EQ_U(lw_usable_size(p[i]), sz);
      memset(p[i], (int)i, sz);
    }
    EXPECT_EQ_U(class_used(c) - before, N);
    void *m = lw_malloc(sz);
    EXPECT_EQ_U(class_used(c) - before, N); /* plain malloc: the medium heap */
    lw_free(m);
    for (int i = 0; i < N; i++) EXPECT(((unsigned char *)p[i])[sz - 1] == (unsigned char)i);
    lw_check();
    for (int i = 0; i < N; i++) lw_free(p[i]);
    EXPECT_EQ_U(class_used(c), before);
    lw_check();
  }
}

TEST(freed_slot_is_reused_first) {
  void *a = lw_malloc(40);
  lw_free(a);
  void *b = lw_malloc(40);
  EXPECT(a == b);
  lw_free(b);
}

TEST(empty_pages_go_back) {
  enum { N = 20000 };
  static void *p[N];
  lw_stats_t s0, s1, s2;
  lw_stats(&s0);
  for (int i = 0; i < N; i++) p[i] = lw_malloc(100);
  lw_stats(&s1);
  EXPECT(s1.classes[lw_size_class(100)].pages > s0.classes[lw_size_class(100)].pages + 20);
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_stats(&s2);
  /* all but the current page of the class are released */
  EXPECT(s2.classes[lw_size_class(100)].pages <= s0.classes[lw_size_class(100)].pages + 1);
  lw_trim(0);
  lw_stats(&s2);
  EXPECT(s2.os_decommits > s0.os_decommits);
  lw_check();
}

/* Empty pages stay resident while the pages in use are below their peak
 * of the last one or two seconds (a wave of frees then of mallocs costs
 * no page faults), and go back to the OS once that peak has aged out. */
TEST(empty_pages_are_kept_within_the_recent_peak) {
  enum { N = 20000 };
  static void *p[N];
  lw_trim(0);
  for (int i = 0; i < N; i++) memset(p[i] = lw_malloc(100), 1, 100); /* ~31 pages */
  lw_stats_t s0, s1, s2;
  lw_stats(&s0);
  for (int i = 0; i < N; i++) lw_free(p[i]);
  lw_stats(&s1);
  EXPECT(s0.committed_bytes - s1.committed_bytes <= 2 * LW_PAGE_SIZE); /* kept */
  struct timespec two = {2, 200000000};
  nanosleep(&two, NULL);
  void *q[2 * LW_PAGE_SIZE / 2048]; /* two pages of another class: one goes back */
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) q[i] = lw_malloc(2048);
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) lw_free(q[i]);
  lw_stats(&s2);
  EXPECT(s1.committed_bytes - s2.committed_bytes >= 20 * LW_PAGE_SIZE); /* the peak aged out */
  lw_check();
}

TEST(the_first_blocks_of_a_class_come_from_the_heap) {
  /* a fresh thread: its first blocks of any class are medium chunks */
  void *first = NULL;
  pthread_t t;
  pthread_create(&t, NULL, first_block, &first);
  pthread_join(t, NULL);
  ASSERT(first);
  EXPECT(lw_segment_of(first) && lw_segment_of(first)->kind == LW_SEG_MEDIUM);
  lw_free(first);
}

/* Slots of another thread's pages that this thread frees go on its hot
 * list until it holds _lw_hot_max of the class, and come back first from
 * its own mallocs (last in, first out); the thread's exit gives the rest
 * back to their pages. */
enum { HOT_N = 64, HOT_SIZE = 48 };
static void *hot_blocks[HOT_N];

static void *free_and_reuse(void *arg) {
  void **again = arg;
  lw_free(lw_malloc(8)); /* this thread has its own data now */
  for (int i = 0; i < HOT_N; i++) lw_free(hot_blocks[i]);
  lw_check(); /* walks the hot lists */
  *again = lw_malloc(HOT_SIZE);
  lw_free(*again); /* the owner's free, remote: the page way */
  return NULL;
}

TEST(other_threads_slots_freed_here_are_reused_here) {
  for (int i = 0; i < LW_WARMUP + HOT_N; i++) hot_blocks[i % HOT_N] = lw_malloc(HOT_SIZE);
  for (int i = 0; i < HOT_N; i++) ASSERT(lw_segment_of(hot_blocks[i])->kind == LW_SEG_POOL);
  void *again = NULL;
  pthread_t t;
  pthread_create(&t, NULL, free_and_reuse, &again);
  pthread_join(t, NULL);
  unsigned kept = _lw_hot_max[lw_size_class(HOT_SIZE)];
  ASSERT(kept < HOT_N);
  if (!LW_CHECKED) EXPECT(again == hot_blocks[kept - 1]); /* the checked build keeps no hot lists */
  lw_trim(0);
  lw_check();
  lw_stats_t s;
  lw_stats(&s);
  EXPECT(s.classes[lw_size_class(HOT_SIZE)].slots_used < HOT_N);
}

TEST(untouched_slots_cost_no_memory) {
  /* one slot of a fresh class page carves only a few KiB */
  void *p = lw_malloc(2000);
  lw_page_t *pg = lw_page_of(lw_segment_of(p), p);
  EXPECT(pg->bumped * pg->slot_size <= 8192);
  lw_free(p);
}

TEST(aligned_small_requests_come_from_pools_within_twice_their_size) {
  for (size_t a = 32; a <= 2048; a *= 2) {
    void *p = lw_memalign(a, a - a / 4);
    ASSERT(p);
    EXPECT((uintptr_t)p % a == 0);
    EXPECT(lw_segment_of(p) && lw_segment_of(p)->kind == LW_SEG_POOL);
    lw_free(p);
  }
  /* 24 bytes aligned to 1 KiB would waste 1000 bytes in a pool slot */
  void *q = lw_memalign(1024, 24);
  ASSERT(q);
  EXPECT((uintptr_t)q % 1024 == 0);
  EXPECT(lw_segment_of(q) && lw_segment_of(q)->kind == LW_SEG_MEDIUM);
  lw_free(q);
  lw_check();
}

TEST_MAIN()
