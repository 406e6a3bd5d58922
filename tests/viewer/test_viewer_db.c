/* Checks an imported database through the viewer's own query layer:
 * the interval-indexed "live at seq" query must return exactly the blocks
 * a brute-force scan finds, at many seqs; seq_at must be monotonic and
 * agree with the calls table. Usage: test_viewer_db FILE.db */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "events.h"
#include "testhelper.h"

static const char *db_path;

static void brute(sqlite3 *db, uint64_t seq, uint64_t *count, uint64_t *bytes) {
  sqlite3_stmt *q;
  sqlite3_prepare_v2(db,
                     "SELECT count(*), coalesce(sum(size),0) FROM calls NOT INDEXED WHERE addr IS NOT NULL"
                     " AND seq <= ?1 AND (end_seq IS NULL OR end_seq > ?1)",
                     -1, &q, NULL);
  sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
  sqlite3_step(q);
  *count = (uint64_t)sqlite3_column_int64(q, 0);
  *bytes = (uint64_t)sqlite3_column_int64(q, 1);
  sqlite3_finalize(q);
}

TEST(live_at_matches_brute_force) {
  char err[512];
  lwv_db_t *d = lwv_db_open(db_path, err, sizeof err);
  if (d == NULL) fprintf(stderr, "%s\n", err);
  ASSERT(d != NULL);
  ASSERT(d->last_seq > 0);
  uint64_t probes[64];
  int n = 0;
  probes[n++] = 0;
  probes[n++] = d->last_seq;
  probes[n++] = d->peak_seq;
  for (int i = 1; n < 64; i++) probes[n++] = d->last_seq * (uint64_t)i / 61 + (uint64_t)(i % 3);
  for (int i = 0; i < n; i++) {
    size_t nlive = 0;
    const lwv_block_t *b = lwv_db_live_at(d, probes[i], &nlive);
    uint64_t bytes = 0, want_n, want_bytes;
    for (size_t k = 0; k < nlive; k++) bytes += b[k].size;
    brute(d->db, probes[i], &want_n, &want_bytes);
    EXPECT_EQ_U(nlive, want_n);
    EXPECT_EQ_U(bytes, want_bytes);
    if (probes[i] == d->peak_seq) EXPECT_EQ_U(bytes, d->peak_live);
  }
  uint64_t prev = 0;
  for (int x = 0; x <= 100; x++) {
    uint64_t t = d->end_ns * (uint64_t)x / 100, s = lwv_db_seq_at(d, t);
    EXPECT(s >= prev);
    prev = s;
  }
  EXPECT_EQ_U(lwv_db_seq_at(d, d->end_ns), d->ti[d->nti - 1].seq1);
  lwv_db_close(d);
}

/* Removes [c0, c1) from every range of out[0..*n) (splitting as needed). */
static void naive_cut(lwv_region_t *out, size_t *n, size_t max, uint64_t c0, uint64_t c1) {
  for (size_t i = 0; i < *n; i++) {
    uint64_t s0 = out[i].addr, s1 = out[i].addr + out[i].bytes;
    if (s1 <= c0 || s0 >= c1) continue;
    if (s0 < c0 && s1 > c1 && *n < max) out[(*n)++] = (lwv_region_t){c1, s1 - c1};
    if (s0 < c0) out[i].bytes = c0 - s0;
    else if (s1 > c1) out[i] = (lwv_region_t){c1, s1 - c1};
    else out[i--] = out[--*n];
  }
}

