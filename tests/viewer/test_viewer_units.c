/* Unit tests of lwview's building blocks: the u64 hash map (against a
 * plain array), ELF symbol lookup (on this very executable), the database
 * path rule and the live-page reader (against a page written here). */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"
#include "import.h"
#include "live.h"
#include "testhelper.h"
#include "u64map.h"

TEST(u64map_matches_array) {
  enum { KEYS = 5000, OPS = 200000 };
  static uint64_t truth[KEYS]; /* 0 = absent, else value + 1 */
  u64map_t m = {0};
  uint64_t s = 12345;
  for (int i = 0; i < OPS; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t k = (s >> 33) % KEYS;
    uint64_t key = k * 4096 + 16; /* address-like keys collide in low bits */
    if ((s >> 20) % 3 == 0) {
      EXPECT_EQ_U(u64map_del(&m, key), truth[k] != 0);
      truth[k] = 0;
    } else {
      int added;
      uint64_t *v = u64map_put(&m, key, &added);
      ASSERT(v != NULL);
      EXPECT_EQ_U(added, truth[k] == 0);
      *v = i;
      truth[k] = (uint64_t)i + 1;
    }
  }
  size_t present = 0;
  for (int k = 0; k < KEYS; k++) {
    uint64_t *v = u64map_get(&m, (uint64_t)k * 4096 + 16);
    if (truth[k]) {
      present++;
      ASSERT(v != NULL);
      EXPECT_EQ_U(*v, truth[k] - 1);
    } else {
      EXPECT(v == NULL);
    }
  }
  EXPECT_EQ_U(m.len, present);
  u64map_free(&m);
}

/* A function to look up by address. */
__attribute__((noinline)) int lwv_unit_marker_function(int x) { return x * 3 + 1; }

static int first_bias(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  *(uint64_t *)arg = info->dlpi_addr; /* the first object is the program */
  return 1;
}

TEST(elfsym_finds_own_function) {
  elfsym_t *e = elfsym_load("/proc/self/exe", NULL);
  ASSERT(e != NULL);
  EXPECT(elfsym_count(e) > 10);
  uint64_t bias = 0, off = 99;
  dl_iterate_phdr(first_bias, &bias);
  uint64_t addr = (uint64_t)(uintptr_t)&lwv_unit_marker_function - bias;
  const char *name = elfsym_lookup(e, addr + 2, &off);
  ASSERT(name != NULL);
  EXPECT(strcmp(name, "lwv_unit_marker_function") == 0);
  EXPECT_EQ_U(off, 2);
  EXPECT(elfsym_lookup(e, 1, &off) == NULL); /* below every symbol */
  /* the build-id recorded must be the file's: the same loads, another not */
  char id[160];
  snprintf(id, sizeof id, "%s", elfsym_build_id(e));
  elfsym_free(e);
  ASSERT(strlen(id) >= 16); /* gcc and clang link with --build-id here */
  e = elfsym_load("/proc/self/exe", id);
  EXPECT(e != NULL && elfsym_count(e) > 10);
  elfsym_free(e);
  id[0] = id[0] == '0' ? '1' : '0';
  EXPECT(elfsym_load("/proc/self/exe", id) == NULL);
  EXPECT(elfsym_load("/nonexistent/file", NULL) == NULL);
  EXPECT(elfsym_load("/etc/hostname", NULL) == NULL); /* not ELF */
}

TEST(db_path_rule) {
  char out[256];
  lwv_db_path_for("a/prog.123.lwt.zst", out, sizeof out);
  EXPECT(strcmp(out, "a/prog.123.db") == 0);
  lwv_db_path_for("x.zst", out, sizeof out);
  EXPECT(strcmp(out, "x.db") == 0);
  lwv_db_path_for("trace", out, sizeof out);
  EXPECT(strcmp(out, "trace.db") == 0);
}

TEST(live_read_sees_consistent_page) {
  static lw_live_page_t page, copy;
  page.magic = LW_LIVE_MAGIC;
  page.live_bytes = 123;
  page.seq = 2;
  EXPECT_EQ_U(lw_live_read(&page, &copy, 5), 0);
  EXPECT_EQ_U(copy.live_bytes, 123);
  page.seq = 3; /* writer inside: the reader gives up after its tries */
  EXPECT_EQ_U(lw_live_read(&page, &copy, 5), (uint64_t)-1);
  char err[256];
  lwv_live_t l;
  EXPECT(lwv_live_attach(0, &l, err, sizeof err) != 0);
  EXPECT(strstr(err, "no such process") != NULL);
}

TEST_MAIN()
