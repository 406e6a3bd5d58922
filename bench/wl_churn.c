/* IoT message churn: many 16-256 B objects with short lives over a slowly
 * changing live set.
 *
 * A device keeps a table of long-lived "session" records (16-256 B) of
 * which one in 64 steps is replaced, and at every step receives a message
 * (16-256 B, biased towards small sizes like real telemetry), keeps it in a
 * short window of in-flight messages and frees the oldest one. Every object
 * is filled with a byte derived from its id; the bytes are checked when it
 * is freed, so two live objects sharing memory change the checksum.
 *
 * With --latency every malloc and free is timed (see wl_latency.h) and the
 * percentiles go to the LWB line; the timing changes the work's speed, so
 * run.sh uses that mode only for the latency table.
 */
#include "wl_common.h"
#include "wl_latency.h"

#define SESSIONS 8192
#define WINDOW 48
#define STEPS 9000000ull

typedef struct obj_s {
  unsigned char *p;
  uint32_t size;
  uint32_t id;
} obj_t;

static lat_hist_t malloc_hist, free_hist;
static int timing;

/* Message sizes: 16-256, half of them 16-64. */
static uint32_t message_size(wl_rng_t *r) {
  uint64_t x = wl_rand(r);
  return (x & 1) ? (uint32_t)(16 + (x >> 8) % 49) : (uint32_t)(16 + (x >> 8) % 241);
}

static unsigned char *obj_alloc(obj_t *o, uint32_t size, uint32_t id) {
  unsigned char *p;
  if (timing) {
    uint64_t t0 = lat_ticks();
    p = malloc(size);
    lat_record(&malloc_hist, lat_ticks() - t0);
  } else {
    p = malloc(size);
  }
  if (!p) wl_xmalloc_fail("malloc", size);
  memset(p, (int)(id * 131u + 7u) & 0xff, size);
  o->p = p;
  o->size = size;
  o->id = id;
  wl_live_add(0, size);
  return p;
}

/* Checks the fill pattern at three places and frees; returns a hash. */
static uint64_t obj_free(obj_t *o) {
  unsigned char want = (unsigned char)((o->id * 131u + 7u) & 0xff);
  unsigned char *p = o->p;
  uint64_t h = wl_mix(o->id, o->size);
  h = wl_mix(h, (uint64_t)(p[0] == want) + 2u * (p[o->size / 2] == want) + 4u * (p[o->size - 1] == want));
  if (timing) {
    uint64_t t0 = lat_ticks();
    free(p);
    lat_record(&free_hist, lat_ticks() - t0);
  } else {
    free(p);
  }
  wl_live_add(0, -(int64_t)o->size);
  o->p = NULL;
  return h;
}

int main(int argc, char **argv) {
  timing = wl_has_flag(argc, argv, "--latency");
  double ns_per_tick = timing ? lat_ns_per_tick() : 1.0;
  wl_args_t a = wl_start(argc, argv, "SEED [SCALE] [--latency]");
  static obj_t sessions[SESSIONS], window[WINDOW];
  wl_rng_t r;
  wl_rng_seed(&r, a.seed, 1);
  uint32_t next_id = 1;
  uint64_t sum = 0;

  for (int i = 0; i < SESSIONS; i++) obj_alloc(&sessions[i], message_size(&r), next_id++);

  uint64_t steps = wl_scaled(&a, STEPS);
  for (uint64_t s = 0; s < steps; s++) {
    obj_t *w = &window[s % WINDOW];
    if (w->p) sum += obj_free(w);
    obj_alloc(w, message_size(&r), next_id++);
    if ((wl_rand(&r) & 63) == 0) {
      obj_t *o = &sessions[wl_rand(&r) % SESSIONS];
      sum += obj_free(o);
      obj_alloc(o, message_size(&r), next_id++);
    }
  }
  for (int i = 0; i < WINDOW; i++)
    if (window[i].p) sum += obj_free(&window[i]);
  for (int i = 0; i < SESSIONS; i++) sum += obj_free(&sessions[i]);

  char extra[512] = "";
  if (timing) {
    lat_format(&malloc_hist, "malloc", ns_per_tick, extra, sizeof extra);
    lat_format(&free_hist, "free", ns_per_tick, extra, sizeof extra);
  }
  wl_finish(&a, "churn", sum, extra);
  return 0;
}
