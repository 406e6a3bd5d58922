/* Importer: the seq-ordered stream. Records reach the importer in file
 * order; calls and allocator events are parked in the reorder ring
 * (callbuf.h) at their seq. As soon as the seqs from `next` on have all
 * arrived, they are derived in seq order: every block is followed by
 * address from allocation to free (the live map: bounded by the live
 * blocks), sites, threads and time_index accumulate, and a free records
 * the end of the block it released. CALLBUF_BEHIND seqs later a slot is
 * written: calls rows and allocator_events rows are appended in seq order
 * (the fastest SQLite insert; calls rows CALL_ROWS a statement, through the
 * lwv_rows virtual table). A block freed after its row was written (a
 * long-lived one) gets its end through one UPDATE; its live_index key is
 * known when it ends (leaks: at the end of the trace), and the live_index
 * rows are appended in key order at the end (sorted runs in a scratch
 * file, merged). Rows are stepped by the writer thread (import_writer.c).
 *
 * Memory is the ring, the live map, one site_stretches entry per stack and
 * time_index stretch, time_index itself, which is kept at 2048..4096
 * stretches by merging neighbours pairwise (doubling the stretch bounds)
 * whenever it reaches 4096, and one run of live_index keys: none of it
 * grows with the trace's length. */
#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include "import_internal.h"

#define TI_KEEP (2 * TI_TARGET) /* stretches held; merged pairwise or half written when full */
#define CALL_ROWS 1024 /* calls rows per INSERT ... SELECT FROM lwv_rows */
#define LIVE_ROWS 64 /* rows per multi-row INSERT into live_index */
#define LIVE_RUN (1u << 18) /* live_index keys sorted in memory, then a run in the scratch file;
                               LWV_LIVE_RUN=N (2..LIVE_RUN) makes runs of N (tests) */
#define LIVE_READ 1024      /* keys read at once from each run when they are merged */
#define SLOT_SKIP 253 /* op of the slot of a seq'd record that is neither (thread start...) */
#define SLOT_DONE 252 /* op of the slot of a late record (derived and written at once) */
static inline int slot_is_call(const call_slot_t *sl) { return sl->op != 0 && sl->op < SLOT_DONE; }

/* live_index key of a lifetime [seq, end): level << 41 | seq, level being
 * that of the smallest aligned dyadic range of seqs holding [seq, end-1]
 * (0..IVL_LEVELS-1). db.c's live-at query visits, per level, the keys of
 * the blocks that started in the range holding a given seq. */
static uint64_t live_key(uint64_t seq, uint64_t end) {
  uint64_t last = end > seq ? end - 1 : seq;
  uint64_t x = seq ^ last;
  unsigned level = x ? 64u - (unsigned)__builtin_clzll(x) : 0;
  return (uint64_t)level << 41 | seq;
}

typedef struct live_s { /* a live block (value of the address map: index) */
  uint64_t seq, size;
  uint32_t stack_id, tid;
  uint64_t stretch; /* time_index stretch of its allocation (renumbered by merges) */
} live_t;

typedef struct ti_row_s {
  uint64_t t0, t1, seq0, seq1, calls, alloc, freed, live_bytes, live_max, live_blocks;
  uint64_t mapped, committed, coalesce_runs;
  int have_committed;
} ti_row_t;

typedef struct site_stretch_s {
  uint64_t stretch, stack, allocs, bytes, leaked, leaked_bytes;
} site_stretch_t;

struct lifetimes_s {
  callbuf_t ring;
  int started;
  uint64_t next;   /* every seq below it was derived */
  uint64_t hi;     /* 1 + highest seq parked */
  uint64_t wscan;  /* next seq to scan for writing (tail <= wscan <= next) */
  uint64_t pend[CALL_ROWS]; /* calls scanned, not yet inserted */
  int npend;
  uint64_t livebuf[LIVE_ROWS]; /* live_index rows not yet inserted (ascending) */
  int nlive;
  uint64_t *lkeys; /* live_index keys since the last run */
  size_t nlkeys, live_run; /* LIVE_RUN, or LWV_LIVE_RUN (tests: many runs) */
  FILE *runs;      /* the scratch file: sorted runs of LIVE_RUN keys */
  size_t nruns;
  sqlite3_stmt *ins_calls, *ins_lives, *ins_live, *upd_end, *ins_ss;

  u64map_t addrs; /* live block address -> index in lv */
  live_t *lv;
  size_t nlv, caplv;
  uint64_t *lvfree; /* free indexes of lv */
  size_t nlvfree, caplvfree;

  snap_t *snaps; /* pool snapshots not yet reached */
  size_t snap_head, nsnaps, capsnaps;

  u64map_t regions; /* OS mapping start -> bytes */
  uint64_t live_bytes, live_blocks, peak_live, peak_seq, committed;
  /* mapped = snap_mapped + (ev_mapped - ev_at_snap): the latest snapshot's
   * own counter moved by the OS events since (mappings made before the
   * trace started appear in snapshots but never as events) */
  int64_t mapped, ev_mapped, snap_mapped, ev_at_snap;
  uint64_t coalesce_runs, unknown_frees, reused_live, late, updates, skipped, derived;
  uint64_t max_call_seq; /* largest rowid in calls so far (see bind_call) */
  int have_committed;

  ti_row_t *ti;  /* finished stretches not yet written (TI_KEEP) */
  size_t nti;
  uint64_t ti_base; /* stretches written: ti[i] has id ti_base + i + 1 */
  ti_row_t cur;  /* the stretch being filled (cur.calls calls so far) */
  uint64_t t_max, ti_calls_cap, ti_ns_cap;
  u64map_t ss_index; /* (stretch << 32 | stack id) + 1 -> index in ss */
  site_stretch_t *ss;
  size_t nss, capss;
};

/* ---- writing rows ------------------------------------------------------ */

/* lwv_rows: an eponymous virtual table (SELECT * FROM lwv_rows) over the
 * rows im->rows (im->nrows of ROWS_WORDS words), set before each step of
 * INSERT OR IGNORE INTO calls SELECT * FROM lwv_rows. Each column is read
 * from the row as it was made: no parameters are bound per row (12 binds
 * and 12 OP_Variable copies a row with a VALUES list). */
