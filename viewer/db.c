/* Read side of the lwview database: every query the views run, as
 * prepared statements. Views never write SQL themselves. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "import.h"
#include "u64map.h"

/* live_at visits, for each level of the interval index (import_lifetimes.c
 * live_key), the one dyadic range holding seq: IVL_LEVELS rowid ranges. */
#define IVL_LEVELS 41

static int db_prep(lwv_db_t *d, sqlite3_stmt **st, const char *sql) {
  return sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0
                                                                                             : -1;
}

static uint64_t col_u64(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? LWV_NONE
                                                   : (uint64_t)sqlite3_column_int64(st, i);
}

static uint64_t meta_u64(lwv_db_t *d, const char *key) {
  sqlite3_stmt *st = NULL;
  uint64_t v = 0;
  if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = (uint64_t)sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return v;
}

static void meta_text(lwv_db_t *d, const char *key, char *out, size_t len) {
  sqlite3_stmt *st = NULL;
  out[0] = '\0';
  if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
}

static uint64_t count_of(lwv_db_t *d, const char *sql) {
  sqlite3_stmt *st = NULL;
  uint64_t v = 0;
  if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static int load_time_index(lwv_db_t *d) {
  size_t n = (size_t)count_of(d, "SELECT count(*) FROM time_index");
  d->ti = calloc(n ? n : 1, sizeof *d->ti);
  if (d->ti == NULL) return -1;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(d->db,
                         "SELECT t0_ns, t1_ns, seq0, seq1, calls, live_bytes, live_max, live_blocks,"
                         " mapped_bytes, committed_bytes, coalesce_runs FROM time_index ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  while (d->nti < n && sqlite3_step(st) == SQLITE_ROW) {
    lwv_ti_t *t = &d->ti[d->nti++];
    uint64_t *f = &t->t0;
    for (int i = 0; i < 11; i++) f[i] = col_u64(st, i);
  }
  sqlite3_finalize(st);
  return 0;
}

lwv_db_t *lwv_db_open(const char *path, char *err, size_t errlen) {
  lwv_db_t *d = calloc(1, sizeof *d);
  if (d == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(d->path, sizeof d->path, "%s", path);
  if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot open: %s", path, d->db ? sqlite3_errmsg(d->db) : "?");
    lwv_db_close(d);
    return NULL;
  }
  sqlite3_stmt *st = NULL;
  int ok = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                              NULL) == SQLITE_OK &&
           sqlite3_step(st) == SQLITE_ROW;
  int version = ok ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  if (!ok) {
    snprintf(err, errlen, "%s: not an lwview database (%s)", path, sqlite3_errmsg(d->db));
    lwv_db_close(d);
    return NULL;
  }
  if (version != LWV_SCHEMA_VERSION || meta_u64(d, "complete") != 1) {
    snprintf(err, errlen, "%s: %s; re-import the trace", path,
             version != LWV_SCHEMA_VERSION ? "database from another lwview version"
                                           : "incomplete import");
    lwv_db_close(d);
    return NULL;
  }
  /* memory-mapped reads: no pread copies when views walk big ranges */
  sqlite3_exec(d->db, "PRAGMA cache_size=-65536; PRAGMA mmap_size=4294967296", NULL, NULL, NULL);
  meta_text(d, "exe", d->exe, sizeof d->exe);
  meta_text(d, "error", d->error, sizeof d->error);
  d->pid = meta_u64(d, "pid");
  d->end_ns = meta_u64(d, "end_ns");
  d->last_seq = meta_u64(d, "last_seq");
  d->calls = meta_u64(d, "calls");
  d->records = meta_u64(d, "records");
  d->lost = meta_u64(d, "lost");
  d->peak_live = meta_u64(d, "peak_live_bytes");
  d->peak_seq = meta_u64(d, "peak_live_seq");
  d->final_live = meta_u64(d, "final_live_bytes");
  d->final_blocks = meta_u64(d, "final_live_blocks");
  d->n_snapshots = count_of(d, "SELECT count(*) FROM pool_snapshots");
  d->n_runs = count_of(d, "SELECT count(*) FROM coalesce_runs");

  const char *live_sql =
      "SELECT c.seq, c.addr, c.size, c.time_ns, c.tid, c.stack_id FROM live_index l"
      " JOIN calls c ON c.seq = l.key & 2199023255551 WHERE l.key BETWEEN ?1 AND ?2"
      " AND (c.end_seq IS NULL OR c.end_seq > ?3)";
  char scan_sql[320];
  snprintf(scan_sql, sizeof scan_sql,
           "SELECT seq, addr, size, time_ns, tid, stack_id FROM calls WHERE seq BETWEEN ?1 AND ?2"
           " AND addr IS NOT NULL AND end_seq > ?2 AND seq >> %d = (end_seq - 1) >> %d",
           LWV_LIVE_SCAN_LEVEL - 1, LWV_LIVE_SCAN_LEVEL - 1);
  char regions_sql[256];
  snprintf(regions_sql, sizeof regions_sql,
           "SELECT kind, a, b, c, seq FROM allocator_events WHERE kind IN (%d,%d,%d)"
           " AND seq > ? AND seq <= ? ORDER BY seq", LW_EV_OS_MAP, LW_EV_OS_UNMAP, LW_EV_OS_REMAP);
  if (load_time_index(d) ||
      db_prep(d, &d->q_seq_at, "SELECT max(seq) FROM calls WHERE seq BETWEEN ? AND ? AND time_ns <= ?") ||
      db_prep(d, &d->q_live, live_sql) || db_prep(d, &d->q_live_scan, scan_sql) ||
      db_prep(d, &d->q_snap, "SELECT id, time_ns, live_bytes, mapped_bytes, committed_bytes,"
                             " unmerged_bytes FROM pool_snapshots WHERE time_ns <= ?"
                             " ORDER BY time_ns DESC, id DESC LIMIT 1") ||
      db_prep(d, &d->q_classes, "SELECT slot_size, slots_used, slots_total FROM pool_classes"
                                " WHERE snapshot_id = ? ORDER BY class") ||
      db_prep(d, &d->q_frames,
              "SELECT f.level, f.ip, s.func, s.func_offset, m.path, s.module_offset, s.source"
              " FROM frames f LEFT JOIN symbols s ON s.ip = f.ip"
              " LEFT JOIN modules m ON m.id = s.module_id WHERE f.stack_id = ? ORDER BY f.level") ||
      db_prep(d, &d->q_last_run, "SELECT max(seq) FROM allocator_events WHERE kind = ? AND seq <= ?") ||
      db_prep(d, &d->q_regions, regions_sql) ||
      db_prep(d, &d->q_freed, "SELECT in_addr, freed_size FROM calls WHERE seq > ? AND seq <= ?"
                             " AND freed_size > 0")) {
    snprintf(err, errlen, "%s: unexpected database content: %s", path, sqlite3_errmsg(d->db));
    lwv_db_close(d);
    return NULL;
  }
  return d;
}

