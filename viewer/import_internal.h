/* Shared state of the importer (import.c: driver and the record stream;
 * import_stacks.c: modules, stacks, symbolisation; import_lifetimes.c:
 * calls and events in seq order: lifetimes, the calls table, time_index).
 * Not part of lwview's interface. */
#ifndef LWV_IMPORT_INTERNAL_H
#define LWV_IMPORT_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "callbuf.h"
#include "elfsym.h"
#include "import.h"
#include "events.h"
#include "trace_read.h"
#include "u64map.h"

#define IMPORT_BATCH 250000     /* rows per transaction */
#define TI_TARGET 2048          /* time_index: aim for this many stretches, */
#define TI_MAX_CALLS 1024       /* each of at most this many calls */
#define IVL_INF (1ULL << 40)    /* end of a block never freed */
#define IVL_LEVELS 41           /* interval-index levels: 0..40 */

typedef struct module_s {
  uint64_t start, end, bias;
  char *path, *build_id;
  elfsym_t *syms;
  int loaded;
} module_t;

typedef struct stack_s {
  uint32_t id, depth;
  uint64_t *ips;
} stack_t_;

typedef struct thread_s {
  uint64_t tid;
  char name[64];
  uint64_t start_ns, end_ns;
  int started, exited;
  uint64_t calls, allocs, alloc_bytes, frees, freed_bytes, leaked_bytes;
} thread_t_;

typedef struct site_s {
  uint64_t allocs, bytes, max_size, leaked, leaked_bytes;
} site_t;

/* Snapshot totals, applied when the calls reach their seq. */
typedef struct snap_s {
  uint64_t seq, mapped, committed;
} snap_t;

typedef struct importer_s {
  sqlite3 *db;
  const char *trace_path;
  const char *db_tmp_path; /* the database being built (scratch files go next to it) */
  char *err;
  size_t errlen;
  uint64_t pending_rows; /* rows since the last commit */
  int progress;
  uint64_t file_size;
  double t_start, t_last_draw;
  int drawn;

  sqlite3_stmt *ins_event, *ins_module, *ins_snap, *ins_class;
  sqlite3_stmt *ins_ti, *ins_meta;

  module_t *mods;
  size_t nmods, capmods;
  stack_t_ *stacks;
  size_t nstacks, capstacks;
  u64map_t stack_ids; /* id+1 -> index */
  thread_t_ *threads;
  size_t nthreads, capthreads;
  u64map_t thread_ids; /* tid -> index */
  size_t last_thread;  /* index of the thread last looked up */
  site_t *sites;       /* indexed by stack id (grown on demand) */
  size_t capsites;
  struct lifetimes_s *lt; /* import_lifetimes.c's state */
  struct writer_s *wr;    /* import_writer.c: the writer thread (NULL: rows go straight to SQLite) */
  sqlite3_stmt *row_st;   /* the statement of the row being bound (row_begin) */
  uint64_t *wpos;         /* with a writer: next free word of the batch being filled */
  const uint64_t *rows;   /* what the virtual table lwv_rows returns: */
  size_t nrows;           /* nrows rows of ROWS_WORDS words */
  uint64_t *rows_own;     /* (no writer) room for the rows of one statement */
  uint64_t long_lived; /* blocks whose end came after their row was written */
  uint64_t dup_seqs;   /* records whose seq was already taken (corrupt input) */

  uint64_t records, calls, events, snaps, lost, last_seq, end_ns, forks, execs;
  int have_end;
} importer_t;

/* ---- small helpers -------------------------------------------------- */

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int fail(importer_t *im, const char *fmt, const char *detail) {
  snprintf(im->err, im->errlen, fmt, detail);
  return -1;
}

static inline int sql_fail(importer_t *im, const char *what) {
  snprintf(im->err, im->errlen, "database: %.300s: %s", what, sqlite3_errmsg(im->db));
  return -1;
}