typedef struct rows_cursor_s {
  sqlite3_vtab_cursor base;
  const importer_t *im;
  size_t i;
} rows_cursor_t;

typedef struct rows_vtab_s {
  sqlite3_vtab base;
  const importer_t *im;
} rows_vtab_t;

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **vt, char **err) {
  (void)argc;
  (void)argv;
  (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(seq, time_ns, tid, op, size, align, addr,"
                                    " in_addr, free_seq, stack_id, end_seq, freed_size)");
  if (rc != SQLITE_OK) return rc;
  rows_vtab_t *v = sqlite3_malloc(sizeof *v);
  if (v == NULL) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->im = aux;
  *vt = &v->base;
  return SQLITE_OK;
}
static int rows_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}
static int rows_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  info->estimatedCost = CALL_ROWS;
  info->estimatedRows = CALL_ROWS;
  return SQLITE_OK;
}
static int rows_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **cur) {
  rows_cursor_t *c = sqlite3_malloc(sizeof *c);
  if (c == NULL) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  c->im = ((rows_vtab_t *)vt)->im;
  *cur = &c->base;
  return SQLITE_OK;
}
static int rows_close(sqlite3_vtab_cursor *cur) {
  sqlite3_free(cur);
  return SQLITE_OK;
}
static int rows_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxstr, int argc,
                       sqlite3_value **argv) {
  (void)idx;
  (void)idxstr;
  (void)argc;
  (void)argv;
  ((rows_cursor_t *)cur)->i = 0;
  return SQLITE_OK;
}
static int rows_next(sqlite3_vtab_cursor *cur) {
  ((rows_cursor_t *)cur)->i++;
  return SQLITE_OK;
}
static int rows_eof(sqlite3_vtab_cursor *cur) {
  const rows_cursor_t *c = (const rows_cursor_t *)cur;
  return c->i >= c->im->nrows;
}
static int rows_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  const rows_cursor_t *c = (const rows_cursor_t *)cur;
  const uint64_t *row = c->im->rows + c->i * ROWS_WORDS;
  if (row[ROWS_COLS] >> col & 1) sqlite3_result_null(ctx);
  else sqlite3_result_int64(ctx, (sqlite3_int64)row[col]);
  return SQLITE_OK;
}
static int rows_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((rows_cursor_t *)cur)->i;
  return SQLITE_OK;
}
static const sqlite3_module rows_module = {
    .xConnect = rows_connect, /* no xCreate: eponymous only */
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xDestroy = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

/* One calls row into row (ROWS_WORDS words). A row whose seq is one past
 * the largest rowid in the table (most rows: calls are appended in seq
 * order) gets its rowid from SQLite (seq NULL: OP_NewRowid = max + 1 =
 * seq), which finds the end of the b-tree from the cursor's cached
 * position; an explicit seq costs SQLite a full b-tree descent for its
 * uniqueness check. */
static void call_row(lifetimes_t *lt, uint64_t *row, uint64_t seq, const call_slot_t *sl) {
  uint64_t nulls = 0;
  if (seq == lt->max_call_seq + 1) nulls |= 1u << 0;
  if (seq > lt->max_call_seq) lt->max_call_seq = seq;
  row[0] = seq;
  row[1] = sl->time_ns;
  row[2] = sl->tid;
  row[3] = sl->op;
  row[4] = sl->size;
  if (!lwt_op_has_size(sl->op)) nulls |= 1u << 4;
  row[5] = sl->align;
  row[6] = sl->addr;
  row[7] = sl->in_addr;
  row[8] = sl->free_seq;
  row[9] = sl->stack_id;
  row[10] = sl->addr != 0 ? sl->end_seq : 0;
  for (int c = 5; c <= 10; c++) /* 0 is NULL */
    if (row[c] == 0) nulls |= 1u << c;
  row[11] = sl->freed;
  if (sl->free_seq == 0) nulls |= 1u << 11;
  row[ROWS_COLS] = nulls;
}

static int insert_event(importer_t *im, uint64_t seq, const call_slot_t *sl) {
  if (row_begin(im, im->ins_event, 7)) return -1;
  row_int(im, 1, seq);
  row_int(im, 2, sl->time_ns);
  row_int(im, 3, sl->tid);
  row_int(im, 4, sl->align);
  row_int(im, 5, sl->size);
  row_int(im, 6, sl->addr);
  row_int(im, 7, sl->in_addr);
  return row_step(im);
}

/* Empties the slots below limit (all written): the ring's room moves on. */
static void release_upto(lifetimes_t *lt, uint64_t limit) {
  for (uint64_t s = lt->ring.tail; s < limit; s++) memset(callbuf_at(&lt->ring, s), 0, sizeof(call_slot_t));
  if (limit > lt->ring.tail) lt->ring.tail = limit;
}

/* Inserts the pending calls (all of them, one statement when there are
 * CALL_ROWS) and drops their slots and everything before from the ring. */
static int flush_pending(importer_t *im, lifetimes_t *lt) {
  if (lt->npend == 0) return 0;
  uint64_t *rows = rows_begin(im, lt->ins_calls, (size_t)lt->npend);
  if (rows == NULL) return -1;
  for (int r = 0; r < lt->npend; r++)
    call_row(lt, rows + (size_t)r * ROWS_WORDS, lt->pend[r], callbuf_at(&lt->ring, lt->pend[r]));
  int rc = row_step(im);
  release_upto(lt, lt->pend[lt->npend - 1] + 1);
  lt->npend = 0;
  return rc;
}

/* Writes every slot below `limit` (limit <= next) and frees their room. */
static int write_upto(importer_t *im, lifetimes_t *lt, uint64_t limit) {
  for (; lt->wscan < limit; lt->wscan++) {
    call_slot_t *sl = callbuf_at(&lt->ring, lt->wscan);
    if (sl->op == CALLBUF_EVENT) {
      if (insert_event(im, lt->wscan, sl) != 0) return -1;
    } else if (slot_is_call(sl)) {
      lt->pend[lt->npend++] = lt->wscan;
      if (lt->npend == CALL_ROWS && flush_pending(im, lt) != 0) return -1;
    }
  }
  if (lt->npend == 0) release_upto(lt, lt->wscan); /* nothing waits: drop the scanned slots */
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* live_index rows are inserted in key order, at the end of the import:
 * a block's key is known when it ends, and keys in end order fall in 27
 * interleaved ranges (one per level), where each insert costs SQLite a
 * b-tree descent and page splits in the middle of the table. The keys are
 * collected LIVE_RUN at a time, sorted, and written as runs to a scratch
 * file next to the database (8 bytes a block living longer than ~8 K seqs;
 * unlinked at once); lwv_im_lt_finish merges the runs and appends the rows.
 * Memory: one run's keys, and LIVE_READ keys a run while merging. */
static int live_index_run(importer_t *im, lifetimes_t *lt) {
  if (lt->nlkeys == 0) return 0;
  qsort(lt->lkeys, lt->nlkeys, sizeof lt->lkeys[0], cmp_u64);
  if (lt->runs == NULL) {
    char path[4200];
    snprintf(path, sizeof path, "%s.keys", im->db_tmp_path ? im->db_tmp_path : "lwview");
    lt->runs = fopen(path, "w+");
    if (lt->runs != NULL) unlink(path);
    else if ((lt->runs = tmpfile()) == NULL) return fail(im, "scratch file: %s", strerror(errno));
  }
  if (fwrite(lt->lkeys, sizeof lt->lkeys[0], lt->nlkeys, lt->runs) != lt->nlkeys)
    return fail(im, "scratch file: %s", strerror(errno));
  lt->nruns++;
  lt->nlkeys = 0;
  return 0;
}

static int live_index_put(importer_t *im, lifetimes_t *lt, uint64_t seq, uint64_t end) {
  uint64_t key = live_key(seq, end);
  if (key >> 41 < LWV_LIVE_SCAN_LEVEL) return 0; /* found by a scan of calls */
  if (lt->lkeys == NULL && (lt->lkeys = malloc(lt->live_run * sizeof *lt->lkeys)) == NULL)
    return fail(im, "%s", "out of memory");
  lt->lkeys[lt->nlkeys++] = key;
  return lt->nlkeys == lt->live_run ? live_index_run(im, lt) : 0;
}

/* Appends one live_index row (keys come in ascending order). */
static int live_index_row(importer_t *im, lifetimes_t *lt, uint64_t key) {
  lt->livebuf[lt->nlive] = key;
  if (++lt->nlive < LIVE_ROWS) return 0;
  lt->nlive = 0;
  if (row_begin(im, lt->ins_lives, LIVE_ROWS)) return -1;
  for (int r = 0; r < LIVE_ROWS; r++) row_int(im, r + 1, lt->livebuf[r]);
  return row_step(im);
}

typedef struct run_s { /* a run being merged */
  uint64_t *buf;
  size_t pos, n;  /* keys in buf, the next one */
  uint64_t next, end; /* file offsets (keys) of the rest of the run */
} run_t;

/* The run's next key into buf[pos]; 0 when it is done, -1 on error. */
static int run_fill(lifetimes_t *lt, run_t *r) {
  if (r->pos < r->n) return 1;
  if (r->next == r->end) return 0;
  size_t want = r->end - r->next < LIVE_READ ? (size_t)(r->end - r->next) : LIVE_READ;
  if (fseeko(lt->runs, (off_t)(r->next * sizeof(uint64_t)), SEEK_SET) != 0 ||
      fread(r->buf, sizeof(uint64_t), want, lt->runs) != want)
    return -1;
  r->next += want;
  r->pos = 0;
  r->n = want;
  return 1;
}

/* Writes every live_index row, in key order: the keys in memory alone, or
 * merged with the runs in the scratch file (a binary heap of runs). */
static int live_index_write(importer_t *im, lifetimes_t *lt) {
  int rc = 0;
  if (lt->nruns == 0) {
    if (lt->nlkeys) qsort(lt->lkeys, lt->nlkeys, sizeof lt->lkeys[0], cmp_u64); /* lkeys may be NULL */
    for (size_t i = 0; i < lt->nlkeys && rc == 0; i++) rc = live_index_row(im, lt, lt->lkeys[i]);
  } else {
    uint64_t total = (uint64_t)lt->nruns * lt->live_run + lt->nlkeys;
    if (live_index_run(im, lt) != 0) return -1; /* the last, shorter run */
    size_t n = lt->nruns;
    run_t *runs = calloc(n, sizeof *runs);
    size_t *heap = calloc(n, sizeof *heap);
    uint64_t *bufs = malloc(n * LIVE_READ * sizeof *bufs);
    size_t nh = 0;
    if (runs == NULL || heap == NULL || bufs == NULL) rc = fail(im, "%s", "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
      runs[i].buf = bufs + i * LIVE_READ;
      runs[i].next = (uint64_t)i * lt->live_run;
      runs[i].end = i + 1 < n ? runs[i].next + lt->live_run : total;
      int f = run_fill(lt, &runs[i]);
      if (f < 0) rc = fail(im, "scratch file: %s", "read error");
      else if (f > 0) { /* sift up */
        size_t c = nh++;
        heap[c] = i;
        while (c > 0 && runs[heap[(c - 1) / 2]].buf[runs[heap[(c - 1) / 2]].pos] > runs[i].buf[0]) {
          heap[c] = heap[(c - 1) / 2];
          c = (c - 1) / 2;
        }
        heap[c] = i;
      }
    }
    while (nh > 0 && rc == 0) {
      run_t *r = &runs[heap[0]];
      rc = live_index_row(im, lt, r->buf[r->pos++]);
      int f = rc == 0 ? run_fill(lt, r) : 1;
      if (f < 0) rc = fail(im, "scratch file: %s", "read error");
      if (f == 0) heap[0] = heap[--nh];
      for (size_t c = 0;;) { /* sift down */
        size_t m = c, a = 2 * c + 1, b = a + 1;
#define RUN_KEY(k) (runs[heap[k]].buf[runs[heap[k]].pos])
        if (a < nh && RUN_KEY(a) < RUN_KEY(m)) m = a;
        if (b < nh && RUN_KEY(b) < RUN_KEY(m)) m = b;
#undef RUN_KEY
        if (m == c) break;
        size_t t = heap[c];
        heap[c] = heap[m];
        heap[m] = t;
        c = m;
      }
    }
    free(runs);
    free(heap);
    free(bufs);
  }
  for (int r = 0; r < lt->nlive && rc == 0; r++) {
    if (row_begin(im, lt->ins_live, 1)) return -1;
    row_int(im, 1, lt->livebuf[r]);
    rc = row_step(im);
  }
  lt->nlive = 0;
  return rc;
}

/* ---- time_index and site_stretches ------------------------------------- */

/* The site_stretches entry of (stretch, stack), created on first use. */
static site_stretch_t *site_stretch(lifetimes_t *lt, uint64_t stretch, uint32_t stack) {
  int added;
  uint64_t *slot = u64map_put(&lt->ss_index, (stretch << 32 | stack) + 1, &added);
  if (slot == NULL) return NULL;
  if (added) {
    site_stretch_t *v = grow(lt->ss, &lt->capss, lt->nss + 1, sizeof *v);
    if (v == NULL) return NULL;
    lt->ss = v;
    v[lt->nss] = (site_stretch_t){stretch, stack, 0, 0, 0, 0};
    *slot = lt->nss++;
  }
  return &lt->ss[*slot];
}

/* The stretches held are full: merge each stretch with its neighbour when
 * together they have at most TI_MAX_CALLS calls, renumber the stretches
 * (and the site_stretches entries and live blocks that refer to them),
 * double the stretch bounds. Returns the number of stretches merged away. */
static size_t ti_merge(importer_t *im, lifetimes_t *lt, int *err) {
  static uint32_t remap[TI_KEEP + 1];
  size_t n = 0, i = 0;
  while (i < lt->nti) {
    ti_row_t m = lt->ti[i];
    remap[i] = (uint32_t)n;
    if (i + 1 < lt->nti && m.calls + lt->ti[i + 1].calls <= TI_MAX_CALLS) {
      const ti_row_t *b = &lt->ti[i + 1];
      uint64_t live_max = m.live_max > b->live_max ? m.live_max : b->live_max;
      uint64_t t0 = m.t0, seq0 = m.seq0, calls = m.calls + b->calls, alloc = m.alloc + b->alloc,
               freed = m.freed + b->freed;
      m = *b;
      m.t0 = t0;
      m.seq0 = seq0;
      m.calls = calls;
      m.alloc = alloc;
      m.freed = freed;
      m.live_max = live_max;
      remap[i + 1] = (uint32_t)n;
      i += 2;
    } else {
      i++;
    }
    lt->ti[n++] = m;
  }
  remap[lt->nti] = (uint32_t)n; /* the stretch being filled */
  size_t merged = lt->nti - n;
  uint64_t base = lt->ti_base;
#define TI_RENUMBER(id) ((id) > base ? base + remap[(id) - base - 1] + 1 : (id))
  for (size_t k = 0; k < lt->nlv; k++) lt->lv[k].stretch = TI_RENUMBER(lt->lv[k].stretch);
  site_stretch_t *old = lt->ss;
  size_t nold = lt->nss;
  lt->ss = NULL;
  lt->nss = lt->capss = 0;
  u64map_free(&lt->ss_index);
  for (size_t k = 0; k < nold && !*err; k++) {
    site_stretch_t *e = site_stretch(lt, TI_RENUMBER(old[k].stretch), (uint32_t)old[k].stack);
    if (e == NULL) {
      *err = fail(im, "%s", "out of memory");
      break;
    }
    e->allocs += old[k].allocs;
    e->bytes += old[k].bytes;
  }
#undef TI_RENUMBER
  free(old);
  lt->nti = n;
  if (lt->ti_calls_cap < TI_MAX_CALLS) lt->ti_calls_cap *= 2;
  lt->ti_ns_cap *= 2;
  return merged;
}

static int ti_write(importer_t *im, lifetimes_t *lt, size_t n);

/* Ends the current stretch. When TI_KEEP are held, neighbours are merged
 * (ti_merge); if that freed less than a quarter of the room, the older half
 * is written out (their ids stay). */
static int ti_flush(importer_t *im, lifetimes_t *lt) {
  if (lt->cur.calls == 0) return 0;
  ti_row_t *r = &lt->cur;
  r->live_bytes = lt->live_bytes;
  r->live_blocks = lt->live_blocks;
  r->mapped = (uint64_t)lt->mapped;
  r->committed = lt->committed;
  r->have_committed = lt->have_committed;
  r->coalesce_runs = lt->coalesce_runs;
  lt->ti[lt->nti++] = *r;
  memset(r, 0, sizeof *r);
  if (lt->nti < TI_KEEP) return 0;
  int err = 0;
  size_t merged = ti_merge(im, lt, &err);
  if (err) return -1;
  if (merged < TI_KEEP / 4) return ti_write(im, lt, lt->nti / 2);
  return 0;
}

/* Writes the first n stretches held, and the site_stretches of every
 * stretch up to the last of them (leaks add to those rows at the end). */
static int ti_write(importer_t *im, lifetimes_t *lt, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const ti_row_t *r = &lt->ti[i];
    if (row_begin(im, im->ins_ti, 14)) return -1;
    row_int(im, 1, lt->ti_base + i + 1);
    row_int(im, 2, r->t0);
    row_int(im, 3, r->t1);
    row_int(im, 4, r->seq0);
    row_int(im, 5, r->seq1);
    row_int(im, 6, r->calls);
    row_int(im, 7, r->alloc);
    row_int(im, 8, r->freed);
    row_int(im, 9, r->live_bytes);
    row_int(im, 10, r->live_max);
    row_int(im, 11, r->live_blocks);
    row_int(im, 12, r->mapped);
    if (r->have_committed) row_int(im, 13, r->committed);
    else row_null(im, 13);
    row_int(im, 14, r->coalesce_runs);
    if (row_step(im) != 0) return -1;
  }
  memmove(lt->ti, lt->ti + n, (lt->nti - n) * sizeof *lt->ti);
  lt->nti -= n;
  lt->ti_base += n;
  site_stretch_t *old = lt->ss;
  size_t nold = lt->nss;
  lt->ss = NULL;
  lt->nss = lt->capss = 0;
  u64map_free(&lt->ss_index);
  int rc = 0;
  for (size_t i = 0; i < nold && rc == 0; i++) {
    const site_stretch_t *o = &old[i];
    if (o->stretch <= lt->ti_base) {
      if (row_begin(im, lt->ins_ss, 6)) {
        rc = -1;
        break;
      }
      for (int c = 0; c < 6; c++) row_int(im, c + 1, (&o->stretch)[c]);
      rc = row_step(im);
    } else {
      site_stretch_t *e = site_stretch(lt, o->stretch, (uint32_t)o->stack);
      if (e == NULL) rc = fail(im, "%s", "out of memory");
      else *e = *o;
    }
  }
  free(old);
  return rc;
}

/* ---- deriving in seq order --------------------------------------------- */

/* Ends the live block at addr at seq `end`; returns its size (0 if the
 * address held no block we saw allocated). */
static int block_end(importer_t *im, lifetimes_t *lt, uint64_t addr, uint64_t end, uint32_t tid,
                     uint64_t *size) {
  *size = 0;
  uint64_t *v = u64map_get(&lt->addrs, addr);
  if (v == NULL) {
    lt->unknown_frees++;
    return 0;
  }
  uint64_t idx = *v;
  const live_t *b = &lt->lv[idx];
  *size = b->size;
  if (callbuf_holds(&lt->ring, b->seq) && slot_is_call(callbuf_at(&lt->ring, b->seq))) {
    callbuf_at(&lt->ring, b->seq)->end_seq = end;
  } else { /* its row is written: a long-lived block */
    if (row_begin(im, lt->upd_end, 2)) return -1;
    row_int(im, 1, end);
    row_int(im, 2, b->seq);
    lt->updates++;
    if (row_step(im) != 0) return -1;
  }
  if (live_index_put(im, lt, b->seq, end) != 0) return -1;
  lt->live_bytes -= b->size;
  lt->live_blocks--;
  lt->cur.freed += b->size;
  thread_t_ *t = thread_get(im, tid);
  if (t) {
    t->frees++;
    t->freed_bytes += b->size;
  }
  u64map_del(&lt->addrs, addr);
  uint64_t *f = grow(lt->lvfree, &lt->caplvfree, lt->nlvfree + 1, sizeof *f);
  if (f == NULL) return fail(im, "%s", "out of memory");
  lt->lvfree = f;
  f[lt->nlvfree++] = idx;
  return 0;
}

/* The id of the stretch holding seq: the current one, or for a late
 * record an earlier one. */
static uint64_t stretch_of(const lifetimes_t *lt, uint64_t seq) {
  if (lt->nti == 0 || (lt->cur.calls > 0 && seq >= lt->cur.seq0)) return lt->ti_base + lt->nti + 1;
  size_t lo = 0, hi = lt->nti; /* the last flushed stretch starting at or before seq */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (lt->ti[mid].seq0 <= seq) lo = mid + 1;
    else hi = mid;
  }
  /* (before every stretch held: the last one written, approximately) */
  return lt->ti_base + lo ? lt->ti_base + lo : 1;
}

