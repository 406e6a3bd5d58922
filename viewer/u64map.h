/* u64map: open-addressing hash map from a non-zero uint64_t key to a
 * uint64_t value (linear probing, backward-shift deletion, power-of-two
 * capacity, at most half full). Key 0 marks an empty slot. Header-only;
 * used by the importer for addresses, thread ids, stack ids and ips. */
#ifndef LWV_U64MAP_H
#define LWV_U64MAP_H

#include <stdint.h>
#include <stdlib.h>

typedef struct u64map_s {
  uint64_t *keys, *vals;
  size_t cap, len; /* cap: power of two; len: keys present */
} u64map_t;

static inline size_t u64map_hash(uint64_t k, size_t cap) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

static inline void u64map_free(u64map_t *m) {
  free(m->keys);
  free(m->vals);
  m->keys = m->vals = NULL;
  m->cap = m->len = 0;
}

/* Returns a pointer to the value of key, or NULL. */
static inline uint64_t *u64map_get(const u64map_t *m, uint64_t key) {
  if (m->cap == 0) return NULL;
  for (size_t i = u64map_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key) return &m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static inline int u64map_grow(u64map_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 1024;
  uint64_t *nk = calloc(ncap, sizeof *nk), *nv = malloc(ncap * sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return -1;
  }
  for (size_t j = 0; j < m->cap; j++) {
    if (m->keys[j] == 0) continue;
    size_t i = u64map_hash(m->keys[j], ncap);
    while (nk[i] != 0) i = (i + 1) & (ncap - 1);
    nk[i] = m->keys[j];
    nv[i] = m->vals[j];
  }
  free(m->keys);
  free(m->vals);
  m->keys = nk;
  m->vals = nv;
  m->cap = ncap;
  return 0;
}

/* Inserts key (value 0) if absent; returns its value slot, NULL on ENOMEM.
 * *added tells whether it was new. */
static inline uint64_t *u64map_put(u64map_t *m, uint64_t key, int *added) {
  if ((m->len + 1) * 2 > m->cap && u64map_grow(m) != 0) return NULL;
  size_t i = u64map_hash(key, m->cap);
  while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  *added = m->keys[i] == 0;
  if (*added) {
    m->keys[i] = key;
    m->vals[i] = 0;
    m->len++;
  }
  return &m->vals[i];
}

/* Removes key if present; returns 1 if it was. Backward-shift keeps every
 * remaining key reachable from its home slot without tombstones. */
static inline int u64map_del(u64map_t *m, uint64_t key) {
  if (m->cap == 0) return 0;
  size_t mask = m->cap - 1, i = u64map_hash(key, m->cap);
  while (m->keys[i] != key) {
    if (m->keys[i] == 0) return 0;
    i = (i + 1) & mask;
  }
  for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    if (m->keys[j] == 0) break;
    size_t home = u64map_hash(m->keys[j], m->cap);
    /* move j into the hole i unless its home lies cyclically in (i, j] */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->len--;
  return 1;
}

#endif /* LWV_U64MAP_H */
