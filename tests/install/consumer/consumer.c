/* A program built against an installed lwmalloc. */
#include <lwmalloc.h>
#include <stdio.h>

int main(void) {
  void *p = lw_malloc(100);
  int ok = p && lw_usable_size(p) >= 100 && lw_check() == 0;
  lw_free(p);
  puts(ok ? "ok" : "failed");
  return !ok;
}
