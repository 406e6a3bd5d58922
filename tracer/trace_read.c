/* Streaming, validating reader of lwtrace files (see trace_read.h).
 *
 * Pipeline: compressed bytes (file or memory) -> ZSTD_DStream -> dbuf
 * (decompressed bytes not yet parsed) -> top-level records; a CHUNK record
 * is then walked lane record by lane record (fields from its record
 * column, dseq/dtime from its timing column), each decoded against the
 * per-lane delta state in lanes[lane id].
 *
 * Invariant: everything in dbuf[dpos, dlen) is decompressed and unparsed;
 * while a CHUNK is being walked (chunk_p < chunk_end) those bytes live in
 * dbuf and dbuf is neither filled nor compacted.
 * Errors found while decompressing are deferred (pending_err) until every
 * complete record decoded before them has been returned.
 */
#define _GNU_SOURCE
#include "trace_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "varint.h"

#define RD_INBUF 65536
#define RD_MAX_RECORD (64u << 20) /* largest top-level payload accepted */
#define RD_MAX_LANES (1u << 24)
/* Lane ids are handed out in order and every lane is drained within a
 * tick, so a lane id is never far above the CHUNKs read before it; a
 * damaged file claiming a huge id is refused instead of costing GBs. */
#define RD_LANE_SLACK 65536u
#define RD_MAX_CLASSES 256

typedef struct lane_state_s {
  uint64_t seq, time, ptr, stack; /* time in units of 2^time_shift ns */
  lwt_ptr_cache_t cache, stacks;
} lane_state_t;

struct lwt_reader_s {
  char name[512];
  char err[1200]; /* name + offset + message always fit */
  int fd;                  /* -1 for memory input */
  const uint8_t *mem;      /* memory input */
  size_t mem_size, mem_pos;
  uint8_t *in;             /* compressed input window */
  ZSTD_inBuffer zin;
  uint64_t in_consumed;    /* compressed bytes read from the source */
  uint64_t frame_start;    /* compressed offset of the frame being decoded */
  int in_eof;
  int frame_open;          /* decompressor is inside a frame */
  ZSTD_DStream *zs;
  uint8_t *dbuf;
  size_t dpos, dlen, dcap;
  uint64_t dbase;          /* decompressed offset of dbuf[0] */
  char pending_err[512];   /* deferred decompression error */
  int failed;
  lwt_header_t hdr;
  char *exe;
  lane_state_t *lanes;
  uint32_t nlanes;
  uint64_t nchunks;        /* CHUNK records read */
  /* chunk being walked */
  const uint8_t *chunk_p, *chunk_end;     /* TAG column (the chunk's last) */
  const uint8_t *col[LWT_NCOLS], *col_end[LWT_NCOLS]; /* read positions */
  int colmap[LWT_NCOLS];   /* column a field is read from: itself, or TAG (format 1) */
  uint32_t chunk_lane, chunk_tid;
  /* scratch for the current record */
  uint64_t prev_ips[LWT_MAX_DEPTH]; /* frames of the last STACK record */
  lwt_class_snap_t classes[RD_MAX_CLASSES];
  char *strs;              /* NUL-terminated strings of the current record */
  size_t strs_len, strs_cap;
  const char *argv[LWT_MAX_ARGS];
};

/* ---- errors ---------------------------------------------------------- */

static int rd_fail(lwt_reader_t *r, uint64_t offset, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(r->err, sizeof r->err, "%s: offset %llu: %s", r->name, (unsigned long long)offset,
           msg);
  r->failed = 1;
  return -1;
}

/* Error about decompressed data: offset = the frame holding it. */
static int rd_corrupt(lwt_reader_t *r, const char *what) {
  return rd_fail(r, r->frame_start, "%s (decompressed byte %llu)", what,
                 (unsigned long long)(r->dbase + r->dpos));
}

/* ---- input ----------------------------------------------------------- */

static uint64_t rd_compressed_pos(const lwt_reader_t *r) {
  return r->in_consumed - (r->zin.size - r->zin.pos);
}

