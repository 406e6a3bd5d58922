/* Signal handlers that allocate: SIGALRM fires every 200 us while the main
 * thread allocates in a loop; the handler mallocs and frees 777 bytes.
 * Prints the number of handler allocations (the trace must hold exactly
 * that many "malloc size=777" calls). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t handler_allocs;

static void on_alarm(int sig) {
  (void)sig;
  void *p = malloc(777);
  if (p) {
    ((volatile char *)p)[0] = 1;
    free(p);
    handler_allocs++;
  }
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.5;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned long loops = 0;
  do {
    for (int i = 0; i < 100; i++) {
      void *p = malloc(64 + (size_t)i);
      ((volatile char *)p)[0] = 2;
      free(p);
    }
    loops++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("%d\n", (int)handler_allocs);
  return handler_allocs > 0 ? 0 : 1;
}
