/* Internal contract between the recorder's parts (not installed):
 *   recorder.c  hooks (_lw_trace_*), per-thread state, lanes, init, fork
 *   stacks.c    libunwind capture and the lock-free stack intern table
 *   unwind.c    the fast stack walk: .eh_frame CFA rules cached per address
 *   writer.c    writer thread: drains lanes, zstd frames, file, snapshots
 *   modules.c   module map (dl_iterate_phdr + build ids)
 *
 * All recorder state lives in one struct, g (recorder.c). Memory of the
 * recorder comes from mmap, never from malloc, except inside the writer
 * thread, whose own allocations are not recorded (its thread state is
 * marked internal).
 */
#ifndef LWT_RECORDER_H
#define LWT_RECORDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LWT_MAX_LANES 2048          /* lanes alive at once (2 per thread + orphan) */
#define LWT_LANE_RING (512u << 10)  /* bytes of a lane */
#define LWT_MAX_RECORD 160          /* largest lane record */
#define LWT_RING_SLACK 256          /* bytes mapped past a ring's end */
#define LWT_DEFAULT_DEPTH 24
#define LWT_DEFAULT_TIME_SHIFT 10    /* 1.024 us units */
#define LWT_LINE 64                  /* cache line: data written by different threads stays apart */

enum lane_state { LANE_FREE = 0, LANE_LIVE = 1, LANE_CLOSING = 2 };

/* The recorder's copy of a move-to-front cache (trace_format.h's
 * lwt_ptr_cache_t: the reader's lwt_cache_find/touch give the indices a
 * record holds), kept as a ring so that neither a miss nor a hit shifts
 * the whole array: logical entry j is p[(head + j) % 16]. tag[k] is
 * lwt_mtf_tag(p[k]); one 16-byte compare of the tags finds the candidates.
 * On sqlite3 over half the lookups miss and the hits spread over all 16
 * entries (14 and 15 as often as 1), so the array form cost a full scan
 * and a 120-byte move on most calls. Checked against lwt_cache_* by
 * tests/tracer/mtf_test.c. */
typedef struct lwt_mtf_s {
  uint64_t p[LWT_PTR_CACHE];
  uint8_t tag[LWT_PTR_CACHE];
  unsigned head;
} lwt_mtf_t;

_Static_assert(LWT_PTR_CACHE == 16, "lwt_mtf_t masks indices with 15 and compares 16 tags at once");

static inline uint8_t lwt_mtf_tag(uint64_t v) {
  return (uint8_t)((v * 0x9e3779b97f4a7c15ull) >> 56);
}

/* The cache of lwt_cache_*'s initial state: 16 zeros. */
static inline void lwt_mtf_reset(lwt_mtf_t *c) {
  for (int i = 0; i < LWT_PTR_CACHE; i++) {
    c->p[i] = 0;
    c->tag[i] = lwt_mtf_tag(0);
  }
  c->head = 0;
}

/* lwt_cache_find: the smallest logical index holding v, or -1 (only 0 can
 * be held twice: the initial zeros; other values enter on a miss). */
static inline int lwt_mtf_find(const lwt_mtf_t *c, uint64_t v) {
  uint8_t t = lwt_mtf_tag(v);
  unsigned m = 0; /* bit k: tag[k] == t */
#if defined(__SSE2__)
  __m128i x = _mm_loadu_si128((const __m128i *)(const void *)c->tag);
  m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8((char)t)));
#else
  for (int k = 0; k < LWT_PTR_CACHE; k++) m |= (unsigned)(c->tag[k] == t) << k;
#endif
  if (!m) return -1;
  unsigned h = c->head;
  m = ((m >> h) | (m << (16 - h))) & 0xffffu; /* bit j: logical entry j */
  do {
    int j = __builtin_ctz(m);
    if (c->p[(h + (unsigned)j) & 15] == v) return j;
    m &= m - 1;
  } while (m);
  return -1;
}

/* Index of the entry at logical index j (-1: absent) once another value,
 * found at `first` (-1: a miss), has been touched: how a record with two
 * pointers (realloc) gets its second index before the first is applied. */
static inline int lwt_mtf_shifted(int j, int first) {
  if (j < 0) return -1;
  if (first < 0) return j < LWT_PTR_CACHE - 1 ? j + 1 : -1;
  return j < first ? j + 1 : j;
}

/* lwt_cache_touch: v becomes entry 0; found = its logical index or -1.
 * Moves min(found, 15 - found) entries. */
