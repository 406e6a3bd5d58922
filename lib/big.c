/* Large blocks (>= the large threshold), header in front (types.h,
 * lw_large_t). They are in no segment, which is how free() knows them.
 *
 * Up to LW_ARENA_BLOCK_MAX they are runs of pages ("spans") cut from large
 * arenas: 64 MiB reservations, aligned to 64 MiB, opened front to back as
 * blocks reach further. For large blocks the page faults are the cost
 * (about 2.5 us each on this machine's VM, against ~100 ns of bookkeeping),
 * so a freed span keeps its pages (it is "dirty") for the next block: it
 * joins its dirty neighbours at once (the free spans are one address-
 * ordered array) and a new block goes where it reuses the most dirty
 * pages. A new block that finds no run of resident pages long enough gets
 * free pages from elsewhere moved into it (move_pages_into). Dirty pages
 * are given back (a fresh mapping over them), least recently freed first,
 * only past the footprint limit (resident_limit below). An arena left
 * wholly free is unmapped once its pages have been given back, while
 * another one remains (lw_trim unmaps them all). realloc grows a span in
 * place when free spans follow it, else moves it (copies).
 *
 * Bigger blocks get a mapping of their own (LW_LARGE_OWN_MAP), grown and
 * shrunk by mremap, so a growing huge buffer is never copied by us, and
 * unmapped when freed.
 *
 * A registry (a small open-addressing set of the live blocks' addresses)
 * makes a double free or a free of a stranger's pointer a clear report
 * instead of a read of unmapped memory. One lock covers registry and
 * arenas. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

_Atomic uint64_t _lw_big_live;

#define LW_ARENA_SHIFT 26 /* 64 MiB */
#define LW_ARENA_SIZE ((size_t)1 << LW_ARENA_SHIFT)
#define LW_ARENA_BLOCK_MAX (LW_ARENA_SIZE / 2) /* 32 MiB, as glibc's largest mmap threshold on 64-bit */
#define LW_ARENAS_MAX 64
#define LW_ARENA_OPEN_STEP ((size_t)1 << 20) /* arenas open at least this much at a time */
#define LW_RESIDENT_MIN ((size_t)1 << 20)    /* free span bytes always allowed to stay resident */

typedef struct {
  uint8_t *addr;
  size_t size;
  uint64_t stamp; /* reg.clock when it was last freed into */
  bool dirty;     /* freed pages, kept resident; else never touched or given back (reads as zero) */
} span_t;

typedef struct {
  uint8_t *base;
  size_t opened; /* [base, base + opened) is readable and writable */
} arena_t;

static struct {
  pthread_mutex_t lock;
  uintptr_t *slot; /* registry: 0 = empty; linear probing, backward-shift deletion */
  size_t cap, count;
  arena_t arena[LW_ARENAS_MAX];
  unsigned narenas;
  span_t *free; /* free spans in address order; touching ones (within an arena) differ in dirty */
  size_t nfree, free_cap;
  size_t dirty; /* bytes in dirty free spans */
  uint64_t clock; /* large frees so far */
  lw_peak_t live_peak; /* of the live large bytes seen by large operations */
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Frees that signal handlers deferred (signal.c), linked through their
 * first word; done by the next large operation that takes the lock. */
static _Atomic(uintptr_t) deferred;
static void big_lock(void);

/* ---- registry of live large blocks (reg.lock held) ------------------------- */
static size_t reg_hash(uintptr_t p, size_t cap) { return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1); }

static size_t reg_find(uintptr_t p) { /* index of p, or of the empty slot where it would go */
  size_t i = reg_hash(p, reg.cap);
  while (reg.slot[i] && reg.slot[i] != p) i = (i + 1) & (reg.cap - 1);
  return i;
}

static bool reg_grow(void) {
  size_t ncap = reg.cap ? reg.cap * 2 : 512;
  uintptr_t *old = reg.slot, *nslot = _lw_os_map(ncap * sizeof(uintptr_t));
  if (!nslot) return false;
  size_t ocap = reg.cap;
  reg.slot = nslot;
  reg.cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i]) reg.slot[reg_find(old[i])] = old[i];
  if (old) _lw_os_unmap(old, ocap * sizeof(uintptr_t));
  return true;
}