void lwv_db_close(lwv_db_t *d) {
  if (d == NULL) return;
  sqlite3_stmt *sts[] = {d->q_seq_at, d->q_live, d->q_live_scan, d->q_snap, d->q_classes,
                         d->q_frames, d->q_last_run, d->q_freed, d->q_regions};
  for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) sqlite3_finalize(sts[i]);
  sqlite3_close(d->db);
  free(d->ti);
  free(d->live);
  for (size_t i = 0; i < d->nrcp; i++) free(d->rcp[i].v);
  free(d->rcp);
  free(d);
}

size_t lwv_db_ti_index(const lwv_db_t *d, uint64_t t) {
  size_t lo = 0, hi = d->nti; /* first stretch with t0 > t is at hi */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->ti[mid].t0 <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo ? lo - 1 : 0;
}

uint64_t lwv_db_call_time(lwv_db_t *d, uint64_t seq) {
  sqlite3_stmt *q = NULL;
  uint64_t t = 0;
  if (sqlite3_prepare_v2(d->db, "SELECT time_ns FROM calls WHERE seq = ?", -1, &q, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
    if (sqlite3_step(q) == SQLITE_ROW) t = (uint64_t)sqlite3_column_int64(q, 0);
  }
  sqlite3_finalize(q);
  return t;
}

uint64_t lwv_db_seq_at(lwv_db_t *d, uint64_t t) {
  if (d->nti == 0 || t < d->ti[0].t0) return 0;
  const lwv_ti_t *s = &d->ti[lwv_db_ti_index(d, t)];
  if (t >= s->t1) return s->seq1;
  sqlite3_stmt *q = d->q_seq_at;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)s->seq0);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)s->seq1);
  sqlite3_bind_int64(q, 3, (sqlite3_int64)t);
  uint64_t seq = s->seq0;
  if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
    seq = (uint64_t)sqlite3_column_int64(q, 0);
  sqlite3_reset(q);
  return seq;
}

