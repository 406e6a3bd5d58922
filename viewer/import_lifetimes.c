/* Importer passes 2 and 3: block lifetimes in seq order, then the calls
 * table (see import.c for the whole picture). */
#include "import_internal.h"

/* ---- pass 2: lifetimes and aggregates in seq order --------------------- */

/* Interval-index key of a lifetime [seq, end): the smallest aligned dyadic
 * range of seqs holding [seq, end-1], as level << 41 | seq >> level, level
 * 0..IVL_LEVELS-1. db.c's live-at query visits the ranges that contain a
 * given seq, one per level. */
static uint64_t ivl_key(uint64_t seq, uint64_t end) {
  uint64_t last = end > seq ? end - 1 : seq;
  uint64_t x = seq ^ last;
  unsigned level = x ? 64u - (unsigned)__builtin_clzll(x) : 0;
  return (uint64_t)level << 41 | seq >> level;
}

typedef struct pass2_s {
  u64map_t addrs;   /* live block address -> seq of its allocating call */
  u64map_t regions; /* OS mapping start -> bytes */
  uint64_t live_bytes, live_blocks, peak_live, peak_seq, committed;
  /* mapped = snap_mapped + (ev_mapped - ev_at_snap): the latest snapshot's
   * own counter moved by the OS events since (mappings made before the
   * trace started appear in snapshots but never as events) */
  int64_t mapped, ev_mapped, snap_mapped, ev_at_snap;
  uint64_t coalesce_runs, unknown_frees, reused_live;
  int have_committed;
  /* current time_index stretch */
  uint64_t ti_id, ti_calls, ti_t0, ti_t1, ti_seq0, ti_seq1, ti_alloc, ti_freed, ti_max;
  uint64_t t_max;
  uint64_t ti_calls_cap, ti_ns_cap; /* stretch bounds for this trace */
  uint64_t *ti_seq0s;                /* first seq of every flushed stretch */
  size_t capseq0s;
  /* site_stretches rows: (stretch << 32 | stack id) -> index in ss */
  u64map_t ss_index;
  struct site_stretch_s {
    uint64_t stretch, stack, allocs, bytes, leaked, leaked_bytes;
  } *ss;
  size_t nss, capss;
} pass2_t;

/* The site_stretches row of (stretch, stack), created on first use. */
static struct site_stretch_s *site_stretch(pass2_t *p, uint64_t stretch, uint32_t stack) {
  int added;
  uint64_t *slot = u64map_put(&p->ss_index, stretch << 32 | stack, &added);
  if (slot == NULL) return NULL;
  if (added) {
    struct site_stretch_s *v = grow(p->ss, &p->capss, p->nss + 1, sizeof *v);
    if (v == NULL) return NULL;
    p->ss = v;
    v[p->nss] = (struct site_stretch_s){stretch, stack, 0, 0, 0, 0};
    *slot = p->nss++;
  }
  return &p->ss[*slot];
}

/* Ends the live block at addr at seq `end`; returns its size (0 if the
 * address held no block we saw allocated). */
static uint64_t block_end(importer_t *im, pass2_t *p, uint64_t addr, uint64_t end, uint32_t tid) {
  uint64_t *v = u64map_get(&p->addrs, addr);
  if (v == NULL) {
    p->unknown_frees++;
    return 0;
  }
  call_slot_t *a = &im->cb.slots[*v];
  a->end_seq = end;
  p->live_bytes -= a->size;
  p->live_blocks--;
  p->ti_freed += a->size;
  thread_t_ *t = thread_get(im, tid);
  if (t) {
    t->frees++;
    t->freed_bytes += a->size;
  }
  u64map_del(&p->addrs, addr);
  return a->size;
}

