/* Aligned allocation: posix_memalign and aligned_alloc with alignments of
 * 16 B to 4 KiB, over a live set of SLOTS blocks replaced at random.
 *
 * Sizes are 8 B - 8 KiB (rounded up to a multiple of the alignment for
 * aligned_alloc, as C11 asks). Every returned pointer is checked against
 * its alignment; the number of misaligned pointers is part of the checksum
 * and printed in the LWB line, and the program exits 1 if it is not zero.
 */
#include "wl_common.h"

#define SLOTS 4096
#define STEPS 2000000ull

typedef struct ablk_s {
  unsigned char *p;
  uint32_t size;
  uint32_t id;
} ablk_t;

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  wl_rng_t r;
  wl_rng_seed(&r, a.seed, 8);
  static ablk_t slots[SLOTS];
  uint64_t sum = 0, misaligned = 0, steps = wl_scaled(&a, STEPS);

  for (uint64_t s = 0; s < steps + SLOTS; s++) {
    ablk_t *b = &slots[s < SLOTS ? s : wl_rand(&r) % SLOTS];
    if (b->p) {
      unsigned char want = (unsigned char)b->id;
      sum += wl_mix(b->id, b->size + (b->p[0] == want) + 2u * (b->p[b->size - 1] == want));
      free(b->p);
      wl_live_add(0, -(int64_t)b->size);
    }
    uint64_t x = wl_rand(&r);
    size_t align = (size_t)16 << (x % 9); /* 16 .. 4096 */
    size_t size = 8 + (x >> 8) % 8185;
    void *p = NULL;
    if ((x >> 40) & 1) {
      if (posix_memalign(&p, align, size) != 0) p = NULL;
    } else {
      size = (size + align - 1) / align * align;
      p = aligned_alloc(align, size);
    }
    if (!p) wl_xmalloc_fail("aligned", size);
    if ((uintptr_t)p & (align - 1)) misaligned++;
    b->p = p;
    b->size = (uint32_t)size;
    b->id = (uint32_t)s;
    memset(p, (int)(b->id & 0xff), size < 64 ? size : 64); /* head and tail only: */
    b->p[size - 1] = (unsigned char)b->id;                 /* memset would dominate */
    wl_live_add(0, (int64_t)size);
  }
  for (int i = 0; i < SLOTS; i++) {
    free(slots[i].p);
    wl_live_add(0, -(int64_t)slots[i].size);
  }
  char extra[64];
  snprintf(extra, sizeof extra, "misaligned=%" PRIu64, misaligned);
  wl_finish(&a, "aligned", wl_mix(sum, misaligned), extra);
  return misaligned ? 1 : 0;
}
