/* Calls -> replay plan: the load-time work that makes replay-time work
 * trivial.
 *
 * 1. Every call is split into its freeing half (at key_free) and its
 *    allocating half (at key_alloc); the halves are sorted into the
 *    trace's global order and walked once with an address map, which turns
 *    each traced address into a dense block id and yields the trace's own
 *    peak live bytes.
 * 2. A block consumed by a thread other than the one that made it marks
 *    the consumer RP_WAIT_IN and the maker RP_PUBLISH_OUT: those are the
 *    only places replay threads synchronise.
 * 3. Ops are laid out per thread in start-key order (start key = key_free
 *    for ops that free, else key_alloc), plus one global order[] for
 *    --serial.
 *
 * Why the replay cannot deadlock: a wait is always for a block made at a
 * smaller key than the waiting op's start key, and every thread runs its
 * ops in increasing start key, so the pending op with the smallest start
 * key can always run.
 *
 * The plan is written into a memfd so that each child run maps it
 * read-only instead of loading the trace again. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "replay.h"

/* ---- radix sort of (key, index) pairs ---------------------------------- */
typedef struct plan_kv_s {
  uint64_t key;
  uint64_t idx;
} plan_kv_t;

/* LSD radix sort, 11 bits a pass; passes where every key has the same
 * digit are skipped (keys are sequence numbers: usually 2-3 passes). Stable. */
#define SORT_BITS 11
#define SORT_BUCKETS (1u << SORT_BITS)
static int plan_sort(plan_kv_t *a, size_t n) {
  plan_kv_t *tmp = malloc(n * sizeof *tmp + 1), *src = a, *dst = tmp;
  if (!tmp) return -1;
  uint64_t all_or = 0, all_and = ~0ull;
  for (size_t i = 0; i < n; i++) {
    all_or |= a[i].key;
    all_and &= a[i].key;
  }
  static size_t count[SORT_BUCKETS + 1];
  for (unsigned shift = 0; shift < 64; shift += SORT_BITS) {
    const uint64_t mask = SORT_BUCKETS - 1;
    if ((((all_or ^ all_and) >> shift) & mask) == 0) continue; /* constant digit */
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) count[((src[i].key >> shift) & mask) + 1]++;
    for (unsigned b = 0; b < SORT_BUCKETS; b++) count[b + 1] += count[b];
    for (size_t i = 0; i < n; i++) dst[count[(src[i].key >> shift) & mask]++] = src[i];
    plan_kv_t *swap = src;
    src = dst;
    dst = swap;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
  free(tmp);
  return 0;
}

/* ---- op classification -------------------------------------------------- */
static int op_frees(unsigned op) {
  return op == LW_OP_FREE || op == LW_OP_FREE_SIZED || op == LW_OP_FREE_ALIGNED_SIZED;
}
static int op_reallocs(unsigned op) { return op == LW_OP_REALLOC || op == LW_OP_REALLOCARRAY; }

const char *rp_op_name(unsigned op) {
  switch (op) {
#define RP_OP_NAME(name, code) \
  case code: return #name;
    LW_OP_LIST(RP_OP_NAME)
#undef RP_OP_NAME
  }
  return "?";
}

uint8_t rp_align_log2(uint64_t align) {
  uint8_t l = 0;
  while (l < 63 && (1ull << l) < align) l++;
  return align ? l : 0;
}

uint64_t rp_hash_combine(const uint64_t *th, uint64_t n) {
  uint64_t h = RP_HASH_SEED ^ n;
  for (uint64_t t = 0; t < n; t++) h = (h ^ th[t]) * 0x100000001b3ull, h ^= h >> 31;
  return h;
}

/* ---- the memfd that holds the plan -------------------------------------- */
static uint64_t align8(uint64_t v) { return (v + 7) & ~7ull; }

