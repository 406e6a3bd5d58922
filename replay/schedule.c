/* The replay engine: one replay thread per traced thread, each running
 * its own ops in traced order; the only synchronisation is a per-block
 * "ready" pointer that a consumer on another thread spins on (RP_WAIT_IN
 * / RP_PUBLISH_OUT, decided at load time by plan.c). --serial runs the
 * global order on the calling thread instead.
 *
 * Invariants:
 *  - ptrs[b] is NULL until block b's maker stored the allocator's pointer
 *    (release); a non-NULL value is "ready" (the plan only has blocks of
 *    calls that succeeded, and a NULL result where the trace had success
 *    stops the replay).
 *  - Nothing is allocated between "go" and the last thread's end: ptrs[],
 *    per-thread state and the --check nodes are mmap'ed and touched first.
 *  - Each thread's op-stream hash chains exactly the ops it executed, so
 *    the combined hash equals the plan's iff every op ran, in order. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"

/* What every op updates; a replay thread keeps it in a local variable
 * (registers) and stores it back at the end. */
typedef struct sched_hot_s {
  uint64_t hash;          /* op-stream hash of the ops run so far */
  uint64_t ops_done;
  uint64_t waits;         /* hand-offs that found their block not ready */
  uint64_t lat_countdown; /* ops until the next timed one */
  uint64_t rng;           /* xorshift state of the latency sampler */
} sched_hot_t;

typedef struct sched_thread_s {
  alignas(64) sched_hot_t hot;
  struct sched_s *s;
  uint32_t index;
  pthread_t pt;
  rp_hist_t hist[RP_NCLASSES];
} sched_thread_t;

typedef struct sched_s {
  const rp_plan_t *plan;
  rp_fns_t fns;
  rp_opts_t o;
  _Atomic(void *) *ptrs; /* [nblocks]: the allocator's pointer per block */
  rp_ivset_t *iv;         /* --check only */
  sched_thread_t *th;     /* [nthreads] */
  size_t page;
  atomic_uint ready;      /* threads waiting for go */
  atomic_int go;
  atomic_int failed;      /* first violation wins and stops everyone */
  char *error;
  size_t errlen;
} sched_t;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* Spin, then yield, then sleep: with more traced threads than cores a
 * waiter must let the maker run. */