static bool reg_add(void *p) {
  bool ok = (reg.count + 1) * 2 <= reg.cap || reg_grow();
  if (ok) {
    reg.slot[reg_find((uintptr_t)p)] = (uintptr_t)p;
    reg.count++;
  }
  return ok;
}

/* Removes p; false if p is not a live large block. */
static bool reg_remove(const void *p) {
  bool found = reg.cap && reg.slot[reg_find((uintptr_t)p)] == (uintptr_t)p;
  if (found) {
    size_t i = reg_find((uintptr_t)p), j = i;
    reg.slot[i] = 0;
    for (;;) { /* shift back the entries that probed past the hole */
      j = (j + 1) & (reg.cap - 1);
      if (!reg.slot[j]) break;
      size_t home = reg_hash(reg.slot[j], reg.cap);
      if (((j - home) & (reg.cap - 1)) >= ((j - i) & (reg.cap - 1))) {
        reg.slot[i] = reg.slot[j];
        reg.slot[j] = 0;
        i = j;
      }
    }
    reg.count--;
  }
  return found;
}

static bool reg_contains(const void *p) {
  return reg.cap && reg.slot[reg_find((uintptr_t)p)] == (uintptr_t)p;
}

/* ---- arenas and free spans (reg.lock held) ------------------------------------ */
static bool arena_start(const uint8_t *a) { return ((uintptr_t)a & (LW_ARENA_SIZE - 1)) == 0; }

/* Whether free span i ends where span i + 1 starts, in the same arena. */
static bool touch_next(size_t i) {
  return i + 1 < reg.nfree && reg.free[i].addr + reg.free[i].size == reg.free[i + 1].addr &&
         !arena_start(reg.free[i + 1].addr);
}

static arena_t *arena_of(const uint8_t *a) {
  uint8_t *base = (uint8_t *)((uintptr_t)a & ~(uintptr_t)(LW_ARENA_SIZE - 1));
  for (unsigned i = 0; i < reg.narenas; i++)
    if (reg.arena[i].base == base) return &reg.arena[i];
  return NULL;
}

