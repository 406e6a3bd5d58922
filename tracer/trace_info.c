/* `lwtrace info [--json] FILE`: counts per op, per event kind and per
 * thread, duration, peak live bytes and top stacks.
 *
 * Peak live bytes replays the calls in global sequence order (not file
 * order: threads' chunks interleave) and tracks each live block by
 * address with the size requested. A free is ordered at its free_seq
 * (taken before the free) and an allocation at its seq (taken after it
 * returned), so cross-thread reuse of an address is always seen in the
 * right order. Frees of blocks allocated before recording are ignored.
 *
 * Top stacks' frames are named from each module's ELF symbols (elfsym.c:
 * a debug file by build-id, .symtab, else .dynsym) when the file on this
 * machine is the one recorded (same build-id); else module+offset only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"
#include "lwtrace_cli.h"
#include "trace_read.h"

#define INFO_TOP 10

/* One effect on the live set, sorted by seq; 24 bytes, as there is one
 * per call. An allocation's stack id rides in the top 16 bits of ptr and
 * of size: recorded pointers are user addresses (< 2^48, as lwmalloc
 * itself requires) and a block that could be allocated is smaller (a
 * damaged trace's larger values are cut to 48 bits, frees' too, so that
 * they still pair). */
typedef struct step_s {
  uint64_t seq;
  uint64_t ptr_hi;  /* pointer | stack id's low 16 bits << 48 */
  uint64_t size_hi; /* bytes allocated | stack id's high 16 bits << 48; UINT64_MAX = a free */
} step_t;

#define STEP_LOW ((1ull << 48) - 1)
static inline int step_is_free(const step_t *s) { return s->size_hi == UINT64_MAX; }
static inline uint64_t step_ptr(const step_t *s) { return s->ptr_hi & STEP_LOW; }
static inline uint64_t step_size(const step_t *s) { return s->size_hi & STEP_LOW; }
static inline uint32_t step_stack(const step_t *s) {
  return (uint32_t)(s->ptr_hi >> 48 | (s->size_hi >> 48) << 16);
}

typedef struct thread_s {
  uint32_t tid;
  char name[32];
  uint64_t calls, events;
  uint64_t ops[LW_OP_LIMIT];
} thread_t;

#define INFO_FRAMES 6   /* innermost frames kept per stack (JSON: all of them) */
#define INFO_TEXT_TOP 5 /* stacks per list in the text form */

typedef struct stackstat_s {
  uint64_t calls, bytes;
  uint64_t end_blocks, end_bytes;   /* its blocks still live at the end */
  uint64_t peak_blocks, peak_bytes; /* ... live at the peak */
  uint32_t depth;
  uint64_t ip[INFO_FRAMES];
} stackstat_t;

typedef struct module_s {
  uint64_t start, end, bias;
  char *name; /* basename of the path */
  char *path;
  char build_id[2 * 64 + 1]; /* hex, "" if not recorded */
  elfsym_t *syms;            /* loaded on first use; owned if own_syms */
  int loaded, own_syms;
} module_t;

typedef struct info_s {
  uint64_t records, calls, stacks, modules, snapshots, lost, forks, execs;
  uint64_t ops[LW_OP_LIMIT], events[LW_EV_LIMIT];
  uint64_t first_t, last_t;
  int have_t, ended;
  thread_t *threads;
  size_t nthreads, cap_threads;
  step_t *steps;
  size_t nsteps, cap_steps;
  stackstat_t *stk;
  size_t nstk;
  module_t *mods;
  size_t nmods, cap_mods;
  uint64_t peak_live, final_live, peak_seq;
  uint64_t last_pool_live, max_pool_live;
} info_t;

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(p, n * elem);
  if (!q) {
    fprintf(stderr, "lwtrace: out of memory\n");
    exit(1);
  }
  memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
  *cap = n;
  return q;
}

static thread_t *info_thread(info_t *in, uint32_t tid) {
  for (size_t i = in->nthreads; i-- > 0;)
    if (in->threads[i].tid == tid) return &in->threads[i];
  in->threads = grow(in->threads, &in->cap_threads, in->nthreads + 1, sizeof(thread_t));
  thread_t *t = &in->threads[in->nthreads++];
  t->tid = tid;
  return t;
}

