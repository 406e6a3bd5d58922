/* Shared helpers for the benchmark workloads (header only).
 *
 * Every workload is a plain program that uses only the standard malloc
 * family, so it runs under any allocator through LD_PRELOAD. Contract of
 * each workload:
 *   - argv: SEED [SCALE]   (SCALE multiplies the amount of work, default 1)
 *   - stdout: exactly one line "checksum <hex>" that depends only on SEED
 *     and SCALE, never on addresses or timing, so a broken allocator shows
 *     up as a checksum that differs from glibc's.
 *   - stderr: one line "LWB key=value ..." with base_rss_kb (RSS before the
 *     first allocation), peak_live_bytes (peak of the bytes requested and
 *     not yet freed), work_s (time of the allocating part) and any extra
 *     numbers of that workload.
 *
 * Peak live bytes: single-threaded workloads count exactly. Multi-threaded
 * ones keep one padded counter per thread (plain stores, no shared atomic
 * read-modify-write that would dominate the allocator's cost) and every
 * WL_SAMPLE_EVERY operations the acting thread adds all counters up and
 * raises the global peak; the peak is thus sampled, not exact, and may miss
 * a short spike of at most ~WL_SAMPLE_EVERY objects per thread.
 */
#ifndef LW_BENCH_WL_COMMON_H
#define LW_BENCH_WL_COMMON_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- deterministic randomness (splitmix64 seeding, xorshift64*) ------- */
typedef struct wl_rng_s {
  uint64_t s;
} wl_rng_t;

static inline uint64_t wl_splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline void wl_rng_seed(wl_rng_t *r, uint64_t seed, uint64_t stream) {
  r->s = wl_splitmix(seed * 0x100000001b3ull + stream) | 1u;
}

static inline uint64_t wl_rand(wl_rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi] (inclusive); the tiny modulo bias does not matter. */
static inline uint64_t wl_range(wl_rng_t *r, uint64_t lo, uint64_t hi) {
  return lo + wl_rand(r) % (hi - lo + 1);
}

/* ---- checksums: order-independent sums of mixed values ---------------- */
static inline uint64_t wl_mix(uint64_t h, uint64_t v) {
  return wl_splitmix(h ^ v);
}

/* 64-bit FNV-1a over a byte range. */
static inline uint64_t wl_hash_bytes(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* ---- clocks and memory ------------------------------------------------ */
static inline double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in KiB from /proc/self/statm, read with raw syscalls
 * through a stack buffer: it must not allocate (it runs before the first
 * allocation and between phases). Returns -1 if unavailable. */
#include <fcntl.h>
static inline long wl_rss_kb(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *sp = strchr(buf, ' ');
  if (!sp) return -1;
  long pages = strtol(sp + 1, NULL, 10);
  return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- peak live requested bytes ------------------------------------------
 * Single-threaded: call wl_live_add(0, +n / -n); exact.
 * Multi-threaded: thread t calls wl_live_add(t, ...); peak is sampled. */
#define WL_MAX_THREADS 64
#define WL_SAMPLE_EVERY 64

typedef struct wl_live_slot_s {
  _Alignas(64) _Atomic int64_t live; /* may go negative for a consumer */
  uint64_t ops;
} wl_live_slot_t;

static wl_live_slot_t wl_live_slots[WL_MAX_THREADS];
static _Atomic int64_t wl_live_peak;
static int wl_live_nthreads = 1;

static inline void wl_live_threads(int n) { wl_live_nthreads = n; }

static inline void wl_live_sample(void) {
  int64_t sum = 0;
  for (int i = 0; i < wl_live_nthreads; i++)
    sum += atomic_load_explicit(&wl_live_slots[i].live, memory_order_relaxed);
  int64_t peak = atomic_load_explicit(&wl_live_peak, memory_order_relaxed);
  while (sum > peak &&
         !atomic_compare_exchange_weak_explicit(&wl_live_peak, &peak, sum,
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

static inline void wl_live_add(int t, int64_t delta) {
  wl_live_slot_t *s = &wl_live_slots[t];
  int64_t v = atomic_load_explicit(&s->live, memory_order_relaxed) + delta;
  atomic_store_explicit(&s->live, v, memory_order_relaxed);
  if (wl_live_nthreads == 1) {
    if (v > atomic_load_explicit(&wl_live_peak, memory_order_relaxed))
      atomic_store_explicit(&wl_live_peak, v, memory_order_relaxed);
  } else if (delta > 0 && ++s->ops % WL_SAMPLE_EVERY == 0) {
    wl_live_sample();
  }
}

static inline int64_t wl_live_peak_bytes(void) {
  if (wl_live_nthreads > 1) wl_live_sample();
  return atomic_load_explicit(&wl_live_peak, memory_order_relaxed);
}

/* ---- command line and report ------------------------------------------ */
typedef struct wl_args_s {
  uint64_t seed;
  double scale;
  long base_rss_kb;
  double t0;
} wl_args_t;

/* Parses SEED [SCALE], records the RSS before any allocation and starts
 * the work clock. Extra flags (e.g. --latency) are the caller's business. */
static inline wl_args_t wl_start(int argc, char **argv, const char *usage) {
  wl_args_t a;
  int pos = 0;
  a.seed = 1;
  a.scale = 1.0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1] == '-') continue; /* flags */
    if (pos == 0) a.seed = strtoull(argv[i], NULL, 0);
    else if (pos == 1) a.scale = strtod(argv[i], NULL);
    pos++;
  }
  if (pos < 1 || a.scale <= 0) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    exit(2);
  }
  a.base_rss_kb = wl_rss_kb();
  a.t0 = wl_now();
  return a;
}

static inline int wl_has_flag(int argc, char **argv, const char *flag) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], flag) == 0) return 1;
  return 0;
}

/* Scaled iteration count, at least 1. */
static inline uint64_t wl_scaled(const wl_args_t *a, uint64_t n) {
  double v = (double)n * a->scale;
  return v < 1 ? 1 : (uint64_t)v;
}

/* Prints the stderr LWB line (with `extra` appended) and the checksum. */
static inline void wl_finish(const wl_args_t *a, const char *name, uint64_t checksum,
                             const char *extra) {
  double work = wl_now() - a->t0;
  fprintf(stderr, "LWB workload=%s base_rss_kb=%ld peak_live_bytes=%" PRId64 " work_s=%.6f%s%s\n",
          name, a->base_rss_kb, wl_live_peak_bytes(), work, extra && *extra ? " " : "",
          extra ? extra : "");
  printf("checksum %016" PRIx64 "\n", checksum);
  fflush(stdout);
}

static inline void *wl_xmalloc_fail(const char *what, size_t n) {
  fprintf(stderr, "out of memory: %s(%zu)\n", what, n);
  exit(3);
}

#endif /* LW_BENCH_WL_COMMON_H */
