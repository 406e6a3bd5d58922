/* The lw_* entry points: argument checks, errno, routing by size
 *   small  (<= LW_SMALL_MAX)          pool.c, per-thread, lock-free
 *   medium (< large_threshold)        heap.c, deferred coalescing
 *   large  (>= large_threshold)       big.c, one mapping each
 * and the realloc policy. The standard names (override.c) are aliases of
 * these functions, included at the end when LW_OVERRIDE is set. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

#ifdef LW_TRACE
#define TRACE_ENTER() _lw_trace_enter()
#define TRACE_CALL(op, size, align, in, out, tok) \
  _lw_trace_call(LW_OP_##op, (uint64_t)(size), (uint64_t)(align), (in), (out), (tok))
#else
#define TRACE_ENTER() ((uint64_t)0)
#define TRACE_CALL(op, size, align, in, out, tok) ((void)(size), (void)(align), (void)(tok))
#endif

/* ---- internal entry points ------------------------------------------------ */
static lw_noinline void *malloc_medium_large(size_t size, size_t align) {
  lw_tld_t *tld = _lw_tld;
  if (lw_unlikely(tld == &_lw_tld_empty) && !(tld = _lw_tld_init())) {
    errno = ENOMEM;
    return NULL;
  }
  if (size >= _lw_g.large_threshold || size > SIZE_MAX / 2) return _lw_big_alloc(size, align, false);
  return _lw_heap_alloc(tld->heap, size, align);
}

/* A small request whose class has no free slot at hand. Until a thread
 * has asked for LW_WARMUP blocks of a class, they come from the medium
 * heap, packed with others, rather than from a pool page of their own: a
 * program that uses a class a few times (most classes, at start-up) then
 * costs no 4 KiB page per class. */
static lw_noinline void *malloc_small_slow(lw_tld_t *tld, unsigned cls, size_t size) {
  if (lw_unlikely(lw_reentered())) return _lw_signal_alloc(size, LW_ALIGN); /* signal.c */
  if (tld->cur[cls] == &_lw_page_empty) {
    if (lw_unlikely(tld == &_lw_tld_empty) && !(tld = _lw_tld_init())) {
      errno = ENOMEM;
      return NULL;
    }
    if (tld->cur[cls] == &_lw_page_empty && tld->warm[cls] < LW_WARMUP) {
      tld->warm[cls]++;
      return _lw_heap_alloc(tld->heap, size, LW_ALIGN);
    }
  }
  return _lw_pool_alloc_slow(tld, cls);
}

static inline __attribute__((always_inline)) void *malloc_fast(size_t size) {
  if (lw_likely(size <= LW_SMALL_MAX)) {
    lw_tld_t *tld = _lw_tld;
    unsigned cls = lw_size_class(size);
    void *hot = lw_hot_pop(tld, cls);
    if (hot) return hot;
    lw_page_t *pg = tld->cur[cls];
    if (lw_likely(pg->free != NULL)) return lw_pool_pop(pg);
    if (lw_pool_has_unused(pg)) return lw_pool_take_unused(pg);
    return malloc_small_slow(tld, cls, size);
  }
  return malloc_medium_large(size, LW_ALIGN);
}

void *_lw_malloc(size_t size) { return malloc_fast(size); }

#if LW_CHECKED
/* Checked build: p must be a carved slot boundary of an owned page, and
 * not already free (the canary in its second word). */
static void pool_check_free(lw_page_t *pg, void *p) {
  size_t off = (size_t)((uint8_t *)p - pg->start);
  if (atomic_load_explicit(&pg->state, memory_order_relaxed) == LW_PAGE_FREE || !pg->start ||
      off % pg->slot_size || off >= (size_t)pg->bumped * pg->slot_size ||
      ((uint8_t *)p >= pg->unused && (uint8_t *)p < pg->unused_end))
    _lw_report("invalid free of pointer", p);
  if (((uint64_t *)p)[1] == lw_free_canary(p)) _lw_report("double free of pointer", p);
  ((uint64_t *)p)[1] = lw_free_canary(p);
}
#endif

/* Everything but an owner's free of a pool slot. */
static lw_noinline void free_other(void *p) {
  if (!p) return;
  if (lw_unlikely(!_lw_segmap)) _lw_report("invalid free (nothing allocated yet) of pointer", p);
  lw_segment_t *seg = lw_segment_of(p);
  if (!seg) return _lw_big_free(p);
  if (seg->kind != LW_SEG_POOL) return _lw_heap_free(seg->heap, p);
  lw_page_t *pg = lw_page_of(seg, p);
#if LW_CHECKED
  pool_check_free(pg, p);
#else
  lw_tld_t *tld = _lw_tld;
  unsigned cls = pg->cls, n = tld->nhot[cls];
  if (n < _lw_hot_max[cls]) { /* kept for this thread's next malloc */
    ((lw_block_t *)p)->next = tld->hot[cls];
    tld->hot[cls] = p;
    tld->nhot[cls] = (uint8_t)(n + 1);
    return;
  }
#endif
  _lw_pool_free_remote(pg, p);
}

