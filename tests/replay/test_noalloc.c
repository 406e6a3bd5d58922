/* The engine allocates nothing while the replay runs: this executable
 * interposes malloc/calloc/realloc/free (counting, then forwarding to
 * glibc's __libc_* functions), while the replayed calls go through an
 * rp_fns_t table that calls __libc_* directly and is not counted. Between
 * the first and the last replayed call, across all replay threads and the
 * RSS sampler, the interposed count must not move.
 * (Not built with sanitizers: ASan owns malloc there.) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "testhelper.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong engine_calls;   /* calls of the interposed names */
static atomic_ulong first_seen = ~0ul, last_seen;
static atomic_int replay_started;

void *malloc(size_t n) { atomic_fetch_add(&engine_calls, 1); return __libc_malloc(n); }
void *calloc(size_t c, size_t n) { atomic_fetch_add(&engine_calls, 1); return __libc_calloc(c, n); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&engine_calls, 1); return __libc_realloc(p, n); }
void free(void *p) { if (p) atomic_fetch_add(&engine_calls, 1); __libc_free(p); }

/* The replayed calls: note the engine count at the first and the last. */
static void mark(void) {
  unsigned long now = atomic_load(&engine_calls);
  if (!atomic_exchange(&replay_started, 1)) atomic_store(&first_seen, now);
  atomic_store(&last_seen, now);
}
static void *r_malloc(size_t n) { mark(); return __libc_malloc(n); }
static void *r_calloc(size_t c, size_t n) { mark(); return __libc_calloc(c, n); }
static void *r_realloc(void *p, size_t n) { mark(); return __libc_realloc(p, n); }
static void *r_reallocarray(void *p, size_t c, size_t n) { mark(); return __libc_realloc(p, c * n); }
static void r_free(void *p) { mark(); __libc_free(p); }
static void r_free_sized(void *p, size_t n) { (void)n; r_free(p); }
static void r_free_aligned_sized(void *p, size_t a, size_t n) { (void)a, (void)n; r_free(p); }
static void *r_memalign(size_t a, size_t n) { mark(); return __libc_memalign(a, n); }
static int r_posix_memalign(void **o, size_t a, size_t n) { *o = r_memalign(a, n); return *o ? 0 : 12; }
static void *r_aligned_alloc(size_t a, size_t n) { return r_memalign(a, n); }
static void *r_valloc(size_t n) { return r_memalign(4096, n); }
static void *r_pvalloc(size_t n) { return r_memalign(4096, (n + 4095) & ~(size_t)4095); }

static const rp_fns_t counted = {r_malloc, r_calloc, r_realloc, r_reallocarray, r_free,
                                 r_free_sized, r_free_aligned_sized, r_memalign,
                                 r_posix_memalign, r_aligned_alloc, r_valloc, r_pvalloc};

static void no_alloc_during(const char *kind, uint32_t threads, int serial, int check, int touch) {
  uint64_t tids[64];
  size_t n;
  char err[256];
  rp_call_t *c = rp_synth(kind, 50000, &threads, &n, tids);
  ASSERT(c);
  rp_plan_t p;
  ASSERT(rp_plan_build(c, n, threads, tids, &p, err, sizeof err) == 0);
  __libc_free(c);
  static rp_result_t r;
  memset(&r, 0, sizeof r);
  /* no free_at_end: its calls would come after the engine's clean-up */
  rp_opts_t o = {.serial = serial, .check = check, .touch = touch, .lat_every = 4,
                 .label = "counted"};
  atomic_store(&replay_started, 0);
  EXPECT(rp_replay(&p, &counted, &o, &r) == 0);
  EXPECT_EQ_U(r.ops, p.hdr->nops);
  EXPECT(atomic_load(&replay_started));
  unsigned long during = atomic_load(&last_seen) - atomic_load(&first_seen);
  if (during) fprintf(stderr, "  %s: the engine called malloc & co %lu times during the replay\n", kind, during);
  EXPECT_EQ_U(during, 0);
  rp_plan_unmap(&p);
}

TEST(no_engine_allocation_churn_threads) { no_alloc_during("churn", 3, 0, 0, 1); }
TEST(no_engine_allocation_handoff_threads) { no_alloc_during("handoff", 4, 0, 0, 0); }
TEST(no_engine_allocation_serial) { no_alloc_during("realloc", 2, 1, 0, 1); }
TEST(no_engine_allocation_checked) { no_alloc_during("aligned", 2, 0, 1, 0); }

/* The test must be able to fail: an allocation by "the engine" between
 * two replayed calls is seen. */
TEST(interposition_sees_allocations) {
  atomic_store(&replay_started, 0);
  void *a = r_malloc(8);
  void *volatile b = malloc(16); /* volatile: the pair must not be elided */
  free(b);
  r_free(a);
  EXPECT(atomic_load(&last_seen) - atomic_load(&first_seen) == 2);
}

TEST_MAIN()
