/* Clocks, latency histograms and RSS: everything a replay measures.
 *
 * Latency is read with the cheapest monotonic counter the CPU has (rdtsc on
 * x86-64, cntvct_el0 on aarch64, clock_gettime elsewhere); schedule.c
 * converts ticks to ns by comparing ticks and CLOCK_MONOTONIC over the
 * whole replay. RSS comes from a sampler thread reading /proc/self/statm
 * every few ms through one open fd (no allocation while sampling). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"

uint64_t rp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rp_verbose;

void rp_phase(const char *name) {
  static uint64_t last;
  uint64_t now = rp_now_ns();
  if (rp_verbose && last) fprintf(stderr, "lwreplay: %s: %.3f s\n", name, (double)(now - last) * 1e-9);
  last = now;
}

/* ---- histogram ----------------------------------------------------------- */
uint64_t rp_hist_bucket_low(unsigned bucket) {
  unsigned group = bucket >> RP_HSUB_BITS, sub = bucket & ((1u << RP_HSUB_BITS) - 1);
  if (group == 0) return sub;
  unsigned e = group + RP_HSUB_BITS - 1; /* the value's top bit */
  return (1ull << e) | ((uint64_t)sub << (e - RP_HSUB_BITS));
}

void rp_hist_merge(rp_hist_t *into, const rp_hist_t *from) {
  for (unsigned i = 0; i < RP_HBUCKETS; i++) into->b[i] += from->b[i];
  into->count += from->count;
  into->sum += from->sum;
  if (from->max > into->max) into->max = from->max;
}

uint64_t rp_hist_quantile(const rp_hist_t *h, double q) {
  if (h->count == 0) return 0;
  /* the rank-th smallest value, rank counted from 1 */
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < RP_HBUCKETS; i++) {
    seen += h->b[i];
    if (seen >= rank) {
      uint64_t low = rp_hist_bucket_low(i);
      return low < h->max ? low : h->max;
    }
  }
  return h->max;
}

void rp_hist_summary(const rp_hist_t *h, double ns_per_tick, rp_lat_t *out) {
  out->count = h->count;
  out->p50_ns = (double)rp_hist_quantile(h, 0.50) * ns_per_tick;
  out->p99_ns = (double)rp_hist_quantile(h, 0.99) * ns_per_tick;
  out->p999_ns = (double)rp_hist_quantile(h, 0.999) * ns_per_tick;
  out->max_ns = (double)h->max * ns_per_tick;
  out->mean_ns = h->count ? (double)h->sum / (double)h->count * ns_per_tick : 0;
}

/* ---- RSS ------------------------------------------------------------------- */
/* Second field of statm (resident pages); parsed by hand, no stdio. */
static uint64_t rss_read(int fd) {
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *s = buf;
  while (*s && *s != ' ') s++;
  uint64_t pages = 0;
  while (*s == ' ') s++;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + (uint64_t)(*s++ - '0');
  return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t rp_rss_now(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t v = rss_read(fd);
  close(fd);
  return v;
}

struct rp_sampler_s {
  pthread_t thread;
  int fd;
  unsigned period_ms;
  atomic_int stop;
  _Atomic uint64_t peak, samples;
};

static void *sampler_main(void *arg) {
  rp_sampler_t *s = arg;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
    uint64_t v = rss_read(s->fd);
    if (v > atomic_load_explicit(&s->peak, memory_order_relaxed))
      atomic_store_explicit(&s->peak, v, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->samples, 1, memory_order_relaxed);
    next.tv_nsec += (long)s->period_ms * 1000000L;
    while (next.tv_nsec >= 1000000000L) next.tv_nsec -= 1000000000L, next.tv_sec++;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  return NULL;
}

rp_sampler_t *rp_sampler_start(unsigned period_ms) {
  rp_sampler_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  s->period_ms = period_ms ? period_ms : 5;
  if (s->fd < 0 || pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
    if (s->fd >= 0) close(s->fd);
    free(s);
    return NULL;
  }
  return s;
}

void rp_sampler_stop(rp_sampler_t *s, uint64_t *peak, uint64_t *samples) {
  *peak = *samples = 0;
  if (!s) return;
  atomic_store_explicit(&s->stop, 1, memory_order_release);
  pthread_join(s->thread, NULL);
  /* one last sample: the end state may be the peak */
  uint64_t v = rss_read(s->fd);
  uint64_t p = atomic_load(&s->peak);
  *peak = v > p ? v : p;
  *samples = atomic_load(&s->samples) + 1;
  close(s->fd);
  free(s);
}
