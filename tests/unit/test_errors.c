/* Invalid and double frees are reported with the pointer, then abort.
 * Small double frees are caught by the checked build; medium and large
 * ones by every build. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testhelper.h"

/* Runs fn in a child; returns what it wrote to stderr, and whether it aborted. */
static int run_child(void (*fn)(void), char *out, size_t outlen) {
  int fds[2];
  if (pipe(fds)) return 0;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void medium_double_free(void) {
  void *p = lw_malloc(5000);
  lw_free(p);
  lw_free(p);
}
static void large_double_free(void) {
  void *p = lw_malloc(1 << 20);
  lw_free(p);
  lw_free(p);
}
static void invalid_free_of_stack(void) {
  char local[64];
  lw_free(local + 16);
}
static void small_double_free(void) {
  void *p = lw_malloc(32);
  lw_free(p);
  lw_free(p);
}
static void small_interior_free(void) {
  char *p = lw_malloc(64);
  lw_free(p + 16);
}
static void medium_header_overflow(void) {
  char *p = lw_malloc(5000), *q = lw_malloc(5000);
  memset(p, 'A', 5000 + 16); /* runs over q's header */
  lw_free(q);
}

TEST(medium_double_free_is_caught) {
  char out[512];
  int aborted = run_child(medium_double_free, out, sizeof out);
  EXPECT(aborted);
  EXPECT(strstr(out, "double free") != NULL);
}

TEST(large_double_free_is_caught) {
  char out[512];
  EXPECT(run_child(large_double_free, out, sizeof out));
  EXPECT(strstr(out, "invalid free") != NULL);
}

TEST(free_of_a_stranger_is_caught) {
  char out[512];
  EXPECT(run_child(invalid_free_of_stack, out, sizeof out));
  EXPECT(strstr(out, "lwmalloc: invalid free") != NULL);
}

#if LW_CHECKED
TEST(checked_small_double_free_names_the_pointer) {
  char out[512];
  EXPECT(run_child(small_double_free, out, sizeof out));
  EXPECT(strstr(out, "double free of pointer") != NULL);
}
TEST(checked_interior_pointer_is_invalid) {
  char out[512];
  EXPECT(run_child(small_interior_free, out, sizeof out));
  EXPECT(strstr(out, "invalid free of pointer") != NULL);
}
TEST(checked_header_overwrite_is_caught) {
  char out[512];
  EXPECT(run_child(medium_header_overflow, out, sizeof out));
  EXPECT(strstr(out, "corrupted chunk header") != NULL);
}
#else
/* keep the helpers referenced in unchecked builds */
TEST(unchecked_build_compiles_checked_cases) {
  EXPECT(small_double_free != NULL && small_interior_free != NULL && medium_header_overflow != NULL);
}
#endif

TEST_MAIN()
