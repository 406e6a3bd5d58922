/* lwmalloc internals: cross-file prototypes grouped by the file that
 * defines them, assertion levels, and small inline helpers. Every `_lw_`
 * name has hidden visibility (the library is built -fvisibility=hidden). */
#ifndef LW_INTERNAL_H
#define LW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "lwmalloc.h"
#include "types.h"

#ifndef LW_DEBUG
#define LW_DEBUG 0
#endif
#ifndef LW_CHECKED
#define LW_CHECKED 0
#endif

#define lw_likely(x) __builtin_expect(!!(x), 1)
#define lw_unlikely(x) __builtin_expect(!!(x), 0)
#define lw_noinline __attribute__((noinline))
#define lw_cold __attribute__((cold, noinline))

/* LW_INSIST(cond && "invariant"): reports the broken invariant and aborts. */
#define LW_INSIST(c) ((c) ? (void)0 : _lw_fail(__FILE__, __LINE__, #c))
/* Assertion levels: 1 cheap, 2 internal, 3 expensive (invariant walks). */
#define lw_assert(c) ((LW_DEBUG >= 1) ? LW_INSIST(c) : (void)0)
#define lw_assert_internal(c) ((LW_DEBUG >= 2) ? LW_INSIST(c) : (void)0)
#define lw_assert_expensive(c) ((LW_DEBUG >= 3) ? LW_INSIST(c) : (void)0)

/* fork handling of one lock: phase 0 prepare (lock), 1 parent (unlock),
 * 2 child (reinitialise). */
static inline void lw_mutex_atfork(pthread_mutex_t *m, int phase) {
  if (phase == 0)
    pthread_mutex_lock(m);
  else if (phase == 1)
    pthread_mutex_unlock(m);
  else
    pthread_mutex_init(m, NULL);
}

static inline size_t lw_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline uintptr_t lw_align_down(uintptr_t n, size_t a) { return n & ~(uintptr_t)(a - 1); }
static inline bool lw_is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* ---- global state (init.c) ---------------------------------------------- */
typedef struct lw_globals_s {
  _Atomic int init_state;        /* 0 none, 1 running, 2 done */
  size_t os_page;                /* OS page size, read at run time */
  size_t large_threshold;        /* requests >= this get their own mapping */
  uint64_t secret;               /* from AT_RANDOM: tags and encodings */
  size_t page_cache;             /* empty pool pages kept committed (LW_PAGE_CACHE) */
  size_t release_min;            /* merged free chunks this big give pages back (LW_RELEASE) */
  int print_stats;               /* LW_STATS=1 */
  unsigned narenas;              /* medium heaps */
} lw_globals_t;
extern lw_globals_t _lw_g;
void _lw_init_slow(void);
static inline void lw_ensure_init(void) {
  if (lw_unlikely(atomic_load_explicit(&_lw_g.init_state, memory_order_acquire) != 2))
    _lw_init_slow();
}

lw_cold void _lw_report(const char *what, const void *p); /* prints, aborts */

/* ---- the recent peak of a footprint (pool pages, large bytes) -----------
 * The highest value seen this second or the one before (whole seconds of
 * CLOCK_MONOTONIC_COARSE): memory kept for reuse is bounded by it, so a
 * program that frees and refills in waves keeps its pages, and one whose
 * use fell gives them back within two seconds of its next call. */
typedef struct lw_peak_s {
  size_t peak, prev_peak;
  uint64_t second;
} lw_peak_t;
size_t _lw_peak_update(lw_peak_t *p, size_t value); /* counts value, returns the recent peak */

/* ---- signal.c: calls re-entering from a signal handler ------------------
 * _lw_lock_depth counts the allocator's locked sections this thread is in;
 * the allocator never calls itself from one, so a malloc or free that finds
 * it non-zero was called by a signal handler, and must take no lock. */
extern __thread unsigned _lw_lock_depth;
static inline bool lw_reentered(void) { return _lw_lock_depth != 0; }
static inline void lw_depth_enter(void) {
  _lw_lock_depth++;
  atomic_signal_fence(memory_order_seq_cst); /* counted before the lock is taken */
}
static inline void lw_depth_leave(void) {
  atomic_signal_fence(memory_order_seq_cst); /* and until it is released */
  _lw_lock_depth--;
}
static inline void lw_lock(pthread_mutex_t *m) {
  lw_depth_enter();
  pthread_mutex_lock(m);
}
static inline void lw_unlock(pthread_mutex_t *m) {
  pthread_mutex_unlock(m);
  lw_depth_leave();
}
void *_lw_signal_alloc(size_t size, size_t align); /* a mapping of its own; NULL + ENOMEM */