static inline void lwt_mtf_touch(lwt_mtf_t *c, uint64_t v, int found) {
  unsigned h = c->head, i = (unsigned)found;
  if (found == 0) return;
  if (found > 0 && i < 8) {
    /* entries 0..i-1 move up one: the one at i is overwritten */
    for (unsigned j = i; j > 0; j--) {
      c->p[(h + j) & 15] = c->p[(h + j - 1) & 15];
      c->tag[(h + j) & 15] = c->tag[(h + j - 1) & 15];
    }
  } else {
    /* the ring turns back one (the last entry becomes entry 0); a hit at
     * i then moves entries i+1..15 back into place */
    h = c->head = (h - 1) & 15;
    if (found > 0)
      for (unsigned k = i + 1; k < 16; k++) {
        c->p[(h + k) & 15] = c->p[(h + k + 1) & 15];
        c->tag[(h + k) & 15] = c->tag[(h + k + 1) & 15];
      }
  }
  c->p[h] = v;
  c->tag[h] = lwt_mtf_tag(v);
}

/* One single-producer ring. The producer (its thread) owns head and the
 * delta state; the writer owns tail. Bytes [tail, head) are complete lane
 * records not yet written to the file. Lanes are cache-line aligned and
 * tail has a line of its own: two threads' lanes never share a line, and
 * the writer's store to tail does not evict the producer's fields. */
typedef struct lwt_lane_s {
  _Alignas(LWT_LINE) _Atomic uint64_t head;
  _Atomic int state;     /* enum lane_state; FREE -> LIVE by the producer's CAS */
  _Atomic int busy;      /* producer is inside a record (see lwt_rec_stop) */
  /* Order keys (recorder.c, "order keys"): floor != 0 while the producer
   * holds a key not yet put into a ring, and is <= that key; key_hi is
   * the largest key the producer has read (the floor it stores first). */
  _Atomic uint64_t floor;
  uint64_t key_hi;
  uint8_t *ring;
  uint32_t cap;          /* power of two */
  uint32_t tid;          /* thread writing into the lane */
  uint64_t id;           /* lane id in the file; never reused in one file */
  uint64_t prev_key, prev_time, prev_ptr, prev_stack; /* delta state (time in units) */
  lwt_mtf_t cache;       /* recent pointers (trace_format.h's lwt_ptr_cache_t) */
  lwt_mtf_t stacks;      /* recent stack ids */
  uint64_t lost;         /* records dropped, not yet reported by LOST */
  uint64_t records;      /* records put (producer); folded into g.records when freed */
  char name[16];         /* thread name last written (THREAD_START/NAME) */
  _Alignas(LWT_LINE) _Atomic uint64_t tail;
} lwt_lane_t;

/* Cache lines: the fields every hook reads (first line) change only at
 * start/stop/fork; seq, which every hook increments only where order keys
 * cannot come from the CPU counter, has a line of its own, and so do the
 * rarely written counters, so that no thread's increment evicts what the
 * other threads read on every call. */
typedef struct lwt_global_s {
  _Alignas(LWT_LINE) _Atomic int enabled; /* hooks record */
  _Atomic unsigned epoch;       /* bumped on start/fork: threads drop cached lanes */
  uint64_t t0;                  /* CLOCK_MONOTONIC ns at start */
  unsigned depth;               /* max stack depth (0 = no stacks) */
  unsigned time_shift;          /* lane times are in units of 2^time_shift ns */
  uint32_t flags;               /* LWT_FLAG_* of the header */
  _Atomic int writer_running;
  _Atomic int asym_fence;       /* membarrier registered: busy_set needs no fence (recorder.c) */
  int key_ticks;                /* order keys are CPU counter ticks (else: the shared counter) */
  /* the shared counter: order keys where the CPU counter cannot serve
   * (key_ticks 0); written by every hook then, never otherwise */
  _Alignas(LWT_LINE) _Atomic uint64_t seq;
  /* The clock (recorder.c, _lwt_now): ns since t0 = clk_base_ns +
   * (counter - clk_base_ticks) * clk_mult / 2^32, refitted by the writer
   * every tick under the seqlock clk_seq (odd while it writes); clk_mult 0
   * = read clock_gettime instead. */
  _Alignas(LWT_LINE) _Atomic unsigned clk_seq;
  _Atomic uint64_t clk_base_ticks, clk_base_ns, clk_mult;
  int clk_usable;               /* the CPU counter is a usable clock here */
  uint64_t clk_t0_ticks, clk_t0_ns; /* the writer's first pair: the rate's baseline */
  _Alignas(LWT_LINE) _Atomic uint64_t next_lane_id;
  _Atomic uint64_t lost;        /* records dropped outside any lane */
  _Atomic uint64_t records;     /* records put into lanes */
  _Atomic int writer_stop;
  _Atomic int wake;             /* futex word: a lane is half full */
  _Atomic uint64_t waits;       /* times a producer waited for ring space */
  _Atomic int slow_keys;        /* keys held outside any lane's floor (recorder.c) */
  uint64_t t0_real;
  int fd;
  int pid;
  char path[4096];
  char exec_path[4096];         /* set just before exec: the last record */
  _Alignas(LWT_LINE) _Atomic int orphan_lock; /* guards lanes[0], the lane of exited threads */
  lwt_lane_t lanes[LWT_MAX_LANES];
} lwt_global_t;