/* The OS mappings after seq by the plainest replay over an unsorted list. */
static size_t naive_regions(sqlite3 *db, uint64_t seq, lwv_region_t *out, size_t max) {
  sqlite3_stmt *q;
  sqlite3_prepare_v2(db,
                     "SELECT e.kind, e.a, e.b, e.c FROM allocator_events e JOIN event_kinds k"
                     " ON k.kind = e.kind WHERE k.name IN ('OS_MAP','OS_UNMAP','OS_REMAP')"
                     " AND e.seq <= ? ORDER BY e.seq",
                     -1, &q, NULL);
  sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
  size_t n = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    int kind = sqlite3_column_int(q, 0);
    uint64_t a = (uint64_t)sqlite3_column_int64(q, 1), b = (uint64_t)sqlite3_column_int64(q, 2),
             c = (uint64_t)sqlite3_column_int64(q, 3);
    if (kind == LW_EV_OS_REMAP) {
      for (size_t i = 0; i < n; i++)
        if (out[i].addr == a) {
          naive_cut(out, &n, max, a, a + out[i].bytes);
          break;
        }
      a = b; /* then map the new place */
      b = c;
      kind = LW_EV_OS_MAP;
    }
    naive_cut(out, &n, max, a, a + b);
    if (kind == LW_EV_OS_MAP && b > 0 && n < max) out[n++] = (lwv_region_t){a, b};
  }
  sqlite3_finalize(q);
  return n;
}

TEST(regions_match_naive_replay) {
  char err[512];
  lwv_db_t *d = lwv_db_open(db_path, err, sizeof err);
  ASSERT(d != NULL);
  static lwv_region_t want[1 << 16];
  for (int i = 0; i <= 40; i++) {
    uint64_t seq = d->last_seq * (uint64_t)i / 40;
    size_t n = 0, nw = naive_regions(d->db, seq, want, sizeof want / sizeof want[0]);
    lwv_region_t *got = lwv_db_regions_at(d, seq, &n);
    uint64_t got_bytes = 0, want_bytes = 0;
    for (size_t k = 0; k < n; k++) got_bytes += got[k].bytes;
    for (size_t k = 0; k < nw; k++) want_bytes += want[k].bytes;
    EXPECT_EQ_U(got_bytes, want_bytes);
    EXPECT_EQ_U(n, nw);
    for (size_t k = 1; k < n; k++) EXPECT(got[k - 1].addr + got[k - 1].bytes <= got[k].addr);
    free(got);
  }
  lwv_db_close(d);
}

TEST(range_sites_match_group_by) {
  char err[512];
  lwv_db_t *d = lwv_db_open(db_path, err, sizeof err);
  ASSERT(d != NULL);
  sqlite3_stmt *q;
  sqlite3_prepare_v2(d->db,
                     "SELECT coalesce(stack_id,0), count(*), sum(size), sum(end_seq IS NULL)"
                     " FROM blocks WHERE seq BETWEEN ? AND ? GROUP BY 1",
                     -1, &q, NULL);
  uint64_t ranges[][2] = {{0, d->last_seq},          {1, 1},
                          {d->last_seq / 3, d->last_seq / 2}, {d->last_seq / 2, d->last_seq / 2 + 5},
                          {17, d->last_seq - 17},   {d->peak_seq, d->last_seq}};
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
    size_t n = 0;
    lwv_site_t *got = lwv_db_sites(d, 0, ranges[r][0], ranges[r][1], &n);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)ranges[r][0]);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)ranges[r][1]);
    size_t rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      rows++;
      uint32_t id = (uint32_t)sqlite3_column_int64(q, 0);
      const lwv_site_t *s = NULL;
      for (size_t i = 0; i < n; i++)
        if (got[i].stack_id == id) s = &got[i];
      EXPECT(s != NULL);
      if (s == NULL) continue;
      EXPECT_EQ_U(s->allocs, sqlite3_column_int64(q, 1));
      EXPECT_EQ_U(s->bytes, sqlite3_column_int64(q, 2));
      EXPECT_EQ_U(s->leaked, sqlite3_column_int64(q, 3));
    }
    sqlite3_reset(q);
    EXPECT_EQ_U(n, rows);
    free(got);
  }
  sqlite3_finalize(q);
  lwv_db_close(d);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_viewer_db FILE.db\n");
    return 2;
  }
  db_path = argv[1];
  return lw_test_main(1, argv);
}