static int block_start(importer_t *im, lifetimes_t *lt, uint64_t seq, const call_slot_t *sl) {
  uint64_t ignored;
  if (u64map_get(&lt->addrs, sl->addr) != NULL) {
    /* still live in our model: its free was not seen (a free of memory
     * the recorder missed); end it here */
    lt->reused_live++;
    if (block_end(im, lt, sl->addr, seq, sl->tid, &ignored) != 0) return -1;
  }
  int added;
  uint64_t *v = u64map_put(&lt->addrs, sl->addr, &added);
  site_t *s = site_get(im, sl->stack_id);
  thread_t_ *t = thread_get(im, sl->tid);
  site_stretch_t *ss = site_stretch(lt, stretch_of(lt, seq), sl->stack_id);
  if (v == NULL || s == NULL || t == NULL || ss == NULL) return fail(im, "%s", "out of memory");
  uint64_t idx;
  if (lt->nlvfree) idx = lt->lvfree[--lt->nlvfree];
  else {
    live_t *nv = grow(lt->lv, &lt->caplv, lt->nlv + 1, sizeof *nv);
    if (nv == NULL) return fail(im, "%s", "out of memory");
    lt->lv = nv;
    idx = lt->nlv++;
  }
  *v = idx;
  lt->lv[idx] = (live_t){seq, sl->size, sl->stack_id, sl->tid, stretch_of(lt, seq)};
  ss->allocs++;
  ss->bytes += sl->size;
  lt->live_bytes += sl->size;
  lt->live_blocks++;
  lt->cur.alloc += sl->size;
  if (lt->live_bytes > lt->cur.live_max) lt->cur.live_max = lt->live_bytes;
  if (lt->live_bytes > lt->peak_live) {
    lt->peak_live = lt->live_bytes;
    lt->peak_seq = seq;
  }
  s->allocs++;
  s->bytes += sl->size;
  if (sl->size > s->max_size) s->max_size = sl->size;
  t->allocs++;
  t->alloc_bytes += sl->size;
  return 0;
}

