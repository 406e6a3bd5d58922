/* Traced by the replay tests: 300 short-lived threads, one after another
 * (tids may be reused), each freeing the block its predecessor left in a
 * global and leaving one of its own: a chain of cross-thread hand-offs
 * through threads that no longer exist. Exits 0. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep;

static void *run(void *arg) {
  size_t n = 32 + (size_t)(arg ? 0 : 1);
  char *volatile scratch = malloc(100);
  if (scratch) memset(scratch, 1, 100);
  free(keep);
  keep = malloc(n);
  free(scratch);
  return NULL;
}

int main(void) {
  for (int i = 0; i < 300; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, run, NULL) != 0) return 1;
    pthread_join(t, NULL);
  }
  free(keep);
  return 0;
}