const lwv_block_t *lwv_db_live_at(lwv_db_t *d, uint64_t seq, size_t *n) {
  if (d->live_valid && d->live_seq == seq) {
    *n = d->nlive;
    return d->live;
  }
  d->nlive = 0;
  d->live_valid = 0;
  int rc = SQLITE_DONE;
  for (int level = LWV_LIVE_SCAN_LEVEL - 1; level < IVL_LEVELS && rc == SQLITE_DONE; level++) {
    /* a block of level L live at seq started in seq's aligned range of
     * 2^L seqs: levels up to LWV_LIVE_SCAN_LEVEL - 1 all at once by a scan
     * of the calls in that range (live_index has no rows for them), the
     * others through live_index */
    sqlite3_stmt *q = d->q_live;
    uint64_t first = seq >> level << level;
    if (level == LWV_LIVE_SCAN_LEVEL - 1) {
      q = d->q_live_scan;
      sqlite3_bind_int64(q, 1, (sqlite3_int64)first);
      sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    } else {
      uint64_t lvl = (uint64_t)level << 41;
      sqlite3_bind_int64(q, 1, (sqlite3_int64)(lvl | first));
      sqlite3_bind_int64(q, 2, (sqlite3_int64)(lvl | seq));
      sqlite3_bind_int64(q, 3, (sqlite3_int64)seq);
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      if (d->nlive == d->caplive) {
        size_t ncap = d->caplive ? d->caplive * 2 : 4096;
        lwv_block_t *v = realloc(d->live, ncap * sizeof *v);
        if (v == NULL) break;
        d->live = v;
        d->caplive = ncap;
      }
      lwv_block_t *b = &d->live[d->nlive++];
      b->seq = (uint64_t)sqlite3_column_int64(q, 0);
      b->addr = (uint64_t)sqlite3_column_int64(q, 1);
      b->size = (uint64_t)sqlite3_column_int64(q, 2);
      b->time_ns = (uint64_t)sqlite3_column_int64(q, 3);
      b->tid = (uint32_t)sqlite3_column_int64(q, 4);
      b->stack_id = (uint32_t)sqlite3_column_int64(q, 5);
    }
    sqlite3_reset(q);
  }
  d->live_seq = seq;
  d->live_valid = rc == SQLITE_DONE;
  *n = d->nlive;
  return d->nlive ? d->live : NULL;
}

int lwv_db_snapshot_at(lwv_db_t *d, uint64_t t, lwv_snapshot_t *out) {
  sqlite3_stmt *q = d->q_snap;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)t);
  int found = sqlite3_step(q) == SQLITE_ROW;
  if (found) {
    uint64_t *f = &out->id;
    for (int i = 0; i < 6; i++) f[i] = col_u64(q, i);
  }
  sqlite3_reset(q);
  if (!found) return 0;
  out->nclasses = 0;
  q = d->q_classes;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)out->id);
  while (out->nclasses < sizeof out->classes / sizeof out->classes[0] &&
         sqlite3_step(q) == SQLITE_ROW) {
    lwv_class_t *c = &out->classes[out->nclasses++];
    c->slot_size = col_u64(q, 0);
    c->slots_used = col_u64(q, 1);
    c->slots_total = col_u64(q, 2);
  }
  sqlite3_reset(q);
  return 1;
}


/* A sorted, non-overlapping set of address ranges. */
typedef struct rset_s {
  lwv_region_t *v;
  size_t n, cap;
} rset_t;