static void apply_event(lifetimes_t *lt, const call_slot_t *e) {
  int added;
  uint64_t *sz, a = e->size, b = e->addr, c = e->in_addr;
  switch (e->align) {
  case LW_EV_COALESCE_RUN: lt->coalesce_runs++; break;
  case LW_EV_OS_MAP:
    lt->ev_mapped += (int64_t)b;
    if ((sz = u64map_put(&lt->regions, a + 1, &added)) != NULL) *sz = b;
    break;
  case LW_EV_OS_UNMAP:
    lt->ev_mapped -= (int64_t)b;
    if ((sz = u64map_get(&lt->regions, a + 1)) != NULL && *sz <= b) u64map_del(&lt->regions, a + 1);
    break;
  case LW_EV_OS_REMAP:
    if ((sz = u64map_get(&lt->regions, a + 1)) != NULL) {
      lt->ev_mapped -= (int64_t)*sz;
      u64map_del(&lt->regions, a + 1);
    }
    lt->ev_mapped += (int64_t)c;
    if ((sz = u64map_put(&lt->regions, b + 1, &added)) != NULL) *sz = c;
    break;
  default: break;
  }
  lt->mapped = lt->snap_mapped + (lt->ev_mapped - lt->ev_at_snap);
  if (lt->mapped < 0) lt->mapped = 0;
}

