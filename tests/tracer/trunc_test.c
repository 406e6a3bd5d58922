/* Reader robustness on a real multi-frame trace (argv[1]):
 *  - cut at every frame boundary: a clean end, and exactly the records of
 *    the frames before the cut, in order;
 *  - cut inside every frame (first byte, middle, last byte): every record
 *    before the frame, then -1 and a one-line "NAME: offset N: ..." error;
 *  - one corrupted byte at many places: no crash, the records of the
 *    frames before the damage intact, and a clean error or end;
 *  - a header of a newer major version is refused.
 * Built with the fuzzer's sanitizers when available (see CMakeLists). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../testhelper.h"
#include "trace_read.h"

static unsigned char *trace;
static size_t trace_size;
static uint64_t *sig; /* signature of every record of the whole trace */
static size_t nsig;
static size_t frame_off[4096];
static size_t nframes;

/* Identity of a record: common fields, plus the call's (other kinds hold
 * pointers into the reader's buffers, which differ between readers). */
static uint64_t signature(const lwt_record_t *r) {
  uint64_t h = r->kind * 0x9E3779B97F4A7C15ull;
  uint64_t v[] = {r->seq, r->time_ns, r->tid, 0, 0, 0, 0, 0};
  if (r->kind == LWT_CALL) {
    v[3] = r->call.op;
    v[4] = r->call.size;
    v[5] = r->call.in_ptr;
    v[6] = r->call.out_ptr;
    v[7] = r->call.stack_id;
  } else if (r->kind == LWT_STACK) {
    v[3] = r->stack.id;
    v[4] = r->stack.depth;
  }
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) h = (h ^ v[i]) * 0x100000001B3ull;
  return h;
}

/* Reads [0, size) of data; returns rc of the last lwt_next, the number of
 * records and whether they were a prefix of the full trace. */
static int read_prefix(const unsigned char *data, size_t size, size_t *count, int *prefix,
                       char *err, size_t errlen) {
  char oerr[1024];
  *count = 0;
  *prefix = 1;
  err[0] = 0;
  lwt_reader_t *r = lwt_open_mem(data, size, "cut.lwt.zst", oerr, sizeof oerr);
  if (!r) {
    snprintf(err, errlen, "%s", oerr);
    return -2;
  }
  lwt_record_t rec;
  int rc;
  while ((rc = lwt_next(r, &rec)) == 1) {
    if (*count >= nsig || sig[*count] != signature(&rec)) *prefix = 0;
    (*count)++;
  }
  if (rc < 0) snprintf(err, errlen, "%s", lwt_error(r));
  lwt_close(r);
  return rc;
}

static int error_well_formed(const char *err) {
  return strncmp(err, "cut.lwt.zst: offset ", 20) == 0 && strchr(err, '\n') == NULL;
}

TEST(full_trace_reads_cleanly) {
  char err[1024];
  lwt_reader_t *r = lwt_open_mem(trace, trace_size, "full", err, sizeof err);
  ASSERT(r != NULL);
  lwt_record_t rec;
  int rc;
  size_t cap = 1024;
  sig = malloc(cap * sizeof *sig);
  while ((rc = lwt_next(r, &rec)) == 1) {
    if (nsig == cap) sig = realloc(sig, (cap *= 2) * sizeof *sig);
    sig[nsig++] = signature(&rec);
  }
  EXPECT(rc == 0);
  lwt_close(r);
  for (size_t off = 0; off < trace_size && nframes < 4096;) {
    size_t n = ZSTD_findFrameCompressedSize(trace + off, trace_size - off);
    ASSERT(!ZSTD_isError(n));
    frame_off[nframes++] = off;
    off += n;
  }
  fprintf(stderr, "  %zu records in %zu frames, %zu bytes\n", nsig, nframes, trace_size);
  EXPECT(nframes >= 3);
}