static size_t free_index(const uint8_t *a) { /* first free span at or above a */
  size_t lo = 0, hi = reg.nfree;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (reg.free[mid].addr < a) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Room for `more` free spans (the array grows by doubling). */
static bool free_room(size_t more) {
  if (reg.nfree + more <= reg.free_cap) return true;
  size_t ncap = reg.free_cap ? reg.free_cap : _lw_g.os_page / sizeof(span_t);
  while (ncap < reg.nfree + more) ncap *= 2;
  span_t *n = _lw_os_map(lw_align_up(ncap * sizeof(span_t), _lw_g.os_page));
  if (!n) return false;
  if (reg.free) {
    memcpy(n, reg.free, reg.nfree * sizeof(span_t));
    _lw_os_unmap(reg.free, lw_align_up(reg.free_cap * sizeof(span_t), _lw_g.os_page));
  }
  reg.free = n;
  reg.free_cap = ncap;
  return true;
}

static void free_insert(size_t i, span_t s) { /* room made by free_room() */
  memmove(&reg.free[i + 1], &reg.free[i], (reg.nfree - i) * sizeof(span_t));
  reg.free[i] = s;
  reg.nfree++;
}

static void free_erase(size_t i, size_t n) {
  memmove(&reg.free[i], &reg.free[i + n], (reg.nfree - i - n) * sizeof(span_t));
  reg.nfree -= n;
}

/* Joins free span i with span i + 1 (touching, same state). */
static void join_next(size_t i) {
  reg.free[i].size += reg.free[i + 1].size;
  free_erase(i + 1, 1);
}

static bool arena_add(void) {
  if (reg.narenas == LW_ARENAS_MAX || !free_room(1)) return false;
  uint8_t *base = _lw_os_reserve_aligned(LW_ARENA_SIZE, LW_ARENA_SIZE);
  if (!base) return false;
  reg.arena[reg.narenas++] = (arena_t){base, 0};
  free_insert(free_index(base), (span_t){base, LW_ARENA_SIZE, reg.clock, false});
  return true;
}

/* If the free spans around span i cover its whole arena, unmaps the arena;
 * with `keep_resident`, not the last one nor one that holds resident free
 * pages (new blocks, here or in another arena, reuse them; they go when
 * the footprint limit gives them back, and the arena with the last).
 * Returns whether it did. */
static bool arena_release_if_free(size_t i, bool keep_resident) {
  size_t first = i, last = i;
  while (first > 0 && touch_next(first - 1)) first--;
  while (touch_next(last)) last++;
  span_t *f = &reg.free[first], *l = &reg.free[last];
  if (!arena_start(f->addr) || l->addr + l->size != f->addr + LW_ARENA_SIZE) return false;
  if (keep_resident && reg.narenas == 1) return false;
  for (size_t k = first; keep_resident && k <= last; k++)
    if (reg.free[k].dirty) return false;
  arena_t *a = arena_of(f->addr);
  for (size_t k = first; k <= last; k++)
    if (reg.free[k].dirty) reg.dirty -= reg.free[k].size;
  free_erase(first, last - first + 1);
  _lw_os_release(a->base, LW_ARENA_SIZE, a->opened);
  *a = reg.arena[--reg.narenas];
  return true;
}

/* The parts of a block that span_cut took from clean spans (never touched
 * or given back): move_pages_into() fills them with resident pages. */
#define LW_MOVE_MIN ((size_t)64 << 10) /* smaller holes fault; see move_pages_into() */
#define LW_HOLES_MAX 8
typedef struct {
  uint8_t *addr[LW_HOLES_MAX];
  size_t size[LW_HOLES_MAX];
  unsigned n;
} holes_t;

/* Cuts `size` bytes off the front of the run of touching free spans that
 * starts at span i (the caller checked that the run is long enough),
 * opening arena pages as needed. *dirty: whether the bytes may be non-zero;
 * holes (if not NULL): the clean parts. */
static uint8_t *span_cut(size_t i, size_t size, bool *dirty, holes_t *holes) {
  uint8_t *p = reg.free[i].addr;
  arena_t *a = arena_of(p);
  size_t end = (size_t)(p + size - a->base);
  if (end > a->opened) {
    size_t open = lw_align_up(end, LW_ARENA_OPEN_STEP);
    if (open > LW_ARENA_SIZE) open = LW_ARENA_SIZE;
    if (!_lw_os_open(a->base + a->opened, open - a->opened)) return NULL;
    a->opened = open;
  }
  *dirty = false;
  while (size) {
    span_t *s = &reg.free[i];
    size_t take = s->size < size ? s->size : size;
    if (s->dirty) {
      reg.dirty -= take;
      *dirty = true;
    } else if (holes && take >= LW_MOVE_MIN && holes->n < LW_HOLES_MAX) {
      holes->addr[holes->n] = s->addr;
      holes->size[holes->n++] = take;
    }
    s->addr += take;
    s->size -= take;
    size -= take;
    if (s->size == 0) free_erase(i, 1);
  }
  return p;
}

/* Resident bytes among the first `size` bytes of the run of touching free
 * spans that starts at span i, or -1 if the run is shorter than size. */
static ptrdiff_t run_resident(size_t i, size_t size) {
  size_t covered = 0, resident = 0;
  for (;; i++) {
    size_t take = reg.free[i].size < size - covered ? reg.free[i].size : size - covered;
    if (reg.free[i].dirty) resident += take;
    covered += take;
    if (covered == size) return (ptrdiff_t)resident;
    if (!touch_next(i)) return -1;
  }
}

/* Where `size` bytes reuse the most resident pages: the start of a run of
 * touching free spans (resident ones and the untouched or given-back ones
 * beside them, as glibc's top chunk joins the free chunk before it), the
 * shortest such span on ties; else a new arena. */
static uint8_t *span_take(size_t size, bool *dirty, holes_t *holes) {
  if (!free_room(2)) return NULL; /* a block freed later may need its own entry */
  for (int attempt = 0; attempt < 2; attempt++) {
    size_t best = reg.nfree;
    ptrdiff_t best_resident = -1;
    for (size_t i = 0; i < reg.nfree; i++) {
      ptrdiff_t r = run_resident(i, size);
      if (r > best_resident || (r >= 0 && r == best_resident && reg.free[i].size < reg.free[best].size)) {
        best = i;
        best_resident = r;
      }
    }
    if (best < reg.nfree) return span_cut(best, size, dirty, holes);
    if (!arena_add()) return NULL;
  }
  return NULL;
}

/* Takes `size` bytes of the free span that starts at p, if there is one. */
static bool span_extend(uint8_t *p, size_t size, holes_t *holes) {
  size_t i = free_index(p);
  bool dirty;
  if (i == reg.nfree || reg.free[i].addr != p || arena_start(p) || run_resident(i, size) < 0) return false;
  return span_cut(i, size, &dirty, holes) != NULL;
}

/* Gives back the pages of the last `bytes` of dirty span i, or with `to`,
 * moves them there (false if they could not be moved); the range becomes
 * clean and joins its clean neighbour. */
static bool span_clean_tail(size_t i, size_t bytes, uint8_t *to) {
  if (bytes < reg.free[i].size && !free_room(1)) { /* no room to split */
    if (to) return false;
    bytes = reg.free[i].size; /* give back all of it */
  }
  span_t *s = &reg.free[i]; /* after free_room, which may move the array */
  uint8_t *from = s->addr + s->size - bytes;
  if (!to) _lw_os_decommit_fresh(from, bytes); /* dirty pages are all opened ones */
  else if (!_lw_os_move(to, from, bytes)) return false;
  reg.dirty -= bytes;
  if (bytes < s->size) {
    s->size -= bytes;
    free_insert(++i, (span_t){from, bytes, reg.clock, false});
  } else {
    s->dirty = false;
    if (i > 0 && touch_next(i - 1)) join_next(--i);
  }
  if (touch_next(i)) join_next(i);
  if (!to) arena_release_if_free(i, true);
  return true;
}

/* Gives pages back, least recently freed spans first, until the dirty
 * bytes are at most `limit`. */
static void spans_shrink_resident(size_t limit) {
  while (reg.dirty > limit) {
    size_t old = reg.nfree;
    for (size_t i = 0; i < reg.nfree; i++)
      if (reg.free[i].dirty && (old == reg.nfree || reg.free[i].stamp < reg.free[old].stamp)) old = i;
    size_t excess = lw_align_up(reg.dirty - limit, _lw_g.os_page);
    span_clean_tail(old, excess < reg.free[old].size ? excess : reg.free[old].size, NULL);
  }
}

/* Fills the holes of a block just cut with the resident pages of free
 * spans elsewhere, least recently freed first, moving them (mremap)
 * rather than faulting fresh pages in: a fault costs ~2.5 us a page here
 * (trap, zeroing, cgroup charge), a move a few us for the whole piece.
 * Without it, a block that finds no run of resident pages long enough
 * faults its pages in while older free pages are given back to keep the
 * footprint within the recent peak: the large workload took 106 k faults
 * and 0.26 s at 85.7 MB peak RSS; with it, 60 k faults and 0.18 s at
 * 75.6 MB. Holes and pieces under LW_MOVE_MIN fault as before. A moved
 * piece is a kernel mapping of its own until its pages are given back
 * (os.c, _lw_os_move), so the count of mappings follows the resident
 * moved pieces, not the history (large at 16x its length: 323 mappings;
 * 8024 with madvise in place of the fresh mappings).
 * Returns whether the block got pages that may hold old data. */
static bool move_pages_into(const holes_t *h) {
  bool moved = false;
  for (unsigned k = 0; k < h->n; k++) {
    size_t left = h->size[k];
    while (left >= LW_MOVE_MIN) {
      size_t d = reg.nfree;
      for (size_t i = 0; i < reg.nfree; i++)
        if (reg.free[i].dirty && reg.free[i].size >= LW_MOVE_MIN && (d == reg.nfree || reg.free[i].stamp < reg.free[d].stamp)) d = i;
      if (d == reg.nfree) return moved;
      size_t take = reg.free[d].size < left ? reg.free[d].size : left;
      if (!span_clean_tail(d, take, h->addr[k] + left - take)) return moved;
      moved = true;
      left -= take;
    }
  }
  return moved;
}

/* Free pages stay resident while the large blocks' footprint (live plus
 * resident free bytes) stays within the recent peak of live large bytes:
 * the highest seen in this second or the one before. So the pages kept
 * are ones the program needed a moment ago, and a shrinking program gives
 * them back within two seconds of its next large free.
 * `was_live`: the live bytes before the operation that asks, `live` after. */
static size_t resident_limit(size_t was_live, size_t live) {
  size_t peak = _lw_peak_update(&reg.live_peak, was_live);
  size_t limit = peak > live ? peak - live : 0;
  return limit > LW_RESIDENT_MIN ? limit : LW_RESIDENT_MIN;
}

/* Returns a span to the free spans (dirty: its pages were used), joined
 * with its dirty neighbours. */
static void span_give(uint8_t *p, size_t size) {
  size_t i = free_index(p);
  reg.clock++;
  reg.dirty += size;
  bool prev = i > 0 && reg.free[i - 1].dirty && reg.free[i - 1].addr + reg.free[i - 1].size == p && !arena_start(p);
  bool next = i < reg.nfree && reg.free[i].dirty && p + size == reg.free[i].addr && !arena_start(reg.free[i].addr);
  if (prev) {
    reg.free[--i].size += size;
    if (next) join_next(i);
  } else if (next) {
    reg.free[i].addr = p;
    reg.free[i].size += size;
  } else if (free_room(1)) {
    free_insert(i, (span_t){p, size, reg.clock, true});
  } else { /* no memory to note it: give the pages back and lose the range */
    _lw_os_decommit_fresh(p, size);
    reg.dirty -= size;
    return;
  }
  reg.free[i].stamp = reg.clock;
  if (arena_release_if_free(i, true)) return;
  size_t live = atomic_load_explicit(&_lw_big_live, memory_order_relaxed);
  spans_shrink_resident(resident_limit(live + size, live));
}

/* The small and medium tiers map a segment of `bytes`: the dirty large
 * pages kept for reuse make way, so that keeping them never raises the
 * process's footprint above what the program's own growth does. */
void _lw_big_make_room(size_t bytes) {
  lw_lock(&reg.lock);
  spans_shrink_resident(reg.dirty > bytes ? reg.dirty - bytes : 0);
  lw_unlock(&reg.lock);
}

/* lw_trim: gives back the pages of every free span and unmaps the wholly
 * free arenas; returns the bytes given back. */
size_t _lw_big_trim(void) {
  lw_lock(&reg.lock);
  size_t bytes = reg.dirty;
  spans_shrink_resident(0);
  for (size_t i = reg.nfree; i-- > 0;)
    if (reg.free[i].size == LW_ARENA_SIZE) arena_release_if_free(i, false);
  lw_unlock(&reg.lock);
  return bytes;
}

void _lw_big_atfork(int phase) { lw_mutex_atfork(&reg.lock, phase); }

/* lw_check: the free spans' invariants. */
void _lw_big_check(void) {
  lw_lock(&reg.lock);
  size_t dirty = 0;
  for (size_t i = 0; i < reg.nfree; i++) {
    span_t *s = &reg.free[i];
    arena_t *a = arena_of(s->addr);
    LW_INSIST(a && s->size && s->addr + s->size <= a->base + LW_ARENA_SIZE && "free span inside one arena");
    LW_INSIST(s->size % _lw_g.os_page == 0 && "free span of whole pages");
    LW_INSIST((i == 0 || reg.free[i - 1].addr + reg.free[i - 1].size <= s->addr) && "free spans sorted, apart");
    LW_INSIST((!touch_next(i) || s->dirty != reg.free[i + 1].dirty) && "touching free spans differ in state");
    LW_INSIST((!s->dirty || s->addr + s->size <= a->base + a->opened) && "dirty pages are opened ones");
    if (s->dirty) dirty += s->size;
  }
  LW_INSIST(dirty == reg.dirty && "dirty bytes add up");
  lw_unlock(&reg.lock);
}

/* ---- blocks ------------------------------------------------------------------- */
static inline lw_large_t *large_of(const void *p) { return (lw_large_t *)((uint8_t *)p - sizeof(lw_large_t)); }
static inline uint32_t large_tag(const void *p) {
  uint64_t x = ((uintptr_t)p >> 4) ^ _lw_g.secret;
  x *= 0x9e3779b97f4a7c15ull;
  return (uint32_t)(x >> 32) | 1;
}
static inline size_t large_offset(const lw_large_t *l) { return (uint32_t)l->tag_offset; }
static inline size_t large_map_size(const lw_large_t *l) { return l->map_size & ~LW_LARGE_OWN_MAP; }

static void large_set(void *p, size_t map_size, size_t offset, bool own_map) {
  lw_large_t *l = large_of(p);
  l->map_size = map_size | (own_map ? LW_LARGE_OWN_MAP : 0);
  l->tag_offset = ((uint64_t)large_tag(p) << 32) | offset;
}

/* The header of a large block, after checking that p really is one
 * (and, with remove, taking it out of the registry). reg.lock held. */
static lw_large_t *large_checked(const void *p, bool remove) {
  if (lw_unlikely(!(remove ? reg_remove(p) : reg_contains(p)))) {
    lw_unlock(&reg.lock);
    _lw_report("invalid free (not allocated by lwmalloc, or already freed) of pointer", p);
  }
  lw_large_t *l = large_of(p);
  if (lw_unlikely((uint32_t)(l->tag_offset >> 32) != large_tag(p))) {
    lw_unlock(&reg.lock);
    _lw_report("corrupted large block header (buffer underflow?) at pointer", p);
  }
  return l;
}

/* map_size bytes from the arenas; NULL when they cannot grow. */
static uint8_t *arena_alloc(size_t map_size, bool *dirty) {
  big_lock();
  holes_t holes = {.n = 0};
  uint8_t *map = span_take(map_size, dirty, &holes);
  if (map) { /* the footprint may have grown */
    if (move_pages_into(&holes)) *dirty = true;
    size_t live = atomic_load_explicit(&_lw_big_live, memory_order_relaxed) + map_size;
    spans_shrink_resident(resident_limit(live, live));
  }
  lw_unlock(&reg.lock);
  return map;
}

void *_lw_big_alloc(size_t size, size_t align, bool zero) {
  if (lw_unlikely(lw_reentered())) return _lw_signal_alloc(size, align); /* zeroed */
  if (align < LW_ALIGN) align = LW_ALIGN;
  size_t map_size = lw_large_map_size(size, align);
  if (!map_size) {
    errno = ENOMEM;
    return NULL;
  }
  bool dirty = false;
  uint8_t *map = map_size <= LW_ARENA_BLOCK_MAX ? arena_alloc(map_size, &dirty) : NULL;
  bool own_map = map == NULL; /* huge, or the arenas are exhausted */
  if (own_map && (map = _lw_os_map(map_size)) != NULL) _lw_os_name(map, map_size, "lwmalloc:large");
  uint8_t *p = map ? (uint8_t *)lw_align_up((uintptr_t)map + sizeof(lw_large_t), align) : NULL;
  lw_lock(&reg.lock);
  if (p && !reg_add(p)) { /* the registry could not grow */
    if (!own_map) span_give(map, map_size);
    p = NULL;
  }
  lw_unlock(&reg.lock);
  if (!p) {
    if (own_map && map) _lw_os_unmap(map, map_size);
    errno = ENOMEM;
    return NULL;
  }
  size_t offset = (size_t)(p - map);
  large_set(p, map_size, offset, own_map);
  if (zero && dirty) memset(p, 0, size); /* fresh pages are zero already */
  atomic_fetch_add_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  return p;
}

/* reg.lock held; returns the mapping to unmap (a block of its own) or NULL. */
static uint8_t *free_locked(void *p, size_t *map_size) {
  lw_large_t *l = large_checked(p, true);
  size_t offset = large_offset(l);
  *map_size = large_map_size(l);
  bool own_map = l->map_size & LW_LARGE_OWN_MAP;
  atomic_fetch_sub_explicit(&_lw_big_live, *map_size - offset, memory_order_relaxed);
  if (own_map) return (uint8_t *)p - offset;
  span_give((uint8_t *)p - offset, *map_size);
  return NULL;
}

static lw_noinline void free_deferred(void) {
  uintptr_t d = atomic_exchange_explicit(&deferred, 0, memory_order_acquire);
  while (d) {
    void *p = (void *)d;
    d = *(uintptr_t *)p;
    size_t map_size;
    uint8_t *own = free_locked(p, &map_size);
    if (own) _lw_os_unmap(own, map_size);
  }
}

/* reg.lock, and the frees signal handlers deferred. */
static void big_lock(void) {
  lw_lock(&reg.lock);
  if (lw_unlikely(atomic_load_explicit(&deferred, memory_order_relaxed) != 0)) free_deferred();
}

void _lw_big_free(void *p) {
  if (_lw_signal_free(p)) return;
  if (lw_unlikely(lw_reentered())) return _lw_signal_defer(&deferred, p); /* the next locker frees it */
  big_lock();
  size_t map_size;
  uint8_t *own = free_locked(p, &map_size);
  lw_unlock(&reg.lock);
  if (own) _lw_os_unmap(own, map_size);
}

size_t _lw_big_usable(const void *p) {
  const lw_large_t *l = large_of(p);
  return large_map_size(l) - large_offset(l);
}

/* A span resized where it lies: shrunk (the tail goes back) or grown into
 * the free span after it. */
static bool span_resize(void *p, lw_large_t *l, size_t map_size) {
  size_t offset = large_offset(l), old = large_map_size(l);
  uint8_t *map = (uint8_t *)p - offset;
  if (map_size > LW_ARENA_BLOCK_MAX) return false;
  if (map_size < old) span_give(map + map_size, old - map_size);
  else {
    holes_t holes = {.n = 0};
    if (!span_extend(map + old, map_size - old, &holes)) return false;
    move_pages_into(&holes);
  }
  large_set(p, map_size, offset, false);
  atomic_fetch_add_explicit(&_lw_big_live, map_size - old, memory_order_relaxed); /* wraps down */
  return true;
}

/* A block with its own mapping, resized by mremap (which may move it). */
static void *own_map_resize(void *p, lw_large_t *l, size_t map_size) {
  size_t offset = large_offset(l), old = large_map_size(l);
  int saved = errno;
  uint8_t *map = _lw_os_remap((uint8_t *)p - offset, old, map_size);
  errno = saved;
  if (!map) return NULL;
  uint8_t *q = map + offset;
  if (q != p) { /* moved: re-register (removing cannot fail, adding may grow) */
    reg_remove(p);
    if (!reg_add(q)) _lw_report("cannot register moved large block", q);
  }
  large_set(q, map_size, offset, true);
  atomic_fetch_add_explicit(&_lw_big_live, map_size - old, memory_order_relaxed);
  return q;
}

/* Resizes in place, by mremap, or by moving; NULL (errno ENOMEM) leaves p intact. */
void *_lw_big_realloc(void *p, size_t size) {
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  if (lw_unlikely(lw_reentered() || _lw_signal_owns(p))) { /* moves, taking no lock (signal.c) */
    void *q = _lw_malloc(size);
    if (!q) return NULL;
    size_t old = _lw_big_usable(p);
    memcpy(q, p, old < size ? old : size);
    _lw_big_free(p);
    return q;
  }
  big_lock();
  lw_large_t *l = large_checked(p, false);
  size_t offset = large_offset(l), old = large_map_size(l);
  size_t map_size = lw_align_up(size + offset, _lw_g.os_page);
  void *q = NULL;
  if (map_size == old) q = p;
  else if (l->map_size & LW_LARGE_OWN_MAP) q = own_map_resize(p, l, map_size);
  else if (span_resize(p, l, map_size)) q = p;
  lw_unlock(&reg.lock);
  if (q) return q;
  if (map_size < old) return p; /* keep it whole */
  q = _lw_big_alloc(size, LW_ALIGN, false);
  if (!q) return NULL;
  memcpy(q, p, old - offset);
  _lw_big_free(p);
  return q;
}
