/* lwreplay internals: the replay plan and the prototypes of every file,
 * grouped by the file that defines them.
 *
 * Pipeline:  trace ──load.c──▶ rp_call_t[] ──plan.c (+addrmap.c)──▶ rp_plan_t
 *            ──backend.c (re-exec with LD_PRELOAD)──▶ schedule.c replays the
 *            plan ──measure.c──▶ rp_result_t ──report.c──▶ table/JSON/CSV
 *
 * Glossary
 *   call   one malloc-family call as the trace recorded it (rp_call_t):
 *          traced addresses, thread, sequence numbers.
 *   block  one allocation lifetime: made by the call that returned it,
 *          ended by the free/realloc that consumed it. Blocks get dense ids
 *          at load time, so at replay time "traced address -> pointer the
 *          allocator returned" is an array index (rp_run_t.ptrs[block]).
 *   op     one replayed call (rp_op_t), stored per traced thread in the
 *          order that thread made it.
 *   key    the position of a call in the trace's global order: seq for the
 *          half that allocates, free_seq for the half that frees (the
 *          tracer reserves free_seq before the free happens, so a free is
 *          ordered before any reuse of its address by another thread).
 */
#ifndef LW_REPLAY_H
#define LW_REPLAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "events.h" /* enum lw_op_kind: the op codes of the trace */

#define RP_NONE UINT32_MAX /* "no block" (free(NULL), malloc has no input) */

/* ---- calls: what a loader hands to the plan builder ------------------ */
typedef struct rp_call_s {
  uint64_t key_alloc; /* global order of the allocating half (seq) */
  uint64_t key_free;  /* global order of the freeing half (free_seq) */
  uint64_t size;      /* bytes requested (calloc: count*size) */
  uint64_t in;        /* traced pointer passed (free/realloc), 0 if none */
  uint64_t out;       /* traced pointer returned, 0 on failure/none */
  uint32_t thread;    /* dense traced-thread index, 0..nthreads-1 */
  uint8_t op;         /* enum lw_op_kind */
  uint8_t align_log2; /* rp_align_log2(alignment requested), 0 if none */
} rp_call_t;
_Static_assert(sizeof(rp_call_t) == 48, "rp_call_t: 48 bytes a call while loading");

/* ---- ops: the compact, per-thread replay program --------------------- */
enum rp_op_flags {
  RP_WAIT_IN = 1,     /* in_block was made by another thread: wait for it */
  RP_PUBLISH_OUT = 2, /* out_block is consumed by another thread: release it */
};

/* 24 bytes; the replay loop reads nothing else on its fast path. */
typedef struct rp_op_s {
  uint64_t size;      /* bytes requested */
  uint32_t in_block;  /* block freed/realloced, RP_NONE for none/NULL */
  uint32_t out_block; /* block made, RP_NONE for free */
  uint8_t op;         /* enum lw_op_kind */
  uint8_t align_log2; /* log2 of requested alignment, 0 if none */
  uint16_t flags;     /* enum rp_op_flags */
  uint32_t thread;    /* traced-thread index (for --serial and reports) */
} rp_op_t;
_Static_assert(sizeof(rp_op_t) == 24, "rp_op_t layout");

/* One traced thread's slice of ops[]. */
typedef struct rp_thread_s {
  uint64_t first_op;
  uint64_t nops;
  uint64_t traced_tid; /* for reports */
} rp_thread_t;

/* The plan lives in one contiguous read-only mapping (a memfd), built
 * once by the parent and mapped by every child run. All arrays are at
 * offsets from the header. */
