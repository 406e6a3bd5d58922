/* The lwtrace on-disk format: THE one definition (traces/FORMAT.md is the
 * byte-level prose of this header; keep both in step).
 *
 * A trace file is a sequence of independent zstd frames. Their
 * concatenated decompressed content is one byte stream:
 *
 *   file header | record | record | ...
 *
 * Frames always end on a record boundary, so a file cut after any
 * complete frame (SIGKILL, crash) is a valid trace; the reader also
 * decodes the complete blocks of a final partial frame.
 *
 * All fixed-width integers are little-endian. "varint" is unsigned LEB128
 * (7 bits per byte, low group first, high bit = more, at most 10 bytes);
 * "svarint" is a zigzag-encoded signed varint ((v << 1) ^ (v >> 63)).
 *
 * Top-level records: u8 tag, varint payload length, payload. A reader
 * skips top-level tags it does not know (minor versions may add some).
 *
 * Per-thread data comes in CHUNK records: lane id, tid and a slice of
 * one "lane" stream, stored as columns, one per kind of field (enum
 * lwt_column), each in record order: zstd compresses homogeneous streams
 * far better, and timing noise no longer breaks the matches of the
 * repetitive rest. A lane is one thread's buffer (each thread has a
 * normal lane and a lane for records made inside signal handlers that
 * interrupted the tracer). Lane records are compact: u8 tag then fields,
 * with seq, time, pointers and stack ids delta-encoded against the
 * previous record of the same lane (state kept across chunks and frames;
 * lane ids are never reused within a file, and each lane starts from the
 * all-zero state). Unknown lane tags are an error.
 */
#ifndef LWT_TRACE_FORMAT_H
#define LWT_TRACE_FORMAT_H

#include <stdint.h>

#include "events.h"

/* ---- file header ----------------------------------------------------
 *   OFFSET SIZE DESCRIPTION
 *        0    8 magic "LWTRACE\0"
 *        8    2 version major (readers refuse a newer major)
 *       10    2 version minor (additions only: new top-level tags, new
 *               flag bits that change no layout)
 *       12    4 header size in bytes, exe path included (>= 56)
 *       16    4 flags (LWT_FLAG_*)
 *       20    4 page size of the traced process
 *       24    4 pid
 *       28    4 ppid
 *       32    8 start time, CLOCK_REALTIME ns (record times are
 *               CLOCK_MONOTONIC ns since the trace started)
 *       40    4 maximum stack depth recorded (0 = no stacks)
 *       44    4 time shift S: lane records store times in units of 2^S ns
 *               (0..20; the reader returns time_ns = units << S)
 *       48    4 reserved, 0
 *       52    4 exe path length N
 *       56    N exe path bytes (no NUL)
 */
#define LWT_MAGIC "LWTRACE"          /* 7 chars + NUL = 8 bytes */
#define LWT_MAGIC_SIZE 8
#define LWT_VERSION_MAJOR 2 /* 1: no CHUNK columns, u64 STACK frames (still read) */
#define LWT_VERSION_MINOR 1 /* 2.1: LWT_FLAG_ALLOC_STACKS */
#define LWT_HEADER_FIXED_SIZE 56
#define LWT_EXE_MAX 4096
#define LWT_MAX_TIME_SHIFT 20

enum lwt_flags {
  LWT_FLAG_STACKS = 1u << 0,      /* CALL records carry a stack id */
  LWT_FLAG_FOLLOW_FORK = 1u << 1, /* recorded with --follow-fork */
  LWT_FLAG_FOLLOW_EXEC = 1u << 2, /* recorded with --follow-exec */
  LWT_FLAG_FORK_CHILD = 1u << 3,  /* this process is a traced fork child */
  LWT_FLAG_EXEC_IMAGE = 1u << 4,  /* this process image came from exec */
  LWT_FLAG_STATIC_API = 1u << 5,  /* started by lw_trace_start() */
  LWT_FLAG_ALLOC_STACKS = 1u << 6, /* with STACKS: only calls that return a block take a
                                    * stack; free, free_sized, free_aligned_sized carry 0 */
};

