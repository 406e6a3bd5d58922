/* Large blocks: one mapping each, header in front (types.h, lw_large_t).
 * realloc grows or shrinks them with mremap, so a growing buffer is never
 * copied by us. They are in no segment, which is how free() knows them.
 * A registry (a small open-addressing set of their addresses) makes a
 * double free or a free of a stranger's pointer a clear report instead of
 * a read of unmapped memory; it costs one short locked probe next to an
 * mmap/munmap system call. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

_Atomic uint64_t _lw_big_live;

/* ---- registry of live large blocks ---------------------------------------- */
static struct {
  pthread_mutex_t lock;
  uintptr_t *slot; /* 0 = empty; linear probing, backward-shift deletion */
  size_t cap, count;
} reg = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

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

void _lw_big_atfork(int phase) {
  if (phase == 0)
    pthread_mutex_lock(&reg.lock);
  else if (phase == 1)
    pthread_mutex_unlock(&reg.lock);
  else
    pthread_mutex_init(&reg.lock, NULL);
}

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

void *_lw_big_alloc(size_t size, size_t align, bool zero) {
  (void)zero; /* fresh mappings are zero-filled */
  if (align < LW_ALIGN) align = LW_ALIGN;
  size_t extra = sizeof(lw_large_t) + (align > _lw_g.os_page ? align : (align > LW_ALIGN ? align : 0));
  if (size > SIZE_MAX / 2 - extra - _lw_g.os_page) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map_size = lw_align_up(size + extra, _lw_g.os_page);
  uint8_t *map = _lw_os_map(map_size);
  if (!map) return NULL;
  _lw_os_name(map, map_size, "lwmalloc:large");
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
  atomic_fetch_add_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  return p;
}

void _lw_big_free(void *p) {
  lw_large_t *l = large_checked(p, true);
  size_t offset = (uint32_t)l->tag_offset, map_size = l->map_size;
  atomic_fetch_sub_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  _lw_os_unmap((uint8_t *)p - offset, map_size);
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
  uint8_t *map = _lw_os_remap((uint8_t *)p - offset, old_map, map_size);
  if (!map) return NULL;
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