static void plan_bind(rp_plan_t *p, const void *base, int fd) {
  const char *b = base;
  p->hdr = base;
  p->threads = (const rp_thread_t *)(b + p->hdr->off_threads);
  p->ops = (const rp_op_t *)(b + p->hdr->off_ops);
  p->order = (const uint32_t *)(b + p->hdr->off_order);
  p->bsize = (const uint64_t *)(b + p->hdr->off_bsize);
  p->seq = (const uint64_t *)(b + p->hdr->off_seq);
  p->fd = fd;
}

int rp_plan_map(int fd, rp_plan_t *out, char *err, size_t errlen) {
  rp_plan_hdr_t h;
  if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.magic != RP_PLAN_MAGIC ||
      h.version != RP_PLAN_VERSION) {
    snprintf(err, errlen, "replay plan fd %d: not a plan", fd);
    return -1;
  }
  void *m = mmap(NULL, h.total_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "replay plan: mmap: %s", strerror(errno));
    return -1;
  }
  plan_bind(out, m, fd);
  return 0;
}

/* Reads one byte per page of [p, p+len) so the pages are mapped now. */
static uint64_t prefault(const void *p, uint64_t len) {
  const volatile unsigned char *b = p;
  uint64_t sum = 0, pg = (uint64_t)sysconf(_SC_PAGESIZE);
  for (uint64_t off = 0; off < len; off += pg) sum += b[off];
  return sum;
}

void rp_plan_prefault(const rp_plan_t *p, int serial) {
  const rp_plan_hdr_t *h = p->hdr;
  prefault(p->threads, h->nthreads * sizeof *p->threads);
  prefault(p->ops, h->nops * sizeof *p->ops);
  prefault(p->bsize, h->nblocks * sizeof *p->bsize);
  if (serial) prefault(p->order, h->nops * sizeof *p->order);
}

void rp_plan_unmap(rp_plan_t *p) {
  if (p->hdr && p->hdr != &p->hdr_copy) munmap((void *)p->hdr, p->hdr->total_bytes);
  if (p->fd >= 0) close(p->fd);
  p->hdr = NULL;
  p->fd = -1;
}

void rp_plan_set_lost(rp_plan_t *p, uint64_t lost) {
  ((rp_plan_hdr_t *)p->hdr)->trace_lost = lost; /* mapped PROT_WRITE by rp_plan_build */
}

void rp_plan_detach(rp_plan_t *p) {
  if (!p->hdr || p->hdr == &p->hdr_copy) return;
  p->hdr_copy = *p->hdr;
  munmap((void *)p->hdr, p->hdr_copy.total_bytes);
  p->hdr = &p->hdr_copy;
  p->threads = NULL;
  p->ops = NULL;
  p->order = NULL;
  p->bsize = NULL;
  p->seq = NULL;
}

void rp_plan_live(const rp_plan_t *p, uint64_t *peak, uint64_t *final) {
  uint64_t live = 0, top = 0;
  for (uint64_t g = 0; g < p->hdr->nops; g++) {
    const rp_op_t *op = &p->ops[p->order[g]];
    if (op->in_block != RP_NONE) live -= p->bsize[op->in_block];
    if (op->out_block != RP_NONE) live += p->bsize[op->out_block];
    if (live > top) top = live;
  }
  *peak = top;
  *final = live;
}

/* ---- building ------------------------------------------------------------ */
enum { CALL_DROP = 1, CALL_TO_FREE = 2, CALL_TO_MALLOC = 4, CALL_EMITTED = 8 };

typedef struct plan_tmp_s {
  uint8_t *fate;      /* per call: CALL_* */
  uint32_t *in_blk;   /* per call */
  uint32_t *out_blk;  /* per call */
  uint16_t *flags;    /* per call: rp_op_flags */
  uint32_t *maker;    /* per block: the call that made it */
  uint64_t *bsize;    /* per block */
  plan_kv_t *kv;      /* the halves of the calls, sorted */
  uint32_t *emit;     /* the kept calls in global (start-key) order */
  size_t nops;
} plan_tmp_t;

static void plan_tmp_free(plan_tmp_t *t) {
  free(t->fate);
  free(t->in_blk);
  free(t->out_blk);
  free(t->flags);
  free(t->maker);
  free(t->bsize);
  free(t->kv);
  free(t->emit);
}

