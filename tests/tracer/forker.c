/* Process life-cycle workloads for the recorder:
 *   forker fork PIDFILE   10 x malloc(3131); fork; the child does 10 x
 *                         malloc(4242) and exits; its pid goes to PIDFILE
 *   forker exec           10 x malloc(5151), then execs itself as
 *   forker after          10 x malloc(6161)
 *   forker spin           allocates until killed */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *volatile sink; /* keeps the compiler from eliding malloc/free pairs */

static void alloc_n(int n, size_t size) {
  for (int i = 0; i < n; i++) {
    sink = malloc(size);
    free(sink);
  }
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "fork") == 0) {
    alloc_n(10, 3131);
    pid_t pid = fork();
    if (pid == 0) {
      alloc_n(10, 4242);
      exit(0);
    }
    FILE *f = fopen(argv[2], "w");
    if (!f) return 1;
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
  }
  if (argc >= 2 && strcmp(argv[1], "exec") == 0) {
    alloc_n(10, 5151);
    char *args[] = {argv[0], "after", NULL};
    execv("/proc/self/exe", args);
    perror("execv");
    return 1;
  }
  if (argc >= 2 && strcmp(argv[1], "after") == 0) {
    alloc_n(10, 6161);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "spin") == 0) {
    for (;;) {
      alloc_n(100, 48);
      struct timespec t = {0, 100000};
      nanosleep(&t, NULL);
    }
  }
  fprintf(stderr, "usage: forker fork PIDFILE | exec | spin\n");
  return 2;
}