/* Refills the compressed window; 0 at end of input. */
static int rd_read_input(lwt_reader_t *r) {
  if (r->in_eof) return 0;
  size_t n;
  if (r->fd >= 0) {
    ssize_t got;
    do {
      got = read(r->fd, r->in, RD_INBUF);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      snprintf(r->pending_err, sizeof r->pending_err, "offset %llu: read: %s",
               (unsigned long long)r->in_consumed, strerror(errno));
      r->in_eof = 1;
      return 0;
    }
    n = (size_t)got;
  } else {
    n = r->mem_size - r->mem_pos;
    if (n > RD_INBUF) n = RD_INBUF;
    if (n) memcpy(r->in, r->mem + r->mem_pos, n);
    r->mem_pos += n;
  }
  if (n == 0) {
    r->in_eof = 1;
    return 0;
  }
  r->zin.src = r->in;
  r->zin.size = n;
  r->zin.pos = 0;
  r->in_consumed += n;
  return 1;
}

static int rd_reserve(lwt_reader_t *r, size_t extra) {
  if (r->dpos > 0 && r->dpos >= r->dlen / 2) { /* compact */
    memmove(r->dbuf, r->dbuf + r->dpos, r->dlen - r->dpos);
    r->dbase += r->dpos;
    r->dlen -= r->dpos;
    r->dpos = 0;
  }
  if (r->dcap - r->dlen >= extra) return 0;
  size_t cap = r->dcap ? r->dcap : 1 << 20;
  while (cap - r->dlen < extra) cap *= 2;
  uint8_t *nb = realloc(r->dbuf, cap);
  if (!nb) return -1;
  r->dbuf = nb;
  r->dcap = cap;
  return 0;
}

/* Decompresses more bytes into dbuf. Returns 1 when bytes were added, 0
 * when no more will come (clean end, or a deferred error in pending_err). */
static int rd_fill(lwt_reader_t *r) {
  if (r->pending_err[0] || r->failed) return 0;
  for (;;) {
    if (r->zin.pos == r->zin.size && !rd_read_input(r)) {
      if (r->pending_err[0]) return 0;
      if (r->frame_open)
        snprintf(r->pending_err, sizeof r->pending_err,
                 "offset %llu: truncated zstd frame (frame starts at offset %llu)",
                 (unsigned long long)r->in_consumed, (unsigned long long)r->frame_start);
      return 0;
    }
    if (rd_reserve(r, ZSTD_DStreamOutSize()) < 0) {
      snprintf(r->pending_err, sizeof r->pending_err, "offset %llu: out of memory",
               (unsigned long long)r->frame_start);
      return 0;
    }
    ZSTD_outBuffer out = {r->dbuf + r->dlen, r->dcap - r->dlen, 0};
    size_t ret = ZSTD_decompressStream(r->zs, &out, &r->zin);
    r->dlen += out.pos;
    if (ZSTD_isError(ret)) {
      snprintf(r->pending_err, sizeof r->pending_err, "offset %llu: corrupt zstd frame: %s",
               (unsigned long long)r->frame_start, ZSTD_getErrorName(ret));
      return out.pos > 0;
    }
    if (ret == 0) { /* frame complete */
      r->frame_open = 0;
      r->frame_start = rd_compressed_pos(r);
    } else {
      r->frame_open = 1;
    }
    if (out.pos > 0) return 1;
  }
}

/* Makes at least n unparsed bytes available. 1 = ok, 0 = input ended. */
static int rd_need(lwt_reader_t *r, size_t n) {
  while (r->dlen - r->dpos < n)
    if (!rd_fill(r)) return 0;
  return 1;
}

/* Reports why the data ended inside something (a record or the header). */
static int rd_fail_short(lwt_reader_t *r, const char *what) {
  if (r->pending_err[0]) {
    snprintf(r->err, sizeof r->err, "%s: %s", r->name, r->pending_err);
    r->failed = 1;
    return -1;
  }
  return rd_fail(r, rd_compressed_pos(r), "truncated %s (decompressed byte %llu)", what,
                 (unsigned long long)(r->dbase + r->dlen));
}

