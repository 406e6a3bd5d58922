/* A long random sequence of malloc-family calls on one thread (fixed
 * seed), with every live block's contents tracked: each realloc must keep
 * the old prefix, each free finds its block intact, and (under lwmalloc)
 * lw_check() walks every internal invariant every few thousand calls.
 * Sizes are drawn so that blocks move between the small, medium and large
 * paths, and the live set grows and shrinks in waves. */
#include "api.h"

#define SLOTS 4096
#define OPS 200000

struct slot {
  unsigned char *p;
  size_t size;
  uintptr_t id;
};
static struct slot slots[SLOTS];

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static size_t random_size(void) {
  uint64_t r = rnd();
  switch (r % 16) {
  case 0: return 0;
  case 1: case 2: case 3: case 4: case 5: case 6: return (size_t)(r >> 8) % 128;
  case 7: case 8: case 9: case 10: return (size_t)(r >> 8) % 2048;
  case 11: case 12: case 13: return (size_t)(r >> 8) % 65536;
  case 14: return (size_t)(r >> 8) % 300000;
  default: return (size_t)(r >> 8) % (3u << 20);
  }
}

/* Verifying and writing only a bounded prefix keeps big blocks cheap. */
static size_t checked_len(size_t n) { return n < 4096 ? n : 4096; }

static int verify_slot(const struct slot *s) {
  size_t n = checked_len(s->size);
  return lwtest_verify(s->p, n, s->id) == n;
}

TEST(random_operations_keep_contents) {
  int (*check)(void) = lwtest_want_lwmalloc() ? (int (*)(void))dlsym(RTLD_DEFAULT, "lw_check") : NULL;
  uintptr_t next_id = 1;
  unsigned bad = 0, check_failures = 0;
  for (unsigned op = 0; op < OPS; op++) {
    struct slot *s = &slots[rnd() % SLOTS];
    /* Waves: for a while most calls free, then most allocate. */
    int freeing_wave = (op / 40000) % 2 == 1;
    uint64_t r = rnd() % 10;
    if (s->p && (freeing_wave ? r < 7 : r < 3)) {
      if (!verify_slot(s)) bad++;
      free(s->p);
      s->p = NULL;
    } else if (s->p && r < 8) {
      size_t n = random_size();
      unsigned char *q = realloc(s->p, n);
      if (!q && n) { bad++; continue; }
      size_t kept = checked_len(s->size < n ? s->size : n);
      if (n && lwtest_verify(q, kept, s->id) != kept) bad++;
      s->p = q; /* realloc(p, 0) may free and return NULL */
      s->size = n;
      if (q) lwtest_fill(q, checked_len(n), s->id);
    } else if (!s->p) {
      size_t n = random_size();
      unsigned kind = (unsigned)(rnd() % 8);
      if (kind == 0) {
        s->p = calloc(1, n);
        if (s->p && !lwtest_all_zero(s->p, checked_len(n))) bad++;
      } else if (kind == 1) {
        size_t a = (size_t)8 << (rnd() % 10);
        if (posix_memalign((void **)&s->p, a, n) != 0) s->p = NULL;
        if (s->p && !lwtest_aligned(s->p, a)) bad++;
      } else {
        s->p = malloc(n);
      }
      if (!s->p) { bad++; continue; }
      if (malloc_usable_size(s->p) < n) bad++;
      s->size = n;
      s->id = next_id++;
      lwtest_fill(s->p, checked_len(n), s->id);
    }
    if (check && op % 5000 == 0 && check() != 0) check_failures++;
  }
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].p && !verify_slot(&slots[i])) bad++;
    free(slots[i].p);
  }
  if (check && check() != 0) check_failures++;
  if (bad || check_failures) fprintf(stderr, "%u bad blocks, %u failed lw_check runs\n", bad, check_failures);
  EXPECT(bad == 0);
  EXPECT(check_failures == 0);
  if (lwtest_want_lwmalloc()) EXPECT(check != NULL);
}

TEST_MAIN()
