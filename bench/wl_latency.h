/* Per-call latency measurement for the workloads (header only).
 *
 * A cycle counter is read around each timed call (rdtsc on x86-64, the
 * virtual counter on aarch64, clock_gettime elsewhere) and the tick count
 * goes into a log-linear histogram held in static memory, so measuring
 * allocates nothing and keeps no per-call array. Ticks are turned into
 * nanoseconds with a calibration against CLOCK_MONOTONIC.
 *
 * Histogram: values below 2^LAT_LINEAR_BITS land in exact buckets; above
 * that each power of two is split into 2^LAT_SUB_BITS sub-buckets, so a
 * percentile is exact to within 1/2^LAT_SUB_BITS (about 1.6%).
 */
#ifndef LW_BENCH_WL_LATENCY_H
#define LW_BENCH_WL_LATENCY_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

static inline uint64_t lat_ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

#define LAT_LINEAR_BITS 10
#define LAT_SUB_BITS 6
#define LAT_BUCKETS ((1u << LAT_LINEAR_BITS) + (64 - LAT_LINEAR_BITS) * (1u << LAT_SUB_BITS))

typedef struct lat_hist_s {
  uint64_t count[LAT_BUCKETS];
  uint64_t n;
  uint64_t max;
} lat_hist_t;

static inline unsigned lat_bucket(uint64_t v) {
  if (v < (1u << LAT_LINEAR_BITS)) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= LAT_LINEAR_BITS */
  unsigned sub = (unsigned)(v >> (msb - LAT_SUB_BITS)) & ((1u << LAT_SUB_BITS) - 1);
  return (1u << LAT_LINEAR_BITS) + (msb - LAT_LINEAR_BITS) * (1u << LAT_SUB_BITS) + sub;
}

/* Lowest value that falls into bucket b. */
static inline uint64_t lat_bucket_low(unsigned b) {
  if (b < (1u << LAT_LINEAR_BITS)) return b;
  unsigned k = b - (1u << LAT_LINEAR_BITS);
  unsigned msb = LAT_LINEAR_BITS + k / (1u << LAT_SUB_BITS);
  uint64_t sub = k % (1u << LAT_SUB_BITS);
  return (1ull << msb) | (sub << (msb - LAT_SUB_BITS));
}

static inline void lat_record(lat_hist_t *h, uint64_t ticks) {
  h->count[lat_bucket(ticks)]++;
  h->n++;
  if (ticks > h->max) h->max = ticks;
}

/* Ticks at percentile q (0 < q <= 1). */
static inline uint64_t lat_quantile(const lat_hist_t *h, double q) {
  uint64_t want = (uint64_t)((double)h->n * q);
  if (want >= h->n) return h->max;
  uint64_t seen = 0;
  for (unsigned b = 0; b < LAT_BUCKETS; b++) {
    seen += h->count[b];
    if (seen > want) return lat_bucket_low(b);
  }
  return h->max;
}

/* Nanoseconds per tick, measured over ~20 ms against CLOCK_MONOTONIC. */
static inline double lat_ns_per_tick(void) {
  struct timespec a, b, pause = {0, 20 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &a);
  uint64_t t0 = lat_ticks();
  nanosleep(&pause, NULL);
  uint64_t t1 = lat_ticks();
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
  return t1 > t0 ? ns / (double)(t1 - t0) : 1.0;
}

/* Appends " <name>_p50_ns=.. <name>_p99_ns=.. <name>_p999_ns=.. <name>_max_ns=.."
 * to buf. */
static inline void lat_format(const lat_hist_t *h, const char *name, double ns_per_tick,
                              char *buf, size_t cap) {
  size_t len = strlen(buf);
  snprintf(buf + len, cap - len, " %s_p50_ns=%.1f %s_p99_ns=%.1f %s_p999_ns=%.1f %s_max_ns=%.1f",
           name, (double)lat_quantile(h, 0.50) * ns_per_tick, name,
           (double)lat_quantile(h, 0.99) * ns_per_tick, name,
           (double)lat_quantile(h, 0.999) * ns_per_tick, name, (double)h->max * ns_per_tick);
}

#endif /* LW_BENCH_WL_LATENCY_H */
