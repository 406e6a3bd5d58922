/* lwmalloc: every structure and memory layout, drawn once.
 *
 * Glossary
 *   segment   4 MiB of address space, aligned to 4 MiB, from one mmap. Its
 *             first bytes are an lw_segment_t. Kinds: POOL (64 pool pages)
 *             or MEDIUM (one run of chunks). A bitmap (segment.c) marks
 *             which 4 MiB-aligned addresses are our segments, so free()
 *             finds a pointer's segment with a mask and one bit test.
 *   pool page 64 KiB of a POOL segment, cut into equal slots of one small
 *             size class. Slots carry no header: the page descriptor
 *             (lw_page_t, in the segment header) is found from the address.
 *   chunk     a block of a MEDIUM segment (or of an embedded region) with
 *             an 8-byte compact header in front (see lw_chunk_t below).
 *   large     a block of >= large threshold bytes: a page run of a large
 *             arena (big.c) or, past 32 MiB, its own mapping; in no
 *             segment; with a 16-byte header (lw_large_t).
 *   tld       per-thread data: the thread's current pool page per class.
 *   heap      a set of MEDIUM segments (or one region) with its free
 *             lists, quick lists (deferred, unmerged frees) and a lock.
 */
#ifndef LW_TYPES_H
#define LW_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- tunables that fix the layout (do not change casually) ------------ */
#define LW_SEG_SHIFT 22 /* 4 MiB segments */
#define LW_SEG_SIZE ((size_t)1 << LW_SEG_SHIFT)
#define LW_SEG_MASK (LW_SEG_SIZE - 1)
#define LW_PAGE_SHIFT 16 /* 64 KiB pool pages: >= every OS page size we support */
#define LW_PAGE_SIZE ((size_t)1 << LW_PAGE_SHIFT)
#define LW_PAGES_PER_SEG (LW_SEG_SIZE / LW_PAGE_SIZE) /* page 0 holds the header */
#define LW_VA_BITS 48 /* user address space the segment map covers */

/* Small classes: 8, 16..256 step 16, 256..512 step 32, 512..2048 step 64,
 * and 1040: at most 12.5% rounding waste above 256 bytes, 6% above 1 KiB.
 * 1040 is for 1 KiB plus a header: sqlite3's page-cache-sized 1032-byte
 * blocks took 1088-byte slots, 0.8 MB of its 1.2 MB waste at 100 k rows. */
#define LW_NSMALL 50   /* classes that malloc uses */
#define LW_SMALL_MAX 2048
/* Then 8 classes for aligned requests only (memalign and friends), 2.5 to
 * 8 KiB, whose slots are multiples of 512 B to 8 KiB and so aligned to
 * them: posix_memalign(4096, 5000) is a pool slot, not a cut from the
 * medium heap. Plain malloc never uses them: survivors pinning pool pages
 * of such sizes cost the fragmentation adversary 23 % of peak RSS. */
#define LW_NCLASSES 58
#define LW_CLASS_MAX 8192
#define LW_ALIGN 16        /* alignment of every block of >= 16 bytes */
#define LW_LARGE_DEFAULT ((size_t)128 << 10)
#define LW_WARMUP 8 /* first blocks of a class per thread come from the medium heap */
#define LW_LARGE_MAX_THRESHOLD ((size_t)1 << 20)

/* ---- pool pages ------------------------------------------------------- */
typedef struct lw_block_s { struct lw_block_s *next; } lw_block_t;

struct lw_tld_s;

/* Page states (lw_page_t.state, written by the owner or under the page
 * lock). A page is in exactly one place:
 *   FREE      on a global free-page stack (pool.c), owner == NULL
 *   ACTIVE    in its owner's avail list for its class
 *   FULL      owned, in no list, waiting for frees
 * The `remote` word is the remote-free stack with two flags in its low bits
 * (slots are 8-aligned): LW_REMOTE_FULL says "owner wants to hear of the
 * next remote free", LW_REMOTE_NOTIFIED says "queued on owner->notify".
 * Pushing a block and reading/changing the flags is one CAS, so a remote
 * freer touches the page after its push only when it took FULL->NOTIFIED,
 * and a NOTIFIED page cannot be released until its owner sees the notify. */
enum { LW_PAGE_FREE = 0, LW_PAGE_ACTIVE = 1, LW_PAGE_FULL = 2 };
#define LW_REMOTE_FULL ((uintptr_t)1)
#define LW_REMOTE_NOTIFIED ((uintptr_t)2)
#define LW_REMOTE_FLAGS ((uintptr_t)3)

