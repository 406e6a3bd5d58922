/* Calls that re-enter the allocator from a signal handler.
 *
 * POSIX does not make malloc async-signal-safe, but programs call it from
 * handlers anyway (and lwtrace's tests do, on purpose). A handler that
 * interrupts this thread inside one of the allocator's locked sections
 * would deadlock on the lock, or, in a single-threaded process where the
 * medium heap skips its lock, corrupt the heap. So every locked section
 * counts itself in _lw_lock_depth (lw_lock, heap_lock), and a call that
 * finds the count non-zero takes no lock:
 *   - allocations that would lock get a mapping of their own, kept in a
 *     small lock-free table (they are in no segment and not in big.c's
 *     registry, whose lock may be the one held);
 *   - frees that would lock are deferred: parked on a lock-free stack
 *     (medium chunks per heap, large blocks in big.c) and done by the next
 *     call that takes the lock.
 * The lock-free fast paths themselves are not re-entrant (a handler that
 * interrupts a pop of the same free list can still break it, as with
 * glibc's tcache); the windows there are a few instructions long, the
 * locked sections are the long ones. */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

__thread unsigned _lw_lock_depth __attribute__((tls_model("initial-exec")));

#define LW_SIGNAL_BLOCKS 64 /* live at once; more fail with ENOMEM */

static _Atomic(uintptr_t) blocks[LW_SIGNAL_BLOCKS];
static _Atomic unsigned nblocks; /* non-zero slots in blocks[] (0: nothing to look up) */

void *_lw_signal_alloc(size_t size, size_t align) {
  if (align < LW_ALIGN) align = LW_ALIGN;
  size_t map_size = lw_large_map_size(size, align);
  uint8_t *map = map_size ? _lw_os_map(map_size) : NULL; /* zeroed: calloc needs nothing more */
  if (!map) {
    errno = ENOMEM;
    return NULL;
  }
  uint8_t *p = (uint8_t *)lw_align_up((uintptr_t)map + sizeof(lw_large_t), align);
  lw_large_t *l = (lw_large_t *)(p - sizeof *l); /* read by _lw_big_usable */
  l->map_size = map_size | LW_LARGE_OWN_MAP;
  l->tag_offset = (uint64_t)(p - map);
  for (unsigned i = 0; i < LW_SIGNAL_BLOCKS; i++) {
    uintptr_t empty = 0;
    if (atomic_compare_exchange_strong(&blocks[i], &empty, (uintptr_t)p)) {
      atomic_fetch_add(&nblocks, 1);
      return p;
    }
  }
  _lw_os_unmap(map, map_size);
  errno = ENOMEM;
  return NULL;
}

bool _lw_signal_owns(const void *p) {
  if (lw_likely(atomic_load_explicit(&nblocks, memory_order_relaxed) == 0)) return false;
  for (unsigned i = 0; i < LW_SIGNAL_BLOCKS; i++)
    if (atomic_load_explicit(&blocks[i], memory_order_acquire) == (uintptr_t)p) return true;
  return false;
}

void _lw_signal_defer(_Atomic(uintptr_t) *stack, void *p) {
  uintptr_t top = atomic_load_explicit(stack, memory_order_relaxed);
  do *(uintptr_t *)p = top;
  while (!atomic_compare_exchange_weak_explicit(stack, &top, (uintptr_t)p, memory_order_release,
                                                memory_order_relaxed));
}

bool _lw_signal_free(void *p) {
  if (lw_likely(atomic_load_explicit(&nblocks, memory_order_relaxed) == 0)) return false;
  for (unsigned i = 0; i < LW_SIGNAL_BLOCKS; i++) {
    uintptr_t mine = (uintptr_t)p;
    if (atomic_load_explicit(&blocks[i], memory_order_relaxed) == mine &&
        atomic_compare_exchange_strong(&blocks[i], &mine, 0)) {
      atomic_fetch_sub(&nblocks, 1);
      const lw_large_t *l = (const lw_large_t *)p - 1;
      size_t offset = (size_t)l->tag_offset;
      _lw_os_unmap((uint8_t *)p - offset, l->map_size & ~LW_LARGE_OWN_MAP);
      return true;
    }
  }
  return false;
}