static size_t rset_lower(const rset_t *s, uint64_t addr) { /* first start >= addr */
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->v[mid].addr < addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int rset_insert_at(rset_t *s, size_t i, uint64_t addr, uint64_t bytes) {
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 64;
    lwv_region_t *nv = realloc(s->v, ncap * sizeof *nv);
    if (nv == NULL) return -1;
    s->v = nv;
    s->cap = ncap;
  }
  memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
  s->v[i] = (lwv_region_t){addr, bytes};
  s->n++;
  return 0;
}

/* Removes [a, end) from every range it touches (splitting one if needed). */
static void rset_remove(rset_t *s, uint64_t a, uint64_t end) {
  size_t i = rset_lower(s, a);
  if (i > 0 && s->v[i - 1].addr + s->v[i - 1].bytes > a) i--;
  while (i < s->n && s->v[i].addr < end) {
    lwv_region_t r = s->v[i];
    uint64_t rend = r.addr + r.bytes;
    if (r.addr < a) { /* keeps its head */
      s->v[i].bytes = a - r.addr;
      if (rend > end) rset_insert_at(s, i + 1, end, rend - end);
      i++;
    } else if (rend > end) { /* keeps its tail */
      s->v[i] = (lwv_region_t){end, rend - end};
      i++;
    } else { /* wholly inside */
      memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
      s->n--;
    }
  }
}

static void rset_add(rset_t *s, uint64_t addr, uint64_t bytes) {
  if (bytes == 0) return;
  rset_remove(s, addr, addr + bytes);
  rset_insert_at(s, rset_lower(s, addr), addr, bytes);
}

/* Applies the OS events with seq in (from, to] to set; returns how many. */
static size_t regions_apply(lwv_db_t *d, rset_t *set, uint64_t from, uint64_t to,
                            size_t checkpoint_every) {
  sqlite3_stmt *q = d->q_regions;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)from);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)to);
  size_t count = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    int kind = sqlite3_column_int(q, 0);
    uint64_t a = (uint64_t)sqlite3_column_int64(q, 1), b = (uint64_t)sqlite3_column_int64(q, 2),
             c = (uint64_t)sqlite3_column_int64(q, 3);
    if (kind == LW_EV_OS_MAP) {
      rset_add(set, a, b);
    } else if (kind == LW_EV_OS_UNMAP) {
      rset_remove(set, a, a + b);
    } else { /* remap: the mapping at a moves to b with c bytes */
      size_t i = rset_lower(set, a);
      if (i < set->n && set->v[i].addr == a) rset_remove(set, a, a + set->v[i].bytes);
      rset_add(set, b, c);
    }
    count++;
    if (checkpoint_every && count % checkpoint_every == 0) { /* building checkpoints */
      lwv_region_cp_t *v = realloc(d->rcp, (d->nrcp + 1) * sizeof *v);
      if (v == NULL) continue;
      d->rcp = v;
      lwv_region_cp_t *cp = &v[d->nrcp++];
      cp->seq = (uint64_t)sqlite3_column_int64(q, 4);
      cp->n = set->n;
      cp->v = malloc((set->n ? set->n : 1) * sizeof *cp->v);
      if (cp->v) memcpy(cp->v, set->v, set->n * sizeof *cp->v);
      else cp->n = 0;
    }
  }
  sqlite3_reset(q);
  return count;
}

/* Mappings at a seq: the nearest checkpoint (a copy of the set every
 * REGION_CP_EVERY OS events, built on first use) plus the events since. */
#define REGION_CP_EVERY 2048

