/* Thread creation/exit churn: thread_churn [THREADS] [ROUNDS]
 *
 * Short-lived threads allocate, free some of their blocks, and leave the
 * rest to a shared hand-off list; the next generation of threads frees
 * them after their owner has exited. An allocator with per-thread pools
 * must hand an exiting thread's pools (with live blocks in them) over to
 * someone, and must still accept remote frees into them. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "stress_common.h" /* last: it may map the malloc names to lw_* */

#define PER_THREAD 300

struct handoff {
  void *block[PER_THREAD];
  size_t size[PER_THREAD];
  uint64_t key;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct handoff *pending[4096];
static size_t npending;
static unsigned long failures;

static void fail(const char *what) {
  pthread_mutex_lock(&lock);
  failures++;
  pthread_mutex_unlock(&lock);
  fprintf(stderr, "%s\n", what);
}

static void free_handoff(struct handoff *h) {
  for (int i = 0; i < PER_THREAD; i++) {
    if (block_check(h->block[i], h->size[i], h->key + (uint64_t)i) != 0) fail("handed-off block corrupted");
    free(h->block[i]);
  }
  free(h);
}

static void *short_lived(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  /* First free what an earlier (now exited) thread left behind. */
  struct handoff *old = NULL;
  pthread_mutex_lock(&lock);
  if (npending) old = pending[--npending];
  pthread_mutex_unlock(&lock);
  if (old) free_handoff(old);

  struct handoff *h = malloc(sizeof *h);
  if (!h) { fail("malloc handoff"); return NULL; }
  h->key = rng_next(&rng);
  for (int i = 0; i < PER_THREAD; i++) {
    h->size[i] = rng_size(&rng, 1) % 8192 + 1;
    h->block[i] = malloc(h->size[i]);
    if (!h->block[i]) { fail("malloc"); h->size[i] = 0; continue; }
    block_fill(h->block[i], h->size[i], h->key + (uint64_t)i);
  }
  /* Free every other block here; the rest outlive this thread. */
  for (int i = 0; i < PER_THREAD; i += 2) {
    if (block_check(h->block[i], h->size[i], h->key + (uint64_t)i) != 0) fail("own block corrupted");
    free(h->block[i]);
    h->block[i] = malloc(1);
    h->size[i] = 1;
    block_fill(h->block[i], 1, h->key + (uint64_t)i);
  }
  pthread_mutex_lock(&lock);
  if (npending < sizeof pending / sizeof pending[0]) {
    pending[npending++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&lock);
  if (h) free_handoff(h);
  return NULL;
}

int main(int argc, char **argv) {
  require_allocator();
  unsigned concurrent = arg_or(argc, argv, 1, 8);
  unsigned rounds = arg_or(argc, argv, 2, 200);
  pthread_t tid[64];
  if (concurrent < 1 || concurrent > 64) concurrent = 8;
  for (unsigned r = 0; r < rounds; r++) {
    for (unsigned t = 0; t < concurrent; t++)
      if (pthread_create(&tid[t], NULL, short_lived, (void *)(uintptr_t)(r * 1000 + t + 1)) != 0) return 2;
    for (unsigned t = 0; t < concurrent; t++) pthread_join(tid[t], NULL);
    /* Detached threads too: nobody joins them, they must clean up alone. */
    if (r % 10 == 0) {
      pthread_t d;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create(&d, &attr, short_lived, (void *)(uintptr_t)(r + 7)) != 0) return 2;
      pthread_attr_destroy(&attr);
    }
  }
  /* Wait for the detached threads by taking the lock until their handoffs settle. */
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  pthread_mutex_lock(&lock);
  while (npending) free_handoff(pending[--npending]);
  unsigned long f = failures;
  pthread_mutex_unlock(&lock);
  printf("thread_churn: %u rounds of %u threads: %lu failures\n", rounds, concurrent, f);
  printf("%d passed, %d failed\n", f ? 0 : 1, f ? 1 : 0);
  return f ? 1 : 0;
}
