/* unwind_test: frames compiled with frame pointers (-fno-omit-frame-pointer). */
#include "unwind_test.h"

__attribute__((noinline)) int uwt_fp_rec(int depth, uwt_fn *leaf) {
  volatile int pad[4] = {depth, 0, 0, 0};
  if (depth <= 0) return leaf() + pad[0];
  int r = (depth % 3 == 0) ? uwt_nofp_rec(depth - 1, leaf) : uwt_fp_rec(depth - 1, leaf);
  return r + pad[1] + 1;
}
