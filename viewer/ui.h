/* The lwview terminal UI: app state, the view interface and drawing
 * helpers shared by the view_*.c files. */
#ifndef LWV_UI_H
#define LWV_UI_H

#include <stdint.h>

#include "db.h"
#include "live.h"

#define LWV_MIN_COLS 80
#define LWV_MIN_ROWS 24
#define LWV_HISTORY 1024 /* live-mode samples kept for the chart */

typedef struct lwv_app_s lwv_app_t;

/* A view draws rows [top, top+rows) of the screen and may take keys. */
typedef struct lwv_view_s {
  const char *name;
  void (*draw)(lwv_app_t *app, int top, int rows, int cols);
  int (*key)(lwv_app_t *app, int ch); /* 1 if the key was used */
  const char *help;                   /* view keys, "key  meaning\n" lines */
} lwv_view_t;

struct lwv_app_s {
  lwv_db_t *db;     /* trace mode */
  lwv_live_t *live; /* live mode */
  const lwv_view_t *const *views;
  int nviews, cur;
  /* time cursor and selection (trace mode), ns since trace start */
  uint64_t t_first, t_end, cursor;
  uint64_t sel0, sel1; /* valid when sel_state == 2; sel_state 1: start set */
  int sel_state;
  uint64_t cursor_seq; /* lwv_db_seq_at(cursor), kept up to date by ui.c */
  int show_help, quit;
  /* live mode samples: ring of the last LWV_HISTORY pages */
  lw_live_page_t now;
  uint64_t hist_live[LWV_HISTORY], hist_committed[LWV_HISTORY], hist_mapped[LWV_HISTORY];
  int hist_len, live_gone;
  /* per-view state */
  int sort_key, scroll, selected, expanded;
};

/* Runs the UI until 'q'. Returns the process exit status. */
int lwv_ui_run(lwv_app_t *app);
/* Draws every view at `positions` cursor positions on an 80x24 screen
 * written to /dev/null and prints the mean and max time per view. */
int lwv_ui_bench(lwv_app_t *app, int positions);

/* Time of chart column x of w over [t_first, t_end]. */
uint64_t lwv_col_time(const lwv_app_t *app, int x, int w);
/* Column of time t in a w-column chart. */
int lwv_time_col(const lwv_app_t *app, uint64_t t, int w);

/* Layered area chart: per column, '#' up to a[x], ':' up to b[x], '.' up
 * to c[x] (values in the same unit, b >= a and c >= b expected but not
 * required); y axis labelled in bytes. cursor: column to highlight (-1:
 * none); [sel0, sel1]: selected columns (-1: none). */
void lwv_chart(int top, int left, int rows, int cols, const uint64_t *a, const uint64_t *b,
               const uint64_t *c, int n, int cursor, int sel0, int sel1);
/* A bar "[#####.....]" of width w for used/total. */
void lwv_bar(int y, int x, int w, uint64_t used, uint64_t total);
/* The keys of a sortable list view ('s' next sort key, arrows, page
 * up/down by `page` rows); returns whether ch was one of them. */
int lwv_list_key(lwv_app_t *app, int ch, int page);
/* printf at (y, x), clipped to the screen width. */
void lwv_print(int y, int x, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

extern const lwv_view_t lwv_view_overview, lwv_view_pools, lwv_view_frag, lwv_view_coalesce,
    lwv_view_sites, lwv_view_threads, lwv_view_live, lwv_view_live_pools;

#endif /* LWV_UI_H */
