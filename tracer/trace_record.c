/* `lwtrace record [-o FILE] [--depth N] [--no-stacks] [--all-stacks]
 * [--follow-fork] [--follow-exec] -- PROG ARGS...`: runs PROG with liblwmalloc-trace.so
 * preloaded and passes its exit status through (128+signal if killed).
 * The recorder inside PROG reads its settings from LW_TRACE_* variables. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lwtrace_cli.h"

#ifndef LWT_INSTALL_LIBDIR
#define LWT_INSTALL_LIBDIR "/usr/local/lib"
#endif
#define LWT_SO "liblwmalloc-trace.so"

static pid_t child_pid;

static void forward_signal(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

/* liblwmalloc-trace.so next to lwtrace (build tree), in ../lib, or in the
 * installed library directory; LWTRACE_LIB overrides. */
static int find_library(char *out, size_t cap) {
  const char *env = getenv("LWTRACE_LIB");
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    return access(out, R_OK) == 0 ? 0 : -1;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    char *dir = dirname(self);
    const char *rel[] = {"", "/../lib", "/../lib64", "/../tracer"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
      snprintf(out, cap, "%s%s/" LWT_SO, dir, rel[i]);
      if (access(out, R_OK) == 0) return 0;
    }
  }
  snprintf(out, cap, "%s/" LWT_SO, LWT_INSTALL_LIBDIR);
  return access(out, R_OK) == 0 ? 0 : -1;
}

static int usage(void) {
  fprintf(stderr, "usage: lwtrace record [-o FILE] [--depth N] [--no-stacks] [--all-stacks] "
                  "[--follow-fork] [--follow-exec] -- PROG ARGS...\n");
  return 2;
}

int lwt_cmd_record(int argc, char **argv) {
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'}, {"depth", required_argument, NULL, 'd'},
      {"no-stacks", no_argument, NULL, 'n'},    {"follow-fork", no_argument, NULL, 'f'},
      {"follow-exec", no_argument, NULL, 'e'},  {"help", no_argument, NULL, 'h'},
      {"alloc-stacks", no_argument, NULL, 'a'}, {"all-stacks", no_argument, NULL, 'A'},
      {NULL, 0, NULL, 0}};
  const char *output = NULL;
  long depth = -1;
  int follow_fork = 0, follow_exec = 0, alloc_stacks = 1; /* the default: stacks where a block is returned */
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+o:", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': output = optarg; break;
    case 'd': {
      char *end;
      depth = strtol(optarg, &end, 10);
      if (*end || depth < 0 || depth > LWT_MAX_DEPTH) {
        fprintf(stderr, "lwtrace: --depth must be 0..%d\n", LWT_MAX_DEPTH);
        return usage();
      }
      break;
    }
    case 'n': depth = 0; break;
    case 'a': alloc_stacks = 1; break; /* the default; kept for scripts */
    case 'A': alloc_stacks = 0; break;
    case 'f': follow_fork = 1; break;
    case 'e': follow_exec = 1; break;
    default: return usage();
    }
  }
  if (optind >= argc) return usage();
  char **prog = argv + optind;

  char lib[PATH_MAX];
  if (find_library(lib, sizeof lib) < 0) {
    fprintf(stderr, "lwtrace: cannot find " LWT_SO " (set LWTRACE_LIB)\n");
    return 1;
  }
  static char abs_output[2 * PATH_MAX + 2];
  if (output && output[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) snprintf(abs_output, sizeof abs_output, "%s/%s", cwd, output);
    else snprintf(abs_output, sizeof abs_output, "%s", output);
    output = abs_output;
  }

  child_pid = fork();
  if (child_pid < 0) {
    perror("lwtrace: fork");
    return 1;
  }
  if (child_pid == 0) {
    char path[3 * PATH_MAX];
    if (output) {
      snprintf(path, sizeof path, "%s", output);
    } else {
      char *base = strrchr(prog[0], '/');
      snprintf(path, sizeof path, "%s.%d.lwt.zst", base ? base + 1 : prog[0], (int)getpid());
    }
    unlink(path); /* the recorder never overwrites; -o means "this file" */
    const char *pre = getenv("LD_PRELOAD");
    char preload[2 * PATH_MAX];
    if (pre && *pre)
      snprintf(preload, sizeof preload, "%s:%s", lib, pre);
    else
      snprintf(preload, sizeof preload, "%s", lib);
    setenv("LD_PRELOAD", preload, 1);
    setenv("LW_TRACE_OUT", path, 1);
    unsetenv("LW_TRACE_PID");
    unsetenv("LW_TRACE_OFF");
    setenv("LW_LIVE", "1", 1);
    if (depth >= 0) {
      char d[16];
      snprintf(d, sizeof d, "%ld", depth);
      setenv("LW_TRACE_DEPTH", d, 1);
    }
    setenv("LW_TRACE_ALLOC_STACKS", alloc_stacks ? "1" : "0", 1);
    if (follow_fork) setenv("LW_TRACE_FOLLOW_FORK", "1", 1);
    else unsetenv("LW_TRACE_FOLLOW_FORK");
    if (follow_exec) setenv("LW_TRACE_FOLLOW_EXEC", "1", 1);
    else unsetenv("LW_TRACE_FOLLOW_EXEC");
    execvp(prog[0], prog);
    fprintf(stderr, "lwtrace: cannot run %s: %s\n", prog[0], strerror(errno));
    _exit(127);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaction(fwd[i], &sa, NULL);

  int status;
  while (waitpid(child_pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("lwtrace: waitpid");
      return 1;
    }
  }
  char path[3 * PATH_MAX];
  if (output) {
    snprintf(path, sizeof path, "%s", output);
  } else {
    char *base = strrchr(prog[0], '/');
    snprintf(path, sizeof path, "%s.%d.lwt.zst", base ? base + 1 : prog[0], (int)child_pid);
  }
  struct stat st;
  if (stat(path, &st) == 0)
    fprintf(stderr, "lwtrace: trace written to %s (%lld bytes)\n", path, (long long)st.st_size);
  else
    fprintf(stderr, "lwtrace: no trace was written to %s\n", path);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