/* ---- strings scratch ------------------------------------------------- */

static const char *rd_str(lwt_reader_t *r, const uint8_t *s, size_t n) {
  if (r->strs_len + n + 1 > r->strs_cap) {
    size_t cap = r->strs_cap ? r->strs_cap : 4096;
    while (cap < r->strs_len + n + 1) cap *= 2;
    char *ns = realloc(r->strs, cap);
    if (!ns) return NULL;
    /* earlier strings of this record move: callers fix up via offsets */
    r->strs = ns;
    r->strs_cap = cap;
  }
  char *d = r->strs + r->strs_len;
  memcpy(d, s, n);
  d[n] = 0;
  r->strs_len += n + 1;
  return d;
}

/* ---- open ------------------------------------------------------------ */

static uint32_t rd_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_le64(const uint8_t *p) { return rd_le32(p) | (uint64_t)rd_le32(p + 4) << 32; }

static int rd_header(lwt_reader_t *r) {
  if (!rd_need(r, LWT_HEADER_FIXED_SIZE)) {
    if (r->dlen == 0 && !r->pending_err[0] && r->in_consumed == 0)
      return rd_fail(r, 0, "empty file");
    return rd_fail_short(r, "file header");
  }
  const uint8_t *h = r->dbuf + r->dpos;
  if (memcmp(h, LWT_MAGIC, LWT_MAGIC_SIZE) != 0) return rd_fail(r, 0, "not an lwtrace file (bad magic)");
  r->hdr.version_major = (uint16_t)(h[8] | h[9] << 8);
  r->hdr.version_minor = (uint16_t)(h[10] | h[11] << 8);
  if (r->hdr.version_major > LWT_VERSION_MAJOR || r->hdr.version_major == 0)
    return rd_fail(r, 0, "unsupported format version %u.%u (this reader: %u.%u)",
                   r->hdr.version_major, r->hdr.version_minor, LWT_VERSION_MAJOR,
                   LWT_VERSION_MINOR);
  uint32_t hsize = rd_le32(h + 12);
  uint32_t exelen = rd_le32(h + 52);
  if (exelen > LWT_EXE_MAX || hsize < LWT_HEADER_FIXED_SIZE + exelen || hsize > 65536)
    return rd_fail(r, 0, "bad header size %u (exe length %u)", hsize, exelen);
  r->hdr.flags = rd_le32(h + 16);
  r->hdr.page_size = rd_le32(h + 20);
  r->hdr.pid = rd_le32(h + 24);
  r->hdr.ppid = rd_le32(h + 28);
  r->hdr.start_realtime_ns = rd_le64(h + 32);
  r->hdr.max_depth = rd_le32(h + 40);
  r->hdr.time_shift = rd_le32(h + 44);
  if (r->hdr.time_shift > LWT_MAX_TIME_SHIFT) return rd_fail(r, 0, "bad time shift %u", r->hdr.time_shift);
  if (r->hdr.max_depth > LWT_MAX_DEPTH) return rd_fail(r, 0, "bad stack depth %u", r->hdr.max_depth);
  if (!rd_need(r, hsize)) return rd_fail_short(r, "file header");
  h = r->dbuf + r->dpos;
  r->exe = malloc(exelen + 1);
  if (!r->exe) return rd_fail(r, 0, "out of memory");
  memcpy(r->exe, h + LWT_HEADER_FIXED_SIZE, exelen);
  r->exe[exelen] = 0;
  r->hdr.exe = r->exe;
  r->dpos += hsize;
  for (int i = 0; i < LWT_NCOLS; i++)
    r->colmap[i] = r->hdr.version_major >= 2 ? i : LWT_COL_TAG;
  return 0;
}

static lwt_reader_t *rd_new(const char *name) {
  lwt_reader_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  snprintf(r->name, sizeof r->name, "%s", name);
  r->fd = -1;
  r->in = malloc(RD_INBUF);
  r->zs = ZSTD_createDStream();
  if (!r->in || !r->zs) {
    lwt_close(r);
    return NULL;
  }
  ZSTD_initDStream(r->zs);
  return r;
}

