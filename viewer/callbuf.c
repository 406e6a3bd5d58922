/* The importer's reorder ring (see callbuf.h). */
#include "callbuf.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((CALLBUF_SLOTS & (CALLBUF_SLOTS - 1)) == 0, "ring size is a power of two");
_Static_assert(CALLBUF_BEHIND < CALLBUF_SLOTS / 2, "room left for out-of-order records");

int callbuf_open(callbuf_t *b, uint64_t tail) {
  b->slots = calloc(CALLBUF_SLOTS, sizeof *b->slots);
  b->tail = tail;
  return b->slots ? 0 : -1;
}

void callbuf_close(callbuf_t *b) {
  free(b->slots);
  memset(b, 0, sizeof *b);
}