lwv_region_t *lwv_db_regions_at(lwv_db_t *d, uint64_t seq, size_t *n) {
  rset_t set = {0};
  if (!d->rcp_built) {
    d->rcp_built = 1;
    regions_apply(d, &set, 0, UINT64_MAX >> 1, REGION_CP_EVERY);
    set.n = 0;
  }
  size_t lo = 0, hi = d->nrcp; /* last checkpoint with seq <= wanted */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->rcp[mid].seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  uint64_t from = 0;
  if (lo > 0) {
    const lwv_region_cp_t *cp = &d->rcp[lo - 1];
    if (set.cap < cp->n) {
      lwv_region_t *nv = realloc(set.v, (cp->n ? cp->n : 1) * sizeof *nv);
      if (nv == NULL) {
        free(set.v);
        *n = 0;
        return NULL;
      }
      set.v = nv;
      set.cap = cp->n;
    }
    memcpy(set.v, cp->v, cp->n * sizeof *set.v);
    set.n = cp->n;
    from = cp->seq;
  }
  regions_apply(d, &set, from, seq, 0);
  *n = set.n;
  return set.v;
}

uint64_t lwv_db_last_run(lwv_db_t *d, uint64_t seq) {
  sqlite3_stmt *q = d->q_last_run;
  sqlite3_bind_int(q, 1, LW_EV_COALESCE_RUN);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
  uint64_t v = 0;
  if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
    v = (uint64_t)sqlite3_column_int64(q, 0);
  sqlite3_reset(q);
  return v;
}

lwv_region_t *lwv_db_freed_between(lwv_db_t *d, uint64_t after, uint64_t upto, size_t *n) {
  sqlite3_stmt *q = d->q_freed;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)after);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)upto);
  lwv_region_t *v = NULL;
  size_t len = 0, cap = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (len == cap) {
      cap = cap ? cap * 2 : 256;
      lwv_region_t *nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
    }
    v[len++] = (lwv_region_t){(uint64_t)sqlite3_column_int64(q, 0),
                              (uint64_t)sqlite3_column_int64(q, 1)};
  }
  sqlite3_reset(q);
  *n = len;
  return v;
}

lwv_run_t *lwv_db_runs(lwv_db_t *d, uint64_t t0, uint64_t t1, int key, size_t max, size_t *n) {
  static const char *const order[] = {"seq", "a DESC", "b DESC", "c DESC"};
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT seq, time_ns, tid, a, b, c FROM allocator_events WHERE kind = %d"
           " AND time_ns BETWEEN ? AND ? ORDER BY %s, seq LIMIT ?",
           LW_EV_COALESCE_RUN, order[key < 0 || key > 3 ? 0 : key]);
  sqlite3_stmt *q = NULL;
  *n = 0;
  if (sqlite3_prepare_v2(d->db, sql, -1, &q, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_int64(q, 1, (sqlite3_int64)t0);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)t1);
  sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
  lwv_run_t *v = calloc(max ? max : 1, sizeof *v);
  while (v && *n < max && sqlite3_step(q) == SQLITE_ROW) {
    uint64_t *f = &v[*n].seq;
    for (int i = 0; i < 6; i++) f[i] = (uint64_t)sqlite3_column_int64(q, i);
    (*n)++;
  }
  sqlite3_finalize(q);
  return v;
}

static void site_label(lwv_site_t *s, const unsigned char *label) {
  snprintf(s->label, sizeof s->label, "%s",
           label ? (const char *)label : s->stack_id ? "?" : "(no stack)");
}

/* Adds one site's counts to the table v indexed by index. */
static int site_add(u64map_t *index, lwv_site_t **v, size_t *n, size_t *cap, uint32_t id,
                    uint64_t allocs, uint64_t bytes, uint64_t leaked, uint64_t leaked_bytes) {
  int added;
  uint64_t *slot = u64map_put(index, (uint64_t)id + 1, &added);
  if (slot == NULL) return -1;
  if (added) {
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 256;
      lwv_site_t *nv = realloc(*v, *cap * sizeof *nv);
      if (nv == NULL) return -1;
      *v = nv;
    }
    memset(&(*v)[*n], 0, sizeof **v);
    (*v)[*n].stack_id = id;
    *slot = (*n)++;
  }
  lwv_site_t *s = &(*v)[*slot];
  s->allocs += allocs;
  s->bytes += bytes;
  s->leaked += leaked;
  s->leaked_bytes += leaked_bytes;
  return 0;
}

/* Sites of the blocks allocated in [seq0, seq1]: the site_stretches of the
 * time_index stretches wholly inside, plus the calls of the edges. */
