/* Traced address -> current block id, used only while a plan is built
 * (load time); the replay itself never hashes.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), so a trace with millions of malloc/free pairs keeps the
 * table short. Key 0 marks an empty slot: the trace never returns NULL as
 * a block. Load factor stays <= 1/2. */
#include <stdlib.h>

#include "replay.h"

struct rp_addrmap_s {
  uint64_t *keys;
  uint32_t *vals;
  size_t mask; /* capacity - 1, capacity a power of two */
  size_t used;
};

static size_t addrmap_slot(const rp_addrmap_t *m, uint64_t addr) {
  uint64_t h = addr * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
  return (size_t)(h >> 20) & m->mask;
}

static int addrmap_alloc(rp_addrmap_t *m, size_t cap) {
  m->keys = calloc(cap, sizeof *m->keys);
  m->vals = malloc(cap * sizeof *m->vals);
  if (!m->keys || !m->vals) {
    free(m->keys);
    free(m->vals);
    return -1;
  }
  m->mask = cap - 1;
  m->used = 0;
  return 0;
}

rp_addrmap_t *rp_addrmap_new(size_t expect) {
  rp_addrmap_t *m = calloc(1, sizeof *m);
  size_t cap = 64;
  while (cap < expect * 2) cap *= 2;
  if (!m || addrmap_alloc(m, cap) != 0) {
    free(m);
    return NULL;
  }
  return m;
}

void rp_addrmap_free(rp_addrmap_t *m) {
  if (!m) return;
  free(m->keys);
  free(m->vals);
  free(m);
}

uint32_t rp_addrmap_get(const rp_addrmap_t *m, uint64_t addr) {
  for (size_t i = addrmap_slot(m, addr);; i = (i + 1) & m->mask) {
    if (m->keys[i] == addr) return m->vals[i];
    if (m->keys[i] == 0) return RP_NONE;
  }
}

static void addrmap_grow(rp_addrmap_t *m) {
  rp_addrmap_t old = *m;
  if (addrmap_alloc(m, (old.mask + 1) * 2) != 0) {
    *m = old; /* keep going, fuller: probing still terminates below 100% */
    return;
  }
  for (size_t i = 0; i <= old.mask; i++)
    if (old.keys[i]) rp_addrmap_put(m, old.keys[i], old.vals[i]);
  free(old.keys);
  free(old.vals);
}

uint32_t rp_addrmap_put(rp_addrmap_t *m, uint64_t addr, uint32_t block) {
  if ((m->used + 1) * 2 > m->mask + 1) addrmap_grow(m);
  size_t i = addrmap_slot(m, addr);
  for (; m->keys[i]; i = (i + 1) & m->mask) {
    if (m->keys[i] == addr) {
      uint32_t prev = m->vals[i];
      m->vals[i] = block;
      return prev;
    }
  }
  m->keys[i] = addr;
  m->vals[i] = block;
  m->used++;
  return RP_NONE;
}

uint32_t rp_addrmap_del(rp_addrmap_t *m, uint64_t addr) {
  size_t i = addrmap_slot(m, addr);
  while (m->keys[i] != addr) {
    if (m->keys[i] == 0) return RP_NONE;
    i = (i + 1) & m->mask;
  }
  uint32_t val = m->vals[i];
  /* Backward shift: pull later entries of the probe run into the hole
   * when their home slot is not cyclically in (hole, j]. */
  size_t hole = i;
  for (size_t j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
    size_t home = addrmap_slot(m, m->keys[j]);
    int between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (between) continue;
    m->keys[hole] = m->keys[j];
    m->vals[hole] = m->vals[j];
    hole = j;
  }
  m->keys[hole] = 0;
  m->used--;
  return val;
}
