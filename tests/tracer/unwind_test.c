/* The fast stack walk (tracer/unwind.c) against a reference unwinder:
 * unw_backtrace (UWT_LIBUNWIND) or libgcc's _Unwind_Backtrace (the
 * aarch64 cross build, which has no libunwind). At many call sites --
 * recursion at varying depths through frames with and without frame
 * pointers, alloca and VLA frames, a realigned frame, a dlopen'ed object,
 * a signal handler, several threads, truncated walks, 32-frame walks
 * answered from the per-thread memo -- every walk must
 * equal the reference frame for frame, or have fallen back (-1). The
 * cases that the walk is meant to take must not all fall back.
 *   unwind_test PATH_OF_unwind_lib.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "recorder.h"
#include "unwind_test.h"

#ifdef UWT_LIBUNWIND
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#define UWT_REF "unw_backtrace"
/* frames from the return address into the caller of uwt_ref */
__attribute__((noinline)) static int uwt_ref(void **buf, int max) {
  void *tmp[128];
  int n = unw_backtrace(tmp, max + 1 < 128 ? max + 1 : 128);
  for (int i = 1; i < n; i++) buf[i - 1] = tmp[i];
  return n > 0 ? n - 1 : 0;
}
#else
#include <unwind.h>
#define UWT_REF "_Unwind_Backtrace"
typedef struct {
  void **buf;
  int n, max, skip;
} uwt_gcc_t;
static _Unwind_Reason_Code uwt_gcc_frame(struct _Unwind_Context *ctx, void *arg) {
  uwt_gcc_t *g = arg;
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (g->skip > 0) {
    g->skip--;
    return _URC_NO_REASON;
  }
  if (g->n >= g->max) return _URC_END_OF_STACK;
  if (ip == 0) return _URC_END_OF_STACK;
  g->buf[g->n++] = (void *)ip;
  return _URC_NO_REASON;
}
__attribute__((noinline)) static int uwt_ref(void **buf, int max) {
  uwt_gcc_t g = {buf, 0, max, 1}; /* the first context is uwt_ref's */
  _Unwind_Backtrace(uwt_gcc_frame, &g);
  return g.n;
}
#endif

#define UWT_MAX 100
enum { C_REC, C_VARFRAME, C_REALIGN, C_LIB, C_SIGNAL, C_THREAD, C_TRUNC, C_MEMO, C_COUNT };
static const char *uwt_names[C_COUNT] = {"recursion", "alloca/vla", "realigned", "dlopen",
                                         "signal", "threads", "truncated", "32 frames"};
static _Atomic unsigned long uwt_ok[C_COUNT], uwt_fell[C_COUNT], uwt_bad[C_COUNT];
static __thread int uwt_case;

static void uwt_print(const char *who, void **f, int n) {
  fprintf(stderr, "  %s (%d frames):\n", who, n);
  for (int i = 0; i < n; i++) {
    Dl_info di;
    const char *s = dladdr(f[i], &di) && di.dli_sname ? di.dli_sname : "?";
    fprintf(stderr, "    %2d %p %s\n", i, f[i], s);
  }
}

/* Compares frames 1..: frame 0 is the return address into uwt_leaf,
 * from two different calls. */
