/* Trace → SQLite import, in one pass over the trace.
 *
 * The trace is streamed through tracer/trace_read.h only. Calls and
 * allocator events go to import_lifetimes.c, which puts them back in seq
 * order (the trace interleaves per-thread chunks, so file order is not seq
 * order) in a fixed-size reorder ring (callbuf.h), follows every block
 * from allocation to free, and appends the calls and allocator_events
 * tables in seq order. Modules and pool snapshots go to SQLite as they
 * come; stacks and threads are kept in memory (bounded by the unique stacks
 * and threads) and written at the end, stacks symbolised from the module
 * map (elfsym.c). Memory does not grow with the trace's length.
 * Rows go through prepared statements in transactions of IMPORT_BATCH rows,
 * stepped while the stream is read by a writer thread (import_writer.c) fed
 * through a bounded queue, in the order they were made; indexes are built
 * after the load. */
#include "import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "import_internal.h"
#include "schema_sql.h"

/* ---- pass 1: the trace stream ----------------------------------------- */

static int on_snapshot(importer_t *im, const lwt_record_t *r) {
  if (lwv_im_lt_snapshot(im, r->seq, r->pool.mapped_bytes, r->pool.committed_bytes) != 0) return -1;
  im->snaps++;
  if (row_begin(im, im->ins_snap, 7)) return -1;
  row_int(im, 1, im->snaps);
  row_int(im, 2, r->time_ns);
  row_int(im, 3, r->seq);
  row_int(im, 4, r->pool.live_bytes);
  row_int(im, 5, r->pool.mapped_bytes);
  row_int(im, 6, r->pool.committed_bytes);
  row_int(im, 7, r->pool.unmerged_bytes);
  if (row_step(im) != 0) return -1;
  for (uint32_t c = 0; c < r->pool.nclasses; c++) {
    if (row_begin(im, im->ins_class, 5)) return -1;
    row_int(im, 1, im->snaps);
    row_int(im, 2, c);
    row_int(im, 3, r->pool.classes[c].slot_size);
    row_int(im, 4, r->pool.classes[c].slots_used);
    row_int(im, 5, r->pool.classes[c].slots_total);
    if (row_step(im) != 0) return -1;
  }
  return 0;
}

static int on_record(importer_t *im, const lwt_record_t *r) {
  im->records++;
  if (r->seq > im->last_seq) im->last_seq = r->seq;
  if (r->time_ns > im->end_ns) im->end_ns = r->time_ns;
  thread_t_ *t;
  switch (r->kind) {
  case LWT_CALL: return lwv_im_lt_call(im, r);
  case LWT_EVENT: return lwv_im_lt_event(im, r);
  case LWT_MODULE: return lwv_im_on_module(im, r);
  case LWT_STACK: return lwv_im_on_stack(im, r);
  case LWT_POOL_SNAPSHOT: return on_snapshot(im, r);
  case LWT_THREAD_START:
  case LWT_THREAD_NAME:
    if ((t = thread_get(im, r->tid)) == NULL) return fail(im, "%s", "out of memory");
    if (r->kind == LWT_THREAD_START && (!t->started || r->time_ns < t->start_ns)) {
      t->started = 1;
      t->start_ns = r->time_ns;
    }
    if (r->thread.name && r->thread.name[0])
      snprintf(t->name, sizeof t->name, "%s", r->thread.name);
    return r->kind == LWT_THREAD_START ? lwv_im_lt_other(im, r->seq) : 0;
  case LWT_THREAD_EXIT:
    if ((t = thread_get(im, r->tid)) == NULL) return fail(im, "%s", "out of memory");
    t->exited = 1;
    t->end_ns = r->time_ns;
    return lwv_im_lt_other(im, r->seq);
  case LWT_PROCESS:
    if (r->process.argc > 0) {
      char args[1024] = "";
      size_t len = 0;
      for (uint32_t i = 0; i < r->process.argc && len + 2 < sizeof args; i++)
        len += (size_t)snprintf(args + len, sizeof args - len, "%s%s", i ? " " : "",
                                r->process.argv[i]);
      return meta_put_text(im, "argv", args);
    }
    return 0;
  case LWT_FORK: im->forks++; return r->seq ? lwv_im_lt_other(im, r->seq) : 0;
  case LWT_EXEC: im->execs++; return 0;
  case LWT_LOST: im->lost += r->lost.count; return 0;
  case LWT_END:
    im->have_end = 1;
    if (r->end.lost > im->lost) im->lost = r->end.lost;
    return 0;
  default: return 0;
  }
}

