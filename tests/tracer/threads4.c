/* 4 threads allocate and free across threads: thread i allocates blocks of
 * 1000+i bytes and hands each to thread (i+1)%4, which frees it. Writes
 * the expected per-thread counts to argv[1] (see check_info.py); argv[2],
 * if given, is the number of blocks each thread allocates. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHREADS 4
#define QCAP 256

typedef struct queue_s {
  pthread_mutex_t lock;
  void *item[QCAP];
  unsigned head, tail; /* tail - head items, in [0, QCAP] */
} queue_t;

static queue_t queues[NTHREADS];
static _Atomic int senders_left = NTHREADS;
static int per_thread = 20000;

typedef struct th_s {
  int i;
  pid_t tid;
  unsigned mallocs, frees;
} th_t;

static void *pop(queue_t *q) {
  void *p = NULL;
  pthread_mutex_lock(&q->lock);
  if (q->head != q->tail) p = q->item[q->head++ % QCAP];
  pthread_mutex_unlock(&q->lock);
  return p;
}

static int push(queue_t *q, void *p) {
  int ok = 0;
  pthread_mutex_lock(&q->lock);
  if (q->tail - q->head < QCAP) {
    q->item[q->tail++ % QCAP] = p;
    ok = 1;
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

static void *run(void *arg) {
  th_t *t = arg;
  t->tid = (pid_t)syscall(SYS_gettid);
  queue_t *mine = &queues[t->i], *next = &queues[(t->i + 1) % NTHREADS];
  for (int n = 0; n < per_thread; n++) {
    void *p = malloc(1000 + (size_t)t->i);
    t->mallocs++;
    memset(p, t->i, 16);
    while (!push(next, p)) { /* full: free what others sent us meanwhile */
      void *q = pop(mine);
      if (q) {
        free(q);
        t->frees++;
      }
    }
    void *q = pop(mine);
    if (q) {
      free(q);
      t->frees++;
    }
  }
  /* keep freeing until every sender is done and the queue is empty (a
   * thread waiting idle could block its sender on a full queue) */
  senders_left--;
  for (;;) {
    int last_round = senders_left == 0;
    for (void *q; (q = pop(mine)) != NULL; t->frees++) free(q);
    if (last_round) break;
    sched_yield();
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && (per_thread = atoi(argv[2])) <= 0)) {
    fprintf(stderr, "usage: threads4 EXPECT_FILE [BLOCKS_PER_THREAD]\n");
    return 2;
  }
  th_t t[NTHREADS];
  pthread_t th[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    pthread_mutex_init(&queues[i].lock, NULL);
    t[i] = (th_t){.i = i};
  }
  for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, run, &t[i]);
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  FILE *out = fopen(argv[1], "w");
  if (!out) return 1;
  unsigned total_free = 0;
  for (int i = 0; i < NTHREADS; i++) {
    fprintf(out, "tid %d malloc %u\n", t[i].tid, t[i].mallocs);
    fprintf(out, "tid %d free %u..%u\n", t[i].tid, t[i].frees, t[i].frees + 4);
    total_free += t[i].frees;
  }
  /* every block handed over was freed by its receiver */
  fprintf(out, "op free >=%u\n", total_free);
  fprintf(out, "peak_min %u\n", 1000u * 4);
  fprintf(out, "peak_max %u\n", 1016u * NTHREADS * (QCAP + 2) + (1u << 20));
  fprintf(out, "final_max %u\n", 1u << 20);
  fprintf(out, "threads_min %d\n", NTHREADS + 1);
  fprintf(out, "lost_max 0\n");
  fclose(out);
  return total_free == (unsigned)(NTHREADS * per_thread) ? 0 : 1;
}
