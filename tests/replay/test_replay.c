/* lwreplay engine, in-process: address map, plan building (blocks,
 * hand-offs, key order, skipped calls), histograms, the interval set, and
 * replays of synthetic traces against glibc, including allocators that
 * misbehave on purpose (NULL, misaligned, overlapping results). */
#define _GNU_SOURCE
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "testhelper.h"

/* ---- address map ------------------------------------------------------------ */
TEST(addrmap_matches_reference) {
  enum { KEYS = 3000 };
  static uint32_t ref[KEYS]; /* RP_NONE = absent */
  for (int i = 0; i < KEYS; i++) ref[i] = RP_NONE;
  rp_addrmap_t *m = rp_addrmap_new(4);
  ASSERT(m);
  uint64_t rng = 12345;
  int bad = 0;
  for (int step = 0; step < 200000; step++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    int k = (int)((rng >> 33) % KEYS);
    uint64_t addr = 0x10000 + (uint64_t)k * 16; /* aligned, clustered: like heap addresses */
    switch ((rng >> 20) % 3) {
    case 0: bad += rp_addrmap_put(m, addr, (uint32_t)step) != ref[k]; ref[k] = (uint32_t)step; break;
    case 1: bad += rp_addrmap_del(m, addr) != ref[k]; ref[k] = RP_NONE; break;
    default: bad += rp_addrmap_get(m, addr) != ref[k]; break;
    }
  }
  for (int k = 0; k < KEYS; k++) bad += rp_addrmap_get(m, 0x10000 + (uint64_t)k * 16) != ref[k];
  EXPECT_EQ_U(bad, 0);
  rp_addrmap_free(m);
}

/* ---- plan building -------------------------------------------------------------- */
static rp_call_t call(uint32_t th, unsigned op, uint64_t seq, uint64_t free_seq, uint64_t size,
                      uint64_t in, uint64_t out) {
  return (rp_call_t){.key_alloc = seq, .key_free = free_seq ? free_seq : seq, .size = size,
                     .in = in, .out = out, .thread = th, .op = (uint8_t)op};
}

static const rp_op_t *find_op(const rp_plan_t *p, uint64_t seq) {
  for (uint64_t i = 0; i < p->hdr->nops; i++)
    if (p->seq[i] == seq) return &p->ops[i];
  return NULL;
}

TEST(plan_blocks_peak_and_handoff_flags) {
  /* Listed out of order on purpose: the file has per-thread chunks. */
  rp_call_t c[] = {
      call(1, LW_OP_FREE, 3, 3, 0, 0xA0, 0),          /* T1 frees T0's A */
      call(0, LW_OP_MALLOC, 1, 0, 100, 0, 0xA0),     /* A */
      call(0, LW_OP_MALLOC, 2, 0, 50, 0, 0xB0),      /* B */
      call(0, LW_OP_REALLOC, 5, 4, 200, 0xB0, 0xB0), /* B -> B' in place */
      call(0, LW_OP_FREE, 6, 6, 0, 0xB0, 0),
  };
  rp_plan_t p;
  char err[256];
  ASSERT(rp_plan_build(c, 5, 2, NULL, &p, err, sizeof err) == 0);
  EXPECT_EQ_U(p.hdr->nops, 5);
  EXPECT_EQ_U(p.hdr->nblocks, 3);
  EXPECT_EQ_U(p.hdr->trace_peak_live, 200);
  EXPECT_EQ_U(p.hdr->trace_final_live, 0);
  EXPECT_EQ_U(p.threads[0].nops, 4);
  EXPECT_EQ_U(p.threads[1].nops, 1);
  const rp_op_t *mA = find_op(&p, 1), *fA = find_op(&p, 3), *rB = find_op(&p, 5);
  ASSERT(mA && fA && rB);
  EXPECT(mA->flags & RP_PUBLISH_OUT);
  EXPECT(fA->flags & RP_WAIT_IN);
  EXPECT_EQ_U(fA->in_block, mA->out_block);
  EXPECT(!(rB->flags & (RP_WAIT_IN | RP_PUBLISH_OUT)));
  EXPECT_EQ_U(p.hdr->handoffs, 1);
  EXPECT(rB->in_block != rB->out_block); /* a realloc ends one block, starts another */
  /* per-thread order is traced order */
  EXPECT_EQ_U(p.seq[p.threads[0].first_op], 1);
  EXPECT_EQ_U(p.seq[p.threads[0].first_op + 3], 6);
  uint64_t peak, fin;
  rp_plan_live(&p, &peak, &fin);
  EXPECT_EQ_U(peak, 200);
  EXPECT_EQ_U(fin, 0);
  rp_plan_unmap(&p);
}