static lwt_reader_t *rd_start(lwt_reader_t *r, char *err, size_t errlen) {
  if (rd_header(r) < 0) {
    if (err && errlen) snprintf(err, errlen, "%s", r->err);
    lwt_close(r);
    return NULL;
  }
  return r;
}

lwt_reader_t *lwt_open(const char *path, char *err, size_t errlen) {
  lwt_reader_t *r = rd_new(path);
  if (!r) {
    if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) {
    if (err && errlen) snprintf(err, errlen, "%s: offset 0: cannot open: %s", path, strerror(errno));
    lwt_close(r);
    return NULL;
  }
  return rd_start(r, err, errlen);
}

lwt_reader_t *lwt_open_mem(const void *data, size_t size, const char *name, char *err,
                           size_t errlen) {
  lwt_reader_t *r = rd_new(name ? name : "<memory>");
  if (!r) {
    if (err && errlen) snprintf(err, errlen, "%s: out of memory", name ? name : "<memory>");
    return NULL;
  }
  r->mem = data;
  r->mem_size = size;
  return rd_start(r, err, errlen);
}

void lwt_close(lwt_reader_t *r) {
  if (!r) return;
  if (r->fd >= 0) close(r->fd);
  ZSTD_freeDStream(r->zs);
  free(r->in);
  free(r->dbuf);
  free(r->exe);
  free(r->lanes);
  free(r->strs);
  free(r);
}

const char *lwt_error(lwt_reader_t *r) { return r->failed ? r->err : ""; }
const lwt_header_t *lwt_header(lwt_reader_t *r) { return &r->hdr; }
uint64_t lwt_offset(lwt_reader_t *r) { return rd_compressed_pos(r); }

/* ---- lane records ---------------------------------------------------- */

#define GETV(dst)                                                   \
  do {                                                              \
    if (lwt_get_varint(&p, end, &(dst)) != 1) goto short_record;    \
  } while (0)
#define GETS(dst)                                                   \
  do {                                                              \
    uint64_t zz_;                                                   \
    if (lwt_get_varint(&p, end, &zz_) != 1) goto short_record;      \
    (dst) = lwt_unzigzag(zz_);                                      \
  } while (0)

static lane_state_t *rd_lane(lwt_reader_t *r, uint64_t id) {
  if (id >= RD_MAX_LANES || id >= RD_LANE_SLACK + 4 * r->nchunks) return NULL;
  if (id >= r->nlanes) {
    uint32_t n = r->nlanes ? r->nlanes : 64;
    while (n <= id) n *= 2;
    lane_state_t *nl = realloc(r->lanes, n * sizeof *nl);
    if (!nl) return NULL;
    memset(nl + r->nlanes, 0, (n - r->nlanes) * sizeof *nl);
    r->lanes = nl;
    r->nlanes = n;
  }
  return &r->lanes[id];
}

/* Decodes the next record of the current chunk. 1 = record, 0 = a record
 * that produces no output (TID switch), -1 = error. Each field is read
 * from its column (format 2); a format-1 chunk is one stream, so there
 * every column maps to the TAG column (r->colmap). */