static int block_start(importer_t *im, pass2_t *p, uint64_t seq) {
  const call_slot_t *sl = &im->cb.slots[seq];
  if (u64map_get(&p->addrs, sl->addr) != NULL) {
    /* still live in our model: its free was not seen (a free of memory
     * the recorder missed); end it here */
    p->reused_live++;
    block_end(im, p, sl->addr, seq, sl->tid);
  }
  int added;
  uint64_t *v = u64map_put(&p->addrs, sl->addr, &added);
  site_t *s = site_get(im, sl->stack_id);
  thread_t_ *t = thread_get(im, sl->tid);
  struct site_stretch_s *ss = site_stretch(p, p->ti_id + 1, sl->stack_id);
  if (v == NULL || s == NULL || t == NULL || ss == NULL) return fail(im, "%s", "out of memory");
  *v = seq;
  ss->allocs++;
  ss->bytes += sl->size;
  p->live_bytes += sl->size;
  p->live_blocks++;
  p->ti_alloc += sl->size;
  if (p->live_bytes > p->ti_max) p->ti_max = p->live_bytes;
  if (p->live_bytes > p->peak_live) {
    p->peak_live = p->live_bytes;
    p->peak_seq = seq;
  }
  s->allocs++;
  s->bytes += sl->size;
  if (sl->size > s->max_size) s->max_size = sl->size;
  t->allocs++;
  t->alloc_bytes += sl->size;
  return 0;
}

static int ti_flush(importer_t *im, pass2_t *p) {
  if (p->ti_calls == 0) return 0;
  uint64_t *s0 = grow(p->ti_seq0s, &p->capseq0s, p->ti_id + 1, sizeof *s0);
  if (s0 == NULL) return fail(im, "%s", "out of memory");
  p->ti_seq0s = s0;
  s0[p->ti_id] = p->ti_seq0;
  sqlite3_stmt *st = im->ins_ti;
  bind_u64(st, 1, ++p->ti_id, 0);
  bind_u64(st, 2, p->ti_t0, 0);
  bind_u64(st, 3, p->ti_t1, 0);
  bind_u64(st, 4, p->ti_seq0, 0);
  bind_u64(st, 5, p->ti_seq1, 0);
  bind_u64(st, 6, p->ti_calls, 0);
  bind_u64(st, 7, p->ti_alloc, 0);
  bind_u64(st, 8, p->ti_freed, 0);
  bind_u64(st, 9, p->live_bytes, 0);
  bind_u64(st, 10, p->ti_max, 0);
  bind_u64(st, 11, p->live_blocks, 0);
  bind_u64(st, 12, (uint64_t)p->mapped, 0);
  if (p->have_committed) bind_u64(st, 13, p->committed, 0);
  else sqlite3_bind_null(st, 13);
  bind_u64(st, 14, p->coalesce_runs, 0);
  p->ti_calls = p->ti_alloc = p->ti_freed = 0;
  return step_reset(im, st);
}

static void apply_event(pass2_t *p, const event_t *e) {
  int added;
  uint64_t *sz;
  switch (e->kind) {
  case LW_EV_COALESCE_RUN: p->coalesce_runs++; break;
  case LW_EV_OS_MAP:
    p->ev_mapped += (int64_t)e->b;
    if ((sz = u64map_put(&p->regions, e->a, &added)) != NULL) *sz = e->b;
    break;
  case LW_EV_OS_UNMAP:
    p->ev_mapped -= (int64_t)e->b;
    if ((sz = u64map_get(&p->regions, e->a)) != NULL && *sz <= e->b) u64map_del(&p->regions, e->a);
    break;
  case LW_EV_OS_REMAP:
    if ((sz = u64map_get(&p->regions, e->a)) != NULL) {
      p->ev_mapped -= (int64_t)*sz;
      u64map_del(&p->regions, e->a);
    }
    p->ev_mapped += (int64_t)e->c;
    if ((sz = u64map_put(&p->regions, e->b, &added)) != NULL) *sz = e->c;
    break;
  default: break;
  }
  p->mapped = p->snap_mapped + (p->ev_mapped - p->ev_at_snap);
  if (p->mapped < 0) p->mapped = 0;
}