/* Decides what happens to each call and counts the skipped ones. */
static void plan_classify(const rp_call_t *c, size_t n, uint8_t *fate, rp_plan_hdr_t *h) {
  for (size_t i = 0; i < n; i++) {
    fate[i] = 0;
    if (op_frees(c[i].op)) continue;
    if (c[i].out) continue;
    if (op_reallocs(c[i].op) && c[i].in && c[i].size == 0) {
      fate[i] = CALL_TO_FREE; /* realloc(p, 0) that freed p */
      h->realloc0_as_free++;
    } else {
      fate[i] = CALL_DROP; /* failed call: nothing to replay */
      h->skipped_failed++;
    }
  }
}

static int call_has_in(const rp_call_t *c, uint8_t fate) {
  return !(fate & CALL_DROP) && c->in && (op_frees(c->op) || op_reallocs(c->op));
}
static int call_has_out(const rp_call_t *c, uint8_t fate) {
  return !(fate & (CALL_DROP | CALL_TO_FREE)) && !op_frees(c->op) && c->out;
}

/* Step 1: the address walk in global order. A call's op takes its place
 * in the global order at its first half (the free half of a realloc): its
 * start key. free(NULL) gets a free half that touches no address. */
static int plan_blocks(const rp_call_t *c, size_t n, plan_tmp_t *t, rp_plan_hdr_t *h,
                       char *err, size_t errlen) {
  size_t nev = 0;
  for (size_t i = 0; i < n; i++) {
    t->in_blk[i] = t->out_blk[i] = RP_NONE;
    if (call_has_in(&c[i], t->fate[i]) || (op_frees(c[i].op) && !(t->fate[i] & CALL_DROP)))
      t->kv[nev++] = (plan_kv_t){c[i].key_free << 1, i};
    if (call_has_out(&c[i], t->fate[i])) t->kv[nev++] = (plan_kv_t){c[i].key_alloc << 1 | 1, i};
  }
  if (plan_sort(t->kv, nev) != 0) {
    snprintf(err, errlen, "out of memory sorting %zu calls", n);
    return -1;
  }
  rp_addrmap_t *map = rp_addrmap_new(1024);
  if (!map) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  uint64_t live = 0, peak = 0, nblocks = 0;
  for (size_t e = 0; e < nev; e++) {
    size_t i = t->kv[e].idx;
    if (!(t->kv[e].key & 1) && c[i].in) { /* freeing half */
      uint32_t b = rp_addrmap_del(map, c[i].in);
      if (b == RP_NONE) {
        h->skipped_unknown++;
        if (op_frees(c[i].op) || (t->fate[i] & CALL_TO_FREE)) t->fate[i] |= CALL_DROP;
        else t->fate[i] |= CALL_TO_MALLOC; /* realloc of an unknown block */
      } else {
        t->in_blk[i] = b;
        live -= t->bsize[b];
      }
    } else if (t->kv[e].key & 1) { /* allocating half */
      uint32_t b = (uint32_t)nblocks++;
      t->bsize[b] = c[i].size;
      t->maker[b] = (uint32_t)i;
      t->out_blk[i] = b;
      if (rp_addrmap_put(map, c[i].out, b) != RP_NONE) h->orphaned++;
      live += c[i].size;
      if (live > peak) peak = live;
    }
    if (!(t->fate[i] & (CALL_DROP | CALL_EMITTED))) {
      t->fate[i] |= CALL_EMITTED;
      t->emit[t->nops++] = (uint32_t)i;
    }
  }
  rp_addrmap_free(map);
  h->nblocks = nblocks;
  h->trace_peak_live = peak;
  h->trace_final_live = live;
  return 0;
}

/* Step 2b: renumber blocks so that each thread's blocks are contiguous
 * (ordered by maker thread, then creation). Replay threads store into
 * ptrs[block] on every allocation; with ids in global order, neighbours in
 * a cache line belong to different threads and the line would bounce
 * between CPUs on every op. */
