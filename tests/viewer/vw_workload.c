/* A small deterministic workload for the lwview tests: THREADS threads
 * each make ITERS malloc-family calls over small, medium and large sizes
 * (with reallocs and frees of blocks other threads allocated), then
 * everything is freed except LEAKS blocks of LEAK_SIZE bytes made in
 * leak_site(), so the tests know exactly what "leaked at exit" must show.
 * With a third argument SECONDS it keeps churning that long afterwards
 * (for the live-mode test).
 *
 *   vw_workload THREADS ITERS [SECONDS]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 512
#define LEAKS 7
#define LEAK_SIZE 333

static void *shared[SLOTS]; /* blocks handed between threads */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static long iters;

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick_size(uint64_t *s) {
  unsigned r = (unsigned)(rnd(s) % 100);
  if (r < 60) return 8 + rnd(s) % 504;            /* small: pools */
  if (r < 97) return 1024 + rnd(s) % (63 * 1024); /* medium: coalescing heap */
  return 256 * 1024 + rnd(s) % (768 * 1024);      /* large: own mapping */
}

static void *worker(void *arg) {
  uint64_t seed = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1);
  void *mine[SLOTS] = {0};
  for (long i = 0; i < iters; i++) {
    unsigned k = (unsigned)(rnd(&seed) % SLOTS);
    unsigned what = (unsigned)(rnd(&seed) % 10);
    if (mine[k] == NULL) {
      mine[k] = what == 0 ? calloc(1, pick_size(&seed)) : malloc(pick_size(&seed));
      if (mine[k]) memset(mine[k], 1, 8);
    } else if (what < 2) {
      void *p = realloc(mine[k], pick_size(&seed));
      if (p) mine[k] = p;
    } else if (what < 4) { /* hand it to whichever thread comes next */
      pthread_mutex_lock(&shared_lock);
      void *old = shared[k];
      shared[k] = mine[k];
      pthread_mutex_unlock(&shared_lock);
      mine[k] = NULL;
      free(old);
    } else {
      free(mine[k]);
      mine[k] = NULL;
    }
  }
  for (unsigned k = 0; k < SLOTS; k++) free(mine[k]);
  return NULL;
}

/* noinline and no tail call, so the stack shows leak_site as the caller */
__attribute__((noinline)) static void *leak_site(void) {
  char *p = malloc(LEAK_SIZE);
  if (p) p[0] = 1;
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: vw_workload THREADS ITERS [SECONDS]\n");
    return 2;
  }
  int nthreads = atoi(argv[1]);
  iters = atol(argv[2]);
  double seconds = argc > 3 ? atof(argv[3]) : 0;
  if (nthreads < 1 || nthreads > 64) return 2;
  pthread_t t[64];
  for (int i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  for (unsigned k = 0; k < SLOTS; k++) free(shared[k]);
  static void *volatile leaks[LEAKS];
  for (int i = 0; i < LEAKS; i++) leaks[i] = leak_site();
  (void)leaks;
  if (seconds > 0) {
    printf("ready\n");
    fflush(stdout);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t seed = 42;
    void *hold[64] = {0};
    do { /* keep the live numbers moving */
      unsigned k = (unsigned)(rnd(&seed) % 64);
      free(hold[k]);
      hold[k] = malloc(pick_size(&seed));
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
    for (int k = 0; k < 64; k++) free(hold[k]);
  }
  return 0;
}