TEST(plan_address_reused_by_another_thread_before_the_free_completes) {
  /* T0's free of X reserved free_seq 10 and finished at seq 12; T1's malloc
   * got X back at seq 11. Ordering by seq alone would see X returned twice. */
  rp_call_t c[] = {
      call(0, LW_OP_MALLOC, 1, 0, 64, 0, 0x1000),
      call(0, LW_OP_FREE, 12, 10, 0, 0x1000, 0),
      call(1, LW_OP_MALLOC, 11, 0, 32, 0, 0x1000),
      call(1, LW_OP_FREE, 13, 13, 0, 0x1000, 0),
  };
  rp_plan_t p;
  char err[256];
  ASSERT(rp_plan_build(c, 4, 2, NULL, &p, err, sizeof err) == 0);
  EXPECT_EQ_U(p.hdr->orphaned, 0);
  EXPECT_EQ_U(p.hdr->skipped_unknown, 0);
  EXPECT_EQ_U(p.hdr->nblocks, 2);
  EXPECT_EQ_U(p.hdr->trace_peak_live, 64);
  const rp_op_t *f0 = find_op(&p, 12), *f1 = find_op(&p, 13);
  ASSERT(f0 && f1);
  EXPECT(!(f0->flags & RP_WAIT_IN) && !(f1->flags & RP_WAIT_IN)); /* no false hand-off */
  rp_plan_unmap(&p);
}

TEST(plan_skips_failed_and_unknown_calls_and_counts_them) {
  rp_call_t c[] = {
      call(0, LW_OP_MALLOC, 1, 0, 1ull << 40, 0, 0),   /* failed: not replayed */
      call(0, LW_OP_MALLOC, 2, 0, 10, 0, 0x100),
      call(0, LW_OP_REALLOC, 4, 3, 0, 0x100, 0),      /* realloc(p,0) freed p */
      call(0, LW_OP_FREE, 5, 5, 0, 0xdead0, 0),       /* never allocated */
      call(0, LW_OP_REALLOC, 7, 6, 40, 0xbeef0, 0x200), /* unknown input: malloc */
      call(0, LW_OP_FREE, 8, 8, 0, 0, 0),             /* free(NULL): replayed */
      call(0, LW_OP_REALLOC, 10, 9, 1ull << 40, 0x200, 0), /* failed realloc: p stays */
      call(0, LW_OP_FREE, 11, 11, 0, 0x200, 0),
  };
  rp_plan_t p;
  char err[256];
  ASSERT(rp_plan_build(c, 8, 1, NULL, &p, err, sizeof err) == 0);
  EXPECT_EQ_U(p.hdr->skipped_failed, 2);
  EXPECT_EQ_U(p.hdr->skipped_unknown, 2);
  EXPECT_EQ_U(p.hdr->realloc0_as_free, 1);
  EXPECT_EQ_U(p.hdr->nops, 5);
  EXPECT_EQ_U(p.hdr->trace_peak_live, 40);
  const rp_op_t *r0 = find_op(&p, 4), *ru = find_op(&p, 7), *fn = find_op(&p, 8);
  ASSERT(r0 && ru && fn);
  EXPECT_EQ_U(r0->op, LW_OP_FREE);
  EXPECT_EQ_U(ru->op, LW_OP_MALLOC);
  EXPECT_EQ_U(fn->in_block, RP_NONE);
  rp_plan_unmap(&p);
}