#define RP_PLAN_MAGIC 0x4e414c50504c5752ull /* "RWLPPLAN" */
#define RP_PLAN_VERSION 1
typedef struct rp_plan_hdr_s {
  uint64_t magic, version, total_bytes;
  uint64_t nthreads, nops, nblocks;
  uint64_t off_threads; /* rp_thread_t[nthreads] */
  uint64_t off_ops;     /* rp_op_t[nops], grouped by thread */
  uint64_t off_order;   /* uint32_t[nops]: op indices in global (key) order */
  uint64_t off_bsize;   /* uint64_t[nblocks]: requested size of each block */
  uint64_t off_seq;     /* uint64_t[nops]: traced seq of each op (messages) */
  /* What the trace itself says (computed from calls, independently of ops): */
  uint64_t trace_peak_live;  /* max over global order of live requested bytes */
  uint64_t trace_final_live; /* live requested bytes at the end */
  uint64_t plan_hash;        /* op-stream hash the replay must reproduce */
  /* Calls the plan could not replay faithfully (reported, never silent): */
  uint64_t skipped_failed;   /* traced call failed (NULL): not replayed */
  uint64_t skipped_unknown;  /* free/realloc of an address never returned */
  uint64_t orphaned;         /* address returned again without a free */
  uint64_t realloc0_as_free; /* realloc(p,0) that freed: replayed as free */
  uint64_t trace_lost;       /* records the recorder dropped (set by load.c) */
  uint64_t handoffs;         /* ops consuming a block made on another thread */
} rp_plan_hdr_t;

typedef struct rp_plan_s {
  const rp_plan_hdr_t *hdr;
  const rp_thread_t *threads;
  const rp_op_t *ops;
  const uint32_t *order;
  const uint64_t *bsize;
  const uint64_t *seq;
  int fd; /* the memfd, inherited by children */
  rp_plan_hdr_t hdr_copy; /* hdr after rp_plan_detach() */
} rp_plan_t;

/* ---- measurements ------------------------------------------------------ */
enum rp_op_class { RP_CL_MALLOC, RP_CL_FREE, RP_CL_REALLOC, RP_CL_ALIGNED, RP_NCLASSES };

/* Log-linear latency histogram in clock ticks: values below 2^RP_HSUB_BITS
 * ticks get one bucket each; above, each power of two is split into
 * 2^RP_HSUB_BITS equal buckets (relative error < 1/16). */
#define RP_HSUB_BITS 4
#define RP_HBUCKETS ((64 - RP_HSUB_BITS + 1) << RP_HSUB_BITS)
typedef struct rp_hist_s {
  uint64_t count;
  uint64_t max;
  uint64_t sum;
  uint32_t b[RP_HBUCKETS];
} rp_hist_t;

typedef struct rp_lat_s {
  uint64_t count;
  double p50_ns, p99_ns, p999_ns, max_ns, mean_ns;
} rp_lat_t;

/* What one child run reports back to the parent (binary, over a pipe: the
 * child is this same executable, so the layout is shared). */
#define RP_RESULT_MAGIC 0x5452455250574cull
typedef struct rp_result_s {
  uint64_t magic;
  int32_t status;        /* 0 ok, else the run failed; error holds why */
  char error[256];       /* one line */
  char malloc_from[160]; /* the object malloc resolved to */
  char fallbacks[96];    /* functions the allocator lacks (emulated) */
  uint64_t ops;          /* ops executed */
  uint64_t waits;        /* hand-offs that found their block not ready yet */
  uint64_t op_hash;      /* op-stream hash as executed */
  uint64_t peak_live;    /* peak live bytes of the executed ops */
  uint64_t final_live;
  double wall_s, cpu_s, user_s, sys_s;
  uint64_t rss_base;     /* RSS before the replay (engine + plan) */
  uint64_t rss_peak;     /* max(sampled, ru_maxrss) over the run, bytes */
  uint64_t rss_final;    /* after the last op */
  uint64_t rss_samples;
  uint64_t rss_heap_peak; /* rss_peak - rss_base: what the allocator added */
  double fragmentation;   /* rss_heap_peak / peak_live */
  double events_per_s;
  rp_lat_t lat[RP_NCLASSES];
} rp_result_t;

/* ---- options ------------------------------------------------------------ */
typedef struct rp_opts_s {
  int touch;    /* --touch: write the requested bytes */
  int check;    /* --check: no overlap with a live block */
  int serial;   /* --serial: one thread, global order */
  int no_rss;   /* internal (bench): no sampler thread */
  int free_at_end; /* in-process use: free the blocks still live at the end */
  unsigned lat_every; /* time 1 op in lat_every (pseudo-random); 0 = none */
#define RP_LAT_EVERY_DEFAULT 16   /* for traces of more than RP_LAT_ALL_BELOW ops */
#define RP_LAT_ALL_BELOW (1u << 20) /* smaller traces: every op is timed */
#define RP_LAT_AUTO UINT32_MAX
  const char *label; /* allocator name for messages */
} rp_opts_t;