/* ---- top-level record tags (u8) ------------------------------------- */
enum lwt_tag {
  LWT_TAG_CHUNK = 0xF0,    /* varint lane, varint tid, varint length of each
                              column but the last, the columns in
                              LWT_COL_* order (the TAG column: the rest) */
  LWT_TAG_STACK = 0xF1,    /* varint id, varint depth, depth x svarint (ip[i]
                              - ip[i] of the previous STACK record, 0 past
                              its depth) */
  LWT_TAG_MODULE = 0xF2,   /* varint time, varint start, end, offset, bias,
                              varint path len, path, varint id len, id */
  LWT_TAG_POOL = 0xF3,     /* varint time, seq, live, mapped, committed,
                              unmerged, nclasses, then per class
                              varint slot_size, slots_used, slots_total */
  LWT_TAG_PROCESS = 0xF4,  /* varint time, pid, ppid, varint exe len, exe,
                              varint argc, argc x (varint len, bytes) */
  LWT_TAG_FORK = 0xF5,     /* varint time, seq, parent pid, child pid */
  LWT_TAG_EXEC = 0xF6,     /* varint time, pid, varint path len, path */
  LWT_TAG_THREAD_NAME = 0xF7, /* varint time, tid, varint len, name */
  LWT_TAG_END = 0xF8,      /* varint time, seq, records, lost */
};

/* ---- lane record tags (u8) -------------------------------------------
 * Column of each field: dseq SEQ; dtime TIME; in/out pointers PTR; stack
 * code STACK; size, align, seq - free_seq and event a/b/c SIZE; the tag,
 * names, LOST and TID values TAG.
 * CALL   tag = op | LWT_CALL_IN_HIT (0x10) | LWT_CALL_OUT_HIT (0x20), where
 *        op is the LW_OP_LIST code (1..15):
 *          svarint dseq   (seq - prev_seq - 1)
 *          svarint dtime  (time units - prev_time units)
 *          [varint size]                     if lwt_op_has_size(op)
 *          [varint align]                    if lwt_op_has_align(op)
 *          [in]                              if lwt_op_has_in(op)
 *          [out]                             if lwt_op_has_out(op)
 *          [varint seq - free_seq]           if op is REALLOC/REALLOCARRAY
 *          [varint stack code]               if the header has LWT_FLAG_STACKS:
 *                 code < LWT_PTR_CACHE: index into the lane's stack cache;
 *                 else zigzag(stack - prev_stack) + LWT_PTR_CACHE;
 *                 then prev_stack = stack, lwt_cache_touch(stack cache)
 *        A pointer (in, then out) is either u8 index into the lane's
 *        pointer cache (its HIT bit set) or svarint (ptr - prev_ptr) (bit
 *        clear); either way prev_ptr = ptr and then lwt_cache_touch(ptr).
 *        free-only ops: free_seq = seq.
 * EVENT  tag = LWT_LTAG_EVENT_BASE + lw_event_kind (LW_EVENT_LIST):
 *          svarint dseq, svarint dtime, varint a, varint b, varint c
 * THREAD_START  svarint dseq, svarint dtime, varint name len, name
 * THREAD_EXIT   svarint dseq, svarint dtime
 * FORK_MARK     svarint dseq, svarint dtime   (parent side of a fork)
 * LOST          varint count (records dropped on this lane)
 * TID           varint tid (later records of this chunk belong to tid)
 */
