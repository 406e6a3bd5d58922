/* Overview: live, committed and mapped bytes over the trace as a layered
 * text chart (from time_index), and the heap's totals at the cursor. */
#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define OV_MAX_COLS 512

static void overview_draw(lwv_app_t *app, int top, int rows, int cols) {
  lwv_db_t *d = app->db;
  int chart_rows = rows - 7, w = cols - 11;
  if (w > OV_MAX_COLS) w = OV_MAX_COLS;
  static uint64_t live[OV_MAX_COLS], committed[OV_MAX_COLS], mapped[OV_MAX_COLS];
  /* column x shows the stretches ending in (time(x-1), time(x)]: the
   * highest live bytes among them, and mapped/committed at the end */
  size_t i = 0;
  uint64_t last_live = 0, last_mapped = 0, last_committed = LWV_NONE;
  for (int x = 0; x < w; x++) {
    uint64_t t = lwv_col_time(app, x, w), peak = last_live;
    int any = 0;
    for (; i < d->nti && d->ti[i].t1 <= t; i++) {
      const lwv_ti_t *s = &d->ti[i];
      if (!any || s->live_max > peak) peak = s->live_max;
      any = 1;
      last_live = s->live;
      last_mapped = s->mapped;
      last_committed = s->committed;
    }
    live[x] = any ? peak : last_live;
    mapped[x] = last_mapped;
    committed[x] = last_committed == LWV_NONE ? live[x] : last_committed;
  }
  int cx = lwv_time_col(app, app->cursor, w);
  int s0 = -1, s1 = -1;
  if (app->sel_state == 2) {
    s0 = lwv_time_col(app, app->sel0, w);
    s1 = lwv_time_col(app, app->sel1, w);
  }
  lwv_chart(top, 0, chart_rows, cols, live, committed, mapped, w, cx, s0, s1);
  char t0[24], t1[24];
  lwv_print(top + chart_rows, 10, "%-12s", lwv_fmt_ns(app->t_first, t0, sizeof t0));
  lwv_print(top + chart_rows, cols - 12, "%12s", lwv_fmt_ns(app->t_end, t1, sizeof t1));
  lwv_print(top + chart_rows, 30, "# live  : committed  . mapped");

  /* totals at the cursor: the stretch holding cursor_seq */
  const lwv_ti_t *s = NULL;
  for (size_t k = lwv_db_ti_index(d, app->cursor) + 1; k-- > 0;)
    if (d->nti && d->ti[k].seq1 <= app->cursor_seq) {
      s = &d->ti[k];
      break;
    }
  char a[24], b[24], c[24], e[24];
  int y = top + chart_rows + 2;
  if (s) {
    lwv_print(y, 0, "at cursor: live %s in %llu blocks   mapped %s   committed %s",
              lwv_fmt_bytes(s->live, a, sizeof a), (unsigned long long)s->blocks,
              lwv_fmt_bytes(s->mapped, b, sizeof b),
              s->committed == LWV_NONE ? "n/a" : lwv_fmt_bytes(s->committed, c, sizeof c));
    lwv_print(y + 1, 0, "           coalesce runs so far %llu   (values as of seq %llu)",
              (unsigned long long)s->coalesce, (unsigned long long)s->seq1);
  } else {
    lwv_print(y, 0, "at cursor: before the first call");
  }
  const char *exe = strrchr(d->exe, '/') ? strrchr(d->exe, '/') + 1 : d->exe;
  lwv_print(y + 2, 0, "%.20s pid %llu: %llu calls, peak live %s, at end %s%s", exe[0] ? exe : "?",
            (unsigned long long)d->pid, (unsigned long long)d->calls,
            lwv_fmt_bytes(d->peak_live, a, sizeof a), lwv_fmt_bytes(d->final_live, e, sizeof e),
            d->lost ? "  (records lost!)" : "");
  if (d->error[0]) lwv_print(y + 3, 0, "trace damaged: %s", d->error);
}

const lwv_view_t lwv_view_overview = {"Overview", overview_draw, NULL,
                                      "(chart) # live bytes  : committed  . mapped\n"};