/* Derives the slot of seq (a call, a realloc's early free or an event);
 * late: it arrived after seqs above it were derived. */
static int derive(importer_t *im, lifetimes_t *lt, uint64_t seq, call_slot_t *sl, int late) {
  uint64_t freed;
  lt->derived++;
  if (sl->op == CALLBUF_EVENT) {
    apply_event(lt, sl);
    return 0;
  }
  if (sl->op == 0 || sl->op == SLOT_SKIP || sl->op == SLOT_DONE) return 0;
  for (; lt->snap_head < lt->nsnaps && lt->snaps[lt->snap_head].seq <= seq; lt->snap_head++) {
    const snap_t *sn = &lt->snaps[lt->snap_head];
    lt->snap_mapped = (int64_t)sn->mapped;
    lt->ev_at_snap = lt->ev_mapped;
    lt->mapped = lt->snap_mapped;
    lt->committed = sn->committed;
    lt->have_committed = 1;
  }
  if (sl->op == CALLBUF_MARK) { /* a realloc's free, at its own seq */
    if (block_end(im, lt, sl->in_addr, seq, sl->tid, &freed) != 0) return -1;
    if (callbuf_holds(&lt->ring, sl->free_seq)) {
      call_slot_t *re = callbuf_at(&lt->ring, sl->free_seq);
      if (re->free_seq == seq) re->freed = freed;
    }
    return 0;
  }
  if (late && (lt->cur.calls > 0 || lt->nti > 0)) {
    /* counted, but stretches keep their seq and time bounds */
    if (lt->cur.calls > 0) lt->cur.calls++;
    else lt->ti[lt->nti - 1].calls++;
  } else {
    if (lt->cur.calls > 0 &&
        (lt->cur.calls >= lt->ti_calls_cap || sl->time_ns > lt->cur.t0 + lt->ti_ns_cap))
      if (ti_flush(im, lt) != 0) return -1;
    if (sl->time_ns > lt->t_max) lt->t_max = sl->time_ns;
    if (lt->cur.calls == 0) {
      lt->cur.t0 = lt->t_max;
      lt->cur.seq0 = seq;
      lt->cur.live_max = lt->live_bytes;
    }
    lt->cur.calls++;
    lt->cur.t1 = lt->t_max;
    lt->cur.seq1 = seq;
  }
  thread_t_ *t = thread_get(im, sl->tid);
  if (t == NULL) return fail(im, "%s", "out of memory");
  t->calls++;
  unsigned op = sl->op;
  /* the free part first, unless a MARK slot ordered it earlier */
  int frees = sl->free_seq != 0 && (sl->free_seq >= seq || late || sl->late_free);
  if (frees && lwt_op_has_free_seq(op) && sl->addr == 0 && sl->size != 0)
    frees = 0; /* failed realloc: the old block stays */
  if (frees) {
    if (block_end(im, lt, sl->in_addr, seq, sl->tid, &freed) != 0) return -1;
    sl->freed = freed;
  }
  if (sl->addr != 0 && block_start(im, lt, seq, sl) != 0) return -1;
  return 0;
}

