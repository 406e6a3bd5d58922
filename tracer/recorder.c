/* The recorder: implements lib/events.h's _lw_trace_* hooks, the
 * per-thread lanes they write into, and the start/stop/fork/exec life
 * cycle (lw_trace_*; auto-start when built with LWT_AUTOSTART for
 * liblwmalloc-trace.so).
 *
 * Hot path (one call): relaxed load of enabled, thread-local state,
 * a plain store of the lane's busy flag (see busy_set: an xchg where
 * membarrier is missing), the lane's floor, the CPU counter as the order
 * key and the time (see "order keys"; no line shared with another
 * thread is written), optional stack walk (unwind.c, whose memo also
 * gives the stack's id; unw_backtrace where it falls back) + lock-free
 * intern, varint encoding in place at the head of the thread's ring
 * (pointers as indices into a move-to-front ring, recorder.h; see
 * lane_open). No malloc, no lock. The writer thread does the rest
 * (writer.c).
 *
 * Nesting: depth 0 -> the thread's normal lane; depth 1 (a signal
 * handler that allocates while this thread was inside the recorder) ->
 * the thread's signal lane, without a stack; deeper -> dropped and
 * counted. Calls made while the thread is "internal" (inside libunwind,
 * the writer thread, recorder start-up) are the tracer's own and are not
 * recorded.
 *
 * Invariant (stop/fork): a producer sets its lane's busy flag and only
 * then re-checks enabled and epoch; whoever turns recording off clears
 * enabled and then waits for every busy flag to drop, so no lane is
 * written once it has been drained for the last time. How the two sides
 * are fenced: see busy_set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define LW_TRACE 1
#include "events.h"
#include "lw_trace.h"
#include "recorder.h"
#include "varint.h"

lwt_global_t _lwt_g = {.fd = -1};
#define g _lwt_g

typedef struct tstate_s {
  lwt_lane_t *lane[2]; /* normal lane, signal-handler lane (this epoch) */
  unsigned epoch;
  int depth;           /* recorder nesting on this thread */
  int internal;        /* > 0: this thread's calls are the tracer's own */
  int exited;          /* past its pthread key destructor: orphan lane */
  int need_start;      /* THREAD_START not yet written to lane[0] */
  uint32_t tid;
  lwt_lane_t *owned;   /* lane whose floor _lw_trace_enter took (token bit TOK_OWN) */
  unsigned owned_epoch;
} tstate_t;

static __thread tstate_t ts __attribute__((tls_model("initial-exec")));

static struct {
  int follow_fork, follow_exec;
  char stem[4096];     /* output name stem for children ("" = exe name) */
  pthread_key_t key;
  int key_ok, atfork_done, atexit_done;
} opt;

/* ---- small helpers ----------------------------------------------------- */

static uint64_t mono_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---- the clock ------------------------------------------------------------
 * Record times are CLOCK_MONOTONIC ns since t0. clock_gettime costs ~28 ns
 * on the development VM against ~16 for the CPU's counter (TSC on x86-64,
 * CNTVCT_EL0 on aarch64), so the hooks read the counter and convert it
 * with a line the writer thread refits every tick (_lwt_clock_fit): the
 * rate is measured from the writer's first pair to now and the line is
 * re-anchored at each fit, so it never drifts from the clock by more than
 * the rate's error over one tick. Until the first fit, while the writer
 * is updating the line, and where the counter is not what the kernel uses
 * as its clock (clocksource not tsc / arch_sys_counter, other CPUs, or
 * LW_TRACE_CLOCK=mono), the hooks call clock_gettime. */
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#define CLK_COUNTER "tsc"
static inline uint64_t clk_ticks(void) { return __rdtsc(); }
#elif defined(__aarch64__)
#define CLK_COUNTER "arch_sys_counter"
static inline uint64_t clk_ticks(void) {
  uint64_t v;
  __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
  return v;
}
#endif

/* The time of a counter reading t already taken (an order key): no
 * second read of the counter. */
static inline uint64_t ticks_ns(uint64_t t) {
#if defined(CLK_COUNTER) && defined(__SIZEOF_INT128__)
  unsigned s = atomic_load_explicit(&g.clk_seq, memory_order_acquire);
  uint64_t mult = atomic_load_explicit(&g.clk_mult, memory_order_relaxed);
  if (mult && !(s & 1)) {
    uint64_t bt = atomic_load_explicit(&g.clk_base_ticks, memory_order_relaxed);
    uint64_t bn = atomic_load_explicit(&g.clk_base_ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&g.clk_seq, memory_order_relaxed) == s && t >= bt)
      return bn + (uint64_t)(((unsigned __int128)(t - bt) * mult) >> 32);
  }
#else
  (void)t;
#endif
  return mono_ns(CLOCK_MONOTONIC) - g.t0;
}

/* Now, by the counter where it is the kernel's clock. */
static inline uint64_t now_ns(void) {
#if defined(CLK_COUNTER) && defined(__SIZEOF_INT128__)
  return ticks_ns(clk_ticks());
#else
  return ticks_ns(0);
#endif
}

uint64_t _lwt_now(void) { return now_ns(); }

static int key_counter_fast(void);
static inline uint64_t key_ticks_read(void);

/* At start: is the counter the kernel's own clock here? */
static void clk_setup(void) {
  g.key_ticks = 0;
  atomic_store(&g.clk_mult, 0);
  g.clk_usable = 0;
  g.clk_t0_ticks = g.clk_t0_ns = 0;
#if defined(CLK_COUNTER) && defined(__SIZEOF_INT128__)
  const char *e = getenv("LW_TRACE_CLOCK");
  if (e && strcmp(e, "mono") == 0) return;
  char cs[64] = {0};
  int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!read(fd, cs, sizeof cs - 1);
    close(fd);
  }
  int kernel_clock = strncmp(cs, CLK_COUNTER, strlen(CLK_COUNTER)) == 0;
  g.clk_usable = kernel_clock || (e && strcmp(e, "counter") == 0);
  /* order keys from the counter only where the kernel itself keeps time
   * with it (it then checked that every CPU's counter agrees) and one
   * tick is under a nanosecond (see "order keys" below) */
  g.key_ticks = kernel_clock && key_counter_fast();
#endif
  const char *k = getenv("LW_TRACE_KEYS"); /* tests: force one source */
  if (k && strcmp(k, "shared") == 0) g.key_ticks = 0;
#if defined(CLK_COUNTER) && defined(__SIZEOF_INT128__)
  if (k && strcmp(k, "counter") == 0) g.key_ticks = 1;