extern lwt_global_t _lwt_g;

/* recorder.c */
uint64_t _lwt_now(void);          /* CLOCK_MONOTONIC ns since t0 */
/* Writer: a bound T such that every order key read from now on is >= T
 * (once the writer's fence below has run). */
uint64_t _lwt_key_bound(void);
/* Writer, between _lwt_key_bound and reading the lanes' floors: makes
 * every producer's earlier floor store visible, or its later key >= T. */
void _lwt_key_fence(void);
void _lwt_clock_fit(void);        /* writer, every tick: refits the counter to the clock */
uint32_t _lwt_gettid(void);
void _lwt_set_internal(int on);   /* this thread's allocations are not recorded */

/* stacks.c */
int _lwt_stacks_init(unsigned depth);
int _lwt_stacks_ready(void);
/* buf[0..got): unw_backtrace's frames as taken by the hook (its own and
 * the allocator's first); returns the stack's id (0 = none). */
uint32_t _lwt_stack_intern(void *const *buf, int got);
#define LWT_OWN_FRAMES 8 /* frames walked beyond the depth: ours are fewer */
/* Writer: calls emit(id, depth, ips) for every stack not yet written;
 * order: ids already referenced by drained lane bytes are emitted first. */
void _lwt_stacks_emit(void (*emit)(void *arg, uint32_t id, uint32_t depth, const uint64_t *ips),
                      void *arg);
/* Fork child / new file: every stack must be written again. */
void _lwt_stacks_reset_emitted(void);

/* unwind.c: _lwt_unwind(buf, max) fills buf as unw_backtrace(buf, max)
 * called at the same place would (buf[0]: the return address into the
 * caller) and returns the count, or -1 when a frame has a rule it does not
 * express (or LW_TRACE_UNWIND=libunwind): then take unw_backtrace.
 * _lwt_unwind_stack: the same, and *id = the stack's id (intern(buf, n):
 * _lwt_stack_intern; kept in the walk memo), or 0 when the caller must intern buf
 * itself (-1, a walk that did not own the memo, an intern that failed). */
void _lwt_unwind_init(void);  /* reads LW_TRACE_UNWIND */
int _lwt_unwind(void **buf, int max);
typedef uint32_t lwt_intern_fn(void *const *buf, int got);
int _lwt_unwind_stack(void **buf, int max, uint32_t *id, lwt_intern_fn *intern);
void _lwt_unwind_flush(void); /* an object was unloaded: forget every rule */

/* modules.c: emits MODULE records for objects not yet reported; returns
 * 1 when the set of loaded objects changed since the last call. */
int _lwt_modules_changed(void);
typedef void lwt_module_fn(void *arg, uint64_t start, uint64_t end, uint64_t offset,
                           uint64_t bias, const char *path, const uint8_t *build_id,
                           uint32_t build_id_len);
void _lwt_modules_scan(lwt_module_fn *fn, void *arg, int only_new);
void _lwt_modules_forget(void);

/* writer.c */
void _lwt_writer_wake(void);            /* a producer's lane is half full */
int _lwt_writer_open(const char *path); /* creates the file, writes nothing */
int _lwt_writer_start(void);            /* spawns the writer thread */
int _lwt_writer_failed(void);           /* a write failed (message printed) */
void _lwt_writer_stop(void);            /* drains, ends the trace, closes */
void _lwt_writer_forget(void);          /* fork child: drop the parent's writer state */

#endif /* LWT_RECORDER_H */