static int event_cmp(const void *a, const void *b) {
  const event_t *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pass 2: walks the call table in seq order (merging events and
 * snapshots), follows every block by address, and writes back each
 * block's end and each free's size; fills sites, threads and time_index. */
int lwv_im_pass2(importer_t *im) {
  pass2_t p;
  memset(&p, 0, sizeof p);
  /* about TI_TARGET stretches whatever the trace's length and pace */
  p.ti_calls_cap = im->calls / TI_TARGET;
  if (p.ti_calls_cap < 8) p.ti_calls_cap = 8;
  if (p.ti_calls_cap > TI_MAX_CALLS) p.ti_calls_cap = TI_MAX_CALLS;
  p.ti_ns_cap = im->end_ns / TI_TARGET;
  if (p.ti_ns_cap < 1000) p.ti_ns_cap = 1000;
  qsort(im->evs, im->nevs, sizeof *im->evs, event_cmp);
  size_t ei = 0, si = 0;
  int rc = -1;
  call_slot_t *slots = im->cb.slots;
  for (uint64_t seq = 0; seq < im->cb.len; seq++) {
    call_slot_t *sl = &slots[seq];
    if (sl->op == 0) continue;
    for (; ei < im->nevs && im->evs[ei].seq < seq; ei++) apply_event(&p, &im->evs[ei]);
    for (; si < im->snaps && im->snapv[si].seq <= seq; si++) {
      p.snap_mapped = (int64_t)im->snapv[si].mapped;
      p.ev_at_snap = p.ev_mapped;
      p.mapped = p.snap_mapped;
      p.committed = im->snapv[si].committed;
      p.have_committed = 1;
    }
    if (sl->op == CALLBUF_MARK) { /* a realloc's free, at its own seq */
      uint64_t freed = block_end(im, &p, sl->in_addr, seq, sl->tid);
      if (sl->free_seq < im->cb.len) slots[sl->free_seq].freed = freed;
      continue;
    }
    if (p.ti_calls > 0 && (p.ti_calls >= p.ti_calls_cap || sl->time_ns > p.ti_t0 + p.ti_ns_cap))
      if (ti_flush(im, &p) != 0) goto out;
    if (sl->time_ns > p.t_max) p.t_max = sl->time_ns;
    if (p.ti_calls == 0) {
      p.ti_t0 = p.t_max;
      p.ti_seq0 = seq;
      p.ti_max = p.live_bytes;
    }
    p.ti_calls++;
    p.ti_t1 = p.t_max;
    p.ti_seq1 = seq;
    thread_t_ *t = thread_get(im, sl->tid);
    if (t == NULL) {
      fail(im, "%s", "out of memory");
      goto out;
    }
    t->calls++;
    unsigned op = sl->op;
    /* the free part first, unless a MARK slot ordered it earlier */
    int frees = sl->free_seq != 0 && sl->free_seq >= seq;
    if (frees && lwt_op_has_free_seq(op) && sl->addr == 0 && sl->size != 0)
      frees = 0; /* failed realloc: the old block stays */
    if (frees) sl->freed = block_end(im, &p, sl->in_addr, seq, sl->tid);
    if (sl->addr != 0 && block_start(im, &p, seq) != 0) goto out;
    if ((seq & 0xfffff) == 0 && im->cb.len)
      progress(im, 0.45 + 0.10 * (double)seq / (double)im->cb.len, "deriving");
  }
  for (; ei < im->nevs; ei++) apply_event(&p, &im->evs[ei]);
  if (ti_flush(im, &p) != 0) goto out;

  /* blocks still live at the end: leaks */
  for (size_t i = 0; i < p.addrs.cap; i++) {
    if (p.addrs.keys[i] == 0) continue;
    const call_slot_t *b = &slots[p.addrs.vals[i]];
    site_t *s = site_get(im, b->stack_id);
    thread_t_ *t = thread_get(im, b->tid);
    if (s == NULL || t == NULL) {
      fail(im, "%s", "out of memory");
      goto out;
    }
    s->leaked++;
    s->leaked_bytes += b->size;
    t->leaked_bytes += b->size;
    size_t lo = 0, hi = p.ti_id; /* its stretch: the last one starting at or before it */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (p.ti_seq0s[mid] <= p.addrs.vals[i]) lo = mid + 1;
      else hi = mid;
    }
    struct site_stretch_s *ss = site_stretch(&p, lo, b->stack_id);
    if (ss == NULL) {
      fail(im, "%s", "out of memory");
      goto out;
    }
    ss->leaked++;
    ss->leaked_bytes += b->size;
  }
  sqlite3_stmt *ins_ss = NULL;
  if (prep(im, &ins_ss, "INSERT INTO site_stretches VALUES(?,?,?,?,?,?)")) goto out;
  for (size_t i = 0; i < p.nss; i++) {
    const uint64_t *f = &p.ss[i].stretch;
    for (int c = 0; c < 6; c++) bind_u64(ins_ss, c + 1, f[c], 0);
    if (step_reset(im, ins_ss) != 0) {
      sqlite3_finalize(ins_ss);
      goto out;
    }
  }
  sqlite3_finalize(ins_ss);
  if (meta_put_int(im, "peak_live_bytes", (int64_t)p.peak_live) ||
      meta_put_int(im, "peak_live_seq", (int64_t)p.peak_seq) ||
      meta_put_int(im, "final_live_bytes", (int64_t)p.live_bytes) ||
      meta_put_int(im, "final_live_blocks", (int64_t)p.live_blocks) ||
      meta_put_int(im, "unknown_frees", (int64_t)p.unknown_frees) ||
      meta_put_int(im, "reused_live", (int64_t)p.reused_live) ||
      meta_put_int(im, "duplicate_seqs", (int64_t)im->dup_seqs))
    goto out;
  rc = 0;
out:
  u64map_free(&p.addrs);
  u64map_free(&p.regions);
  u64map_free(&p.ss_index);
  free(p.ss);
  free(p.ti_seq0s);
  return rc;
}