/* "addrmap.c" -- traced address -> current block id (load time only) */
typedef struct rp_addrmap_s rp_addrmap_t;
rp_addrmap_t *rp_addrmap_new(size_t expect);
void rp_addrmap_free(rp_addrmap_t *m);
/* Returns the block of addr or RP_NONE. */
uint32_t rp_addrmap_get(const rp_addrmap_t *m, uint64_t addr);
/* Maps addr to block; returns the block it replaced or RP_NONE. */
uint32_t rp_addrmap_put(rp_addrmap_t *m, uint64_t addr, uint32_t block);
/* Unmaps addr; returns its block or RP_NONE. */
uint32_t rp_addrmap_del(rp_addrmap_t *m, uint64_t addr);

/* "plan.c" -- calls -> plan (in a memfd) */
/* Builds the plan; calls[] is reordered. Returns 0, or -1 with a one-line
 * message in err. */
int rp_plan_build(rp_call_t *calls, size_t ncalls, uint32_t nthreads,
                  const uint64_t *traced_tids, rp_plan_t *out, char *err, size_t errlen);
/* Maps a plan from an inherited fd (child side). */
int rp_plan_map(int fd, rp_plan_t *out, char *err, size_t errlen);
void rp_plan_unmap(rp_plan_t *p);
/* Maps the pages the replay reads (ops, bsize; order for --serial) before
 * the clock starts, so they count in the baseline RSS, not the
 * allocator's; seq[] (messages only) stays unmapped unless needed. */
void rp_plan_prefault(const rp_plan_t *p, int serial);
/* Parent side: keeps the fd and a copy of the header, unmaps the arrays
 * (so that a forked child does not start with them in its RSS). */
void rp_plan_detach(rp_plan_t *p);
/* Peak and final live bytes of the ops in global order. */
void rp_plan_live(const rp_plan_t *p, uint64_t *peak, uint64_t *final);
/* The op-stream hash: per-thread chains combined in thread order. */
static inline uint64_t rp_hash_step(uint64_t h, const rp_op_t *op) {
  uint64_t v = (uint64_t)op->op | (uint64_t)op->align_log2 << 8 |
               (uint64_t)(op->in_block != RP_NONE) << 16;
  h = (h ^ v) * 0x100000001b3ull;
  h = (h ^ op->size) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}
#define RP_HASH_SEED 0xcbf29ce484222325ull
uint64_t rp_hash_combine(const uint64_t *thread_hashes, uint64_t nthreads);
/* ceil(log2(align)), 0 for 0 or 1. */
uint8_t rp_align_log2(uint64_t align);
const char *rp_op_name(unsigned op);

/* "load.c" -- trace file -> calls -> plan (through tracer/trace_read.h only) */
int rp_load_trace(const char *path, rp_plan_t *out, char *err, size_t errlen);
/* Sets the header's trace_lost (the plan is still writable in the parent). */
void rp_plan_set_lost(rp_plan_t *p, uint64_t lost);

/* "synth.c" -- synthetic call streams (engine benchmark, tests) */
/* kind: "churn", "handoff" (producer/consumer, >= 2 threads), "realloc"
 * (growth chains), "aligned". Returns a malloc'ed array, NULL for an
 * unknown kind. *nthreads may be raised (handoff); tids[] must hold
 * max(*nthreads, 2) entries. */
rp_call_t *rp_synth(const char *kind, uint64_t nevents, uint32_t *nthreads,
                    size_t *ncalls, uint64_t *tids);

/* "measure.c" -- clocks, histograms, RSS */
uint64_t rp_now_ns(void);
extern int rp_verbose; /* --verbose: rp_phase() prints to stderr */
/* Marks the end of a load phase: "lwreplay: <name>: 0.123 s". */
void rp_phase(const char *name);
/* The cheapest monotonic counter: rdtsc on x86-64, cntvct_el0 on aarch64
 * (schedule.c calibrates ticks against CLOCK_MONOTONIC over the run). */
