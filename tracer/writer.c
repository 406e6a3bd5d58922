/* The writer thread: the only place that compresses and writes.
 *
 * Every WR_TICK it drains each lane into a CHUNK record (after emitting
 * the stacks those lanes may reference), every 100 ms it appends a
 * POOL_SNAPSHOT from lw_stats(), and every WR_FRAME it checks thread
 * names and loaded objects and ends the zstd frame, then writes the whole
 * frame with write(2). Only complete frames reach the file, so a killed
 * program leaves a trace that ends cleanly at its last frame.
 *
 * This thread's allocations (zstd, buffers) are not recorded: it runs
 * with its thread state marked internal, and it blocks every signal.
 * On a write error (disk full...) it prints one line on stderr, turns
 * recording off and stops writing; the program carries on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "lwmalloc.h"
#include "recorder.h"
#include "varint.h"

#define WR_TICK_NS 10000000ull    /* lane drain period */
#define WR_SNAP_NS 100000000ull   /* pool snapshot period */
#define WR_FRAME_NS 900000000ull  /* zstd frame period (spec: <= 1 s) */
#define WR_FRAME_MAX (32u << 20)  /* end a frame early past this many input bytes */
#define WR_LEVEL 3         /* starting zstd level; adapted per frame */
#define WR_LEVEL_MIN 1
#define WR_LEVEL_MAX 9
/* On one or two CPUs the writer's idle time is not a spare core: the
 * program (python3 under its GIL, one thread at a time) has one, the
 * writer and everything else share the other. python3 PYTHONMALLOC=malloc
 * (15 M events, 2 CPUs): level 5 took 1.6x the zstd samples of level 3
 * for a trace 2 % smaller (0.445 against 0.455 MB per M events). */
#define WR_LEVEL_MAX_FEW_CPUS 3

/* lw_stats comes from the allocator objects linked next to us; weak so
 * the recorder can also run (without snapshots) where it is absent. */
extern void lw_stats(lw_stats_t *out) __attribute__((weak));

