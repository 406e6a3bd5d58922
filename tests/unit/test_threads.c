/* Threads: remote frees, FULL/NOTIFIED pages, tld hand-off at exit. */
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "testhelper.h"

enum { N = 30000 };
static void *slots[N];

static void *alloc_all(void *arg) {
  size_t sz = (size_t)(uintptr_t)arg;
  for (int i = 0; i < N; i++) {
    slots[i] = lw_malloc(sz);
    memset(slots[i], 0x5a, sz);
  }
  return NULL;
}

static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) lw_free(slots[i]);
  return NULL;
}

static uint64_t used_of(size_t sz) {
  lw_stats_t s;
  lw_stats(&s);
  return s.classes[lw_size_class(sz)].slots_used;
}

TEST(frees_from_another_thread_come_back) {
  for (size_t sz = 16; sz <= 2048; sz *= 2) {
    uint64_t before = used_of(sz);
    pthread_t a, b;
    pthread_create(&a, NULL, alloc_all, (void *)(uintptr_t)sz);
    pthread_join(a, NULL);
    /* thread a has exited: its tld is abandoned with FULL pages */
    pthread_create(&b, NULL, free_all, NULL);
    pthread_join(b, NULL);
    /* a new thread adopts the tld and reuses the remotely freed slots */
    pthread_create(&a, NULL, alloc_all, (void *)(uintptr_t)sz);
    pthread_join(a, NULL);
    EXPECT(used_of(sz) <= before + N + 64);
    free_all(NULL);
    lw_check();
  }
}

static void *owner_allocs_while_other_frees(void *arg) {
  (void)arg;
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < N / 10; i++) {
      void *old = __atomic_exchange_n(&slots[i], lw_malloc(48), __ATOMIC_ACQ_REL);
      if (old) lw_free(old);
    }
  }
  return NULL;
}

TEST(concurrent_owner_and_remote) {
  memset(slots, 0, sizeof slots);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, owner_allocs_while_other_frees, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < N / 10; i++) lw_free(slots[i]);
  lw_check();
}

static void *short_lived(void *arg) {
  (void)arg;
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = lw_malloc(16 + (size_t)i * 30);
  for (int i = 0; i < 100; i++) lw_free(p[i]);
  return NULL;
}

TEST(trim_returns_pages_that_remote_frees_emptied_after_their_thread_exited) {
  lw_trim(0);
  uint64_t before = used_of(512);
  pthread_t a, b;
  pthread_create(&a, NULL, alloc_all, (void *)(uintptr_t)512);
  pthread_join(a, NULL);
  pthread_create(&b, NULL, free_all, NULL); /* frees into an exited thread's pages */
  pthread_join(b, NULL);
  EXPECT(used_of(512) > before); /* still counted: nobody collected them */
  lw_trim(0);
  EXPECT(used_of(512) <= before);
  lw_check();
}

TEST(thread_churn_reuses_thread_data) {
  for (int i = 0; i < 300; i++) {
    pthread_t t;
    pthread_create(&t, NULL, short_lived, NULL);
    pthread_join(t, NULL);
  }
  lw_stats_t s;
  lw_stats(&s);
  EXPECT(s.threads <= 3);
  lw_check();
}

TEST_MAIN()
