/* Error reports and the invariant checkers (every invariant the other
 * files state is re-derived here, each failure naming it). Reports never
 * allocate: they format into a stack buffer and write(2) it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void _lw_write(const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* Writes v in `base` (10 or 16) at out, NUL-terminated; returns the end. */
char *_lw_fmt_u64(char *out, uint64_t v, int base) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
    v /= (unsigned)base;
  } while (v);
  while (n) *out++ = tmp[--n];
  *out = 0;
  return out;
}

void _lw_report(const char *what, const void *p) {
  char buf[256], *o = buf;
  const char *pre = "lwmalloc: ";
  size_t n = strlen(pre), m = strlen(what);
  if (m > 180) m = 180;
  memcpy(o, pre, n), o += n;
  memcpy(o, what, m), o += m;
  *o++ = ' ', *o++ = '0', *o++ = 'x';
  o = _lw_fmt_u64(o, (uintptr_t)p, 16);
  *o++ = '\n', *o = 0;
  _lw_write(buf);
  abort();
}

void _lw_fail(const char *file, int line, const char *what) {
  char num[24];
  _lw_fmt_u64(num, (uint64_t)line, 10);
  _lw_write("lwmalloc: invariant broken: ");
  _lw_write(what);
  _lw_write(" (");
  _lw_write(file);
  _lw_write(":");
  _lw_write(num);
  _lw_write(")\n");
  abort();
}

/* ---- medium heaps ---------------------------------------------------------- */
static void check_span(lw_heap_t *h, lw_chunk_t *c, size_t *inuse, size_t *quick, size_t *merged) {
  bool prev_merged = false;
  for (;;) {
    size_t sz = lw_chunk_size(c);
    LW_INSIST(((uintptr_t)c & 15) == 8 && "chunk headers sit at 8 mod 16");
    LW_INSIST(!!(c->hdr & LW_CH_PREV_FREE) == prev_merged && "P bit == previous chunk merged-free");
#if LW_CHECKED
    LW_INSIST((c->hdr >> LW_CH_TAG_SHIFT) == lw_chunk_tag(c, sz) && "header tag intact");
#endif
    if (sz == 0) {
      LW_INSIST((c->hdr & LW_CH_INUSE) && "sentinel is in use");
      return;
    }
    LW_INSIST(sz >= LW_CHUNK_MIN && sz % LW_ALIGN == 0 && "chunk size sane");
    bool in_use = c->hdr & LW_CH_INUSE, is_quick = c->hdr & LW_CH_QUICK;
    LW_INSIST(!(in_use && is_quick) && "U and Q never both set");
    if (!in_use) {
      if (!is_quick) LW_INSIST(*(uint64_t *)((uint8_t *)c + sz - 8) == sz && "footer == size");
      if (!is_quick) LW_INSIST(!prev_merged && "no two merged-free chunks adjacent");
      unsigned b = _lw_bin_of(sz);
      LW_INSIST(((is_quick ? h->quick_map : h->bin_map)[b >> 6] >> (b & 63) & 1) && "list of a listed chunk is marked");
    }
    *(in_use ? inuse : is_quick ? quick : merged) += sz;
    prev_merged = !in_use && !is_quick;
    c = lw_chunk_next(c);
  }
}

int _lw_heap_check(lw_heap_t *h) {
  size_t inuse = 0, quick = 0, merged = 0;
  lw_lock(&h->lock);
  if (h->region_first)
    check_span(h, h->region_first, &inuse, &quick, &merged);
  for (lw_segment_t *s = h->segments; s; s = s->next) {
    LW_INSIST(s->magic == LW_SEG_MAGIC && s->kind == LW_SEG_MEDIUM && s->heap == h && "medium segment header intact");
    check_span(h, _lw_segment_first_chunk(s), &inuse, &quick, &merged);
  }
  for (unsigned b = 0; b < LW_NBINS; b++) {
    for (lw_chunk_t *c = h->bins[b]; c; c = c->next) {
      LW_INSIST(_lw_bin_of(lw_chunk_size(c)) == b && !(c->hdr & (LW_CH_INUSE | LW_CH_QUICK)) && "bin holds merged-free chunks of its size");
      LW_INSIST((!c->next || c->next->prev == c) && "bin links consistent");
    }
    for (lw_chunk_t *c = h->quick[b]; c; c = c->next) {
      LW_INSIST(_lw_bin_of(lw_chunk_size(c)) == b && (c->hdr & LW_CH_QUICK) && "quick list holds parked chunks of its size");
      LW_INSIST((!c->next || c->next->prev == c) && "quick links consistent");
    }
  }
  LW_INSIST(quick == h->unmerged_bytes && "unmerged_bytes == sum of quick chunks");
  LW_INSIST(merged == h->free_bytes && "free_bytes == sum of merged-free chunks");
  LW_INSIST(inuse == h->live_bytes && "live_bytes == sum of in-use chunks");
  lw_unlock(&h->lock);
  return 0;
}

