/* Reader of the live statistics page written by lib/live.c; the layout and
 * the seqlock protocol are in lib/include/lwmalloc_live.h. */
#include "live.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int lwv_live_alive(const lwv_live_t *l) {
  return kill(l->pid, 0) == 0 || errno == EPERM;
}

int lwv_live_attach(pid_t pid, lwv_live_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->pid = pid;
  if (pid <= 0 || !lwv_live_alive(out)) {
    snprintf(err, errlen, "pid %d: no such process", (int)pid);
    return -1;
  }
  char path[64];
  snprintf(path, sizeof path, LW_LIVE_PATH_PREFIX "%d", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen,
             "pid %d: no lwmalloc live page (%s: %s); run it with "
             "LD_PRELOAD=liblwmalloc.so LW_LIVE=1",
             (int)pid, path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(lw_live_page_t)) {
    close(fd);
    snprintf(err, errlen, "pid %d: %s is too small to be a live page", (int)pid, path);
    return -1;
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "pid %d: cannot map %s: %s", (int)pid, path, strerror(errno));
    return -1;
  }
  out->page = m;
  out->map_len = (size_t)st.st_size;
  /* the writer stores magic last: allow it a moment after creation */
  for (int i = 0; i < 50 && __atomic_load_n(&out->page->magic, __ATOMIC_ACQUIRE) == 0; i++)
    usleep(10000);
  const char *why = NULL;
  if (__atomic_load_n(&out->page->magic, __ATOMIC_ACQUIRE) != LW_LIVE_MAGIC)
    why = "is not an lwmalloc live page";
  else if (out->page->version != LW_LIVE_VERSION)
    why = "has a live-page version this lwview does not read";
  else if (out->page->pid != (uint64_t)pid)
    why = "belongs to another process (stale file)";
  if (why) {
    snprintf(err, errlen, "pid %d: %s %s", (int)pid, path, why);
    lwv_live_detach(out);
    return -1;
  }
  return 0;
}

int lwv_live_snapshot(const lwv_live_t *l, lw_live_page_t *out) {
  return lw_live_read(l->page, out, 1000);
}

void lwv_live_detach(lwv_live_t *l) {
  if (l->page) munmap((void *)(uintptr_t)l->page, l->map_len);
  l->page = NULL;
}