static int rd_lane_record(lwt_reader_t *r, lwt_record_t *rec) {
  const uint8_t *cur[LWT_NCOLS];
  memcpy(cur, r->col, sizeof cur);
  const uint8_t **tg = &cur[LWT_COL_TAG], *tgend = r->col_end[LWT_COL_TAG];
#define LANE_GET(col, dst)                                                          \
  do {                                                                              \
    if (lwt_get_varint(&cur[r->colmap[col]], r->col_end[r->colmap[col]], &(dst)) != 1) \
      goto short_record;                                                            \
  } while (0)
  lane_state_t *ls = &r->lanes[r->chunk_lane];
  unsigned tag = *(*tg)++;
  uint64_t v, zz;
  rec->tid = r->chunk_tid;
  if (tag == LWT_LTAG_TID) {
    LANE_GET(LWT_COL_TAG, v);
    if (v > UINT32_MAX) goto bad;
    r->chunk_tid = (uint32_t)v;
    goto done_silent;
  }
  if (tag == LWT_LTAG_LOST) {
    rec->kind = LWT_LOST;
    LANE_GET(LWT_COL_TAG, rec->lost.count);
    goto done;
  }
  /* every other lane record has dseq, dtime */
  LANE_GET(LWT_COL_SEQ, zz);
  rec->seq = ls->seq + 1 + (uint64_t)lwt_unzigzag(zz);
  LANE_GET(LWT_COL_TIME, zz);
  uint64_t units = ls->time + (uint64_t)lwt_unzigzag(zz);
  rec->time_ns = units << r->hdr.time_shift;
  if (tag >= 1 && tag < LWT_LTAG_EVENT_BASE) {
    unsigned op = tag & LWT_CALL_OP_MASK;
    if (op == 0 || op >= LW_OP_LIMIT) goto bad;
    if ((tag & LWT_CALL_IN_HIT) && !lwt_op_has_in(op)) goto bad;
    if ((tag & LWT_CALL_OUT_HIT) && !lwt_op_has_out(op)) goto bad;
    rec->kind = LWT_CALL;
    rec->call.op = op;
    if (lwt_op_has_size(op)) LANE_GET(LWT_COL_SIZE, rec->call.size);
    if (lwt_op_has_align(op)) LANE_GET(LWT_COL_SIZE, rec->call.align);
    for (int which = 0; which < 2; which++) { /* in, then out */
      if (which == 0 ? !lwt_op_has_in(op) : !lwt_op_has_out(op)) continue;
      int hit = -1;
      if (tag & (which == 0 ? LWT_CALL_IN_HIT : LWT_CALL_OUT_HIT)) {
        const uint8_t **pp = &cur[r->colmap[LWT_COL_PTR]];
        if (*pp >= r->col_end[r->colmap[LWT_COL_PTR]]) goto short_record;
        hit = *(*pp)++;
        if (hit >= LWT_PTR_CACHE) goto bad;
        ls->ptr = ls->cache.p[hit];
      } else {
        LANE_GET(LWT_COL_PTR, zz);
        ls->ptr += (uint64_t)lwt_unzigzag(zz); /* a miss: in no cache entry */
      }
      lwt_cache_touch(&ls->cache, ls->ptr, hit);
      if (which == 0)
        rec->call.in_ptr = ls->ptr;
      else
        rec->call.out_ptr = ls->ptr;
    }
    if (lwt_op_has_free_seq(op)) {
      LANE_GET(LWT_COL_SIZE, v);
      if (v > rec->seq) goto bad;
      rec->call.free_seq = rec->seq - v;
    } else if (lwt_op_frees(op)) {
      rec->call.free_seq = rec->seq;
    }
    if (r->hdr.flags & LWT_FLAG_STACKS) {
      LANE_GET(LWT_COL_STACK, v);
      int hit = -1;
      if (v < LWT_PTR_CACHE) {
        hit = (int)v;
        ls->stack = ls->stacks.p[hit];
      } else {
        ls->stack += (uint64_t)lwt_unzigzag(v - LWT_PTR_CACHE);
      }
      if (ls->stack > UINT32_MAX) goto bad;
      lwt_cache_touch(&ls->stacks, ls->stack, hit);
      rec->call.stack_id = (uint32_t)ls->stack;
    }
  } else if (tag > LWT_LTAG_EVENT_BASE && tag < LWT_LTAG_EVENT_BASE + LW_EV_LIMIT) {
    rec->kind = LWT_EVENT;
    rec->event.kind = tag - LWT_LTAG_EVENT_BASE;
    LANE_GET(LWT_COL_SIZE, rec->event.a);
    LANE_GET(LWT_COL_SIZE, rec->event.b);
    LANE_GET(LWT_COL_SIZE, rec->event.c);
  } else if (tag == LWT_LTAG_THREAD_START) {
    rec->kind = LWT_THREAD_START;
    LANE_GET(LWT_COL_TAG, v);
    if (v > LWT_MAX_STRING || v > (uint64_t)(tgend - *tg)) goto short_record;
    r->strs_len = 0;
    rec->thread.name = rd_str(r, *tg, (size_t)v);
    if (!rec->thread.name) return rd_corrupt(r, "out of memory");
    *tg += v;
  } else if (tag == LWT_LTAG_THREAD_EXIT) {
    rec->kind = LWT_THREAD_EXIT;
    rec->thread.name = "";
  } else if (tag == LWT_LTAG_FORK_MARK) {
    rec->kind = LWT_FORK;
    rec->fork.parent_pid = rec->fork.child_pid = 0;
  } else {
    goto bad;
  }
  ls->seq = rec->seq;
  ls->time = units;
done:
  memcpy(r->col, cur, sizeof cur);
  r->chunk_p = *tg;
  return 1;
done_silent:
  memcpy(r->col, cur, sizeof cur);
  r->chunk_p = *tg;
  return 0;
short_record:
  return rd_corrupt(r, "truncated or malformed lane record in chunk");
bad:
  return rd_corrupt(r, "bad lane record");
#undef LANE_GET
}

