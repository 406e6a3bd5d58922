/* lwb-run: run one command, report its wall time and peak RSS.
 *
 *   lwb-run [-p PRELOAD.so] [-i STDIN_FILE] [-o STDOUT_FILE] [-e STDERR_FILE] -- CMD ARGS...
 *
 * The child gets LD_PRELOAD=PRELOAD (the runner itself is never preloaded,
 * so its own allocations do not disturb the measured allocator). While the
 * child runs, the runner looks at /proc/PID/maps every 1-5 ms until the
 * preloaded library's file name shows up, which proves the allocator was
 * really loaded. On exit it prints one line to its stdout:
 *
 *   wall_s=1.234567 cpu_s=1.200000 maxrss_kb=12345 status=0 preload_seen=1
 *
 * status is the exit code, or 128+signal; preload_seen is 1 (seen), 0 (not
 * seen while the child ran) or -1 (no -p given). cpu_s (user + system)
 * and maxrss come from wait4's rusage of the child alone; on a busy
 * machine cpu_s is the steadier of the two times.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Does /proc/pid/maps mention `name`? Reads in chunks, with overlap so a
 * name split across two reads is still found. */
static int maps_mention(pid_t pid, const char *name) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t keep = 0, nlen = strlen(name);
  int found = 0;
  for (;;) {
    ssize_t n = read(fd, buf + keep, sizeof buf - 1 - keep);
    if (n <= 0) break;
    buf[keep + (size_t)n] = 0;
    if (strstr(buf, name)) {
      found = 1;
      break;
    }
    size_t len = keep + (size_t)n;
    keep = len < nlen ? len : nlen;
    memmove(buf, buf + len - keep, keep);
  }
  close(fd);
  return found;
}

static void redirect(const char *file, int target) {
  int fd = target == 0 ? open(file, O_RDONLY | O_CLOEXEC)
                       : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || dup2(fd, target) < 0) {
    perror(file);
    _exit(126);
  }
  close(fd);
}

static void usage(void) {
  fprintf(stderr, "usage: lwb-run [-p PRELOAD.so] [-i IN] [-o OUT] [-e ERR] -- CMD ARGS...\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *preload = NULL, *in = NULL, *out = NULL, *err = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "-p") == 0) preload = argv[++i];
    else if (strcmp(argv[i], "-i") == 0) in = argv[++i];
    else if (strcmp(argv[i], "-o") == 0) out = argv[++i];
    else if (strcmp(argv[i], "-e") == 0) err = argv[++i];
    else usage();
  }
  if (i >= argc) usage();
  const char *base = NULL;
  if (preload && *preload) {
    base = strrchr(preload, '/');
    base = base ? base + 1 : preload;
  }

  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 125;
  }
  if (pid == 0) {
    if (in) redirect(in, 0);
    if (out) redirect(out, 1);
    if (err) redirect(err, 2);
    if (base) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execvp(argv[i], argv + i);
    perror(argv[i]);
    _exit(127);
  }

  int status = 0, seen = base ? 0 : -1;
  struct rusage ru;
  for (;;) {
    pid_t r = wait4(pid, &status, seen == 0 ? WNOHANG : 0, &ru);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      perror("wait4");
      return 125;
    }
    if (r == 0) { /* still running and the library not seen yet */
      if (maps_mention(pid, base)) seen = 1;
      else { /* 1 ms steps for the first 50 ms (short programs), then 5 ms */
        struct timespec pause = {0, (now() - t0 < 0.05 ? 1 : 5) * 1000 * 1000};
        nanosleep(&pause, NULL);
      }
    }
  }
  double wall = now() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  printf("wall_s=%.6f cpu_s=%.6f maxrss_kb=%ld status=%d preload_seen=%d\n", wall, cpu, ru.ru_maxrss,
         code, seen);
  return 0;
}
