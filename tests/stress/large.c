/* Large blocks across threads: large [THREADS] [STEPS]
 *
 * Each thread keeps a few large blocks (64 KiB - 6 MiB) and replaces one at
 * random each step: one step in four grows it by half with realloc, a new
 * block comes from calloc one time in three, else from malloc. Every page
 * of a block carries a byte derived from the block's tag, checked before
 * the block goes; a calloc block is checked for zeros (its first byte of
 * every page and its last byte) before it is written. The free pages of
 * one thread's blocks serve the next ones of any thread, moved between
 * blocks where the kernel can (big.c), so a page given to two blocks, a
 * grown block that lost its old pages, or a calloc block with old bytes
 * in it shows here. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "stress_common.h" /* last: it may map the malloc names to lw_* */

#define BLOCKS 6
#define PAGE 4096

static unsigned steps;
static atomic_ulong failures;

typedef struct {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} big_t;

static unsigned char page_byte(const big_t *b, size_t off) { return (unsigned char)(b->tag + (off >> 12)); }

static void fill(big_t *b, size_t from) {
  for (size_t off = from; off < b->size; off += PAGE) b->p[off] = page_byte(b, off);
}

static void check(const big_t *b, size_t upto) {
  for (size_t off = 0; off < upto; off += PAGE)
    if (b->p[off] != page_byte(b, off)) {
      fprintf(stderr, "block %p (%zu bytes): page at +%zu lost its contents\n", (void *)b->p, b->size, off);
      atomic_fetch_add(&failures, 1);
      return;
    }
}

static void *worker(void *arg) {
  uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
  big_t b[BLOCKS] = {{0}};
  for (unsigned s = 0; s < steps; s++) {
    big_t *x = &b[rng_next(&rng) % BLOCKS];
    if (x->p && rng_next(&rng) % 4 == 0) { /* grow */
      size_t old = x->size, size = old + old / 2;
      unsigned char *q = realloc(x->p, size);
      if (!q) {
        atomic_fetch_add(&failures, 1);
        continue;
      }
      x->p = q;
      check(x, old);
      x->size = size;
      fill(x, (old + PAGE - 1) / PAGE * PAGE);
      continue;
    }
    if (x->p) {
      check(x, x->size);
      free(x->p);
    }
    x->size = 65536 + rng_next(&rng) % (6u << 20);
    x->tag = (unsigned char)rng_next(&rng);
    int zeroed = rng_next(&rng) % 3 == 0;
    x->p = zeroed ? calloc(1, x->size) : malloc(x->size);
    if (!x->p) {
      atomic_fetch_add(&failures, 1);
      continue;
    }
    if (zeroed) {
      for (size_t off = 0; off < x->size; off += PAGE)
        if (x->p[off] != 0) {
          fprintf(stderr, "calloc block %p (%zu bytes): non-zero byte at +%zu\n", (void *)x->p, x->size, off);
          atomic_fetch_add(&failures, 1);
          break;
        }
      if (x->p[x->size - 1] != 0) atomic_fetch_add(&failures, 1);
    }
    fill(x, 0);
  }
  for (int i = 0; i < BLOCKS; i++) {
    if (b[i].p) check(&b[i], b[i].size);
    free(b[i].p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  require_allocator();
  unsigned nthreads = arg_or(argc, argv, 1, 4);
  steps = arg_or(argc, argv, 2, 1500);
  if (nthreads < 1 || nthreads > 64) nthreads = 4;
  pthread_t t[64];
  for (unsigned i = 0; i < nthreads; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0) return 2;
  for (unsigned i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  unsigned long f = atomic_load(&failures);
  printf("large: %u threads x %u steps, %lu failures\n", nthreads, steps, f);
  return f != 0;
}
