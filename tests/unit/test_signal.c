/* Calls that re-enter the allocator from a signal handler (signal.c): they
 * must take no lock (a deadlock, or in a single-threaded process a
 * corrupted heap) and still work. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testhelper.h"

static lw_stats_t stats(void) {
  lw_stats_t s;
  lw_stats(&s);
  return s;
}

/* As a handler that interrupted a locked section sees the allocator. */
TEST(reentered_calls_take_no_lock) {
  void *medium = lw_malloc(5000), *large = lw_malloc(300000);
  ASSERT(medium && large);
  memset(large, 3, 300000);
  lw_stats_t s0 = stats();
  _lw_lock_depth = 1;
  void *m = lw_malloc(6000), *l = lw_calloc(1, 400000), *a = lw_memalign(4096, 3000);
  ASSERT(m && l && a);
  EXPECT(_lw_signal_owns(m) && _lw_signal_owns(l) && _lw_signal_owns(a));
  EXPECT((uintptr_t)a % 4096 == 0);
  EXPECT(lw_usable_size(m) >= 6000 && lw_usable_size(l) >= 400000);
  EXPECT(((unsigned char *)l)[399999] == 0);
  memset(m, 1, 6000);
  void *g = lw_realloc(large, 600000); /* moves: no registry lock */
  ASSERT(g);
  EXPECT(_lw_signal_owns(g) && ((unsigned char *)g)[299999] == 3);
  lw_free(medium); /* deferred */
  lw_free(m);      /* unmapped at once */
  lw_stats_t s1 = stats();
  EXPECT_EQ_U(s1.medium_bytes, s0.medium_bytes);
  _lw_lock_depth = 0;
  void *n = lw_malloc(5000); /* the next locker does the deferred free */
  lw_stats_t s2 = stats();
  EXPECT_EQ_U(s2.medium_bytes, s0.medium_bytes); /* medium's chunk went, n's came (the same size) */
  lw_free(lw_malloc(200000)); /* the next large operation does the realloc's deferred free */
  EXPECT(stats().large_bytes < s0.large_bytes);
  lw_check();
  lw_free(n);
  lw_free(l);
  lw_free(a);
  lw_free(g);
  EXPECT(!_lw_signal_owns(g));
  lw_check();
}

static volatile sig_atomic_t handler_calls;
static volatile unsigned char sink;

static void on_alarm(int sig) {
  (void)sig;
  static const size_t sizes[] = {40, 777, 3000, 20000, 200000};
  void *p = lw_malloc(sizes[handler_calls % 5]);
  if (p) {
    ((volatile unsigned char *)p)[0] = 1;
    sink = ((volatile unsigned char *)p)[0];
    lw_free(p);
  }
  handler_calls++;
}

static void *idle(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

/* Signals every 100 us while the program allocates and frees blocks of
 * every kind: with one thread (the heap skips its lock) and with two. The
 * handler's small blocks (40, 777 bytes) are of size classes the loop
 * never uses (its small blocks are 1-2 KiB): the pools' lock-free fast
 * paths are not re-entrant (signal.c), the locked sections of the medium
 * heap and of large blocks are, and those are what the loop and the
 * handler share. (With one range for both, qemu-aarch64 broke a free list
 * once in a few runs.) */
static void run_under_signals(double seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 100}, {0, 100}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  void *keep[64] = {0};
  unsigned i = 0;
  do {
    for (int k = 0; k < 200; k++, i++) {
      size_t size = (i % 7 == 0) ? 150000 + i % 4096 : (i % 3 == 0) ? 2100 + i % 9000 : 1025 + i % 1000;
      unsigned slot = (i * 2654435761u) % 64;
      lw_free(keep[slot]);
      keep[slot] = (i % 5 == 0 && keep[slot]) ? NULL : lw_malloc(size);
      if (keep[slot]) ((unsigned char *)keep[slot])[size - 1] = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  for (int s = 0; s < 64; s++) lw_free(keep[s]);
  lw_check();
}

TEST(signal_handlers_that_allocate_single_threaded) {
  handler_calls = 0;
  run_under_signals(0.4);
  EXPECT(handler_calls > 0);
}

TEST(signal_handlers_that_allocate_two_threads) {
  sigset_t alarm, old;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm, &old); /* the idle thread never takes it */
  pthread_t th;
  ASSERT(pthread_create(&th, NULL, idle, NULL) == 0);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  handler_calls = 0;
  run_under_signals(0.4);
  EXPECT(handler_calls > 0);
  pthread_cancel(th);
  pthread_join(th, NULL);
}

TEST_MAIN()
