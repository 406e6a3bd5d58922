/* malloc_trim, mallinfo2, the __libc_* aliases, free_sized. */
#include "api.h"

TEST(malloc_trim_returns_and_allocator_still_works) {
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(lwtest_size((size_t)(i % 50) * 100 + 1));
    ASSERT(p[i] != NULL);
  }
  for (int i = 0; i < N; i++) free(p[i]);
  int rc = malloc_trim(0);
  EXPECT(rc == 0 || rc == 1);
  rc = malloc_trim(1 << 20);
  EXPECT(rc == 0 || rc == 1);
  void *q = malloc(lwtest_size(5000));
  EXPECT(q != NULL);
  lwtest_fill(q, 5000, 9);
  EXPECT(lwtest_verify(q, 5000, 9) == 5000);
  free(q);
}

/* Bytes in use as mallinfo2 counts them: heap blocks plus mapped blocks. */
static size_t in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

TEST(mallinfo2_follows_allocations) {
  enum { N = 64, SIZE = 64 * 1024 };
  static void *p[N];
  size_t before = in_use();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(lwtest_size(SIZE));
    ASSERT(p[i] != NULL);
  }
  size_t during = in_use();
  struct mallinfo2 mi = mallinfo2();
  if (during < before + (size_t)N * SIZE)
    fprintf(stderr, "mallinfo2 in use %zu -> %zu after %d KiB\n", before, during, N * SIZE / 1024);
  EXPECT(during >= before + (size_t)N * SIZE);
  EXPECT(mi.arena + mi.hblkhd >= mi.uordblks); /* used bytes lie within obtained space */
  for (int i = 0; i < N; i++) free(p[i]);
  size_t after = in_use();
  EXPECT(after + (size_t)N * SIZE / 2 <= during);
}

/* glibc-internal callers and some programs call __libc_malloc & co
 * directly; they must reach the same allocator as malloc, or a block
 * crosses allocators on free. */
typedef void *malloc_fn(size_t);
typedef void free_fn(void *);
typedef void *calloc_fn(size_t, size_t);
typedef void *realloc_fn(void *, size_t);
typedef void *memalign_fn(size_t, size_t);

TEST(libc_aliases_reach_the_same_allocator) {
  const char *names[] = {"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign"};
  const char *malloc_owner = lwtest_owner_of("malloc");
  int same = 1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *owner = lwtest_owner_of(names[i]);
    if (strcmp(owner, malloc_owner) != 0) {
      fprintf(stderr, "%s resolves to %s but malloc to %s\n", names[i], owner, malloc_owner);
      same = 0;
    }
  }
  ASSERT(same); /* crossing allocators below would crash */
  malloc_fn *lmalloc = (malloc_fn *)dlsym(RTLD_DEFAULT, "__libc_malloc");
  free_fn *lfree = (free_fn *)dlsym(RTLD_DEFAULT, "__libc_free");
  calloc_fn *lcalloc = (calloc_fn *)dlsym(RTLD_DEFAULT, "__libc_calloc");
  realloc_fn *lrealloc = (realloc_fn *)dlsym(RTLD_DEFAULT, "__libc_realloc");
  memalign_fn *lmemalign = (memalign_fn *)dlsym(RTLD_DEFAULT, "__libc_memalign");

  void *a = lmalloc(200); /* __libc_malloc -> free */
  ASSERT(a != NULL);
  EXPECT(malloc_usable_size(a) >= 200);
  lwtest_fill(a, 200, 1);
  a = lrealloc(a, 5000);
  ASSERT(a != NULL);
  EXPECT(lwtest_verify(a, 200, 1) == 200);
  free(a);

  void *b = malloc(lwtest_size(300)); /* malloc -> __libc_free */
  ASSERT(b != NULL);
  lfree(b);

  unsigned char *c = lcalloc(10, 10);
  ASSERT(c != NULL);
  EXPECT(lwtest_all_zero(c, 100));
  EXPECT(malloc_usable_size(c) >= 100);
  free(c);

  void *d = lmemalign(4096, 100);
  ASSERT(d != NULL);
  EXPECT(lwtest_aligned(d, 4096));
  EXPECT(malloc_usable_size(d) >= 100);
  lfree(d);
}

