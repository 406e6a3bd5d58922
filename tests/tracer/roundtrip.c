/* Encoder/decoder round trip without the allocator: two threads drive the
 * _lw_trace_* hooks directly with pseudo-random ops, sizes, alignments,
 * pointers (0, small, huge, repeated: cache hits and misses) and events,
 * and every field read back must equal what was passed, in each thread's
 * order. Sequence numbers (the writer's merge of the lanes' order keys)
 * must be unique and dense (a realloc's free_seq counts too), rise in each
 * thread's order, and free_seq is seq for a free, below it for realloc.
 * Some frees have an event inside their enter/call window (as the
 * allocator's inside free): put before the free, numbered after it (the
 * writer's path for a lane whose keys are out of order). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LW_TRACE 1
#include "../testhelper.h"
#include "events.h"
#include "lw_trace.h"
#include "trace_read.h"

#define PER_THREAD 50000

typedef struct call_s {
  unsigned kind; /* LWT_CALL or LWT_EVENT */
  unsigned op;
  uint64_t size, align, in, out, token;
  int in_window; /* an event made between _lw_trace_enter and its call (as the
                    allocator does inside free): put before the free, ordered after it */
} call_t;

typedef struct th_s {
  uint64_t seed;
  pid_t tid;
  call_t calls[PER_THREAD];
  size_t n, next; /* made / checked */
} th_t;

static th_t th[2];

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint64_t pick_ptr(th_t *t, uint64_t *s) {
  switch (rnd(s) % 6) {
  case 0: return 0;
  case 1: return UINT64_MAX - rnd(s) % 4096;
  case 2: /* one of the recent pointers: a cache hit */
    if (t->n) return t->calls[t->n - 1 - rnd(s) % (t->n < 20 ? t->n : 20)].out;
    return 16;
  default: return 0x7f0000000000ull + (rnd(s) % 100000) * 16;
  }
}

static void *run(void *arg) {
  th_t *t = arg;
  t->tid = (pid_t)syscall(SYS_gettid);
  uint64_t s = t->seed;
  for (t->n = 0; t->n < PER_THREAD; t->n++) {
    call_t *c = &t->calls[t->n];
    memset(c, 0, sizeof *c);
    if (rnd(&s) % 10 == 0) {
      c->kind = LWT_EVENT;
      c->op = 1 + (unsigned)(rnd(&s) % (LW_EV_LIMIT - 1));
      c->size = rnd(&s);
      c->align = rnd(&s) % 1000;
      c->in = rnd(&s) >> (rnd(&s) % 64);
      _lw_trace_event(c->op, c->size, c->align, c->in);
      continue;
    }
    c->kind = LWT_CALL;
    c->op = 1 + (unsigned)(rnd(&s) % (LW_OP_LIMIT - 1));
    if (lwt_op_has_size(c->op)) c->size = rnd(&s) % 3 ? rnd(&s) % 5000 : rnd(&s);
    if (lwt_op_has_align(c->op)) c->align = (uint64_t)1 << (rnd(&s) % 20);
    if (lwt_op_has_in(c->op)) c->in = pick_ptr(t, &s);
    if (lwt_op_has_out(c->op)) c->out = pick_ptr(t, &s);
    if (lwt_op_frees(c->op)) c->token = _lw_trace_enter();
    if (lwt_op_frees(c->op) && t->n + 1 < PER_THREAD && rnd(&s) % 8 == 0) {
      call_t call = *c; /* the event goes first in the lane */
      memset(c, 0, sizeof *c);
      c->kind = LWT_EVENT;
      c->op = LW_EV_POOL_RELEASE;
      c->size = rnd(&s) % 64;
      c->in_window = 1;
      _lw_trace_event(c->op, c->size, 0, 0);
      c = &t->calls[++t->n];
      *c = call;
    }
    _lw_trace_call(c->op, c->size, c->align, (const void *)(uintptr_t)c->in,
                   (const void *)(uintptr_t)c->out, c->token);
  }
  return NULL;
}

static char path[256];

