/* Medium chunks: compact headers (types.h), segregated free lists, and
 * deferred coalescing (coalesce.c).
 *
 * free() does not merge: it parks the chunk on the quick list of its size
 * (O(1)). malloc() first tries that quick list, then the merged-free bins
 * (good fit: the first chunk of the smallest non-empty bin that fits); on a
 * miss, a bounded coalescing run merges some parked chunks with their
 * neighbours and the bins are tried again; then the heap grows by a
 * segment. The same code runs an embedded region (can_grow == 0).
 * Invariants: see _lw_heap_check() in check.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "internal.h"

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h> /* glibc 2.32+ */
#define LW_SINGLE_THREADED() (__libc_single_threaded != 0)
#endif
#endif
#ifndef LW_SINGLE_THREADED
#define LW_SINGLE_THREADED() false
#endif

static void free_locked(lw_heap_t *h, void *p);

/* Frees that signal handlers deferred (signal.c), linked through their
 * first word. */
static lw_noinline void free_deferred(lw_heap_t *h) {
  uintptr_t d = atomic_exchange_explicit(&h->deferred, 0, memory_order_acquire);
  while (d) {
    void *p = (void *)d;
    d = *(uintptr_t *)p;
    free_locked(h, p);
  }
}

/* The heap lock, skipped while the process has one thread (glibc clears
 * __libc_single_threaded before a second thread can run). Each operation
 * decides once and unlocks only what it locked; both ways it counts as a
 * locked section (signal.c). */
static inline bool heap_lock(lw_heap_t *h) {
  lw_depth_enter();
  bool locked = !LW_SINGLE_THREADED();
  if (locked) pthread_mutex_lock(&h->lock);
  if (lw_unlikely(atomic_load_explicit(&h->deferred, memory_order_relaxed) != 0)) free_deferred(h);
  return locked;
}
static inline void heap_unlock(lw_heap_t *h, bool locked) {
  if (locked) pthread_mutex_unlock(&h->lock);
  lw_depth_leave();
}

#define LW_COALESCE_BUDGET 64     /* chunks merged per run on the malloc/free path */
#define LW_MAX_ARENAS 8
#define LW_UNMERGED_MIN ((size_t)64 << 10)

static lw_heap_t arenas[LW_MAX_ARENAS];
lw_heap_t *_lw_heaps = arenas;

/* ---- bins ----------------------------------------------------------------- */
unsigned _lw_bin_of(size_t s) {
  if (s < 128) return (unsigned)(s >> 4);
  unsigned fl = 63u - (unsigned)__builtin_clzll(s);
  unsigned b = 8 + (fl - 7) * 8 + (unsigned)((s >> (fl - 3)) & 7);
  return b < LW_NBINS ? b : LW_NBINS - 1;
}

static void list_push(lw_chunk_t **heads, uint64_t *map, unsigned b, lw_chunk_t *c) {
  c->prev = NULL;
  c->next = heads[b];
  if (c->next) c->next->prev = c;
  heads[b] = c;
  map[b >> 6] |= (uint64_t)1 << (b & 63);
}

/* Puts a merged-free chunk in its bin (QUICK clear) or a parked chunk on
 * its quick list (QUICK set). */
void _lw_bin_insert(lw_heap_t *h, lw_chunk_t *c) {
  unsigned b = _lw_bin_of(lw_chunk_size(c));
  if (c->hdr & LW_CH_QUICK)
    list_push(h->quick, h->quick_map, b, c);
  else
    list_push(h->bins, h->bin_map, b, c);
}

void _lw_list_unlink(lw_heap_t *h, lw_chunk_t *c) {
  bool quick = c->hdr & LW_CH_QUICK;
  if (c->next) c->next->prev = c->prev;
  if (c->prev) {
    c->prev->next = c->next;
    return;
  }
  unsigned b = _lw_bin_of(lw_chunk_size(c));
  lw_chunk_t **heads = quick ? h->quick : h->bins;
  heads[b] = c->next;
  if (!c->next) (quick ? h->quick_map : h->bin_map)[b >> 6] &= ~((uint64_t)1 << (b & 63));
}

