/* Allocator events: the one list of what the allocator can tell a tracer.
 *
 * Each event carries up to three 64-bit arguments. Without LW_TRACE the
 * macros compile to nothing; with LW_TRACE they call hooks that tracer/
 * implements (tracer/recorder.c). The tracer's encoder, `lwtrace dump`
 * and the viewer's importer all expand LW_EVENT_LIST, so adding an event
 * is a one-line change here.
 *
 *   X(NAME, code, "arg a", "arg b", "arg c")      ("" = unused argument)
 */
#ifndef LW_EVENTS_H
#define LW_EVENTS_H

#include <stdint.h>

#define LW_EVENT_LIST(X)                                                     \
  X(POOL_REFILL, 1, "class", "slots", "page")    /* page given to a class */  \
  X(POOL_RELEASE, 2, "class", "slots", "page")   /* empty page taken back */  \
  X(COALESCE_RUN, 3, "chunks", "bytes", "ns")    /* deferred merge pass   */  \
  X(OS_MAP, 4, "addr", "bytes", "")              /* mmap                  */  \
  X(OS_UNMAP, 5, "addr", "bytes", "")            /* munmap                */  \
  X(OS_DECOMMIT, 6, "addr", "bytes", "to")       /* madvise, or moved to  */  \
  X(OS_REMAP, 7, "old", "new", "bytes")          /* mremap of a large block */

enum lw_event_kind {
#define LW_EV_ENUM(name, code, a, b, c) LW_EV_##name = code,
  LW_EVENT_LIST(LW_EV_ENUM)
#undef LW_EV_ENUM
  LW_EV_LIMIT
};

/* The malloc-family calls a trace records (op codes are part of the trace
 * format: append only). */
#define LW_OP_LIST(X)                                                        \
  X(MALLOC, 1) X(FREE, 2) X(CALLOC, 3) X(REALLOC, 4) X(REALLOCARRAY, 5)      \
  X(MEMALIGN, 6) X(POSIX_MEMALIGN, 7) X(ALIGNED_ALLOC, 8) X(VALLOC, 9)        \
  X(PVALLOC, 10) X(FREE_SIZED, 11) X(FREE_ALIGNED_SIZED, 12)

enum lw_op_kind {
#define LW_OP_ENUM(name, code) LW_OP_##name = code,
  LW_OP_LIST(LW_OP_ENUM)
#undef LW_OP_ENUM
  LW_OP_LIMIT
};

#ifdef LW_TRACE
/* Implemented by tracer/. Called with no allocator lock held except where
 * noted in the caller; must not call malloc on the calling thread's
 * recording path (the tracer guards its own recursion). */
void _lw_trace_event(unsigned kind, uint64_t a, uint64_t b, uint64_t c);
/* Before an op that frees (free, realloc, free_sized...): reserves the
 * op's sequence number so that the free is ordered before any reuse of
 * the address by another thread. Returns the token to pass to _lw_trace_call. */
uint64_t _lw_trace_enter(void);
/* After the op: op is an lw_op_kind; size/align as requested (calloc:
 * count*size; 0 where not applicable); in = pointer passed (free/realloc),
 * out = pointer returned (NULL on failure); token = _lw_trace_enter()'s
 * result or 0 when none was taken. */
void _lw_trace_call(unsigned op, uint64_t size, uint64_t align, const void *in,
                    const void *out, uint64_t token);
#define LW_EVENT(name, a, b, c)                                              \
  _lw_trace_event(LW_EV_##name, (uint64_t)(a), (uint64_t)(b), (uint64_t)(c))
#else
#define LW_EVENT(name, a, b, c) ((void)sizeof(a), (void)sizeof(b), (void)sizeof(c)) /* unevaluated */
#endif

#endif /* LW_EVENTS_H */
