/* Streaming reader of lwtrace files (format: trace_format.h,
 * traces/FORMAT.md). Used by lwtrace info/dump, lwreplay and lwview.
 *
 *   char err[256];
 *   lwt_reader_t *r = lwt_open("prog.123.lwt.zst", err, sizeof err);
 *   if (!r) { fprintf(stderr, "%s\n", err); return 1; }
 *   lwt_record_t rec;
 *   int rc;
 *   while ((rc = lwt_next(r, &rec)) == 1) { ... }
 *   if (rc < 0) fprintf(stderr, "%s\n", lwt_error(r));
 *   lwt_close(r);
 *
 * The reader validates as it goes: on truncated or corrupt input it first
 * returns every complete record before the damage, then -1 with a one-line
 * error "FILE: offset N: problem" (N = offset in the compressed file of
 * the zstd frame being decoded, or of the end of the file). Pointers inside
 * a record (strings, ips, classes, argv) stay valid until the next
 * lwt_next() or lwt_close() call.
 */
#ifndef LWT_TRACE_READ_H
#define LWT_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwt_reader_s lwt_reader_t;

/* Decoded record kinds (what lwt_record_t.kind holds). */
#define LWT_KIND_LIST(X)                                                     \
  X(CALL, 1) X(EVENT, 2) X(STACK, 3) X(MODULE, 4) X(THREAD_START, 5)         \
  X(THREAD_EXIT, 6) X(THREAD_NAME, 7) X(POOL_SNAPSHOT, 8) X(PROCESS, 9)      \
  X(FORK, 10) X(EXEC, 11) X(LOST, 12) X(END, 13)

enum lwt_kind {
#define LWT_KIND_ENUM(name, code) LWT_##name = code,
  LWT_KIND_LIST(LWT_KIND_ENUM)
#undef LWT_KIND_ENUM
  LWT_KIND_LIMIT
};

typedef struct lwt_header_s {
  uint16_t version_major, version_minor;
  uint32_t flags;          /* LWT_FLAG_* */
  uint32_t page_size;
  uint32_t pid, ppid;
  uint64_t start_realtime_ns; /* CLOCK_REALTIME at trace start */
  uint32_t max_depth;      /* 0 when recorded with --no-stacks */
  uint32_t time_shift;     /* record times are multiples of 2^time_shift ns */
  const char *exe;         /* NUL-terminated; valid until lwt_close */
} lwt_header_t;

typedef struct lwt_class_snap_s {
  uint64_t slot_size, slots_used, slots_total;
} lwt_class_snap_t;

typedef struct lwt_record_s {
  uint32_t kind;    /* enum lwt_kind */
  uint32_t tid;     /* thread of CALL/EVENT/THREAD_* records (0 otherwise;
                       THREAD_NAME: the named thread) */
  uint64_t seq;     /* CALL/EVENT/THREAD_START/EXIT/FORK: global order,
                       unique; writer records (POOL_SNAPSHOT, END): calls
                       sequenced before it; else 0 */
  uint64_t time_ns; /* CLOCK_MONOTONIC ns since trace start (0 for STACK) */
  union {
    struct {
      uint32_t op;       /* enum lw_op_kind */
      uint32_t stack_id; /* 0 = no stack */
      uint64_t size;     /* bytes requested (calloc: count*size; 0 if n/a) */
      uint64_t align;    /* alignment requested (0 if n/a) */
      uint64_t in_ptr;   /* pointer passed (free, realloc...), else 0 */
      uint64_t out_ptr;  /* pointer returned (0 on failure or n/a) */
      uint64_t free_seq; /* ops that free: seq reserved before the free
                            (== seq for free/free_sized...); else 0 */
    } call;
    struct {
      uint32_t kind; /* enum lw_event_kind */
      uint64_t a, b, c;
    } event;
    struct {
      uint32_t id, depth;
      const uint64_t *ips; /* depth return addresses, innermost first */
    } stack;
    struct {
      uint64_t start, end; /* mapped address range of one PT_LOAD segment */
      uint64_t offset;     /* file offset of the segment */
      uint64_t bias;       /* load bias: ELF vaddr = ip - bias */
      const char *path;
      const uint8_t *build_id;
      uint32_t build_id_len;
    } module;
    struct {
      const char *name; /* THREAD_START/THREAD_NAME: name; EXIT: "" */
    } thread;
    struct {
      uint64_t live_bytes, mapped_bytes, committed_bytes, unmerged_bytes;
      uint32_t nclasses;
      const lwt_class_snap_t *classes;
    } pool;
    struct {
      uint32_t pid, ppid;
      const char *exe;
      uint32_t argc;
      const char *const *argv;
    } process;
    struct {
      uint32_t parent_pid; /* 0 in the parent's own FORK mark */
      uint32_t child_pid;  /* 0 in the parent's own FORK mark */
    } fork;
    struct {
      uint32_t pid;
      const char *path; /* the new program */
    } exec;
    struct {
      uint64_t count; /* records the recorder had to drop */
    } lost;
    struct {
      uint64_t records; /* records written by the recorder */
      uint64_t lost;    /* records dropped */
    } end;
  };
} lwt_record_t;

/* Opens a trace and reads its header. NULL on failure with a one-line
 * message in err. */
lwt_reader_t *lwt_open(const char *path, char *err, size_t errlen);
/* Same over a memory buffer (not copied; must outlive the reader); name is
 * used in messages. */
lwt_reader_t *lwt_open_mem(const void *data, size_t size, const char *name, char *err,
                           size_t errlen);
/* 1 = *rec holds a record, 0 = clean end of trace, -1 = error (lwt_error). */
int lwt_next(lwt_reader_t *r, lwt_record_t *rec);
/* "FILE: offset N: problem" after lwt_next returned -1, else "". */
const char *lwt_error(lwt_reader_t *r);
const lwt_header_t *lwt_header(lwt_reader_t *r);
/* Compressed bytes consumed so far (for progress bars). */
uint64_t lwt_offset(lwt_reader_t *r);
void lwt_close(lwt_reader_t *r);

/* Names for text output ("malloc", "POOL_REFILL", "CALL"...; "?" if unknown). */
const char *lwt_op_name(unsigned op);
const char *lwt_event_name(unsigned kind);
/* Argument i (0..2) of an event kind: "class", "slots"... ("" if unused). */
const char *lwt_event_arg_name(unsigned kind, unsigned i);
const char *lwt_kind_name(unsigned kind);

#ifdef __cplusplus
}
#endif
#endif /* LWT_TRACE_READ_H */