/* Every allocator entry point a program can reach must belong to the same
 * allocator as malloc: one left to the C library would hand it a block it
 * never allocated (malloc_usable_size, say, or valloc). */
TEST(exported_names_resolve_to_one_allocator) {
  const char *names[] = {"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
                         "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
                         "malloc_trim", "mallinfo", "mallinfo2", "__libc_malloc", "__libc_free",
                         "__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
                         "__libc_pvalloc", "cfree"};
  const char *malloc_owner = lwtest_owner_of("malloc");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!dlsym(RTLD_DEFAULT, names[i])) {
      /* cfree is a compatibility-only symbol in glibc >= 2.26. */
      if (strcmp(names[i], "cfree") != 0) fprintf(stderr, "%s does not resolve\n", names[i]);
      EXPECT(strcmp(names[i], "cfree") == 0);
      continue;
    }
    const char *owner = lwtest_owner_of(names[i]);
    if (strcmp(owner, malloc_owner) != 0) fprintf(stderr, "%s resolves to %s, malloc to %s\n", names[i], owner, malloc_owner);
    EXPECT(strcmp(owner, malloc_owner) == 0);
  }
}

TEST(libc_valloc_pvalloc_cfree) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  malloc_fn *lvalloc = (malloc_fn *)dlsym(RTLD_DEFAULT, "__libc_valloc");
  malloc_fn *lpvalloc = (malloc_fn *)dlsym(RTLD_DEFAULT, "__libc_pvalloc");
  free_fn *cfree_ = (free_fn *)dlsym(RTLD_DEFAULT, "cfree");
  ASSERT(lvalloc && lpvalloc);
  ASSERT(!strcmp(lwtest_owner_of("__libc_valloc"), lwtest_owner_of("malloc")));
  ASSERT(!strcmp(lwtest_owner_of("__libc_pvalloc"), lwtest_owner_of("malloc")));
  void *v = lvalloc(100);
  ASSERT(v != NULL);
  EXPECT(lwtest_aligned(v, pg));
  free(v);
  void *pv = lpvalloc(100);
  ASSERT(pv != NULL);
  EXPECT(lwtest_aligned(pv, pg) && malloc_usable_size(pv) >= pg);
  free(pv);
  if (cfree_ && !strcmp(lwtest_owner_of("cfree"), lwtest_owner_of("malloc"))) cfree_(malloc(lwtest_size(77)));
}

/* The old mallinfo (int fields, deprecated but exported) follows
 * allocations as mallinfo2 does. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(mallinfo_follows_allocations) {
  enum { N = 16, SIZE = 64 * 1024 };
  void *p[N];
  struct mallinfo before = mallinfo();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(lwtest_size(SIZE));
    ASSERT(p[i] != NULL);
  }
  struct mallinfo during = mallinfo();
  long grew = (long)(during.uordblks + during.hblkhd) - (long)(before.uordblks + before.hblkhd);
  EXPECT(grew >= (long)N * SIZE);
  for (int i = 0; i < N; i++) free(p[i]);
}
#pragma GCC diagnostic pop

/* C23 free_sized / free_aligned_sized: tested where the allocator in use
 * exports them (glibc 2.36 does not). */
TEST(free_sized_when_exported) {
  free_fn *unused = NULL;
  (void)unused;
  void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  void (*fas)(void *, size_t, size_t) = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  if (!fs || !fas) {
    fprintf(stderr, "free_sized/free_aligned_sized not exported by %s: skipped\n", lwtest_owner_of("malloc"));
    return;
  }
  const size_t sizes[] = {0, 1, 100, 1000, 5000, 200000, (size_t)3 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fs(malloc(lwtest_size(sizes[i])), sizes[i]);
    fs(calloc(lwtest_size(sizes[i]), 1), sizes[i]);
    fas(aligned_alloc(256, lwtest_size(sizes[i] * 256)), 256, sizes[i] * 256);
  }
  fs(NULL, 10);
  fas(NULL, 64, 64);
  void *p = malloc(lwtest_size(64));
  EXPECT(p != NULL);
  free(p);
}

TEST_MAIN()
