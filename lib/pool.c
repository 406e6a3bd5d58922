/* Small fixed-size pools.
 *
 * Each thread owns, per size class, a list of ACTIVE pool pages (head =
 * tld->cur[cls]). Allocation pops the head page's local free list; free by
 * the owner pushes onto it; both O(1) and lock-free. A free from another
 * thread pushes onto the page's atomic `remote` stack; the owner takes the
 * whole stack at once when its local list runs dry. A page with no free
 * slot left is marked FULL and leaves the list; the first remote free into
 * a FULL page moves it to NOTIFIED and pushes it on the owner's `notify`
 * stack, from where the owner puts it back in its list. Slots are carved
 * lazily, a few KiB at a time, so untouched slots cost no RSS. Empty pages
 * go back to the global free-page stack; past LW_PAGE_CACHE of them (or
 * as many as fit between the pages in use and their peak of the last one
 * or two seconds, if more), they are also given back to the OS (madvise),
 * so a program that frees and refills pages in waves does not pay a system
 * call and page faults for each page. Invariants: see _lw_pool_check() in
 * check.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

const uint32_t _lw_class_size[LW_NCLASSES] = {
    8, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176,
    192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480,
    512, 576, 640, 704, 768, 832, 896, 960, 1024, 1040, 1088, 1152,
    1216, 1280, 1344, 1408, 1472, 1536, 1600, 1664, 1728, 1792, 1856, 1920,
    1984, 2048,
    2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, /* aligned requests only */
};
/* class of a request: _lw_class_of8[(size + 7) / 8], size <= LW_SMALL_MAX */
const uint8_t _lw_class_of8[LW_SMALL_MAX / 8 + 1] = {
  0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
  12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 17, 17, 18, 18, 18, 18, 19, 19, 19, 19, 20, 20, 20,
  20, 21, 21, 21, 21, 22, 22, 22, 22, 23, 23, 23, 23, 24, 24, 24, 24, 25, 25, 25, 25, 25, 25, 25,
  25, 26, 26, 26, 26, 26, 26, 26, 26, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28,
  28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31,
  31, 32, 32, 32, 32, 32, 32, 32, 32, 33, 33, 34, 34, 34, 34, 34, 34, 35, 35, 35, 35, 35, 35, 35,
  35, 36, 36, 36, 36, 36, 36, 36, 36, 37, 37, 37, 37, 37, 37, 37, 37, 38, 38, 38, 38, 38, 38, 38,
  38, 39, 39, 39, 39, 39, 39, 39, 39, 40, 40, 40, 40, 40, 40, 40, 40, 41, 41, 41, 41, 41, 41, 41,
  41, 42, 42, 42, 42, 42, 42, 42, 42, 43, 43, 43, 43, 43, 43, 43, 43, 44, 44, 44, 44, 44, 44, 44,
  44, 45, 45, 45, 45, 45, 45, 45, 45, 46, 46, 46, 46, 46, 46, 46, 46, 47, 47, 47, 47, 47, 47, 47,
  47, 48, 48, 48, 48, 48, 48, 48, 48, 49, 49, 49, 49, 49, 49, 49, 49,
};