/* Two cache lines: the first is read by every thread that frees into the
 * page and written only when the page changes hands or lists; the second
 * is the owner's, written by each of its mallocs and frees (and by remote
 * frees that find the freeing thread's hot list full). A remote free that
 * goes to a hot list reads only the first: it no longer pulls the line
 * the owner is writing (larson: free 14.8 % -> 3.0 % of the samples, its
 * time unchanged within the noise: the misses moved to the workload's own
 * reads; churn -0.8 % instructions, the index is a shift). */
typedef struct lw_page_s {
  struct lw_tld_s *owner;           /* NULL when FREE */
  uint8_t *start;                   /* first slot */
  uint32_t capacity;                /* slots in this page */
  uint32_t slot_size;
  uint8_t cls;
  uint8_t committed;                /* 0 after madvise(DONTNEED) while FREE */
  uint8_t fresh;                    /* never owned since its segment was mapped: committed, not resident */
  struct lw_page_s *prev, *next;    /* owner's avail list, or a free-page stack */
  struct lw_page_s *notify_next;    /* owner->notify stack */
  _Alignas(64) lw_block_t *free;    /* local free list; touched only by the owner */
  uint32_t used;                    /* slots handed out, less local/collected frees */
  uint32_t bumped;                  /* slots carved so far (the rest never touched) */
  uint8_t *unused, *unused_end;     /* carved slots not yet handed out, never written */
  _Atomic(uint32_t) state;          /* LW_PAGE_* */
  _Atomic(uintptr_t) remote;        /* remote-free stack | LW_REMOTE_* flags */
} lw_page_t;

/* ---- segments --------------------------------------------------------- */
enum { LW_SEG_POOL = 1, LW_SEG_MEDIUM = 2 };

struct lw_heap_s;
typedef struct lw_segment_s {
  uint32_t kind;                 /* LW_SEG_POOL or LW_SEG_MEDIUM */
  uint32_t magic;                /* LW_SEG_MAGIC: checked by lw_check() */
  struct lw_segment_s *next;     /* POOL: all pool segments (page lock); MEDIUM: its heap's */
  struct lw_heap_s *heap;        /* MEDIUM: the heap that owns its chunks */
  uint32_t used_pages;           /* POOL: pages not FREE; 0 lets the segment go */
  uint32_t reserved;
  lw_page_t pages[];             /* POOL: LW_PAGES_PER_SEG descriptors; [0] unused */
} lw_segment_t;
#define LW_SEG_MAGIC 0x6c77736du /* "lwsm" */

/* ---- medium chunks: the compact header ---------------------------------
 *
 *  One 64-bit word in front of each chunk's payload:
 *
 *   63            40 39                                4  3  2  1  0
 *  +----------------+-----------------------------------+--+--+--+--+
 *  |  tag (24 bits) |      chunk size in bytes (/16)     | R| Q| P| U|
 *  +----------------+-----------------------------------+--+--+--+--+
 *   size: whole chunk including this header; a multiple of 16, so its low
 *         4 bits hold the flags (the field is size itself, bits 4..39).
 *   U (INUSE)     allocated to the user.
 *   P (PREV_FREE) the previous chunk is merged free; only then is the
 *                 footer at (this - 8) valid: the previous chunk's size.
 *                 A parked (quick) chunk sets neither: free() and its
 *                 reuse write only the chunk's own header, not the end of
 *                 the chunk and the next header, a cache line (often a
 *                 page) away.
 *   Q (QUICK)     freed but not merged: parked on a quick list (deferred
 *                 coalescing). U and Q are never both set.
 *   R (RELEASED)  merged free chunk whose inner pages went back to the OS.
 *   tag           checked build: hash of (secret, address, size); a
 *                 mismatch means the header was overwritten. 0 otherwise.
 *
 *  Layout: headers sit at addresses = 8 (mod 16), so payloads are 16-aligned.
 *
 *     ...| hdr | payload ...................... | hdr | payload ...
 *           ^chunk                       footer^  ^next chunk
 *
 *  Not-in-use chunks store {next, prev} list links in their payload;
 *  merged-free ones also their size in their last 8 bytes (the footer). The minimum chunk is 32
 *  bytes. Each span of chunks ends in a sentinel header (size 0, U set),
 *  and its first chunk never has P set.
 *
 *  Invariants (see heap_check): no two merged-free chunks are adjacent;
 *  a chunk's P bit equals "previous chunk merged free"; every merged-free
 *  chunk is in the bin of its size; every quick chunk in the quick list
 *  of its size; unmerged_bytes == sum of quick chunk sizes.
 */