/* size UINT64_MAX: a free. */
static void info_step(info_t *in, uint64_t seq, uint64_t ptr, uint64_t size, uint32_t stack) {
  in->steps = grow(in->steps, &in->cap_steps, in->nsteps + 1, sizeof(step_t));
  step_t s = {seq, ptr & STEP_LOW, UINT64_MAX};
  if (size != UINT64_MAX) {
    s.ptr_hi |= (uint64_t)(stack & 0xffff) << 48;
    /* never UINT64_MAX, the mark of a free */
    s.size_hi = (size < STEP_LOW ? size : STEP_LOW - 1) | (uint64_t)(stack >> 16) << 48;
  }
  in->steps[in->nsteps++] = s;
}

static stackstat_t *info_stack(info_t *in, uint32_t id) {
  if (id >= in->nstk) {
    size_t cap = in->nstk;
    in->stk = grow(in->stk, &cap, (size_t)id + 1, sizeof(stackstat_t));
    in->nstk = cap;
  }
  return &in->stk[id];
}

static void info_module(info_t *in, const lwt_record_t *r) {
  in->mods = grow(in->mods, &in->cap_mods, in->nmods + 1, sizeof(module_t));
  const char *base = strrchr(r->module.path, '/');
  module_t *m = &in->mods[in->nmods++];
  m->start = r->module.start;
  m->end = r->module.end;
  m->bias = r->module.bias;
  m->name = strdup(base ? base + 1 : r->module.path);
  m->path = strdup(r->module.path);
  m->build_id[0] = 0;
  for (uint32_t k = 0; k < r->module.build_id_len && k < 64; k++)
    snprintf(m->build_id + 2 * k, 3, "%02x", r->module.build_id[k]);
  m->syms = NULL;
  m->loaded = m->own_syms = 0;
}

/* The function holding return address ip in module m, or NULL. */
static const char *info_symbol(info_t *in, module_t *m, uint64_t ip, uint64_t *off) {
  if (!m->loaded) {
    m->loaded = 1;
    for (size_t i = 0; i < in->nmods && !m->syms; i++) /* a file's segments share its symbols */
      if (in->mods[i].own_syms && strcmp(in->mods[i].path, m->path) == 0)
        m->syms = in->mods[i].syms;
    if (!m->syms && m->path && m->path[0] == '/') {
      m->syms = elfsym_load(m->path, m->build_id);
      m->own_syms = m->syms != NULL;
    }
  }
  return elfsym_lookup_ra(m->syms, ip - m->bias, off);
}

/* "malloc_wrapper+0x1a (libfoo.so+0x1234)", "libc.so.6+0x1234" (ELF
 * address) where no symbol covers it, or the raw address. */
static void info_frame(info_t *in, uint64_t ip, char *out, size_t cap) {
  for (size_t i = in->nmods; i-- > 0;) { /* latest mapping wins */
    module_t *m = &in->mods[i];
    if (ip >= m->start && ip < m->end && m->name) {
      uint64_t off = 0;
      const char *fn = info_symbol(in, m, ip, &off);
      if (fn)
        snprintf(out, cap, "%.200s+0x%" PRIx64 " (%s+0x%" PRIx64 ")", fn, off, m->name,
                 ip - m->bias);
      else
        snprintf(out, cap, "%s+0x%" PRIx64, m->name, ip - m->bias);
      return;
    }
  }
  snprintf(out, cap, "0x%" PRIx64, ip);
}