static lwv_site_t *sites_in_range(lwv_db_t *d, uint64_t seq0, uint64_t seq1, size_t *n) {
  size_t i0 = 0, i1; /* stretches [i0, i1) lie inside the range */
  while (i0 < d->nti && d->ti[i0].seq0 < seq0) i0++;
  for (i1 = i0; i1 < d->nti && d->ti[i1].seq1 <= seq1;) i1++;
  u64map_t index = {0};
  lwv_site_t *v = NULL;
  size_t cap = 0;
  sqlite3_stmt *q = NULL;
  if (i1 > i0 && sqlite3_prepare_v2(d->db,
                                    "SELECT stack_id, sum(allocs), sum(bytes), sum(leaked),"
                                    " sum(leaked_bytes) FROM site_stretches"
                                    " WHERE stretch BETWEEN ? AND ? GROUP BY stack_id",
                                    -1, &q, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(q, 1, (sqlite3_int64)i0 + 1); /* ids are 1-based */
    sqlite3_bind_int64(q, 2, (sqlite3_int64)i1);
    while (sqlite3_step(q) == SQLITE_ROW)
      if (site_add(&index, &v, n, &cap, (uint32_t)sqlite3_column_int64(q, 0),
                   (uint64_t)sqlite3_column_int64(q, 1), (uint64_t)sqlite3_column_int64(q, 2),
                   (uint64_t)sqlite3_column_int64(q, 3), (uint64_t)sqlite3_column_int64(q, 4)))
        break;
    sqlite3_finalize(q);
  }
  /* the edges: calls before the first whole stretch and after the last */
  uint64_t edges[2][2] = {{seq0, i1 > i0 ? d->ti[i0].seq0 - 1 : seq1},
                          {i1 > i0 ? d->ti[i1 - 1].seq1 + 1 : 1, i1 > i0 ? seq1 : 0}};
  if (sqlite3_prepare_v2(d->db,
                         "SELECT coalesce(stack_id, 0), size, end_seq IS NULL FROM calls"
                         " WHERE seq BETWEEN ? AND ? AND addr IS NOT NULL",
                         -1, &q, NULL) == SQLITE_OK) {
    for (int e = 0; e < 2; e++) {
      if (edges[e][0] > edges[e][1]) continue;
      sqlite3_bind_int64(q, 1, (sqlite3_int64)edges[e][0]);
      sqlite3_bind_int64(q, 2, (sqlite3_int64)edges[e][1]);
      while (sqlite3_step(q) == SQLITE_ROW) {
        uint64_t size = (uint64_t)sqlite3_column_int64(q, 1);
        int leaked = sqlite3_column_int(q, 2);
        if (site_add(&index, &v, n, &cap, (uint32_t)sqlite3_column_int64(q, 0), 1, size,
                     (uint64_t)leaked, leaked ? size : 0))
          break;
      }
      sqlite3_reset(q);
    }
    sqlite3_finalize(q);
  }
  u64map_free(&index);
  if (sqlite3_prepare_v2(d->db, "SELECT site FROM stacks WHERE id = ?", -1, &q, NULL) == SQLITE_OK) {
    for (size_t i = 0; i < *n; i++) {
      sqlite3_bind_int64(q, 1, v[i].stack_id);
      site_label(&v[i], sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL);
      sqlite3_reset(q);
    }
  }
  sqlite3_finalize(q);
  return v;
}

lwv_site_t *lwv_db_sites(lwv_db_t *d, int all, uint64_t seq0, uint64_t seq1, size_t *n) {
  *n = 0;
  if (!all) return sites_in_range(d, seq0, seq1, n);
  sqlite3_stmt *q = NULL;
  if (sqlite3_prepare_v2(d->db,
                         "SELECT s.stack_id, st.site, s.allocs, s.bytes, s.leaked, s.leaked_bytes"
                         " FROM sites s LEFT JOIN stacks st ON st.id = s.stack_id",
                         -1, &q, NULL) != SQLITE_OK)
    return NULL;
  lwv_site_t *v = NULL;
  size_t cap = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 256;
      lwv_site_t *nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
    }
    lwv_site_t *s = &v[(*n)++];
    memset(s, 0, sizeof *s);
    s->stack_id = (uint32_t)sqlite3_column_int64(q, 0);
    site_label(s, sqlite3_column_text(q, 1));
    s->allocs = (uint64_t)sqlite3_column_int64(q, 2);
    s->bytes = (uint64_t)sqlite3_column_int64(q, 3);
    s->leaked = (uint64_t)sqlite3_column_int64(q, 4);
    s->leaked_bytes = (uint64_t)sqlite3_column_int64(q, 5);
  }
  sqlite3_finalize(q);
  return v;
}

