/* unwind_test: a dlopen'ed object whose frames the walk crosses. */
typedef int uwt_fn(void);

__attribute__((noinline)) int uwt_lib_rec(int depth, uwt_fn *leaf) {
  volatile int pad[2] = {depth, 0};
  if (depth <= 0) return leaf() + pad[0];
  return uwt_lib_rec(depth - 1, leaf) + pad[1] + 1;
}
