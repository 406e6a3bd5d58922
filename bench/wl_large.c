/* Large blocks: 64 KiB - 8 MiB, every page touched.
 *
 * A live set of LIVE blocks; each step replaces a random block by one of a
 * log-uniform random size between 64 KiB and 8 MiB and writes one byte in
 * every 4 KiB page (as a buffer or image would be used). One step in eight
 * instead grows a block with realloc by 1.25-2x and touches the new pages.
 * Freed blocks are checked at 64 KiB strides, so a block that lost its
 * content in a realloc, or is shared, changes the checksum.
 */
#include <math.h>

#include "wl_common.h"

#define LIVE 12
#define STEPS 2500
#define MIN_SIZE (64u << 10)
#define MAX_SIZE (8u << 20)
#define PAGE 4096
#define CHECK_STRIDE (64u << 10)

typedef struct big_s {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} big_t;

static void touch(big_t *b, size_t from) {
  for (size_t off = from; off < b->size; off += PAGE) b->p[off] = (unsigned char)(b->tag + (off >> 12));
  b->p[b->size - 1] = b->tag;
}

static uint64_t check_free(big_t *b) {
  if (!b->p) return 0;
  uint64_t h = wl_mix(b->size, b->tag);
  for (size_t off = 0; off + 1 < b->size; off += CHECK_STRIDE) h = wl_mix(h, b->p[off]);
  h = wl_mix(h, b->p[b->size - 1]);
  free(b->p);
  wl_live_add(0, -(int64_t)b->size);
  b->p = NULL;
  return h;
}

static size_t random_size(wl_rng_t *r) {
  double u = (double)(wl_rand(r) >> 11) / 9007199254740992.0; /* [0,1) */
  return (size_t)((double)MIN_SIZE * pow((double)MAX_SIZE / MIN_SIZE, u));
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  wl_rng_t r;
  wl_rng_seed(&r, a.seed, 6);
  big_t blocks[LIVE] = {{0}};
  uint64_t sum = 0, steps = wl_scaled(&a, STEPS);

  for (uint64_t s = 0; s < steps; s++) {
    big_t *b = &blocks[wl_rand(&r) % LIVE];
    if (b->p && (wl_rand(&r) & 7) == 0) { /* grow in place or move */
      size_t old = b->size;
      size_t size = old + old * wl_range(&r, 25, 100) / 100;
      unsigned char *p = realloc(b->p, size);
      if (!p) wl_xmalloc_fail("realloc", size);
      wl_live_add(0, (int64_t)(size - old));
      b->p = p;
      b->size = size;
      touch(b, (old + PAGE - 1) / PAGE * PAGE);
      continue;
    }
    sum += check_free(b);
    b->size = random_size(&r);
    b->tag = (unsigned char)wl_rand(&r);
    b->p = malloc(b->size);
    if (!b->p) wl_xmalloc_fail("malloc", b->size);
    wl_live_add(0, (int64_t)b->size);
    touch(b, 0);
  }
  for (int i = 0; i < LIVE; i++) sum += check_free(&blocks[i]);
  wl_finish(&a, "large", sum, "");
  return 0;
}