TEST(plan_realloc_ping_pong_between_threads) {
  /* T0 makes A; T1 reallocs A->B; T0 reallocs B->C; T1 frees C. Every step
   * waits for the previous one, and nothing else does. */
  rp_call_t c[] = {
      call(0, LW_OP_MALLOC, 1, 0, 10, 0, 0x100),
      call(1, LW_OP_REALLOC, 3, 2, 20, 0x100, 0x200),
      call(0, LW_OP_REALLOC, 5, 4, 30, 0x200, 0x200),
      call(1, LW_OP_FREE, 6, 6, 0, 0x200, 0),
      call(0, LW_OP_MALLOC, 7, 0, 5, 0, 0x100), /* unrelated reuse of A's address */
  };
  rp_plan_t p;
  char err[256];
  ASSERT(rp_plan_build(c, 5, 2, NULL, &p, err, sizeof err) == 0);
  EXPECT_EQ_U(p.hdr->handoffs, 3);
  EXPECT_EQ_U(p.hdr->trace_peak_live, 30);
  const rp_op_t *m = find_op(&p, 1), *r1 = find_op(&p, 3), *r2 = find_op(&p, 5),
                *f = find_op(&p, 6), *m2 = find_op(&p, 7);
  ASSERT(m && r1 && r2 && f && m2);
  EXPECT(m->flags == RP_PUBLISH_OUT);
  EXPECT(r1->flags == (RP_WAIT_IN | RP_PUBLISH_OUT));
  EXPECT(r2->flags == (RP_WAIT_IN | RP_PUBLISH_OUT));
  EXPECT(f->flags == RP_WAIT_IN);
  EXPECT(m2->flags == 0);
  EXPECT_EQ_U(r1->in_block, m->out_block);
  EXPECT_EQ_U(r2->in_block, r1->out_block);
  EXPECT_EQ_U(f->in_block, r2->out_block);
  rp_fns_t fn;
  static rp_result_t r;
  rp_backend_fns("", &fn, r.malloc_from, sizeof r.malloc_from, r.fallbacks, sizeof r.fallbacks);
  rp_opts_t o = {.check = 1, .touch = 1, .lat_every = 1, .label = "glibc", .free_at_end = 1};
  for (int run = 0; run < 20; run++) { /* the threads race differently each time */
    EXPECT(rp_replay(&p, &fn, &o, &r) == 0);
    EXPECT_EQ_U(r.op_hash, p.hdr->plan_hash);
  }
  rp_plan_unmap(&p);
}

TEST(plan_rejects_bad_thread_index) {
  rp_call_t c[] = {call(3, LW_OP_MALLOC, 1, 0, 8, 0, 0x10)};
  rp_plan_t p;
  char err[256] = "";
  EXPECT(rp_plan_build(c, 1, 2, NULL, &p, err, sizeof err) != 0);
  EXPECT(strstr(err, "thread") != NULL);
}

/* ---- histogram ---------------------------------------------------------------- */
TEST(hist_buckets_are_monotone_and_tight) {
  int bad = 0;
  for (uint64_t v = 0; v < 100000; v += 1 + v / 50) {
    unsigned b = rp_hist_bucket(v);
    uint64_t lo = rp_hist_bucket_low(b), hi = rp_hist_bucket_low(b + 1);
    if (!(lo <= v && v < hi) || (v >= 16 && (double)(hi - lo) > v / 15.0)) bad++;
  }
  EXPECT_EQ_U(bad, 0);
  EXPECT(rp_hist_bucket(~0ull) < RP_HBUCKETS);
}

