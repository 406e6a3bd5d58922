/* Attaching to a running process's live statistics page (--pid). */
#ifndef LWV_LIVE_H
#define LWV_LIVE_H

#include <stddef.h>
#include <sys/types.h>

#include "lwmalloc_live.h"

typedef struct lwv_live_s {
  pid_t pid;
  const lw_live_page_t *page; /* read-only shared mapping */
  size_t map_len;
} lwv_live_t;

/* Maps /dev/shm/lwmalloc.<pid>. -1 with a one-line message when the
 * process does not exist, runs without a live page, or the page is not one
 * this lwview understands. */
int lwv_live_attach(pid_t pid, lwv_live_t *out, char *err, size_t errlen);
/* Consistent copy of the page (seqlock); -1 if the writer stayed busy. */
int lwv_live_snapshot(const lwv_live_t *l, lw_live_page_t *out);
/* 1 while the process still runs. */
int lwv_live_alive(const lwv_live_t *l);
void lwv_live_detach(lwv_live_t *l);

#endif /* LWV_LIVE_H */