static int plan_group_blocks(const rp_call_t *c, size_t n, uint32_t nthreads, plan_tmp_t *t,
                             uint64_t nblocks) {
  uint64_t *base = calloc(nthreads + 1, sizeof *base);
  uint32_t *remap = malloc((nblocks + 1) * sizeof *remap);
  uint64_t *bsize = malloc((nblocks + 1) * sizeof *bsize);
  if (!base || !remap || !bsize) {
    free(base), free(remap), free(bsize);
    return -1;
  }
  for (uint64_t b = 0; b < nblocks; b++) base[c[t->maker[b]].thread + 1]++;
  for (uint32_t k = 0; k < nthreads; k++) base[k + 1] += base[k];
  for (uint64_t b = 0; b < nblocks; b++) {
    uint32_t nb = (uint32_t)base[c[t->maker[b]].thread]++;
    remap[b] = nb;
    bsize[nb] = t->bsize[b];
  }
  for (size_t i = 0; i < n; i++) {
    if (t->in_blk[i] != RP_NONE) t->in_blk[i] = remap[t->in_blk[i]];
    if (t->out_blk[i] != RP_NONE) t->out_blk[i] = remap[t->out_blk[i]];
  }
  free(t->bsize);
  t->bsize = bsize; /* maker[] is stale from here on: not used again */
  free(remap);
  free(base);
  return 0;
}

/* Step 2: hand-offs between threads. */
static void plan_handoffs(const rp_call_t *c, size_t n, plan_tmp_t *t, rp_plan_hdr_t *h) {
  for (size_t i = 0; i < n; i++) t->flags[i] = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t b = t->in_blk[i];
    if (b == RP_NONE || (t->fate[i] & CALL_DROP)) continue;
    uint32_t m = t->maker[b];
    if (c[m].thread != c[i].thread) {
      t->flags[i] |= RP_WAIT_IN;
      t->flags[m] |= RP_PUBLISH_OUT;
      h->handoffs++;
    }
  }
}

static rp_op_t plan_op(const rp_call_t *c, const plan_tmp_t *t, size_t i) {
  rp_op_t op = {.size = c->size, .in_block = t->in_blk[i], .out_block = t->out_blk[i],
                .op = c->op, .align_log2 = c->align_log2, .flags = t->flags[i],
                .thread = c->thread};
  if (t->fate[i] & CALL_TO_FREE) op.op = LW_OP_FREE, op.size = 0;
  if (t->fate[i] & CALL_TO_MALLOC) op.op = LW_OP_MALLOC;
  return op;
}

