/* callbuf: the importer's table of calls indexed by seq, in a shared
 * mapping of a memfd (tmpfs: RAM or swap, never written back to disk; an
 * unlinked file next to the database where memfd is missing), so that a
 * trace whose threads' chunks interleave in the file can be walked in seq
 * order without sorting, and lifetimes found later can be written back
 * into the allocating call's slot. 72 bytes per seq. */
#ifndef LWV_CALLBUF_H
#define LWV_CALLBUF_H

#include <stddef.h>
#include <stdint.h>

#define CALLBUF_MARK 255 /* op of a slot holding a realloc's early free */

typedef struct call_slot_s {
  uint64_t time_ns;
  uint64_t size;     /* requested; MARK slots: unused */
  uint64_t addr;     /* returned pointer (0: none) */
  uint64_t in_addr;  /* pointer passed to free/realloc */
  uint64_t free_seq; /* ops that free: seq of the free; MARK: seq of its realloc */
  uint64_t end_seq;  /* set in pass 2: seq that freed the block made here (0: never) */
  uint64_t freed;    /* set in pass 2: size of the block this call freed */
  uint32_t tid, stack_id;
  uint32_t align;
  uint8_t op; /* 0: empty slot (seq of an event, or lost) */
  uint8_t pad[3];
} call_slot_t;

typedef struct callbuf_s {
  call_slot_t *slots;
  uint64_t cap; /* slots mapped */
  uint64_t len; /* 1 + highest seq stored */
  int fd;
} callbuf_t;

/* Opens an empty buffer (memfd, else an unlinked file in dir). 0 or -1. */
int callbuf_open(callbuf_t *b, const char *dir);
/* The slot for seq (zeroed if never written), growing the mapping; NULL
 * on failure. Pointers stay valid only until the next callbuf_slot call. */
call_slot_t *callbuf_slot(callbuf_t *b, uint64_t seq);
void callbuf_close(callbuf_t *b);

#endif /* LWV_CALLBUF_H */