/* Derives the seqs that arrived without a gap, and writes the slots that
 * fell CALLBUF_BEHIND behind. */
static int advance(importer_t *im, lifetimes_t *lt) {
  while (lt->next < lt->hi) {
    call_slot_t *sl = callbuf_at(&lt->ring, lt->next);
    if (sl->op == 0) break;
    if (derive(im, lt, lt->next, sl, 0) != 0) return -1;
    lt->next++;
  }
  if (lt->next - lt->wscan > lt->ring.behind + lt->ring.behind / 16)
    return write_upto(im, lt, lt->next - lt->ring.behind);
  return 0;
}

/* Derives every slot below limit, skipping seqs that never came. */
static int derive_upto(importer_t *im, lifetimes_t *lt, uint64_t limit) {
  for (; lt->next < limit; lt->next++) {
    call_slot_t *sl = callbuf_at(&lt->ring, lt->next);
    if (sl->op == 0) lt->skipped += lt->derived != 0;
    else if (derive(im, lt, lt->next, sl, 0) != 0) return -1;
  }
  return 0;
}

/* Makes room for seq in the ring: derives past gaps (seqs never recorded:
 * lost records) and writes until seq fits. */
static int make_room(importer_t *im, lifetimes_t *lt, uint64_t seq) {
  if (callbuf_holds(&lt->ring, seq)) return 0;
  uint64_t need = seq - lt->ring.n + 1; /* the tail must reach this */
  uint64_t target = need + lt->ring.behind;
  if (target > lt->hi) target = lt->hi;
  if (derive_upto(im, lt, target) != 0 || advance(im, lt) != 0) return -1;
  if (write_upto(im, lt, lt->next > need ? need : lt->next) != 0 || flush_pending(im, lt) != 0)
    return -1;
  release_upto(lt, need); /* (below hi everything is derived and written) */
  if (lt->wscan < need) lt->wscan = need;
  if (lt->next < need) lt->next = need;
  if (lt->hi < need) lt->hi = need;
  return 0;
}

