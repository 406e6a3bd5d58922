/* lw_trace_* for statically linked programs (liblwmalloc-trace.a):
 * nothing is recorded before lw_trace_start, start/stop/start again,
 * EBUSY/EINVAL, never overwriting a file. `api_test --tiny FILE` writes
 * the tiny deterministic trace behind traces/tiny.dump.expected. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../testhelper.h"
#include "lw_trace.h"
#include "trace_read.h"

static void *volatile sink;
static char dir[256];

static void alloc_n(int n, size_t size) {
  for (int i = 0; i < n; i++) {
    sink = malloc(size);
    free(sink);
  }
}

/* Number of CALL records of op with size in path; -1 if unreadable. */
static long count_calls(const char *path, unsigned op, uint64_t size, int *ended) {
  char err[1024];
  lwt_reader_t *r = lwt_open(path, err, sizeof err);
  if (!r) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  long n = 0;
  lwt_record_t rec;
  int rc;
  *ended = 0;
  while ((rc = lwt_next(r, &rec)) == 1) {
    if (rec.kind == LWT_CALL && rec.call.op == op && rec.call.size == size) n++;
    if (rec.kind == LWT_END) *ended = 1;
  }
  lwt_close(r);
  return rc == 0 ? n : -1;
}

TEST(start_stop_start) {
  char p1[300], p2[300];
  snprintf(p1, sizeof p1, "%s/one.lwt.zst", dir);
  snprintf(p2, sizeof p2, "%s/two.lwt.zst", dir);
  EXPECT(!lw_trace_active());
  alloc_n(5, 4321); /* before start: not recorded anywhere */
  EXPECT(lw_trace_stop() == -1 && errno == EINVAL);
  ASSERT(lw_trace_start(p1) == 0);
  EXPECT(lw_trace_active());
  EXPECT(strcmp(lw_trace_path(), p1) == 0);
  EXPECT(lw_trace_start(p2) == -1 && errno == EBUSY);
  alloc_n(3, 100);
  EXPECT(lw_trace_stop() == 0);
  EXPECT(!lw_trace_active());
  alloc_n(4, 150); /* stopped: not recorded */
  ASSERT(lw_trace_start(p2) == 0);
  alloc_n(2, 200);
  EXPECT(lw_trace_stop() == 0);
  int ended = 0;
  EXPECT_EQ_U(count_calls(p1, LW_OP_MALLOC, 100, &ended), 3);
  EXPECT(ended);
  EXPECT_EQ_U(count_calls(p1, LW_OP_MALLOC, 4321, &ended), 0);
  EXPECT_EQ_U(count_calls(p1, LW_OP_MALLOC, 150, &ended), 0);
  EXPECT_EQ_U(count_calls(p2, LW_OP_MALLOC, 200, &ended), 2);
  EXPECT_EQ_U(count_calls(p2, LW_OP_MALLOC, 100, &ended), 0);
}

TEST(never_overwrites) {
  char p1[300], want[320];
  snprintf(p1, sizeof p1, "%s/one.lwt.zst", dir); /* exists: made above */
  snprintf(want, sizeof want, "%s/one.1.lwt.zst", dir);
  ASSERT(lw_trace_start(p1) == 0);
  EXPECT(strcmp(lw_trace_path(), want) == 0);
  alloc_n(1, 300);
  EXPECT(lw_trace_stop() == 0);
  int ended = 0;
  EXPECT_EQ_U(count_calls(p1, LW_OP_MALLOC, 100, &ended), 3); /* untouched */
  EXPECT_EQ_U(count_calls(want, LW_OP_MALLOC, 300, &ended), 1);
}

static int tiny(const char *path) {
  setenv("LW_TRACE_DEPTH", "0", 1);
  unlink(path);
  if (lw_trace_start(path) != 0) return 1;
  void *volatile a = malloc(24), *volatile b = calloc(4, 8), *c = NULL;
  a = realloc(a, 4000);
  if (posix_memalign(&c, 64, 100) != 0) return 1;
  void *volatile d = aligned_alloc(128, 256);
  free(b);
  free(a);
  free(c);
  free(d);
  return lw_trace_stop() == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--tiny") == 0) return tiny(argv[2]);
  snprintf(dir, sizeof dir, "/tmp/lwtrace-api-%d", (int)getpid());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
  if (system(cmd) != 0) return 1;
  int rc = lw_test_main(argc, argv);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return rc;
}
