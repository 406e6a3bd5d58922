/* Read side of the lwview database: every query the views run, as
 * prepared statements (schema: viewer/schema.sql). */
#ifndef LWV_DB_H
#define LWV_DB_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define LWV_NONE UINT64_MAX /* "no value" (SQL NULL) */

/* One time_index stretch (see schema.sql). */
typedef struct lwv_ti_s {
  uint64_t t0, t1, seq0, seq1, calls, live, live_max, blocks, mapped, committed, coalesce;
} lwv_ti_t;

/* A block live at some seq. */
typedef struct lwv_block_s {
  uint64_t seq, addr, size, time_ns;
  uint32_t tid, stack_id;
} lwv_block_t;

typedef struct lwv_class_s {
  uint64_t slot_size, slots_used, slots_total;
} lwv_class_t;

typedef struct lwv_snapshot_s {
  uint64_t id, time_ns, live, mapped, committed, unmerged;
  uint32_t nclasses;
  lwv_class_t classes[64];
} lwv_snapshot_t;

typedef struct lwv_region_s {
  uint64_t addr, bytes;
} lwv_region_t;

typedef struct lwv_run_s {
  uint64_t seq, time_ns, tid, chunks, bytes, ns;
} lwv_run_t;

typedef struct lwv_site_s {
  uint32_t stack_id;
  char label[120];
  uint64_t allocs, bytes, leaked, leaked_bytes;
  uint64_t live, live_bytes; /* at the cursor (filled by the view) */
} lwv_site_t;

typedef struct lwv_frame_s {
  uint32_t level;
  uint64_t ip;
  char text[200]; /* "func+0x12  (libfoo.so+0x1234)" */
} lwv_frame_t;

typedef struct lwv_thread_s {
  uint64_t tid;
  char name[64];
  uint64_t start_ns, end_ns; /* end_ns LWV_NONE: ran to the end */
  uint64_t calls, allocs, alloc_bytes, frees, freed_bytes, leaked_bytes;
  uint64_t live_bytes; /* at the cursor (filled by the view) */
} lwv_thread_t;

typedef struct lwv_region_cp_s {
  uint64_t seq; /* the set after every OS event with seq <= this */
  lwv_region_t *v;
  size_t n;
} lwv_region_cp_t;

typedef struct lwv_db_s {
  sqlite3 *db;
  char path[1024];
  /* facts from meta */
  char exe[256], error[512];
  uint64_t pid, end_ns, last_seq, calls, records, lost, peak_live, peak_seq;
  uint64_t final_live, final_blocks, n_snapshots, n_runs;
  /* the whole time index, in memory (a few rows per thousand calls) */
  lwv_ti_t *ti;
  size_t nti;
  /* live-set cache: blocks live after call `live_seq` */
  lwv_block_t *live;
  size_t nlive, caplive;
  uint64_t live_seq;
  int live_valid;
  /* OS-mapping checkpoints for regions_at */
  lwv_region_cp_t *rcp;
  size_t nrcp;
  int rcp_built;
  sqlite3_stmt *q_seq_at, *q_live, *q_live_scan, *q_snap, *q_classes, *q_frames, *q_last_run, *q_freed,
      *q_regions;
} lwv_db_t;

/* Opens an lwview database (read-only). NULL with a message in err if the
 * file is not one, or was left by an import that did not finish. */
lwv_db_t *lwv_db_open(const char *path, char *err, size_t errlen);
void lwv_db_close(lwv_db_t *d);

/* Index of the last stretch starting at or before time t (0 if none). */
size_t lwv_db_ti_index(const lwv_db_t *d, uint64_t t);
/* Time of the call with this seq (0 if there is none). */
uint64_t lwv_db_call_time(lwv_db_t *d, uint64_t seq);
/* Largest call seq with time <= t (0 before the first call). */
uint64_t lwv_db_seq_at(lwv_db_t *d, uint64_t t);
/* Blocks live after call seq (cached until seq changes); count in *n.
 * NULL with *n == 0 on error or when none. */
const lwv_block_t *lwv_db_live_at(lwv_db_t *d, uint64_t seq, size_t *n);
/* Latest pool snapshot at or before t; 0 if there is none. */
int lwv_db_snapshot_at(lwv_db_t *d, uint64_t t, lwv_snapshot_t *out);
/* OS mappings alive after seq (replays OS_MAP/UNMAP/REMAP); malloc'ed array. */
lwv_region_t *lwv_db_regions_at(lwv_db_t *d, uint64_t seq, size_t *n);
/* Seq of the last COALESCE_RUN at or before seq (0 if none). */
uint64_t lwv_db_last_run(lwv_db_t *d, uint64_t seq);
/* Blocks freed in (after, upto]: addr/size pairs; malloc'ed array. */
lwv_region_t *lwv_db_freed_between(lwv_db_t *d, uint64_t after, uint64_t upto, size_t *n);
/* Coalesce runs with time in [t0, t1], ordered by key (0 time (seq), 1 chunks,
 * 2 bytes, 3 duration; descending except time); at most max; malloc'ed. */
lwv_run_t *lwv_db_runs(lwv_db_t *d, uint64_t t0, uint64_t t1, int key, size_t max, size_t *n);
/* Call sites: whole-trace totals (all == 1) or blocks allocated with seq in
 * [seq0, seq1]; malloc'ed, unsorted. */
lwv_site_t *lwv_db_sites(lwv_db_t *d, int all, uint64_t seq0, uint64_t seq1, size_t *n);
/* Symbolised frames of a stack, innermost first; malloc'ed. */
lwv_frame_t *lwv_db_frames(lwv_db_t *d, uint32_t stack_id, size_t *n);
lwv_thread_t *lwv_db_threads(lwv_db_t *d, size_t *n);

/* "12.3 MiB"-style size and "1.234 s"-style time into buf. */
const char *lwv_fmt_bytes(uint64_t v, char *buf, size_t len);
const char *lwv_fmt_ns(uint64_t ns, char *buf, size_t len);

#endif /* LWV_DB_H */