static int write_aggregates(importer_t *im) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (prep(im, &st, "INSERT INTO sites VALUES(?,?,?,?,?,?)")) goto out;
  for (size_t i = 0; i < im->capsites; i++) {
    const site_t *s = &im->sites[i];
    if (s->allocs == 0) continue;
    bind_u64(st, 1, i, 0);
    bind_u64(st, 2, s->allocs, 0);
    bind_u64(st, 3, s->bytes, 0);
    bind_u64(st, 4, s->max_size, 0);
    bind_u64(st, 5, s->leaked, 0);
    bind_u64(st, 6, s->leaked_bytes, 0);
    if (step_reset(im, st) != 0) goto out;
  }
  sqlite3_finalize(st);
  if (prep(im, &st, "INSERT INTO threads VALUES(?,?,?,?,?,?,?,?,?,?)")) goto out;
  for (size_t i = 0; i < im->nthreads; i++) {
    const thread_t_ *t = &im->threads[i];
    bind_u64(st, 1, t->tid, 0);
    if (t->name[0]) sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 2);
    bind_u64(st, 3, t->start_ns, 0);
    if (t->exited) bind_u64(st, 4, t->end_ns, 0);
    else sqlite3_bind_null(st, 4);
    bind_u64(st, 5, t->calls, 0);
    bind_u64(st, 6, t->allocs, 0);
    bind_u64(st, 7, t->alloc_bytes, 0);
    bind_u64(st, 8, t->frees, 0);
    bind_u64(st, 9, t->freed_bytes, 0);
    bind_u64(st, 10, t->leaked_bytes, 0);
    if (step_reset(im, st) != 0) goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(st);
  return rc;
}

static int write_lookups(importer_t *im) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (prep(im, &st, "INSERT INTO ops VALUES(?,?)")) goto out;
#define LWV_OP_ROW(name, code)                                                                \
  bind_u64(st, 1, code, 0);                                                                  \
  sqlite3_bind_text(st, 2, lwt_op_name(code), -1, SQLITE_STATIC);                            \
  if (step_reset(im, st) != 0) goto out;
  LW_OP_LIST(LWV_OP_ROW)
#undef LWV_OP_ROW
  sqlite3_finalize(st);
  if (prep(im, &st, "INSERT INTO event_kinds VALUES(?,?,?,?,?)")) goto out;
#define LWV_EV_ROW(name, code, a, b, c)                                                       \
  bind_u64(st, 1, code, 0);                                                                  \
  sqlite3_bind_text(st, 2, #name, -1, SQLITE_STATIC);                                        \
  sqlite3_bind_text(st, 3, a, -1, SQLITE_STATIC);                                            \
  sqlite3_bind_text(st, 4, b, -1, SQLITE_STATIC);                                            \
  sqlite3_bind_text(st, 5, c, -1, SQLITE_STATIC);                                            \
  if (step_reset(im, st) != 0) goto out;
  LW_EVENT_LIST(LWV_EV_ROW)
#undef LWV_EV_ROW
  rc = 0;
out:
  sqlite3_finalize(st);
  return rc;
}

/* ---- driver ------------------------------------------------------------ */

static int create_schema(importer_t *im, int indexes) {
  const char *mark = strstr(lwv_schema_sql, "-- @indexes");
  if (mark == NULL) return fail(im, "%s", "schema.sql lacks its @indexes mark");
  if (indexes) return exec_sql(im, mark);
  char *tables = strndup(lwv_schema_sql, (size_t)(mark - lwv_schema_sql));
  if (tables == NULL) return fail(im, "%s", "out of memory");
  int rc = exec_sql(im, tables);
  free(tables);
  return rc;
}

/* Finalizes every statement and closes the database (sqlite3_close fails,
 * keeping its lock, while a statement is open). */