#endif
}

void _lwt_clock_fit(void) {
#if defined(CLK_COUNTER) && defined(__SIZEOF_INT128__)
  if (!g.clk_usable) return;
  /* the closest of three (counter, clock, counter) readings */
  uint64_t best_gap = UINT64_MAX, t = 0, ns = 0;
  for (int i = 0; i < 3; i++) {
    uint64_t a = clk_ticks(), n = mono_ns(CLOCK_MONOTONIC) - g.t0, b = clk_ticks();
    if (b >= a && b - a < best_gap) {
      best_gap = b - a;
      t = a + (b - a) / 2;
      ns = n;
    }
  }
  if (best_gap == UINT64_MAX) return;
  if (g.clk_t0_ticks == 0) {
    g.clk_t0_ticks = t;
    g.clk_t0_ns = ns;
    return;
  }
  if (t <= g.clk_t0_ticks || ns < g.clk_t0_ns + 5000000) return; /* baseline under 5 ms */
  uint64_t mult = (uint64_t)(((unsigned __int128)(ns - g.clk_t0_ns) << 32) / (t - g.clk_t0_ticks));
  unsigned s = atomic_load_explicit(&g.clk_seq, memory_order_relaxed);
  atomic_store_explicit(&g.clk_seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&g.clk_base_ticks, t, memory_order_relaxed);
  atomic_store_explicit(&g.clk_base_ns, ns, memory_order_relaxed);
  atomic_store_explicit(&g.clk_mult, mult, memory_order_relaxed);
  atomic_store_explicit(&g.clk_seq, s + 2, memory_order_release);
#endif
}

uint32_t _lwt_gettid(void) {
  if (!ts.tid) ts.tid = (uint32_t)syscall(SYS_gettid);
  return ts.tid;
}

void _lwt_set_internal(int on) { ts.internal += on ? 1 : -1; }

/* ---- order keys ------------------------------------------------------------
 * Every lane record carries an order key; the writer merges the lanes by
 * (key, lane id, place in the lane) and numbers the records 1, 2, 3... in
 * that order: the seq of the file (writer.c, "the merge"). Keys are the CPU
 * counter (g.key_ticks), read in order with the memory accesses around it
 * (x86: rdtscp, plus the compiler barrier; aarch64: dsb; isb; mrs),
 * so that no hook writes a shared line: a shared counter (g.seq, the old
 * sequence number) bounced between the cores on every call and made two
 * recording threads ~1.2-1.3x slower per call than one. Where the counter
 * cannot serve, the keys are that shared counter (correct, as before).
 *
 * Causality (the invariant the merge relies on): a block freed by thread A
 * and returned by thread B's malloc must sort free first. A's free takes
 * its key in _lw_trace_enter, before the real free: the read executes
 * after every earlier instruction and load (rdtscp) and before any later
 * store becomes visible (stores retire after it). B's malloc takes its key
 * after the real malloc returned, after every load of it completed. B's
 * malloc can only return the block after it observed a store A's free
 * made, so A's read happened before that store was visible, which was
 * before B's load, before B's read: A's key < B's key on a counter that is
 * one clock for every core (the kernel's clocksource is that counter:
 * `tsc` / `arch_sys_counter`, which it only keeps after checking the
 * cores agree). The path between the two reads is hundreds of cycles, so
 * a counter of >= 1 GHz cannot give both the same value; slower counters
 * (most aarch64 systems: 24-100 MHz; qemu) use the shared counter. The
 * same argument orders an allocation before a free of its block by
 * another thread (the pointer is handed over after the hook returned),
 * and realloc: its free key in _lw_trace_enter, its allocation key after
 * it returned, both points numbered by the merge (seq and free_seq).
 *
 * Why both reads are ordered (rdtscp rather than a plain rdtsc): a plain
 * rdtsc is ordered after nothing, so it may read the counter before an
 * earlier load has its value, and each side needs its read after a load.
 * B's malloc loads the free list (a miss while A's free is writing that
 * line), its branch on the value is predicted, and B runs on into the
 * hook, whose rdtsc can read the counter before A's own read: B's key <
 * A's. A free is the same the other way round: the pointer handed over
 * by the allocating thread is loaded, the branch predicted, and free's
 * rdtsc can run before that load completes. (Against later stores a
 * plain rdtsc would do: it retires before them.) No store or lock of the
 * hook or the allocator orders a later rdtsc; lfence, or rdtscp's own
 * wait, does. The order costs ~11 ns a call: ./tw 1's worker 0.314 ->
 * 0.271 s for 4 M calls with a plain read (medians of 21 interleaved
 * runs; tracer/README.md, "Measured", also for a scheme that kept the
 * order with plain reads and was dropped). The read itself costs more:
 * 18-19 ns back to back for rdtsc, 25-27 for rdtscp on the VM this was
 * measured on.
 *
 * The writer must know when no key below some bound W can still arrive:
 * a producer holding a key not yet in its ring shows it in its lane's
 * floor (<= the key). See _lwt_key_fence and writer.c for the bound. */
#define TOK_KEY ((1ull << 62) - 1)
#define TOK_OWN (1ull << 62)  /* _lw_trace_enter set t->owned's floor */
#define TOK_SLOW (1ull << 63) /* _lw_trace_enter counted itself in g.slow_keys */

static inline __attribute__((unused)) uint64_t key_ticks_read(void) {
#if defined(__x86_64__)
  uint32_t lo, hi;
  /* rdtscp: after every earlier instruction has executed and every
   * earlier load is globally visible; later stores become visible only
   * after it retires (lfence; rdtsc does the same, ~8 % dearer here) */
  __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi) : : "rcx", "memory");
  return ((uint64_t)hi << 32 | lo) & TOK_KEY;
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ __volatile__("dsb ish\n\tisb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
  return v & TOK_KEY;
#else
  return 0;
#endif
}

static __attribute__((unused)) int key_counter_fast(void) {
#if defined(__x86_64__)
  /* an invariant TSC (the kernel's clocksource) runs at >= 1 GHz; the
   * ordered read needs RDTSCP (CPUID 0x80000001 EDX bit 27) */
  unsigned a, b, c, d;
  return __get_cpuid(0x80000001, &a, &b, &c, &d) && (d >> 27 & 1);
#elif defined(__aarch64__)
  uint64_t f;
  __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(f));
  return f >= 1000000000ull;
#else
  return 0;
#endif
}

static inline uint64_t key_read(void) {
  if (g.key_ticks) return key_ticks_read();
  return atomic_fetch_add_explicit(&g.seq, 1, memory_order_relaxed) + 1;
}

