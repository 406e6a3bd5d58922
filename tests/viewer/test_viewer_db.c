/* Checks an imported database through the viewer's own query layer:
 * the interval-indexed "live at seq" query must return exactly the blocks
 * a brute-force scan finds, at many seqs; seq_at must be monotonic and
 * agree with the calls table. Usage: test_viewer_db FILE.db */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
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

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_viewer_db FILE.db\n");
    return 2;
  }
  db_path = argv[1];
  return lw_test_main(1, argv);
}
