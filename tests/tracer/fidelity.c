/* Fidelity workload: every malloc-family op a known number of times on
 * three worker threads, then one big known peak on the main thread.
 * Writes what it did to argv[1] for check_info.py:
 *   tid TID OP COUNT      (counts expected in `lwtrace info --json`)
 *   peak_min BYTES        (the trace's peak live bytes must be >= ...)
 *   peak_max BYTES        (... and <= this: libc's own blocks are small)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* C23 names, not declared by every libc: found at run time (lwmalloc has them). */
static void (*free_sized_fn)(void *, size_t);
static void (*free_aligned_sized_fn)(void *, size_t, size_t);

#define BIG_BLOCKS 40
#define BIG_SIZE (1u << 20)
#define LEAK_BLOCKS 7
#define LEAK_SIZE 300000u

/* Blocks never freed, from one stack: the first of info's "still live at
 * the end" list. */
static __attribute__((noinline)) void leak_known(void **keep) {
  for (int i = 0; i < LEAK_BLOCKS; i++) {
    keep[i] = malloc(LEAK_SIZE);
    __asm__ __volatile__("" : : "r"(keep[i]) : "memory");
  }
}

typedef struct worker_s {
  int k;
  pid_t tid;
  unsigned n_malloc, n_calloc, n_realloc, n_reallocarray, n_memalign, n_posix_memalign,
      n_aligned_alloc, n_valloc, n_pvalloc, n_free, n_free_sized, n_free_aligned_sized;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  w->tid = (pid_t)syscall(SYS_gettid);
  enum { SLOTS = 64 };
  void *slot[SLOTS] = {0};
  for (int round = 0; round < 200 * w->k; round++) {
    int i = round % SLOTS;
    if (slot[i]) {
      if (round % 5 == 0 && free_sized_fn) {
        free_sized_fn(slot[i], 0); /* size 0 = unknown: always valid */
        w->n_free_sized++;
      } else {
        free(slot[i]);
        w->n_free++;
      }
      slot[i] = NULL;
    }
    void *p = NULL;
    switch (round % 9) {
    case 0: p = malloc(16 + (size_t)round % 500); w->n_malloc++; break;
    case 1: p = calloc(3, 40 + (size_t)w->k); w->n_calloc++; break;
    case 2:
      p = malloc(24);
      w->n_malloc++;
      p = realloc(p, 100 + (size_t)round % 2000);
      w->n_realloc++;
      break;
    case 3: p = reallocarray(NULL, 7, 9); w->n_reallocarray++; break;
    case 4: p = memalign(64, 200); w->n_memalign++; break;
    case 5:
      if (posix_memalign(&p, 128, 300) != 0) p = NULL;
      w->n_posix_memalign++;
      break;
    case 6: p = aligned_alloc(256, 512); w->n_aligned_alloc++; break;
    case 7: p = valloc(100); w->n_valloc++; break;
    case 8:
      p = aligned_alloc(32, 96);
      w->n_aligned_alloc++;
      if (free_aligned_sized_fn) {
        free_aligned_sized_fn(p, 32, 96);
        w->n_free_aligned_sized++;
      } else {
        free(p);
        w->n_free++;
      }
      p = pvalloc(10);
      w->n_pvalloc++;
      break;
    }
    if (p) memset(p, 1, 8);
    slot[i] = p;
  }
  for (int i = 0; i < SLOTS; i++)
    if (slot[i]) {
      free(slot[i]);
      w->n_free++;
    }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fidelity EXPECT_FILE\n");
    return 2;
  }
  free_sized_fn = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  free_aligned_sized_fn = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  FILE *out = fopen(argv[1], "w");
  if (!out) return 1;
  worker_t w[3];
  pthread_t th[3];
  memset(w, 0, sizeof w);
  for (int i = 0; i < 3; i++) {
    w[i].k = i + 1;
    pthread_create(&th[i], NULL, worker, &w[i]);
  }
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  /* the peak: BIG_BLOCKS blocks of BIG_SIZE held at once */
  void *big[BIG_BLOCKS];
  for (int i = 0; i < BIG_BLOCKS; i++) {
    big[i] = malloc(BIG_SIZE);
    memset(big[i], 2, 64);
  }
  for (int i = 0; i < BIG_BLOCKS; i++) free(big[i]);
  static void *leaked[LEAK_BLOCKS];
  leak_known(leaked);
  for (int i = 0; i < 3; i++) {
    fprintf(out, "tid %d malloc %u\n", w[i].tid, w[i].n_malloc);
    fprintf(out, "tid %d calloc %u\n", w[i].tid, w[i].n_calloc);
    fprintf(out, "tid %d realloc %u\n", w[i].tid, w[i].n_realloc);
    fprintf(out, "tid %d reallocarray %u\n", w[i].tid, w[i].n_reallocarray);
    fprintf(out, "tid %d memalign %u\n", w[i].tid, w[i].n_memalign);
    fprintf(out, "tid %d posix_memalign %u\n", w[i].tid, w[i].n_posix_memalign);
    fprintf(out, "tid %d aligned_alloc %u\n", w[i].tid, w[i].n_aligned_alloc);
    fprintf(out, "tid %d valloc %u\n", w[i].tid, w[i].n_valloc);
    fprintf(out, "tid %d pvalloc %u\n", w[i].tid, w[i].n_pvalloc);
    /* + up to 4: the C library frees its own thread data as a thread exits */
    fprintf(out, "tid %d free %u..%u\n", w[i].tid, w[i].n_free, w[i].n_free + 4);
    fprintf(out, "tid %d free_sized %u\n", w[i].tid, w[i].n_free_sized);
    fprintf(out, "tid %d free_aligned_sized %u\n", w[i].tid, w[i].n_free_aligned_sized);
  }
  fprintf(out, "peak_min %u\n", BIG_BLOCKS * BIG_SIZE);
  fprintf(out, "peak_max %u\n", BIG_BLOCKS * BIG_SIZE + (1u << 20));
  fprintf(out, "lost_max 0\n");
  fprintf(out, "top peak_stacks main %u %u\n", BIG_BLOCKS, BIG_BLOCKS * BIG_SIZE);
  fprintf(out, "top live_at_end_stacks leak_known %u %u\n", LEAK_BLOCKS, LEAK_BLOCKS * LEAK_SIZE);
  fclose(out);
  return 0;
}