/* ---- top-level records ----------------------------------------------- */

static int rd_toplevel(lwt_reader_t *r, unsigned tag, const uint8_t *p, const uint8_t *end,
                       lwt_record_t *rec) {
  uint64_t v, n;
  r->strs_len = 0;
  switch (tag) {
  case LWT_TAG_CHUNK: {
    uint64_t lane, tid, ncol[LWT_NCOLS - 1];
    GETV(lane);
    GETV(tid);
    if (tid > UINT32_MAX || !rd_lane(r, lane)) goto bad;
    r->nchunks++;
    const uint8_t *at = p;
    if (r->hdr.version_major >= 2) {
      for (int i = 0; i < LWT_NCOLS - 1; i++) GETV(ncol[i]);
      at = p;
      for (int i = 0; i < LWT_NCOLS - 1; i++) {
        if (ncol[i] > (uint64_t)(end - at)) goto short_record;
        r->col[i] = at;
        r->col_end[i] = at += ncol[i];
      }
    } else { /* format 1: one stream, no columns */
      for (int i = 0; i < LWT_NCOLS - 1; i++) r->col[i] = r->col_end[i] = at;
    }
    r->col[LWT_COL_TAG] = r->chunk_p = at;
    r->col_end[LWT_COL_TAG] = r->chunk_end = end;
    r->chunk_lane = (uint32_t)lane;
    r->chunk_tid = (uint32_t)tid;
    return 0;
  }
  case LWT_TAG_STACK:
    rec->kind = LWT_STACK;
    GETV(v);
    GETV(n);
    if (v == 0 || v > UINT32_MAX || n > LWT_MAX_DEPTH) goto bad;
    rec->stack.id = (uint32_t)v;
    rec->stack.depth = (uint32_t)n;
    /* frame i = frame i of the previous STACK record + svarint delta
     * (format 1: u64 little-endian frames) */
    for (uint64_t i = 0; i < n; i++) {
      if (r->hdr.version_major < 2) {
        if ((uint64_t)(end - p) < 8) goto short_record;
        r->prev_ips[i] = rd_le64(p);
        p += 8;
        continue;
      }
      int64_t d;
      GETS(d);
      r->prev_ips[i] += (uint64_t)d;
    }
    rec->stack.ips = r->prev_ips;
    return 1;
  case LWT_TAG_MODULE: {
    rec->kind = LWT_MODULE;
    GETV(rec->time_ns);
    GETV(rec->module.start);
    GETV(rec->module.end);
    GETV(rec->module.offset);
    GETV(rec->module.bias);
    GETV(n);
    if (n > LWT_MAX_STRING || n > (uint64_t)(end - p)) goto short_record;
    const uint8_t *path = p;
    p += n;
    GETV(v);
    if (v > 64 || v > (uint64_t)(end - p)) goto short_record;
    rec->module.path = rd_str(r, path, (size_t)n);
    rec->module.build_id = p;
    rec->module.build_id_len = (uint32_t)v;
    return rec->module.path ? 1 : rd_corrupt(r, "out of memory");
  }
  case LWT_TAG_POOL:
    rec->kind = LWT_POOL_SNAPSHOT;
    GETV(rec->time_ns);
    GETV(rec->seq);
    GETV(rec->pool.live_bytes);
    GETV(rec->pool.mapped_bytes);
    GETV(rec->pool.committed_bytes);
    GETV(rec->pool.unmerged_bytes);
    GETV(n);
    if (n > RD_MAX_CLASSES) goto bad;
    rec->pool.nclasses = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
      GETV(r->classes[i].slot_size);
      GETV(r->classes[i].slots_used);
      GETV(r->classes[i].slots_total);
    }
    rec->pool.classes = r->classes;
    return 1;
  case LWT_TAG_PROCESS: {
    rec->kind = LWT_PROCESS;
    uint64_t pid, ppid;
    GETV(rec->time_ns);
    GETV(pid);
    GETV(ppid);
    if (pid > UINT32_MAX || ppid > UINT32_MAX) goto bad;
    rec->process.pid = (uint32_t)pid;
    rec->process.ppid = (uint32_t)ppid;
    /* strings go to scratch as offsets first: rd_str may move it */
    size_t offs[LWT_MAX_ARGS + 1];
    GETV(n);
    if (n > LWT_MAX_STRING || n > (uint64_t)(end - p)) goto short_record;
    offs[0] = r->strs_len;
    if (!rd_str(r, p, (size_t)n)) return rd_corrupt(r, "out of memory");
    p += n;
    uint64_t argc;
    GETV(argc);
    if (argc > LWT_MAX_ARGS) goto bad;
    for (uint64_t i = 0; i < argc; i++) {
      GETV(n);
      if (n > LWT_MAX_STRING || n > (uint64_t)(end - p)) goto short_record;
      offs[i + 1] = r->strs_len;
      if (!rd_str(r, p, (size_t)n)) return rd_corrupt(r, "out of memory");
      p += n;
    }
    rec->process.exe = r->strs + offs[0];
    for (uint64_t i = 0; i < argc; i++) r->argv[i] = r->strs + offs[i + 1];
    rec->process.argc = (uint32_t)argc;
    rec->process.argv = r->argv;
    return 1;
  }
  case LWT_TAG_FORK: {
    uint64_t pp, cp;
    rec->kind = LWT_FORK;
    GETV(rec->time_ns);
    GETV(rec->seq);
    GETV(pp);
    GETV(cp);
    if (pp > UINT32_MAX || cp > UINT32_MAX) goto bad;
    rec->fork.parent_pid = (uint32_t)pp;
    rec->fork.child_pid = (uint32_t)cp;
    return 1;
  }
  case LWT_TAG_EXEC:
    rec->kind = LWT_EXEC;
    GETV(rec->time_ns);
    GETV(v);
    if (v > UINT32_MAX) goto bad;
    rec->exec.pid = (uint32_t)v;
    GETV(n);
    if (n > LWT_MAX_STRING || n > (uint64_t)(end - p)) goto short_record;
    rec->exec.path = rd_str(r, p, (size_t)n);
    return rec->exec.path ? 1 : rd_corrupt(r, "out of memory");
  case LWT_TAG_THREAD_NAME:
    rec->kind = LWT_THREAD_NAME;
    GETV(rec->time_ns);
    GETV(v);
    if (v > UINT32_MAX) goto bad;
    rec->tid = (uint32_t)v;
    GETV(n);
    if (n > LWT_MAX_STRING || n > (uint64_t)(end - p)) goto short_record;
    rec->thread.name = rd_str(r, p, (size_t)n);
    return rec->thread.name ? 1 : rd_corrupt(r, "out of memory");
  case LWT_TAG_END:
    rec->kind = LWT_END;
    GETV(rec->time_ns);
    GETV(rec->seq);
    GETV(rec->end.records);
    GETV(rec->end.lost);
    return 1;
  default:
    if (tag < 0xF0) return rd_corrupt(r, "bad record tag");
    return 0; /* a newer minor version's record: skip */
  }