/* Bytes of mapping a large block of `size` bytes aligned to `align`
 * (>= LW_ALIGN) takes, its header included; 0 when that overflows. */
static inline size_t lw_large_map_size(size_t size, size_t align) {
  size_t extra = sizeof(lw_large_t) + (align > LW_ALIGN ? align : 0);
  if (size > SIZE_MAX / 2 - extra - _lw_g.os_page) return 0;
  return lw_align_up(size + extra, _lw_g.os_page);
}
bool _lw_signal_owns(const void *p);
bool _lw_signal_free(void *p); /* false: not a signal block */
void _lw_signal_defer(_Atomic(uintptr_t) *stack, void *p); /* a free for the next locker, linked through p */
extern __thread lw_tld_t *_lw_tld;
extern lw_tld_t _lw_tld_empty;

/* ---- os.c: the only file that calls mmap/munmap/madvise/mremap ----------
 * Sizes and addresses are multiples of the OS page size. Each returns NULL
 * (or -1) on failure with errno set, and emits the OS_* event. */
void *_lw_os_map(size_t size);
void *_lw_os_reserve(size_t size);
void *_lw_os_map_aligned(size_t size, size_t align);
int _lw_os_unmap(void *addr, size_t size);
void _lw_os_decommit(void *addr, size_t size);
void *_lw_os_remap(void *addr, size_t old_size, size_t new_size);
bool _lw_os_move(void *to, void *from, size_t size);
void _lw_os_decommit_fresh(void *addr, size_t size);
void *_lw_os_reserve_aligned(size_t size, size_t align);
bool _lw_os_open(void *addr, size_t size);
void _lw_os_release(void *addr, size_t size, size_t opened);
void _lw_os_name(void *addr, size_t size, const char *name);
extern _Atomic uint64_t _lw_os_mapped, _lw_os_maps, _lw_os_unmaps, _lw_os_decommits,
    _lw_os_decommitted, _lw_os_moves;

/* ---- segment.c: segments and the map of which addresses are ours -------- */
int _lw_segmap_init(void);
lw_segment_t *_lw_segment_alloc(uint32_t kind);
void _lw_segment_free(lw_segment_t *seg);
extern uint64_t *_lw_segmap;
static inline lw_segment_t *lw_segment_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uintptr_t idx = a >> LW_SEG_SHIFT;
  if (lw_unlikely(a >> LW_VA_BITS)) return NULL;
  if (!(__atomic_load_n(&_lw_segmap[idx >> 6], __ATOMIC_RELAXED) & ((uint64_t)1 << (idx & 63))))
    return NULL;
  return (lw_segment_t *)(a & ~(uintptr_t)LW_SEG_MASK);
}

/* ---- pool.c: small fixed-size pools ------------------------------------- */
extern const uint32_t _lw_class_size[LW_NCLASSES];
extern const uint8_t _lw_class_of8[LW_SMALL_MAX / 8 + 1];
extern lw_page_t _lw_page_empty;
static inline unsigned lw_size_class(size_t size) {
#if LW_CHECKED
  if (size < 16) size = 16; /* room for the double-free canary */
#endif
  return _lw_class_of8[(size + 7) >> 3];
}
void *_lw_pool_alloc_slow(lw_tld_t *tld, unsigned cls);
void _lw_pool_free_slow(lw_tld_t *tld, lw_page_t *pg);
void _lw_pool_free_remote(lw_page_t *pg, void *p);
void _lw_pool_abandon(lw_tld_t *tld);
void _lw_pool_collect(lw_tld_t *tld);
size_t _lw_pool_trim(void);
void _lw_pool_visit(void (*fn)(lw_page_t *pg, void *arg), void *arg);
void _lw_pool_atfork(int phase);
/* Free-list links. The checked build stores them encoded with the secret
 * and the slot's own address, and checks that a decoded link stays in the
 * same page: a write after free then stops at the next pop, by name. */
