/* Large blocks: one mapping each, header in front (types.h, lw_large_t).
 * realloc grows or shrinks them with mremap, so a growing buffer is never
 * copied by us. They are in no segment, which is how free() knows them.
 * A registry (a small open-addressing set of their addresses) makes a
 * double free or a free of a stranger's pointer a clear report instead of
 * a read of unmapped memory; it costs one short locked probe next to an
 * mmap/munmap system call.
 *
 * Freed mappings wait in a small cache (at most LW_BIG_CACHE_SLOTS of them,
 * at most max(1 MiB, the live large bytes) in all, each for at most
 * LW_BIG_CACHE_AGE large operations); a new large block takes the closest
 * one and mremaps it to size, so its pages are reused instead of being
 * unmapped, mapped and faulted in again. lw_trim() empties the cache. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

_Atomic uint64_t _lw_big_live;

#define LW_BIG_CACHE_SLOTS 16
#define LW_BIG_CACHE_AGE 256
#define LW_BIG_CACHE_MIN ((size_t)1 << 20)

typedef struct {
  uint8_t *map;
  size_t size;
  uint64_t stamp; /* cache clock when it came in */
} cached_map_t;

/* ---- registry of live large blocks, and the cache (one lock) ------------------ */
static struct {
  pthread_mutex_t lock;
  uintptr_t *slot; /* 0 = empty; linear probing, backward-shift deletion */
  size_t cap, count;
  cached_map_t cache[LW_BIG_CACHE_SLOTS];
  unsigned ncached;
  size_t cached_bytes;
  uint64_t clock; /* large operations so far */
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
  pthread_mutex_lock(&reg.lock);
  bool ok = (reg.count + 1) * 2 <= reg.cap || reg_grow();
  if (ok) {
    reg.slot[reg_find((uintptr_t)p)] = (uintptr_t)p;
    reg.count++;
  }
  pthread_mutex_unlock(&reg.lock);
  return ok;
}

/* Removes p; false if p is not a live large block. */
static bool reg_remove(const void *p) {
  pthread_mutex_lock(&reg.lock);
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
  pthread_mutex_unlock(&reg.lock);
  return found;
}

static bool reg_contains(const void *p) {
  pthread_mutex_lock(&reg.lock);
  bool found = reg.cap && reg.slot[reg_find((uintptr_t)p)] == (uintptr_t)p;
  pthread_mutex_unlock(&reg.lock);
  return found;
}

/* ---- the cache (reg.lock held) ------------------------------------------------ */
static size_t cache_limit(void) {
  size_t live = atomic_load_explicit(&_lw_big_live, memory_order_relaxed);
  return live > LW_BIG_CACHE_MIN ? live : LW_BIG_CACHE_MIN;
}

static cached_map_t cache_remove(unsigned i) {
  cached_map_t e = reg.cache[i];
  reg.cache[i] = reg.cache[--reg.ncached];
  reg.cached_bytes -= e.size;
  return e;
}

/* Takes a cached mapping for map_size bytes: the smallest that fits, cut
 * to size (the rest stays cached: address ranges split freely), else the
 * biggest one, to be grown by mremap keeping its resident pages. */
static cached_map_t cache_take(size_t map_size) {
  cached_map_t none = {NULL, 0, 0};
  unsigned fit = LW_BIG_CACHE_SLOTS, big = LW_BIG_CACHE_SLOTS;
  for (unsigned i = 0; i < reg.ncached; i++) {
    size_t sz = reg.cache[i].size;
    if (sz >= map_size && (fit == LW_BIG_CACHE_SLOTS || sz < reg.cache[fit].size)) fit = i;
    if (big == LW_BIG_CACHE_SLOTS || sz > reg.cache[big].size) big = i;
  }
  if (fit < LW_BIG_CACHE_SLOTS) {
    cached_map_t *e = &reg.cache[fit];
    if (e->size - map_size >= LW_LARGE_DEFAULT) { /* split: the tail stays */
      cached_map_t head = {e->map, map_size, e->stamp};
      e->map += map_size;
      e->size -= map_size;
      reg.cached_bytes -= map_size;
      return head;
    }
    return cache_remove(fit);
  }
  return big < LW_BIG_CACHE_SLOTS ? cache_remove(big) : none;
}

/* Moves the mappings that must leave the cache (too old, or over the
 * limits once `incoming` bytes come in) to out[]; returns how many. */
static unsigned cache_evict(size_t incoming, cached_map_t *out) {
  size_t limit = cache_limit();
  unsigned n = 0;
  for (unsigned i = 0; i < reg.ncached;)
    if (reg.clock - reg.cache[i].stamp > LW_BIG_CACHE_AGE)
      out[n++] = cache_remove(i);
    else
      i++;
  while (reg.ncached && (reg.ncached == LW_BIG_CACHE_SLOTS || reg.cached_bytes + incoming > limit)) {
    unsigned oldest = 0;
    for (unsigned i = 1; i < reg.ncached; i++)
      if (reg.cache[i].stamp < reg.cache[oldest].stamp) oldest = i;
    out[n++] = cache_remove(oldest);
  }
  return n;
}

static void unmap_all(cached_map_t *e, unsigned n) {
  for (unsigned i = 0; i < n; i++) _lw_os_unmap(e[i].map, e[i].size);
}

/* Offers a freed mapping to the cache; unmaps what does not stay. */
static void cache_put(uint8_t *map, size_t size) {
  cached_map_t out[LW_BIG_CACHE_SLOTS + 1];
  unsigned n = 0;
  pthread_mutex_lock(&reg.lock);
  reg.clock++;
  if (size <= cache_limit()) {
    n = cache_evict(size, out);
    reg.cache[reg.ncached++] = (cached_map_t){map, size, reg.clock};
    reg.cached_bytes += size;
  } else {
    out[n++] = (cached_map_t){map, size, 0};
  }
  pthread_mutex_unlock(&reg.lock);
  unmap_all(out, n);
}

