/* Multi-threaded stress: stress [THREADS] [SCALE] [ITER]
 *
 * Threads allocate random sizes (small, medium, large; some through
 * memalign and realloc), fill each block with a pattern derived from its
 * key, and swap it into a random slot of a shared array; whatever they
 * take out of the slot, often allocated by another thread, is verified and
 * freed. Each iteration starts new threads, so thread caches are created
 * and abandoned with blocks still live in other threads' hands.
 * Deterministic per-thread random streams (fixed seed); the interleaving is
 * up to the scheduler. Do not use this as a benchmark. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "stress_common.h" /* last: it may map the malloc names to lw_* */

/* A slot holds a block and its (size, key) so that a thread can verify
 * blocks that are smaller than the header. Slots are exchanged whole
 * through an atomic pointer to a heap-allocated record. */
struct record {
  void *block;
  size_t size;
  uint64_t key;
};

static _Atomic(struct record *) *slots;
static size_t nslots;
static unsigned scale_arg, ops_per_thread;
static atomic_ulong failures;

static void release(struct record *r) {
  if (!r) return;
  if (block_check(r->block, r->size, r->key) != 0) {
    fprintf(stderr, "corrupt block %p size %zu key %#llx\n", r->block, r->size, (unsigned long long)r->key);
    atomic_fetch_add(&failures, 1);
  }
  free(r->block);
  free(r);
}

static struct record *make(uint64_t *rng) {
  struct record *r = malloc(sizeof *r);
  if (!r) return NULL;
  r->size = rng_size(rng, scale_arg);
  r->key = rng_next(rng);
  unsigned how = (unsigned)(r->key % 16);
  if (how == 0) { /* aligned */
    size_t align = (size_t)16 << (r->key >> 8) % 9; /* 16 .. 4096 */
    r->block = memalign(align, r->size);
    if (r->block && ((uintptr_t)r->block & (align - 1))) {
      fprintf(stderr, "memalign(%zu) misaligned %p\n", align, r->block);
      atomic_fetch_add(&failures, 1);
    }
  } else if (how == 1) { /* grown by realloc from a smaller block */
    void *p = malloc(r->size / 3 + 1);
    r->block = p ? realloc(p, r->size) : NULL;
    if (!r->block) free(p);
  } else if (how == 2) {
    r->block = calloc(1, r->size);
  } else {
    r->block = malloc(r->size);
  }
  if (!r->block) {
    fprintf(stderr, "allocation of %zu bytes failed\n", r->size);
    atomic_fetch_add(&failures, 1);
    free(r);
    return NULL;
  }
  block_fill(r->block, r->size, r->key);
  return r;
}

static void *worker(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg * 0x1234567ull + 42;
  for (unsigned i = 0; i < ops_per_thread; i++) {
    size_t slot = (size_t)(rng_next(&rng) % nslots);
    struct record *r = (rng_next(&rng) % 8) ? make(&rng) : NULL; /* 1 in 8 only frees */
    release(atomic_exchange(&slots[slot], r));
    /* Short-lived blocks on the thread's own path as well. */
    if (i % 4 == 0) {
      size_t n = rng_size(&rng, 1) % 512 + 1;
      void *t = malloc(n);
      if (t) {
        block_fill(t, n, i);
        if (block_check(t, n, i)) atomic_fetch_add(&failures, 1);
      }
      free(t);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  require_allocator();
  unsigned threads = arg_or(argc, argv, 1, 4);
  scale_arg = arg_or(argc, argv, 2, 10);
  unsigned iters = arg_or(argc, argv, 3, 10);
  if (threads < 1) threads = 1;
  ops_per_thread = 2000 * (scale_arg ? scale_arg : 1);
  nslots = 1000 + (size_t)scale_arg * 100;
  slots = calloc(nslots, sizeof *slots);
  if (!slots) return 2;
  pthread_t *tid = calloc(threads, sizeof *tid);
  for (unsigned it = 0; it < iters; it++) {
    for (unsigned t = 0; t < threads; t++)
      if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)(it * threads + t + 1)) != 0) return 2;
    for (unsigned t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    /* Between iterations, a third of the slots are freed by the main thread. */
    for (size_t s = it % 3; s < nslots; s += 3) release(atomic_exchange(&slots[s], NULL));
  }
  for (size_t s = 0; s < nslots; s++) release(atomic_exchange(&slots[s], NULL));
  free(slots);
  free(tid);
  unsigned long f = atomic_load(&failures);
  printf("stress: %u threads, scale %u, %u iterations: %lu failures\n", threads, scale_arg, iters, f);
  printf("%d passed, %d failed\n", f ? 0 : 1, f ? 1 : 0);
  return f ? 1 : 0;
}