/* First non-empty bin >= b, or LW_NBINS. */
static unsigned map_next(const uint64_t *map, unsigned b) {
  for (unsigned w = b >> 6; w < LW_BINMAP_WORDS; w++) {
    uint64_t m = map[w];
    if (w == b >> 6) m &= ~(uint64_t)0 << (b & 63);
    if (m) return w * 64 + (unsigned)__builtin_ctzll(m);
  }
  return LW_NBINS;
}

static lw_chunk_t *find_fit(lw_heap_t *h, size_t need) {
  unsigned b = _lw_bin_of(need);
  int budget = 8; /* the starting bin may hold smaller chunks: look at a few */
  for (lw_chunk_t *c = h->bins[b]; c && budget--; c = c->next)
    if (lw_chunk_size(c) >= need) return c;
  b = map_next(h->bin_map, b + 1);
  return b < LW_NBINS ? h->bins[b] : NULL;
}

/* ---- spans and segments ----------------------------------------------------- */
void _lw_heap_init(lw_heap_t *h, int can_grow) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->lock, NULL);
  h->can_grow = can_grow;
  h->unmerged_limit = LW_UNMERGED_MIN;
}

/* Lays out [start, start+size) as one merged-free chunk and a sentinel. */
void _lw_heap_add_span(lw_heap_t *h, void *start, size_t size) {
  uintptr_t first = lw_align_up((uintptr_t)start + 8, LW_ALIGN) - 8;
  uintptr_t end = lw_align_down((uintptr_t)start + size, LW_ALIGN) - 8;
  if (end <= first + LW_CHUNK_MIN) return;
  lw_chunk_t *c = (lw_chunk_t *)first, *sentinel = (lw_chunk_t *)end;
  c->hdr = lw_hdr_make(c, end - first, 0);
  lw_chunk_set_footer(c);
  sentinel->hdr = lw_hdr_make(sentinel, 0, LW_CH_INUSE | LW_CH_PREV_FREE);
  _lw_bin_insert(h, c);
  h->free_bytes += end - first;
  h->span_bytes += size;
  if (!h->can_grow) h->region_first = c;
  size_t limit = h->span_bytes / 32;
  h->unmerged_limit = limit > LW_UNMERGED_MIN ? limit : LW_UNMERGED_MIN;
}

lw_chunk_t *_lw_segment_first_chunk(lw_segment_t *seg) {
  return (lw_chunk_t *)(lw_align_up((uintptr_t)seg + sizeof(lw_segment_t) + 8, LW_ALIGN) - 8);
}

static bool heap_grow(lw_heap_t *h) {
  lw_segment_t *seg = h->spare;
  if (seg)
    h->spare = NULL;
  else if (!(seg = _lw_segment_alloc(LW_SEG_MEDIUM)))
    return false;
  seg->heap = h;
  seg->next = h->segments;
  h->segments = seg;
  _lw_heap_add_span(h, (uint8_t *)seg + sizeof(lw_segment_t), LW_SEG_SIZE - sizeof(lw_segment_t));
  return true;
}

/* After a merge: an empty segment leaves the heap (one is kept as a spare,
 * decommitted), and a merged chunk of at least `min` bytes gives its inner
 * pages to the OS (malloc_trim: any chunk). */
void _lw_heap_release_pages(lw_heap_t *h, lw_chunk_t *c, size_t min) {
  size_t sz = lw_chunk_size(c);
  if (!h->can_grow) return; /* an embedded region's memory is the caller's */
  {
    lw_segment_t *seg = (lw_segment_t *)((uintptr_t)c & ~(uintptr_t)LW_SEG_MASK);
    if (c == _lw_segment_first_chunk(seg) && lw_chunk_next(c)->hdr & LW_CH_INUSE &&
        lw_chunk_size(lw_chunk_next(c)) == 0) {
      _lw_list_unlink(h, c);
      h->free_bytes -= sz;
      h->span_bytes -= LW_SEG_SIZE - sizeof(lw_segment_t);
      for (lw_segment_t **pp = &h->segments; *pp; pp = &(*pp)->next)
        if (*pp == seg) {
          *pp = seg->next;
          break;
        }
      if (!h->spare) {
        _lw_os_decommit((uint8_t *)seg + _lw_g.os_page, LW_SEG_SIZE - _lw_g.os_page);
        h->spare = seg;
      } else {
        _lw_segment_free(seg);
      }
      return;
    }
  }
  if (sz < min || (c->hdr & LW_CH_RELEASED)) return;
  uintptr_t lo = lw_align_up((uintptr_t)c + sizeof(lw_chunk_t), _lw_g.os_page);
  uintptr_t hi = lw_align_down((uintptr_t)c + sz - 8, _lw_g.os_page);
  if (hi > lo) {
    _lw_os_decommit((void *)lo, hi - lo);
    c->hdr |= LW_CH_RELEASED;
  }
}