uint64_t _lwt_key_bound(void) {
  if (!g.key_ticks) return atomic_load(&g.seq) + 1;
  uint64_t k = key_ticks_read();
  atomic_signal_fence(memory_order_seq_cst);
#if defined(__x86_64__)
  __asm__ __volatile__("lfence" : : : "memory"); /* the fence below comes after the read */
#elif defined(__aarch64__)
  __asm__ __volatile__("isb" : : : "memory");
#endif
  return k;
}

/* floor_take before a producer reads a key (returns 1 if it set the floor,
 * 0 if one is set already: a signal handler inside an enter/call window
 * of its thread, whose keys are above that floor). The store then the
 * read is the same store-load pattern as busy_set, fenced the same way:
 * with membarrier registered a plain store, and the writer's
 * _lwt_key_fence runs membarrier after it read its bound T: if the
 * producer's barrier point came after the floor store, the writer sees
 * the floor; if before, the producer's key is read after the writer's T
 * and is >= T. Without membarrier a seq_cst store and a fence. The
 * writer reads the floor, then head (acquire): a floor seen cleared means
 * the record put before the clear (release) is in the ring. */
static inline int floor_take(lwt_lane_t *l) {
  if (atomic_load_explicit(&l->floor, memory_order_relaxed)) return 0;
  uint64_t f = l->key_hi ? l->key_hi : 1;
  if (atomic_load_explicit(&g.asym_fence, memory_order_relaxed)) {
    atomic_store_explicit(&l->floor, f, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
  } else {
    atomic_store(&l->floor, f);
  }
  return 1;
}

static inline void floor_drop(lwt_lane_t *l) {
  atomic_store_explicit(&l->floor, 0, memory_order_release);
}

/* A key taken with the floor held; key_hi only grows (a handler's larger
 * key lost to the interrupted update only makes a later floor lower). */
static inline uint64_t key_take(lwt_lane_t *l) {
  uint64_t k = key_read();
  if (k > l->key_hi) l->key_hi = k;
  return k;
}

void _lwt_key_fence(void);

/* ---- the busy flag --------------------------------------------------------
 * The invariant above is a store-then-load on each side (producer: busy =
 * 1, load enabled; stopper: enabled = 0, load busy). Each side needs its
 * store ordered before its load, or both can miss the other (x86 lets a
 * load pass an earlier store). A seq_cst store of busy (an xchg, ~20
 * cycles) on every call did that. Instead the stopper, which runs once,
 * pays: the process registers for membarrier(PRIVATE_EXPEDITED) at start,
 * producers then store busy with only a compiler barrier before their
 * loads (program order in the instruction stream), and rec_stop issues
 * membarrier between clearing enabled and reading the busy flags. The
 * kernel makes every running thread of the process execute a full barrier
 * (a thread not running has one at its context switch) before membarrier
 * returns. Take a producer's barrier point: if it comes after the
 * producer's store of busy, that store is visible to the stopper's loads
 * that follow membarrier's return, and the stopper waits; if it comes
 * before the producer's load of enabled, that load sees the stopper's
 * enabled = 0 (stored before membarrier was called), and the producer
 * backs out. The store precedes the load, so one of the two holds.
 * asym_fence goes 0 -> 1 once per process (fork child: see fork_child,
 * single-threaded there): a producer that read 0 used the seq_cst store,
 * which pairs with the stopper's seq_cst store and loads whether or not the
 * stopper also calls membarrier. Without membarrier (old kernels,
 * valgrind, seccomp) asym_fence stays 0. */
#if defined(__linux__) && defined(SYS_membarrier)
#include <linux/membarrier.h>
static int asym_register(void) {
  return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}
static void asym_heavy_fence(void) {
  if (!atomic_load(&g.asym_fence)) {
    atomic_thread_fence(memory_order_seq_cst);
    return;
  }
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
  /* cannot fail once registered; in case it does, the slower global form,
   * and failing that a pause far longer than a producer's few
   * instructions between its store and its load */
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) return;
  struct timespec t = {0, 20000000};
  nanosleep(&t, NULL);
}
#else
static int asym_register(void) { return 0; }
static void asym_heavy_fence(void) { atomic_thread_fence(memory_order_seq_cst); }
#endif

void _lwt_key_fence(void) { asym_heavy_fence(); }

