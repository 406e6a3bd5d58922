/* Fragmentation adversary: interleaved sizes, free every other object,
 * then ask for larger blocks that fit none of the holes.
 *
 * Each round: (1) allocate OBJECTS objects whose sizes cycle through a
 * pattern of small and medium sizes, (2) free every other one, leaving
 * holes pinned between live neighbours, (3) allocate as many bytes again
 * in blocks of 4-16 KiB (larger than every hole), (4) free everything of
 * the round but one object in 16 (long-lived survivors that pin pages).
 * After the last round everything is freed, malloc_trim(0) is called if
 * the running allocator (or glibc) provides it, and the program polls RSS
 * every 10 ms for up to 1 s to see when it falls back to within 10% of the
 * RSS it had before the first allocation.
 *
 * Extra LWB fields (KiB unless named otherwise):
 *   peak_rss_kb      highest RSS sampled after any phase
 *   final_rss_kb     RSS after the last round, survivors still live
 *   final_live_bytes bytes requested and live at that point
 *   freed_rss_kb     RSS right after freeing everything
 *   trimmed_rss_kb   RSS right after malloc_trim(0)
 *   settle_ms        ms after the last free until RSS <= 1.1 x base, -1 if
 *                    not within 1 s; work_s stops before this wait.
 */
#include <dlfcn.h>

#include "wl_common.h"

#define OBJECTS 60000
#define ROUNDS 12
#define KEEP_EVERY 16

static const uint32_t pattern[] = {24, 1500, 64, 400, 40, 3000, 128, 900};
#define PATTERN_LEN (sizeof pattern / sizeof pattern[0])

typedef struct blk_s {
  unsigned char *p;
  uint32_t size;
  uint32_t id;
} blk_t;

static long peak_rss;
static uint64_t next_id = 1;

static void sample_rss(void) {
  long r = wl_rss_kb();
  if (r > peak_rss) peak_rss = r;
}

static void blk_alloc(blk_t *b, uint32_t size) {
  b->p = malloc(size);
  if (!b->p) wl_xmalloc_fail("malloc", size);
  b->size = size;
  b->id = (uint32_t)next_id++;
  memset(b->p, (int)(b->id & 0xff), size);
  wl_live_add(0, size);
}

static uint64_t blk_free(blk_t *b) {
  if (!b->p) return 0;
  unsigned char want = (unsigned char)(b->id & 0xff);
  uint64_t h = wl_mix(b->id, b->size + (b->p[0] == want) + 2u * (b->p[b->size - 1] == want));
  free(b->p);
  wl_live_add(0, -(int64_t)b->size);
  b->p = NULL;
  return h;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  wl_rng_t r;
  wl_rng_seed(&r, a.seed, 5);
  uint64_t rounds = wl_scaled(&a, ROUNDS);
  size_t cap = OBJECTS * 2;
  blk_t *round_blks = calloc(cap, sizeof(blk_t));
  size_t survivors_cap = (size_t)rounds * (cap / KEEP_EVERY + 1);
  blk_t *survivors = calloc(survivors_cap, sizeof(blk_t));
  if (!round_blks || !survivors) return 3;
  int64_t tables = (int64_t)((cap + survivors_cap) * sizeof(blk_t));
  wl_live_add(0, tables);
  size_t nsurv = 0;
  uint64_t sum = 0;

  for (uint64_t round = 0; round < rounds; round++) {
    size_t n = 0;
    uint64_t freed = 0;
    for (size_t i = 0; i < OBJECTS; i++) /* (1) interleaved sizes */
      blk_alloc(&round_blks[n++], pattern[i % PATTERN_LEN] + (uint32_t)(wl_rand(&r) % 16));
    sample_rss();
    for (size_t i = 1; i < OBJECTS; i += 2) { /* (2) every other one */
      freed += round_blks[i].size;
      sum += blk_free(&round_blks[i]);
    }
    sample_rss();
    while (freed > 0 && n < cap) { /* (3) larger than any hole */
      uint32_t size = (uint32_t)wl_range(&r, 4096, 16384);
      blk_alloc(&round_blks[n++], size);
      freed = freed > size ? freed - size : 0;
    }
    sample_rss();
    for (size_t i = 0; i < n; i++) { /* (4) keep a few survivors */
      if (!round_blks[i].p) continue;
      if (i % KEEP_EVERY == 0 && nsurv < survivors_cap) survivors[nsurv++] = round_blks[i];
      else sum += blk_free(&round_blks[i]);
      round_blks[i].p = NULL;
    }
    sample_rss();
  }
  long final_rss = wl_rss_kb();
  int64_t final_live = wl_live_slots[0].live;

  for (size_t i = 0; i < nsurv; i++) sum += blk_free(&survivors[i]);
  free(survivors);
  free(round_blks);
  wl_live_add(0, -tables);
  long freed_rss = wl_rss_kb();
  int (*trim)(size_t) = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
  if (trim) trim(0);
  long trimmed_rss = wl_rss_kb();
  double work = wl_now() - a.t0;

  double t_free = wl_now();
  long settle_ms = -1;
  long target = a.base_rss_kb + a.base_rss_kb / 10;
  for (int step = 0; step <= 100; step++) {
    if (wl_rss_kb() <= target) {
      settle_ms = (long)((wl_now() - t_free) * 1000.0);
      break;
    }
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, NULL);
  }

  char extra[320];
  snprintf(extra, sizeof extra,
           "peak_rss_kb=%ld final_rss_kb=%ld final_live_bytes=%" PRId64
           " freed_rss_kb=%ld trimmed_rss_kb=%ld settle_ms=%ld malloc_trim=%d",
           peak_rss, final_rss, final_live, freed_rss, trimmed_rss, settle_ms, trim != NULL);
  a.t0 = wl_now() - work; /* work_s excludes the settle wait */
  wl_finish(&a, "frag", sum, extra);
  return 0;
}
