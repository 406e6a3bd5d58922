/* unwind_test: frames compiled without frame pointers, variable frames
 * (alloca, a VLA) and a realigned frame (its CFA is a DWARF expression on
 * x86-64: the walk must fall back). */
#include <alloca.h>
#include <string.h>

#include "unwind_test.h"

__attribute__((noinline)) int uwt_nofp_rec(int depth, uwt_fn *leaf) {
  volatile int pad[4] = {depth, 0, 0, 0};
  if (depth <= 0) return leaf() + pad[0];
  int r = (depth % 4 == 1) ? uwt_fp_rec(depth - 1, leaf) : uwt_nofp_rec(depth - 1, leaf);
  return r + pad[1] + 1;
}

__attribute__((noinline)) int uwt_alloca(int n, uwt_fn *leaf) {
  char *p = alloca((size_t)n * 24 + 8);
  memset(p, n, (size_t)n * 24 + 8);
  int r = leaf();
  return r + p[n];
}

__attribute__((noinline)) int uwt_vla(int n, uwt_fn *leaf) {
  char v[n * 40 + 3];
  memset(v, 1, sizeof v);
  int r = uwt_alloca(n + 1, leaf);
  return r + v[n];
}

__attribute__((noinline)) int uwt_realign(int n, uwt_fn *leaf) {
  _Alignas(64) volatile char buf[64];
  buf[0] = (char)n;
  int r = leaf();
  return r + buf[0];
}
