/* --check: the set of live blocks as address intervals, to catch an
 * allocator that returns memory overlapping a block still in use.
 *
 * A treap keyed by start address. Its nodes are preallocated, one per
 * block id (a block is in the set at most once, for its lifetime), so
 * checking allocates nothing during the replay. Invariant: intervals in
 * the set are pairwise disjoint, because insert refuses an overlap.
 * One mutex: --check is for correctness runs, not for timing. Frees are
 * removed *before* the allocator sees them and allocations inserted
 * *after*, so a legal reuse by another thread never looks like overlap. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "replay.h"

typedef struct ivnode_s {
  uintptr_t start;
  uint64_t len;
  uint32_t left, right;
  uint32_t prio;
} ivnode_t;

struct rp_ivset_s {
  pthread_mutex_t lock;
  uint32_t root;
  uint64_t nblocks;
  ivnode_t *node; /* [nblocks] */
};

rp_ivset_t *rp_ivset_new(uint64_t nblocks) {
  rp_ivset_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  size_t bytes = (nblocks ? nblocks : 1) * sizeof(ivnode_t);
  s->node = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (s->node == MAP_FAILED) {
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  s->root = RP_NONE;
  s->nblocks = nblocks;
  return s;
}

void rp_ivset_free(rp_ivset_t *s) {
  if (!s) return;
  munmap(s->node, (s->nblocks ? s->nblocks : 1) * sizeof(ivnode_t));
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* Splits tree t into keys < key (*l) and keys >= key (*r). */
static void iv_split(ivnode_t *n, uint32_t t, uintptr_t key, uint32_t *l, uint32_t *r) {
  if (t == RP_NONE) {
    *l = *r = RP_NONE;
  } else if (n[t].start < key) {
    iv_split(n, n[t].right, key, &n[t].right, r);
    *l = t;
  } else {
    iv_split(n, n[t].left, key, l, &n[t].left);
    *r = t;
  }
}

/* Merges a and b where every key of a < every key of b. */
static uint32_t iv_merge(ivnode_t *n, uint32_t a, uint32_t b) {
  if (a == RP_NONE) return b;
  if (b == RP_NONE) return a;
  if (n[a].prio > n[b].prio) {
    n[a].right = iv_merge(n, n[a].right, b);
    return a;
  }
  n[b].left = iv_merge(n, a, n[b].left);
  return b;
}

/* A live block whose interval intersects [p, end), or RP_NONE. */
static uint32_t iv_overlap(const ivnode_t *n, uint32_t t, uintptr_t p, uintptr_t end) {
  uint32_t pred = RP_NONE, succ = RP_NONE; /* last start <= p, first start > p */
  while (t != RP_NONE) {
    if (n[t].start <= p) pred = t, t = n[t].right;
    else succ = t, t = n[t].left;
  }
  if (pred != RP_NONE && n[pred].start + n[pred].len > p) return pred;
  if (succ != RP_NONE && n[succ].start < end) return succ;
  return RP_NONE;
}

uint32_t rp_ivset_insert(rp_ivset_t *s, uint32_t b, uintptr_t p, uint64_t len) {
  if (len == 0) len = 1; /* malloc(0) still owns its address */
  pthread_mutex_lock(&s->lock);
  uint32_t hit = iv_overlap(s->node, s->root, p, p + len);
  if (hit == RP_NONE) {
    ivnode_t *x = &s->node[b];
    uint32_t h = b * 0x9e3779b1u;
    *x = (ivnode_t){p, len, RP_NONE, RP_NONE, h ^ (h >> 15)};
    uint32_t l, r;
    iv_split(s->node, s->root, p, &l, &r);
    s->root = iv_merge(s->node, iv_merge(s->node, l, b), r);
  }
  pthread_mutex_unlock(&s->lock);
  return hit;
}

static uint32_t iv_remove(ivnode_t *n, uint32_t t, uint32_t b) {
  if (t == RP_NONE) return RP_NONE;
  if (t == b) return iv_merge(n, n[t].left, n[t].right);
  if (n[b].start < n[t].start) n[t].left = iv_remove(n, n[t].left, b);
  else n[t].right = iv_remove(n, n[t].right, b);
  return t;
}

void rp_ivset_remove(rp_ivset_t *s, uint32_t b) {
  pthread_mutex_lock(&s->lock);
  s->root = iv_remove(s->node, s->root, b);
  pthread_mutex_unlock(&s->lock);
}
