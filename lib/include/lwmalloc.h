/* lwmalloc: a lightweight allocator for Linux IoT and edge devices.
 *
 * The shared library (liblwmalloc.so) also defines the standard names
 * (malloc, free, posix_memalign, malloc_usable_size, ...) so that
 * `LD_PRELOAD=liblwmalloc.so app` replaces the C library's allocator.
 * The static library (liblwmalloc.a) defines only the lw_ names below,
 * unless it is linked with lib/override.c (target lwmalloc-static-override).
 */
#ifndef LWMALLOC_H
#define LWMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LW_VERSION_MAJOR 0
#define LW_VERSION_MINOR 1
#define LW_VERSION "0.1.0"

#if defined(__GNUC__)
#define LW_API __attribute__((visibility("default")))
#define LW_ATTR_MALLOC __attribute__((malloc))
#define LW_ATTR_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define LW_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#else
#define LW_API
#define LW_ATTR_MALLOC
#define LW_ATTR_ALLOC_SIZE(n)
#define LW_ATTR_ALLOC_SIZE2(n, m)
#endif

/* ---- the malloc family, C/POSIX semantics ---------------------------- */
LW_API void *lw_malloc(size_t size) LW_ATTR_MALLOC LW_ATTR_ALLOC_SIZE(1);
LW_API void *lw_calloc(size_t count, size_t size) LW_ATTR_MALLOC LW_ATTR_ALLOC_SIZE2(1, 2);
LW_API void *lw_realloc(void *p, size_t size) LW_ATTR_ALLOC_SIZE(2);
LW_API void *lw_reallocarray(void *p, size_t count, size_t size) LW_ATTR_ALLOC_SIZE2(2, 3);
LW_API void lw_free(void *p);
LW_API void lw_free_sized(void *p, size_t size);
LW_API void lw_free_aligned_sized(void *p, size_t alignment, size_t size);
LW_API void *lw_memalign(size_t alignment, size_t size) LW_ATTR_MALLOC LW_ATTR_ALLOC_SIZE(2);
LW_API int lw_posix_memalign(void **out, size_t alignment, size_t size);
LW_API void *lw_aligned_alloc(size_t alignment, size_t size) LW_ATTR_MALLOC LW_ATTR_ALLOC_SIZE(2);
LW_API void *lw_valloc(size_t size) LW_ATTR_MALLOC LW_ATTR_ALLOC_SIZE(1);
LW_API void *lw_pvalloc(size_t size) LW_ATTR_MALLOC;
LW_API size_t lw_usable_size(const void *p);
/* Give every free page that can go back to the OS back now; returns 1 if any was released. */
LW_API int lw_trim(size_t pad);

/* ---- statistics --------------------------------------------------------
 * A snapshot; safe to call from any thread at any time (it takes no lock
 * of the allocation fast path, so counters of other threads may be a few
 * operations stale). Fields marked "monotonic" never decrease. */
#define LW_MAX_CLASSES 64

typedef struct lw_class_stats_s {
  uint32_t slot_size;   /* bytes per slot of this small class */
  uint64_t slots_used;  /* slots handed out and not yet freed */
  uint64_t slots_total; /* slots in the pool pages that this class holds */
  uint64_t pages;       /* pool pages assigned to this class */
} lw_class_stats_t;

typedef struct lw_stats_s {
  uint64_t live_bytes;       /* usable bytes of allocated blocks (small+medium+large) */
  uint64_t small_bytes;      /* ... of which in small pool slots */
  uint64_t medium_bytes;     /* ... of which in medium chunks */
  uint64_t large_bytes;      /* ... of which in large blocks (arena page runs, or own mappings) */
  uint64_t mapped_bytes;     /* address space mapped from the OS for blocks (not the 8 MiB segment-map reservation) */
  uint64_t committed_bytes;  /* mapped_bytes less the ranges released with madvise */
  uint64_t unmerged_bytes;   /* freed medium bytes waiting for deferred coalescing */
  uint64_t free_bytes;       /* merged free medium bytes */
  uint64_t coalesce_runs;    /* monotonic: deferred-coalescing runs */
  uint64_t coalesced_chunks; /* monotonic: chunks processed by those runs */
  uint64_t os_maps;          /* monotonic: mmap calls */
  uint64_t os_unmaps;        /* monotonic: munmap calls */
  uint64_t os_decommits;     /* monotonic: madvise(DONTNEED) calls (and fresh maps over large arena pages) */
  uint64_t os_moves;         /* monotonic: free large pages moved into a new block (mremap) */
  uint64_t threads;          /* thread caches in use */
  uint32_t nclasses;         /* entries used in classes[] */
  lw_class_stats_t classes[LW_MAX_CLASSES];
} lw_stats_t;

LW_API void lw_stats(lw_stats_t *out);

/* Output callback: receives NUL-terminated text; never called with a lock held. */
typedef void lw_output_fn(const char *text, void *arg);
/* Prints the statistics through `out` (stderr when out is NULL), without allocating. */
LW_API void lw_stats_print(lw_output_fn *out, void *arg);

/* Walks every internal invariant (the calling thread's pools, every pool
 * segment, every medium heap); returns 0 when all hold. A broken one is
 * printed by name ("lwmalloc: invariant broken: ...") and the process
 * aborts. Expensive: for tests and debugging (LW_DEBUG=3 runs it after
 * every call). */
LW_API int lw_check(void);

/* ---- embedded mode -----------------------------------------------------
 * The medium-chunk allocator (compact headers + deferred coalescing) run
 * inside one caller-given region, for firmware without mmap. The region's
 * first ~4.3 KiB hold the control structure (bins, quick lists, a mutex),
 * so calls on one region from several threads are safe. Every block has
 * the 8-byte header (no pools here); allocation returns NULL with errno
 * ENOMEM when nothing fits even after merging every parked free chunk.
 * lw_region_init returns NULL (EINVAL) for a region too small to use. */
typedef struct lw_region_s lw_region_t;
LW_API lw_region_t *lw_region_init(void *mem, size_t size);
LW_API void *lw_region_malloc(lw_region_t *r, size_t size);
LW_API void *lw_region_memalign(lw_region_t *r, size_t alignment, size_t size);
LW_API void *lw_region_realloc(lw_region_t *r, void *p, size_t size);
LW_API void lw_region_free(lw_region_t *r, void *p);
LW_API size_t lw_region_usable_size(lw_region_t *r, const void *p);
LW_API int lw_region_check(lw_region_t *r);

#ifdef __cplusplus
}
#endif
#endif /* LWMALLOC_H */
