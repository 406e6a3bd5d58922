/* lw_check() on a thread whose pool pages hold blocks that another thread
 * has freed (remote frees not yet collected by the owner): a valid state,
 * so the checker must accept it. */
#define LWTEST_NO_ALLOCATOR_CHECK
#include "api.h"
#include "lwmalloc.h"
#include <pthread.h>

enum { NBLOCKS = 2000 };
static void *blocks[NBLOCKS];

static void *free_them(void *arg) {
  (void)arg;
  for (int i = 0; i < NBLOCKS; i++) lw_free(blocks[i]);
  return NULL;
}

TEST(check_accepts_pending_remote_frees) {
  for (int i = 0; i < NBLOCKS; i++) {
    blocks[i] = lw_malloc(lwtest_size(32 + (size_t)(i % 4) * 16));
    ASSERT(blocks[i] != NULL);
  }
  pthread_t t;
  ASSERT(pthread_create(&t, NULL, free_them, NULL) == 0);
  pthread_join(t, NULL);
  /* No allocation on this thread in between: the remote frees are pending. */
  EXPECT(lw_check() == 0);
  /* Collected by the next allocations, and checked again. */
  for (int i = 0; i < NBLOCKS; i++) blocks[i] = lw_malloc(48);
  EXPECT(lw_check() == 0);
  for (int i = 0; i < NBLOCKS; i++) lw_free(blocks[i]);
  EXPECT(lw_check() == 0);
}

TEST_MAIN()
