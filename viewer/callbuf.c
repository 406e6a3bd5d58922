/* The importer's reorder ring (see callbuf.h). */
#include "callbuf.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((CALLBUF_SLOTS & (CALLBUF_SLOTS - 1)) == 0, "ring size is a power of two");
_Static_assert(CALLBUF_BEHIND < CALLBUF_SLOTS / 2, "room left for out-of-order records");

int callbuf_open(callbuf_t *b, uint64_t tail) {
  b->n = CALLBUF_SLOTS;
  b->behind = CALLBUF_BEHIND;
  const char *env = getenv("LWV_RING_SLOTS");
  if (env) {
    unsigned long long n = strtoull(env, NULL, 0);
    if (n >= 256 && n <= (1u << 24) && (n & (n - 1)) == 0) {
      b->n = n;
      b->behind = n / 8;
    }
  }
  b->slots = calloc(b->n, sizeof *b->slots);
  b->tail = tail;
  return b->slots ? 0 : -1;
}

void callbuf_close(callbuf_t *b) {
  free(b->slots);
  memset(b, 0, sizeof *b);
}