static inline lw_block_t *lw_block_next(const lw_block_t *b) {
#if LW_CHECKED
  uintptr_t n = (uintptr_t)b->next ^ _lw_g.secret ^ (uintptr_t)b;
  if (n && ((n ^ (uintptr_t)b) >> LW_PAGE_SHIFT)) _lw_report("free list corrupted (write after free?) at", b);
  return (lw_block_t *)n;
#else
  return b->next;
#endif
}
static inline void lw_block_set_next(lw_block_t *b, lw_block_t *n) {
#if LW_CHECKED
  b->next = (lw_block_t *)((uintptr_t)n ^ _lw_g.secret ^ (uintptr_t)b);
#else
  b->next = n;
#endif
}
/* The checked build marks freed slots (second word) to catch double frees. */
static inline uint64_t lw_free_canary(const void *p) { return _lw_g.secret ^ (uintptr_t)p ^ 0x5a5a5a5a5a5a5a5aull; }
/* The owner's free: push on the page's list; the slow path when the page
 * became empty or was not ACTIVE (FULL: it goes back to the avail list). */
static inline void lw_pool_push_owned(lw_tld_t *tld, lw_page_t *pg, void *p) {
  lw_block_set_next(p, pg->free);
  pg->free = p;
  if (lw_unlikely(--pg->used == 0 || atomic_load_explicit(&pg->state, memory_order_relaxed) != LW_PAGE_ACTIVE))
    _lw_pool_free_slow(tld, pg);
}
/* The slots of the last carve are handed out in address order without
 * being written (no free-list links): a new page's first touch, a page
 * fault, happens in the program that uses the slot instead of inside
 * malloc (sqlite3 trace replayed: malloc p99 1.2 us -> 0.1 us). */
static inline bool lw_pool_has_unused(const lw_page_t *pg) { return pg->unused < pg->unused_end; }
static inline void *lw_pool_take_unused(lw_page_t *pg) {
  uint8_t *p = pg->unused;
  pg->unused = p + pg->slot_size;
  pg->used++;
#if LW_CHECKED
  ((uint64_t *)p)[1] = 0; /* a canary left by the page's earlier life is no double free */
#endif
  return p;
}
static inline void *lw_pool_pop(lw_page_t *pg) {
  lw_block_t *b = pg->free;
  pg->free = lw_block_next(b);
  pg->used++;
#if LW_CHECKED
  ((uint64_t *)b)[1] = 0;
#endif
  return b;
}
/* The hot lists: slots of other threads' pages that this thread freed,
 * at most _lw_hot_max[cls] per class (about 4 KiB), reused first by its
 * next mallocs while they are still in its cache, instead of one CAS each
 * back to their owners' pages (a server whose requests move between
 * threads frees mostly such slots). Their pages count them as in use; a
 * full list sends frees the remote way, a thread's exit and lw_trim give
 * them back (_lw_pool_flush_hot). Plain links: they cross pages. Off in
 * the checked build, where every free is checked against its page. */
extern const uint8_t _lw_hot_max[LW_NCLASSES];
static inline void *lw_hot_pop(lw_tld_t *tld, unsigned cls) {
  lw_block_t *b = tld->hot[cls];
  if (b) {
    tld->hot[cls] = b->next;
    tld->nhot[cls]--;
  }
  return b;
}
void _lw_pool_flush_hot(lw_tld_t *tld);

/* The small-object fast path: a hot slot, else pop the current page's
 * free list. */
static inline void *lw_pool_alloc(lw_tld_t *tld, unsigned cls) {
  void *hot = lw_hot_pop(tld, cls);
  if (hot) return hot;
  lw_page_t *pg = tld->cur[cls];
  if (lw_likely(pg->free != NULL)) return lw_pool_pop(pg);
  if (lw_pool_has_unused(pg)) return lw_pool_take_unused(pg);
  return _lw_pool_alloc_slow(tld, cls);
}
static inline lw_page_t *lw_page_of(lw_segment_t *seg, const void *p) {
  return &seg->pages[((uintptr_t)p & LW_SEG_MASK) >> LW_PAGE_SHIFT];
}

/* ---- thread.c: per-thread data ------------------------------------------ */
extern __thread lw_tld_t *_lw_tld;
extern lw_tld_t _lw_tld_empty;
lw_tld_t *_lw_tld_init(void);
void _lw_thread_atfork(int phase);
lw_tld_t *_lw_tld_list(void);
void _lw_thread_sweep_abandoned(void);
int _lw_thread_init(void);