/* The slot for a seq'd record, or NULL: a duplicate seq (counted) or a
 * late record (*late set; the caller derives and writes it at once). */
static call_slot_t *park(importer_t *im, lifetimes_t *lt, uint64_t seq, int *late, int *err) {
  *late = 0;
  *err = 0;
  if (!lt->started) {
    lt->started = 1;
    /* seqs start at 1; a fork child's trace starts where its parent was */
    uint64_t start = seq <= lt->ring.n / 4 ? 1 : seq - lt->ring.n / 4;
    lt->ring.tail = lt->next = lt->wscan = lt->hi = start;
  }
  if (seq < lt->next) {
    if (seq >= lt->ring.tail) {
      call_slot_t *sl = callbuf_at(&lt->ring, seq);
      if (sl->op != 0) {
        im->dup_seqs++;
        return NULL;
      }
      sl->op = SLOT_DONE; /* its seq is taken (a duplicate would be caught) */
    }
    *late = 1;
    lt->late++;
    return NULL;
  }
  if (make_room(im, lt, seq) != 0) {
    *err = 1;
    return NULL;
  }
  call_slot_t *sl = callbuf_at(&lt->ring, seq);
  if (sl->op != 0) {
    im->dup_seqs++;
    return NULL;
  }
  if (seq >= lt->hi) lt->hi = seq + 1;
  return sl;
}

/* A late record: derived out of order, its row written at once. */
static int late_record(importer_t *im, lifetimes_t *lt, uint64_t seq, call_slot_t *sl) {
  if (derive(im, lt, seq, sl, 1) != 0) return -1;
  if (sl->op == CALLBUF_EVENT) return insert_event(im, seq, sl);
  if (sl->op == CALLBUF_MARK || sl->op == SLOT_SKIP) return 0;
  uint64_t *row = rows_begin(im, lt->ins_calls, 1);
  if (row == NULL) return -1;
  call_row(lt, row, seq, sl);
  return row_step(im);
}

/* ---- the importer's interface ------------------------------------------ */

int lwv_im_lt_open(importer_t *im) {
  lifetimes_t *lt = calloc(1, sizeof *lt);
  if (lt == NULL) return fail(im, "%s", "out of memory");
  im->lt = lt;
  lt->ti = calloc(TI_KEEP, sizeof *lt->ti);
  if (lt->ti == NULL || callbuf_open(&lt->ring, 1) != 0) return fail(im, "%s", "out of memory");
  lt->next = lt->hi = lt->wscan = 1;
  lt->ti_calls_cap = 8;
  lt->live_run = LIVE_RUN;
  const char *env = getenv("LWV_LIVE_RUN");
  if (env && strtoull(env, NULL, 0) >= 2 && strtoull(env, NULL, 0) <= LIVE_RUN)
    lt->live_run = (size_t)strtoull(env, NULL, 0);
  lt->ti_ns_cap = 1000;
  im->rows_own = malloc(CALL_ROWS * ROWS_WORDS * sizeof *im->rows_own);
  if (im->rows_own == NULL) return fail(im, "%s", "out of memory");
  if (sqlite3_create_module(im->db, "lwv_rows", &rows_module, im) != SQLITE_OK)
    return sql_fail(im, "lwv_rows");
  if (prep(im, &lt->ins_calls, "INSERT OR IGNORE INTO calls SELECT * FROM lwv_rows")) return -1;
  char sql[64 + LIVE_ROWS * 4];
  size_t len = (size_t)sprintf(sql, "INSERT INTO live_index VALUES");
  for (int r = 0; r < LIVE_ROWS; r++) len += (size_t)sprintf(sql + len, "%s(?)", r ? "," : "");
  if (prep(im, &lt->ins_lives, sql) || prep(im, &lt->ins_live, "INSERT INTO live_index VALUES(?)") ||
      prep(im, &lt->upd_end, "UPDATE calls SET end_seq = ? WHERE seq = ?") ||
      prep(im, &lt->ins_ss, "INSERT INTO site_stretches VALUES(?,?,?,?,?,?) ON CONFLICT(stretch, stack_id)"
                            " DO UPDATE SET allocs = allocs + excluded.allocs, bytes = bytes + excluded.bytes,"
                            " leaked = leaked + excluded.leaked,"
                            " leaked_bytes = leaked_bytes + excluded.leaked_bytes"))
    return -1;
  return 0;
}

int lwv_im_lt_call(importer_t *im, const lwt_record_t *r) {
  lifetimes_t *lt = im->lt;
  unsigned op = r->call.op;
  call_slot_t tmp, *sl;
  int late, err;
  if ((sl = park(im, lt, r->seq, &late, &err)) == NULL) {
    if (err) return -1;
    if (!late) return 0;
    memset(&tmp, 0, sizeof tmp);
    sl = &tmp;
  }
  sl->op = (uint8_t)op;
  sl->time_ns = r->time_ns;
  sl->tid = r->tid;
  sl->stack_id = r->call.stack_id;
  sl->size = lwt_op_has_size(op) ? r->call.size : 0;
  sl->align = (uint32_t)r->call.align;
  sl->addr = lwt_op_has_out(op) ? r->call.out_ptr : 0;
  sl->in_addr = lwt_op_has_in(op) ? r->call.in_ptr : 0;
  sl->free_seq = lwt_op_frees(op) && sl->in_addr ? r->call.free_seq : 0;
  im->calls++;
  thread_t_ *t = thread_get(im, r->tid);
  if (t && !t->started) {
    t->started = 1;
    t->start_ns = r->time_ns;
  }
  if (late) return late_record(im, lt, r->seq, sl);
  /* a realloc releases its old block at free_seq, before it returns: a
   * MARK slot there makes the free come in the right order. A failed
   * realloc (NULL for a non-zero size) frees nothing. */
  if (sl->free_seq != 0 && sl->free_seq < r->seq && !(sl->addr == 0 && sl->size != 0) &&
      sl->free_seq >= lt->next && callbuf_holds(&lt->ring, sl->free_seq)) {
    call_slot_t *mark = callbuf_at(&lt->ring, sl->free_seq);
    if (mark->op == 0) {
      mark->op = CALLBUF_MARK;
      mark->in_addr = sl->in_addr;
      mark->free_seq = r->seq;
      mark->time_ns = r->time_ns;
      mark->tid = r->tid;
    }
  } else if (sl->free_seq != 0 && sl->free_seq < lt->next) {
    sl->late_free = 1; /* its free seq was passed: free it with the call */
  }
  if (sl->free_seq == 0 && lwt_op_frees(op) && r->call.free_seq != 0 && r->call.free_seq < r->seq &&
      r->call.free_seq >= lt->next && callbuf_holds(&lt->ring, r->call.free_seq)) {
    call_slot_t *mark = callbuf_at(&lt->ring, r->call.free_seq); /* realloc(NULL, n) */
    if (mark->op == 0) mark->op = SLOT_SKIP;                      /* took a seq too */
  }
  return advance(im, lt);
}