/* ---- allocation -------------------------------------------------------------- */
static inline size_t chunk_need(size_t size) {
  size_t need = lw_align_up(size + LW_CHUNK_OVERHEAD, LW_ALIGN);
  return need < LW_CHUNK_MIN ? LW_CHUNK_MIN : need;
}

/* Marks a chunk taken from a quick list in use. */
static void *use_quick(lw_heap_t *h, lw_chunk_t *c) {
  size_t sz = lw_chunk_size(c);
  _lw_list_unlink(h, c);
  c->hdr = lw_hdr_make(c, sz, LW_CH_INUSE | (c->hdr & LW_CH_PREV_FREE));
  h->unmerged_bytes -= sz;
  h->live_bytes += sz;
  return lw_chunk_payload(c);
}

/* Takes `need` bytes from the front of an unlinked merged-free chunk; the
 * rest, if big enough, goes back to the bins. */
static void *use_free(lw_heap_t *h, lw_chunk_t *c, size_t need) {
  size_t sz = lw_chunk_size(c);
  uint64_t prev = c->hdr & LW_CH_PREV_FREE;
  h->free_bytes -= sz;
  if (sz - need >= LW_CHUNK_MIN) {
    lw_chunk_t *rest = (lw_chunk_t *)((uint8_t *)c + need);
    rest->hdr = lw_hdr_make(rest, sz - need, c->hdr & LW_CH_RELEASED);
    lw_chunk_set_footer(rest);
    _lw_bin_insert(h, rest);
    h->free_bytes += sz - need;
    sz = need;
  } else {
    lw_hdr_flags(lw_chunk_next(c), 0, LW_CH_PREV_FREE);
  }
  c->hdr = lw_hdr_make(c, sz, LW_CH_INUSE | prev);
  h->live_bytes += sz;
  return lw_chunk_payload(c);
}

/* Cuts the front of merged-free chunk c so that its payload is aligned;
 * the front stays free. c has room for need + align + LW_CHUNK_MIN. */
static lw_chunk_t *align_front(lw_heap_t *h, lw_chunk_t *c, size_t align) {
  uintptr_t p = (uintptr_t)lw_chunk_payload(c);
  uintptr_t q = lw_align_up(p, align);
  if (q == p) return c;
  if (q - p < LW_CHUNK_MIN) q += align;
  size_t lead = q - p, sz = lw_chunk_size(c);
  lw_chunk_t *d = (lw_chunk_t *)((uint8_t *)c + lead);
  c->hdr = lw_hdr_make(c, lead, c->hdr & LW_CH_PREV_FREE);
  lw_chunk_set_footer(c);
  _lw_bin_insert(h, c);
  d->hdr = lw_hdr_make(d, sz - lead, LW_CH_PREV_FREE);
  lw_chunk_set_footer(d);
  return d;
}

/* An aligned request looks a little further among the parked chunks: a
 * few of its bin and of the next one, for one whose payload is aligned
 * (blocks freed by aligned requests come back aligned). */
static lw_chunk_t *quick_aligned(lw_heap_t *h, size_t need, size_t align) {
  unsigned b = _lw_bin_of(need);
  for (unsigned k = b; k <= b + 1 && k < LW_NBINS; k++) {
    int budget = 4;
    for (lw_chunk_t *c = h->quick[k]; c && budget--; c = c->next)
      if (lw_chunk_size(c) >= need && ((uintptr_t)lw_chunk_payload(c) & (align - 1)) == 0) return c;
  }
  return NULL;
}