#define CALL_COLS 14
#define CALL_ROWS 32 /* rows per multi-row INSERT: less per-statement work */

/* Binds the calls row for seq at parameter offset base (0-based column). */
static void bind_call(const callbuf_t *cb, sqlite3_stmt *st, int base, uint64_t seq) {
  const call_slot_t *sl = &cb->slots[seq];
  bind_u64(st, base + 1, seq, 0);
  bind_u64(st, base + 2, sl->time_ns, 0);
  bind_u64(st, base + 3, sl->tid, 0);
  bind_u64(st, base + 4, sl->op, 0);
  if (lwt_op_has_size(sl->op)) bind_u64(st, base + 5, sl->size, 0);
  else sqlite3_bind_null(st, base + 5);
  bind_u64(st, base + 6, sl->align, 1);
  bind_u64(st, base + 7, sl->addr, 1);
  bind_u64(st, base + 8, sl->in_addr, 1);
  bind_u64(st, base + 9, sl->free_seq, 1);
  bind_u64(st, base + 10, sl->stack_id, 1);
  if (sl->addr != 0 && sl->end_seq != 0 && sl->end_seq < cb->len) {
    bind_u64(st, base + 11, sl->end_seq, 0);
    bind_u64(st, base + 12, cb->slots[sl->end_seq].time_ns, 0);
    bind_u64(st, base + 13, cb->slots[sl->end_seq].tid, 0);
  } else {
    for (int i = 11; i <= 13; i++) sqlite3_bind_null(st, base + i);
  }
  if (sl->free_seq != 0) bind_u64(st, base + 14, sl->freed, 0);
  else sqlite3_bind_null(st, base + 14);
}

/* Pass 3: the calls table, appended in seq order (SQLite's fastest
 * insert) CALL_ROWS rows per statement, each row with its block's end and
 * interval-index key. */