int lwv_im_lt_event(importer_t *im, const lwt_record_t *r) {
  lifetimes_t *lt = im->lt;
  call_slot_t tmp, *sl;
  int late, err;
  im->events++;
  if ((sl = park(im, lt, r->seq, &late, &err)) == NULL) {
    if (err) return -1;
    if (!late) return 0;
    memset(&tmp, 0, sizeof tmp);
    sl = &tmp;
  }
  sl->op = CALLBUF_EVENT;
  sl->time_ns = r->time_ns;
  sl->tid = r->tid;
  sl->align = r->event.kind;
  sl->size = r->event.a;
  sl->addr = r->event.b;
  sl->in_addr = r->event.c;
  if (late) return late_record(im, lt, r->seq, sl);
  return advance(im, lt);
}

int lwv_im_lt_other(importer_t *im, uint64_t seq) {
  lifetimes_t *lt = im->lt;
  call_slot_t *sl;
  int late, err;
  if ((sl = park(im, lt, seq, &late, &err)) == NULL) return err ? -1 : 0;
  sl->op = SLOT_SKIP;
  return advance(im, lt);
}

int lwv_im_lt_snapshot(importer_t *im, uint64_t seq, uint64_t mapped, uint64_t committed) {
  lifetimes_t *lt = im->lt;
  if (lt->snap_head > 0 && lt->snap_head * 2 >= lt->nsnaps) { /* drop the applied ones */
    memmove(lt->snaps, lt->snaps + lt->snap_head, (lt->nsnaps - lt->snap_head) * sizeof *lt->snaps);
    lt->nsnaps -= lt->snap_head;
    lt->snap_head = 0;
  }
  snap_t *v = grow(lt->snaps, &lt->capsnaps, lt->nsnaps + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  lt->snaps = v;
  v[lt->nsnaps++] = (snap_t){seq, mapped, committed};
  return 0;
}

/* End of the trace: derives and writes everything left, then the leaks,
 * time_index, site_stretches and the lifetime facts in meta. */
int lwv_im_lt_finish(importer_t *im) {
  lifetimes_t *lt = im->lt;
  if (derive_upto(im, lt, lt->hi) != 0) return -1;
  if (ti_flush(im, lt) != 0 || write_upto(im, lt, lt->next) != 0 || flush_pending(im, lt) != 0)
    return -1;
  /* blocks still live at the end: leaks */
  for (size_t i = 0; i < lt->addrs.cap; i++) {
    if (lt->addrs.keys[i] == 0) continue;
    const live_t *b = &lt->lv[lt->addrs.vals[i]];
    site_t *s = site_get(im, b->stack_id);
    thread_t_ *t = thread_get(im, b->tid);
    site_stretch_t *ss = site_stretch(lt, b->stretch, b->stack_id);
    if (s == NULL || t == NULL || ss == NULL) return fail(im, "%s", "out of memory");
    s->leaked++;
    s->leaked_bytes += b->size;
    t->leaked_bytes += b->size;
    ss->leaked++;
    ss->leaked_bytes += b->size;
    if (live_index_put(im, lt, b->seq, IVL_INF) != 0) return -1;
  }
  if (live_index_write(im, lt) != 0 || ti_write(im, lt, lt->nti) != 0) return -1;
  im->long_lived = lt->updates;
  if (meta_put_int(im, "peak_live_bytes", (int64_t)lt->peak_live) ||
      meta_put_int(im, "peak_live_seq", (int64_t)lt->peak_seq) ||
      meta_put_int(im, "final_live_bytes", (int64_t)lt->live_bytes) ||
      meta_put_int(im, "final_live_blocks", (int64_t)lt->live_blocks) ||
      meta_put_int(im, "unknown_frees", (int64_t)lt->unknown_frees) ||
      meta_put_int(im, "reused_live", (int64_t)lt->reused_live) ||
      meta_put_int(im, "late_records", (int64_t)lt->late) ||
      meta_put_int(im, "missing_seqs", (int64_t)lt->skipped) ||
      meta_put_int(im, "duplicate_seqs", (int64_t)im->dup_seqs))
    return -1;
  return 0;
}

void lwv_im_lt_free(importer_t *im) {
  lifetimes_t *lt = im->lt;
  if (lt == NULL) return;
  sqlite3_finalize(lt->ins_calls);
  sqlite3_finalize(lt->ins_lives);
  sqlite3_finalize(lt->ins_live);
  sqlite3_finalize(lt->upd_end);
  sqlite3_finalize(lt->ins_ss);
  callbuf_close(&lt->ring);
  free(im->rows_own);
  im->rows_own = NULL;
  free(lt->lkeys);
  if (lt->runs) fclose(lt->runs);
  u64map_free(&lt->addrs);
  u64map_free(&lt->regions);
  u64map_free(&lt->ss_index);
  free(lt->lv);
  free(lt->lvfree);
  free(lt->snaps);
  free(lt->ti);
  free(lt->ss);
  free(lt);
  im->lt = NULL;
}