static void importer_close_db(importer_t *im) {
  lwv_wr_stop(im, 0); /* (a failed import: what it queued is dropped with the file) */
  lwv_im_lt_free(im);
  sqlite3_stmt **sts[] = {&im->ins_event, &im->ins_module, &im->ins_snap,
                          &im->ins_class, &im->ins_ti, &im->ins_meta};
  for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) {
    sqlite3_finalize(*sts[i]);
    *sts[i] = NULL;
  }
  if (im->db) sqlite3_close(im->db);
  im->db = NULL;
}

static void importer_free(importer_t *im) {
  importer_close_db(im);
  for (size_t i = 0; i < im->nmods; i++) {
    int shared = 0; /* symbol tables are shared between segments of a file */
    for (size_t j = 0; j < i; j++) shared |= im->mods[j].syms == im->mods[i].syms;
    if (!shared) elfsym_free(im->mods[i].syms);
    free(im->mods[i].path);
    free(im->mods[i].build_id);
  }
  free(im->mods);
  for (size_t i = 0; i < im->nstacks; i++) free(im->stacks[i].ips);
  free(im->stacks);
  free(im->threads);
  free(im->sites);
  u64map_free(&im->stack_ids);
  u64map_free(&im->thread_ids);
  lwv_im_lt_free(im);
}

int lwv_import(const char *trace_path, const char *db_path, int show_progress,
               lwv_import_stats_t *stats, char *warn, size_t warnlen, char *err, size_t errlen) {
  importer_t im;
  memset(&im, 0, sizeof im);
  im.trace_path = trace_path;
  im.err = err;
  im.errlen = errlen;
  im.progress = show_progress;
  im.t_start = now_s();
  if (warn && warnlen) warn[0] = '\0';

  struct stat st;
  if (stat(trace_path, &st) != 0) {
    snprintf(err, errlen, "%s: %s", trace_path, strerror(errno));
    return -1;
  }
  im.file_size = (uint64_t)st.st_size;
  lwt_reader_t *rd = lwt_open(trace_path, err, errlen);
  if (rd == NULL) return -1;

  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", db_path);
  im.db_tmp_path = tmp;
  unlink(tmp);
  int rc = -1, rrc;
  char reader_err[1300] = "";
  if (sqlite3_open_v2(tmp, &im.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot create database (choose another with --db): %s", tmp,
             im.db ? sqlite3_errmsg(im.db) : "out of memory");
    goto out;
  }
  if (exec_sql(&im, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                    "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-16384; PRAGMA page_size=16384; BEGIN") ||
      create_schema(&im, 0) ||
      prep(&im, &im.ins_event, "INSERT OR IGNORE INTO allocator_events VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_module, "INSERT INTO modules VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_snap, "INSERT INTO pool_snapshots VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_class, "INSERT INTO pool_classes VALUES(?,?,?,?,?)") ||
      prep(&im, &im.ins_ti, "INSERT INTO time_index VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_meta, "INSERT OR REPLACE INTO meta VALUES(?,?)") || lwv_im_lt_open(&im) ||
      lwv_wr_start(&im))
    goto out;

  lwt_record_t r;
  while ((rrc = lwt_next(rd, &r)) == 1) {
    if (on_record(&im, &r) != 0) goto out;
    if ((im.records & 0xffff) == 0 && im.file_size)
      progress(&im, 0.85 * (double)lwt_offset(rd) / (double)im.file_size, "importing");
  }
  if (rrc < 0) {
    snprintf(reader_err, sizeof reader_err, "%s", lwt_error(rd));
    if (im.records == 0) {
      snprintf(err, errlen, "%s", reader_err);
      goto out;
    }
    if (warn && warnlen) snprintf(warn, warnlen, "%s (imported the %llu records before it)",
                                  reader_err, (unsigned long long)im.records);
  }
  const lwt_header_t *h = lwt_header(rd);
  char version[32];
  snprintf(version, sizeof version, "%u.%u", h->version_major, h->version_minor);
  double t_stream = 0, c_stream = 0, t_sym = 0, c_sym = 0;
  if (lwv_im_lt_finish(&im) || lwv_wr_stop(&im, 1) ||
      ((t_stream = now_s()), (c_stream = cpu_s()), write_lookups(&im)) ||
      lwv_im_write_stacks(&im) || lwv_im_source_lines(&im) ||
      ((t_sym = now_s()), (c_sym = cpu_s()), write_aggregates(&im)) ||
      meta_put_int(&im, "schema_version", LWV_SCHEMA_VERSION) ||
      meta_put_text(&im, "trace_path", trace_path) ||
      meta_put_int(&im, "trace_size", (int64_t)st.st_size) ||
      meta_put_int(&im, "trace_mtime_ns",
                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec) ||
      meta_put_text(&im, "format_version", version) ||
      meta_put_int(&im, "pid", h->pid) || meta_put_int(&im, "ppid", h->ppid) ||
      meta_put_text(&im, "exe", h->exe ? h->exe : "") ||
      meta_put_int(&im, "start_realtime_ns", (int64_t)h->start_realtime_ns) ||
      meta_put_int(&im, "end_ns", (int64_t)im.end_ns) ||
      meta_put_int(&im, "last_seq", (int64_t)im.last_seq) ||
      meta_put_int(&im, "records", (int64_t)im.records) ||
      meta_put_int(&im, "calls", (int64_t)im.calls) ||
      meta_put_int(&im, "events", (int64_t)im.events) ||
      meta_put_int(&im, "lost", (int64_t)im.lost) ||
      meta_put_int(&im, "forks", (int64_t)im.forks) ||
      meta_put_int(&im, "execs", (int64_t)im.execs) ||
      meta_put_int(&im, "has_end_record", im.have_end) ||
      (reader_err[0] && meta_put_text(&im, "error", reader_err)))
    goto out;
  progress(&im, 0.85, "indexing");
  if (create_schema(&im, 1) || meta_put_int(&im, "complete", 1) || exec_sql(&im, "COMMIT"))
    goto out;
  importer_close_db(&im);
  if (getenv("LWV_TIMING")) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "lwview: wall/cpu s: read+derive+write %.2f/%.2f  symbols %.2f/%.2f"
            "  indexes %.2f/%.2f; %llu long-lived blocks updated; max RSS %ld MB\n",
            t_stream - im.t_start, c_stream, t_sym - t_stream, c_sym - c_stream, now_s() - t_sym,
            cpu_s() - c_sym, (unsigned long long)im.long_lived, ru.ru_maxrss / 1024);
  }
  if (rename(tmp, db_path) != 0) {
    snprintf(err, errlen, "%s: %s", db_path, strerror(errno));
    goto out;
  }
  rc = 0;
  if (stats) {
    stats->records = im.records;
    stats->calls = im.calls;
    stats->seconds = now_s() - im.t_start;
  }
out:
  if (im.drawn) fprintf(stderr, "\n");
  lwt_close(rd);
  importer_free(&im);
  if (rc != 0) unlink(tmp);
  return rc;
}

