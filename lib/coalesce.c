/* Deferred coalescing. Frees park chunks unmerged on quick lists
 * (heap.c); merging happens here, in bounded runs, only when
 *   - an allocation misses (no quick chunk and no merged chunk fits), or
 *   - the parked bytes cross the heap's unmerged_limit (on free).
 * A run takes at most `budget` parked chunks, counting both the ones it
 * starts from and the parked neighbours it absorbs, so no single call does
 * more than O(budget) work. Each run is a COALESCE_RUN event. */
#define _GNU_SOURCE
#include <time.h>

#include "internal.h"

static void absorb(lw_heap_t *h, lw_chunk_t *n) {
  _lw_list_unlink(h, n);
  if (n->hdr & LW_CH_QUICK)
    h->unmerged_bytes -= lw_chunk_size(n);
  else
    h->free_bytes -= lw_chunk_size(n);
}

/* Merges the unlinked, not-in-use chunk c (its bytes counted in neither
 * total) with its not-in-use neighbours; the result goes to its bin.
 * Merged-free neighbours are always absorbed (there is at most one on each
 * side: they are never adjacent); parked ones after it only while *budget
 * lasts. A parked chunk before c is invisible from here (only a
 * merged-free one sets P and a footer): it absorbs c when its own turn
 * comes. */
lw_chunk_t *_lw_coalesce_chunk(lw_heap_t *h, lw_chunk_t *c, unsigned *budget) {
  size_t size = lw_chunk_size(c);
  if (c->hdr & LW_CH_PREV_FREE) {
    lw_chunk_t *p = lw_chunk_prev(c);
    absorb(h, p);
    size += lw_chunk_size(p);
    c = p;
  }
  for (;;) {
    lw_chunk_t *n = (lw_chunk_t *)((uint8_t *)c + size);
    if (n->hdr & LW_CH_INUSE) break; /* also stops at the sentinel */
    if (n->hdr & LW_CH_QUICK) {
      if (!*budget) break;
      --*budget;
    }
    absorb(h, n);
    size += lw_chunk_size(n);
  }
  c->hdr = lw_hdr_make(c, size, 0); /* a merged-free chunk never follows another */
  lw_chunk_set_footer(c);
  lw_hdr_flags((lw_chunk_t *)((uint8_t *)c + size), LW_CH_PREV_FREE, 0);
  _lw_bin_insert(h, c);
  h->free_bytes += size;
  return c;
}

static inline uint64_t now_ns(void) {
#ifdef LW_TRACE
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
  return 0;
#endif
}

/* Returns the size of a merged chunk >= want as soon as one appears
 * (want == 0: none is wanted), else 0. */
size_t _lw_coalesce_run(lw_heap_t *h, unsigned budget, size_t want) {
  uint64_t t0 = now_ns();
  size_t unmerged0 = h->unmerged_bytes, found = 0;
  unsigned budget0 = budget;
  while (budget) {
    unsigned w = 0;
    while (w < LW_BINMAP_WORDS && !h->quick_map[w]) w++;
    if (w == LW_BINMAP_WORDS) break;
    lw_chunk_t *c = h->quick[w * 64 + (unsigned)__builtin_ctzll(h->quick_map[w])];
    _lw_list_unlink(h, c);
    h->unmerged_bytes -= lw_chunk_size(c);
    budget--;
    lw_chunk_t *m = _lw_coalesce_chunk(h, c, &budget);
    if (want && lw_chunk_size(m) >= want) {
      found = lw_chunk_size(m);
      break;
    }
    _lw_heap_release_pages(h, m, _lw_g.release_min);
  }
  unsigned chunks = budget0 - budget;
  if (chunks) {
    h->coalesce_runs++;
    h->coalesced_chunks += chunks;
    LW_EVENT(COALESCE_RUN, chunks, unmerged0 - h->unmerged_bytes, now_ns() - t0);
  }
  (void)t0;
  return found;
}