void *_lw_heap_alloc(lw_heap_t *h, size_t size, size_t align) {
  if (lw_unlikely(lw_reentered())) return _lw_signal_alloc(size, align);
  size_t need = chunk_need(size);
  size_t want = align > LW_ALIGN ? need + align + LW_CHUNK_MIN : need;
  bool locked = heap_lock(h);
  lw_chunk_t *q = align > LW_ALIGN ? quick_aligned(h, need, align) : h->quick[_lw_bin_of(need)];
  if (q && lw_chunk_size(q) >= need && ((uintptr_t)lw_chunk_payload(q) & (align - 1)) == 0) {
    void *p = use_quick(h, q);
    heap_unlock(h, locked);
    return p;
  }
  lw_chunk_t *c = find_fit(h, want);
  if (!c && _lw_coalesce_run(h, LW_COALESCE_BUDGET, want)) c = find_fit(h, want);
  if (!c && h->can_grow && heap_grow(h)) c = find_fit(h, want);
  while (!c && (h->quick_map[0] | h->quick_map[1] | h->quick_map[2] | h->quick_map[3])) {
    _lw_coalesce_run(h, LW_COALESCE_BUDGET, want); /* out of memory: merge it all */
    c = find_fit(h, want);
  }
  void *p = NULL;
  if (c) {
    _lw_list_unlink(h, c);
    if (align > LW_ALIGN) c = align_front(h, c, align); /* the front stays counted free */
    p = use_free(h, c, need);
  }
  heap_unlock(h, locked);
  if (!p) errno = ENOMEM;
  return p;
}

/* ---- free ---------------------------------------------------------------------- */
static lw_chunk_t *checked_chunk(const void *p) {
  lw_chunk_t *c = lw_chunk_of(p);
  uint64_t hdr = c->hdr;
  if (lw_unlikely(!(hdr & LW_CH_INUSE))) {
    _lw_report(hdr & LW_CH_QUICK ? "double free of pointer" : "invalid free of pointer", p);
  }
#if LW_CHECKED
  uint64_t sz = hdr & LW_CH_SIZE_MASK;
  if ((hdr >> LW_CH_TAG_SHIFT) != lw_chunk_tag(c, sz) || sz < LW_CHUNK_MIN)
    _lw_report("corrupted chunk header (heap overflow?) at pointer", p);
#endif
  return c;
}

void _lw_heap_free(lw_heap_t *h, void *p) {
  if (lw_unlikely(lw_reentered())) return _lw_signal_defer(&h->deferred, p); /* the next locker frees it */
  bool locked = heap_lock(h);
  free_locked(h, p);
  heap_unlock(h, locked);
}

static void free_locked(lw_heap_t *h, void *p) {
  lw_chunk_t *c = checked_chunk(p);
  size_t sz = lw_chunk_size(c);
  c->hdr = lw_hdr_make(c, sz, LW_CH_QUICK | (c->hdr & LW_CH_PREV_FREE)); /* no footer, next's P unchanged */
  _lw_bin_insert(h, c);
  h->live_bytes -= sz;
  h->unmerged_bytes += sz;
  if (h->unmerged_bytes > h->unmerged_limit) _lw_coalesce_run(h, LW_COALESCE_BUDGET, 0);
}

/* Parks the tail of in-use chunk c beyond `keep` bytes as a quick chunk. */
static void split_tail(lw_heap_t *h, lw_chunk_t *c, size_t keep) {
  size_t sz = lw_chunk_size(c);
  if (sz - keep < 64) return;
  lw_chunk_t *t = (lw_chunk_t *)((uint8_t *)c + keep);
  t->hdr = lw_hdr_make(t, sz - keep, LW_CH_QUICK);
  _lw_bin_insert(h, t);
  c->hdr = lw_hdr_make(c, keep, LW_CH_INUSE | (c->hdr & LW_CH_PREV_FREE));
  h->live_bytes -= sz - keep;
  h->unmerged_bytes += sz - keep;
}

