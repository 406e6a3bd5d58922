/* Producer/consumer across threads: one thread allocates, another frees.
 *
 * PAIRS producer threads each fill messages (16 B - 2 KiB, mostly small)
 * and hand them over in batches of BATCH, through a bounded queue, to their
 * consumer thread, which checks and frees them. Every free is thus a
 * free of memory allocated by another thread: the path that per-thread
 * caches must hand back (remote frees). The sequence of each producer is
 * fixed by the seed, and the consumer sums per-message hashes, so the
 * checksum does not depend on scheduling.
 */
#include <pthread.h>

#include "wl_common.h"

#define PAIRS 1
#define BATCH 128  /* messages handed over at once */
#define INFLIGHT 8 /* batches between producer and consumer, at most */
#define MESSAGES 2000000ull

/* A bounded queue of batches, guarded by one mutex: handing over batches
 * keeps the synchronisation cost small next to the allocator's. */
typedef struct pair_s {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  uint64_t produced, consumed; /* batches */
  uint64_t *batch[INFLIGHT][BATCH];
  int index;
  uint64_t sum;
} pair_t;

static pair_t pairs[PAIRS];
static uint64_t messages, seed;

static uint64_t batches(void) { return (messages + BATCH - 1) / BATCH; }

static void *producer(void *arg) {
  pair_t *pr = arg;
  wl_rng_t r;
  wl_rng_seed(&r, seed, (uint64_t)pr->index);
  int t = pr->index * 2;
  uint64_t i = 0;
  for (uint64_t b = 0; b < batches(); b++) {
    pthread_mutex_lock(&pr->lock);
    while (pr->produced - pr->consumed >= INFLIGHT) pthread_cond_wait(&pr->changed, &pr->lock);
    pthread_mutex_unlock(&pr->lock);
    uint64_t **slot = pr->batch[b % INFLIGHT];
    for (int k = 0; k < BATCH; k++, i++) {
      if (i >= messages) {
        slot[k] = NULL;
        continue;
      }
      uint64_t x = wl_rand(&r);
      size_t size = (x & 3) ? 16 + (x >> 8) % 241 : 16 + (x >> 8) % 2033;
      uint64_t *m = malloc(size);
      if (!m) wl_xmalloc_fail("malloc", size);
      wl_live_add(t, (int64_t)size);
      m[0] = wl_mix(i, size);
      m[1] = size;
      memset(m + 2, (int)(i & 0xff), size - 16);
      slot[k] = m;
    }
    pthread_mutex_lock(&pr->lock);
    pr->produced++;
    pthread_cond_broadcast(&pr->changed);
    pthread_mutex_unlock(&pr->lock);
  }
  return NULL;
}

static void *consumer(void *arg) {
  pair_t *pr = arg;
  int t = pr->index * 2 + 1;
  uint64_t sum = 0, i = 0;
  for (uint64_t b = 0; b < batches(); b++) {
    pthread_mutex_lock(&pr->lock);
    while (pr->produced == b) pthread_cond_wait(&pr->changed, &pr->lock);
    pthread_mutex_unlock(&pr->lock);
    uint64_t **slot = pr->batch[b % INFLIGHT];
    for (int k = 0; k < BATCH && slot[k]; k++, i++) {
      uint64_t *m = slot[k];
      size_t size = m[1];
      unsigned char last = ((unsigned char *)m)[size - 1];
      sum += wl_mix(m[0], (uint64_t)(last == (unsigned char)(i & 0xff)) + size);
      free(m);
      wl_live_add(t, -(int64_t)size);
    }
    pthread_mutex_lock(&pr->lock);
    pr->consumed++;
    pthread_cond_broadcast(&pr->changed);
    pthread_mutex_unlock(&pr->lock);
  }
  pr->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  seed = a.seed;
  messages = wl_scaled(&a, MESSAGES);
  wl_live_threads(PAIRS * 2);
  pthread_t th[PAIRS * 2];
  for (int p = 0; p < PAIRS; p++) {
    pairs[p].index = p;
    pthread_mutex_init(&pairs[p].lock, NULL);
    pthread_cond_init(&pairs[p].changed, NULL);
    if (pthread_create(&th[2 * p], NULL, producer, &pairs[p]) != 0) return 4;
    if (pthread_create(&th[2 * p + 1], NULL, consumer, &pairs[p]) != 0) return 4;
  }
  uint64_t sum = 0;
  for (int p = 0; p < PAIRS; p++) {
    pthread_join(th[2 * p], NULL);
    pthread_join(th[2 * p + 1], NULL);
    sum += pairs[p].sum;
  }
  wl_finish(&a, "prodcons", sum, "");
  return 0;
}
