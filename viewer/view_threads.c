/* Threads: every traced thread with its lifetime, calls and bytes, and
 * the bytes it allocated that are live at the cursor. */
#include <curses.h>
#include <stdlib.h>

#include "u64map.h"
#include "ui.h"

static void threads_draw(lwv_app_t *app, int top, int rows, int cols) {
  (void)cols;
  size_t n = 0, nlive = 0;
  lwv_thread_t *v = lwv_db_threads(app->db, &n);
  const lwv_block_t *live = lwv_db_live_at(app->db, app->cursor_seq, &nlive);
  u64map_t by_tid = {0}; /* tid+1 -> index in v */
  int added;
  for (size_t t = 0; t < n; t++) {
    uint64_t *slot = u64map_put(&by_tid, v[t].tid + 1, &added);
    if (slot) *slot = t;
  }
  for (size_t i = 0; i < nlive; i++) {
    uint64_t *slot = u64map_get(&by_tid, (uint64_t)live[i].tid + 1);
    if (slot) v[*slot].live_bytes += live[i].size;
  }
  u64map_free(&by_tid);
  attron(A_BOLD);
  lwv_print(top, 0, "%7s %-10s %9s %9s %8s %9s %9s %9s", "tid", "name", "start", "end", "allocs",
            "allocated", "live@cur", "leaked");
  attroff(A_BOLD);
  int list_rows = rows - 1;
  if (app->selected >= (int)n) app->selected = n ? (int)n - 1 : 0;
  if (app->selected < app->scroll) app->scroll = app->selected;
  if (app->selected >= app->scroll + list_rows) app->scroll = app->selected - list_rows + 1;
  for (int r = 0; r < list_rows && app->scroll + r < (int)n; r++) {
    const lwv_thread_t *t = &v[app->scroll + r];
    char s[24], e[24], a[24], l[24], k[24];
    if (app->scroll + r == app->selected) attron(A_REVERSE);
    lwv_print(top + 1 + r, 0, "%7llu %-10.10s %9s %9s %8llu %9s %9s %9s", (unsigned long long)t->tid,
              t->name[0] ? t->name : "-", lwv_fmt_ns(t->start_ns, s, sizeof s),
              t->end_ns == LWV_NONE ? "-" : lwv_fmt_ns(t->end_ns, e, sizeof e),
              (unsigned long long)t->allocs, lwv_fmt_bytes(t->alloc_bytes, a, sizeof a),
              lwv_fmt_bytes(t->live_bytes, l, sizeof l), lwv_fmt_bytes(t->leaked_bytes, k, sizeof k));
    if (app->scroll + r == app->selected) attroff(A_REVERSE);
  }
  free(v);
}

static int threads_key(lwv_app_t *app, int ch) {
  switch (ch) {
  case KEY_UP: if (app->selected > 0) app->selected--; return 1;
  case KEY_DOWN: app->selected++; return 1;
  default: return 0;
  }
}

const lwv_view_t lwv_view_threads = {"Threads", threads_draw, threads_key,
                                     "Up Down      select a thread\n"};