short_record:
  return rd_corrupt(r, "record shorter than its fields");
bad:
  return rd_corrupt(r, "bad field value in record");
}

int lwt_next(lwt_reader_t *r, lwt_record_t *rec) {
  if (r->failed) return -1;
  for (;;) {
    if (r->chunk_p && r->chunk_p < r->chunk_end) {
      memset(rec, 0, sizeof *rec);
      int rc = rd_lane_record(r, rec);
      if (rc != 0) return rc;
      continue;
    }
    if (r->chunk_p) { /* chunk done: its bytes may now be released */
      for (int i = 0; i < LWT_NCOLS - 1; i++)
        if (r->colmap[i] == i && r->col[i] != r->col_end[i])
          return rd_corrupt(r, "chunk column longer than its records");
      r->dpos = (size_t)(r->chunk_end - r->dbuf);
      r->chunk_p = r->chunk_end = NULL;
    }
    if (!rd_need(r, 1)) {
      if (r->pending_err[0]) {
        snprintf(r->err, sizeof r->err, "%s: %s", r->name, r->pending_err);
        r->failed = 1;
        return -1;
      }
      return 0;
    }
    /* tag + length varint (at most 11 bytes); the record may end sooner */
    const uint8_t *p;
    uint64_t len;
    int vr;
    for (;;) {
      p = r->dbuf + r->dpos + 1;
      vr = lwt_get_varint(&p, r->dbuf + r->dlen, &len);
      if (vr != 0) break;
      if (!rd_fill(r)) return rd_fail_short(r, "record");
    }
    if (vr < 0 || len > RD_MAX_RECORD) return rd_corrupt(r, "bad record length");
    size_t hdr = (size_t)(p - (r->dbuf + r->dpos));
    if (!rd_need(r, hdr + (size_t)len)) return rd_fail_short(r, "record");
    unsigned tag = r->dbuf[r->dpos];
    const uint8_t *body = r->dbuf + r->dpos + hdr;
    memset(rec, 0, sizeof *rec);
    int rc = rd_toplevel(r, tag, body, body + len, rec);
    if (rc < 0) return rc;
    if (tag == LWT_TAG_CHUNK && r->chunk_p) continue; /* dpos moves when the chunk ends */
    r->dpos += hdr + (size_t)len;
    if (rc == 1) return 1;
  }
}

