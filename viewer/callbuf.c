/* Seq-indexed call table for the importer (see callbuf.h). The backing
 * file is sparse and grows by doubling; untouched seqs cost nothing. */
#define _GNU_SOURCE
#include "callbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CALLBUF_MAX_SEQ (1ULL << 36) /* refuse absurd seqs from corrupt input */

int callbuf_open(callbuf_t *b, const char *dir) {
  memset(b, 0, sizeof *b);
  /* memory first (tmpfs: no disk writeback), then a file next to the db */
  b->fd = memfd_create("lwview-calls", MFD_CLOEXEC);
  if (b->fd < 0) b->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (b->fd < 0) { /* no O_TMPFILE support: a named file, unlinked at once */
    char path[4096];
    size_t n = strlen(dir);
    if (n + 32 > sizeof path) return -1;
    memcpy(path, dir, n);
    memcpy(path + n, "/.lwview-calls-XXXXXX", 22);
    b->fd = mkstemp(path);
    if (b->fd < 0) return -1;
    unlink(path);
  }
  return 0;
}

call_slot_t *callbuf_slot(callbuf_t *b, uint64_t seq) {
  if (seq >= b->cap) {
    if (seq >= CALLBUF_MAX_SEQ) {
      errno = EINVAL;
      return NULL;
    }
    uint64_t ncap = b->cap ? b->cap : 1 << 16;
    while (ncap <= seq) ncap *= 2;
    if (ftruncate(b->fd, (off_t)(ncap * sizeof(call_slot_t))) != 0) return NULL;
    void *m = b->slots ? mremap(b->slots, b->cap * sizeof(call_slot_t), ncap * sizeof(call_slot_t),
                                MREMAP_MAYMOVE)
                       : mmap(NULL, ncap * sizeof(call_slot_t), PROT_READ | PROT_WRITE, MAP_SHARED,
                              b->fd, 0);
    if (m == MAP_FAILED) return NULL;
    b->slots = m;
    b->cap = ncap;
  }
  if (seq >= b->len) b->len = seq + 1;
  return &b->slots[seq];
}

void callbuf_close(callbuf_t *b) {
  if (b->slots) munmap(b->slots, b->cap * sizeof(call_slot_t));
  if (b->fd >= 0) close(b->fd);
  memset(b, 0, sizeof *b);
  b->fd = -1;
}