typedef uint64_t lw_chunk_hdr_t;
#define LW_CH_INUSE ((uint64_t)1)
#define LW_CH_PREV_FREE ((uint64_t)2)
#define LW_CH_QUICK ((uint64_t)4)
#define LW_CH_RELEASED ((uint64_t)8)
#define LW_CH_FLAGS ((uint64_t)15)
#define LW_CH_SIZE_MASK ((((uint64_t)1 << 40) - 1) & ~LW_CH_FLAGS)
#define LW_CH_TAG_SHIFT 40
#define LW_CHUNK_MIN 32
#define LW_CHUNK_OVERHEAD 8

typedef struct lw_chunk_s { /* a not-in-use chunk, seen from its header */
  lw_chunk_hdr_t hdr;
  struct lw_chunk_s *next, *prev; /* bin or quick list */
} lw_chunk_t;

/* Bins: sizes 16..127 exact by 16, then 8 sub-bins per power of two. */
#define LW_NBINS 256
#define LW_BINMAP_WORDS (LW_NBINS / 64)

typedef struct lw_heap_s {
  pthread_mutex_t lock;
  uint64_t bin_map[LW_BINMAP_WORDS];   /* bit b: bins[b] non-empty */
  uint64_t quick_map[LW_BINMAP_WORDS]; /* bit b: quick[b] non-empty */
  lw_chunk_t *bins[LW_NBINS];          /* merged free chunks, doubly linked */
  lw_chunk_t *quick[LW_NBINS];         /* deferred (unmerged) frees, doubly linked */
  size_t unmerged_bytes;               /* sum of quick chunk sizes */
  size_t unmerged_limit;               /* crossing it triggers a bounded merge */
  size_t free_bytes;                   /* sum of merged-free chunk sizes */
  size_t live_bytes;                   /* sum of in-use chunk sizes */
  size_t span_bytes;                   /* bytes of all spans */
  uint64_t coalesce_runs, coalesced_chunks; /* monotonic */
  lw_segment_t *segments;              /* MEDIUM segments (NULL for a region) */
  lw_segment_t *spare;                 /* one empty segment kept for reuse */
  lw_chunk_t *region_first;            /* embedded region: its first chunk */
  _Atomic(uintptr_t) deferred;         /* frees from signal handlers, done at the next lock (signal.c) */
  int can_grow;                        /* 0: embedded region */
} lw_heap_t;

/* ---- large blocks ------------------------------------------------------
 *   map                                  p (16-aligned, or as asked)
 *   |<------------- offset -------------->|
 *   [ ...alignment gap... | map_size | tag:32 offset:32 ][ user bytes ...]
 *  map is a run of pages in a large arena (big.c), or a mapping of its own
 *  (LW_LARGE_OWN_MAP set in map_size, whose other bits are the size).
 *  The tag is a hash of p and the process secret: free() of a pointer that
 *  is not ours fails this check instead of unmapping a stranger's memory. */
#define LW_LARGE_OWN_MAP ((uint64_t)1)
typedef struct lw_large_s {
  uint64_t map_size;
  uint64_t tag_offset;
} lw_large_t;

/* ---- per-thread data ---------------------------------------------------- */
typedef struct lw_tld_s {
  lw_block_t *hot[LW_NCLASSES]; /* slots this thread freed last, for its next malloc (LIFO) */
  lw_page_t *cur[LW_NCLASSES];  /* head of the avail list per class, or &_lw_page_empty */
  _Atomic(lw_page_t *) notify;  /* FULL pages that received remote frees */
  struct lw_tld_s *next_all;    /* every tld ever made (stats walk) */
  struct lw_tld_s *next_free;   /* abandoned list */
  lw_heap_t *heap;              /* medium heap this thread uses */
  uint32_t id;
  uint32_t alive;               /* 1 while a thread owns it; 2: lost in a fork */
  uint8_t warm[LW_NCLASSES];    /* blocks of the class served by the heap before its first page */
  uint8_t nhot[LW_NCLASSES];    /* length of hot[c]; 255 in _lw_tld_empty (never fills it) */
} lw_tld_t;

_Static_assert(sizeof(lw_chunk_hdr_t) == LW_CHUNK_OVERHEAD, "compact header is one word");
_Static_assert(sizeof(lw_large_t) == LW_ALIGN, "large header keeps 16-byte alignment");
_Static_assert(LW_SMALL_MAX < LW_PAGE_SIZE / 16, "a malloc class page holds at least 16 slots");
_Static_assert(LW_CLASS_MAX <= LW_PAGE_SIZE / 8, "a pool page holds at least 8 slots");
_Static_assert(LW_PAGES_PER_SEG == 64, "segment = 64 pool pages");
_Static_assert(sizeof(lw_page_t) == 128, "a page descriptor is two cache lines");
_Static_assert(sizeof(lw_chunk_t) <= LW_CHUNK_MIN - 8, "links fit in a minimum chunk");

#endif /* LW_TYPES_H */