/* ---- pools ------------------------------------------------------------------ */
static void check_page_of_segment(lw_page_t *pg, void *arg) {
  uint32_t *used = arg; /* pages in use so far in this segment */
  size_t idx = ((uintptr_t)pg->start & LW_SEG_MASK) >> LW_PAGE_SHIFT;
  lw_segment_t *seg = (lw_segment_t *)((uintptr_t)pg->start & ~(uintptr_t)LW_SEG_MASK);
  if (idx == 1) {
    LW_INSIST(seg->magic == LW_SEG_MAGIC && seg->kind == LW_SEG_POOL && "pool segment header intact");
    *used = 0;
  }
  if (atomic_load(&pg->state) == LW_PAGE_FREE)
    LW_INSIST(pg->owner == NULL && "free pages have no owner");
  else
    ++*used;
  if (idx == LW_PAGES_PER_SEG - 1) LW_INSIST(*used == seg->used_pages && "segment counts its pages in use");
}

/* The calling thread's pages (only their owner may look inside), then
 * the state of every page of every pool segment. */
int _lw_pool_check(void) {
  lw_tld_t *tld = _lw_tld;
  for (unsigned c = 0; tld != &_lw_tld_empty && c < LW_NCLASSES; c++) {
    for (lw_page_t *pg = tld->cur[c]; pg && pg != &_lw_page_empty; pg = pg->next) {
      LW_INSIST(pg->owner == tld && "page in a thread's list is owned by it");
      LW_INSIST(pg->cls == c && "page in the list of its class");
      LW_INSIST(atomic_load(&pg->state) == LW_PAGE_ACTIVE && "listed pages are ACTIVE");
      uintptr_t remote = atomic_load(&pg->remote);
      LW_INSIST(!(remote & LW_REMOTE_FLAGS) && "ACTIVE pages carry no remote flags");
      uint32_t nfree = 0, limit = pg->bumped;
      for (lw_block_t *b = pg->free; b; b = lw_block_next(b)) {
        size_t off = (size_t)((uint8_t *)b - pg->start);
        LW_INSIST(off < (size_t)pg->bumped * pg->slot_size && "free slot inside the carved part");
        LW_INSIST(!((uint8_t *)b >= pg->unused && (uint8_t *)b < pg->unused_end) && "free slot not in the unused range");
        LW_INSIST(off % pg->slot_size == 0 && "free slot on a slot boundary");
        LW_INSIST(++nfree <= limit && "free list has no cycle");
      }
      size_t nunused = (size_t)(pg->unused_end - pg->unused) / pg->slot_size;
      LW_INSIST(pg->unused <= pg->unused_end && "unused range well-formed");
      LW_INSIST(nfree + pg->used + nunused == pg->bumped && "used + local free + unused == carved");
      /* remote frees still count as used until collected; blocks pushed by
       * other threads are immutable until then */
      uint32_t nremote = 0;
      for (lw_block_t *b = (lw_block_t *)remote; b; b = lw_block_next(b))
        LW_INSIST(++nremote <= pg->used && "remote frees are among the used slots");
    }
  }
  for (unsigned c = 0; tld != &_lw_tld_empty && c < LW_NCLASSES; c++) {
    unsigned n = 0;
    for (lw_block_t *b = tld->hot[c]; b; b = b->next) {
      lw_segment_t *seg = lw_segment_of(b);
      LW_INSIST(seg && seg->kind == LW_SEG_POOL && lw_page_of(seg, b)->cls == c && "hot slot in a page of its class");
      LW_INSIST(++n <= tld->nhot[c] && "hot list as long as its count");
    }
    LW_INSIST(n == tld->nhot[c] && n <= _lw_hot_max[c] && "hot count within its bound");
  }
  uint32_t used = 0;
  _lw_pool_visit(check_page_of_segment, &used);
  return 0;
}

/* Every checker reports through LW_INSIST, which aborts: reaching the end
 * means every invariant held. */
LW_API int lw_check(void) {
  lw_ensure_init();
  _lw_pool_check();
  _lw_big_check();
  for (unsigned i = 0; i < _lw_g.narenas; i++)
    if (_lw_heaps[i].can_grow) _lw_heap_check(&_lw_heaps[i]);
  return 0;
}