TEST(hist_quantiles) {
  static rp_hist_t h;
  memset(&h, 0, sizeof h);
  for (uint64_t v = 1; v <= 10000; v++) rp_hist_add(&h, v);
  uint64_t p50 = rp_hist_quantile(&h, 0.5), p99 = rp_hist_quantile(&h, 0.99);
  EXPECT(p50 >= 5000 * 15 / 16 && p50 <= 5000);
  EXPECT(p99 >= 9900 * 15 / 16 && p99 <= 9900);
  EXPECT_EQ_U(h.max, 10000);
  EXPECT_EQ_U(rp_hist_quantile(&h, 1.0), rp_hist_bucket_low(rp_hist_bucket(10000)));
}

/* ---- interval set ----------------------------------------------------------------- */
TEST(ivset_finds_overlaps) {
  rp_ivset_t *s = rp_ivset_new(8);
  ASSERT(s);
  EXPECT_EQ_U(rp_ivset_insert(s, 0, 1000, 100), RP_NONE);
  EXPECT_EQ_U(rp_ivset_insert(s, 1, 1100, 100), RP_NONE); /* adjacent is fine */
  EXPECT_EQ_U(rp_ivset_insert(s, 2, 900, 101), 0);        /* runs into block 0 */
  EXPECT_EQ_U(rp_ivset_insert(s, 3, 1199, 1), 1);         /* last byte of block 1 */
  EXPECT_EQ_U(rp_ivset_insert(s, 4, 1050, 1), 0);         /* inside block 0 */
  rp_ivset_remove(s, 0);
  EXPECT_EQ_U(rp_ivset_insert(s, 5, 1000, 100), RP_NONE); /* reuse after free */
  EXPECT_EQ_U(rp_ivset_insert(s, 6, 1000, 0), 5);         /* malloc(0) still owns its byte */
  rp_ivset_free(s);
}

/* ---- replays ------------------------------------------------------------------- */
static int build_synth(const char *kind, uint64_t n, uint32_t th, rp_plan_t *p) {
  uint64_t tids[64];
  size_t nc;
  char err[256];
  rp_call_t *c = rp_synth(kind, n, &th, &nc, tids);
  if (!c) return -1;
  int rc = rp_plan_build(c, nc, th, tids, p, err, sizeof err);
  free(c);
  return rc;
}

static void replay_kind(const char *kind, uint32_t threads, int serial, int check) {
  rp_plan_t p;
  ASSERT(build_synth(kind, 60000, threads, &p) == 0);
  rp_fns_t f;
  static rp_result_t r1, r2;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  rp_backend_fns("", &f, r1.malloc_from, sizeof r1.malloc_from, r1.fallbacks, sizeof r1.fallbacks);
  rp_opts_t o = {.serial = serial, .check = check, .touch = check, .lat_every = 1,
                 .label = "glibc", .free_at_end = 1};
  EXPECT(rp_replay(&p, &f, &o, &r1) == 0);
  if (r1.status) fprintf(stderr, "  %s\n", r1.error);
  EXPECT(rp_replay(&p, &f, &o, &r2) == 0);
  EXPECT_EQ_U(r1.ops, p.hdr->nops);
  EXPECT_EQ_U(r1.op_hash, p.hdr->plan_hash);
  EXPECT_EQ_U(r2.op_hash, r1.op_hash); /* determinism */
  EXPECT_EQ_U(r1.peak_live, p.hdr->trace_peak_live);
  EXPECT(r1.peak_live > 0);
  uint64_t timed = 0;
  for (int c = 0; c < RP_NCLASSES; c++) timed += r1.lat[c].count;
  EXPECT_EQ_U(timed, p.hdr->nops); /* lat_every = 1: every op timed */
  EXPECT(r1.rss_peak >= r1.rss_base && r1.rss_peak > 0);
  if (!strcmp(kind, "churn")) { /* independent threads: never synchronised */
    EXPECT_EQ_U(p.hdr->handoffs, 0);
    EXPECT_EQ_U(r1.waits, 0);
  }
  if (!strcmp(kind, "handoff")) EXPECT(p.hdr->handoffs > 10000);
  rp_plan_unmap(&p);
}

