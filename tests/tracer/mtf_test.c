/* The recorder's ring cache (recorder.h, lwt_mtf_*) against the reader's
 * move-to-front array (trace_format.h, lwt_cache_*): the same indices for
 * every lookup, the same contents after every touch, including the
 * initial zeros (free(NULL)) and the two pointers of a realloc, whose
 * second index is derived before the first touch is applied. */
#include <stdio.h>
#include <stdlib.h>

#include "recorder.h"

static unsigned long long rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* values from a small set (0 included) so that hits at every index occur;
 * a few share a tag with others (same hash byte), exercising the check */
static uint64_t pick(unsigned spread) {
  uint64_t r = next() % spread;
  if (r == 0) return 0;
  return 0x10000 + r * 16;
}

static int same(const lwt_mtf_t *m, const lwt_ptr_cache_t *c) {
  for (int j = 0; j < LWT_PTR_CACHE; j++) {
    if (m->p[(m->head + (unsigned)j) & 15] != c->p[j]) return 0;
    if (m->tag[(m->head + (unsigned)j) & 15] != lwt_mtf_tag(c->p[j])) return 0;
  }
  return 1;
}

int main(void) {
  unsigned long checks = 0;
  for (unsigned spread = 2; spread <= 600; spread = spread * 3 / 2 + 1) {
    lwt_mtf_t m;
    lwt_ptr_cache_t c = {{0}};
    lwt_mtf_reset(&m);
    for (int step = 0; step < 200000; step++) {
      uint64_t a = pick(spread);
      if (next() % 4 == 0) { /* two pointers: realloc(a) -> b */
        uint64_t b = next() % 3 == 0 ? a : pick(spread);
        int ha = lwt_mtf_find(&m, a);
        int hb = b == a ? 0 : lwt_mtf_shifted(lwt_mtf_find(&m, b), ha);
        int ra = lwt_cache_find(&c, a);
        lwt_cache_touch(&c, a, ra);
        int rb = lwt_cache_find(&c, b);
        lwt_cache_touch(&c, b, rb);
        if (ha != ra || hb != rb) {
          fprintf(stderr, "spread %u step %d: realloc %#llx->%#llx: %d,%d want %d,%d\n", spread, step,
                  (unsigned long long)a, (unsigned long long)b, ha, hb, ra, rb);
          return 1;
        }
        lwt_mtf_touch(&m, a, ha);
        lwt_mtf_touch(&m, b, hb);
      } else {
        int h = lwt_mtf_find(&m, a), r = lwt_cache_find(&c, a);
        if (h != r) {
          fprintf(stderr, "spread %u step %d: %#llx at %d, want %d\n", spread, step,
                  (unsigned long long)a, h, r);
          return 1;
        }
        lwt_mtf_touch(&m, a, h);
        lwt_cache_touch(&c, a, r);
      }
      if (!same(&m, &c)) {
        fprintf(stderr, "spread %u step %d: contents differ\n", spread, step);
        return 1;
      }
      checks++;
    }
  }
  printf("mtf: %lu steps equal\n", checks);
  return 0;
}
