/* Start-up, options and fork handling.
 *
 * Initialisation runs on the first allocation (or the library constructor,
 * whichever comes first) in two phases: phase 1 calls nothing that can
 * allocate (auxv, getenv, mmap) and ends with the allocator ready; phase 2
 * registers the thread-exit key and the fork handlers, which may call
 * malloc (it then simply works). Options, all optional:
 *   LW_LARGE_THRESHOLD=N  requests >= N bytes get their own mapping (128 KiB)
 *   LW_PAGE_CACHE=N       empty pool pages kept resident (4)
 *   LW_RELEASE=N          merged free chunks >= N bytes give pages back (256 KiB)
 *   LW_ARENAS=N           medium heaps (number of CPUs, at most 8)
 *   LW_STATS=1            print statistics to stderr at exit
 *   LW_LIVE=1             publish statistics in /dev/shm (live.c) */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "internal.h"

lw_globals_t _lw_g = {
    .os_page = 4096,
    .large_threshold = LW_LARGE_DEFAULT,
    .page_cache = 4,
    .release_min = (size_t)256 << 10,
    .narenas = 1,
};

static size_t env_size(const char *name, size_t def, size_t lo, size_t hi) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  unsigned long long n = strtoull(v, &end, 0);
  if (*end == 'k' || *end == 'K') n <<= 10;
  else if (*end == 'm' || *end == 'M') n <<= 20;
  if (n < lo) n = lo;
  if (n > hi) n = hi;
  return (size_t)n;
}

static void atfork_prepare(void) {
  _lw_thread_atfork(0);
  _lw_heap_atfork(0);
  _lw_pool_atfork(0);
  _lw_big_atfork(0);
}
static void atfork_parent(void) {
  _lw_big_atfork(1);
  _lw_pool_atfork(1);
  _lw_heap_atfork(1);
  _lw_thread_atfork(1);
}
static void atfork_child(void) {
  _lw_big_atfork(2);
  _lw_pool_atfork(2);
  _lw_heap_atfork(2);
  _lw_thread_atfork(2);
}

void _lw_init_slow(void) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&_lw_g.init_state, &expect, 1)) {
    while (atomic_load_explicit(&_lw_g.init_state, memory_order_acquire) != 2) sched_yield();
    return;
  }
  /* phase 1: nothing here may allocate */
  unsigned long pg = getauxval(AT_PAGESZ);
  _lw_g.os_page = pg ? pg : 4096;
  if (_lw_g.os_page > LW_PAGE_SIZE) {
    _lw_write("lwmalloc: OS page size above 64 KiB is not supported\n");
    abort();
  }
  const uint8_t *rnd = (const uint8_t *)getauxval(AT_RANDOM);
  uint64_t secret = (uintptr_t)&expect ^ 0x2545f4914f6cdd1dull;
  if (rnd) memcpy(&secret, rnd + 8, sizeof secret); /* glibc uses the first 8 for the stack guard */
  _lw_g.secret = secret | 1;
  _lw_g.large_threshold = env_size("LW_LARGE_THRESHOLD", LW_LARGE_DEFAULT, LW_SMALL_MAX + 1, LW_LARGE_MAX_THRESHOLD);
  _lw_g.page_cache = env_size("LW_PAGE_CACHE", 4, 0, 1 << 20);
  _lw_g.release_min = env_size("LW_RELEASE", (size_t)256 << 10, 2 * _lw_g.os_page, SIZE_MAX);
  const char *st = getenv("LW_STATS");
  _lw_g.print_stats = st && *st && *st != '0';
  cpu_set_t set;
  unsigned ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? (unsigned)CPU_COUNT(&set) : 1;
  _lw_g.narenas = (unsigned)env_size("LW_ARENAS", ncpu, 1, 8);
  if (_lw_segmap_init() != 0) {
    _lw_write("lwmalloc: cannot reserve the segment map\n");
    abort();
  }
  atomic_store_explicit(&_lw_g.init_state, 2, memory_order_release);
  /* phase 2: ready; what follows may allocate */
  _lw_thread_init();
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

__attribute__((constructor)) static void lw_constructor(void) {
  lw_ensure_init();
  const char *live = getenv("LW_LIVE");
  if (live && *live == '1') _lw_live_start();
}

__attribute__((destructor)) static void lw_destructor(void) {
  if (_lw_g.print_stats) lw_stats_print(NULL, NULL);
}
