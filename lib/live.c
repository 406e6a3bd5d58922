/* Live statistics page (LW_LIVE=1): a shared-memory copy of lw_stats(),
 * refreshed every LW_LIVE_INTERVAL_MS by one small thread, read by
 * `lwview --pid`. Layout and the seqlock protocol: include/lwmalloc_live.h.
 *
 * Stays off the allocation paths: _lw_live_start() runs once from the
 * library constructor, and the thread only calls lw_stats(), which takes no
 * allocator lock. No stdio and no malloc in this file. The page is a shared
 * file mapping, not heap memory, so it is mapped here rather than in os.c.
 *
 * Fork: the child unmaps the parent's page and starts its own thread, which
 * creates /dev/shm/lwmalloc.<childpid> only after one interval, so that a
 * fork() followed at once by exec() leaves no file behind. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* declares _lw_live_start */
#include "lwmalloc_live.h"

/* All module state; the fork child handler resets it. */
static struct {
  lw_live_page_t *page; /* this process's page, NULL until created */
  pid_t owner;          /* process that created `page` and its file */
  char path[40];        /* LW_LIVE_PATH_PREFIX + owner */
  int hooks;            /* atexit/atfork registered */
} live;

static uint64_t live_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void live_set_path(pid_t pid) {
  static const char prefix[] = LW_LIVE_PATH_PREFIX;
  char digits[24];
  int n = 0;
  unsigned long v = (unsigned long)pid;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  size_t i = 0;
  for (; prefix[i]; i++) live.path[i] = prefix[i];
  while (n > 0) live.path[i++] = digits[--n];
  live.path[i] = '\0';
}

#define LIVE_STORE(field, value) __atomic_store_n(&p->field, (uint64_t)(value), __ATOMIC_RELAXED)

/* The only writer of *p: seqlock odd while copying (see lwmalloc_live.h). */
static void live_update(lw_live_page_t *p) {
  lw_stats_t st;
  lw_stats(&st);
  uint64_t s = __atomic_load_n(&p->seq, __ATOMIC_RELAXED);
  __atomic_store_n(&p->seq, s + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  LIVE_STORE(update_ns, live_now_ns());
  LIVE_STORE(updates, p->updates + 1);
  LIVE_STORE(live_bytes, st.live_bytes);
  LIVE_STORE(small_bytes, st.small_bytes);
  LIVE_STORE(medium_bytes, st.medium_bytes);
  LIVE_STORE(large_bytes, st.large_bytes);
  LIVE_STORE(mapped_bytes, st.mapped_bytes);
  LIVE_STORE(committed_bytes, st.committed_bytes);
  LIVE_STORE(unmerged_bytes, st.unmerged_bytes);
  LIVE_STORE(free_bytes, st.free_bytes);
  LIVE_STORE(coalesce_runs, st.coalesce_runs);
  LIVE_STORE(coalesced_chunks, st.coalesced_chunks);
  LIVE_STORE(os_maps, st.os_maps);
  LIVE_STORE(os_unmaps, st.os_unmaps);
  LIVE_STORE(os_decommits, st.os_decommits);
  LIVE_STORE(threads, st.threads);
  uint32_t n = st.nclasses < LW_MAX_CLASSES ? st.nclasses : LW_MAX_CLASSES;
  LIVE_STORE(nclasses, n);
  for (uint32_t c = 0; c < n; c++) {
    LIVE_STORE(classes[c].slot_size, st.classes[c].slot_size);
    LIVE_STORE(classes[c].slots_used, st.classes[c].slots_used);
    LIVE_STORE(classes[c].slots_total, st.classes[c].slots_total);
    LIVE_STORE(classes[c].pages, st.classes[c].pages);
  }
  __atomic_store_n(&p->seq, s + 2, __ATOMIC_RELEASE);
}

/* Creates and maps this process's page; the magic is stored last so that a
 * reader that sees it also sees a complete header and a first update. */
static lw_live_page_t *live_create(void) {
  pid_t pid = getpid();
  live_set_path(pid);
  int fd = open(live.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return NULL;
  long pagesz = sysconf(_SC_PAGESIZE);
  size_t len = (sizeof(lw_live_page_t) + (size_t)pagesz - 1) & ~((size_t)pagesz - 1);
  void *m = MAP_FAILED;
  if (ftruncate(fd, (off_t)len) == 0)
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    unlink(live.path);
    return NULL;
  }
  lw_live_page_t *p = m;
  p->version = LW_LIVE_VERSION;
  p->size = sizeof(lw_live_page_t);
  p->pid = (uint64_t)pid;
  p->start_ns = live_now_ns();
  p->interval_ms = LW_LIVE_INTERVAL_MS;
  live_update(p);
  __atomic_store_n(&p->magic, LW_LIVE_MAGIC, __ATOMIC_RELEASE);
  live.owner = pid;
  __atomic_store_n(&live.page, p, __ATOMIC_RELEASE);
  return p;
}

static void live_sleep(void) {
  struct timespec ts = {0, LW_LIVE_INTERVAL_MS * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* arg != NULL: started in a fork child; wait one interval before creating
 * the page (see the file comment). */
static void *live_thread(void *arg) {
  if (arg != NULL) live_sleep();
  lw_live_page_t *p = live_create();
  if (p == NULL) return NULL;
  for (;;) {
    live_sleep();
    live_update(p);
  }
  return NULL;
}

static void live_spawn(int in_child) {
  sigset_t all, old;
  sigfillset(&all); /* the application's signals never land on our thread */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  size_t stack = 64 * 1024;
  if (stack < (size_t)PTHREAD_STACK_MIN) stack = (size_t)PTHREAD_STACK_MIN;
  pthread_attr_setstacksize(&attr, stack);
  pthread_t t;
  if (pthread_create(&t, &attr, live_thread, in_child ? (void *)&live : NULL) == 0)
    pthread_setname_np(t, "lw-live");
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void live_at_exit(void) {
  if (live.page != NULL && live.owner == getpid()) unlink(live.path);
}

static void live_atfork_child(void) {
  lw_live_page_t *p = live.page;
  live.page = NULL;
  if (p != NULL) munmap(p, sizeof(lw_live_page_t)); /* the parent's page */
  live_spawn(1);
}

void _lw_live_start(void) {
  if (live.hooks) return; /* once per process image */
  live.hooks = 1;
  atexit(live_at_exit);
  pthread_atfork(NULL, NULL, live_atfork_child);
  live_spawn(0);
}