/* Records dropped by full rings (LOST records) in the trace at path, and
 * its lowest seq less one (the numbers go on across a process's sessions). */
static uint64_t trace_lost(uint64_t *base) {
  char err[1024];
  lwt_reader_t *r = lwt_open(path, err, sizeof err);
  if (!r) return 0;
  lwt_record_t rec;
  uint64_t lost = 0, low = UINT64_MAX;
  while (lwt_next(r, &rec) == 1) {
    if (rec.kind == LWT_LOST) lost += rec.lost.count;
    if (rec.kind == LWT_POOL_SNAPSHOT || rec.kind == LWT_END) continue;
    uint64_t first = rec.kind == LWT_CALL && rec.call.free_seq ? rec.call.free_seq : rec.seq;
    if (first && first < low) low = first;
  }
  lwt_close(r);
  *base = low == UINT64_MAX ? 0 : low - 1;
  return lost;
}

TEST(every_field_round_trips) {
  /* A ring that fills while the writer thread gets no CPU drops records
   * (hooks never wait; the trace says so in LOST records): then the
   * record-by-record comparison below cannot line up, so record again. */
  uint64_t base = 0;
  for (int attempt = 1;; attempt++) {
    ASSERT(lw_trace_start(path) == 0);
    th[0].seed = 0x1234567;
    th[1].seed = 0x89abcdef;
    pthread_t p[2];
    for (int i = 0; i < 2; i++) pthread_create(&p[i], NULL, run, &th[i]);
    for (int i = 0; i < 2; i++) pthread_join(p[i], NULL);
    ASSERT(lw_trace_stop() == 0);
    uint64_t lost = trace_lost(&base);
    if (!lost) break;
    fprintf(stderr, "  attempt %d: full rings dropped %llu records (writer starved): recording again\n",
            attempt, (unsigned long long)lost);
    ASSERT(attempt < 8);
    unlink(path);
  }

  char err[1024];
  lwt_reader_t *r = lwt_open(path, err, sizeof err);
  ASSERT(r != NULL);
  lwt_record_t rec;
  int rc;
  size_t mismatches = 0, seen = 0, points = 0;
  uint64_t max_seq = 0, last[2] = {0, 0}, win[2] = {0, 0};
  static unsigned char used[4 * PER_THREAD + 64];
  while ((rc = lwt_next(r, &rec)) == 1) {
    uint64_t pt[2] = {rec.seq, 0};
    if (rec.kind == LWT_CALL && lwt_op_has_free_seq(rec.call.op)) pt[1] = rec.call.free_seq;
    for (int i = 0; i < 2; i++) {
      if (!pt[i] || rec.kind == LWT_POOL_SNAPSHOT || rec.kind == LWT_END) continue;
      pt[i] -= base;
      points++;
      if (pt[i] < sizeof used) {
        if (used[pt[i]]) mismatches++;
        used[pt[i]] = 1;
      }
      if (pt[i] > max_seq) max_seq = pt[i];
    }
    if (rec.kind == LWT_LOST) /* a full ring drops events (they never wait): say so */
      fprintf(stderr, "  tid %u: %llu records lost\n", rec.tid, (unsigned long long)rec.lost.count);
    if (rec.kind != LWT_CALL && rec.kind != LWT_EVENT) continue;
    th_t *t = rec.tid == (uint32_t)th[0].tid ? &th[0] : rec.tid == (uint32_t)th[1].tid ? &th[1] : NULL;
    if (!t) continue;
    if (t->next >= t->n) {
      mismatches++;
      continue;
    }
    const call_t *c = &t->calls[t->next++];
    seen++;
    uint64_t first = rec.kind == LWT_CALL && lwt_op_frees(rec.call.op) ? rec.call.free_seq : rec.seq;
    if (c->in_window) { /* its free (next) took its place before it */
      win[t - th] = rec.seq;
    } else {
      if ((first <= last[t - th] || (win[t - th] && first >= win[t - th])) && mismatches++ < 5)
        fprintf(stderr, "  tid %u record %zu: seq %llu not above the thread's last %llu (window %llu)\n",
                rec.tid, t->next - 1, (unsigned long long)first, (unsigned long long)last[t - th],
                (unsigned long long)win[t - th]);
      last[t - th] = rec.seq > win[t - th] ? rec.seq : win[t - th];
      win[t - th] = 0;
    }
    int ok = rec.kind == c->kind;
    if (ok && rec.kind == LWT_EVENT)
      ok = rec.event.kind == c->op && rec.event.a == c->size && rec.event.b == c->align &&
           rec.event.c == c->in;
    else if (ok)
      ok = rec.call.op == c->op && rec.call.size == c->size && rec.call.align == c->align &&
           rec.call.in_ptr == c->in && rec.call.out_ptr == c->out &&
           (!lwt_op_frees(c->op) || lwt_op_has_free_seq(c->op) || rec.call.free_seq == rec.seq) &&
           (!lwt_op_has_free_seq(c->op) || (rec.call.free_seq && rec.call.free_seq < rec.seq)) &&
           (lwt_op_frees(c->op) || rec.call.free_seq == 0);
    if (!ok && mismatches++ < 5)
      fprintf(stderr, "  tid %u record %zu differs (kind %u op %u)\n", rec.tid, t->next - 1,
              rec.kind, c->op);
  }
  EXPECT(rc == 0);
  lwt_close(r);
  EXPECT_EQ_U(mismatches, 0);
  EXPECT_EQ_U(seen, 2 * PER_THREAD);
  EXPECT_EQ_U(th[0].next, PER_THREAD);
  EXPECT_EQ_U(th[1].next, PER_THREAD);
  EXPECT(max_seq < sizeof used);
  EXPECT_EQ_U(max_seq, points); /* dense: 1..max, each once */
}

