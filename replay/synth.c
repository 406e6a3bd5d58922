/* Synthetic call streams, shaped like what the tracer records (global
 * sequence numbers, free_seq reserved before a free, traced addresses
 * reused LIFO like a real allocator does, across threads). They drive the
 * engine benchmark (--bench-engine) and the tests that must not depend on
 * a recorded trace.
 *
 *   churn    each thread: a ring of live blocks, free the oldest, malloc anew
 *   handoff  thread 0 mallocs, threads 1.. free (producer/consumer)
 *   realloc  malloc, grow by realloc a few times (sometimes in place), free
 *   aligned  memalign / posix_memalign / aligned_alloc / valloc, then free */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

typedef struct synth_s {
  rp_call_t *calls;
  size_t n, cap;
  uint64_t seq;
  uint64_t rng;
  uint64_t *free_addrs; /* LIFO of traced addresses free for reuse */
  size_t nfree, free_cap;
  uint64_t bump;
  int oom;
} synth_t;

static uint64_t synth_rand(synth_t *s) {
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return s->rng * 0x2545f4914f6cdd1dull;
}

static uint64_t synth_size(synth_t *s) {
  uint64_t r = synth_rand(s);
  if ((r & 63) == 0) return 1024 + (r >> 8) % 65536; /* 1 in 64 medium */
  return 8 + (r >> 8) % 248;
}

static int synth_push(synth_t *s, rp_call_t c) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    rp_call_t *nc = realloc(s->calls, cap * sizeof *nc);
    if (!nc) return s->oom = -1;
    s->calls = nc;
    s->cap = cap;
  }
  s->calls[s->n++] = c;
  return 0;
}

static uint64_t synth_addr(synth_t *s, uint64_t align) {
  if (s->nfree && (align <= 16 || s->free_addrs[s->nfree - 1] % align == 0))
    return s->free_addrs[--s->nfree];
  uint64_t a = align > 16 ? align : 16;
  s->bump = (s->bump + a - 1) / a * a;
  uint64_t r = s->bump;
  s->bump += 1 << 20; /* identities only: never overlapping */
  return r;
}

static void synth_release(synth_t *s, uint64_t addr) {
  if (s->nfree == s->free_cap) {
    size_t cap = s->free_cap ? s->free_cap * 2 : 1024;
    uint64_t *nf = realloc(s->free_addrs, cap * sizeof *nf);
    if (!nf) return; /* never reused: still valid */
    s->free_addrs = nf;
    s->free_cap = cap;
  }
  s->free_addrs[s->nfree++] = addr;
}

static uint64_t synth_alloc(synth_t *s, uint32_t th, unsigned op, uint64_t size, uint64_t align) {
  uint64_t a = synth_addr(s, align);
  uint64_t k = s->seq++;
  synth_push(s, (rp_call_t){.key_alloc = k, .key_free = k, .size = size, .out = a, .thread = th,
                            .op = (uint8_t)op, .align_log2 = rp_align_log2(align)});
  return a;
}

static void synth_free(synth_t *s, uint32_t th, uint64_t addr) {
  uint64_t kf = s->seq++;
  synth_release(s, addr); /* reusable from here on, by any thread */
  synth_push(s, (rp_call_t){.key_alloc = s->seq++, .key_free = kf, .in = addr, .thread = th,
                            .op = LW_OP_FREE});
}

static uint64_t synth_realloc(synth_t *s, uint32_t th, uint64_t addr, uint64_t size) {
  uint64_t kf = s->seq++;
  uint64_t out = addr;
  if (synth_rand(s) & 1) { /* moved */
    synth_release(s, addr);
    out = synth_addr(s, 16);
  }
  synth_push(s, (rp_call_t){.key_alloc = s->seq++, .key_free = kf, .size = size, .in = addr,
                            .out = out, .thread = th, .op = LW_OP_REALLOC});
  return out;
}

#define SYNTH_RING 1024