__attribute__((noinline)) static int uwt_leaf(void) {
  void *a[UWT_MAX], *b[UWT_MAX], *t[UWT_MAX];
  int na = _lwt_unwind(a, UWT_MAX);
  int nb = uwt_ref(b, UWT_MAX);
  int c = uwt_case;
  if (na < 0) {
    atomic_fetch_add(&uwt_fell[c], 1);
    return 0;
  }
  int same = na == nb && na > 0 && (uintptr_t)a[0] - (uintptr_t)b[0] + 256 < 512;
  for (int i = 1; same && i < na; i++) same = a[i] == b[i];
  if (!same) {
    if (atomic_fetch_add(&uwt_bad[c], 1) < 3) {
      fprintf(stderr, "MISMATCH (%s):\n", uwt_names[c]);
      uwt_print("_lwt_unwind", a, na);
      uwt_print(UWT_REF, b, nb);
    }
    return 0;
  }
  if (atomic_fetch_add(&uwt_ok[c], 1) == 0 && getenv("UWT_VERBOSE")) {
    fprintf(stderr, "equal (%s):\n", uwt_names[c]);
    uwt_print("_lwt_unwind", a, na);
  }
  /* a truncated walk is the prefix of the whole one; walks of at most
   * 32 frames (the recorder's) go through the per-thread memo, whose
   * entries are keyed by the stack pointer: different stacks at the same
   * one must not be confused */
  for (int k = 0; k < 2; k++) {
    int want = k ? 32 : 5;
    int nt = _lwt_unwind(t, want);
    if (nt < 0) continue;
    int tsame = nt == (na < want ? na : want);
    for (int i = 1; tsame && i < nt; i++) tsame = t[i] == a[i];
    atomic_fetch_add(tsame ? &uwt_ok[k ? C_MEMO : C_TRUNC] : &uwt_bad[k ? C_MEMO : C_TRUNC], 1);
    if (!tsame && atomic_load(&uwt_bad[k ? C_MEMO : C_TRUNC]) < 3) {
      fprintf(stderr, "MISMATCH (%d frames):\n", want);
      uwt_print("_lwt_unwind", t, nt);
      uwt_print("_lwt_unwind, all", a, na);
    }
  }
  return 1;
}

static void uwt_handler(int sig) {
  (void)sig;
  int saved = uwt_case;
  uwt_case = C_SIGNAL;
  uwt_leaf();
  uwt_case = saved;
}

__attribute__((noinline)) static int uwt_leaf_raise(void) {
  raise(SIGUSR1);
  return uwt_leaf();
}

typedef int uwt_lib_fn(int depth, uwt_fn *leaf);
static uwt_lib_fn *uwt_lib_rec;

static void uwt_suite(int threaded) {
  for (int d = 0; d < 40; d++) {
    uwt_case = threaded ? C_THREAD : C_REC;
    uwt_fp_rec(d, uwt_leaf);
    uwt_nofp_rec(d, uwt_leaf);
    uwt_case = threaded ? C_THREAD : C_VARFRAME;
    uwt_vla(d, uwt_leaf);
    uwt_alloca(d * 7, uwt_leaf);
    uwt_case = C_REALIGN;
    uwt_realign(d, uwt_leaf);
    uwt_case = threaded ? C_THREAD : C_LIB;
    uwt_lib_rec(d, uwt_leaf);
    uwt_case = threaded ? C_THREAD : C_REC;
    if (d % 5 == 0) uwt_fp_rec(d, uwt_leaf_raise);
  }
}

static void *uwt_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 20; i++) uwt_suite(1);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: unwind_test PATH_OF_unwind_lib.so\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  uwt_lib_rec = (uwt_lib_fn *)(uintptr_t)dlsym(lib, "uwt_lib_rec");
  struct sigaction sa = {0};
  sa.sa_handler = uwt_handler;
  sigaction(SIGUSR1, &sa, NULL);

  setenv("LW_TRACE_UNWIND", "libunwind", 1);
  _lwt_unwind_init();
  void *f[4];
  if (_lwt_unwind(f, 4) != -1) {
    fprintf(stderr, "FAIL: LW_TRACE_UNWIND=libunwind does not disable the walk\n");
    return 1;
  }
  unsetenv("LW_TRACE_UNWIND");
  _lwt_unwind_init();

  for (int round = 0; round < 3; round++) { /* round 0 fills the cache, then hits */
    uwt_suite(0);
    if (round == 1) _lwt_unwind_flush();
  }
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, uwt_thread, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);

  int fail = 0;
  for (int c = 0; c < C_COUNT; c++) {
    printf("%-11s equal %6lu  fell back %6lu  different %lu\n", uwt_names[c], uwt_ok[c],
           uwt_fell[c], uwt_bad[c]);
    if (uwt_bad[c]) fail = 1;
  }
  /* what the walk must take itself (the rest may fall back) */
  static const int must[] = {C_REC, C_VARFRAME, C_LIB, C_THREAD, C_TRUNC, C_MEMO};
  for (unsigned i = 0; i < sizeof must / sizeof must[0]; i++)
    if (uwt_ok[must[i]] == 0) {
      printf("FAIL: %s: no walk was taken by _lwt_unwind\n", uwt_names[must[i]]);
      fail = 1;
    }
  printf(fail ? "FAIL\n" : "ok (reference: %s)\n", UWT_REF);
  return fail;
}