TEST(replay_churn_threads) { replay_kind("churn", 3, 0, 0); }
TEST(replay_churn_serial) { replay_kind("churn", 3, 1, 0); }
TEST(replay_handoff_threads) { replay_kind("handoff", 4, 0, 0); }
TEST(replay_handoff_checked) { replay_kind("handoff", 3, 0, 1); }
TEST(replay_realloc_chains) { replay_kind("realloc", 2, 0, 1); }
TEST(replay_aligned_ops) { replay_kind("aligned", 2, 0, 1); }

TEST(replay_serial_and_threaded_make_the_same_op_stream) {
  rp_plan_t p;
  ASSERT(build_synth("handoff", 30000, 3, &p) == 0);
  rp_fns_t f;
  static rp_result_t a, b;
  rp_backend_fns("", &f, a.malloc_from, sizeof a.malloc_from, a.fallbacks, sizeof a.fallbacks);
  rp_opts_t o = {.label = "glibc", .lat_every = 16, .free_at_end = 1};
  EXPECT(rp_replay(&p, &f, &o, &a) == 0);
  o.serial = 1;
  EXPECT(rp_replay(&p, &f, &o, &b) == 0);
  EXPECT_EQ_U(a.op_hash, b.op_hash);
  rp_plan_unmap(&p);
}

/* Misbehaving allocators: each must stop the replay with one message. */
static void *null_malloc(size_t n) { return n > 1000 ? NULL : malloc(n); }
static void *odd_malloc(size_t n) { return (char *)malloc(n + 16) + 1; }
static void odd_free(void *p) { free((uintptr_t)p & 1 ? (char *)p - 1 : p); } /* calloc's are even */
static alignas(64) char shared_buf[1 << 20];
static void *same_malloc(size_t n) { return n <= sizeof shared_buf ? shared_buf : NULL; }
static void *same_calloc(size_t c, size_t n) { return same_malloc(c * n); }
static void no_free(void *p) { (void)p; }

static void expect_violation(rp_fns_t f, int check, const char *what) {
  rp_plan_t p;
  ASSERT(build_synth("churn", 20000, 2, &p) == 0);
  static rp_result_t r;
  memset(&r, 0, sizeof r);
  rp_opts_t o = {.check = check, .label = "bad", .free_at_end = 1};
  EXPECT(rp_replay(&p, &f, &o, &r) != 0);
  EXPECT(r.status != 0);
  EXPECT(strstr(r.error, what) != NULL);
  EXPECT(strstr(r.error, "bad MALLOC seq ") == r.error || strstr(r.error, "bad CALLOC seq ") == r.error);
  if (!strstr(r.error, what)) fprintf(stderr, "  got: %s\n", r.error);
  rp_plan_unmap(&p);
}

TEST(replay_reports_null_results) {
  rp_fns_t f;
  char a[160], b[96];
  rp_backend_fns("", &f, a, sizeof a, b, sizeof b);
  f.malloc = null_malloc;
  expect_violation(f, 0, "returned NULL where the trace had success");
}

TEST(replay_reports_misaligned_results) {
  rp_fns_t f;
  char a[160], b[96];
  rp_backend_fns("", &f, a, sizeof a, b, sizeof b);
  f.malloc = odd_malloc;
  f.free = odd_free;
  expect_violation(f, 0, "not aligned");
}

TEST(replay_check_reports_overlap) {
  rp_fns_t f;
  char a[160], b[96];
  rp_backend_fns("", &f, a, sizeof a, b, sizeof b);
  f.malloc = same_malloc;
  f.calloc = same_calloc;
  f.free = no_free;
  expect_violation(f, 1, "overlaps a live block");
}

TEST_MAIN()