static inline int exec_sql(importer_t *im, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(im->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fail(im, "database: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static inline int prep(importer_t *im, sqlite3_stmt **st, const char *sql) {
  if (sqlite3_prepare_v3(im->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
    return sql_fail(im, sql);
  return 0;
}

/* Binds v as an integer, or NULL when v is 0 and zero_is_null. */
static inline void bind_u64(sqlite3_stmt *st, int i, uint64_t v, int zero_is_null) {
  if (zero_is_null && v == 0) sqlite3_bind_null(st, i);
  else sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static inline int step_reset(importer_t *im, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sql_fail(im, "insert");
  if (++im->pending_rows >= IMPORT_BATCH) {
    im->pending_rows = 0;
    if (exec_sql(im, "COMMIT; BEGIN") != 0) return -1;
  }
  return 0;
}

/* ---- rows: bound and stepped here, or on the writer thread ------------
 * While the record stream is imported, a second thread steps the SQLite
 * statements (import_writer.c): the rows are queued in order, as
 * (parameter, value) lists, and the writer binds and steps them, in the
 * same order, so the database is the same. Every statement of the stream
 * goes through row_begin .. row_step; with no writer running they bind and
 * step at once. A statement's parameters keep their values from the
 * previous row (sqlite3_reset keeps bindings): a row binds what changed. */
typedef struct writer_s writer_t;
#define ROW_NULL 0
#define ROW_INT 1
#define ROW_TEXT 2
#define ROW_ROWS 3 /* (n << 8 | ROW_ROWS, then n rows of ROWS_WORDS words): see rows_begin */
#define ROWS_COLS 12               /* values of a row of lwv_rows */
#define ROWS_WORDS (ROWS_COLS + 1) /* the values, then a mask of the NULL ones */
int lwv_wr_start(importer_t *im);  /* starts the writer (unless LWV_WRITER=0); 0 or -1 */
/* Steps everything queued and ends the writer: 0, or -1 if a row failed
 * (the writer's message in im->err if report). */
int lwv_wr_stop(importer_t *im, int report);
/* queues the row begun (row_begin reserved room for its parameters) */
int lwv_wr_row_end(importer_t *im);
/* room for a row of `words` words of parameters in the batch being filled
 * (im->wpos is where they go); -1 if the writer failed (im->err says why) */
int lwv_wr_reserve(importer_t *im, sqlite3_stmt *st, size_t words);

/* Begins a row of statement st that binds at most nparams parameters. */
static inline int row_begin(importer_t *im, sqlite3_stmt *st, int nparams) {
  im->row_st = st;
  if (im->wr && lwv_wr_reserve(im, st, 2 * (size_t)nparams) != 0) return -1;
  return 0;
}

/* Begins one step of statement st reading n rows from the virtual table
 * lwv_rows (import_lifetimes.c: INSERT INTO calls SELECT * FROM lwv_rows):
 * returns where the caller writes them (n × ROWS_WORDS words; the last of
 * a row is the mask of its NULL columns, bit c for column c), then
 * row_step. The rows travel to the writer as they are (no binding at all);
 * without a writer they are read from im->rows_own (room for max_rows). */
static inline uint64_t *rows_begin(importer_t *im, sqlite3_stmt *st, size_t n) {
  im->row_st = st;
  if (im->wr == NULL) {
    im->rows = im->rows_own;
    im->nrows = n;
    return im->rows_own;
  }
  if (lwv_wr_reserve(im, st, 1 + n * ROWS_WORDS) != 0) return NULL;
  im->wpos[0] = (uint64_t)n << 8 | ROW_ROWS;
  uint64_t *rows = im->wpos + 1;
  im->wpos += 1 + n * ROWS_WORDS;
  return rows;
}
static inline void row_int(importer_t *im, int i, uint64_t v) {
  if (im->wr) {
    im->wpos[0] = (uint64_t)i << 8 | ROW_INT;
    im->wpos[1] = v;
    im->wpos += 2;
  } else {
    sqlite3_bind_int64(im->row_st, i, (sqlite3_int64)v);
  }
}
static inline void row_null(importer_t *im, int i) {
  if (im->wr) *im->wpos++ = (uint64_t)i << 8 | ROW_NULL;
  else sqlite3_bind_null(im->row_st, i);
}
/* v, or NULL when v is 0 and zero_is_null */
static inline void row_u64(importer_t *im, int i, uint64_t v, int zero_is_null) {
  if (zero_is_null && v == 0) row_null(im, i);
  else row_int(im, i, v);
}
/* A copy of s (the writer frees it); -1 when out of memory. */
static inline int row_text(importer_t *im, int i, const char *s) {
  if (im->wr) {
    char *c = strdup(s);
    if (c == NULL) return -1;
    im->wpos[0] = (uint64_t)i << 8 | ROW_TEXT;
    im->wpos[1] = (uint64_t)(uintptr_t)c;
    im->wpos += 2;
  } else {
    sqlite3_bind_text(im->row_st, i, s, -1, SQLITE_TRANSIENT);
  }
  return 0;
}
static inline int row_step(importer_t *im) {
  if (im->wr) return lwv_wr_row_end(im);
  return step_reset(im, im->row_st);
}

static inline int meta_put_int(importer_t *im, const char *key, int64_t v) {
  if (row_begin(im, im->ins_meta, 2)) return -1;
  if (row_text(im, 1, key)) return fail(im, "%s", "out of memory");
  row_int(im, 2, (uint64_t)v);
  return row_step(im);
}

static inline int meta_put_text(importer_t *im, const char *key, const char *v) {
  if (row_begin(im, im->ins_meta, 2)) return -1;
  if (row_text(im, 1, key) || row_text(im, 2, v)) return fail(im, "%s", "out of memory");
  return row_step(im);
}

static inline void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t ncap = *cap ? *cap * 2 : 64;
  while (ncap < need) ncap *= 2;
  void *np = realloc(p, ncap * elem);
  if (np == NULL) return NULL;
  memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
  *cap = ncap;
  return np;
}

/* Progress bar on stderr: the record stream = 0..85%, stacks and
 * indexes = 85..100%. Drawn only after the import has run 0.3 s. */
static inline void progress(importer_t *im, double frac, const char *phase) {
  if (!im->progress) return;
  double t = now_s();
  if (t - im->t_start < 0.3 || t - im->t_last_draw < 0.1) return;
  im->t_last_draw = t;
  im->drawn = 1;
  if (frac > 1) frac = 1;
  int w = 30, fill = (int)(frac * w);
  fprintf(stderr, "\rlwview: %-9s [%.*s%*s] %3d%%  %.1fM records  %.1fs ", phase, fill,
          "##############################", w - fill, "", (int)(frac * 100),
          im->records / 1e6, t - im->t_start);
  fflush(stderr);
}

static inline thread_t_ *thread_get(importer_t *im, uint64_t tid) {
  if (im->nthreads && im->threads[im->last_thread].tid == tid) return &im->threads[im->last_thread];
  int added;
  uint64_t *slot = u64map_put(&im->thread_ids, tid + 1, &added);
  if (slot == NULL) return NULL;
  if (added) {
    thread_t_ *v = grow(im->threads, &im->capthreads, im->nthreads + 1, sizeof *v);
    if (v == NULL) return NULL;
    im->threads = v;
    *slot = im->nthreads;
    memset(&v[im->nthreads], 0, sizeof *v);
    v[im->nthreads++].tid = tid;
  }
  im->last_thread = *slot;
  return &im->threads[*slot];
}

static inline site_t *site_get(importer_t *im, uint32_t stack_id) {
  site_t *v = grow(im->sites, &im->capsites, (size_t)stack_id + 1, sizeof *v);
  if (v == NULL) return NULL;
  im->sites = v;
  return &v[stack_id];
}


/* import_stacks.c */
int lwv_im_on_module(importer_t *im, const lwt_record_t *r);
int lwv_im_on_stack(importer_t *im, const lwt_record_t *r);
int lwv_im_write_stacks(importer_t *im); /* symbolises and writes stacks, frames, symbols */

/* import_source.c */
int lwv_im_source_lines(importer_t *im); /* symbols.source through batched addr2line */

/* import_lifetimes.c: records with a seq, in file order; derived and
 * written in seq order (calls, allocator_events, live_index, time_index,
 * site_stretches; sites and threads are filled in memory) */
typedef struct lifetimes_s lifetimes_t;
int lwv_im_lt_open(importer_t *im);
int lwv_im_lt_call(importer_t *im, const lwt_record_t *r);
int lwv_im_lt_event(importer_t *im, const lwt_record_t *r);
int lwv_im_lt_other(importer_t *im, uint64_t seq); /* thread start/exit, fork */
int lwv_im_lt_snapshot(importer_t *im, uint64_t seq, uint64_t mapped, uint64_t committed);
int lwv_im_lt_finish(importer_t *im); /* the rest, leaks, time_index, meta */
void lwv_im_lt_free(importer_t *im);

#endif /* LWV_IMPORT_INTERNAL_H */