#define LWT_LTAG_EVENT_BASE 64
enum lwt_lane_tag {
#define LWT_LTAG_OP(name, code) LWT_LTAG_##name = code,
  LW_OP_LIST(LWT_LTAG_OP)
#undef LWT_LTAG_OP
#define LWT_LTAG_EV(name, code, a, b, c) LWT_LTAG_EV_##name = LWT_LTAG_EVENT_BASE + code,
  LW_EVENT_LIST(LWT_LTAG_EV)
#undef LWT_LTAG_EV
  LWT_LTAG_THREAD_START = 128,
  LWT_LTAG_THREAD_EXIT = 129,
  LWT_LTAG_FORK_MARK = 130,
  LWT_LTAG_LOST = 131,
  LWT_LTAG_TID = 132,
};

/* CHUNK columns, in the order they are stored. */
enum lwt_column {
  LWT_COL_SEQ, LWT_COL_TIME, LWT_COL_PTR, LWT_COL_STACK, LWT_COL_SIZE, LWT_COL_TAG, LWT_NCOLS
};

#define LWT_CALL_OP_MASK 0x0f
#define LWT_CALL_IN_HIT 0x10
#define LWT_CALL_OUT_HIT 0x20
_Static_assert(LW_OP_LIMIT - 1 <= LWT_CALL_OP_MASK, "op codes must fit the CALL tag's op bits");
_Static_assert(LWT_LTAG_EVENT_BASE + LW_EV_LIMIT - 1 < LWT_LTAG_THREAD_START,
               "event codes must fit the EVENT tag range");

/* Which fields a CALL record of op carries (both writer and reader use these). */
static inline int lwt_op_has_size(unsigned op) {
  return op != LW_OP_FREE;
}
static inline int lwt_op_has_align(unsigned op) {
  return op == LW_OP_MEMALIGN || op == LW_OP_POSIX_MEMALIGN || op == LW_OP_ALIGNED_ALLOC ||
         op == LW_OP_FREE_ALIGNED_SIZED;
}
static inline int lwt_op_has_in(unsigned op) {
  return op == LW_OP_FREE || op == LW_OP_REALLOC || op == LW_OP_REALLOCARRAY ||
         op == LW_OP_FREE_SIZED || op == LW_OP_FREE_ALIGNED_SIZED;
}
static inline int lwt_op_has_out(unsigned op) {
  return op != LW_OP_FREE && op != LW_OP_FREE_SIZED && op != LW_OP_FREE_ALIGNED_SIZED;
}
/* Ops that free (they take _lw_trace_enter's token as free_seq). */
static inline int lwt_op_frees(unsigned op) { return lwt_op_has_in(op); }
/* Ops that free AND allocate: seq and free_seq differ. */
static inline int lwt_op_has_free_seq(unsigned op) {
  return op == LW_OP_REALLOC || op == LW_OP_REALLOCARRAY;
}

/* The per-lane pointer cache: the LWT_PTR_CACHE pointers most recently
 * seen by the lane (in or out), most recent first; all zero when a lane
 * starts. Stack ids use a second cache of the same kind. Allocators hand back recently freed addresses and programs free
 * recent allocations, so most pointers cost one index byte. */
#define LWT_PTR_CACHE 16
typedef struct lwt_ptr_cache_s {
  uint64_t p[LWT_PTR_CACHE];
} lwt_ptr_cache_t;

static inline int lwt_cache_find(const lwt_ptr_cache_t *c, uint64_t v) {
  for (int i = 0; i < LWT_PTR_CACHE; i++)
    if (c->p[i] == v) return i;
  return -1;
}

/* Move to front: v becomes entry 0; found = its old index or -1 (the last
 * entry is dropped). */
static inline void lwt_cache_touch(lwt_ptr_cache_t *c, uint64_t v, int found) {
  for (int i = found >= 0 ? found : LWT_PTR_CACHE - 1; i > 0; i--) c->p[i] = c->p[i - 1];
  c->p[0] = v;
}

#define LWT_MAX_DEPTH 128   /* deepest stack a trace may hold */
#define LWT_MAX_STRING 4096 /* longest path/name/arg a reader accepts */
#define LWT_MAX_ARGS 256    /* most argv entries a PROCESS record holds */

#endif /* LWT_TRACE_FORMAT_H */