static inline void busy_set(lwt_lane_t *l) {
  if (atomic_load_explicit(&g.asym_fence, memory_order_relaxed)) {
    atomic_store_explicit(&l->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the loads after it */
  } else {
    atomic_store(&l->busy, 1); /* seq_cst: ordered before the loads that follow */
  }
}

/* ---- lanes --------------------------------------------------------------- */

static int lane_setup(lwt_lane_t *l, uint32_t tid) {
  if (!l->ring) {
    void *m = mmap(NULL, LWT_LANE_RING + LWT_RING_SLACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -1;
    l->ring = m;
    l->cap = LWT_LANE_RING;
  }
  l->tid = tid;
  l->id = atomic_fetch_add(&g.next_lane_id, 1);
  l->prev_key = l->prev_time = l->prev_ptr = l->prev_stack = 0;
  atomic_store(&l->floor, 0);
  l->key_hi = g.key_ticks ? key_ticks_read() : atomic_load(&g.seq);
  lwt_mtf_reset(&l->cache);
  lwt_mtf_reset(&l->stacks);
  l->lost = 0;
  l->name[0] = 0;
  return 0;
}

/* Claims a free lane (lock-free: CAS on its state). Lane 0 is the orphan lane. */
static lwt_lane_t *lane_claim(uint32_t tid) {
  for (unsigned i = 1; i < LWT_MAX_LANES; i++) {
    lwt_lane_t *l = &g.lanes[i];
    int expect = LANE_FREE;
    if (atomic_load_explicit(&l->state, memory_order_relaxed) != LANE_FREE) continue;
    if (!atomic_compare_exchange_strong(&l->state, &expect, LANE_LIVE)) continue;
    if (lane_setup(l, tid) < 0) {
      atomic_store(&l->state, LANE_FREE);
      return NULL;
    }
    return l;
  }
  return NULL;
}

static void lane_sleep(unsigned spins) {
  if (spins < 64) {
    sched_yield();
  } else {
    struct timespec t = {0, 100000};
    nanosleep(&t, NULL);
  }
}

/* Appends one encoded record; when the ring is full, waits (bounded) for
 * the writer if may_wait, else drops. Allocator events may come with an
 * allocator lock held, which the writer's own allocations could need:
 * they never wait. Returns 0 when the record was dropped (counted in lost). */
static __attribute__((noinline)) int lane_put_slow(lwt_lane_t *l, const uint8_t *rec, size_t n,
                                                   int may_wait) {
  uint64_t head = atomic_load_explicit(&l->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&l->tail, memory_order_acquire);
  /* + 32: the fixed-size copy below may scribble up to 32 bytes past head */
  size_t need = n + 32 + (l->lost ? 1 + LWT_VARINT_MAX : 0);
  for (unsigned spins = 0; l->cap - (head - tail) < need; spins++) {
    if (spins == 0) {
      atomic_fetch_add_explicit(&g.waits, 1, memory_order_relaxed);
      _lwt_writer_wake();
    }
    if (!may_wait || !atomic_load(&g.writer_running) || !atomic_load(&g.enabled) || spins > 20000) {
      l->lost++;
      return 0;
    }
    lane_sleep(spins);
    tail = atomic_load_explicit(&l->tail, memory_order_acquire);
  }
  uint8_t lostrec[1 + LWT_VARINT_MAX];
  _Static_assert(LWT_MAX_RECORD + 1 + LWT_VARINT_MAX <= LWT_RING_SLACK, "slack holds any record");
  size_t nl = 0;
  if (l->lost) {
    lostrec[0] = LWT_LTAG_LOST;
    nl = (size_t)(lwt_put_varint(lostrec + 1, l->lost) - lostrec);
    l->lost = 0;
  }
  /* The ring has LWT_RING_SLACK bytes past cap: a record is copied in one
   * piece and the part beyond cap is then moved to the ring's start. */
  size_t at = (size_t)(head & (l->cap - 1));
  if (nl) memcpy(l->ring + at, lostrec, nl);
  if (n <= 32 && nl == 0)
    __builtin_memcpy(l->ring + at, rec, 32); /* fixed size: inlined */
  else
    memcpy(l->ring + at + nl, rec, n);
  if (at + nl + n > l->cap) memcpy(l->ring, l->ring + l->cap, at + nl + n - l->cap);
  head += nl + n;
  l->records++;
  atomic_store_explicit(&l->head, head, memory_order_release);
  /* crossing half full: wake the writer (one futex call per crossing) */
  if (head - tail >= l->cap / 2 && head - tail - (n + nl) < l->cap / 2) _lwt_writer_wake();
  return 1;
}

/* A record is encoded in place: lane_open returns where to write it, the
 * ring at head when it has room for any record and nothing was lost (the
 * common case; the LWT_RING_SLACK bytes past cap take a record that runs
 * over the end), else buf; lane_close then publishes it (in the ring:
 * the part past cap moved to the ring's start, head stored) or hands buf
 * to lane_put_slow. Encoding into a stack buffer and copying it with
 * 16-byte loads cost ~10 % of the hook's samples: those loads of bytes
 * just stored one at a time cannot be forwarded from the store buffer and
 * wait until the stores reach the cache. */
typedef struct lane_pos_s {
  uint64_t head, tail;
  uint8_t *at; /* NULL: the record is in buf */
} lane_pos_t;

static inline uint8_t *lane_open(lwt_lane_t *l, lane_pos_t *pos, uint8_t *buf) {
  pos->head = atomic_load_explicit(&l->head, memory_order_relaxed);
  pos->tail = atomic_load_explicit(&l->tail, memory_order_acquire);
  _Static_assert(LWT_MAX_RECORD <= LWT_RING_SLACK, "slack holds any record");
  if (__builtin_expect(l->lost || l->cap - (pos->head - pos->tail) < LWT_MAX_RECORD + 32, 0))
    return pos->at = NULL, buf;
  return pos->at = l->ring + (pos->head & (l->cap - 1));
}

/* rec..end: the record lane_open's pointer led to. Returns 0 when it was
 * dropped (counted in lost). */
static inline int lane_close(lwt_lane_t *l, const lane_pos_t *pos, const uint8_t *rec,
                             const uint8_t *end, int may_wait) {
  size_t n = (size_t)(end - rec);
  if (__builtin_expect(!pos->at, 0)) return lane_put_slow(l, rec, n, may_wait);
  size_t at = (size_t)(pos->at - l->ring);
  if (at + n > l->cap) memcpy(l->ring, l->ring + l->cap, at + n - l->cap);
  l->records++;
  atomic_store_explicit(&l->head, pos->head + n, memory_order_release);
  if (pos->head + n - pos->tail >= l->cap / 2 && pos->head - pos->tail < l->cap / 2) _lwt_writer_wake();
  return 1;
}

/* ---- entering / leaving the recorder ----------------------------------- */

static void thread_start_record(tstate_t *t, lwt_lane_t *l);

/* Returns the lane to write to with its busy flag set, or NULL when this
 * call must not be recorded. Always paired with rec_end(t, result).
 * rec_begin_slow: any case (nesting, a new epoch or thread, the orphan
 * lane); rec_begin below takes the common one inline. */
static __attribute__((noinline)) lwt_lane_t *rec_begin_slow(tstate_t *t) {
  int level = t->depth++;
  if (level >= 2) {
    atomic_fetch_add_explicit(&g.lost, 1, memory_order_relaxed);
    return NULL;
  }
  unsigned ep = atomic_load_explicit(&g.epoch, memory_order_acquire);
  if (t->epoch != ep) {
    t->lane[0] = t->lane[1] = NULL;
    t->epoch = ep;
  }
  lwt_lane_t *l;
  if (t->exited) {
    /* level 0 waits for the lock (held by another exiting thread for a few
     * instructions); a signal handler on top of the holder must not */
    int busy = atomic_exchange(&g.orphan_lock, 1);
    for (unsigned spins = 0; busy && level == 0 && spins < 100000; spins++) {
      sched_yield();
      busy = atomic_exchange(&g.orphan_lock, 1);
    }
    if (busy) {
      atomic_fetch_add_explicit(&g.lost, 1, memory_order_relaxed);
      return NULL;
    }
    l = &g.lanes[0];
  } else {
    l = t->lane[level];
    if (!l) {
      l = lane_claim(_lwt_gettid());
      if (!l) {
        atomic_fetch_add_explicit(&g.lost, 1, memory_order_relaxed);
        return NULL;
      }
      t->lane[level] = l;
      if (level == 0) {
        t->need_start = 1;
        if (opt.key_ok) pthread_setspecific(opt.key, (void *)1);
      }
    }
  }
  busy_set(l);
  if (!atomic_load(&g.enabled) || atomic_load(&g.epoch) != ep) {
    atomic_store_explicit(&l->busy, 0, memory_order_release);
    if (l == &g.lanes[0]) atomic_store(&g.orphan_lock, 0);
    return NULL;
  }
  if (level == 0 && t->need_start && !t->exited) {
    t->need_start = 0;
    thread_start_record(t, l);
  }
  return l;
}

/* Depth 0, this epoch's lane, THREAD_START written. No test of exited:
 * thread_exit clears lane[0] and nothing sets it again on that thread. */
static inline lwt_lane_t *rec_begin(tstate_t *t) {
  lwt_lane_t *l = t->lane[0];
  unsigned ep = atomic_load_explicit(&g.epoch, memory_order_acquire);
  if (__builtin_expect(!l || t->depth != 0 || t->epoch != ep || t->need_start, 0))
    return rec_begin_slow(t);
  t->depth = 1;
  busy_set(l);
  if (__builtin_expect(atomic_load(&g.enabled) && atomic_load(&g.epoch) == ep, 1)) return l;
  atomic_store_explicit(&l->busy, 0, memory_order_release);
  return NULL;
}

static inline void rec_end(tstate_t *t, lwt_lane_t *l) {
  if (l) {
    atomic_store_explicit(&l->busy, 0, memory_order_release);
    if (l == &g.lanes[0]) atomic_store(&g.orphan_lock, 0);
  }
  t->depth--;
}

/* Orphan lane: exited threads share it, so each of its records is
 * preceded by a TID record (they are rare: TLS teardown frees). */
static uint8_t *rec_tid(lwt_lane_t *l, uint8_t *p) {
  if (l != &g.lanes[0]) return p;
  *p++ = LWT_LTAG_TID;
  return lwt_put_varint(p, _lwt_gettid());
}

/* Writes a record made of tag, dseq, dtime and `extra` bytes. */
static void rec_simple(lwt_lane_t *l, unsigned tag, const uint8_t *extra, size_t nextra,
                       int may_wait) {
  uint8_t b[LWT_MAX_RECORD + 32];
  lane_pos_t pos;
  uint8_t *const r = lane_open(l, &pos, b), *p = rec_tid(l, r);
  int own = floor_take(l);
  uint64_t key = key_take(l);
  uint64_t now = (g.key_ticks ? ticks_ns(key) : now_ns()) >> g.time_shift;
  if (now < l->prev_time) now = l->prev_time; /* counter and clock_gettime may differ by a unit */
  *p++ = (uint8_t)tag;
  p = lwt_put_svarint(p, (int64_t)(key - l->prev_key));
  p = lwt_put_svarint(p, (int64_t)(now - l->prev_time));
  if (nextra) memcpy(p, extra, nextra);
  p += nextra;
  if (lane_close(l, &pos, r, p, may_wait)) {
    l->prev_key = key;
    l->prev_time = now;
  }
  if (own) floor_drop(l);
}

static void thread_start_record(tstate_t *t, lwt_lane_t *l) {
  (void)t;
  char name[17] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  size_t n = strnlen(name, 16);
  memcpy(l->name, name, n < sizeof l->name ? n : sizeof l->name - 1);
  uint8_t extra[1 + 16];
  extra[0] = (uint8_t)n;
  memcpy(extra + 1, name, n);
  rec_simple(l, LWT_LTAG_THREAD_START, extra, 1 + n, 1);
}

/* ---- the hooks (lib/events.h) --------------------------------------------- */

uint64_t _lw_trace_enter(void) {
  if (!atomic_load_explicit(&g.enabled, memory_order_relaxed)) return 0;
  tstate_t *t = &ts;
  if (t->internal) return 0;
  /* a thread's first call may be a free: write THREAD_START before its
   * token is taken, so that START sorts first by seq too */
  unsigned ep = atomic_load_explicit(&g.epoch, memory_order_relaxed);
  if ((!t->lane[0] || t->epoch != ep) && !t->exited && t->depth == 0) rec_end(t, rec_begin(t));
  lwt_lane_t *l = t->lane[0];
  if (__builtin_expect(l && t->depth == 0 && !t->exited && t->epoch == ep, 1)) {
    /* the key is held across the real free: its floor is the key itself
     * once read, so the writer's bound is not held back further */
    int own = floor_take(l);
    uint64_t k = key_take(l);
    if (!own) return k;
    atomic_store_explicit(&l->floor, k ? k : 1, memory_order_relaxed);
    t->owned = l;
    t->owned_epoch = ep;
    return k | TOK_OWN;
  }
  /* a handler inside the recorder, a thread past its exit, no lane: rare */
  atomic_fetch_add(&g.slow_keys, 1);
  return key_read() | TOK_SLOW;
}

/* The end of an _lw_trace_enter token's window, recorded or not. */
static inline void token_done(tstate_t *t, uint64_t token) {
  if (token & TOK_OWN) {
    lwt_lane_t *o = t->owned;
    t->owned = NULL;
    /* lanes reset since (stop/start): the floor was cleared then and the
     * lane may be another thread's now */
    if (o && t->owned_epoch == atomic_load_explicit(&g.epoch, memory_order_relaxed)) floor_drop(o);
  } else if (token & TOK_SLOW) {
    atomic_fetch_sub(&g.slow_keys, 1);
  }
}

void _lw_trace_call(unsigned op, uint64_t size, uint64_t align, const void *in, const void *out,
                    uint64_t token) {
  tstate_t *t = &ts;
  if (__builtin_expect(!atomic_load_explicit(&g.enabled, memory_order_relaxed) || t->internal ||
                       op == 0 || op >= LW_OP_LIMIT, 0)) {
    if (token) token_done(t, token);
    return;
  }
  lwt_lane_t *l = rec_begin(t);
  if (l) {
    /* keys: a free's from the token (taken before the real free), an
     * allocation's now (after it returned); the floor covers the fresh
     * reads (or is held already by the token's window) */
    uint64_t seq, free_seq = 0;
    int own = 0;
    if (lwt_op_frees(op) && token) {
      free_seq = token & TOK_KEY;
      if (lwt_op_has_free_seq(op)) {
        own = floor_take(l);
        seq = key_take(l);
      } else {
        seq = free_seq;
      }
    } else {
      own = floor_take(l);
      seq = key_take(l);
      if (lwt_op_frees(op)) free_seq = seq;
      if (lwt_op_has_free_seq(op)) seq = key_take(l);
    }
    uint64_t now = (g.key_ticks ? ticks_ns(seq) : now_ns()) >> g.time_shift;
    if (now < l->prev_time) now = l->prev_time; /* counter and clock_gettime may differ by a unit */
    int stacks = (g.flags & LWT_FLAG_STACKS) != 0;
    uint32_t stack = 0;
    if (stacks && t->depth == 1 && _lwt_stacks_ready() &&
        (lwt_op_has_out(op) || !(g.flags & LWT_FLAG_ALLOC_STACKS))) {
      /* Walked here rather than in stacks.c: one frame less to unwind.
       * Not marked internal: a signal handler that allocates while we
       * unwind must be recorded (it lands in the signal lane, one level
       * deeper, where no stack is taken, so there is no recursion). */
      void *frames[LWT_MAX_DEPTH + LWT_OWN_FRAMES];
      int want = (int)(g.depth + LWT_OWN_FRAMES), got = _lwt_unwind_stack(frames, want, &stack, _lwt_stack_intern);
      if (!stack) {
        if (got < 0) got = unw_backtrace(frames, want); /* a frame unwind.c does not express */
        stack = _lwt_stack_intern(frames, got);
      }
    }
    uint8_t b[LWT_MAX_RECORD];
    lane_pos_t pos;
    uint8_t *const r = lane_open(l, &pos, b), *p = rec_tid(l, r);
    uint8_t *tag = p++;
    *tag = (uint8_t)op;
    p = lwt_put_svarint(p, (int64_t)(seq - l->prev_key));
    p = lwt_put_svarint(p, (int64_t)(now - l->prev_time));
    if (lwt_op_has_size(op)) p = lwt_put_varint(p, size);
    if (lwt_op_has_align(op)) p = lwt_put_varint(p, align);
    /* pointers: cache index or delta, found on the live cache; the touches
     * are applied only once the record is put (the reader sees exactly
     * these). Two pointers (realloc): the second index is the one it has
     * once the first is touched. */
    uint64_t ptr = l->prev_ptr, pin = (uint64_t)(uintptr_t)in, pout = (uint64_t)(uintptr_t)out;
    int has_in = lwt_op_has_in(op), has_out = lwt_op_has_out(op), hin = -1, hout = -1;
    if (has_in) {
      hin = lwt_mtf_find(&l->cache, pin);
      if (hin >= 0) {
        *tag |= LWT_CALL_IN_HIT;
        *p++ = (uint8_t)hin;
      } else {
        p = lwt_put_svarint(p, (int64_t)(pin - ptr));
      }
      ptr = pin;
    }
    if (has_out) {
      hout = lwt_mtf_find(&l->cache, pout);
      if (has_in) hout = pout == pin ? 0 : lwt_mtf_shifted(hout, hin);
      if (hout >= 0) {
        *tag |= LWT_CALL_OUT_HIT;
        *p++ = (uint8_t)hout;
      } else {
        p = lwt_put_svarint(p, (int64_t)(pout - ptr));
      }
      ptr = pout;
    }
    if (lwt_op_has_free_seq(op)) p = lwt_put_svarint(p, (int64_t)(seq - free_seq));
    int shit = -1;
    if (stacks) {
      shit = lwt_mtf_find(&l->stacks, stack);
      p = lwt_put_varint(p, shit >= 0 ? (uint64_t)shit
                                       : lwt_zigzag((int64_t)(stack - l->prev_stack)) + LWT_PTR_CACHE);
    }
    if (lane_close(l, &pos, r, p, 1)) {
      l->prev_key = seq;
      l->prev_time = now;
      l->prev_ptr = ptr;
      if (has_in) lwt_mtf_touch(&l->cache, pin, hin);
      if (has_out) lwt_mtf_touch(&l->cache, pout, hout);
      if (stacks) {
        l->prev_stack = stack;
        lwt_mtf_touch(&l->stacks, stack, shit);
      }
    }
    if (own) floor_drop(l);
  }
  if (token) token_done(t, token);
  rec_end(t, l);
}

void _lw_trace_event(unsigned kind, uint64_t a, uint64_t b, uint64_t c) {
  if (!atomic_load_explicit(&g.enabled, memory_order_relaxed)) return;
  tstate_t *t = &ts;
  if (t->internal || kind == 0 || kind >= LW_EV_LIMIT) return;
  lwt_lane_t *l = rec_begin(t);
  if (l) {
    uint8_t extra[3 * LWT_VARINT_MAX], *p = extra;
    p = lwt_put_varint(p, a);
    p = lwt_put_varint(p, b);
    p = lwt_put_varint(p, c);
    rec_simple(l, LWT_LTAG_EVENT_BASE + kind, extra, (size_t)(p - extra), 0);
  }
  rec_end(t, l);
}

/* ---- threads ---------------------------------------------------------------- */

/* pthread key destructor: the thread is exiting. Later calls on it (TLS
 * teardown frees) go to the orphan lane. */
static void thread_exit(void *unused) {
  (void)unused;
  tstate_t *t = &ts;
  if (t->internal || t->exited) return;
  unsigned ep = atomic_load(&g.epoch);
  if (t->epoch == ep && t->lane[0]) {
    lwt_lane_t *l = rec_begin(t);
    if (l) rec_simple(l, LWT_LTAG_THREAD_EXIT, NULL, 0, 1);
    rec_end(t, l);
    for (int i = 0; i < 2; i++)
      if (t->lane[i]) atomic_store_explicit(&t->lane[i]->state, LANE_CLOSING, memory_order_release);
  }
  t->lane[0] = t->lane[1] = NULL;
  t->exited = 1;
}

/* ---- start / stop --------------------------------------------------------- */

static void wait_lanes_idle(void) {
  for (unsigned i = 0; i < LWT_MAX_LANES; i++)
    for (unsigned spins = 0; atomic_load(&g.lanes[i].busy) && spins < 20000; spins++)
      lane_sleep(spins);
}

/* Opens path, or (when it exists or is NULL) STEM.N.lwt.zst for the first
 * free N: a trace never overwrites a file. */
static int open_unique(const char *path, const char *stem) {
  if (path && _lwt_writer_open(path) == 0) return 0;
  if (path && errno != EEXIST) return -1;
  char name[4200 + 32];
  for (unsigned n = 0; n < 10000; n++) {
    if (n == 0)
      snprintf(name, sizeof name, "%.4200s.lwt.zst", stem);
    else
      snprintf(name, sizeof name, "%.4200s.%u.lwt.zst", stem, n);
    if (_lwt_writer_open(name) == 0) return 0;
    if (errno != EEXIST) return -1;
  }
  return -1;
}

static void set_stem(const char *path) {
  size_t n = strlen(path);
  const char *suffix = ".lwt.zst";
  size_t sl = strlen(suffix);
  if (n > sl && strcmp(path + n - sl, suffix) == 0) n -= sl;
  if (n >= sizeof opt.stem) n = sizeof opt.stem - 1;
  memcpy(opt.stem, path, n);
  opt.stem[n] = 0;
}

/* PROG.PID: PROG is the name the program was run by (argv[0]'s last
 * part: redis-server, not the redis-check-rdb its link points to), else
 * the executable's file name. */
static void default_stem(char *dst, size_t cap) {
  char exe[4096];
  const char *base = program_invocation_short_name;
  if (!base || !base[0]) {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
  }
  snprintf(dst, cap, "%.255s.%d", base[0] ? base : "prog", (int)getpid());
}

static void atexit_stop(void);
static void fork_prepare(void);
static void fork_parent(void) {}
static void fork_child(void);

/* Resets lanes for a new file; no producer may be inside (enabled == 0 and
 * every busy flag down, or single-threaded fork child). */
static void reset_lanes(void) {
  atomic_store(&g.next_lane_id, 0);
  atomic_store(&g.records, 0);
  atomic_store(&g.lost, 0);
  for (unsigned i = 0; i < LWT_MAX_LANES; i++) {
    lwt_lane_t *l = &g.lanes[i];
    atomic_store(&l->tail, atomic_load(&l->head));
    atomic_store(&l->busy, 0);
    atomic_store(&l->floor, 0);
    atomic_store(&l->state, LANE_FREE);
    l->records = l->lost = 0;
  }
  lane_setup(&g.lanes[0], 0); /* the orphan lane */
  atomic_store(&g.lanes[0].state, LANE_LIVE);
  atomic_store(&g.orphan_lock, 0);
  atomic_fetch_add(&g.epoch, 1);
}

static unsigned env_time_shift(void) {
  const char *s = getenv("LW_TRACE_TIME_SHIFT");
  if (!s || !*s) return LWT_DEFAULT_TIME_SHIFT;
  unsigned long v = strtoul(s, NULL, 10);
  return v > LWT_MAX_TIME_SHIFT ? LWT_MAX_TIME_SHIFT : (unsigned)v;
}

static unsigned env_depth(void) {
  const char *s = getenv("LW_TRACE_DEPTH");
  if (!s || !*s) return LWT_DEFAULT_DEPTH;
  unsigned long d = strtoul(s, NULL, 10);
  return d > LWT_MAX_DEPTH ? LWT_MAX_DEPTH : (unsigned)d;
}

/* path: exact file wanted (NULL = derived from stem). */
static int rec_start(const char *path, uint32_t extra_flags) {
  if (atomic_load(&g.enabled) || g.fd >= 0) {
    errno = EBUSY;
    return -1;
  }
  _lwt_set_internal(1);
  g.depth = env_depth();
  g.time_shift = env_time_shift();
  if (g.depth && _lwt_stacks_init(g.depth) < 0) g.depth = 0;
  _lwt_unwind_init();
  const char *as = getenv("LW_TRACE_ALLOC_STACKS");
  g.flags = extra_flags | (g.depth ? LWT_FLAG_STACKS : 0) |
            (g.depth && !(as && *as == '0') ? LWT_FLAG_ALLOC_STACKS : 0) | /* frees: none by default */
            (opt.follow_fork ? LWT_FLAG_FOLLOW_FORK : 0) |
            (opt.follow_exec ? LWT_FLAG_FOLLOW_EXEC : 0);
  g.t0 = mono_ns(CLOCK_MONOTONIC);
  g.t0_real = mono_ns(CLOCK_REALTIME);
  clk_setup();
  g.pid = getpid();
  reset_lanes();
  _lwt_stacks_reset_emitted();
  _lwt_modules_forget();
  if (path) set_stem(path);
  if (!opt.stem[0]) default_stem(opt.stem, sizeof opt.stem);
  int rc = open_unique(path, opt.stem);
  if (rc == 0 && _lwt_writer_failed()) { /* the first frame could not be written */
    _lwt_writer_stop();
    errno = ENOSPC;
    rc = -1;
  }
  if (rc == 0) {
    if (!atomic_load(&g.asym_fence) && asym_register()) atomic_store(&g.asym_fence, 1);
    if (!opt.key_ok) opt.key_ok = pthread_key_create(&opt.key, thread_exit) == 0;
    if (!opt.atfork_done) opt.atfork_done = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
    if (!opt.atexit_done) opt.atexit_done = atexit(atexit_stop) == 0;
    atomic_store(&g.enabled, 1);
    if (_lwt_writer_start() < 0) {
      atomic_store(&g.enabled, 0);
      _lwt_writer_stop();
      rc = -1;
    }
  }
  _lwt_set_internal(0);
  return rc;
}

static int rec_stop(void) {
  if (g.fd < 0) {
    errno = EINVAL;
    return -1;
  }
  atomic_store(&g.enabled, 0);
  asym_heavy_fence(); /* see busy_set */
  wait_lanes_idle();
  _lwt_writer_stop();
  return 0;
}

static void atexit_stop(void) {
  if (g.fd >= 0 && g.pid == getpid()) rec_stop();
}

/* ---- fork ------------------------------------------------------------------ */

static void fork_prepare(void) {
  tstate_t *t = &ts;
  if (!atomic_load(&g.enabled) || t->internal) return;
  lwt_lane_t *l = rec_begin(t);
  if (l) rec_simple(l, LWT_LTAG_FORK_MARK, NULL, 0, 1);
  rec_end(t, l);
}

static void fork_child(void) {
  tstate_t *t = &ts;
  t->tid = 0;
  if (g.fd < 0) return;
  atomic_store(&g.enabled, 0);
  _lwt_writer_forget(); /* the file and the writer belong to the parent */
  /* the parent's writer may have been inside a fit: clock_gettime until
   * the child's writer fits again (same counter, same t0) */
  atomic_store(&g.clk_mult, 0);
  atomic_store(&g.clk_seq, (atomic_load(&g.clk_seq) + 1) & ~1u);
  g.clk_t0_ticks = 0;
  t->lane[0] = t->lane[1] = NULL;
  /* single-threaded here: no producer reads asym_fence while it changes;
   * registered again, whatever the kernel kept of the parent's */
  atomic_store(&g.asym_fence, asym_register());
  if (!opt.follow_fork) return;
  char stem[4200];
  snprintf(stem, sizeof stem, "%s.%d", opt.stem, (int)getpid());
  _lwt_set_internal(1);
  g.flags = (g.flags & ~(uint32_t)LWT_FLAG_EXEC_IMAGE) | LWT_FLAG_FORK_CHILD;
  g.pid = getpid();
  atomic_store(&g.slow_keys, 0); /* the threads that held them are gone */
  t->owned = NULL;
  reset_lanes(); /* other threads' lanes do not exist here */
  _lwt_stacks_reset_emitted();
  _lwt_modules_forget();
  if (opt.follow_exec) {
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("LW_TRACE_PID", pid, 1);
  }
  if (open_unique(NULL, stem) == 0) {
    atomic_store(&g.enabled, 1);
    if (_lwt_writer_start() < 0) atomic_store(&g.enabled, 0);
  }
  _lwt_set_internal(0);
}

/* ---- exec --------------------------------------------------------------------
 * exec replaces the image without running atexit: finish the trace first
 * (an EXEC record names the new program). Only execve and the execv*
 * family that programs call directly are covered (glibc's execl* and
 * posix_spawn exec internally; their last frame may be lost). In a vfork
 * child (memory shared with the parent, g.pid is the parent's) nothing is
 * touched. */
#ifdef LWT_AUTOSTART
#include <dlfcn.h>

static void exec_finish(const char *path) {
  if (g.fd < 0 || g.pid != getpid()) return;
  snprintf(g.exec_path, sizeof g.exec_path, "%s", path ? path : "");
  rec_stop();
  g.exec_path[0] = 0;
  if (!opt.follow_exec) { /* e.g. a wrapper script (pyenv's shims) whose real program is lost */
    char msg[4400];
    int n = snprintf(msg, sizeof msg,
                     "lwtrace: pid %d execs %s; not recorded from here (--follow-exec records it)\n",
                     (int)getpid(), path ? path : "?");
    if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  }
}

typedef int execve_fn(const char *, char *const[], char *const[]);
typedef int execv_fn(const char *, char *const[]);

LWT_API int execve(const char *path, char *const argv[], char *const envp[]) {
  exec_finish(path);
  return (int)syscall(SYS_execve, path, argv, envp);
}

LWT_API int execv(const char *path, char *const argv[]) {
  exec_finish(path);
  return (int)syscall(SYS_execve, path, argv, environ);
}

LWT_API int execvp(const char *file, char *const argv[]) {
  exec_finish(file);
  execv_fn *real = (execv_fn *)dlsym(RTLD_NEXT, "execvp");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  return real(file, argv);
}

LWT_API int execvpe(const char *file, char *const argv[], char *const envp[]) {
  exec_finish(file);
  execve_fn *real = (execve_fn *)dlsym(RTLD_NEXT, "execvpe");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  return real(file, argv, envp);
}

/* dlclose: the stack walk's cached rules of the unloaded object go at once
 * (unwind.c), not at the writer's next poll, so an object mapped at the
 * same address next is never walked with them. */
LWT_API int dlclose(void *handle) {
  typedef int dlclose_fn(void *);
  static dlclose_fn *real;
  if (!real) real = (dlclose_fn *)dlsym(RTLD_NEXT, "dlclose");
  int r = real ? real(handle) : -1;
  _lwt_unwind_flush();
  return r;
}
#endif

/* ---- public API -------------------------------------------------------------- */

int lw_trace_start(const char *path) {
  if (!path || !*path) {
    errno = EINVAL;
    return -1;
  }
  opt.follow_fork = getenv("LW_TRACE_FOLLOW_FORK") != NULL;
  return rec_start(path, LWT_FLAG_STATIC_API);
}

int lw_trace_stop(void) { return rec_stop(); }

int lw_trace_active(void) { return atomic_load(&g.enabled); }

const char *lw_trace_path(void) { return g.path; }

/* ---- auto-start (liblwmalloc-trace.so) ------------------------------------ */

#ifdef LWT_AUTOSTART
/* Without --follow-exec, exec'd programs must not load the tracer: drop
 * it from LD_PRELOAD (other preloaded libraries stay). */
static void strip_preload(void) {
  const char *pre = getenv("LD_PRELOAD");
  if (!pre) return;
  char out[8192];
  size_t o = 0;
  const char *p = pre;
  while (*p) {
    size_t n = strcspn(p, ": ");
    int ours = n > 0 && memmem(p, n, "liblwmalloc-trace", 17) != NULL;
    if (n > 0 && !ours && o + n + 1 < sizeof out) {
      if (o) out[o++] = ':';
      memcpy(out + o, p, n);
      o += n;
    }
    p += n;
    if (*p) p++;
  }
  out[o] = 0;
  if (o)
    setenv("LD_PRELOAD", out, 1);
  else
    unsetenv("LD_PRELOAD");
}

__attribute__((constructor)) static void rec_autostart(void) {
  const char *off = getenv("LW_TRACE_OFF");
  if (off && *off == '1') return;
  _lwt_set_internal(1);
  opt.follow_fork = getenv("LW_TRACE_FOLLOW_FORK") != NULL;
  opt.follow_exec = getenv("LW_TRACE_FOLLOW_EXEC") != NULL;
  uint32_t flags = 0;
  const char *tpid = getenv("LW_TRACE_PID");
  char mypid[32];
  snprintf(mypid, sizeof mypid, "%d", (int)getpid());
  if (tpid && strcmp(tpid, mypid) == 0) flags |= LWT_FLAG_EXEC_IMAGE; /* same pid: exec'd */
  const char *out = getenv("LW_TRACE_OUT");
  /* The first process of the traced tree writes LW_TRACE_OUT exactly;
   * exec'd images and other descendants write STEM.PID[.N].lwt.zst. */
  const char *exact = out && *out && !tpid ? out : NULL;
  if (!exact && out && *out) {
    set_stem(out);
    size_t n = strlen(opt.stem);
    snprintf(opt.stem + n, sizeof opt.stem - n, ".%s", mypid);
  }
  if (opt.follow_exec)
    setenv("LW_TRACE_PID", mypid, 1);
  else
    strip_preload();
  _lwt_set_internal(0);
  if (rec_start(exact, flags) < 0 && !_lwt_writer_failed()) {
    char msg[4400];
    int n = snprintf(msg, sizeof msg, "lwtrace: cannot create %s%s: %s; not recording\n",
                     exact ? exact : opt.stem, exact ? "" : ".lwt.zst", strerror(errno));
    if (n > 0) (void)!write(2, msg, (size_t)n);
  }
}
#endif