/* ---- heap.c: medium chunks --------------------------------------------- */
void _lw_heap_init(lw_heap_t *h, int can_grow);
void _lw_heap_add_span(lw_heap_t *h, void *start, size_t size);
void *_lw_heap_alloc(lw_heap_t *h, size_t size, size_t align);
void _lw_heap_free(lw_heap_t *h, void *p);
bool _lw_heap_resize_in_place(lw_heap_t *h, void *p, size_t size);
size_t _lw_heap_usable(const void *p);
size_t _lw_heap_trim(lw_heap_t *h);
lw_chunk_t *_lw_segment_first_chunk(lw_segment_t *seg);
lw_heap_t *_lw_heap_for(lw_tld_t *tld);
void _lw_heap_atfork(int phase);
extern lw_heap_t *_lw_heaps;
/* chunk helpers shared with coalesce.c and check.c */
static inline lw_chunk_t *lw_chunk_of(const void *p) { return (lw_chunk_t *)((uint8_t *)p - 8); }
static inline void *lw_chunk_payload(lw_chunk_t *c) { return (uint8_t *)c + 8; }
static inline size_t lw_chunk_size(const lw_chunk_t *c) { return c->hdr & LW_CH_SIZE_MASK; }
static inline lw_chunk_t *lw_chunk_next(lw_chunk_t *c) {
  return (lw_chunk_t *)((uint8_t *)c + lw_chunk_size(c));
}
static inline void lw_chunk_set_footer(lw_chunk_t *c) {
  *(uint64_t *)((uint8_t *)c + lw_chunk_size(c) - 8) = lw_chunk_size(c);
}
/* Sets/clears flags of a chunk that may be in use by another thread (the
 * P bit of the next chunk): heap lock held, but its owner may read the
 * header without it (_lw_heap_usable), so the store is atomic. */
static inline void lw_hdr_flags(lw_chunk_t *c, uint64_t set, uint64_t clear) {
  __atomic_store_n(&c->hdr, (c->hdr | set) & ~clear, __ATOMIC_RELAXED);
}
static inline lw_chunk_t *lw_chunk_prev(lw_chunk_t *c) { /* only when P is set */
  return (lw_chunk_t *)((uint8_t *)c - *(uint64_t *)((uint8_t *)c - 8));
}
unsigned _lw_bin_of(size_t size);
void _lw_bin_insert(lw_heap_t *h, lw_chunk_t *c);
void _lw_list_unlink(lw_heap_t *h, lw_chunk_t *c);
void _lw_heap_release_pages(lw_heap_t *h, lw_chunk_t *c, size_t min);

/* ---- coalesce.c: deferred coalescing ------------------------------------ */
size_t _lw_coalesce_run(lw_heap_t *h, unsigned budget, size_t want);
lw_chunk_t *_lw_coalesce_chunk(lw_heap_t *h, lw_chunk_t *c, unsigned *budget);

/* ---- big.c: large blocks as direct mappings ----------------------------- */
void *_lw_big_alloc(size_t size, size_t align, bool zero);
void _lw_big_free(void *p);
void *_lw_big_realloc(void *p, size_t size);
size_t _lw_big_usable(const void *p);
void _lw_big_atfork(int phase);
size_t _lw_big_trim(void);
void _lw_big_make_room(size_t bytes);
void _lw_big_check(void);
extern _Atomic uint64_t _lw_big_live;

/* ---- check.c: invariant checks and error reports ------------------------ */
int _lw_heap_check(lw_heap_t *h);
int _lw_pool_check(void);
lw_cold void _lw_fail(const char *file, int line, const char *what); /* _lw_report: above */
void _lw_write(const char *s);
char *_lw_fmt_u64(char *out, uint64_t v, int base);
static inline uint64_t lw_chunk_tag(const lw_chunk_t *c, uint64_t size) {
  uint64_t x = ((uintptr_t)c ^ _lw_g.secret) + size * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  return (x >> 40) | 1; /* never 0, so a zeroed header fails */
}
static inline lw_chunk_hdr_t lw_hdr_make(const lw_chunk_t *c, uint64_t size, uint64_t flags) {
#if LW_CHECKED
  return size | flags | (lw_chunk_tag(c, size) << LW_CH_TAG_SHIFT);
#else
  (void)c;
  return size | flags;
#endif
}

/* ---- live.c: shared-memory statistics page (LW_LIVE=1) ------------------ */
void _lw_live_start(void);

/* ---- api.c: internal entry points (no trace hooks) ---------------------- */
void *_lw_malloc(size_t size);
void _lw_free(void *p);
void *_lw_memalign(size_t align, size_t size);
size_t _lw_usable_size(const void *p);

#endif /* LW_INTERNAL_H */