static void synth_churn(synth_t *s, uint64_t n, uint32_t nth) {
  uint64_t *ring = calloc((size_t)nth * SYNTH_RING, sizeof *ring);
  if (!ring) return;
  for (uint64_t i = 0; s->n < n && !s->oom; i++) {
    uint32_t th = (uint32_t)(i % nth);
    uint64_t *slot = &ring[th * SYNTH_RING + (i / nth) % SYNTH_RING];
    if (*slot) synth_free(s, th, *slot);
    *slot = synth_alloc(s, th, (synth_rand(s) & 7) ? LW_OP_MALLOC : LW_OP_CALLOC, synth_size(s), 0);
  }
  free(ring); /* what is still in the ring stays live: a "leak" at exit */
}

static void synth_handoff(synth_t *s, uint64_t n, uint32_t nth) {
  uint64_t queue[64];
  unsigned q = 0;
  for (uint64_t i = 0; s->n < n && !s->oom; i++) {
    queue[q++] = synth_alloc(s, 0, LW_OP_MALLOC, synth_size(s), 0);
    if (q == 64 || s->n + 64 >= n) { /* a consumer takes the whole batch */
      uint32_t th = 1 + (uint32_t)(i % (nth - 1));
      while (q) synth_free(s, th, queue[--q]);
    }
  }
}

static void synth_realloc_chains(synth_t *s, uint64_t n, uint32_t nth) {
  for (uint64_t i = 0; s->n < n && !s->oom; i++) {
    uint32_t th = (uint32_t)(i % nth);
    uint64_t size = 16 + synth_rand(s) % 64;
    uint64_t a = synth_alloc(s, th, LW_OP_MALLOC, size, 0);
    for (int k = 0; k < 6; k++) a = synth_realloc(s, th, a, size <<= 1);
    synth_free(s, th, a);
  }
}

static void synth_aligned(synth_t *s, uint64_t n, uint32_t nth) {
  static const unsigned ops[] = {LW_OP_MEMALIGN, LW_OP_POSIX_MEMALIGN, LW_OP_ALIGNED_ALLOC,
                                 LW_OP_VALLOC};
  uint64_t live[8] = {0};
  for (uint64_t i = 0; s->n < n && !s->oom; i++) {
    uint32_t th = (uint32_t)(i % nth);
    unsigned op = ops[synth_rand(s) % 4];
    uint64_t align = op == LW_OP_VALLOC ? 4096 : 16ull << (synth_rand(s) % 9);
    uint64_t size = op == LW_OP_ALIGNED_ALLOC ? align * (1 + synth_rand(s) % 4) : synth_size(s);
    if (live[i % 8]) synth_free(s, (uint32_t)((i - 8) % nth), live[i % 8]);
    live[i % 8] = synth_alloc(s, th, op, size, op == LW_OP_VALLOC ? 0 : align);
  }
}

rp_call_t *rp_synth(const char *kind, uint64_t nevents, uint32_t *nthreads_io, size_t *ncalls,
                    uint64_t *tids) {
  uint32_t nthreads = *nthreads_io;
  synth_t s = {.rng = 0x9e3779b97f4a7c15ull, .bump = 0x10000000, .seq = 1};
  if (nthreads == 0) nthreads = 1;
  if (!strcmp(kind, "handoff") && nthreads < 2) nthreads = 2;
  *nthreads_io = nthreads;
  if (!strcmp(kind, "churn")) synth_churn(&s, nevents, nthreads);
  else if (!strcmp(kind, "handoff")) synth_handoff(&s, nevents, nthreads);
  else if (!strcmp(kind, "realloc")) synth_realloc_chains(&s, nevents, nthreads);
  else if (!strcmp(kind, "aligned")) synth_aligned(&s, nevents, nthreads);
  else {
    *ncalls = 0;
    return NULL;
  }
  for (uint32_t k = 0; tids && k < nthreads; k++) tids[k] = 1000 + k;
  free(s.free_addrs);
  if (s.oom) {
    free(s.calls);
    *ncalls = 0;
    return NULL;
  }
  *ncalls = s.n;
  return s.calls;
}
