/* Per-thread data. A thread's first allocation gives it a tld: an
 * abandoned one if any (adopting the pages it still owns), else a new one.
 * At thread exit (a pthread key destructor) the tld gives its empty pages
 * back and waits, abandoned, for the next new thread. The pages it keeps
 * still receive remote frees meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Threads that have not allocated yet see _lw_tld_empty: every class
 * points at the empty page, so the fast path falls into the slow path,
 * which makes the real tld. */
lw_tld_t _lw_tld_empty = {.cur = {[0 ... LW_NCLASSES - 1] = &_lw_page_empty},
                          .nhot = {[0 ... LW_NCLASSES - 1] = 255}};
__thread lw_tld_t *_lw_tld __attribute__((tls_model("initial-exec"))) = &_lw_tld_empty;

static struct {
  pthread_mutex_t lock;
  lw_tld_t *all;       /* every tld ever made, newest first */
  lw_tld_t *abandoned; /* tlds of exited threads, ready for adoption */
  uint32_t count;
  pthread_key_t key;
  _Atomic int key_ready; /* the key exists (start-up phase two) */
  uint8_t *meta;         /* bump area for tld structs */
  size_t meta_left;
} threads = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0, 0, NULL, 0};

static void thread_exit(void *arg) {
  lw_tld_t *tld = arg;
  if (!tld || tld != _lw_tld) return;
  _lw_pool_abandon(tld);
  _lw_tld = &_lw_tld_empty;
  lw_lock(&threads.lock);
  tld->alive = 0;
  tld->next_free = threads.abandoned;
  threads.abandoned = tld;
  lw_unlock(&threads.lock);
}

int _lw_thread_init(void) {
  int rc = pthread_key_create(&threads.key, thread_exit);
  if (rc == 0) atomic_store(&threads.key_ready, 1);
  return rc;
}

static void tld_reset_classes(lw_tld_t *tld) {
  for (unsigned c = 0; c < LW_NCLASSES; c++) tld->cur[c] = &_lw_page_empty;
}

lw_tld_t *_lw_tld_init(void) {
  lw_ensure_init();
  lw_lock(&threads.lock);
  lw_tld_t *tld = threads.abandoned;
  if (tld) {
    threads.abandoned = tld->next_free;
  } else {
    size_t sz = lw_align_up(sizeof(lw_tld_t), 64);
    if (threads.meta_left < sz) {
      threads.meta = _lw_os_map(LW_PAGE_SIZE);
      threads.meta_left = threads.meta ? LW_PAGE_SIZE : 0;
      if (threads.meta) _lw_os_name(threads.meta, LW_PAGE_SIZE, "lwmalloc:meta");
    }
    if (threads.meta_left >= sz) {
      tld = (lw_tld_t *)threads.meta;
      threads.meta += sz;
      threads.meta_left -= sz;
      memset(tld, 0, sizeof *tld);
      tld_reset_classes(tld);
      tld->id = threads.count++;
      tld->next_all = threads.all;
      __atomic_store_n(&threads.all, tld, __ATOMIC_RELEASE);
    }
  }
  if (tld) tld->alive = 1;
  lw_unlock(&threads.lock);
  if (!tld) return NULL;
  tld->heap = _lw_heap_for(tld);
  _lw_tld = tld;
  _lw_pool_collect(tld);
  /* Registers the exit hook; may allocate (glibc, keys >= 32): we are ready.
   * A thread that starts while the key is still being made (start-up phase
   * two, in another thread) keeps its tld when it exits: a leak, never a
   * wrong key. */
  if (atomic_load(&threads.key_ready)) pthread_setspecific(threads.key, tld);
  return tld;
}

/* malloc_trim: the pages of exited threads that remote frees emptied go
 * back now rather than when a new thread adopts their records. Abandoned
 * records belong to no thread, so under the lock this is their owner. */
void _lw_thread_sweep_abandoned(void) {
  lw_lock(&threads.lock);
  for (lw_tld_t *t = threads.abandoned; t; t = t->next_free) _lw_pool_abandon(t);
  lw_unlock(&threads.lock);
}

lw_tld_t *_lw_tld_list(void) {
  return __atomic_load_n(&threads.all, __ATOMIC_ACQUIRE);
}

/* fork: phase 0 = prepare (lock), 1 = parent (unlock), 2 = child. In the
 * child only the forking thread lives on; the tlds of the others may be
 * half-way through an operation, so they are never reused (their memory
 * stays leaked in the child), and they are not adopted. */
void _lw_thread_atfork(int phase) {
  lw_mutex_atfork(&threads.lock, phase);
  if (phase == 2) /* abandoned tlds are complete; live ones of other threads may not be */
    for (lw_tld_t *t = threads.all; t; t = t->next_all)
      if (t != _lw_tld && t->alive) t->alive = 2; /* 2: lost in a fork, never reused */
}
