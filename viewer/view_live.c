/* Live overview (--pid): live, committed and mapped bytes sampled from the
 * process's shared-memory page, as a chart of the last samples, plus every
 * counter of the page. */
#include <curses.h>

#include "ui.h"

static void live_draw(lwv_app_t *app, int top, int rows, int cols) {
  const lw_live_page_t *p = &app->now;
  int chart_rows = rows - 8, w = cols - 11;
  int n = app->hist_len < w ? app->hist_len : w, first = app->hist_len - n;
  lwv_chart(top, 0, chart_rows, cols, app->hist_live + first, app->hist_committed + first,
            app->hist_mapped + first, n, n - 1, -1, -1);
  lwv_print(top + chart_rows, 10, "last %d samples   # live  : committed  . mapped", n);
  char a[24], b[24], c[24], d[24];
  int y = top + chart_rows + 2;
  lwv_print(y++, 0, "live %s  (small %s, medium %s, large %s)",
            lwv_fmt_bytes(p->live_bytes, a, sizeof a), lwv_fmt_bytes(p->small_bytes, b, sizeof b),
            lwv_fmt_bytes(p->medium_bytes, c, sizeof c), lwv_fmt_bytes(p->large_bytes, d, sizeof d));
  lwv_print(y++, 0, "mapped %s  committed %s  unmerged %s  free %s",
            lwv_fmt_bytes(p->mapped_bytes, a, sizeof a),
            lwv_fmt_bytes(p->committed_bytes, b, sizeof b),
            lwv_fmt_bytes(p->unmerged_bytes, c, sizeof c), lwv_fmt_bytes(p->free_bytes, d, sizeof d));
  lwv_print(y++, 0, "coalesce runs %llu (%llu chunks)  os maps %llu unmaps %llu decommits %llu",
            (unsigned long long)p->coalesce_runs, (unsigned long long)p->coalesced_chunks,
            (unsigned long long)p->os_maps, (unsigned long long)p->os_unmaps,
            (unsigned long long)p->os_decommits);
  lwv_print(y++, 0, "threads %llu   fragmentation (mapped / live) %.2f",
            (unsigned long long)p->threads,
            p->live_bytes ? (double)p->mapped_bytes / (double)p->live_bytes : 0.0);
}

const lwv_view_t lwv_view_live = {"Live", live_draw, NULL,
                                  "(chart) # live bytes  : committed  . mapped\n"};