/* hot list length per class: 4 KiB / slot size, within 1..16 */
const uint8_t _lw_hot_max[LW_NCLASSES] = {
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 14, 12, 11, 10, 9, 9, 8,
    8, 7, 6, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* The page every empty class slot points at: no free slot, never owned,
 * so the fast path needs no NULL test. */
lw_page_t _lw_page_empty;

/* Global free pages, under one lock (taken on page refill and release
 * only): two stacks, committed (still resident) first, and the list of
 * pool segments. A segment whose pages are all free is unmapped (all but
 * the last one), so address space follows the live set too. */
static struct {
  pthread_mutex_t lock;
  lw_page_t *committed, *decommitted;
  size_t ncommitted; /* resident pages on the committed stack (fresh ones are not) */
  lw_segment_t *segments;
  size_t nsegments;
  size_t in_use;      /* pages owned by threads */
  lw_peak_t in_use_peak;
} pages = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the owner's avail list ---------------------------------------------- */
static void avail_push_front(lw_tld_t *tld, lw_page_t *pg) {
  lw_page_t *head = tld->cur[pg->cls];
  pg->prev = NULL;
  pg->next = head == &_lw_page_empty ? NULL : head;
  if (pg->next) pg->next->prev = pg;
  tld->cur[pg->cls] = pg;
}

/* Behind the head, so that the page being allocated from stays current. */
static void avail_push_second(lw_tld_t *tld, lw_page_t *pg) {
  lw_page_t *head = tld->cur[pg->cls];
  if (head == &_lw_page_empty) return avail_push_front(tld, pg);
  pg->prev = head;
  pg->next = head->next;
  if (pg->next) pg->next->prev = pg;
  head->next = pg;
}

static void avail_unlink(lw_tld_t *tld, lw_page_t *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    tld->cur[pg->cls] = pg->next ? pg->next : &_lw_page_empty;
  if (pg->next) pg->next->prev = pg->prev;
  pg->prev = pg->next = NULL;
}

/* ---- global free pages (pages.lock held) ---------------------------------- */
static void stack_push(lw_page_t **top, lw_page_t *pg) {
  pg->prev = NULL;
  pg->next = *top;
  if (*top) (*top)->prev = pg;
  *top = pg;
}

static void stack_remove(lw_page_t **top, lw_page_t *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    *top = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
}

static lw_segment_t *segment_of_page(lw_page_t *pg) {
  return (lw_segment_t *)((uintptr_t)pg->start & ~(uintptr_t)LW_SEG_MASK);
}

static void stack_take(lw_page_t *pg) {
  if (pg->committed) {
    stack_remove(&pages.committed, pg);
    if (!pg->fresh) pages.ncommitted--;
  } else {
    stack_remove(&pages.decommitted, pg);
    atomic_fetch_sub_explicit(&_lw_os_decommitted, LW_PAGE_SIZE, memory_order_relaxed);
  }
}

static lw_page_t *new_segment_page(void) {
  lw_segment_t *seg = _lw_segment_alloc(LW_SEG_POOL);
  if (!seg) return NULL;
  for (size_t i = LW_PAGES_PER_SEG - 1; i >= 1; i--) { /* page 0 holds the header */
    lw_page_t *p = &seg->pages[i];
    p->start = (uint8_t *)seg + i * LW_PAGE_SIZE;
    p->committed = 1;
    p->fresh = 1;
    if (i > 1) stack_push(&pages.committed, p);
  }
  seg->next = pages.segments;
  pages.segments = seg;
  pages.nsegments++;
  return &seg->pages[1];
}

/* A free page made tld's page of class cls. Its state and owner change
 * under the lock, with the segment's count of pages in use, so that
 * lw_check, which walks every page under the lock, sees them agree. */
static lw_page_t *pages_take(lw_tld_t *tld, unsigned cls) {
  lw_lock(&pages.lock);
  lw_page_t *pg = pages.committed ? pages.committed : pages.decommitted;
  if (pg)
    stack_take(pg);
  else
    pg = new_segment_page();
  if (pg) {
    segment_of_page(pg)->used_pages++;
    _lw_peak_update(&pages.in_use_peak, ++pages.in_use);
    pg->free = NULL;
    pg->used = 0;
    pg->bumped = 0;
    pg->unused = pg->unused_end = NULL;
    pg->slot_size = _lw_class_size[cls];
    pg->capacity = (uint32_t)(LW_PAGE_SIZE / pg->slot_size);
    pg->cls = (uint8_t)cls;
    pg->owner = tld;
    pg->committed = 1; /* from here on it is touched */
    pg->fresh = 0;
    atomic_store_explicit(&pg->remote, 0, memory_order_relaxed);
    atomic_store_explicit(&pg->state, LW_PAGE_ACTIVE, memory_order_release);
  }
  lw_unlock(&pages.lock);
  return pg;
}

/* Unlinks an empty segment and its free pages; the caller unmaps it. */
static void segment_drop(lw_segment_t *seg, lw_page_t *except) {
  for (size_t i = 1; i < LW_PAGES_PER_SEG; i++)
    if (&seg->pages[i] != except) stack_take(&seg->pages[i]);
  for (lw_segment_t **pp = &pages.segments; *pp; pp = &(*pp)->next)
    if (*pp == seg) {
      *pp = seg->next;
      break;
    }
  pages.nsegments--;
}

/* A free page, on no stack, goes to the OS and on the decommitted stack. */
static void page_decommit(lw_page_t *pg) {
  _lw_os_decommit(pg->start, LW_PAGE_SIZE); /* before anyone can take it */
  pg->committed = 0;
  atomic_fetch_add_explicit(&_lw_os_decommitted, LW_PAGE_SIZE, memory_order_relaxed);
  stack_push(&pages.decommitted, pg);
}

static void pages_give(lw_page_t *pg) {
  lw_segment_t *seg = segment_of_page(pg), *drop = NULL;
  lw_lock(&pages.lock);
  pg->owner = NULL; /* with the count, as in pages_take */
  atomic_store_explicit(&pg->state, LW_PAGE_FREE, memory_order_release);
  /* resident empty pages kept: LW_PAGE_CACHE, or as many as keep the pages
   * in use and kept within the recent peak of pages in use, so that a wave
   * of frees followed by a wave of allocations pays no madvise and no page
   * faults (fragmentation adversary: 74.6 k -> 31.3 k faults, 0.39 -> 0.28
   * s; peak RSS +3 %). Once the peak ages out, the next release gives the
   * excess back. */
  size_t peak = _lw_peak_update(&pages.in_use_peak, pages.in_use--);
  size_t keep = peak - pages.in_use > _lw_g.page_cache ? peak - pages.in_use : _lw_g.page_cache;
  if (--seg->used_pages == 0 && pages.nsegments > 1) {
    segment_drop(seg, pg);
    drop = seg;
  } else if (pages.ncommitted < keep) {
    stack_push(&pages.committed, pg);
    pages.ncommitted++;
  } else {
    page_decommit(pg);
  }
  for (lw_page_t *c = pages.committed, *nx; c && pages.ncommitted > keep; c = nx) {
    nx = c->next;
    if (c->fresh) continue; /* not resident */
    stack_take(c);
    page_decommit(c);
  }
  lw_unlock(&pages.lock);
  if (drop) _lw_segment_free(drop);
}

static lw_page_t *page_acquire(lw_tld_t *tld, unsigned cls) {
  lw_page_t *pg = pages_take(tld, cls);
  if (!pg) return NULL;
  avail_push_front(tld, pg);
  LW_EVENT(POOL_REFILL, cls, pg->capacity, pg->start);
  return pg;
}

/* An empty page (used == 0, no remote frees) leaves its owner. */
static void page_release(lw_tld_t *tld, lw_page_t *pg) {
  avail_unlink(tld, pg);
  LW_EVENT(POOL_RELEASE, pg->cls, pg->capacity, pg->start);
  pages_give(pg);
}

/* ---- slots -------------------------------------------------------------- */
/* Puts a taken remote-free stack (flags already stripped) on the local free list. */
static void take_remote(lw_page_t *pg, lw_block_t *r) {
  uint32_t n = 1;
  lw_block_t *tail = r;
  for (lw_block_t *nx; (nx = lw_block_next(tail)) != NULL; tail = nx) n++;
  lw_block_set_next(tail, pg->free);
  pg->free = r;
  lw_assert_internal(pg->used >= n);
  pg->used -= n;
}

/* Moves an ACTIVE page's remote-free stack onto its local free list. */
static bool collect_remote(lw_page_t *pg) {
  if (!atomic_load_explicit(&pg->remote, memory_order_relaxed)) return false;
  uintptr_t r = atomic_exchange_explicit(&pg->remote, 0, memory_order_acquire);
  if (!r) return false;
  take_remote(pg, (lw_block_t *)r);
  return true;
}

/* Carves the next few KiB of never-used slots: they become the page's
 * unused range, handed out without being written (lw_pool_take_unused). */
static void carve(lw_page_t *pg) {
  uint32_t n = pg->capacity - pg->bumped;
  uint32_t batch = 4096 / pg->slot_size;
  if (batch < 2) batch = 2;
  if (n > batch) n = batch;
  pg->unused = pg->start + (size_t)pg->bumped * pg->slot_size;
  pg->unused_end = pg->unused + (size_t)n * pg->slot_size;
  pg->bumped += n;
}

/* Takes the pages that remote frees put on our notify stack back into
 * our lists, with their remote frees. */
static bool collect_notify(lw_tld_t *tld) {
  if (!atomic_load_explicit(&tld->notify, memory_order_relaxed)) return false;
  lw_page_t *pg = atomic_exchange_explicit(&tld->notify, NULL, memory_order_acquire);
  bool any = pg != NULL;
  while (pg) {
    lw_page_t *nx = pg->notify_next;
    uintptr_t r = atomic_exchange_explicit(&pg->remote, 0, memory_order_acquire);
    take_remote(pg, (lw_block_t *)(r & ~LW_REMOTE_FLAGS)); /* NOTIFIED: at least one block */
    atomic_store_explicit(&pg->state, LW_PAGE_ACTIVE, memory_order_relaxed);
    avail_push_second(tld, pg);
    pg = nx;
  }
  return any;
}

/* The head page has nothing left: it leaves the list as FULL, unless
 * remote frees are already waiting (then they are collected). */
static void page_mark_full(lw_tld_t *tld, lw_page_t *pg) {
  uintptr_t expect = 0;
  if (!atomic_compare_exchange_strong(&pg->remote, &expect, LW_REMOTE_FULL)) {
    collect_remote(pg);
    return;
  }
  avail_unlink(tld, pg);
  atomic_store_explicit(&pg->state, LW_PAGE_FULL, memory_order_relaxed);
}

static void *alloc_slow(lw_tld_t *tld, unsigned cls) {
  if (tld == &_lw_tld_empty) {
    tld = _lw_tld_init();
    if (!tld) {
      errno = ENOMEM;
      return NULL;
    }
  }
  for (;;) {
    lw_page_t *pg = tld->cur[cls];
    if (pg != &_lw_page_empty) {
      if (lw_pool_has_unused(pg)) return lw_pool_take_unused(pg);
      if (pg->free || collect_remote(pg)) return lw_pool_pop(pg);
      /* Freed slots elsewhere before fresh ones: pages that remote frees
       * made available again come in behind the head, and other pages of
       * the list may hold remote frees; use one that has slots, so that
       * carving (new RSS) waits until nothing near is free. */
      collect_notify(tld);
      int budget = 8; /* a bounded look along the list */
      for (lw_page_t *nx = pg->next; nx && budget--; nx = nx->next) {
        if (nx->free || collect_remote(nx)) {
          avail_unlink(tld, nx);
          avail_push_front(tld, nx);
          return lw_pool_pop(nx);
        }
      }
      if (pg->bumped < pg->capacity) {
        carve(pg);
        return lw_pool_take_unused(pg);
      }
      page_mark_full(tld, pg);
      continue;
    }
    if (collect_notify(tld)) continue;
    if (!page_acquire(tld, cls)) {
      errno = ENOMEM;
      return NULL;
    }
  }
}

/* The slow paths change this thread's page lists and carve slots over
 * many instructions, so they count as locked sections (signal.c): a signal
 * handler that interrupts one allocates elsewhere and leaves the lists
 * alone. */
void *_lw_pool_alloc_slow(lw_tld_t *tld, unsigned cls) {
  if (lw_unlikely(lw_reentered())) {
    uint32_t slot = _lw_class_size[cls];
    return _lw_signal_alloc(slot, slot & -slot); /* as aligned as a slot of the class */
  }
  lw_depth_enter();
  void *p = alloc_slow(tld, cls);
  lw_depth_leave();
  return p;
}

/* After an owner's free: the page was FULL (make it available again) or
 * became empty (give it back unless it is the class's current page). In a
 * signal handler that interrupted a slow path, the owner's next free does
 * it. */
void _lw_pool_free_slow(lw_tld_t *tld, lw_page_t *pg) {
  if (lw_unlikely(lw_reentered())) return;
  lw_depth_enter();
  bool listed = true;
  if (atomic_load_explicit(&pg->state, memory_order_relaxed) == LW_PAGE_FULL) {
    uintptr_t expect = LW_REMOTE_FULL;
    listed = atomic_compare_exchange_strong(&pg->remote, &expect, 0); /* else NOTIFIED: it comes back that way */
    if (listed) {
      atomic_store_explicit(&pg->state, LW_PAGE_ACTIVE, memory_order_relaxed);
      avail_push_second(tld, pg);
    }
  }
  if (listed && pg->used == 0 && tld->cur[pg->cls] != pg) page_release(tld, pg);
  lw_depth_leave();
}

void _lw_pool_free_remote(lw_page_t *pg, void *p) {
  lw_block_t *b = p;
  uintptr_t old = atomic_load_explicit(&pg->remote, memory_order_relaxed), nw;
  do {
    lw_block_set_next(b, (lw_block_t *)(old & ~LW_REMOTE_FLAGS));
    uintptr_t flags = old & LW_REMOTE_FLAGS;
    nw = (uintptr_t)b | (flags == LW_REMOTE_FULL ? LW_REMOTE_NOTIFIED : flags);
    /* acq_rel: taking FULL must see what the owner did before setting it
     * (its last read of notify_next, its owner field) */
  } while (!atomic_compare_exchange_weak_explicit(&pg->remote, &old, nw, memory_order_acq_rel,
                                                  memory_order_relaxed));
  if ((old & LW_REMOTE_FLAGS) != LW_REMOTE_FULL) return; /* p may be gone already: touch nothing */
  /* We took FULL -> NOTIFIED: the page stays put until its owner hears. */
  lw_tld_t *owner = pg->owner;
  lw_page_t *top = atomic_load_explicit(&owner->notify, memory_order_relaxed);
  do pg->notify_next = top;
  while (!atomic_compare_exchange_weak_explicit(&owner->notify, &top, pg, memory_order_release,
                                                memory_order_relaxed));
}

/* Returns the empty pages of a thread that is exiting (or trimming); the
 * others stay owned by the tld, which the next new thread adopts. */
static void release_empty_pages(lw_tld_t *tld, bool all) {
  collect_notify(tld);
  for (unsigned c = 0; c < LW_NCLASSES; c++) {
    lw_page_t *pg = tld->cur[c];
    while (pg != &_lw_page_empty && pg) {
      lw_page_t *nx = pg->next;
      collect_remote(pg);
      if (pg->used == 0 && (all || pg != tld->cur[c])) page_release(tld, pg);
      pg = nx;
    }
  }
}

/* Gives every hot slot back to its page: pushed by the owner, or a
 * remote free. */
void _lw_pool_flush_hot(lw_tld_t *tld) {
  for (unsigned c = 0; c < LW_NCLASSES; c++) {
    void *p;
    while ((p = lw_hot_pop(tld, c)) != NULL) {
      lw_page_t *pg = lw_page_of(lw_segment_of(p), p);
      if (pg->owner == tld)
        lw_pool_push_owned(tld, pg, p);
      else
        _lw_pool_free_remote(pg, p);
    }
  }
}

void _lw_pool_abandon(lw_tld_t *tld) {
  _lw_pool_flush_hot(tld);
  release_empty_pages(tld, true);
}
void _lw_pool_collect(lw_tld_t *tld) { collect_notify(tld); }

/* malloc_trim: the calling thread's empty pages, then every cached page. */
size_t _lw_pool_trim(void) {
  lw_tld_t *tld = _lw_tld;
  if (tld != &_lw_tld_empty) {
    _lw_pool_flush_hot(tld);
    release_empty_pages(tld, true);
  }
  size_t released = 0;
  lw_lock(&pages.lock);
  lw_page_t *pg;
  while ((pg = pages.committed) != NULL) {
    stack_take(pg);
    page_decommit(pg);
    released += LW_PAGE_SIZE;
  }
  lw_unlock(&pages.lock);
  return released;
}

/* Calls fn for every page of every pool segment, under the page lock (so
 * no segment goes away meanwhile). For statistics and checks. */
void _lw_pool_visit(void (*fn)(lw_page_t *pg, void *arg), void *arg) {
  lw_lock(&pages.lock);
  for (lw_segment_t *s = pages.segments; s; s = s->next)
    for (size_t i = 1; i < LW_PAGES_PER_SEG; i++) fn(&s->pages[i], arg);
  lw_unlock(&pages.lock);
}

void _lw_pool_atfork(int phase) { lw_mutex_atfork(&pages.lock, phase); }