TEST(cut_at_every_frame_boundary) {
  size_t last = 0;
  for (size_t f = 1; f <= nframes; f++) {
    size_t cut = f < nframes ? frame_off[f] : trace_size, count;
    int prefix;
    char err[1024];
    int rc = read_prefix(trace, cut, &count, &prefix, err, sizeof err);
    EXPECT(rc == 0);
    EXPECT(prefix);
    EXPECT(count >= last);
    if (rc != 0) fprintf(stderr, "  cut at %zu: %s\n", cut, err);
    last = count;
  }
  EXPECT_EQ_U(last, nsig);
}

TEST(cut_inside_every_frame) {
  for (size_t f = 0; f < nframes; f++) {
    size_t start = frame_off[f], end = f + 1 < nframes ? frame_off[f + 1] : trace_size;
    size_t before = 0; /* records of the frames before f */
    if (f > 0) {
      int prefix;
      char err[1024];
      read_prefix(trace, start, &before, &prefix, err, sizeof err);
    }
    size_t cuts[] = {start + 1, start + (end - start) / 2, end - 1};
    for (size_t c = 0; c < 3; c++) {
      size_t count;
      int prefix;
      char err[1024];
      int rc = read_prefix(trace, cuts[c], &count, &prefix, err, sizeof err);
      if (f == 0 && rc == -2) { /* the header itself was cut */
        EXPECT(strstr(err, "offset") != NULL);
        continue;
      }
      EXPECT(rc == -1);
      EXPECT(prefix);
      EXPECT(count >= before);
      EXPECT(error_well_formed(err));
      if (rc != -1 || !error_well_formed(err)) fprintf(stderr, "  cut at %zu: rc %d '%s'\n", cuts[c], rc, err);
    }
  }
}

TEST(corrupt_bytes_never_crash) {
  unsigned char *copy = malloc(trace_size);
  size_t step = trace_size / 200 + 1;
  for (size_t pos = 0; pos < trace_size; pos += step) {
    memcpy(copy, trace, trace_size);
    copy[pos] ^= 0x5a;
    size_t f = 0;
    while (f + 1 < nframes && frame_off[f + 1] <= pos) f++;
    size_t before = 0, count;
    int prefix;
    char err[1024];
    if (f > 0) read_prefix(trace, frame_off[f], &before, &prefix, err, sizeof err);
    int rc = read_prefix(copy, trace_size, &count, &prefix, err, sizeof err);
    EXPECT(rc == 0 || rc == -1 || rc == -2);
    if (rc == -1) EXPECT(error_well_formed(err));
    if (rc != -2) {
      /* everything before the damaged frame comes out intact */
      size_t good = 0;
      lwt_reader_t *r = lwt_open_mem(copy, trace_size, "cut.lwt.zst", err, sizeof err);
      lwt_record_t rec;
      while (r && good < before && lwt_next(r, &rec) == 1 && sig[good] == signature(&rec)) good++;
      lwt_close(r);
      EXPECT_EQ_U(good, before);
    }
  }
  free(copy);
}

TEST(newer_major_version_is_refused) {
  unsigned char hdr[LWT_HEADER_FIXED_SIZE] = {0};
  memcpy(hdr, LWT_MAGIC, LWT_MAGIC_SIZE);
  hdr[8] = LWT_VERSION_MAJOR + 1;
  hdr[12] = LWT_HEADER_FIXED_SIZE;
  unsigned char z[256];
  size_t n = ZSTD_compress(z, sizeof z, hdr, sizeof hdr, 1);
  ASSERT(!ZSTD_isError(n));
  char err[1024];
  lwt_reader_t *r = lwt_open_mem(z, n, "new.lwt.zst", err, sizeof err);
  EXPECT(r == NULL);
  EXPECT(strstr(err, "unsupported format version") != NULL);
  lwt_close(r);
  r = lwt_open_mem("garbage!", 8, "junk", err, sizeof err);
  EXPECT(r == NULL);
  EXPECT(strncmp(err, "junk: offset 0: ", 16) == 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: trunc_test TRACE [TEST]\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  fseek(f, 0, SEEK_END);
  trace_size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  trace = malloc(trace_size);
  if (fread(trace, 1, trace_size, f) != trace_size) return 2;
  fclose(f);
  return lw_test_main(argc - 1, argv + 1);
}