typedef struct buf_s {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static struct {
  pthread_t thread;
  ZSTD_CCtx *cctx;
  buf_t raw;          /* uncompressed records not yet given to zstd */
  buf_t z;            /* compressed bytes of the frame in progress */
  buf_t lin;          /* a lane's bytes made linear */
  uint64_t prev_ips[LWT_MAX_DEPTH]; /* frames of the last STACK record */
  buf_t col[LWT_NCOLS]; /* its columns (trace_format.h) */
  size_t frame_in;    /* uncompressed bytes in the frame in progress */
  uint64_t total_in, total_out, frames; /* for LW_TRACE_VERBOSE */
  int level, level_fixed;     /* zstd level; fixed by LW_TRACE_ZSTD_LEVEL */
  int level_max;              /* the adaptive level's ceiling */
  uint64_t busy_ns;           /* writer time spent compressing this frame */
  int failed;         /* write error: nothing more is written */
  uint64_t good_size; /* file size after the last complete frame */
  int started_header;
  uint64_t heads[LWT_MAX_LANES];
  int states[LWT_MAX_LANES];
} wr;

/* ---- buffers --------------------------------------------------------- */

static int buf_reserve(buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t cap = b->cap ? b->cap : 1 << 16;
  while (cap - b->len < extra) cap *= 2;
  uint8_t *np = realloc(b->p, cap);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static void buf_put(buf_t *b, const void *src, size_t n) {
  if (n == 0 || buf_reserve(b, n) < 0) return;
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void buf_varint(buf_t *b, uint64_t v) {
  uint8_t tmp[LWT_VARINT_MAX];
  buf_put(b, tmp, (size_t)(lwt_put_varint(tmp, v) - tmp));
}

static void buf_string(buf_t *b, const char *s, size_t n) {
  if (n > LWT_MAX_STRING) n = LWT_MAX_STRING;
  buf_varint(b, n);
  buf_put(b, s, n);
}

/* A top-level record: tag, varint length, payload (built in a scratch buf). */
static void wr_record(unsigned tag, const buf_t *payload) {
  uint8_t t = (uint8_t)tag;
  buf_put(&wr.raw, &t, 1);
  buf_varint(&wr.raw, payload->len);
  buf_put(&wr.raw, payload->p, payload->len);
}

static uint64_t wr_seq; /* numbers given by the merge (below): the seq of the file */

static buf_t scratch;
static buf_t *wr_payload(void) {
  scratch.len = 0;
  return &scratch;
}

/* ---- output ---------------------------------------------------------- */

static void wr_fail(const char *what, int err) {
  /* cut a partly written frame off: the file stays a clean trace */
  if (_lwt_g.fd >= 0) (void)!ftruncate(_lwt_g.fd, (off_t)wr.good_size);
  char msg[4400];
  int n = snprintf(msg, sizeof msg, "lwtrace: %s %s: %s; recording stopped\n", what,
                   _lwt_g.path, strerror(err));
  if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  wr.failed = 1;
  atomic_store(&_lwt_g.enabled, 0);
}

static void wr_write_all(const uint8_t *p, size_t n) {
  while (n > 0 && !wr.failed) {
    ssize_t w = write(_lwt_g.fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      wr_fail("write", w < 0 ? errno : ENOSPC);
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Feeds wr.raw to zstd; with end, closes the frame and writes it out. */
/* Adaptive level: the writer has a core's spare time to itself (not on
 * one or two CPUs: wr.level_max, WR_LEVEL_MAX_FEW_CPUS); it
 * compresses harder while it is mostly idle (small traces) and backs off
 * when compressing takes over half of the frame's wall time. Applied at
 * a frame start (zstd takes new parameters for the next frame). */
static void wr_adapt_level(uint64_t frame_wall_ns) {
  if (wr.level_fixed || frame_wall_ns == 0) return;
  if (wr.busy_ns * 2 > frame_wall_ns && wr.level > WR_LEVEL_MIN) wr.level--;
  else if (wr.busy_ns * 5 < frame_wall_ns && wr.level < wr.level_max) wr.level++;
  ZSTD_CCtx_setParameter(wr.cctx, ZSTD_c_compressionLevel, wr.level);
  wr.busy_ns = 0;
}

static void wr_compress(int end) {
  if (wr.failed) {
    wr.raw.len = 0;
    return;
  }
  uint64_t t0 = _lwt_now();
  ZSTD_inBuffer in = {wr.raw.p, wr.raw.len, 0};
  ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
  wr.frame_in += wr.raw.len;
  wr.total_in += wr.raw.len;
  for (;;) {
    if (buf_reserve(&wr.z, ZSTD_CStreamOutSize()) < 0) {
      wr_fail("out of memory for", ENOMEM);
      return;
    }
    ZSTD_outBuffer out = {wr.z.p + wr.z.len, wr.z.cap - wr.z.len, 0};
    size_t left = ZSTD_compressStream2(wr.cctx, &out, &in, mode);
    wr.z.len += out.pos;
    if (ZSTD_isError(left)) {
      wr_fail("zstd error on", EIO);
      return;
    }
    if (end ? left == 0 : in.pos == in.size) break;
  }
  wr.raw.len = 0;
  wr.busy_ns += _lwt_now() - t0;
  if (end) {
    wr.total_out += wr.z.len;
    wr.frames++;
    wr_write_all(wr.z.p, wr.z.len);
    if (!wr.failed) wr.good_size += wr.z.len;
    wr.z.len = 0;
    wr.frame_in = 0;
  }
}

/* ---- records the writer makes ----------------------------------------- */

static void wr_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t wr_read_file(const char *path, char *dst, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, dst + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  return n;
}

static void wr_header(void) {
  static char exe[LWT_EXE_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
  if (n < 0) n = 0;
  uint8_t h[LWT_HEADER_FIXED_SIZE];
  memset(h, 0, sizeof h);
  memcpy(h, LWT_MAGIC, LWT_MAGIC_SIZE);
  h[8] = LWT_VERSION_MAJOR;
  h[10] = LWT_VERSION_MINOR;
  wr_le32(h + 12, (uint32_t)(LWT_HEADER_FIXED_SIZE + n));
  wr_le32(h + 16, _lwt_g.flags);
  wr_le32(h + 20, (uint32_t)sysconf(_SC_PAGESIZE));
  wr_le32(h + 24, (uint32_t)getpid());
  wr_le32(h + 28, (uint32_t)getppid());
  wr_le64(h + 32, _lwt_g.t0_real);
  wr_le32(h + 40, _lwt_g.depth);
  wr_le32(h + 44, _lwt_g.time_shift);
  wr_le32(h + 52, (uint32_t)n);
  buf_put(&wr.raw, h, sizeof h);
  buf_put(&wr.raw, exe, (size_t)n);

  /* PROCESS: exe and argv from /proc (no reliance on the program's argv) */
  static char cmd[65536];
  size_t clen = wr_read_file("/proc/self/cmdline", cmd, sizeof cmd);
  uint64_t argc = 0;
  for (size_t i = 0; i < clen; i++) argc += cmd[i] == 0;
  if (clen && cmd[clen - 1] != 0) argc++; /* cut short */
  if (argc > LWT_MAX_ARGS) argc = LWT_MAX_ARGS;
  buf_t *p = wr_payload();
  buf_varint(p, _lwt_now());
  buf_varint(p, (uint64_t)getpid());
  buf_varint(p, (uint64_t)getppid());
  buf_string(p, exe, (size_t)n);
  buf_varint(p, argc);
  size_t at = 0;
  for (uint64_t a = 0; a < argc; a++) {
    size_t len = strnlen(cmd + at, clen - at);
    buf_string(p, cmd + at, len);
    at += len + 1;
  }
  wr_record(LWT_TAG_PROCESS, p);

  if (_lwt_g.flags & LWT_FLAG_FORK_CHILD) {
    p = wr_payload();
    buf_varint(p, _lwt_now());
    buf_varint(p, wr_seq);
    buf_varint(p, (uint64_t)getppid());
    buf_varint(p, (uint64_t)getpid());
    wr_record(LWT_TAG_FORK, p);
  }
  if (_lwt_g.flags & LWT_FLAG_EXEC_IMAGE) {
    p = wr_payload();
    buf_varint(p, _lwt_now());
    buf_varint(p, (uint64_t)getpid());
    buf_string(p, exe, (size_t)n);
    wr_record(LWT_TAG_EXEC, p);
  }
}

static void wr_module(void *arg, uint64_t start, uint64_t end, uint64_t offset, uint64_t bias,
                      const char *path, const uint8_t *id, uint32_t idlen) {
  (void)arg;
  buf_t *p = wr_payload();
  buf_varint(p, _lwt_now());
  buf_varint(p, start);
  buf_varint(p, end);
  buf_varint(p, offset);
  buf_varint(p, bias);
  buf_string(p, path, strlen(path));
  buf_varint(p, idlen);
  buf_put(p, id, idlen);
  wr_record(LWT_TAG_MODULE, p);
}

/* STACK: each ip as an svarint delta from the same frame of the previous
 * STACK record (stacks share most frames: deltas are mostly 0). */
static void wr_stack(void *arg, uint32_t id, uint32_t depth, const uint64_t *ips) {
  (void)arg;
  buf_t *p = wr_payload();
  buf_varint(p, id);
  buf_varint(p, depth);
  for (uint32_t i = 0; i < depth; i++) {
    uint8_t tmp[LWT_VARINT_MAX];
    buf_put(p, tmp, (size_t)(lwt_put_svarint(tmp, (int64_t)(ips[i] - wr.prev_ips[i])) - tmp));
    wr.prev_ips[i] = ips[i];
  }
  wr_record(LWT_TAG_STACK, p);
}

static void wr_snapshot(void) {
  if (!lw_stats) return;
  static lw_stats_t st;
  lw_stats(&st);
  buf_t *p = wr_payload();
  buf_varint(p, _lwt_now());
  buf_varint(p, wr_seq);
  buf_varint(p, st.live_bytes);
  buf_varint(p, st.mapped_bytes);
  buf_varint(p, st.committed_bytes);
  buf_varint(p, st.unmerged_bytes);
  uint32_t n = st.nclasses <= LW_MAX_CLASSES ? st.nclasses : LW_MAX_CLASSES;
  buf_varint(p, n);
  for (uint32_t i = 0; i < n; i++) {
    buf_varint(p, st.classes[i].slot_size);
    buf_varint(p, st.classes[i].slots_used);
    buf_varint(p, st.classes[i].slots_total);
  }
  wr_record(LWT_TAG_POOL, p);
}

/* THREAD_NAME for live threads whose name changed (pthread_setname_np). */
static void wr_thread_names(void) {
  for (unsigned i = 1; i < LWT_MAX_LANES; i++) {
    lwt_lane_t *l = &_lwt_g.lanes[i];
    if (atomic_load_explicit(&l->state, memory_order_acquire) != LANE_LIVE || l->name[0] == 0)
      continue;
    char path[64], name[32];
    snprintf(path, sizeof path, "/proc/self/task/%u/comm", l->tid);
    size_t n = wr_read_file(path, name, 16); /* comm: at most 15 chars + newline */
    while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == 0)) n--;
    name[n] = 0;
    if (n == 0 || strncmp(name, l->name, sizeof l->name) == 0) continue;
    memcpy(l->name, name, n + 1);
    buf_t *p = wr_payload();
    buf_varint(p, _lwt_now());
    buf_varint(p, l->tid);
    buf_string(p, name, n);
    wr_record(LWT_TAG_THREAD_NAME, p);
  }
}

/* ---- the merge ----------------------------------------------------------
 * Lane records carry order keys (recorder.c, "order keys"), not sequence
 * numbers. Each tick the writer:
 *  1. reads a bound T (_lwt_key_bound), fences (_lwt_key_fence), then each
 *     lane's floor and then its head. W = min(T, the floors seen): every
 *     key below W is in the bytes up to the heads just read (a producer
 *     whose floor was not seen reads its key after T; one whose floor was
 *     seen holds keys >= it; a floor seen cleared was cleared after its
 *     record was put, release/acquire). While a key is held outside any
 *     lane (g.slow_keys, rare) W does not move. A floor unchanged for
 *     WR_STALE_TICKS ticks (a thread that left an enter/call window by
 *     longjmp) is ignored.
 *  2. appends the lanes' new bytes to their stages (writer memory: a
 *     producer never waits on the merge), parsing each record's keys;
 *  3. numbers every point (a record's key; a realloc's free key too) below
 *     W in (key, lane slot, place in the lane) order: seq 1, 2, 3...;
 *  4. writes each lane's longest numbered prefix as a CHUNK in the format
 *     of 2.1, dseq and seq - free_seq recomputed from the numbers.
 * A point whose key is below a W already passed (only after an ignored
 * stale floor) is numbered when it arrives. The file is unchanged: seq is
 * dense, unique, and orders a free before any reuse of its block. */
#define WR_STALE_TICKS 100

/* One point of the merge: a lane record, or (kind PT_FREE) the free point
 * of the realloc record that follows it. */
enum { PT_NONE = 0, PT_REC = 1, PT_FREE = 2 };
typedef struct smeta_s {
  uint64_t key;            /* order key */
  uint64_t seq;            /* number given by the merge (0: not yet) */
  uint8_t clen[LWT_NCOLS]; /* the record's bytes in each column of the stage (SEQ: none) */
  uint8_t kind;            /* PT_NONE: LOST, TID (no number); PT_REC; PT_FREE */
} smeta_t;

/* A lane's records drained and not yet written, already split into the
 * CHUNK columns (trace_format.h) but for SEQ, which the numbers fill. */
typedef struct stage_s {
  buf_t col[LWT_NCOLS];
  smeta_t *m;
  size_t nm, capm;
  uint64_t id;        /* lane id of these records */
  uint32_t tid;
  int live;           /* holds a lane id's state */
  int unsorted;       /* a point's key is below an earlier one's (until the stage empties) */
  uint64_t rkey;      /* the producer's delta base: key of the last record parsed */
  uint64_t last_key;  /* largest key split into the stage */
  uint64_t fprev;     /* the file's delta base: seq of the last record written */
  uint64_t floor_seen;
  unsigned floor_ticks;
} stage_t;

typedef struct point_s {
  uint64_t key;
  size_t m; /* index into the stage's metas */
} point_t;

static stage_t *stg;        /* LWT_MAX_LANES, allocated at the first drain */
static point_t *pts;        /* points being numbered, lane by lane (unsorted lanes) */
static size_t npts_cap;
static size_t seg_lo[LWT_MAX_LANES], seg_hi[LWT_MAX_LANES];
static uint64_t wr_w_done;  /* every key below it is numbered */
static unsigned slow_ticks;

static inline uint64_t rd_varint(const uint8_t **pp) {
  const uint8_t *p = *pp;
  uint64_t v = 0;
  unsigned sh = 0;
  do {
    v |= (uint64_t)(*p & 0x7f) << sh;
    sh += 7;
  } while (*p++ & 0x80);
  *pp = p;
  return v;
}

/* Copies one varint from *pp to *dp. */
static inline void cp_varint(const uint8_t **pp, uint8_t **dp) {
  const uint8_t *p = *pp;
  uint8_t *d = *dp;
  do {
    *d++ = *p;
  } while (*p++ & 0x80);
  *dp = d;
  *pp = p;
}

/* Splits n bytes of lane records (our producers' bytes: well-formed) into
 * the stage's columns and metas: the one pass over them. */
static int stage_split(stage_t *st, const uint8_t *p, size_t n) {
  int stacks = (_lwt_g.flags & LWT_FLAG_STACKS) != 0;
  const uint8_t *end = p + n;
  for (int i = 1; i < LWT_NCOLS; i++)
    if (buf_reserve(&st->col[i], n) < 0) return -1;
  if (st->capm - st->nm < n / 2 + 1) { /* a record is >= 2 bytes, a realloc (2 metas) >= 7 */
    size_t cap = st->capm ? st->capm : 1024;
    while (cap - st->nm < n / 2 + 1) cap *= 2;
    smeta_t *nm = realloc(st->m, cap * sizeof *nm);
    if (!nm) return -1;
    st->m = nm;
    st->capm = cap;
  }
  /* column write pointers in locals: stores through them alias nothing
   * the loop keeps in registers */
  uint8_t *dt = st->col[LWT_COL_TIME].p + st->col[LWT_COL_TIME].len;
  uint8_t *dp = st->col[LWT_COL_PTR].p + st->col[LWT_COL_PTR].len;
  uint8_t *ds = st->col[LWT_COL_STACK].p + st->col[LWT_COL_STACK].len;
  uint8_t *dz = st->col[LWT_COL_SIZE].p + st->col[LWT_COL_SIZE].len;
  uint8_t *dr = st->col[LWT_COL_TAG].p + st->col[LWT_COL_TAG].len;
  smeta_t *m = st->m + st->nm;
  uint64_t rkey = st->rkey, last = st->last_key, done = wr_w_done, seq = wr_seq;
  int unsorted = st->unsorted;
  while (p < end) {
    uint8_t *t0 = dt, *p0 = dp, *s0 = ds, *z0 = dz, *r0 = dr;
    unsigned tag = *p++;
    *dr++ = (uint8_t)tag;
    m->seq = 0;
    m->kind = PT_NONE;
    if (tag == LWT_LTAG_LOST || tag == LWT_LTAG_TID) {
      cp_varint(&p, &dr);
    } else {
      m->kind = PT_REC;
      rkey += (uint64_t)lwt_unzigzag(rd_varint(&p));
      m->key = rkey;
      cp_varint(&p, &dt); /* dtime */
      if (tag >= 1 && tag < LWT_LTAG_EVENT_BASE) {
        unsigned op = tag & LWT_CALL_OP_MASK;
        if (lwt_op_has_size(op)) cp_varint(&p, &dz);
        if (lwt_op_has_align(op)) cp_varint(&p, &dz);
        if (lwt_op_has_in(op)) {
          if (tag & LWT_CALL_IN_HIT)
            *dp++ = *p++;
          else
            cp_varint(&p, &dp);
        }
        if (lwt_op_has_out(op)) {
          if (tag & LWT_CALL_OUT_HIT)
            *dp++ = *p++;
          else
            cp_varint(&p, &dp);
        }
        if (lwt_op_has_free_seq(op)) { /* its SIZE bytes: size only (no align) */
          int64_t d = lwt_unzigzag(rd_varint(&p));
          /* the free point goes first, as a meta of its own; never after its own key */
          m[1] = m[0];
          m->kind = PT_FREE;
          m->key = d > 0 ? rkey - (uint64_t)d : rkey;
          memset(m->clen, 0, sizeof m->clen);
          if (m->key < last) unsorted = 1;
          last = m->key > last ? m->key : last;
          if (__builtin_expect(m->key < done, 0)) m->seq = ++seq; /* below a passed bound */
          m++;
        }
        if (stacks) cp_varint(&p, &ds);
      } else if (tag < LWT_LTAG_THREAD_START) { /* EVENT: a, b, c */
        for (int i = 0; i < 3; i++) cp_varint(&p, &dz);
      } else if (tag == LWT_LTAG_THREAD_START) {
        size_t len = *p; /* names are < 128 bytes: a one-byte varint */
        memcpy(dr, p, 1 + len);
        dr += 1 + len;
        p += 1 + len;
      } /* THREAD_EXIT, FORK_MARK: no more fields */
      if (m->key < last) unsorted = 1;
      last = m->key > last ? m->key : last;
      if (__builtin_expect(m->key < done, 0)) m->seq = ++seq; /* below a bound already passed */
    }
    m->clen[LWT_COL_TIME] = (uint8_t)(dt - t0);
    m->clen[LWT_COL_PTR] = (uint8_t)(dp - p0);
    m->clen[LWT_COL_STACK] = (uint8_t)(ds - s0);
    m->clen[LWT_COL_SIZE] = (uint8_t)(dz - z0);
    m->clen[LWT_COL_TAG] = (uint8_t)(dr - r0);
    m++;
  }
  st->nm = (size_t)(m - st->m);
  st->rkey = rkey;
  st->last_key = last;
  st->unsorted = unsorted;
  wr_seq = seq;
  st->col[LWT_COL_TIME].len = (size_t)(dt - st->col[LWT_COL_TIME].p);
  st->col[LWT_COL_PTR].len = (size_t)(dp - st->col[LWT_COL_PTR].p);
  st->col[LWT_COL_STACK].len = (size_t)(ds - st->col[LWT_COL_STACK].p);
  st->col[LWT_COL_SIZE].len = (size_t)(dz - st->col[LWT_COL_SIZE].p);
  st->col[LWT_COL_TAG].len = (size_t)(dr - st->col[LWT_COL_TAG].p);
  return 0;
}

/* The next meta at or after *k to number below w; its key, or UINT64_MAX. */
static inline uint64_t cand_next(const stage_t *st, size_t *k, uint64_t w) {
  for (; *k < st->nm; (*k)++) {
    const smeta_t *m = &st->m[*k];
    if (m->kind != PT_NONE && !m->seq && m->key < w) return m->key;
  }
  return UINT64_MAX;
}

/* Numbers every point below w, lanes merged by (key, slot, place). */
static void stage_number(uint64_t w, const unsigned *lanes, unsigned nlanes) {
  /* the usual case: each lane's points are in key order (only an allocator
   * event inside a free comes before the free's smaller key), merged as
   * they stand; a lane out of order is sorted into pts first */
  unsigned act[LWT_MAX_LANES], nact = 0;
  size_t ck[LWT_MAX_LANES], n = 0;
  uint64_t ckey[LWT_MAX_LANES];
  for (unsigned li = 0; li < nlanes; li++) {
    unsigned i = lanes[li];
    stage_t *st = &stg[i];
    if (!st->live || st->nm == 0) continue;
    seg_lo[i] = seg_hi[i] = n;
    if (st->unsorted) {
      for (size_t k = 0; k < st->nm; k++) {
        smeta_t *m = &st->m[k];
        if (m->kind == PT_NONE || m->seq || m->key >= w) continue;
        if (n == npts_cap) {
          size_t cap = npts_cap ? npts_cap * 2 : 4096;
          point_t *np = realloc(pts, cap * sizeof *np);
          if (!np) return; /* out of memory: numbered at a later tick */
          pts = np;
          npts_cap = cap;
        }
        point_t x = {m->key, k}; /* insertion sort: nearly in order */
        size_t j = n++;
        while (j > seg_lo[i] && (x.key < pts[j - 1].key)) {
          pts[j] = pts[j - 1];
          j--;
        }
        pts[j] = x;
      }
      seg_hi[i] = n;
      ck[i] = seg_lo[i];
      if (seg_hi[i] > seg_lo[i]) {
        ckey[i] = pts[ck[i]].key;
        act[nact++] = i;
      }
    } else {
      ck[i] = 0;
      ckey[i] = cand_next(st, &ck[i], w);
      if (ckey[i] != UINT64_MAX) act[nact++] = i;
    }
  }
  while (nact) {
    unsigned best = 0;
    for (unsigned a = 1; a < nact; a++) {
      uint64_t ka = ckey[act[a]], kb = ckey[act[best]];
      if (ka < kb || (ka == kb && act[a] < act[best])) best = a;
    }
    /* the runner-up: the best lane's points go on being numbered while
     * they still sort before it (threads allocate in runs) */
    unsigned i = act[best], next = LWT_MAX_LANES;
    uint64_t knext = UINT64_MAX;
    for (unsigned a = 0; a < nact; a++) {
      if (a == best) continue;
      uint64_t ka = ckey[act[a]];
      if (ka < knext || (ka == knext && act[a] < next)) knext = ka, next = act[a];
    }
    stage_t *st = &stg[i];
    do {
      if (st->unsorted) {
        st->m[pts[ck[i]].m].seq = ++wr_seq;
        ckey[i] = ++ck[i] < seg_hi[i] ? pts[ck[i]].key : UINT64_MAX;
      } else {
        st->m[ck[i]++].seq = ++wr_seq;
        ckey[i] = cand_next(st, &ck[i], w);
      }
    } while (ckey[i] < knext || (ckey[i] == knext && ckey[i] != UINT64_MAX && i < next));
    if (ckey[i] == UINT64_MAX) act[best] = act[--nact];
  }
}

/* Writes the stage's numbered prefix (a realloc's free point only with
 * its record) as one CHUNK with the merge's numbers, and drops it from the
 * stage: one pass over the metas. */
static void stage_emit(stage_t *st) {
  buf_t *cq = &wr.col[LWT_COL_SEQ], *cz = &wr.col[LWT_COL_SIZE];
  cq->len = cz->len = 0;
  if (st->nm == 0 || buf_reserve(cq, LWT_VARINT_MAX * st->nm) < 0 ||
      buf_reserve(cz, st->col[LWT_COL_SIZE].len + LWT_VARINT_MAX * st->nm) < 0)
    return; /* out of memory: try again next tick */
  size_t take[LWT_NCOLS] = {0}, k = 0;
  const uint8_t *zs = st->col[LWT_COL_SIZE].p, *zrun = zs;
  uint64_t fseq = 0, fprev = st->fprev;
  uint8_t *q = cq->p;
  for (; k < st->nm; k++) {
    const smeta_t *m = &st->m[k];
    if (m->kind == PT_REC ? !m->seq
                          : m->kind == PT_FREE && (!m->seq || k + 1 == st->nm || !m[1].seq))
      break;
    for (int i = 1; i < LWT_NCOLS; i++) take[i] += m->clen[i];
    zs += m->clen[LWT_COL_SIZE];
    if (m->kind != PT_REC) {
      if (m->kind == PT_FREE) fseq = m->seq;
      continue;
    }
    q = lwt_put_svarint(q, (int64_t)(m->seq - fprev - 1));
    fprev = m->seq;
    if (fseq) { /* seq - free_seq after the realloc's size: the free point sorts first */
      memcpy(cz->p + cz->len, zrun, (size_t)(zs - zrun));
      cz->len += (size_t)(zs - zrun);
      zrun = zs;
      cz->len = (size_t)(lwt_put_varint(cz->p + cz->len, m->seq - fseq) - cz->p);
      fseq = 0;
    }
  }
  if (k == 0) return;
  size_t nrec = k;
  st->fprev = fprev;
  cq->len = (size_t)(q - cq->p);
  memcpy(cz->p + cz->len, zrun, (size_t)(zs - zrun));
  cz->len += (size_t)(zs - zrun);
  const buf_t *c[LWT_NCOLS] = {cq, &st->col[LWT_COL_TIME], &st->col[LWT_COL_PTR],
                               &st->col[LWT_COL_STACK], cz, &st->col[LWT_COL_TAG]};
  size_t len[LWT_NCOLS] = {cq->len, take[1], take[2], take[3], cz->len, take[5]};
  uint8_t hdr[1 + LWT_VARINT_MAX], *h = hdr + 1;
  uint8_t ids[(LWT_NCOLS + 1) * LWT_VARINT_MAX], *e = ids;
  hdr[0] = LWT_TAG_CHUNK;
  e = lwt_put_varint(e, st->id);
  e = lwt_put_varint(e, st->tid);
  for (int i = 0; i < LWT_NCOLS - 1; i++) e = lwt_put_varint(e, len[i]);
  size_t total = (size_t)(e - ids);
  for (int i = 0; i < LWT_NCOLS; i++) total += len[i];
  h = lwt_put_varint(h, total);
  buf_put(&wr.raw, hdr, (size_t)(h - hdr));
  buf_put(&wr.raw, ids, (size_t)(e - ids));
  for (int i = 0; i < LWT_NCOLS; i++) buf_put(&wr.raw, c[i]->p, len[i]);
  for (int i = 1; i < LWT_NCOLS; i++) {
    buf_t *b = &st->col[i];
    if (b->len > take[i]) memmove(b->p, b->p + take[i], b->len - take[i]);
    b->len -= take[i];
  }
  if (st->nm > nrec) memmove(st->m, st->m + nrec, (st->nm - nrec) * sizeof *st->m);
  st->nm -= nrec;
  if (st->nm == 0) st->unsorted = 0;
}

/* Moves every lane's complete records into its stage, numbers what the
 * bound allows and writes CHUNK records (the merge, above); final: every
 * producer is done, everything is written. Heads are read before stacks
 * are emitted: stacks referenced by those bytes are then already READY
 * and go out first (see stacks.c). */
static void wr_drain_mode(int final) {
  if (!stg) {
    stg = calloc(LWT_MAX_LANES, sizeof *stg);
    if (!stg) return;
  }
  uint64_t w = UINT64_MAX;
  if (!final) {
    w = _lwt_key_bound();
    _lwt_key_fence();
  }
  /* the slots in use: the passes below and the merge visit only them */
  static unsigned act[LWT_MAX_LANES];
  unsigned nact = 0;
  for (unsigned i = 0; i < LWT_MAX_LANES; i++) {
    lwt_lane_t *l = &_lwt_g.lanes[i];
    wr.states[i] = atomic_load_explicit(&l->state, memory_order_acquire);
    if (wr.states[i] == LANE_FREE) {
      wr.heads[i] = 0;
      continue;
    }
    act[nact++] = i;
    uint64_t f = atomic_load_explicit(&l->floor, memory_order_acquire);
    wr.heads[i] = atomic_load_explicit(&l->head, memory_order_acquire);
    stage_t *st = &stg[i];
    if (f && f == st->floor_seen) {
      st->floor_ticks++;
    } else {
      st->floor_seen = f;
      st->floor_ticks = 0;
    }
    if (f && f < w && st->floor_ticks < WR_STALE_TICKS) w = f;
  }
  if (!final && atomic_load(&_lwt_g.slow_keys) > 0) {
    if (++slow_ticks < WR_STALE_TICKS) w = wr_w_done;
  } else {
    slow_ticks = 0;
  }
  if (w < wr_w_done) w = wr_w_done; /* keys below it were numbered: a floor under it is only
                                       a stale key_hi, the held key is above */
  _lwt_stacks_emit(wr_stack, NULL);
  for (unsigned a = 0; a < nact; a++) {
    unsigned i = act[a];
    lwt_lane_t *l = &_lwt_g.lanes[i];
    stage_t *st = &stg[i];
    if (!st->live || st->id != l->id) { /* a new lane id in this slot (the old one is written) */
      st->live = 1;
      st->id = l->id;
      st->tid = l->tid;
      st->rkey = st->fprev = st->last_key = 0;
      st->unsorted = 0;
      st->nm = 0;
      for (int c = 0; c < LWT_NCOLS; c++) st->col[c].len = 0;
    }
    uint64_t tail = atomic_load_explicit(&l->tail, memory_order_relaxed), head = wr.heads[i];
    if (head > tail) {
      size_t n = (size_t)(head - tail), at = (size_t)(tail & (l->cap - 1));
      size_t first = n < l->cap - at ? n : l->cap - at;
      const uint8_t *src = l->ring + at;
      if (first < n) { /* wrapped: made linear */
        wr.lin.len = 0;
        buf_put(&wr.lin, l->ring + at, first);
        buf_put(&wr.lin, l->ring, n - first);
        if (wr.lin.len != n) continue; /* out of memory: try again next tick */
        src = wr.lin.p;
      }
      if (stage_split(st, src, n) < 0) continue; /* out of memory: next tick */
      atomic_store_explicit(&l->tail, head, memory_order_release);
    }
  }
  stage_number(w, act, nact);
  wr_w_done = w;
  for (unsigned a = 0; a < nact; a++) {
    unsigned i = act[a];
    lwt_lane_t *l = &_lwt_g.lanes[i];
    stage_t *st = &stg[i];
    stage_emit(st);
    /* a closed lane is reusable once drained and written (its thread is gone) */
    if (wr.states[i] == LANE_CLOSING && st->nm == 0) {
      atomic_fetch_add(&_lwt_g.records, l->records);
      atomic_fetch_add(&_lwt_g.lost, l->lost);
      l->records = l->lost = 0;
      st->live = 0;
      atomic_store_explicit(&l->state, LANE_FREE, memory_order_release);
    }
  }
}

static void wr_drain(void) { wr_drain_mode(0); }

/* A new file: no stage holds anything of the last one. */
static void stages_reset(void) {
  if (stg)
    for (unsigned i = 0; i < LWT_MAX_LANES; i++) {
      stg[i].live = 0;
      stg[i].unsorted = 0;
      stg[i].nm = 0;
      for (int c = 0; c < LWT_NCOLS; c++) stg[i].col[c].len = 0;
      stg[i].floor_seen = stg[i].floor_ticks = 0;
    }
  wr_w_done = 0;
  slow_ticks = 0;
}

static void wr_end_record(void) {
  buf_t *p = wr_payload();
  buf_varint(p, _lwt_now());
  buf_varint(p, wr_seq);
  uint64_t records = atomic_load(&_lwt_g.records), lost = atomic_load(&_lwt_g.lost);
  for (unsigned i = 0; i < LWT_MAX_LANES; i++) {
    if (atomic_load(&_lwt_g.lanes[i].state) == LANE_FREE) continue;
    records += _lwt_g.lanes[i].records;
    lost += _lwt_g.lanes[i].lost;
  }
  buf_varint(p, records);
  buf_varint(p, lost);
  wr_record(LWT_TAG_END, p);
}

/* Sleeps up to ns, or until a producer calls _lwt_writer_wake(). */
static void wr_sleep(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  if (atomic_exchange(&_lwt_g.wake, 0)) return; /* woken since the last drain */
  syscall(SYS_futex, &_lwt_g.wake, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
  atomic_store(&_lwt_g.wake, 0);
}

void _lwt_writer_wake(void) {
  if (atomic_exchange(&_lwt_g.wake, 1) == 0)
    syscall(SYS_futex, &_lwt_g.wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *wr_main(void *arg) {
  (void)arg;
  _lwt_set_internal(1);
  uint64_t last_snap = _lwt_now(), last_frame = last_snap, frame_ns = WR_FRAME_NS;
  const char *fm = getenv("LW_TRACE_FRAME_MS"); /* tests: shorter frames */
  if (fm && atoi(fm) > 0 && (uint64_t)atoi(fm) * 1000000ull < WR_FRAME_NS)
    frame_ns = (uint64_t)atoi(fm) * 1000000ull;
  while (!atomic_load(&_lwt_g.writer_stop)) {
    wr_sleep(WR_TICK_NS);
    _lwt_clock_fit();
    wr_drain();
    uint64_t now = _lwt_now();
    if (now - last_snap >= WR_SNAP_NS) {
      wr_snapshot();
      last_snap = now;
    }
    if (now - last_frame >= frame_ns || wr.frame_in + wr.raw.len >= WR_FRAME_MAX) {
      wr_thread_names();
      if (_lwt_modules_changed()) _lwt_modules_scan(wr_module, NULL, 1);
      wr_drain();
      wr_compress(1);
      wr_adapt_level(_lwt_now() - last_frame);
      last_frame = now;
    } else {
      wr_compress(0);
    }
  }
  return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int _lwt_writer_open(const char *path) {
  _lwt_set_internal(1);
  int rc = 0;
  wr.failed = 0;
  wr.good_size = 0;
  memset(wr.prev_ips, 0, sizeof wr.prev_ips);
  wr.raw.len = wr.z.len = 0;
  wr.frame_in = 0;
  if (!wr.cctx) {
    wr.cctx = ZSTD_createCCtx();
    if (!wr.cctx) rc = -1;
  }
  if (rc == 0) {
    ZSTD_CCtx_reset(wr.cctx, ZSTD_reset_session_and_parameters);
    const char *lv = getenv("LW_TRACE_ZSTD_LEVEL");
    wr.level_fixed = lv && *lv;
    wr.level = wr.level_fixed ? atoi(lv) : WR_LEVEL;
    wr.level_max = sysconf(_SC_NPROCESSORS_ONLN) <= 2 ? WR_LEVEL_MAX_FEW_CPUS : WR_LEVEL_MAX;
    wr.busy_ns = 0;
    ZSTD_CCtx_setParameter(wr.cctx, ZSTD_c_compressionLevel, wr.level);
    ZSTD_CCtx_setParameter(wr.cctx, ZSTD_c_checksumFlag, 1);
  }
  if (rc == 0) {
    _lwt_g.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (_lwt_g.fd < 0) rc = -1;
  }
  if (rc == 0) {
    snprintf(_lwt_g.path, sizeof _lwt_g.path, "%s", path);
    stages_reset();
    /* The first frame (header, process, modules) goes out at once, so the
     * file is a valid trace even if the program dies right away. */
    wr_header();
    _lwt_modules_changed(); /* remember the object set written now */
    _lwt_modules_scan(wr_module, NULL, 1);
    wr_compress(1);
  }
  _lwt_set_internal(0);
  return rc;
}

int _lwt_writer_failed(void) { return wr.failed; }

int _lwt_writer_start(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the writer inherits "all blocked" */
  atomic_store(&_lwt_g.writer_stop, 0);
  _lwt_set_internal(1);
  int rc = pthread_create(&wr.thread, NULL, wr_main, NULL);
  _lwt_set_internal(0);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) atomic_store(&_lwt_g.writer_running, 1);
  return rc == 0 ? 0 : -1;
}

void _lwt_writer_stop(void) {
  _lwt_set_internal(1);
  if (atomic_load(&_lwt_g.writer_running)) {
    atomic_store(&_lwt_g.writer_stop, 1);
    pthread_join(wr.thread, NULL);
    atomic_store(&_lwt_g.writer_running, 0);
  }
  if (_lwt_g.fd >= 0) {
    wr_drain_mode(1);
    wr_snapshot();
    if (_lwt_g.exec_path[0]) { /* this image is being replaced */
      buf_t *p = wr_payload();
      buf_varint(p, _lwt_now());
      buf_varint(p, (uint64_t)getpid());
      buf_string(p, _lwt_g.exec_path, strlen(_lwt_g.exec_path));
      wr_record(LWT_TAG_EXEC, p);
    }
    wr_end_record();
    wr_compress(1);
    close(_lwt_g.fd);
    const char *v = getenv("LW_TRACE_VERBOSE");
    if (v && *v == '1') {
      char msg[512];
      int n = snprintf(msg, sizeof msg,
                       "lwtrace: %s: %llu frames, %llu bytes raw -> %llu compressed (zstd "
                       "level %d at the end), %llu producer waits, %llu lost\n",
                       _lwt_g.path, (unsigned long long)wr.frames,
                       (unsigned long long)wr.total_in, (unsigned long long)wr.total_out, wr.level,
                       (unsigned long long)atomic_load(&_lwt_g.waits),
                       (unsigned long long)atomic_load(&_lwt_g.lost));
      if (n > 0) (void)!write(2, msg, (size_t)n);
    }
    _lwt_g.fd = -1;
  }
  _lwt_set_internal(0);
}

void _lwt_writer_forget(void) {
  /* The parent's zstd context may be mid-use by a thread that does not
   * exist in the child: leak it rather than touch it. */
  wr.cctx = NULL;
  memset(&wr.raw, 0, sizeof wr.raw);
  memset(&wr.z, 0, sizeof wr.z);
  memset(&wr.lin, 0, sizeof wr.lin);
  memset(wr.col, 0, sizeof wr.col);
  memset(&scratch, 0, sizeof scratch);
  stg = NULL; /* the parent's stages: left alone as the zstd context */
  pts = NULL;
  npts_cap = 0;
  wr.frame_in = 0;
  atomic_store(&_lwt_g.writer_running, 0);
  if (_lwt_g.fd >= 0) close(_lwt_g.fd);
  _lwt_g.fd = -1;
}
