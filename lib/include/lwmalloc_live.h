/* lwmalloc live statistics page: the contract between the allocator and
 * `lwview --pid PID`.
 *
 * With LW_LIVE=1 in its environment, a process using lwmalloc creates the
 * shared-memory file /dev/shm/lwmalloc.<pid> (LW_LIVE_PATH_PREFIX + pid)
 * holding one lw_live_page_t, and a small thread copies
 * lw_stats() into it every LW_LIVE_INTERVAL_MS. The file is removed at
 * normal exit; after fork the child writes its own page.
 *
 * Every field is a uint64_t so that readers and the writer can copy the
 * page word by word with relaxed atomic loads/stores. Consistency comes from
 * a seqlock, lock-free for readers:
 *
 *   writer:  seq = s+1 (odd: copy in progress); release fence;
 *            store every field; seq = s+2 (release)
 *   reader:  s0 = seq (acquire); copy every field; acquire fence;
 *            s1 = seq; the copy is consistent iff s0 == s1 and s0 is even,
 *            else retry.
 *
 * Layout (all little/native-endian uint64_t words):
 *
 *   WORD  FIELD         DESCRIPTION
 *      0  magic         LW_LIVE_MAGIC ("LWLIVE01" as a little-endian u64)
 *      1  version       LW_LIVE_VERSION; readers refuse other major versions
 *      2  size          sizeof(lw_live_page_t) as written by the process
 *      3  seq           seqlock counter (see above)
 *      4  pid           the writing process
 *      5  start_ns      CLOCK_REALTIME ns when the page was created
 *      6  update_ns     CLOCK_REALTIME ns of the last completed update
 *      7  updates       number of completed updates (monotonic)
 *      8  interval_ms   update period
 *      9  ...          the lw_stats_t fields, same names and meaning
 *     then nclasses and LW_MAX_CLASSES lw_live_class_t entries
 *
 * Version rule: fields are only ever appended; `size` tells a reader how
 * much the writer filled in. */
#ifndef LWMALLOC_LIVE_H
#define LWMALLOC_LIVE_H

#include <stdint.h>

#include "lwmalloc.h"

#define LW_LIVE_MAGIC 0x31304556494c574cULL /* "LWLIVE01" little-endian */
#define LW_LIVE_VERSION 1
#define LW_LIVE_INTERVAL_MS 100
#define LW_LIVE_PATH_PREFIX "/dev/shm/lwmalloc." /* + decimal pid */

typedef struct lw_live_class_s {
  uint64_t slot_size;   /* bytes per slot */
  uint64_t slots_used;  /* slots handed out and not freed */
  uint64_t slots_total; /* slots in this class's pool pages */
  uint64_t pages;       /* pool pages of this class */
} lw_live_class_t;

typedef struct lw_live_page_s {
  uint64_t magic;
  uint64_t version;
  uint64_t size;
  uint64_t seq;
  uint64_t pid;
  uint64_t start_ns;
  uint64_t update_ns;
  uint64_t updates;
  uint64_t interval_ms;
  /* copied from lw_stats_t */
  uint64_t live_bytes;
  uint64_t small_bytes;
  uint64_t medium_bytes;
  uint64_t large_bytes;
  uint64_t mapped_bytes;
  uint64_t committed_bytes;
  uint64_t unmerged_bytes;
  uint64_t free_bytes;
  uint64_t coalesce_runs;
  uint64_t coalesced_chunks;
  uint64_t os_maps;
  uint64_t os_unmaps;
  uint64_t os_decommits;
  uint64_t threads;
  uint64_t nclasses;
  lw_live_class_t classes[LW_MAX_CLASSES];
} lw_live_page_t;

#define LW_LIVE_WORDS (sizeof(lw_live_page_t) / sizeof(uint64_t))
_Static_assert(sizeof(lw_live_page_t) % sizeof(uint64_t) == 0, "page is whole words");
_Static_assert(sizeof(lw_live_page_t) <= 4096, "page fits one page");
_Static_assert(offsetof(lw_live_page_t, seq) == 3 * sizeof(uint64_t), "seq is word 3");

/* Reader side (header-only so that a reader needs no library): copies a
 * consistent snapshot of `page` into `out`. Returns 0 on success, -1 if the
 * writer kept the page busy for `tries` attempts. */
static inline int lw_live_read(const volatile lw_live_page_t *page, lw_live_page_t *out,
                               int tries) {
  const uint64_t *src = (const uint64_t *)(uintptr_t)page;
  uint64_t *dst = (uint64_t *)out;
  for (int t = 0; t < tries; t++) {
    uint64_t s0 = __atomic_load_n(&src[3], __ATOMIC_ACQUIRE);
    if (s0 & 1) continue; /* writer inside */
    for (unsigned i = 0; i < LW_LIVE_WORDS; i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t s1 = __atomic_load_n(&src[3], __ATOMIC_RELAXED);
    if (s0 == s1) return 0;
  }
  return -1;
}

#endif /* LWMALLOC_LIVE_H */
