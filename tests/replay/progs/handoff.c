/* Traced by the replay tests: blocks made on one thread and freed on
 * another (producer/consumer through a small queue), plus a few blocks
 * passed back the other way. Deterministic sizes; exits 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS 20000
#define QCAP 64

static void *queue[QCAP];
static int head, tail, count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;

static void put(void *p) {
  pthread_mutex_lock(&lock);
  while (count == QCAP) pthread_cond_wait(&not_full, &lock);
  queue[tail] = p;
  tail = (tail + 1) % QCAP;
  count++;
  pthread_cond_signal(&not_empty);
  pthread_mutex_unlock(&lock);
}

static void *get(void) {
  pthread_mutex_lock(&lock);
  while (count == 0) pthread_cond_wait(&not_empty, &lock);
  void *p = queue[head];
  head = (head + 1) % QCAP;
  count--;
  pthread_cond_signal(&not_full);
  pthread_mutex_unlock(&lock);
  return p;
}

static void *consumer(void *arg) {
  void **back = arg;
  unsigned sum = 0;
  for (int i = 0; i < ITEMS; i++) {
    unsigned char *p = get();
    sum += p[0];
    free(p); /* freed on a thread that did not allocate it */
  }
  *back = malloc(4096); /* and one block the other way */
  memset(*back, (int)(sum & 0xff), 4096);
  return NULL;
}

int main(void) {
  pthread_t t;
  void *back = NULL;
  if (pthread_create(&t, NULL, consumer, &back) != 0) return 1;
  for (int i = 0; i < ITEMS; i++) {
    size_t size = 16 + (size_t)(i * 37 % 1000);
    unsigned char *p = malloc(size);
    if (!p) return 1;
    memset(p, i & 0xff, size);
    put(p);
  }
  pthread_join(t, NULL);
  free(back);
  return 0;
}
