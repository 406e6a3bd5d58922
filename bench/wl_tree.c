/* JSON-like tree build/free: documents made of objects, arrays, strings
 * and numbers, built node by node as a parser would, walked, then freed.
 *
 * Each document holds about NODES nodes: objects and arrays (child arrays
 * grow with realloc, doubling from 4), keys of 3-24 bytes, strings of
 * 1-120 bytes and numbers. Two documents are alive at once: document k is
 * freed after document k+1 has been built, as in a service that parses the
 * next message before releasing the previous one. The walk hashes every
 * key and string, so a corrupted or shared block changes the checksum.
 */
#include "wl_common.h"

#define NODES 60000
#define DOCS 24
#define MAX_DEPTH 8

enum { T_OBJECT, T_ARRAY, T_STRING, T_NUMBER, T_BOOL };

typedef struct node_s node_t;
struct node_s {
  int type;
  char *key; /* NULL inside arrays */
  union {
    double num;
    char *str;
    struct {
      node_t **items;
      uint32_t n, cap;
    } kids;
  } u;
};

static wl_rng_t rng;
static long budget;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) wl_xmalloc_fail("malloc", n);
  wl_live_add(0, (int64_t)n);
  return p;
}

static void xfree(void *p, size_t n) {
  free(p);
  wl_live_add(0, -(int64_t)n);
}

static char *random_text(size_t lo, size_t hi) {
  size_t n = (size_t)wl_range(&rng, lo, hi);
  char *s = xmalloc(n + 1);
  uint64_t x = wl_rand(&rng);
  for (size_t i = 0; i < n; i++) s[i] = (char)('a' + (x >> (i % 58)) % 26);
  s[n] = 0;
  return s;
}

static void add_kid(node_t *parent, node_t *kid) {
  if (parent->u.kids.n == parent->u.kids.cap) {
    uint32_t cap = parent->u.kids.cap ? parent->u.kids.cap * 2 : 4;
    node_t **items = realloc(parent->u.kids.items, cap * sizeof(node_t *));
    if (!items) wl_xmalloc_fail("realloc", cap * sizeof(node_t *));
    wl_live_add(0, (int64_t)((cap - parent->u.kids.cap) * sizeof(node_t *)));
    parent->u.kids.items = items;
    parent->u.kids.cap = cap;
  }
  parent->u.kids.items[parent->u.kids.n++] = kid;
}

static node_t *build(int depth, int keyed) {
  node_t *n = xmalloc(sizeof *n);
  budget--;
  n->key = keyed ? random_text(3, 24) : NULL;
  uint64_t x = wl_rand(&rng) % 10;
  if (depth < MAX_DEPTH && budget > 0 && x < 3) {
    n->type = (x == 0) ? T_ARRAY : T_OBJECT;
    n->u.kids.items = NULL;
    n->u.kids.n = n->u.kids.cap = 0;
    uint64_t kids = wl_range(&rng, 0, 14);
    for (uint64_t i = 0; i < kids && budget > 0; i++) add_kid(n, build(depth + 1, n->type == T_OBJECT));
  } else if (x < 7) {
    n->type = T_STRING;
    n->u.str = random_text(1, 120);
  } else if (x < 9) {
    n->type = T_NUMBER;
    n->u.num = (double)(wl_rand(&rng) % 1000000) / 100.0;
  } else {
    n->type = T_BOOL;
    n->u.num = (double)(wl_rand(&rng) & 1);
  }
  return n;
}

static uint64_t walk(const node_t *n, uint64_t h) {
  h = wl_mix(h, (uint64_t)n->type);
  if (n->key) h = wl_hash_bytes(n->key, strlen(n->key), h);
  switch (n->type) {
  case T_OBJECT:
  case T_ARRAY:
    for (uint32_t i = 0; i < n->u.kids.n; i++) h = walk(n->u.kids.items[i], h);
    break;
  case T_STRING: h = wl_hash_bytes(n->u.str, strlen(n->u.str), h); break;
  default: h = wl_mix(h, (uint64_t)(n->u.num * 100.0)); break;
  }
  return h;
}

static void destroy(node_t *n) {
  if (n->key) xfree(n->key, strlen(n->key) + 1);
  if (n->type == T_OBJECT || n->type == T_ARRAY) {
    for (uint32_t i = 0; i < n->u.kids.n; i++) destroy(n->u.kids.items[i]);
    if (n->u.kids.items) xfree(n->u.kids.items, n->u.kids.cap * sizeof(node_t *));
  } else if (n->type == T_STRING) {
    xfree(n->u.str, strlen(n->u.str) + 1);
  }
  xfree(n, sizeof *n);
}

/* A document: a root object whose members are built until the budget ends. */
static node_t *build_document(void) {
  budget = NODES;
  node_t *root = xmalloc(sizeof *root);
  root->type = T_OBJECT;
  root->key = NULL;
  root->u.kids.items = NULL;
  root->u.kids.n = root->u.kids.cap = 0;
  while (budget > 0) add_kid(root, build(1, 1));
  return root;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE]");
  wl_rng_seed(&rng, a.seed, 7);
  uint64_t sum = 0, docs = wl_scaled(&a, DOCS);
  node_t *prev = NULL;
  for (uint64_t d = 0; d < docs; d++) {
    node_t *doc = build_document();
    sum += walk(doc, d);
    if (prev) destroy(prev);
    prev = doc;
  }
  if (prev) destroy(prev);
  wl_finish(&a, "tree", sum, "");
  return 0;
}
