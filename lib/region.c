/* Embedded mode: the medium-chunk allocator (compact headers, deferred
 * coalescing) inside one caller-given region, for firmware without mmap.
 * The region starts with its control structure; it never grows, and
 * malloc returns NULL (ENOMEM) when nothing fits after merging all. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

#define LW_REGION_MAGIC 0x6c77726567696f6eull /* "lwregion" */

struct lw_region_s {
  uint64_t magic;
  lw_heap_t heap;
};

static lw_region_t *region_ok(lw_region_t *r) {
  if (!r || r->magic != LW_REGION_MAGIC) _lw_report("not an lwmalloc region:", r);
  return r;
}

LW_API lw_region_t *lw_region_init(void *mem, size_t size) {
  lw_ensure_init();
  uintptr_t start = lw_align_up((uintptr_t)mem, LW_ALIGN);
  size_t ctl = lw_align_up(sizeof(lw_region_t), LW_ALIGN);
  if (!mem || size < (start - (uintptr_t)mem) + ctl + 4 * LW_CHUNK_MIN) {
    errno = EINVAL;
    return NULL;
  }
  lw_region_t *r = (lw_region_t *)start;
  r->magic = LW_REGION_MAGIC;
  _lw_heap_init(&r->heap, 0);
  _lw_heap_add_span(&r->heap, (uint8_t *)r + ctl, size - (start - (uintptr_t)mem) - ctl);
  return r;
}

LW_API void *lw_region_malloc(lw_region_t *r, size_t size) {
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  return _lw_heap_alloc(&region_ok(r)->heap, size, LW_ALIGN);
}

LW_API void *lw_region_memalign(lw_region_t *r, size_t alignment, size_t size) {
  if (!lw_is_pow2(alignment) || alignment > ((size_t)1 << 30) || size > SIZE_MAX / 2) {
    errno = !lw_is_pow2(alignment) ? EINVAL : ENOMEM;
    return NULL;
  }
  return _lw_heap_alloc(&region_ok(r)->heap, size, alignment < LW_ALIGN ? LW_ALIGN : alignment);
}

LW_API void lw_region_free(lw_region_t *r, void *p) {
  if (p) _lw_heap_free(&region_ok(r)->heap, p);
}

LW_API size_t lw_region_usable_size(lw_region_t *r, const void *p) {
  region_ok(r);
  return p ? _lw_heap_usable(p) : 0;
}

LW_API void *lw_region_realloc(lw_region_t *r, void *p, size_t size) {
  if (!p) return lw_region_malloc(r, size);
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  if (_lw_heap_resize_in_place(&region_ok(r)->heap, p, size)) return p;
  void *q = _lw_heap_alloc(&r->heap, size, LW_ALIGN);
  if (!q) return NULL;
  size_t old = _lw_heap_usable(p);
  memcpy(q, p, old < size ? old : size);
  _lw_heap_free(&r->heap, p);
  return q;
}

LW_API int lw_region_check(lw_region_t *r) { return _lw_heap_check(&region_ok(r)->heap); }