static void info_call(info_t *in, const lwt_record_t *r) {
  unsigned op = r->call.op;
  in->calls++;
  in->ops[op]++;
  thread_t *t = info_thread(in, r->tid);
  t->calls++;
  t->ops[op]++;
  if (r->call.stack_id) {
    stackstat_t *st = info_stack(in, r->call.stack_id);
    st->calls++;
    if (lwt_op_has_out(op) && r->call.out_ptr) st->bytes += r->call.size;
  }
  int freed = lwt_op_has_in(op) && r->call.in_ptr;
  if (freed && lwt_op_has_free_seq(op) && r->call.out_ptr == 0 && r->call.size != 0)
    freed = 0; /* failed realloc: the old block stays */
  if (freed) info_step(in, r->call.free_seq, r->call.in_ptr, UINT64_MAX, 0);
  if (lwt_op_has_out(op) && r->call.out_ptr)
    info_step(in, r->seq, r->call.out_ptr, r->call.size, r->call.stack_id);
}

static int step_cmp(const void *a, const void *b) {
  const step_t *x = a, *y = b;
  if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
  /* same seq (realloc in place): the free first */
  return step_is_free(x) > step_is_free(y) ? -1 : step_is_free(x) < step_is_free(y);
}

/* Live-block map: open addressing on the address. */
typedef struct live_s {
  uint64_t *key, *val;
  uint32_t *stack;
  size_t cap, n;
} live_t;

static size_t live_slot(const live_t *m, uint64_t k) {
  uint64_t h = k * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 20) & (m->cap - 1);
  while (m->key[i] && m->key[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

static void live_put(live_t *m, uint64_t k, uint64_t v, uint32_t stack);
static void live_grow(live_t *m) {
  live_t old = *m;
  m->cap = old.cap ? old.cap * 2 : 1024;
  m->key = calloc(m->cap, sizeof *m->key);
  m->val = calloc(m->cap, sizeof *m->val);
  m->stack = calloc(m->cap, sizeof *m->stack);
  if (!m->key || !m->val || !m->stack) {
    fprintf(stderr, "lwtrace: out of memory\n");
    exit(1);
  }
  m->n = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.key[i]) live_put(m, old.key[i], old.val[i], old.stack[i]);
  free(old.key);
  free(old.val);
  free(old.stack);
}

static void live_put(live_t *m, uint64_t k, uint64_t v, uint32_t stack) {
  if ((m->n + 1) * 2 > m->cap) live_grow(m);
  size_t i = live_slot(m, k);
  if (!m->key[i]) m->n++;
  m->key[i] = k;
  m->val[i] = v;
  m->stack[i] = stack;
}

/* Removes k; returns its value or UINT64_MAX when absent. Backward-shift
 * deletion keeps every probe chain unbroken. */
static uint64_t live_take(live_t *m, uint64_t k) {
  if (!m->cap) return UINT64_MAX;
  size_t i = live_slot(m, k);
  if (!m->key[i]) return UINT64_MAX;
  uint64_t v = m->val[i];
  size_t j = i;
  for (;;) {
    m->key[i] = 0;
    for (;;) {
      j = (j + 1) & (m->cap - 1);
      if (!m->key[j]) {
        m->n--;
        return v;
      }
      size_t home = (size_t)((m->key[j] * 0x9E3779B97F4A7C15ull) >> 20) & (m->cap - 1);
      /* move j back to i unless its home lies cyclically in (i, j] */
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
      break;
    }
    m->key[i] = m->key[j];
    m->val[i] = m->val[j];
    m->stack[i] = m->stack[j];
    i = j;
  }
}

/* Applies steps [0, n) in order to an empty live set m; returns the live
 * bytes after them, and the most they reached (*peak, after step *at). */
static uint64_t info_replay(const info_t *in, size_t n, live_t *m, uint64_t *peak, size_t *at) {
  uint64_t live = 0;
  *peak = 0;
  *at = 0;
  for (size_t i = 0; i < n; i++) {
    const step_t *s = &in->steps[i];
    /* a free's block; before an allocation, a block at its address whose
     * free the trace does not hold */
    uint64_t v = live_take(m, step_ptr(s));
    if (v != UINT64_MAX) live -= v;
    if (step_is_free(s)) continue;
    live_put(m, step_ptr(s), step_size(s), step_stack(s));
    live += step_size(s);
    if (live > *peak) {
      *peak = live;
      *at = i;
    }
  }
  return live;
}

/* The blocks of a live set by allocation stack: at_peak ? peak_* : end_*. */
static void info_by_stack(info_t *in, live_t *m, int at_peak) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->key[i]) {
      stackstat_t *st = info_stack(in, m->stack[i]);
      *(at_peak ? &st->peak_blocks : &st->end_blocks) += 1;
      *(at_peak ? &st->peak_bytes : &st->end_bytes) += m->val[i];
    }
  free(m->key);
  free(m->val);
  free(m->stack);
  *m = (live_t){0};
}

