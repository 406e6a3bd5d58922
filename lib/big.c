/* Large blocks: one mapping each, header in front (types.h, lw_large_t).
 * realloc grows or shrinks them with mremap, so a growing buffer is never
 * copied by us. They are in no segment, which is how free() knows them. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

_Atomic uint64_t _lw_big_live;

static inline lw_large_t *large_of(const void *p) { return (lw_large_t *)((uint8_t *)p - sizeof(lw_large_t)); }
static inline uint32_t large_tag(const void *p) {
  uint64_t x = ((uintptr_t)p >> 4) ^ _lw_g.secret;
  x *= 0x9e3779b97f4a7c15ull;
  return (uint32_t)(x >> 32) | 1;
}

/* The header of a large block, after checking that p really is one. */
static lw_large_t *large_checked(const void *p) {
  lw_large_t *l = large_of(p);
  if (lw_unlikely(((uintptr_t)p & (LW_ALIGN - 1)) || (uint32_t)(l->tag_offset >> 32) != large_tag(p)))
    _lw_report("invalid free (not allocated by lwmalloc, or already freed) of pointer", p);
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
  atomic_fetch_add_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  return p;
}

void _lw_big_free(void *p) {
  lw_large_t *l = large_checked(p);
  size_t offset = (uint32_t)l->tag_offset, map_size = l->map_size;
  l->tag_offset = 0; /* a second free of p now fails the tag check */
  atomic_fetch_sub_explicit(&_lw_big_live, map_size - offset, memory_order_relaxed);
  _lw_os_unmap((uint8_t *)p - offset, map_size);
}

size_t _lw_big_usable(const void *p) {
  const lw_large_t *l = large_of(p);
  return l->map_size - (uint32_t)l->tag_offset;
}

/* Resizes in place or by mremap; NULL (errno ENOMEM) leaves p intact. */
void *_lw_big_realloc(void *p, size_t size) {
  lw_large_t *l = large_checked(p);
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
  lw_large_t *nl = large_of(q);
  nl->map_size = map_size;
  nl->tag_offset = ((uint64_t)large_tag(q) << 32) | offset;
  atomic_fetch_add_explicit(&_lw_big_live, map_size - old_map, memory_order_relaxed);
  return q;
}
