/* Trace file -> calls -> plan, reading only through the tracer's reader
 * (tracer/trace_read.h): this file never looks at the bytes.
 *
 * Threads: a traced thread is a (tid, generation) pair, so a tid the kernel
 * reused becomes a new replay thread. The generation of a call is the
 * number of THREAD_STARTs of its tid sequenced before it, less one (never
 * below 0): a thread's first call can precede its own THREAD_START (it is
 * what registers the thread) and its teardown frees follow its
 * THREAD_EXIT, so neither START nor EXIT alone is an exact boundary; this
 * rule keeps a thread's calls together and at worst gives the first call
 * of a reused tid to its predecessor, which ran before it anyway. Replay threads are
 * numbered by their first call's seq (the main thread is usually 0).
 * Records are not in global order in the file (per-thread chunks), which
 * is why everything is keyed by seq rather than by position. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "trace_read.h"

typedef struct start_mark_s {
  uint64_t tid, seq;
} start_mark_t;

typedef struct load_s {
  rp_call_t *calls;
  size_t n, cap;
  start_mark_t *starts;
  size_t nstarts, starts_cap;
  uint64_t lost;
} load_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 4096;
  while (nc < need) nc *= 2;
  void *np = realloc(*p, nc * elem);
  if (!np) return -1;
  *p = np;
  *cap = nc;
  return 0;
}

static int load_call(load_t *l, const lwt_record_t *r) {
  if (grow((void **)&l->calls, &l->cap, l->n + 1, sizeof *l->calls)) return -1;
  uint64_t kf = r->call.free_seq ? r->call.free_seq : r->seq;
  /* .thread holds the raw tid until number_threads() */
  l->calls[l->n++] = (rp_call_t){.key_alloc = r->seq, .key_free = kf, .size = r->call.size,
                                 .in = r->call.in_ptr, .out = r->call.out_ptr, .thread = r->tid,
                                 .op = (uint8_t)r->call.op,
                                 .align_log2 = rp_align_log2(r->call.align)};
  return 0;
}

static int cmp_start(const void *a, const void *b) {
  const start_mark_t *x = a, *y = b;
  if (x->tid != y->tid) return x->tid < y->tid ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Generation of (tid, seq): THREAD_STARTs of tid sequenced before seq, less one. */
static uint32_t generation(const load_t *l, uint64_t tid, uint64_t seq) {
  size_t lo = 0, hi = l->nstarts; /* first mark >= (tid, seq) */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const start_mark_t *m = &l->starts[mid];
    if (m->tid < tid || (m->tid == tid && m->seq < seq)) lo = mid + 1;
    else hi = mid;
  }
  size_t first = lo;
  while (first > 0 && l->starts[first - 1].tid == tid) first--;
  return lo - first > 0 ? (uint32_t)(lo - first - 1) : 0;
}

typedef struct thread_slot_s {
  uint64_t first_seq, tid;
  uint32_t tmp;
} thread_slot_t;

static int cmp_slot(const void *a, const void *b) {
  const thread_slot_t *x = a, *y = b;
  return (x->first_seq > y->first_seq) - (x->first_seq < y->first_seq);
}

/* Gives every call its dense thread index; returns the thread count. */
static int number_threads(load_t *l, uint64_t **tids_out, uint32_t *nthreads, char *err,
                          size_t errlen) {
  qsort(l->starts, l->nstarts, sizeof *l->starts, cmp_start);
  rp_addrmap_t *map = rp_addrmap_new(64);
  thread_slot_t *slot = NULL;
  size_t nslots = 0, cap = 0;
  if (!map) goto oom;
  for (size_t i = 0; i < l->n; i++) {
    uint64_t tid = l->calls[i].thread; /* still the raw tid */
    uint32_t gen = generation(l, tid, l->calls[i].key_alloc);
    uint64_t key = (tid << 24 | gen) + 1; /* nonzero: addrmap's empty key is 0 */
    uint32_t t = rp_addrmap_get(map, key);
    if (t == RP_NONE) {
      if (grow((void **)&slot, &cap, nslots + 1, sizeof *slot)) goto oom;
      t = (uint32_t)nslots;
      slot[nslots++] = (thread_slot_t){l->calls[i].key_alloc, tid, t};
      rp_addrmap_put(map, key, t);
    } else if (l->calls[i].key_alloc < slot[t].first_seq) {
      slot[t].first_seq = l->calls[i].key_alloc;
    }
    l->calls[i].thread = t; /* temporary number, remapped below */
  }
  rp_addrmap_free(map);
  map = NULL;
  qsort(slot, nslots, sizeof *slot, cmp_slot);
  uint32_t *final = malloc((nslots + 1) * sizeof *final);
  uint64_t *tids = malloc((nslots + 1) * sizeof *tids);
  if (!final || !tids) {
    free(final);
    free(tids);
    goto oom;
  }
  for (size_t k = 0; k < nslots; k++) final[slot[k].tmp] = (uint32_t)k, tids[k] = slot[k].tid;
  for (size_t i = 0; i < l->n; i++) l->calls[i].thread = final[l->calls[i].thread];
  free(final);
  free(slot);
  *tids_out = tids;
  *nthreads = (uint32_t)nslots;
  return 0;
oom:
  rp_addrmap_free(map);
  free(slot);
  snprintf(err, errlen, "out of memory numbering threads");
  return -1;
}

int rp_load_trace(const char *path, rp_plan_t *out, char *err, size_t errlen) {
  lwt_reader_t *r = lwt_open(path, err, errlen);
  if (!r) return -1;
  rp_phase("open");
  load_t l = {0};
  lwt_record_t rec;
  int rc;
  while ((rc = lwt_next(r, &rec)) == 1) {
    if (rec.kind == LWT_CALL) {
      if (rec.call.op == 0 || rec.call.op >= LW_OP_LIMIT) {
        snprintf(err, errlen, "%s: call seq %llu: unknown op code %u", path,
                 (unsigned long long)rec.seq, rec.call.op);
        rc = -2;
        break;
      }
      if (load_call(&l, &rec) != 0) {
        snprintf(err, errlen, "%s: out of memory after %zu calls", path, l.n);
        rc = -2;
        break;
      }
    } else if (rec.kind == LWT_THREAD_START) {
      if (grow((void **)&l.starts, &l.starts_cap, l.nstarts + 1, sizeof *l.starts)) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -2;
        break;
      }
      l.starts[l.nstarts++] = (start_mark_t){rec.tid, rec.seq};
    } else if (rec.kind == LWT_LOST) {
      l.lost += rec.lost.count;
    }
  }
  if (rc == -1) snprintf(err, errlen, "%s", lwt_error(r));
  rp_phase("read");
  lwt_close(r);
  uint64_t *tids = NULL;
  uint32_t nthreads = 0;
  if (rc == 0 && l.n == 0) {
    snprintf(err, errlen, "%s: the trace has no malloc-family calls", path);
    rc = -2;
  }
  if (rc == 0 && number_threads(&l, &tids, &nthreads, err, errlen) != 0) rc = -2;
  rp_phase("threads");
  free(l.starts);
  if (rc == 0) {
    rc = rp_plan_build(l.calls, l.n, nthreads, tids, out, err, errlen);
    if (rc == 0) rp_plan_set_lost(out, l.lost);
  }
  free(l.calls);
  free(tids);
  return rc == 0 ? 0 : -1;
}
