/* Trace → SQLite import (schema: viewer/schema.sql). */
#ifndef LWV_IMPORT_H
#define LWV_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#define LWV_SCHEMA_VERSION 9

/* live_index holds the blocks whose lifetime has a level (schema.sql) of at
 * least this; the blocks of lower levels live at seq S started in S's
 * aligned range of 2^LWV_LIVE_SCAN_LEVEL seqs and are found by scanning
 * those calls rows (db.c, lwv_db_live_at). */
#define LWV_LIVE_SCAN_LEVEL 14

typedef struct lwv_import_stats_s {
  uint64_t records; /* trace records read */
  uint64_t calls;   /* CALL records */
  double seconds;   /* wall time of the whole import */
} lwv_import_stats_t;

/* Imports trace_path into db_path. The database is built in
 * "db_path.tmp" and renamed over db_path when complete, so an interrupted
 * import never leaves a half-filled db_path. A trace cut short or damaged
 * is imported up to the damage, with the reader's message kept in meta
 * ('error') and copied to warn (if non-NULL). progress: draw a progress bar
 * on stderr. Returns 0, or -1 with a one-line message in err. */
int lwv_import(const char *trace_path, const char *db_path, int progress,
               lwv_import_stats_t *stats, char *warn, size_t warnlen, char *err, size_t errlen);

/* 1 if db_path holds a complete import, with this schema version, of
 * trace_path as it is on disk now (same size and mtime); else 0. */
int lwv_import_is_current(const char *trace_path, const char *db_path);

/* Default database path for a trace: "X.lwt.zst", "X.zst", "X.lwt" → "X.db". */
void lwv_db_path_for(const char *trace_path, char *out, size_t outlen);

#endif /* LWV_IMPORT_H */
