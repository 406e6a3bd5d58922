/* The OS boundary: the only file that calls mmap, munmap, madvise, mremap,
 * mprotect and prctl (and reads the clock for the recent peaks). Contract: sizes are multiples of the OS page size
 * (read at run time: 4, 16 or 64 KiB); failures return NULL/-1 with errno
 * set (ENOMEM for exhaustion); every call emits its OS_* event and updates
 * counters. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#include "internal.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7; older C libraries lack the name */
#endif

_Atomic uint64_t _lw_os_mapped, _lw_os_maps, _lw_os_unmaps, _lw_os_decommits, _lw_os_decommitted, _lw_os_moves;

static void *os_mmap(void *hint, size_t size) {
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    errno = ENOMEM;
    return NULL;
  }
  atomic_fetch_add_explicit(&_lw_os_maps, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&_lw_os_mapped, size, memory_order_relaxed);
  LW_EVENT(OS_MAP, p, size, 0);
  return p;
}

void *_lw_os_map(size_t size) { return os_mmap(NULL, size); }

/* Address space for the allocator's own index (the segment map): mapped
 * like the rest, but not counted in mapped_bytes, which speaks of memory
 * that holds blocks; only the few pages it touches become resident. */
void *_lw_os_reserve(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Maps `size` bytes aligned to `align` (a power of two above the page size)
 * by over-mapping and trimming both ends. */
void *_lw_os_map_aligned(size_t size, size_t align) {
  void *p = os_mmap(NULL, size);
  if (!p || ((uintptr_t)p & (align - 1)) == 0) return p;
  _lw_os_unmap(p, size);
  uint8_t *raw = os_mmap(NULL, size + align);
  if (!raw) return NULL;
  uint8_t *aligned = (uint8_t *)lw_align_up((uintptr_t)raw, align);
  size_t head = (size_t)(aligned - raw), tail = align - head;
  if (head) _lw_os_unmap(raw, head);
  if (tail) _lw_os_unmap(aligned + size, tail);
  return aligned;
}

/* Large arenas (big.c) reserve address space without access, then open it
 * front to back as blocks reach further (the way glibc grows its arena
 * heaps): only the opened part is charged to the process and counted as
 * mapped, and it stays one kernel mapping. */
void *_lw_os_reserve_aligned(size_t size, size_t align) {
  uint8_t *raw = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uint8_t *aligned = (uint8_t *)lw_align_up((uintptr_t)raw, align);
  size_t head = (size_t)(aligned - raw), tail = align - head;
  if (head) munmap(raw, head);
  if (tail) munmap(aligned + size, tail);
  return aligned;
}

bool _lw_os_open(void *addr, size_t size) {
  if (mprotect(addr, size, PROT_READ | PROT_WRITE) != 0) return false;
  atomic_fetch_add_explicit(&_lw_os_maps, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&_lw_os_mapped, size, memory_order_relaxed);
  LW_EVENT(OS_MAP, addr, size, 0);
  return true;
}

/* Unmaps a reservation of which `opened` bytes were opened. */
void _lw_os_release(void *addr, size_t size, size_t opened) {
  if (munmap(addr, size) != 0) return;
  atomic_fetch_add_explicit(&_lw_os_unmaps, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&_lw_os_mapped, opened, memory_order_relaxed);
  LW_EVENT(OS_UNMAP, addr, opened, 0);
}

int _lw_os_unmap(void *addr, size_t size) {
  int rc = munmap(addr, size);
  if (rc == 0) {
    atomic_fetch_add_explicit(&_lw_os_unmaps, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&_lw_os_mapped, size, memory_order_relaxed);
    LW_EVENT(OS_UNMAP, addr, size, 0);
  }
  return rc;
}

/* Gives the pages back; the range stays mapped and reads as zeros later. */
void _lw_os_decommit(void *addr, size_t size) {
  if (madvise(addr, size, MADV_DONTNEED) == 0) {
    atomic_fetch_add_explicit(&_lw_os_decommits, 1, memory_order_relaxed);
    LW_EVENT(OS_DECOMMIT, addr, size, 0);
  }
}

/* Maps [addr, addr + size) afresh over a mapping of ours, giving its
 * pages back; false if the kernel refuses (the map count limit). Unlike
 * madvise it also ends the separate kernel mappings that _lw_os_move
 * leaves: a fresh anonymous mapping merges with the arena's around it. */
static bool os_map_over(void *addr, size_t size) {
  int saved = errno;
  void *p = mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  errno = saved;
  return p != MAP_FAILED;
}

/* _lw_os_decommit for the large arenas, where pages may have been moved. */
void _lw_os_decommit_fresh(void *addr, size_t size) {
  if (!os_map_over(addr, size)) return _lw_os_decommit(addr, size);
  atomic_fetch_add_explicit(&_lw_os_decommits, 1, memory_order_relaxed);
  LW_EVENT(OS_DECOMMIT, addr, size, 0);
}

/* Moves the pages of [from, from + size) to `to` (both inside the large
 * arenas), leaving `from` mapped and empty (it reads as zeros later): a
 * large block gets resident pages without faulting fresh ones in. The
 * pieces moved become kernel mappings of their own (their page offsets
 * are those of where they came from) until given back by
 * _lw_os_decommit_fresh; `from` is mapped afresh at once for the same
 * reason. Needs Linux 5.7+ (MREMAP_DONTUNMAP); false where the kernel
 * refuses (older kernels, a range across two kernel mappings, the map
 * count limit), and the caller lets the pages fault instead. */
bool _lw_os_move(void *to, void *from, size_t size) {
  static _Atomic bool unsupported;
  if (atomic_load_explicit(&unsupported, memory_order_relaxed)) return false;
  int saved = errno;
  void *p = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
  if (p == MAP_FAILED && errno == EINVAL) atomic_store_explicit(&unsupported, true, memory_order_relaxed);
  errno = saved;
  if (p == MAP_FAILED) return false;
  os_map_over(from, size);
  atomic_fetch_add_explicit(&_lw_os_moves, 1, memory_order_relaxed);
  LW_EVENT(OS_DECOMMIT, from, size, to);
  return true;
}

/* Grows or shrinks a large block's mapping, moving it if needed. */
void *_lw_os_remap(void *addr, size_t old_size, size_t new_size) {
  void *p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) {
    errno = ENOMEM;
    return NULL;
  }
  atomic_fetch_add_explicit(&_lw_os_mapped, new_size - old_size, memory_order_relaxed);
  LW_EVENT(OS_REMAP, addr, p, new_size);
  return p;
}

/* Names the mapping in /proc/PID/maps ("[anon:lwmalloc:pool]") on kernels
 * that support it (5.17+); silently ignored elsewhere. */
void _lw_os_name(void *addr, size_t size, const char *name) {
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
  int saved = errno;
  (void)prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr, size, (unsigned long)name);
  errno = saved;
}

size_t _lw_peak_update(lw_peak_t *p, size_t value) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  uint64_t second = (uint64_t)now.tv_sec;
  if (second != p->second) {
    p->prev_peak = second == p->second + 1 ? p->peak : 0;
    p->peak = 0;
    p->second = second;
  }
  if (value > p->peak) p->peak = value;
  return p->peak > p->prev_peak ? p->peak : p->prev_peak;
}
