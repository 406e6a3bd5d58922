/* callbuf: the importer's reorder window, a ring of call slots indexed by
 * seq. The trace interleaves the threads' chunks, so records arrive out of
 * seq order (each thread's own records are in order; in practice a record
 * arrives at most a few hundred thousand seqs late). The importer parks
 * every call and allocator event in its slot, derives lifetimes at the
 * front of the seqs that arrived without a gap, and writes a slot's row
 * CALLBUF_BEHIND seqs later, so that a block freed by then carries its
 * end in its own row. Fixed size (CALLBUF_SLOTS × 72 bytes, touched as
 * used): memory does not grow with the trace. */
#ifndef LWV_CALLBUF_H
#define LWV_CALLBUF_H

#include <stddef.h>
#include <stdint.h>

#define CALLBUF_SLOTS (1u << 19) /* seqs held at once: disorder + CALLBUF_BEHIND */
#define CALLBUF_BEHIND (1u << 16) /* seqs between deriving a slot and writing it */
/* LWV_RING_SLOTS=N (a power of two, 256..2^24) replaces CALLBUF_SLOTS, and
 * CALLBUF_BEHIND becomes N/8: the tests shrink the ring to drive the paths
 * of records that arrive later than the ring reaches. */
#define CALLBUF_MARK 255          /* op of a slot holding a realloc's early free */
#define CALLBUF_EVENT 254         /* op of a slot holding an allocator event */

typedef struct call_slot_s {
  uint64_t time_ns;
  uint64_t size;     /* requested; EVENT: argument a */
  uint64_t addr;     /* returned pointer (0: none); EVENT: argument b */
  uint64_t in_addr;  /* pointer passed to free/realloc; EVENT: argument c */
  uint64_t free_seq; /* ops that free: seq of the free; MARK: seq of its realloc */
  uint64_t end_seq;  /* seq that freed the block made here (0: not yet) */
  uint64_t freed;    /* ops that free: requested size of the block released */
  uint32_t tid, stack_id;
  uint32_t align;    /* EVENT: kind */
  uint8_t op;        /* 0: empty; lw_op_kind; CALLBUF_MARK; CALLBUF_EVENT; other */
  uint8_t late_free; /* a realloc whose free seq was passed: frees with the call */
  uint8_t pad[2];
} call_slot_t;

typedef struct callbuf_s {
  call_slot_t *slots; /* n of them, calloc'ed (pages touched as used) */
  uint64_t n;         /* CALLBUF_SLOTS, or LWV_RING_SLOTS */
  uint64_t behind;    /* CALLBUF_BEHIND, or n / 8 */
  uint64_t tail;      /* oldest seq held: every seq below it was written out */
} callbuf_t;

/* Allocates the ring, holding seqs [tail, tail + n). 0 or -1. */
int callbuf_open(callbuf_t *b, uint64_t tail);
void callbuf_close(callbuf_t *b);

/* 1 if seq has a slot now (tail <= seq < tail + n). */
static inline int callbuf_holds(const callbuf_t *b, uint64_t seq) {
  return seq >= b->tail && seq - b->tail < b->n;
}
/* The slot of a seq that callbuf_holds. */
static inline call_slot_t *callbuf_at(const callbuf_t *b, uint64_t seq) {
  return &b->slots[seq & (b->n - 1)];
}

#endif /* LWV_CALLBUF_H */