int lwv_import_is_current(const char *trace_path, const char *db_path) {
  struct stat st;
  if (stat(trace_path, &st) != 0) return 0;
  sqlite3 *db = NULL;
  int current = 0;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_stmt *q = NULL;
    const char *sql = "SELECT (SELECT value FROM meta WHERE key='complete'),"
                      "(SELECT value FROM meta WHERE key='schema_version'),"
                      "(SELECT value FROM meta WHERE key='trace_size'),"
                      "(SELECT value FROM meta WHERE key='trace_mtime_ns')";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
      current = sqlite3_column_int(q, 0) == 1 && sqlite3_column_int(q, 1) == LWV_SCHEMA_VERSION &&
                sqlite3_column_int64(q, 2) == (sqlite3_int64)st.st_size &&
                sqlite3_column_int64(q, 3) ==
                    (sqlite3_int64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return current;
}

void lwv_db_path_for(const char *trace_path, char *out, size_t outlen) {
  size_t n = strlen(trace_path);
  static const char *const exts[] = {".lwt.zst", ".zst", ".lwt"};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    size_t e = strlen(exts[i]);
    if (n > e && strcmp(trace_path + n - e, exts[i]) == 0) {
      n -= e;
      break;
    }
  }
  snprintf(out, outlen, "%.*s.db", (int)n, trace_path);
}
