/* Out of memory: under RLIMIT_AS, allocation fails with ENOMEM, and once
 * everything is freed the allocator works again. */
#include "api.h"
#include <sys/resource.h>

#define HEADROOM ((size_t)256 << 20)

/* Current address-space size of this process in bytes. */
static size_t vm_size(void) {
  unsigned long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Allocates `size`-byte blocks (chained through their first word) until
 * NULL, or past twice the headroom (the limit is then not enforced). */
static void **exhaust(size_t size, size_t *count, int *saw_enomem) {
  void **head = NULL;
  *count = 0;
  *saw_enomem = 0;
  for (;;) {
    errno = 0;
    void **p = malloc(lwtest_size(size));
    if (!p) {
      *saw_enomem = errno == ENOMEM;
      return head;
    }
    *p = head;
    head = p;
    if (++*count * size > 2 * HEADROOM) return head;
  }
}

static void release(void **head) {
  while (head) {
    void **next = *head;
    free(head);
    head = next;
  }
}

/* Returns 0 when the address-space limit could not be set (as under
 * qemu-user, which accepts RLIMIT_AS but does not apply it). */
static int limit_address_space(void) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_AS, &lim) != 0) return 0;
  lim.rlim_cur = vm_size() + HEADROOM;
  if (setrlimit(RLIMIT_AS, &lim) != 0) return 0;
  /* Probe: one mapping larger than the limit must fail. */
  void *probe = malloc(lwtest_size(HEADROOM * 2));
  if (probe) {
    free(probe);
    return 0;
  }
  return 1;
}

TEST(allocation_fails_cleanly_and_recovers) {
  if (!limit_address_space()) {
    fprintf(stderr, "RLIMIT_AS is not enforced here: skipped\n");
    return;
  }
  const size_t sizes[] = {(size_t)1 << 20, 100000, 3000, 64, 16};
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n;
      int enomem;
      void **blocks = exhaust(sizes[i], &n, &enomem);
      if (!enomem) fprintf(stderr, "size %zu: %zu blocks, then no ENOMEM\n", sizes[i], n);
      EXPECT(enomem);
      if (n * sizes[i] < HEADROOM / 4) fprintf(stderr, "round %d size %zu: only %zu blocks\n", round, sizes[i], n);
      EXPECT(n * sizes[i] >= HEADROOM / 4); /* the limit, not the allocator, ran out */
      /* While exhausted, failed calls keep failing cleanly. */
      errno = 0;
      void *c = calloc(lwtest_size(1000), 1000);
      EXPECT(c != NULL || errno == ENOMEM);
      free(c);
      release(blocks);
      void *p = malloc(lwtest_size(sizes[i]));
      EXPECT(p != NULL);
      free(p);
    }
  }
  /* After all of that, a mixed workload runs normally again. */
  void **blocks = NULL;
  for (int i = 0; i < 1000; i++) {
    void **p = malloc(lwtest_size((size_t)(i % 17) * 1000 + 8));
    ASSERT(p != NULL);
    *p = blocks;
    blocks = p;
  }
  release(blocks);
}

TEST_MAIN()
