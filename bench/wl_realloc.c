/* Realloc growth: string builders that append and grow with realloc.
 *
 * BUILDERS strings are open at once; each step appends 1-64 bytes to a
 * random one. Even builders grow exactly (realloc to the new length, the
 * naive way), odd ones grow their capacity by 1.5x. A builder that reaches
 * its target length (64 B - 64 KiB, one in 32 up to 1 MiB) is shrunk to
 * fit, hashed over its whole content (a realloc that lost bytes changes
 * the checksum), freed, and started again.
 */
#include "wl_common.h"

#define BUILDERS 64
#define APPENDS 5000000ull

typedef struct builder_s {
  char *p;
  size_t len, cap, target;
} builder_t;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) wl_xmalloc_fail("realloc", n);
  return q;
}

static void builder_start(builder_t *b, wl_rng_t *r) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->target = (wl_rand(r) & 31) == 0 ? wl_range(r, 65536, 1 << 20) : wl_range(r, 64, 65536);
}

static uint64_t builder_finish(builder_t *b) {
  b->p = xrealloc(b->p, b->len + 1); /* shrink to fit */
  b->p[b->len] = 0;
  uint64_t h = wl_hash_bytes(b->p, b->len, 0xcbf29ce484222325ull) ^ b->len;
  free(b->p);
  wl_live_add(0, -(int64_t)(b->len + 1));
  return h;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  wl_rng_t r;
  wl_rng_seed(&r, a.seed, 3);
  static builder_t bs[BUILDERS];
  for (int i = 0; i < BUILDERS; i++) builder_start(&bs[i], &r);
  uint64_t sum = 0, appends = wl_scaled(&a, APPENDS);

  for (uint64_t s = 0; s < appends; s++) {
    uint64_t x = wl_rand(&r);
    int i = (int)(x % BUILDERS);
    builder_t *b = &bs[i];
    size_t chunk = 1 + (x >> 8) % 64;
    size_t need = b->len + chunk + 1;
    if (need > b->cap) {
      size_t cap = (i & 1) ? (b->cap * 3 / 2 > need ? b->cap * 3 / 2 : need) : need;
      b->p = xrealloc(b->p, cap);
      wl_live_add(0, (int64_t)cap - (int64_t)b->cap);
      b->cap = cap;
    }
    memset(b->p + b->len, 'a' + (int)((x >> 20) % 26), chunk);
    b->len += chunk;
    if (b->len >= b->target) {
      wl_live_add(0, (int64_t)(b->len + 1) - (int64_t)b->cap);
      sum += builder_finish(b);
      builder_start(b, &r);
    }
  }
  for (int i = 0; i < BUILDERS; i++) {
    if (!bs[i].p) continue;
    wl_live_add(0, (int64_t)(bs[i].len + 1) - (int64_t)bs[i].cap);
    sum += builder_finish(&bs[i]);
  }
  wl_finish(&a, "realloc", sum, "");
  return 0;
}