/* lw_trim: unmaps every cached mapping; returns the bytes. */
size_t _lw_big_trim(void) {
  cached_map_t out[LW_BIG_CACHE_SLOTS];
  pthread_mutex_lock(&reg.lock);
  size_t bytes = reg.cached_bytes;
  unsigned n = 0;
  while (reg.ncached) out[n++] = cache_remove(0);
  pthread_mutex_unlock(&reg.lock);
  unmap_all(out, n);
  return bytes;
}

void _lw_big_atfork(int phase) { lw_mutex_atfork(&reg.lock, phase); }

static inline lw_large_t *large_of(const void *p) { return (lw_large_t *)((uint8_t *)p - sizeof(lw_large_t)); }
static inline uint32_t large_tag(const void *p) {
  uint64_t x = ((uintptr_t)p >> 4) ^ _lw_g.secret;
  x *= 0x9e3779b97f4a7c15ull;
  return (uint32_t)(x >> 32) | 1;
}

/* The header of a large block, after checking that p really is one
 * (and, with remove, taking it out of the registry). */
static lw_large_t *large_checked(const void *p, bool remove) {
  if (lw_unlikely(!(remove ? reg_remove(p) : reg_contains(p))))
    _lw_report("invalid free (not allocated by lwmalloc, or already freed) of pointer", p);
  lw_large_t *l = large_of(p);
  if (lw_unlikely((uint32_t)(l->tag_offset >> 32) != large_tag(p)))
    _lw_report("corrupted large block header (buffer underflow?) at pointer", p);
  return l;
}

/* A mapping of at least map_size bytes (its size in *map_size_out): a
 * cached one, or a new one. *dirty says whether its bytes may be non-zero. */
static uint8_t *map_for(size_t map_size, size_t *map_size_out, bool *dirty) {
  *map_size_out = map_size;
  cached_map_t out[LW_BIG_CACHE_SLOTS + 1];
  pthread_mutex_lock(&reg.lock);
  reg.clock++;
  cached_map_t e = cache_take(map_size);
  unsigned n = cache_evict(0, out);
  pthread_mutex_unlock(&reg.lock);
  unmap_all(out, n);
  *dirty = e.map != NULL;
  if (e.map) {
    if (e.size >= map_size) {
      *map_size_out = e.size;
      return e.map;
    }
    uint8_t *m = _lw_os_remap(e.map, e.size, map_size);
    if (m) return m;
    _lw_os_unmap(e.map, e.size);
  }
  *dirty = false;
  uint8_t *m = _lw_os_map(map_size);
  if (m) _lw_os_name(m, map_size, "lwmalloc:large");
  return m;
}

void *_lw_big_alloc(size_t size, size_t align, bool zero) {
  if (align < LW_ALIGN) align = LW_ALIGN;
  size_t extra = sizeof(lw_large_t) + (align > LW_ALIGN ? align : 0);
  if (size > SIZE_MAX / 2 - extra - _lw_g.os_page) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map_size = lw_align_up(size + extra, _lw_g.os_page);
  bool dirty;
  uint8_t *map = map_for(map_size, &map_size, &dirty);
  if (!map) return NULL;
  uint8_t *p = (uint8_t *)lw_align_up((uintptr_t)map + sizeof(lw_large_t), align);
  lw_large_t *l = large_of(p);
  size_t offset = (size_t)(p - map);
  l->map_size = map_size;
  l->tag_offset = ((uint64_t)large_tag(p) << 32) | offset;
  if (!reg_add(p)) {
    _lw_os_unmap(map, map_size);
    errno = ENOMEM;
    return NULL;
  }
  if (zero && dirty) memset(p, 0, size); /* fresh mappings are zero already */
  atomic_fetch_add_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  return p;
}

void _lw_big_free(void *p) {
  lw_large_t *l = large_checked(p, true);
  size_t offset = (uint32_t)l->tag_offset, map_size = l->map_size;
  atomic_fetch_sub_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  cache_put((uint8_t *)p - offset, map_size);
}

size_t _lw_big_usable(const void *p) {
  const lw_large_t *l = large_of(p);
  return l->map_size - (uint32_t)l->tag_offset;
}

/* Resizes in place or by mremap; NULL (errno ENOMEM) leaves p intact. */
void *_lw_big_realloc(void *p, size_t size) {
  lw_large_t *l = large_checked(p, false);
  size_t offset = (uint32_t)l->tag_offset, old_map = l->map_size;
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map_size = lw_align_up(size + offset, _lw_g.os_page);
  if (map_size == old_map) return p;
  int saved = errno;
  uint8_t *map = _lw_os_remap((uint8_t *)p - offset, old_map, map_size);
  if (!map) { /* e.g. a range joined from two mappings: mremap cannot move it */
    if (map_size < old_map) return p; /* keep it whole */
    void *q = _lw_big_alloc(size, LW_ALIGN, false);
    if (!q) return NULL;
    errno = saved;
    memcpy(q, p, old_map - offset);
    _lw_big_free(p);
    return q;
  }
  uint8_t *q = map + offset;
  if (q != p) { /* moved: re-register (removing cannot fail, adding may grow) */
    reg_remove(p);
    if (!reg_add(q)) _lw_report("cannot register moved large block", q);
  }
  lw_large_t *nl = large_of(q);
  nl->map_size = map_size;
  nl->tag_offset = ((uint64_t)large_tag(q) << 32) | offset;
  atomic_fetch_add_explicit(&_lw_big_live, map_size - old_map, memory_order_relaxed);
  return q;
}
