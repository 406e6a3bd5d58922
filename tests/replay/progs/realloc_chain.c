/* Traced by the replay tests: buffers grown by realloc (in place and
 * moved), shrunk, realloc(NULL, n), reallocarray and calloc. Exits 0. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

int main(void) {
  char *keep[8] = {0};
  for (int round = 0; round < 400; round++) {
    size_t size = 8;
    char *p = realloc(NULL, size);
    if (!p) return 1;
    for (int k = 0; k < 12; k++) {
      size = size * 2 + (size_t)round % 7;
      char *q = realloc(p, size);
      if (!q) return 1;
      memset(q, k, size);
      p = q;
    }
    p = realloc(p, 100); /* shrink */
    if (!p) return 1;
    char *arr = reallocarray(NULL, (size_t)round % 13 + 1, 24);
    char *z = calloc((size_t)round % 5 + 1, 64);
    if (!arr || !z) return 1;
    free(keep[round % 8]);
    keep[round % 8] = p;
    free(arr);
    free(z);
  }
  for (int i = 0; i < 8; i++) free(keep[i]);
  return 0;
}