static void backoff(unsigned *spins) {
  unsigned n = (*spins)++;
  if (n < 64) {
    cpu_relax();
  } else if (n < 64 + 256) {
    sched_yield();
  } else {
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

static enum rp_op_class op_class(unsigned op) {
  switch (op) {
  case LW_OP_FREE: case LW_OP_FREE_SIZED: case LW_OP_FREE_ALIGNED_SIZED: return RP_CL_FREE;
  case LW_OP_REALLOC: case LW_OP_REALLOCARRAY: return RP_CL_REALLOC;
  case LW_OP_MEMALIGN: case LW_OP_POSIX_MEMALIGN: case LW_OP_ALIGNED_ALLOC:
  case LW_OP_VALLOC: case LW_OP_PVALLOC: return RP_CL_ALIGNED;
  default: return RP_CL_MALLOC;
  }
}

/* Alignment the result must have: as asked for the aligned family, page
 * for valloc/pvalloc, else the fundamental alignment a block of that size
 * can need (min(16, largest power of two <= size)). */
static uintptr_t required_align(const sched_t *s, const rp_op_t *op) {
  switch (op->op) {
  case LW_OP_MEMALIGN: case LW_OP_POSIX_MEMALIGN: case LW_OP_ALIGNED_ALLOC:
    return (uintptr_t)1 << op->align_log2;
  case LW_OP_VALLOC: case LW_OP_PVALLOC:
    return s->page;
  default: {
    uint64_t sz = op->size ? op->size : 1;
    uintptr_t a = (uintptr_t)1 << (63 - __builtin_clzll(sz));
    return a < alignof(max_align_t) ? a : alignof(max_align_t);
  }
  }
}

static int violation(sched_t *s, const rp_op_t *op, uint64_t oi, const char *what) {
  int expect = 0;
  if (atomic_compare_exchange_strong(&s->failed, &expect, 1))
    snprintf(s->error, s->errlen, "%s %s seq %llu (thread %u, size %llu): %s",
             s->o.label ? s->o.label : "allocator", rp_op_name(op->op),
             (unsigned long long)s->plan->seq[oi], op->thread, (unsigned long long)op->size, what);
  return -1;
}

/* The block's maker has not stored it yet: spin with backoff. */
static __attribute__((noinline)) void *wait_ready(sched_t *s, uint32_t b) {
  void *p;
  unsigned spins = 0;
  while (!(p = atomic_load_explicit(&s->ptrs[b], memory_order_acquire))) {
    if (atomic_load_explicit(&s->failed, memory_order_relaxed)) return NULL;
    backoff(&spins);
  }
  return p;
}

/* The call itself; 0, or -1 for an op code the engine does not know. */
static inline __attribute__((always_inline)) int
call_op(const rp_fns_t *f, const rp_op_t *op, void *in, void **outp) {
  size_t align = (size_t)1 << op->align_log2;
  void *out = NULL;
  switch (op->op) {
  case LW_OP_MALLOC: out = f->malloc(op->size); break;
  case LW_OP_CALLOC: out = f->calloc(1, op->size); break;
  case LW_OP_REALLOC: out = f->realloc(in, op->size); break;
  case LW_OP_REALLOCARRAY: out = f->reallocarray(in, 1, op->size); break;
  case LW_OP_FREE: f->free(in); break;
  case LW_OP_FREE_SIZED: f->free_sized(in, op->size); break;
  case LW_OP_FREE_ALIGNED_SIZED: f->free_aligned_sized(in, align, op->size); break;
  case LW_OP_MEMALIGN: out = f->memalign(align, op->size); break;
  case LW_OP_POSIX_MEMALIGN:
    if (f->posix_memalign(&out, align, op->size) != 0) out = NULL;
    break;
  case LW_OP_ALIGNED_ALLOC: out = f->aligned_alloc(align, op->size); break;
  case LW_OP_VALLOC: out = f->valloc(op->size); break;
  case LW_OP_PVALLOC: out = f->pvalloc(op->size); break;
  default: return -1;
  }
  *outp = out;
  return 0;
}

/* Latency sampling: the gap to the next timed op is uniform in
 * [1, 2*lat_every-1] (mean lat_every), from a per-thread xorshift, so
 * periodic op patterns cannot alias with the sampling. lat_every == 1
 * times every op; 0 never. */
static inline uint64_t next_gap(const sched_t *s, sched_hot_t *h) {
  unsigned n = s->o.lat_every;
  if (n <= 1) return n ? 1 : UINT64_MAX;
  h->rng ^= h->rng << 13;
  h->rng ^= h->rng >> 7;
  h->rng ^= h->rng << 17;
  return 1 + h->rng % (2 * (uint64_t)n - 1);
}

/* Runs one op. Returns 0, or -1 after recording a violation. */
static inline __attribute__((always_inline)) int
exec_op(sched_t *s, sched_thread_t *t, sched_hot_t *h, const rp_op_t *op, uint64_t oi) {
  const rp_fns_t *f = &s->fns;
  void *in = NULL, *out = NULL;
  if (op->in_block != RP_NONE) {
    if (op->flags & RP_WAIT_IN) {
      in = atomic_load_explicit(&s->ptrs[op->in_block], memory_order_acquire);
      if (!in) {
        h->waits++;
        in = wait_ready(s, op->in_block);
        if (!in) return -1; /* another thread failed */
      }
    } else {
      in = atomic_load_explicit(&s->ptrs[op->in_block], memory_order_relaxed);
    }
    if (s->iv) rp_ivset_remove(s->iv, op->in_block);
  }
  if (__builtin_expect(--h->lat_countdown != 0, 1)) {
    if (call_op(f, op, in, &out) != 0) return violation(s, op, oi, "unknown op code");
  } else {
    h->lat_countdown = next_gap(s, h);
    uint64_t t0 = rp_ticks();
    int bad = call_op(f, op, in, &out);
    uint64_t t1 = rp_ticks();
    if (bad) return violation(s, op, oi, "unknown op code");
    rp_hist_add(&t->hist[op_class(op->op)], t1 - t0);
  }
  h->hash = rp_hash_step(h->hash, op);
  h->ops_done++;
  if (op->out_block == RP_NONE) return 0;
  if (!out) return violation(s, op, oi, "returned NULL where the trace had success");
  if ((uintptr_t)out & (required_align(s, op) - 1)) {
    atomic_store_explicit(&s->ptrs[op->out_block], out, memory_order_relaxed); /* freeable */
    return violation(s, op, oi, "result not aligned as asked");
  }
  if (s->o.touch) {
    uint64_t from = (op_class(op->op) == RP_CL_REALLOC && op->in_block != RP_NONE)
                        ? s->plan->bsize[op->in_block] : 0;
    if (op->size > from) memset((char *)out + from, 0xa5, op->size - from);
  }
  if (s->iv && rp_ivset_insert(s->iv, op->out_block, (uintptr_t)out, op->size) != RP_NONE)
    return violation(s, op, oi, "result overlaps a live block");
  /* Constant orders in each branch: a run-time order compiles to seq_cst
   * (xchg on x86), a full barrier on every op. */
  if (op->flags & RP_PUBLISH_OUT)
    atomic_store_explicit(&s->ptrs[op->out_block], out, memory_order_release);
  else
    atomic_store_explicit(&s->ptrs[op->out_block], out, memory_order_relaxed);
  return 0;
}

static void *thread_main(void *arg) {
  sched_thread_t *t = arg;
  sched_t *s = t->s;
  const rp_thread_t *pt = &s->plan->threads[t->index];
  atomic_fetch_add(&s->ready, 1);
  unsigned spins = 0;
  while (!atomic_load_explicit(&s->go, memory_order_acquire)) backoff(&spins);
  if (atomic_load(&s->failed)) return NULL;
  const rp_op_t *ops = s->plan->ops;
  sched_hot_t hot = t->hot;
  for (uint64_t i = pt->first_op, end = pt->first_op + pt->nops; i < end; i++) {
    if (exec_op(s, t, &hot, &ops[i], i) != 0) break;
    /* another thread's violation ends the run soon, not after the trace */
    if ((i & 4095) == 0 && atomic_load_explicit(&s->failed, memory_order_relaxed)) break;
  }
  t->hot = hot;
  return NULL;
}

static void run_serial(sched_t *s) {
  const rp_op_t *ops = s->plan->ops;
  const uint32_t *order = s->plan->order;
  for (uint64_t g = 0, n = s->plan->hdr->nops; g < n; g++) {
    uint32_t oi = order[g];
    sched_thread_t *t = &s->th[ops[oi].thread];
    if (exec_op(s, t, &t->hot, &ops[oi], oi) != 0) break;
  }
}

static void *map_zeroed(size_t bytes) {
  void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* After the measurement: frees what the trace left live (for in-process
 * callers; a child just exits). A block is live if it was made and no
 * executed op consumed it. */
static void free_leftovers(sched_t *s) {
  const rp_plan_t *p = s->plan;
  for (uint32_t k = 0; k < p->hdr->nthreads; k++) {
    const rp_op_t *op = &p->ops[p->threads[k].first_op];
    for (uint64_t i = 0; i < s->th[k].hot.ops_done; i++)
      if (op[i].in_block != RP_NONE) atomic_store(&s->ptrs[op[i].in_block], NULL);
  }
  for (uint64_t b = 0; b < p->hdr->nblocks; b++) {
    void *ptr = atomic_load_explicit(&s->ptrs[b], memory_order_relaxed);
    if (ptr) s->fns.free(ptr);
  }
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

int rp_replay(const rp_plan_t *plan, const rp_fns_t *fns, const rp_opts_t *o, rp_result_t *res) {
  const rp_plan_hdr_t *h = plan->hdr;
  sched_t s = {.plan = plan, .fns = *fns, .o = *o, .error = res->error,
               .errlen = sizeof res->error, .page = (size_t)sysconf(_SC_PAGESIZE)};
  size_t ptr_bytes = h->nblocks * sizeof *s.ptrs, th_bytes = h->nthreads * sizeof *s.th;
  s.ptrs = map_zeroed(ptr_bytes);
  s.th = map_zeroed(th_bytes);
  if (o->check) s.iv = rp_ivset_new(h->nblocks);
  if (!s.ptrs || !s.th || (o->check && !s.iv)) {
    snprintf(res->error, sizeof res->error, "out of memory for %llu blocks",
             (unsigned long long)h->nblocks);
    res->status = 1;
    return -1;
  }
  rp_plan_prefault(plan, o->serial);
  for (uint32_t k = 0; k < h->nthreads; k++) {
    sched_thread_t *t = &s.th[k];
    t->hot.hash = RP_HASH_SEED, t->s = &s, t->index = k;
    t->hot.rng = 0x9e3779b97f4a7c15ull * (k + 1);
    t->hot.lat_countdown = next_gap(&s, &t->hot);
  }

  /* Start every replay thread and let it park before the clock starts. */
  unsigned started = 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  /* A trace may have thousands of threads; the engine needs little stack
   * (the allocator under test runs on it too, so not too little). */
  pthread_attr_setstacksize(&attr, 512 * 1024);
  if (!o->serial) {
    for (uint32_t k = 0; k < h->nthreads; k++) {
      if (plan->threads[k].nops == 0) continue;
      int e = pthread_create(&s.th[k].pt, &attr, thread_main, &s.th[k]);
      if (e != 0) {
        snprintf(res->error, sizeof res->error, "cannot start replay thread %u of %llu: %s", k,
                 (unsigned long long)h->nthreads, strerror(e));
        atomic_store(&s.failed, 1);
        atomic_store(&s.go, 1);
        break;
      }
      started++;
    }
    unsigned spins = 0;
    while (atomic_load(&s.ready) < started) backoff(&spins);
  }
  pthread_attr_destroy(&attr);
  res->rss_base = rp_rss_now();
  rp_sampler_t *sampler = o->no_rss ? NULL : rp_sampler_start(5);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t ns0 = rp_now_ns(), tk0 = rp_ticks();

  if (o->serial) run_serial(&s);
  else atomic_store_explicit(&s.go, 1, memory_order_release);
  for (uint32_t k = 0; k < h->nthreads && !o->serial; k++)
    if (plan->threads[k].nops && s.th[k].pt) pthread_join(s.th[k].pt, NULL);

  uint64_t ns1 = rp_now_ns(), tk1 = rp_ticks();
  getrusage(RUSAGE_SELF, &ru1);
  res->rss_final = rp_rss_now();
  rp_sampler_stop(sampler, &res->rss_peak, &res->rss_samples);
  uint64_t maxrss = (uint64_t)ru1.ru_maxrss * 1024;
  if (maxrss > res->rss_peak) res->rss_peak = maxrss;
  if (res->rss_final > res->rss_peak) res->rss_peak = res->rss_final;
  res->rss_heap_peak = res->rss_peak > res->rss_base ? res->rss_peak - res->rss_base : 0;

  res->wall_s = (double)(ns1 - ns0) * 1e-9;
  res->user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
  res->sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
  res->cpu_s = res->user_s + res->sys_s;
  double ns_per_tick = tk1 > tk0 ? (double)(ns1 - ns0) / (double)(tk1 - tk0) : 1.0;
  rp_hist_t *all = map_zeroed(RP_NCLASSES * sizeof *all);
  uint64_t *hashes = map_zeroed(h->nthreads * sizeof *hashes);
  res->ops = res->waits = 0;
  for (uint32_t k = 0; k < h->nthreads; k++) {
    res->ops += s.th[k].hot.ops_done;
    res->waits += s.th[k].hot.waits;
    if (hashes) hashes[k] = s.th[k].hot.hash;
    for (int c = 0; c < RP_NCLASSES && all; c++) rp_hist_merge(&all[c], &s.th[k].hist[c]);
  }
  for (int c = 0; c < RP_NCLASSES && all; c++) rp_hist_summary(&all[c], ns_per_tick, &res->lat[c]);
  res->op_hash = hashes ? rp_hash_combine(hashes, h->nthreads) : 0;
  res->events_per_s = res->wall_s > 0 ? (double)res->ops / res->wall_s : 0;
  rp_plan_live(plan, &res->peak_live, &res->final_live);
  res->fragmentation = res->peak_live ? (double)res->rss_heap_peak / (double)res->peak_live : 0;
  if (all) munmap(all, RP_NCLASSES * sizeof *all);
  if (hashes) munmap(hashes, h->nthreads * sizeof *hashes);

  int failed = atomic_load(&s.failed);
  if (!failed && res->ops != h->nops) {
    snprintf(res->error, sizeof res->error, "replay ran %llu of %llu ops",
             (unsigned long long)res->ops, (unsigned long long)h->nops);
    failed = 1;
  }
  res->status = failed;
  if (o->free_at_end) free_leftovers(&s);
  rp_ivset_free(s.iv);
  munmap(s.ptrs, ptr_bytes ? ptr_bytes : 1);
  munmap(s.th, th_bytes ? th_bytes : 1);
  return failed ? -1 : 0;
}
