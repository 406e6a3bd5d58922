/* A tiny test harness: TEST(name) { EXPECT(...); } and a main that runs
 * every test registered with TEST, then prints "N passed, N failed". */
#ifndef LW_TESTHELPER_H
#define LW_TESTHELPER_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

typedef void lw_test_fn(void);
struct lw_test { const char *name; lw_test_fn *fn; };
static struct lw_test lw_tests[256];
static int lw_ntests, lw_test_failed_now, lw_tests_failed;

#define TEST(tname)                                                            \
  static void test_##tname(void);                                              \
  __attribute__((constructor)) static void register_##tname(void) {            \
    lw_tests[lw_ntests].name = #tname;                                         \
    lw_tests[lw_ntests++].fn = test_##tname;                                   \
  }                                                                            \
  static void test_##tname(void)

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);      \
      lw_test_failed_now = 1;                                                  \
    }                                                                          \
  } while (0)
#define EXPECT_EQ_U(a, b)                                                      \
  do {                                                                         \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                        \
    if (a_ != b_) {                                                            \
      fprintf(stderr, "%s:%d: expected %s == %s (%ju != %ju)\n", __FILE__,     \
              __LINE__, #a, #b, a_, b_);                                       \
      lw_test_failed_now = 1;                                                  \
    }                                                                          \
  } while (0)
#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: expected %s (fatal)\n", __FILE__, __LINE__, #cond); \
      lw_test_failed_now = 1;                                                  \
      return;                                                                  \
    }                                                                          \
  } while (0)

/* Runs the tests whose name contains argv[1] (all when absent). */
static inline int lw_test_main(int argc, char **argv) {
  int passed = 0;
  for (int i = 0; i < lw_ntests; i++) {
    if (argc > 1 && !strstr(lw_tests[i].name, argv[1])) continue;
    lw_test_failed_now = 0;
    lw_tests[i].fn();
    fprintf(stderr, "%-40s %s\n", lw_tests[i].name, lw_test_failed_now ? "FAIL" : "ok");
    if (lw_test_failed_now) lw_tests_failed++; else passed++;
  }
  printf("%d passed, %d failed\n", passed, lw_tests_failed);
  return lw_tests_failed ? 1 : 0;
}
#define TEST_MAIN() int main(int argc, char **argv) { return lw_test_main(argc, argv); }
#endif