lwv_frame_t *lwv_db_frames(lwv_db_t *d, uint32_t stack_id, size_t *n) {
  sqlite3_stmt *q = d->q_frames;
  sqlite3_bind_int64(q, 1, stack_id);
  lwv_frame_t *v = NULL;
  size_t cap = 0;
  *n = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      lwv_frame_t *nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
    }
    lwv_frame_t *f = &v[(*n)++];
    f->level = (uint32_t)sqlite3_column_int(q, 0);
    f->ip = (uint64_t)sqlite3_column_int64(q, 1);
    const char *func = (const char *)sqlite3_column_text(q, 2);
    const char *path = (const char *)sqlite3_column_text(q, 4);
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    unsigned long long foff = (unsigned long long)sqlite3_column_int64(q, 3);
    unsigned long long moff = (unsigned long long)sqlite3_column_int64(q, 5);
    const char *src = (const char *)sqlite3_column_text(q, 6);
    const char *src_base = src && strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
    if (func && src_base) snprintf(f->text, sizeof f->text, "%s+0x%llx  %s  (%s)", func, foff, src_base, base ? base : "?");
    else if (func && base) snprintf(f->text, sizeof f->text, "%s+0x%llx  (%s+0x%llx)", func, foff, base, moff);
    else if (base) snprintf(f->text, sizeof f->text, "%s+0x%llx", base, moff);
    else snprintf(f->text, sizeof f->text, "0x%llx", (unsigned long long)f->ip);
  }
  sqlite3_reset(q);
  return v;
}

lwv_thread_t *lwv_db_threads(lwv_db_t *d, size_t *n) {
  sqlite3_stmt *q = NULL;
  *n = 0;
  if (sqlite3_prepare_v2(d->db,
                         "SELECT tid, name, start_ns, end_ns, calls, allocs, alloc_bytes, frees,"
                         " freed_bytes, leaked_bytes FROM threads ORDER BY start_ns, tid",
                         -1, &q, NULL) != SQLITE_OK)
    return NULL;
  lwv_thread_t *v = NULL;
  size_t cap = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      lwv_thread_t *nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
    }
    lwv_thread_t *t = &v[(*n)++];
    memset(t, 0, sizeof *t);
    t->tid = col_u64(q, 0);
    const char *name = (const char *)sqlite3_column_text(q, 1);
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    t->start_ns = col_u64(q, 2);
    t->end_ns = col_u64(q, 3);
    uint64_t *f = &t->calls;
    for (int i = 0; i < 6; i++) f[i] = col_u64(q, 4 + i);
  }
  sqlite3_finalize(q);
  return v;
}

const char *lwv_fmt_bytes(uint64_t v, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = (double)v;
  int u = 0;
  while (x >= 1024 && u < 4) {
    x /= 1024;
    u++;
  }
  if (u == 0) snprintf(buf, len, "%llu B", (unsigned long long)v);
  else snprintf(buf, len, x < 10 ? "%.2f %s" : x < 100 ? "%.1f %s" : "%.0f %s", x, units[u]);
  return buf;
}

const char *lwv_fmt_ns(uint64_t ns, char *buf, size_t len) {
  if (ns < 1000) snprintf(buf, len, "%llu ns", (unsigned long long)ns);
  else if (ns < 1000000) snprintf(buf, len, "%.1f us", ns / 1e3);
  else if (ns < 1000000000) snprintf(buf, len, "%.2f ms", ns / 1e6);
  else snprintf(buf, len, "%.3f s", ns / 1e9);
  return buf;
}
