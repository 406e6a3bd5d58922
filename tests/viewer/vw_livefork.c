/* Live page across fork, run with LD_PRELOAD=liblwmalloc.so LW_LIVE=1:
 * the parent's page exists and updates; a fork child gets its own page
 * (its pid inside) within a few intervals and removes it at exit; the
 * parent's page is untouched by the child. Prints one line per check and
 * exits non-zero if one fails. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "lwmalloc_live.h"

static int failures;

static void check(int ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) failures++;
}

/* Maps and reads pid's page; 0 if it is there and consistent. */
static int read_page(pid_t pid, lw_live_page_t *out) {
  char path[64];
  snprintf(path, sizeof path, LW_LIVE_PATH_PREFIX "%d", (int)pid);
  for (int i = 0; i < 100; i++) { /* up to 2 s for the page to appear */
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
      void *m = mmap(NULL, sizeof *out, PROT_READ, MAP_SHARED, fd, 0);
      close(fd);
      if (m == MAP_FAILED) return -1;
      int rc = lw_live_read(m, out, 1000);
      munmap(m, sizeof *out);
      if (rc == 0 && out->magic == LW_LIVE_MAGIC) return 0;
    }
    usleep(20000);
  }
  return -1;
}

static int page_exists(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, LW_LIVE_PATH_PREFIX "%d", (int)pid);
  return access(path, F_OK) == 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0); /* nothing buffered to be printed twice after fork */
  char *volatile keep = malloc(100000); /* volatile: the compiler may not drop it */
  keep[0] = 1;
  lw_live_page_t a, b;
  check(read_page(getpid(), &a) == 0 && a.pid == (uint64_t)getpid(), "parent page exists");
  usleep(300000);
  check(read_page(getpid(), &b) == 0 && b.updates > a.updates, "parent page updates");
  check(b.live_bytes >= 100000, "parent page counts the live block");
  int pipefd[2];
  if (pipe(pipefd) != 0) return 2;
  pid_t child = fork();
  if (child == 0) {
    close(pipefd[0]);
    void *more = malloc(300000);
    lw_live_page_t c;
    int ok = read_page(getpid(), &c) == 0 && c.pid == (uint64_t)getpid();
    if (write(pipefd[1], &ok, sizeof ok) != sizeof ok) _exit(3);
    free(more);
    exit(0); /* atexit removes the child's page */
  }
  close(pipefd[1]);
  int child_ok = 0;
  if (read(pipefd[0], &child_ok, sizeof child_ok) != sizeof child_ok) child_ok = 0;
  check(child_ok, "fork child has its own page with its pid");
  int status;
  waitpid(child, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly");
  check(!page_exists(child), "child's page removed at its exit");
  check(read_page(getpid(), &a) == 0 && a.pid == (uint64_t)getpid(), "parent page still its own");
  free(keep);
  return failures ? 1 : 0;
}
