/* Trace → SQLite import.
 *
 * Pass 1 streams the trace (through tracer/trace_read.h only): calls go to
 * a seq-indexed table (callbuf.c; the trace interleaves per-thread chunks,
 * so file order is not seq order), allocator events, modules and pool
 * snapshots to SQLite; stacks and threads are kept in memory and written at
 * the end of the pass, stacks symbolised from the module map (elfsym.c).
 * Pass 2 walks the calls in seq order merged with events and snapshots,
 * follows every block from allocation to free with an address map, and
 * records each block's end in its allocating call; it fills sites, threads
 * and time_index. Pass 3 appends the calls table in seq order.
 * Rows go through prepared statements in transactions of IMPORT_BATCH rows;
 * indexes are built after the load. */
#include "import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "callbuf.h"
#include "elfsym.h"
#include "events.h"
#include "schema_sql.h"
#include "trace_read.h"
#include "u64map.h"

#define IMPORT_BATCH 250000     /* rows per transaction */
#define TI_TARGET 2048          /* time_index: aim for this many stretches, */
#define TI_MAX_CALLS 1024       /* each of at most this many calls */
#define IVL_INF (1ULL << 40)    /* end of a block never freed */

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

/* Allocator events and snapshot totals, kept for pass 2's merge by seq. */
typedef struct event_s {
  uint64_t seq, a, b, c;
  unsigned kind;
} event_t;

typedef struct snap_s {
  uint64_t seq, mapped, committed;
} snap_t;

typedef struct importer_s {
  sqlite3 *db;
  const char *trace_path;
  char *err;
  size_t errlen;
  uint64_t pending_rows; /* rows since the last commit */
  int progress;
  uint64_t file_size;
  double t_start, t_last_draw;
  int drawn;

  sqlite3_stmt *ins_call, *ins_event, *ins_module, *ins_snap, *ins_class;
  sqlite3_stmt *ins_ti, *ins_meta;

  module_t *mods;
  size_t nmods, capmods;
  stack_t_ *stacks;
  size_t nstacks, capstacks;
  u64map_t stack_ids; /* id+1 -> index */
  thread_t_ *threads;
  size_t nthreads, capthreads;
  u64map_t thread_ids; /* tid -> index */
  site_t *sites;       /* indexed by stack id (grown on demand) */
  size_t capsites;
  callbuf_t cb;        /* every call, by seq */
  event_t *evs;
  size_t nevs, capevs;
  snap_t *snapv;
  size_t capsnapv;
  uint64_t dup_seqs;   /* records whose seq was already taken (corrupt input) */

  uint64_t records, calls, events, snaps, lost, last_seq, end_ns, forks, execs;
  int have_end;
} importer_t;

