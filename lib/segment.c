/* Segments: 4 MiB-aligned spans of address space, and the bitmap that says
 * which 4 MiB-aligned addresses are segments of ours. free() uses it to
 * tell pool and medium pointers (in a segment) from large ones (not). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

/* One bit per 4 MiB of the 48-bit address space: 8 MiB of reserved,
 * lazily touched address space (a few KiB resident in practice). */
uint64_t *_lw_segmap;

int _lw_segmap_init(void) {
  size_t bytes = ((size_t)1 << (LW_VA_BITS - LW_SEG_SHIFT)) / 8;
  _lw_segmap = _lw_os_reserve(bytes);
  if (!_lw_segmap) return -1;
  _lw_os_name(_lw_segmap, bytes, "lwmalloc:segmap");
  return 0;
}

static void segmap_set(lw_segment_t *seg, bool on) {
  uintptr_t idx = (uintptr_t)seg >> LW_SEG_SHIFT;
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (on)
    __atomic_fetch_or(&_lw_segmap[idx >> 6], bit, __ATOMIC_RELEASE);
  else
    __atomic_fetch_and(&_lw_segmap[idx >> 6], ~bit, __ATOMIC_RELEASE);
}

lw_segment_t *_lw_segment_alloc(uint32_t kind) {
  _lw_big_make_room(LW_SEG_SIZE);
  lw_segment_t *seg = _lw_os_map_aligned(LW_SEG_SIZE, LW_SEG_SIZE);
  if (!seg) return NULL;
  if ((uintptr_t)seg >> LW_VA_BITS) { /* above what the map covers: give up */
    _lw_os_unmap(seg, LW_SEG_SIZE);
    errno = ENOMEM;
    return NULL;
  }
  _lw_os_name(seg, LW_SEG_SIZE, kind == LW_SEG_POOL ? "lwmalloc:pool" : "lwmalloc:medium");
  seg->kind = kind;
  seg->magic = LW_SEG_MAGIC;
  segmap_set(seg, true);
  return seg;
}

void _lw_segment_free(lw_segment_t *seg) {
  segmap_set(seg, false);
  _lw_os_unmap(seg, LW_SEG_SIZE);
}