int lwv_im_pass3(importer_t *im) {
  char *sql = malloc(64 + CALL_ROWS * (2 * CALL_COLS + 4));
  if (sql == NULL) return fail(im, "%s", "out of memory");
  size_t len = (size_t)sprintf(sql, "INSERT INTO calls VALUES");
  for (int r = 0; r < CALL_ROWS; r++) {
    len += (size_t)sprintf(sql + len, "%s(?", r ? "," : "");
    for (int c = 1; c < CALL_COLS; c++) len += (size_t)sprintf(sql + len, ",?");
    len += (size_t)sprintf(sql + len, ")");
  }
  sqlite3_stmt *multi = NULL;
  int rc = prep(im, &multi, sql);
  free(sql);
  if (rc != 0) return -1;
  uint64_t pending[CALL_ROWS];
  int npending = 0;
  for (uint64_t seq = 0; seq < im->cb.len && rc == 0; seq++) {
    uint8_t op = im->cb.slots[seq].op;
    if (op == 0 || op == CALLBUF_MARK) continue;
    pending[npending++] = seq;
    if (npending == CALL_ROWS) {
      for (int r = 0; r < CALL_ROWS; r++) bind_call(&im->cb, multi, r * CALL_COLS, pending[r]);
      rc = step_reset(im, multi);
      npending = 0;
    }
    if ((seq & 0xfffff) == 0 && im->cb.len)
      progress(im, 0.55 + 0.30 * (double)seq / (double)im->cb.len, "writing");
  }
  for (int r = 0; r < npending && rc == 0; r++) { /* the tail, one by one */
    bind_call(&im->cb, im->ins_call, 0, pending[r]);
    rc = step_reset(im, im->ins_call);
  }
  sqlite3_finalize(multi);
  return rc;
}

#define LIVE_ROWS 64 /* (ivl, seq) rows per INSERT */

/* The live_index table: (ivl, seq) for every block, inserted in key order
 * (a WITHOUT ROWID table filled in order is cheaper than CREATE INDEX,
 * which would rescan the whole calls table and sort). Walking the calls in
 * seq order, the keys of one level are already ascending (seq >> level
 * grows with seq), so sorting is a bucket pass by level. */
int lwv_im_live_index(importer_t *im) {
  const call_slot_t *slots = im->cb.slots;
  size_t count[IVL_LEVELS + 1] = {0}, total = 0;
  for (uint64_t seq = 0; seq < im->cb.len; seq++) {
    const call_slot_t *sl = &slots[seq];
    if (sl->op == 0 || sl->op == CALLBUF_MARK || sl->addr == 0) continue;
    count[ivl_key(seq, sl->end_seq ? sl->end_seq : IVL_INF) >> 41]++;
    total++;
  }
  size_t start[IVL_LEVELS + 1], at = 0;
  for (int l = 0; l <= IVL_LEVELS; l++) {
    start[l] = at;
    at += count[l];
  }
  uint64_t (*pairs)[2] = malloc((total ? total : 1) * sizeof *pairs);
  if (pairs == NULL) return fail(im, "%s", "out of memory");
  for (uint64_t seq = 0; seq < im->cb.len; seq++) {
    const call_slot_t *sl = &slots[seq];
    if (sl->op == 0 || sl->op == CALLBUF_MARK || sl->addr == 0) continue;
    uint64_t key = ivl_key(seq, sl->end_seq ? sl->end_seq : IVL_INF);
    size_t i = start[key >> 41]++;
    pairs[i][0] = key;
    pairs[i][1] = seq;
  }
  char sql[64 + LIVE_ROWS * 8];
  size_t len = (size_t)sprintf(sql, "INSERT INTO live_index VALUES");
  for (int r = 0; r < LIVE_ROWS; r++) len += (size_t)sprintf(sql + len, "%s(?,?)", r ? "," : "");
  sqlite3_stmt *multi = NULL, *one = NULL;
  int rc = prep(im, &multi, sql) || prep(im, &one, "INSERT INTO live_index VALUES(?,?)") ? -1 : 0;
  size_t i = 0;
  for (; rc == 0 && i + LIVE_ROWS <= total; i += LIVE_ROWS) {
    for (int r = 0; r < LIVE_ROWS; r++) {
      sqlite3_bind_int64(multi, 2 * r + 1, (sqlite3_int64)pairs[i + r][0]);
      sqlite3_bind_int64(multi, 2 * r + 2, (sqlite3_int64)pairs[i + r][1]);
    }
    rc = step_reset(im, multi);
  }
  for (; rc == 0 && i < total; i++) {
    sqlite3_bind_int64(one, 1, (sqlite3_int64)pairs[i][0]);
    sqlite3_bind_int64(one, 2, (sqlite3_int64)pairs[i][1]);
    rc = step_reset(im, one);
  }
  sqlite3_finalize(multi);
  sqlite3_finalize(one);
  free(pairs);
  return rc;
}