/* ---- names ----------------------------------------------------------- */

const char *lwt_op_name(unsigned op) {
  switch (op) {
  case LW_OP_MALLOC: return "malloc";
  case LW_OP_FREE: return "free";
  case LW_OP_CALLOC: return "calloc";
  case LW_OP_REALLOC: return "realloc";
  case LW_OP_REALLOCARRAY: return "reallocarray";
  case LW_OP_MEMALIGN: return "memalign";
  case LW_OP_POSIX_MEMALIGN: return "posix_memalign";
  case LW_OP_ALIGNED_ALLOC: return "aligned_alloc";
  case LW_OP_VALLOC: return "valloc";
  case LW_OP_PVALLOC: return "pvalloc";
  case LW_OP_FREE_SIZED: return "free_sized";
  case LW_OP_FREE_ALIGNED_SIZED: return "free_aligned_sized";
  default: return "?";
  }
}

const char *lwt_event_name(unsigned kind) {
  switch (kind) {
#define EV_NAME(name, code, a, b, c) \
  case code: return #name;
    LW_EVENT_LIST(EV_NAME)
#undef EV_NAME
  default: return "?";
  }
}

const char *lwt_event_arg_name(unsigned kind, unsigned i) {
  switch (kind) {
#define EV_ARG(name, code, a, b, c)          \
  case code: {                               \
    static const char *const n_[3] = {a, b, c}; \
    return i < 3 ? n_[i] : "";               \
  }
    LW_EVENT_LIST(EV_ARG)
#undef EV_ARG
  default: return "";
  }
}

const char *lwt_kind_name(unsigned kind) {
  switch (kind) {
#define KIND_NAME(name, code) \
  case code: return #name;
    LWT_KIND_LIST(KIND_NAME)
#undef KIND_NAME
  default: return "?";
  }
}
