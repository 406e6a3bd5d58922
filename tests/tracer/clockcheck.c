/* Times in a trace against the program's own clock: N mallocs of sizes
 * 3000, 3001, ... about 15 ms apart; after each, the CLOCK_MONOTONIC ns
 * read right after it returned is printed as "SIZE NS" (stdout). The test
 * (tracer_tests.sh clock) compares the trace's time differences with
 * these, for the CPU-counter clock and for clock_gettime.
 *   clockcheck N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *volatile sink;

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 30;
  /* first calls resolve symbols and fault pages in: not measured */
  struct timespec w;
  clock_gettime(CLOCK_MONOTONIC, &w);
  sink = malloc(16);
  free(sink);
  printf("# warm\n");
  for (int i = 0; i < n; i++) {
    sink = malloc(3000 + (size_t)i);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    printf("%d %lld\n", 3000 + i, (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    free(sink);
    struct timespec d = {0, 15000000};
    nanosleep(&d, NULL);
  }
  return 0;
}