/* ---- small helpers -------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(importer_t *im, const char *fmt, const char *detail) {
  snprintf(im->err, im->errlen, fmt, detail);
  return -1;
}

static int sql_fail(importer_t *im, const char *what) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s: %s", what, sqlite3_errmsg(im->db));
  return fail(im, "database: %s", msg);
}

static int exec_sql(importer_t *im, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(im->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fail(im, "database: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static int prep(importer_t *im, sqlite3_stmt **st, const char *sql) {
  if (sqlite3_prepare_v3(im->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
    return sql_fail(im, sql);
  return 0;
}

/* Binds v as an integer, or NULL when v is 0 and zero_is_null. */
static void bind_u64(sqlite3_stmt *st, int i, uint64_t v, int zero_is_null) {
  if (zero_is_null && v == 0) sqlite3_bind_null(st, i);
  else sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static int step_reset(importer_t *im, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sql_fail(im, "insert");
  if (++im->pending_rows >= IMPORT_BATCH) {
    im->pending_rows = 0;
    if (exec_sql(im, "COMMIT; BEGIN") != 0) return -1;
  }
  return 0;
}

static int meta_put_int(importer_t *im, const char *key, int64_t v) {
  sqlite3_bind_text(im->ins_meta, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(im->ins_meta, 2, v);
  return step_reset(im, im->ins_meta);
}

static int meta_put_text(importer_t *im, const char *key, const char *v) {
  sqlite3_bind_text(im->ins_meta, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(im->ins_meta, 2, v, -1, SQLITE_TRANSIENT);
  return step_reset(im, im->ins_meta);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t ncap = *cap ? *cap * 2 : 64;
  while (ncap < need) ncap *= 2;
  void *np = realloc(p, ncap * elem);
  if (np == NULL) return NULL;
  memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
  *cap = ncap;
  return np;
}

/* Progress bar on stderr: phase weights pass 1 = 0..70%, pass 2 = 70..95%,
 * indexes = 95..100%. Drawn only after the import has run 0.3 s. */
static void progress(importer_t *im, double frac, const char *phase) {
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

static thread_t_ *thread_get(importer_t *im, uint64_t tid) {
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
  return &im->threads[*slot];
}

static site_t *site_get(importer_t *im, uint32_t stack_id) {
  site_t *v = grow(im->sites, &im->capsites, (size_t)stack_id + 1, sizeof *v);
  if (v == NULL) return NULL;
  im->sites = v;
  return &v[stack_id];
}

/* ---- pass 1: the trace stream ----------------------------------------- */

static int on_call(importer_t *im, const lwt_record_t *r) {
  unsigned op = r->call.op;
  call_slot_t *sl = callbuf_slot(&im->cb, r->seq);
  if (sl == NULL) return fail(im, "%s", "cannot grow the call table (seq out of range?)");
  if (sl->op != 0) {
    im->dup_seqs++;
    return 0;
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
  /* a realloc releases its old block at free_seq, before it returns: a
   * MARK slot there makes pass 2 free it in the right order. A failed
   * realloc (NULL for a non-zero size) frees nothing. */
  if (sl->free_seq != 0 && sl->free_seq < r->seq && !(sl->addr == 0 && sl->size != 0)) {
    uint64_t seq = r->seq, in = sl->in_addr, time = r->time_ns;
    call_slot_t *mark = callbuf_slot(&im->cb, sl->free_seq);
    if (mark == NULL) return fail(im, "%s", "cannot grow the call table");
    if (mark->op == 0) {
      mark->op = CALLBUF_MARK;
      mark->in_addr = in;
      mark->free_seq = seq;
      mark->time_ns = time;
      mark->tid = r->tid;
    }
  }
  return 0;
}

static int on_event(importer_t *im, const lwt_record_t *r) {
  sqlite3_stmt *st = im->ins_event;
  bind_u64(st, 1, r->seq, 0);
  bind_u64(st, 2, r->time_ns, 0);
  bind_u64(st, 3, r->tid, 0);
  bind_u64(st, 4, r->event.kind, 0);
  bind_u64(st, 5, r->event.a, 0);
  bind_u64(st, 6, r->event.b, 0);
  bind_u64(st, 7, r->event.c, 0);
  im->events++;
  event_t *v = grow(im->evs, &im->capevs, im->nevs + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->evs = v;
  v[im->nevs++] = (event_t){r->seq, r->event.a, r->event.b, r->event.c, r->event.kind};
  return step_reset(im, st);
}

static int on_module(importer_t *im, const lwt_record_t *r) {
  module_t *v = grow(im->mods, &im->capmods, im->nmods + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->mods = v;
  module_t *m = &v[im->nmods++];
  m->start = r->module.start;
  m->end = r->module.end;
  m->bias = r->module.bias;
  m->path = strdup(r->module.path ? r->module.path : "");
  m->build_id = NULL;
  if (r->module.build_id_len > 0) {
    m->build_id = malloc(2 * (size_t)r->module.build_id_len + 1);
    if (m->build_id)
      for (uint32_t i = 0; i < r->module.build_id_len; i++)
        sprintf(m->build_id + 2 * i, "%02x", r->module.build_id[i]);
  }
  sqlite3_stmt *st = im->ins_module;
  bind_u64(st, 1, im->nmods, 0);
  bind_u64(st, 2, m->start, 0);
  bind_u64(st, 3, m->end, 0);
  bind_u64(st, 4, r->module.offset, 0);
  bind_u64(st, 5, m->bias, 0);
  sqlite3_bind_text(st, 6, m->path, -1, SQLITE_STATIC);
  if (m->build_id) sqlite3_bind_text(st, 7, m->build_id, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 7);
  return step_reset(im, st);
}

static int on_stack(importer_t *im, const lwt_record_t *r) {
  int added;
  uint64_t *slot = u64map_put(&im->stack_ids, (uint64_t)r->stack.id + 1, &added);
  if (slot == NULL) return fail(im, "%s", "out of memory");
  if (!added) return 0; /* already known (a fork child may repeat it) */
  stack_t_ *v = grow(im->stacks, &im->capstacks, im->nstacks + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->stacks = v;
  stack_t_ *s = &v[im->nstacks];
  *slot = im->nstacks++;
  s->id = r->stack.id;
  s->depth = r->stack.depth;
  s->ips = malloc((r->stack.depth ? r->stack.depth : 1) * sizeof *s->ips);
  if (s->ips == NULL) return fail(im, "%s", "out of memory");
  memcpy(s->ips, r->stack.ips, r->stack.depth * sizeof *s->ips);
  return 0;
}

static int on_snapshot(importer_t *im, const lwt_record_t *r) {
  sqlite3_stmt *st = im->ins_snap;
  snap_t *v = grow(im->snapv, &im->capsnapv, im->snaps + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->snapv = v;
  v[im->snaps] = (snap_t){r->seq, r->pool.mapped_bytes, r->pool.committed_bytes};
  im->snaps++;
  bind_u64(st, 1, im->snaps, 0);
  bind_u64(st, 2, r->time_ns, 0);
  bind_u64(st, 3, r->seq, 0);
  bind_u64(st, 4, r->pool.live_bytes, 0);
  bind_u64(st, 5, r->pool.mapped_bytes, 0);
  bind_u64(st, 6, r->pool.committed_bytes, 0);
  bind_u64(st, 7, r->pool.unmerged_bytes, 0);
  if (step_reset(im, st) != 0) return -1;
  for (uint32_t c = 0; c < r->pool.nclasses; c++) {
    st = im->ins_class;
    bind_u64(st, 1, im->snaps, 0);
    bind_u64(st, 2, c, 0);
    bind_u64(st, 3, r->pool.classes[c].slot_size, 0);
    bind_u64(st, 4, r->pool.classes[c].slots_used, 0);
    bind_u64(st, 5, r->pool.classes[c].slots_total, 0);
    if (step_reset(im, st) != 0) return -1;
  }
  return 0;
}

static int on_record(importer_t *im, const lwt_record_t *r) {
  im->records++;
  if (r->seq > im->last_seq) im->last_seq = r->seq;
  if (r->time_ns > im->end_ns) im->end_ns = r->time_ns;
  thread_t_ *t;
  switch (r->kind) {
  case LWT_CALL: return on_call(im, r);
  case LWT_EVENT: return on_event(im, r);
  case LWT_MODULE: return on_module(im, r);
  case LWT_STACK: return on_stack(im, r);
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
    return 0;
  case LWT_THREAD_EXIT:
    if ((t = thread_get(im, r->tid)) == NULL) return fail(im, "%s", "out of memory");
    t->exited = 1;
    t->end_ns = r->time_ns;
    return 0;
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
  case LWT_FORK: im->forks++; return 0;
  case LWT_EXEC: im->execs++; return 0;
  case LWT_LOST: im->lost += r->lost.count; return 0;
  case LWT_END:
    im->have_end = 1;
    if (r->end.lost > im->lost) im->lost = r->end.lost;
    return 0;
  default: return 0;
  }
}

/* ---- symbolisation (end of pass 1) ------------------------------------ */

static const module_t *module_of(importer_t *im, uint64_t ip) {
  for (size_t i = im->nmods; i-- > 0;) /* latest mapping wins */
    if (ip >= im->mods[i].start && ip < im->mods[i].end) return &im->mods[i];
  return NULL;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Frames inside the allocator or the tracer are not "the call site". */
static int frame_is_internal(const module_t *m) {
  return m != NULL && strstr(base_name(m->path), "lwmalloc") != NULL;
}

static const char *symbolise(importer_t *im, uint64_t ip, const module_t **mod, uint64_t *off) {
  const module_t *m = module_of(im, ip);
  *mod = m;
  if (m == NULL) return NULL;
  module_t *mm = (module_t *)m;
  if (!mm->loaded) {
    mm->loaded = 1;
    /* every PT_LOAD segment of one file shares the symbol table */
    for (size_t i = 0; i < im->nmods; i++)
      if (im->mods[i].loaded && im->mods[i].syms && strcmp(im->mods[i].path, mm->path) == 0) {
        mm->syms = im->mods[i].syms;
        break;
      }
    if (mm->syms == NULL && mm->path[0] == '/') mm->syms = elfsym_load(mm->path, mm->build_id);
  }
  /* a return address points after the call: look up ip - 1 */
  const char *name = elfsym_lookup(mm->syms, ip - 1 - mm->bias, off);
  if (name) *off += 1;
  return name;
}

static int write_stacks(importer_t *im) {
  sqlite3_stmt *ins_stack = NULL, *ins_frame = NULL, *ins_sym = NULL;
  u64map_t seen = {0};
  int rc = -1;
  if (prep(im, &ins_stack, "INSERT INTO stacks(id, depth, site) VALUES(?,?,?)") ||
      prep(im, &ins_frame, "INSERT INTO frames(stack_id, level, ip) VALUES(?,?,?)") ||
      prep(im, &ins_sym, "INSERT INTO symbols(ip, module_id, module_offset, func, func_offset) "
                         "VALUES(?,?,?,?,?)"))
    goto out;
  for (size_t i = 0; i < im->nstacks; i++) {
    const stack_t_ *s = &im->stacks[i];
    char site[256] = "", first[256] = "";
    for (uint32_t l = 0; l < s->depth; l++) {
      uint64_t ip = s->ips[l], off = 0;
      const module_t *m;
      const char *fn = symbolise(im, ip, &m, &off);
      char label[256];
      if (fn) snprintf(label, sizeof label, "%s+0x%llx", fn, (unsigned long long)off);
      else if (m) snprintf(label, sizeof label, "%s+0x%llx", base_name(m->path),
                           (unsigned long long)(ip - m->bias));
      else snprintf(label, sizeof label, "0x%llx", (unsigned long long)ip);
      if (l == 0) memcpy(first, label, sizeof first);
      if (!site[0] && !frame_is_internal(m)) memcpy(site, label, sizeof site);
      int added;
      uint64_t *slot = u64map_put(&seen, ip ? ip : 1, &added);
      if (slot == NULL) {
        fail(im, "%s", "out of memory");
        goto out;
      }
      if (added) {
        bind_u64(ins_sym, 1, ip, 0);
        if (m) {
          bind_u64(ins_sym, 2, (uint64_t)(m - im->mods) + 1, 0);
          bind_u64(ins_sym, 3, ip - m->bias, 0);
        } else {
          sqlite3_bind_null(ins_sym, 2);
          sqlite3_bind_null(ins_sym, 3);
        }
        if (fn) {
          sqlite3_bind_text(ins_sym, 4, fn, -1, SQLITE_TRANSIENT);
          bind_u64(ins_sym, 5, off, 0);
        } else {
          sqlite3_bind_null(ins_sym, 4);
          sqlite3_bind_null(ins_sym, 5);
        }
        if (step_reset(im, ins_sym) != 0) goto out;
      }
      bind_u64(ins_frame, 1, s->id, 0);
      bind_u64(ins_frame, 2, l, 0);
      bind_u64(ins_frame, 3, ip, 0);
      if (step_reset(im, ins_frame) != 0) goto out;
    }
    bind_u64(ins_stack, 1, s->id, 0);
    bind_u64(ins_stack, 2, s->depth, 0);
    sqlite3_bind_text(ins_stack, 3, site[0] ? site : first, -1, SQLITE_TRANSIENT);
    if (step_reset(im, ins_stack) != 0) goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(ins_stack);
  sqlite3_finalize(ins_frame);
  sqlite3_finalize(ins_sym);
  u64map_free(&seen);
  return rc;
}

/* ---- pass 2: lifetimes and aggregates in seq order --------------------- */

/* Interval-index key of a lifetime [seq, end): the smallest aligned dyadic
 * range of seqs holding [seq, end-1], as level << 41 | seq >> level.
 * db.c's live-at query visits the 41 ranges that contain a given seq. */
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
static int pass2(importer_t *im) {
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

#define CALL_COLS 15
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
  if (sl->addr != 0) bind_u64(st, base + 15, ivl_key(seq, sl->end_seq ? sl->end_seq : IVL_INF), 0);
  else sqlite3_bind_null(st, base + 15);
}

/* Pass 3: the calls table, appended in seq order (SQLite's fastest
 * insert) CALL_ROWS rows per statement, each row with its block's end and
 * interval-index key. */
static int pass3(importer_t *im) {
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
  sqlite3_stmt **sts[] = {&im->ins_call, &im->ins_event, &im->ins_module, &im->ins_snap,
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
  callbuf_close(&im->cb);
  free(im->evs);
  free(im->snapv);
}

int lwv_import(const char *trace_path, const char *db_path, int show_progress,
               lwv_import_stats_t *stats, char *warn, size_t warnlen, char *err, size_t errlen) {
  importer_t im;
  memset(&im, 0, sizeof im);
  im.cb.fd = -1;
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
  unlink(tmp);
  int rc = -1, rrc;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", db_path);
  char *slash = strrchr(dir, '/');
  if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
  else snprintf(dir, sizeof dir, ".");
  if (callbuf_open(&im.cb, dir) != 0) {
    snprintf(err, errlen, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    goto out;
  }
  char reader_err[1300] = "";
  if (sqlite3_open_v2(tmp, &im.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot create database: %s", tmp,
             im.db ? sqlite3_errmsg(im.db) : "out of memory");
    goto out;
  }
  if (exec_sql(&im, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                    "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-131072; PRAGMA page_size=16384; BEGIN") ||
      create_schema(&im, 0) ||
      prep(&im, &im.ins_call, "INSERT INTO calls VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_event, "INSERT INTO allocator_events VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_module, "INSERT INTO modules VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_snap, "INSERT INTO pool_snapshots VALUES(?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_class, "INSERT INTO pool_classes VALUES(?,?,?,?,?)") ||
      prep(&im, &im.ins_ti, "INSERT INTO time_index VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)") ||
      prep(&im, &im.ins_meta, "INSERT OR REPLACE INTO meta VALUES(?,?)"))
    goto out;

  lwt_record_t r;
  while ((rrc = lwt_next(rd, &r)) == 1) {
    if (on_record(&im, &r) != 0) goto out;
    if ((im.records & 0xffff) == 0 && im.file_size)
      progress(&im, 0.45 * (double)lwt_offset(rd) / (double)im.file_size, "reading");
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
  double t_pass1 = now_s(), c_pass1 = cpu_s();
  const lwt_header_t *h = lwt_header(rd);
  char version[32];
  snprintf(version, sizeof version, "%u.%u", h->version_major, h->version_minor);
  double t_sym = 0, t_pass2 = 0, t_pass3 = 0, c_sym = 0, c_pass2 = 0, c_pass3 = 0;
  if (write_lookups(&im) || write_stacks(&im) || ((t_sym = now_s()), (c_sym = cpu_s()), pass2(&im)) ||
      ((t_pass2 = now_s()), (c_pass2 = cpu_s()), pass3(&im)) ||
      ((t_pass3 = now_s()), (c_pass3 = cpu_s()), write_aggregates(&im)) ||
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
  if (getenv("LWV_TIMING"))
    fprintf(stderr,
            "lwview: wall/cpu s: read %.2f/%.2f  symbols %.2f/%.2f  lifetimes %.2f/%.2f"
            "  calls table %.2f/%.2f  indexes %.2f/%.2f\n",
            t_pass1 - im.t_start, c_pass1, t_sym - t_pass1, c_sym - c_pass1, t_pass2 - t_sym,
            c_pass2 - c_sym, t_pass3 - t_pass2, c_pass3 - c_pass2, now_s() - t_pass3,
            cpu_s() - c_pass3);
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