/* realloc without moving: shrink, or grow into a free next chunk. A block
 * grown in place keeps 1/8 of slack, and a shrink that leaves no more than
 * that keeps it: a string appended to a few bytes at a time then merges and
 * splits its neighbour once per 1/8 of growth instead of on every call
 * (realloc workload: 285.5M -> 218.5M instructions, peak RSS 16.7 -> 16.5
 * MB; python3 +0.2 MB). */
bool _lw_heap_resize_in_place(lw_heap_t *h, void *p, size_t size) {
  if (lw_unlikely(lw_reentered())) return false; /* a signal handler's realloc moves */
  size_t need = chunk_need(size), roomy = lw_align_up(need + need / 8, LW_ALIGN);
  bool locked = heap_lock(h);
  lw_chunk_t *c = checked_chunk(p);
  size_t sz = lw_chunk_size(c);
  bool ok = true;
  if (need <= sz) {
    if (sz > roomy) split_tail(h, c, need);
  } else {
    lw_chunk_t *n = lw_chunk_next(c);
    size_t nsz = lw_chunk_size(n);
    if (!(n->hdr & LW_CH_INUSE) && sz + nsz >= need) {
      _lw_list_unlink(h, n);
      if (n->hdr & LW_CH_QUICK)
        h->unmerged_bytes -= nsz;
      else
        h->free_bytes -= nsz;
      c->hdr = lw_hdr_make(c, sz + nsz, LW_CH_INUSE | (c->hdr & LW_CH_PREV_FREE));
      if (!(n->hdr & LW_CH_QUICK)) lw_hdr_flags(lw_chunk_next(c), 0, LW_CH_PREV_FREE);
      h->live_bytes += nsz;
      split_tail(h, c, sz + nsz < roomy ? sz + nsz : roomy);
    } else {
      ok = false;
    }
  }
  heap_unlock(h, locked);
  return ok;
}

/* May run without the heap lock (malloc_usable_size, realloc) while a
 * neighbour's free flips this header's P bit: an atomic read. */
size_t _lw_heap_usable(const void *p) {
  return (__atomic_load_n(&lw_chunk_of(p)->hdr, __ATOMIC_RELAXED) & LW_CH_SIZE_MASK) - LW_CHUNK_OVERHEAD;
}

/* malloc_trim: merge everything parked, release every big free chunk. */
size_t _lw_heap_trim(lw_heap_t *h) {
  if (lw_reentered()) return 0;
  bool locked = heap_lock(h);
  while (h->quick_map[0] | h->quick_map[1] | h->quick_map[2] | h->quick_map[3])
    _lw_coalesce_run(h, LW_COALESCE_BUDGET, 0);
  size_t before = h->span_bytes;
  for (unsigned b = map_next(h->bin_map, 0); b < LW_NBINS; b = map_next(h->bin_map, b + 1)) {
    lw_chunk_t *c = h->bins[b];
    while (c) {
      lw_chunk_t *nx = c->next;
      _lw_heap_release_pages(h, c, 0);
      c = nx;
    }
  }
  if (h->spare) {
    _lw_segment_free(h->spare);
    h->spare = NULL;
  }
  size_t released = before - h->span_bytes;
  heap_unlock(h, locked);
  return released;
}

lw_heap_t *_lw_heap_for(lw_tld_t *tld) {
  lw_heap_t *h = &arenas[tld->id % _lw_g.narenas];
  if (!__atomic_load_n(&h->can_grow, __ATOMIC_ACQUIRE)) { /* first use: set up under a lock */
    static pthread_mutex_t setup = PTHREAD_MUTEX_INITIALIZER;
    lw_lock(&setup);
    if (!h->can_grow) {
      _lw_heap_init(h, 0);
      __atomic_store_n(&h->can_grow, 1, __ATOMIC_RELEASE);
    }
    lw_unlock(&setup);
  }
  return h;
}

void _lw_heap_atfork(int phase) {
  for (unsigned i = 0; i < LW_MAX_ARENAS; i++) {
    lw_heap_t *h = &arenas[i];
    if (h->can_grow) lw_mutex_atfork(&h->lock, phase); /* real locks: fork may come from any thread */
  }
}