/* Peak and final live bytes; what is live at each, by stack (the steps
 * are replayed a second time up to the peak). */
static void info_peak(info_t *in) {
  if (in->nsteps) qsort(in->steps, in->nsteps, sizeof(step_t), step_cmp);
  live_t m = {0};
  size_t at;
  in->final_live = info_replay(in, in->nsteps, &m, &in->peak_live, &at);
  in->peak_seq = in->peak_live ? in->steps[at].seq : 0;
  info_by_stack(in, &m, 0);
  if (!in->peak_live) return;
  uint64_t unused;
  info_replay(in, at + 1, &m, &unused, &at);
  info_by_stack(in, &m, 1);
}

static void info_record(info_t *in, const lwt_record_t *r) {
  in->records++;
  if (r->time_ns && r->kind != LWT_STACK) {
    if (!in->have_t || r->time_ns < in->first_t) in->first_t = r->time_ns;
    if (r->time_ns > in->last_t) in->last_t = r->time_ns;
    in->have_t = 1;
  }
  switch (r->kind) {
  case LWT_CALL: info_call(in, r); break;
  case LWT_EVENT:
    if (r->event.kind < LW_EV_LIMIT) in->events[r->event.kind]++;
    info_thread(in, r->tid)->events++;
    break;
  case LWT_STACK: {
    in->stacks++;
    stackstat_t *st = info_stack(in, r->stack.id);
    st->depth = r->stack.depth;
    for (uint32_t i = 0; i < INFO_FRAMES && i < r->stack.depth; i++) st->ip[i] = r->stack.ips[i];
    break;
  }
  case LWT_MODULE:
    in->modules++;
    info_module(in, r);
    break;
  case LWT_POOL_SNAPSHOT:
    in->snapshots++;
    in->last_pool_live = r->pool.live_bytes;
    if (r->pool.live_bytes > in->max_pool_live) in->max_pool_live = r->pool.live_bytes;
    break;
  case LWT_THREAD_START:
  case LWT_THREAD_NAME:
    snprintf(info_thread(in, r->tid)->name, sizeof in->threads[0].name, "%s", r->thread.name);
    break;
  case LWT_LOST: in->lost += r->lost.count; break;
  case LWT_FORK: in->forks++; break;
  case LWT_EXEC: in->execs++; break;
  case LWT_END:
    in->ended = 1;
    if (r->end.lost > in->lost) in->lost = r->end.lost;
    break;
  default: break;
  }
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* The stack lists of info: by calls; by bytes live at the peak; by bytes
 * still live at the end. */
enum { BY_CALLS, BY_PEAK, BY_END, BY_LISTS };
static const struct {
  const char *json, *title, *count; /* JSON key, text heading, what is counted */
} info_lists[BY_LISTS] = {
    {"top_stacks", "top stacks (by calls):", "calls"},
    {"peak_stacks", "live at the peak, by stack:", "blocks"},
    {"live_at_end_stacks", "still live at the end (not freed), by stack:", "blocks"},
};

static uint64_t list_count(const stackstat_t *st, int list) {
  return list == BY_CALLS ? st->calls : list == BY_PEAK ? st->peak_blocks : st->end_blocks;
}

static uint64_t list_bytes(const stackstat_t *st, int list) {
  return list == BY_CALLS ? st->bytes : list == BY_PEAK ? st->peak_bytes : st->end_bytes;
}

/* What a list ranks stacks by: calls, or bytes. */
static uint64_t list_rank(const stackstat_t *st, int list) {
  return list == BY_CALLS ? st->calls : list_bytes(st, list);
}

/* The INFO_TOP stacks first in list, largest first. */
static size_t info_top(const info_t *in, uint32_t *top, int list) {
  size_t n = 0;
  for (size_t id = 1; id < in->nstk; id++) {
    uint64_t c = list_rank(&in->stk[id], list);
    if (!c) continue;
    if (n == INFO_TOP && list_rank(&in->stk[top[n - 1]], list) >= c) continue;
    size_t pos = n < INFO_TOP ? n++ : INFO_TOP - 1;
    while (pos > 0 && list_rank(&in->stk[top[pos - 1]], list) < c) {
      top[pos] = top[pos - 1];
      pos--;
    }
    top[pos] = (uint32_t)id;
  }
  return n;
}

static void info_json(FILE *f, const char *path, const lwt_header_t *h, info_t *in,
                      int complete) {
  fprintf(f, "{\"file\":");
  json_str(f, path);
  fprintf(f, ",\"version\":\"%u.%u\",\"pid\":%u,\"ppid\":%u,\"exe\":", h->version_major,
          h->version_minor, h->pid, h->ppid);
  json_str(f, h->exe);
  fprintf(f, ",\"complete\":%s,\"ended\":%s", complete ? "true" : "false",
          in->ended ? "true" : "false");
  fprintf(f, ",\"duration_ns\":%" PRIu64 ",\"records\":%" PRIu64 ",\"calls\":%" PRIu64,
          in->have_t ? in->last_t - in->first_t : 0, in->records, in->calls);
  fprintf(f, ",\"ops\":{");
  for (unsigned op = 1, first = 1; op < LW_OP_LIMIT; op++, first = 0)
    fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", lwt_op_name(op), in->ops[op]);
  fprintf(f, "},\"events\":{");
  for (unsigned k = 1, first = 1; k < LW_EV_LIMIT; k++, first = 0)
    fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", lwt_event_name(k), in->events[k]);
  fprintf(f, "},\"threads\":[");
  for (size_t i = 0; i < in->nthreads; i++) {
    const thread_t *t = &in->threads[i];
    fprintf(f, "%s{\"tid\":%u,\"name\":", i ? "," : "", t->tid);
    json_str(f, t->name);
    fprintf(f, ",\"calls\":%" PRIu64 ",\"events\":%" PRIu64 ",\"ops\":{", t->calls, t->events);
    for (unsigned op = 1, first = 1; op < LW_OP_LIMIT; op++) {
      if (!t->ops[op]) continue;
      fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", lwt_op_name(op), t->ops[op]);
      first = 0;
    }
    fprintf(f, "}}");
  }
  fprintf(f, "],\"peak_live_bytes\":%" PRIu64 ",\"peak_seq\":%" PRIu64
             ",\"final_live_bytes\":%" PRIu64,
          in->peak_live, in->peak_seq, in->final_live);
  fprintf(f, ",\"stacks\":%" PRIu64 ",\"modules\":%" PRIu64 ",\"snapshots\":%" PRIu64
             ",\"max_pool_live_bytes\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"forks\":%" PRIu64
             ",\"execs\":%" PRIu64,
          in->stacks, in->modules, in->snapshots, in->max_pool_live, in->lost, in->forks,
          in->execs);
  for (int list = 0; list < BY_LISTS; list++) {
    uint32_t top[INFO_TOP];
    size_t nt = info_top(in, top, list);
    fprintf(f, ",\"%s\":[", info_lists[list].json);
    for (size_t i = 0; i < nt; i++) {
      const stackstat_t *st = &in->stk[top[i]];
      fprintf(f, "%s{\"id\":%u,\"%s\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"frames\":[",
              i ? "," : "", top[i], info_lists[list].count, list_count(st, list),
              list_bytes(st, list));
      for (uint32_t k = 0; k < INFO_FRAMES && k < st->depth; k++) {
        char fr[512];
        info_frame(in, st->ip[k], fr, sizeof fr);
        fprintf(f, "%s", k ? "," : "");
        json_str(f, fr);
      }
      fprintf(f, "]}");
    }
    fprintf(f, "]");
  }
  fprintf(f, "}\n");
}

static void info_text(FILE *f, const char *path, const lwt_header_t *h, info_t *in,
                      int complete) {
  fprintf(f, "file:        %s%s\n", path, complete ? "" : "  (INCOMPLETE: see the error below)");
  fprintf(f, "program:     %s (pid %u, format %u.%u)%s\n", h->exe, h->pid, h->version_major,
          h->version_minor, in->ended ? "" : "  [no END record: recording was cut short]");
  fprintf(f, "duration:    %.3f s\n", in->have_t ? (double)(in->last_t - in->first_t) / 1e9 : 0.0);
  fprintf(f, "records:     %" PRIu64 "  calls: %" PRIu64 "  stacks: %" PRIu64 "  modules: %" PRIu64
             "  snapshots: %" PRIu64 "  lost: %" PRIu64 "\n",
          in->records, in->calls, in->stacks, in->modules, in->snapshots, in->lost);
  fprintf(f, "peak live:   %" PRIu64 " bytes requested (at seq %" PRIu64 "); at end %" PRIu64
             "\n",
          in->peak_live, in->peak_seq, in->final_live);
  if (in->snapshots)
    fprintf(f, "pool live:   max %" PRIu64 " bytes usable (allocator snapshots)\n",
            in->max_pool_live);
  fprintf(f, "ops:\n");
  for (unsigned op = 1; op < LW_OP_LIMIT; op++)
    if (in->ops[op]) fprintf(f, "  %-20s %" PRIu64 "\n", lwt_op_name(op), in->ops[op]);
  fprintf(f, "events:\n");
  for (unsigned k = 1; k < LW_EV_LIMIT; k++)
    if (in->events[k]) fprintf(f, "  %-20s %" PRIu64 "\n", lwt_event_name(k), in->events[k]);
  fprintf(f, "threads: %zu\n", in->nthreads);
  for (size_t i = 0; i < in->nthreads; i++)
    fprintf(f, "  tid %-8u %-16s calls %" PRIu64 " events %" PRIu64 "\n", in->threads[i].tid,
            in->threads[i].name, in->threads[i].calls, in->threads[i].events);
  for (int list = 0; list < BY_LISTS; list++) {
    uint32_t top[INFO_TOP];
    size_t nt = info_top(in, top, list);
    if (nt) fprintf(f, "%s\n", info_lists[list].title);
    for (size_t i = 0; i < nt && i < INFO_TEXT_TOP; i++) {
      const stackstat_t *st = &in->stk[top[i]];
      fprintf(f, "  stack %-6u %-6s %-10" PRIu64 " bytes %" PRIu64 "\n", top[i],
              info_lists[list].count, list_count(st, list), list_bytes(st, list));
      for (uint32_t k = 0; k < INFO_FRAMES && k < st->depth; k++) { /* innermost first */
        char fr[512];
        info_frame(in, st->ip[k], fr, sizeof fr);
        fprintf(f, "      %s\n", fr);
      }
    }
  }
}

int lwt_cmd_info(const char *path, int json) {
  char err[1024];
  lwt_reader_t *r = lwt_open(path, err, sizeof err);
  if (!r) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  info_t in;
  memset(&in, 0, sizeof in);
  lwt_record_t rec;
  int rc;
  while ((rc = lwt_next(r, &rec)) == 1) info_record(&in, &rec);
  info_peak(&in);
  if (json)
    info_json(stdout, path, lwt_header(r), &in, rc == 0);
  else
    info_text(stdout, path, lwt_header(r), &in, rc == 0);
  fflush(stdout);
  if (rc < 0) fprintf(stderr, "%s\n", lwt_error(r));
  lwt_close(r);
  free(in.threads);
  free(in.steps);
  free(in.stk);
  for (size_t i = 0; i < in.nmods; i++) {
    free(in.mods[i].name);
    free(in.mods[i].path);
    if (in.mods[i].own_syms) elfsym_free(in.mods[i].syms);
  }
  free(in.mods);
  return rc < 0 ? 1 : 0;
}
