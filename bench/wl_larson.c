/* Larson-style server: worker threads replace random slots with objects of
 * random size, and the slot arrays move between threads.
 *
 * Each of THREADS threads works on one array of SLOTS objects per round,
 * replacing OPS random slots (free the old object, malloc 8-1000 B, write
 * it). After every round the arrays rotate: thread t takes the array that
 * thread t-1 worked on, so most objects are freed by another thread than
 * the one that allocated them (as in a server whose connections migrate).
 * The work of each (array, round) pair is fixed by the seed, so the
 * checksum does not depend on scheduling; a barrier separates rounds.
 */
#include <pthread.h>

#include "wl_common.h"

#define THREADS 4
#define SLOTS 2000
#define OPS 20000
#define ROUNDS 120

typedef struct slot_s {
  uint64_t *p;
  uint32_t size;
} slot_t;

static slot_t arrays[THREADS][SLOTS];
static pthread_barrier_t barrier;
static uint64_t rounds, seed;
static uint64_t sums[THREADS];

static uint64_t tag_of(uint64_t round, uint64_t array, uint64_t op) {
  return wl_splitmix((round << 40) ^ (array << 32) ^ op);
}

static uint64_t slot_free(slot_t *s, int t) {
  if (!s->p) return 0;
  uint64_t h = wl_mix(s->p[0], s->size);
  h = wl_mix(h, ((unsigned char *)s->p)[s->size - 1]);
  free(s->p);
  wl_live_add(t, -(int64_t)s->size);
  s->p = NULL;
  return h;
}

static void slot_fill(slot_t *s, uint32_t size, uint64_t tag, int t) {
  uint64_t *p = malloc(size);
  if (!p) wl_xmalloc_fail("malloc", size);
  wl_live_add(t, size);
  p[0] = tag;
  memset((char *)p + 8, (int)(tag & 0xff), size - 8);
  s->p = p;
  s->size = size;
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  uint64_t sum = 0;
  for (uint64_t round = 0; round < rounds; round++) {
    uint64_t ai = (t + round) % THREADS;
    slot_t *arr = arrays[ai];
    wl_rng_t r;
    wl_rng_seed(&r, seed, round * THREADS + ai);
    for (uint64_t op = 0; op < OPS; op++) {
      slot_t *s = &arr[wl_rand(&r) % SLOTS];
      sum += slot_free(s, t);
      slot_fill(s, (uint32_t)wl_range(&r, 8, 1000), tag_of(round, ai, op), t);
    }
    pthread_barrier_wait(&barrier);
  }
  sums[t] = sum;
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  seed = a.seed;
  rounds = wl_scaled(&a, ROUNDS);
  wl_live_threads(THREADS);
  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) != 0) return 4;
  uint64_t sum = 0;
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
    sum += sums[t];
  }
  for (int i = 0; i < THREADS; i++)
    for (int j = 0; j < SLOTS; j++) sum += slot_free(&arrays[i][j], 0);
  pthread_barrier_destroy(&barrier);
  wl_finish(&a, "larson", sum, "");
  return 0;
}