int rp_plan_build(rp_call_t *calls, size_t n, uint32_t nthreads, const uint64_t *tids,
                  rp_plan_t *out, char *err, size_t errlen) {
  rp_plan_hdr_t h = {.magic = RP_PLAN_MAGIC, .version = RP_PLAN_VERSION, .nthreads = nthreads};
  plan_tmp_t t = {0};
  if (n >= RP_NONE) {
    snprintf(err, errlen, "trace too large: %zu calls (limit %u)", n, RP_NONE - 1);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (calls[i].thread >= nthreads) {
      snprintf(err, errlen, "call %zu: thread index %u out of range", i, calls[i].thread);
      return -1;
    }
    if (calls[i].key_free >> 62 || calls[i].key_alloc >> 62) {
      snprintf(err, errlen, "call %zu: sequence number out of range", i);
      return -1;
    }
  }
  t.fate = malloc(n + 1);
  t.in_blk = malloc((n + 1) * sizeof *t.in_blk);
  t.out_blk = malloc((n + 1) * sizeof *t.out_blk);
  t.flags = malloc((n + 1) * sizeof *t.flags);
  t.maker = malloc((n + 1) * sizeof *t.maker);
  t.bsize = malloc((n + 1) * sizeof *t.bsize);
  t.kv = malloc((2 * n + 1) * sizeof *t.kv);
  t.emit = malloc((n + 1) * sizeof *t.emit);
  if (!t.fate || !t.in_blk || !t.out_blk || !t.flags || !t.maker || !t.bsize || !t.kv || !t.emit) {
    snprintf(err, errlen, "out of memory for %zu calls", n);
    plan_tmp_free(&t);
    return -1;
  }
  plan_classify(calls, n, t.fate, &h);
  rp_phase("classify");
  if (plan_blocks(calls, n, &t, &h, err, errlen) != 0) {
    plan_tmp_free(&t);
    return -1;
  }
  rp_phase("address walk");
  plan_handoffs(calls, n, &t, &h);
  if (plan_group_blocks(calls, n, nthreads, &t, h.nblocks) != 0) {
    snprintf(err, errlen, "out of memory for %llu blocks", (unsigned long long)h.nblocks);
    plan_tmp_free(&t);
    return -1;
  }
  rp_phase("hand-offs");

  /* Step 3: per-thread order falls out of the global order. */
  free(t.kv);
  t.kv = NULL;
  size_t nops = t.nops;
  h.nops = nops;
  h.off_threads = align8(sizeof h);
  h.off_ops = align8(h.off_threads + nthreads * sizeof(rp_thread_t));
  h.off_order = align8(h.off_ops + nops * sizeof(rp_op_t));
  h.off_bsize = align8(h.off_order + nops * sizeof(uint32_t));
  h.off_seq = align8(h.off_bsize + h.nblocks * sizeof(uint64_t));
  h.total_bytes = align8(h.off_seq + nops * sizeof(uint64_t));

  rp_phase("global order");
  int fd = memfd_create("lwreplay-plan", 0);
  if (fd < 0 || ftruncate(fd, (off_t)h.total_bytes) != 0) {
    snprintf(err, errlen, "replay plan: memfd: %s", strerror(errno));
    if (fd >= 0) close(fd);
    plan_tmp_free(&t);
    return -1;
  }
  char *base = mmap(NULL, h.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    snprintf(err, errlen, "replay plan: mmap %llu bytes: %s", (unsigned long long)h.total_bytes,
             strerror(errno));
    close(fd);
    plan_tmp_free(&t);
    return -1;
  }
  rp_thread_t *th = (rp_thread_t *)(base + h.off_threads);
  rp_op_t *ops = (rp_op_t *)(base + h.off_ops);
  uint32_t *order = (uint32_t *)(base + h.off_order);
  uint64_t *seq = (uint64_t *)(base + h.off_seq);
  memcpy(base + h.off_bsize, t.bsize, h.nblocks * sizeof(uint64_t));
  for (uint32_t k = 0; k < nthreads; k++) th[k] = (rp_thread_t){0, 0, tids ? tids[k] : k};
  for (size_t g = 0; g < nops; g++) th[calls[t.emit[g]].thread].nops++;
  uint64_t at = 0;
  for (uint32_t k = 0; k < nthreads; k++) th[k].first_op = at, at += th[k].nops;
  uint64_t *fill = calloc(nthreads + 1, sizeof *fill);
  uint64_t *th_hash = calloc(nthreads + 1, sizeof *th_hash);
  if (!fill || !th_hash) {
    snprintf(err, errlen, "out of memory");
    free(fill);
    free(th_hash);
    munmap(base, h.total_bytes);
    close(fd);
    plan_tmp_free(&t);
    return -1;
  }
  for (uint32_t k = 0; k < nthreads; k++) th_hash[k] = RP_HASH_SEED;
  for (size_t g = 0; g < nops; g++) {
    size_t i = t.emit[g];
    uint32_t k = calls[i].thread;
    uint64_t o = th[k].first_op + fill[k]++;
    ops[o] = plan_op(&calls[i], &t, i);
    seq[o] = calls[i].key_alloc;
    order[g] = (uint32_t)o;
    th_hash[k] = rp_hash_step(th_hash[k], &ops[o]);
  }
  h.plan_hash = rp_hash_combine(th_hash, nthreads);
  rp_phase("per-thread ops");
  memcpy(base, &h, sizeof h);
  free(fill);
  free(th_hash);
  plan_tmp_free(&t);
  plan_bind(out, base, fd);
  return 0;
}
