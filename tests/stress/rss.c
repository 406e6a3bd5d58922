/* Memory goes back to the OS: rss [MiB]
 *
 * For small, medium and large blocks in turn: allocate and touch MiB
 * mebibytes (default 192) of them, free them all in a scrambled order, and
 * call malloc_trim(0). Resident memory must then come back to within a
 * slack of where it started: a long-running daemon's RSS has to follow its
 * live set. The RSS right after the frees, before malloc_trim, is printed
 * for information (how much the allocator returns on its own). */
#define _GNU_SOURCE
#include <malloc.h>
#include <unistd.h>

#include "stress_common.h"

#define SLACK_MIB 24

/* VmRSS in KiB: /proc/self/status states it in kB whatever the page size
 * (statm counts pages, and under qemu-user those are the host's). */
static long rss_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* Returns 1 when RSS came back within the slack. */
static int cycle(const char *kind, size_t min, size_t max, size_t total) {
  size_t cap = total / min + 1, n = 0, sum = 0;
  void **blocks = calloc(cap, sizeof *blocks);
  if (!blocks) return 0;
  long base = rss_kib();
  uint64_t rng = 7;
  while (sum < total && n < cap) {
    size_t size = min + (size_t)(rng_next(&rng) % (max - min + 1));
    void *p = malloc(size);
    if (!p) break;
    memset(p, 0x5a, size);
    blocks[n++] = p;
    sum += size;
  }
  long peak = rss_kib();
  for (size_t k = 0; k < n; k++) {
    size_t i = (size_t)((k * 2654435761u) % n);
    free(blocks[i]);
    blocks[i] = NULL;
  }
  for (size_t i = 0; i < n; i++) free(blocks[i]); /* the ones the scramble missed */
  long after_free = rss_kib();
  malloc_trim(0);
  long after_trim = rss_kib();
  free(blocks);
  int ok = after_trim <= base + SLACK_MIB * 1024;
  printf("%-7s %8zu blocks %5zu MiB: RSS base %6ld  peak %7ld  after free %7ld  after trim %7ld KiB  %s\n",
         kind, n, sum >> 20, base, peak, after_free, after_trim, ok ? "ok" : "FAIL");
  return ok;
}

int main(int argc, char **argv) {
  require_allocator();
  size_t total = (size_t)arg_or(argc, argv, 1, 192) << 20;
  int passed = 0, failed = 0;
  if (cycle("small", 16, 256, total / 2)) passed++; else failed++;
  if (cycle("medium", 1024, 65536, total)) passed++; else failed++;
  if (cycle("large", 256 * 1024, 2 << 20, total)) passed++; else failed++;
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
