/* ./tw N: N threads, each 2 M malloc/free pairs of 16-255 bytes over 256
 * slots; with TW_OUT=FILE, writes the workers' own CPU time per thread
 * (CLOCK_THREAD_CPUTIME_ID: a recorder's writer thread excluded). Used by
 * trace-overhead.sh (two threads recording against one) and trace-cost.sh
 * (what each step of a recorded call costs). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double cpu[16];
static void *run(void *arg) {
  void *slot[256] = {0};
  for (unsigned i = 0; i < 2000000; i++) {
    unsigned k = (i * 2654435761u) >> 24;
    free(slot[k]);
    slot[k] = malloc(16 + (i % 240));
  }
  for (int k = 0; k < 256; k++) free(slot[k]);
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  cpu[(long)arg] = t.tv_sec + t.tv_nsec / 1e9;
  return NULL;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  pthread_t t[16];
  for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, run, (void *)i);
  double sum = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    sum += cpu[i];
  }
  /* the workers' own CPU time per thread (the writer thread excluded) */
  const char *out = getenv("TW_OUT");
  FILE *f = out ? fopen(out, "w") : NULL;
  if (f) fprintf(f, "%.4f\n", sum / n), fclose(f);
  return 0;
}