/* The fast path is a leaf: the owner pushes the slot on its page. NULL
 * takes the other path too (no segment lives at address 0). */
static inline __attribute__((always_inline)) void free_fast(void *p) {
  uintptr_t a = (uintptr_t)p;
  const uint64_t *map = _lw_segmap;
  if (lw_likely(map && !(a >> LW_VA_BITS) &&
                (__atomic_load_n(&map[a >> (LW_SEG_SHIFT + 6)], __ATOMIC_RELAXED) >> ((a >> LW_SEG_SHIFT) & 63) & 1))) {
    lw_segment_t *seg = (lw_segment_t *)(a & ~(uintptr_t)LW_SEG_MASK);
    if (lw_likely(seg->kind == LW_SEG_POOL)) {
      lw_page_t *pg = lw_page_of(seg, p);
      lw_tld_t *tld = _lw_tld;
      if (lw_likely(pg->owner == tld)) {
#if LW_CHECKED
        pool_check_free(pg, p);
#endif
        return lw_pool_push_owned(tld, pg, p);
      }
    }
  }
  free_other(p);
}

void _lw_free(void *p) { free_fast(p); }

size_t _lw_usable_size(const void *p) {
  if (!p || !_lw_segmap) return 0;
  lw_segment_t *seg = lw_segment_of(p);
  if (seg) return seg->kind == LW_SEG_POOL ? lw_page_of(seg, p)->slot_size : _lw_heap_usable(p);
  return _lw_big_usable(p);
}

/* A small class whose slots are all aligned to `align` (slot offsets in a
 * 64 KiB-aligned page are multiples of the slot size), or -1 when the
 * smallest such class would more than double the request: a medium chunk
 * cut at an aligned address wastes less. */
static int pool_class_aligned(size_t size, size_t align) {
  for (unsigned c = size <= LW_SMALL_MAX ? lw_size_class(size) : LW_NSMALL; c < LW_NCLASSES; c++)
    if (_lw_class_size[c] % align == 0 && _lw_class_size[c] >= size)
      return _lw_class_size[c] <= 2 * size || _lw_class_size[c] <= 64 ? (int)c : -1;
  return -1;
}

/* align: a power of two. */
void *_lw_memalign(size_t align, size_t size) {
  if (align <= 8) return _lw_malloc(size);
  if (align <= LW_ALIGN) return _lw_malloc(size < LW_ALIGN ? LW_ALIGN : size);
  if (align > ((size_t)1 << 40) || size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  if (size <= LW_CLASS_MAX) {
    int c = pool_class_aligned(size, align);
    if (c >= 0) return lw_pool_alloc(_lw_tld, (unsigned)c);
  }
  lw_ensure_init();
  if (size + align >= _lw_g.large_threshold) return _lw_big_alloc(size, align, false);
  return malloc_medium_large(size, align);
}

/* A block that realloc must move to grow gets at least half more room
 * than it had, so that a buffer growing in small steps moves O(log n)
 * times (realloc workload: 306M -> 283M instructions, 1/4 gave 296M;
 * peak RSS +1 %); large blocks grow where they lie or by mremap instead. */
static void *realloc_move(void *p, size_t old_usable, size_t size) {
  size_t ask = size, grown = old_usable + old_usable / 2;
  if (size > old_usable && size < grown && grown < _lw_g.large_threshold) ask = grown;
  void *q = _lw_malloc(ask);
  if (!q) return NULL; /* p stays intact */
  memcpy(q, p, old_usable < size ? old_usable : size);
  _lw_free(p);
  return q;
}

static void *lw_realloc_impl(void *p, size_t size) {
  if (!p) return _lw_malloc(size);
  if (size == 0) { /* glibc semantics: free and return NULL */
    _lw_free(p);
    return NULL;
  }
  lw_segment_t *seg = _lw_segmap ? lw_segment_of(p) : NULL; /* else: the registry reports p */
  if (seg && seg->kind == LW_SEG_POOL) {
    size_t slot = lw_page_of(seg, p)->slot_size;
    if (size <= slot && size >= slot / 2) return p;
    return realloc_move(p, slot, size);
  }
  if (seg) { /* medium */
    if (size > LW_SMALL_MAX && size < _lw_g.large_threshold && _lw_heap_resize_in_place(seg->heap, p, size))
      return p;
    return realloc_move(p, _lw_heap_usable(p), size);
  }
  if (size >= _lw_g.large_threshold) return _lw_big_realloc(p, size);
  return realloc_move(p, _lw_big_usable(p), size);
}

/* ---- the public API ----------------------------------------------------------- */
/* LW_DEBUG >= 3: every invariant is re-checked after every call. */
#if LW_DEBUG >= 3
#define DEBUG_CHECK() lw_check()
#else
#define DEBUG_CHECK() ((void)0)
#endif

LW_API void *lw_malloc(size_t size) {
  void *p = malloc_fast(size);
  TRACE_CALL(MALLOC, size, 0, NULL, p, 0);
  DEBUG_CHECK();
  return p;
}

LW_API void lw_free(void *p) {
  uint64_t tok = TRACE_ENTER();
  free_fast(p);
  TRACE_CALL(FREE, 0, 0, p, NULL, tok);
  DEBUG_CHECK();
}

LW_API void lw_free_sized(void *p, size_t size) {
  uint64_t tok = TRACE_ENTER();
  _lw_free(p);
  TRACE_CALL(FREE_SIZED, size, 0, p, NULL, tok);
}

LW_API void lw_free_aligned_sized(void *p, size_t alignment, size_t size) {
  uint64_t tok = TRACE_ENTER();
  _lw_free(p);
  TRACE_CALL(FREE_ALIGNED_SIZED, size, alignment, p, NULL, tok);
}

static void *calloc_impl(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total > LW_SMALL_MAX) {
    lw_ensure_init(); /* the threshold may come from the environment */
    if (total >= _lw_g.large_threshold) return _lw_big_alloc(total, LW_ALIGN, true); /* zeroes only reused pages */
  }
  void *p = _lw_malloc(total);
  if (p) memset(p, 0, total);
  return p;
}

