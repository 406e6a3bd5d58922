/* Coalesce events: a timeline of deferred-coalescing runs (bytes merged
 * per chart column) and a sortable list of the runs, limited to the
 * selected time range when there is one. */
#include <curses.h>
#include <stdlib.h>

#include "ui.h"

#define CO_MAX_COLS 512
#define CO_LIST_MAX 5000

static const char *const sort_names[] = {"time", "chunks", "bytes", "duration"};

static void coalesce_draw(lwv_app_t *app, int top, int rows, int cols) {
  lwv_db_t *d = app->db;
  if (d->n_runs == 0) {
    lwv_print(top + 1, 0, "this trace has no COALESCE_RUN events");
    return;
  }
  int w = cols - 11, chart_rows = 5;
  if (w > CO_MAX_COLS) w = CO_MAX_COLS;
  static uint64_t bytes[CO_MAX_COLS];
  static int cached_w = -1; /* the histogram depends only on the width */
  size_t n = 0;
  if (cached_w != w) {
    lwv_run_t *all = lwv_db_runs(d, 0, UINT64_MAX >> 1, 0, (size_t)d->n_runs, &n);
    for (int x = 0; x < w; x++) bytes[x] = 0;
    for (size_t i = 0; i < n; i++) bytes[lwv_time_col(app, all[i].time_ns, w)] += all[i].bytes;
    free(all);
    cached_w = w;
  }
  int cx = lwv_time_col(app, app->cursor, w), s0 = -1, s1 = -1;
  if (app->sel_state == 2) {
    s0 = lwv_time_col(app, app->sel0, w);
    s1 = lwv_time_col(app, app->sel1, w);
  }
  lwv_chart(top, 0, chart_rows, cols, bytes, NULL, NULL, w, cx, s0, s1);
  lwv_print(top + chart_rows, 10, "bytes merged per column; %llu runs in the trace",
            (unsigned long long)d->n_runs);

  uint64_t t0 = app->sel_state == 2 ? app->sel0 : 0, t1 = app->sel_state == 2 ? app->sel1 : UINT64_MAX >> 1;
  int list_top = top + chart_rows + 2, list_rows = rows - chart_rows - 3;
  /* fetch only down to the last visible row (one more keeps Down moving) */
  int want = (app->selected > app->scroll + list_rows - 1 ? app->selected : app->scroll + list_rows - 1) + 2;
  lwv_run_t *runs = lwv_db_runs(d, t0, t1, app->sort_key, want < CO_LIST_MAX ? (size_t)want : CO_LIST_MAX, &n);
  attron(A_BOLD);
  lwv_print(list_top - 1, 0, "%-12s %8s %8s %12s %12s   sorted by %s%s", "time", "tid", "chunks",
            "bytes", "duration", sort_names[app->sort_key],
            app->sel_state == 2 ? " (range)" : "");
  attroff(A_BOLD);
  if (app->selected >= (int)n) app->selected = n ? (int)n - 1 : 0;
  if (app->selected < app->scroll) app->scroll = app->selected;
  if (app->selected >= app->scroll + list_rows) app->scroll = app->selected - list_rows + 1;
  for (int r = 0; r < list_rows && app->scroll + r < (int)n; r++) {
    const lwv_run_t *run = &runs[app->scroll + r];
    char t[24], b[24], du[24];
    if (app->scroll + r == app->selected) attron(A_REVERSE);
    lwv_print(list_top + r, 0, "%-12s %8llu %8llu %12s %12s", lwv_fmt_ns(run->time_ns, t, sizeof t),
              (unsigned long long)run->tid, (unsigned long long)run->chunks,
              lwv_fmt_bytes(run->bytes, b, sizeof b), lwv_fmt_ns(run->ns, du, sizeof du));
    if (app->scroll + r == app->selected) attroff(A_REVERSE);
  }
  free(runs);
}

static int coalesce_key(lwv_app_t *app, int ch) {
  int page = LINES - 12 > 1 ? LINES - 12 : 1;
  if (lwv_list_key(app, ch, page)) return 1;
  switch (ch) {
  case '\n':
  case KEY_ENTER: {
    uint64_t t0 = app->sel_state == 2 ? app->sel0 : 0, t1 = app->sel_state == 2 ? app->sel1 : UINT64_MAX >> 1;
    size_t n = 0;
    lwv_run_t *runs = lwv_db_runs(app->db, t0, t1, app->sort_key, (size_t)app->selected + 1, &n);
    if (n == (size_t)app->selected + 1) {
      app->cursor = runs[n - 1].time_ns;
      app->cursor_seq = lwv_db_seq_at(app->db, app->cursor);
    }
    free(runs);
    return 1;
  }
  default: return 0;
  }
}

const lwv_view_t lwv_view_coalesce = {
    "Coalesce", coalesce_draw, coalesce_key,
    "s            sort by time / chunks / bytes / duration\n"
    "Up Down      select a run (PgUp PgDn: a page)\n"
    "Enter        move the time cursor to the selected run\n"};