static inline uint64_t rp_ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  return rp_now_ns();
#endif
}
static inline unsigned rp_hist_bucket(uint64_t v) {
  if (v < (1u << RP_HSUB_BITS)) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= RP_HSUB_BITS */
  unsigned sub = (unsigned)(v >> (e - RP_HSUB_BITS)) & ((1u << RP_HSUB_BITS) - 1);
  return ((e - RP_HSUB_BITS + 1) << RP_HSUB_BITS) | sub;
}
static inline void rp_hist_add(rp_hist_t *h, uint64_t v) {
  h->b[rp_hist_bucket(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
}
uint64_t rp_hist_bucket_low(unsigned bucket);
void rp_hist_merge(rp_hist_t *into, const rp_hist_t *from);
/* Value (ticks) at quantile q in [0,1]: lower edge of the bucket holding it. */
uint64_t rp_hist_quantile(const rp_hist_t *h, double q);
void rp_hist_summary(const rp_hist_t *h, double ns_per_tick, rp_lat_t *out);
uint64_t rp_rss_now(void); /* bytes, from /proc/self/statm */
typedef struct rp_sampler_s rp_sampler_t;
rp_sampler_t *rp_sampler_start(unsigned period_ms);
/* Stops the sampler; returns the peak RSS it saw and the sample count. */
void rp_sampler_stop(rp_sampler_t *s, uint64_t *peak, uint64_t *samples);

/* "check.c" -- live-interval set for --check (nodes preallocated per block) */
typedef struct rp_ivset_s rp_ivset_t;
rp_ivset_t *rp_ivset_new(uint64_t nblocks);
void rp_ivset_free(rp_ivset_t *s);
/* Inserts [p, p+len) as block b; returns RP_NONE, or the live block it
 * overlaps (then nothing is inserted). Thread-safe (one lock). */
uint32_t rp_ivset_insert(rp_ivset_t *s, uint32_t b, uintptr_t p, uint64_t len);
void rp_ivset_remove(rp_ivset_t *s, uint32_t b);

/* "backend.c" -- allocator choice and the functions a replay calls */
typedef struct rp_fns_s {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  void (*free)(void *);
  void (*free_sized)(void *, size_t);
  void (*free_aligned_sized)(void *, size_t, size_t);
  void *(*memalign)(size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
} rp_fns_t;
extern const char *const rp_allocator_names[]; /* NULL-terminated */
#define RP_NULL_ALLOCATOR ":null" /* so[] of --allocator=null (nothing preloaded) */
/* Resolves an allocator name or PATH.so to the object to preload ("" for
 * glibc). Returns 0, or -1 with a one-line message. */
int rp_backend_resolve(const char *name, char *so, size_t solen, char *err, size_t errlen);
/* Child side: the functions as the dynamic linker resolved them, with
 * emulations for what the preloaded allocator lacks (listed in fallbacks). */
void rp_backend_fns(const char *so, rp_fns_t *fns, char *malloc_from, size_t mflen,
                    char *fallbacks, size_t fblen);
/* Parent side: runs one replay of the plan in a child re-executed with
 * the allocator preloaded; fills res. Returns 0 or -1 (res->error set). */
int rp_backend_run(const char *self, const char *so, const rp_plan_t *plan,
                   const rp_opts_t *o, rp_result_t *res);
/* Child main: maps the plan from fd, replays, writes the result to outfd. */
int rp_child_main(int plan_fd, int outfd, const char *so, const rp_opts_t *o);

/* "schedule.c" -- the replay engine */
int rp_replay(const rp_plan_t *plan, const rp_fns_t *fns, const rp_opts_t *o,
              rp_result_t *res);

/* "report.c" -- output */
typedef struct rp_series_s {
  const char *name; /* allocator as given */
  char so[256];
  size_t nruns;
  rp_result_t *runs;
  rp_result_t median; /* field-wise medians */
} rp_series_t;
void rp_median(rp_series_t *s);
enum rp_format { RP_FMT_TABLE, RP_FMT_JSON, RP_FMT_CSV };
void rp_report(FILE *f, enum rp_format fmt, const char *trace, const rp_plan_t *plan,
               const rp_series_t *series, size_t nseries, const rp_opts_t *o);

#endif /* LW_REPLAY_H */