/* Stop and start again while two threads record at full speed: every
 * trace must read to its end, each thread's calls in order and intact
 * (the stop/busy invariant: no lane is written after its last drain, and
 * no late record leaks into the next file). */
static _Atomic int hammer_stop;

static void *hammer(void *arg) {
  uint64_t base = (uint64_t)(uintptr_t)arg;
  for (uint64_t i = 1; !atomic_load_explicit(&hammer_stop, memory_order_relaxed); i++)
    _lw_trace_call(LW_OP_MALLOC, base + i, 0, NULL, (const void *)(uintptr_t)(0x10000 + i % 64 * 16),
                   0);
  return NULL;
}

TEST(stop_while_recording) {
  pthread_t p[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&p[i], NULL, hammer, (void *)(uintptr_t)((uint64_t)(i + 1) << 40));
  uint64_t total = 0;
  for (int round = 0; round < 8; round++) {
    unlink(path);
    ASSERT(lw_trace_start(path) == 0);
    usleep(20000);
    ASSERT(lw_trace_stop() == 0);
    char err[1024];
    lwt_reader_t *r = lwt_open(path, err, sizeof err);
    ASSERT(r != NULL);
    lwt_record_t rec;
    int rc;
    uint64_t last[3] = {0, 0, 0}, calls = 0, bad = 0;
    while ((rc = lwt_next(r, &rec)) == 1) {
      if (rec.kind != LWT_CALL) continue;
      unsigned who = (unsigned)(rec.call.size >> 40);
      if (rec.call.op != LW_OP_MALLOC || who < 1 || who > 2 || rec.call.size <= last[who] ||
          rec.call.out_ptr != 0x10000 + (rec.call.size & ((1ull << 40) - 1)) % 64 * 16) {
        bad++;
        continue;
      }
      last[who] = rec.call.size;
      calls++;
    }
    EXPECT(rc == 0);
    lwt_close(r);
    EXPECT_EQ_U(bad, 0);
    total += calls;
  }
  EXPECT(total > 0); /* a single 20 ms session may get no CPU on a loaded machine */
  atomic_store(&hammer_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(p[i], NULL);
}

int main(int argc, char **argv) {
  snprintf(path, sizeof path, "/tmp/lwtrace-roundtrip-%d.lwt.zst", (int)getpid());
  int rc = lw_test_main(argc, argv);
  unlink(path);
  return rc;
}