LW_API void *lw_calloc(size_t count, size_t size) {
  void *p = calloc_impl(count, size);
  TRACE_CALL(CALLOC, (uint64_t)count * size, 0, NULL, p, 0);
  return p;
}

LW_API void *lw_realloc(void *p, size_t size) {
  uint64_t tok = p ? TRACE_ENTER() : 0;
  void *q = lw_realloc_impl(p, size);
  TRACE_CALL(REALLOC, size, 0, p, q, tok);
  DEBUG_CHECK();
  return q;
}

LW_API void *lw_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  uint64_t tok = p ? TRACE_ENTER() : 0;
  void *q = lw_realloc_impl(p, total);
  TRACE_CALL(REALLOCARRAY, total, 0, p, q, tok);
  return q;
}

static size_t pow2_at_least(size_t a) {
  size_t r = 1;
  while (r < a && r) r <<= 1;
  return r ? r : ((size_t)1 << 63);
}

LW_API void *lw_memalign(size_t alignment, size_t size) {
  void *p = _lw_memalign(pow2_at_least(alignment), size); /* glibc rounds up */
  TRACE_CALL(MEMALIGN, size, alignment, NULL, p, 0);
  return p;
}

LW_API int lw_posix_memalign(void **out, size_t alignment, size_t size) {
  int rc = 0;
  void *p = NULL;
  if (!lw_is_pow2(alignment) || alignment % sizeof(void *)) {
    rc = EINVAL;
  } else {
    int saved = errno;
    p = _lw_memalign(alignment, size);
    if (p)
      *out = p;
    else
      rc = ENOMEM;
    errno = saved;
  }
  TRACE_CALL(POSIX_MEMALIGN, size, alignment, NULL, p, 0);
  return rc;
}

LW_API void *lw_aligned_alloc(size_t alignment, size_t size) {
  void *p = NULL;
  if (!lw_is_pow2(alignment))
    errno = EINVAL;
  else
    p = _lw_memalign(alignment, size);
  TRACE_CALL(ALIGNED_ALLOC, size, alignment, NULL, p, 0);
  return p;
}

LW_API void *lw_valloc(size_t size) {
  lw_ensure_init();
  void *p = _lw_memalign(_lw_g.os_page, size);
  TRACE_CALL(VALLOC, size, _lw_g.os_page, NULL, p, 0);
  return p;
}

LW_API void *lw_pvalloc(size_t size) {
  lw_ensure_init();
  void *p = NULL;
  size_t page = _lw_g.os_page;
  if (size > SIZE_MAX - page)
    errno = ENOMEM;
  else
    p = _lw_memalign(page, size ? lw_align_up(size, page) : page);
  TRACE_CALL(PVALLOC, size, page, NULL, p, 0);
  return p;
}

LW_API size_t lw_usable_size(const void *p) { return _lw_usable_size(p); }

LW_API int lw_trim(size_t pad) {
  (void)pad;
  lw_ensure_init();
  _lw_thread_sweep_abandoned();
  size_t released = _lw_pool_trim() + _lw_big_trim();
  for (unsigned i = 0; i < _lw_g.narenas; i++)
    if (_lw_heaps[i].can_grow) released += _lw_heap_trim(&_lw_heaps[i]);
  return released > 0;
}

#ifdef LW_OVERRIDE
#include "override.c"
#endif
