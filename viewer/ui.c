/* lwview's frame: tab line, cursor line, key line, '?' help, key dispatch
 * and resize handling; the views draw the space in between. */
#include "ui.h"

#include <curses.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LIVE_REFRESH_MS 200 /* live mode: 5 refreshes per second */

static const char global_help[] =
    "Tab / S-Tab  next / previous view\n"
    "1..9         go to view N\n"
    "Left Right   move the time cursor one chart column\n"
    "PgUp PgDn    move it ten columns (lists: scroll a page)\n"
    "Home End     cursor to the start / end of the trace\n"
    "p            cursor to the peak of live bytes\n"
    "[ ]          mark start / end of a time range\n"
    "Backspace    clear the range\n"
    "?            this help (any key closes it)\n"
    "q            quit\n";

void lwv_print(int y, int x, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (y < 0 || y >= LINES || x >= COLS) return;
  mvaddnstr(y, x, buf, COLS - x);
}

uint64_t lwv_col_time(const lwv_app_t *app, int x, int w) {
  uint64_t span = app->t_end - app->t_first;
  if (w <= 1) return app->t_end;
  return app->t_first + (uint64_t)((double)span * x / (w - 1));
}

int lwv_time_col(const lwv_app_t *app, uint64_t t, int w) {
  uint64_t span = app->t_end - app->t_first;
  if (span == 0 || t <= app->t_first) return 0;
  if (t >= app->t_end) return w - 1;
  return (int)((double)(t - app->t_first) * (w - 1) / (double)span + 0.5);
}

int lwv_list_key(lwv_app_t *app, int ch, int page) {
  switch (ch) {
  case 's': app->sort_key = (app->sort_key + 1) % 4; app->selected = app->scroll = 0; return 1;
  case KEY_UP: if (app->selected > 0) app->selected--; return 1;
  case KEY_DOWN: app->selected++; return 1;
  case KEY_PPAGE: app->selected = app->selected > page ? app->selected - page : 0; return 1;
  case KEY_NPAGE: app->selected += page; return 1;
  default: return 0;
  }
}

void lwv_bar(int y, int x, int w, uint64_t used, uint64_t total) {
  int inner = w - 2, fill = total ? (int)((double)used * inner / (double)total + 0.5) : 0;
  if (fill > inner) fill = inner;
  if (used > 0 && fill == 0) fill = 1; /* in use, however little, shows */
  mvaddch(y, x, '[');
  for (int i = 0; i < inner; i++) addch(i < fill ? '#' : '.');
  addch(']');
}

void lwv_chart(int top, int left, int rows, int cols, const uint64_t *a, const uint64_t *b,
               const uint64_t *c, int n, int cursor, int sel0, int sel1) {
  uint64_t max = 1;
  for (int i = 0; i < n; i++) {
    if (a && a[i] != LWV_NONE && a[i] > max) max = a[i];
    if (b && b[i] != LWV_NONE && b[i] > max) max = b[i];
    if (c && c[i] != LWV_NONE && c[i] > max) max = c[i];
  }
  const int axis = 10; /* "123.4 MiB|" */
  char lab[32];
  for (int r = 0; r < rows; r++) {
    if (r == 0 || r == rows - 1 || r == rows / 2) {
      uint64_t v = (uint64_t)((double)max * (rows - r) / rows);
      lwv_print(top + r, left, "%9s", lwv_fmt_bytes(v, lab, sizeof lab));
    }
    mvaddch(top + r, left + axis - 1, '|');
  }
  for (int x = 0; x < n && x < cols - axis; x++) {
    const uint64_t *series[3] = {a, b, c};
    static const char marks[3] = {'#', ':', '.'};
    int h[3];
    for (int s = 0; s < 3; s++) {
      uint64_t v = series[s] && series[s][x] != LWV_NONE ? series[s][x] : 0;
      h[s] = (int)((double)v * rows / (double)max + 0.5);
      if (v > 0 && h[s] == 0) h[s] = 1;
    }
    int in_sel = sel0 >= 0 && x >= sel0 && x <= sel1;
    for (int r = 0; r < rows; r++) {
      int level = rows - r; /* 1 = bottom row */
      char ch = ' ';
      for (int s = 2; s >= 0; s--)
        if (level <= h[s]) ch = marks[s];
      chtype attr = (x == cursor ? A_REVERSE : 0) | (in_sel ? A_UNDERLINE : 0);
      mvaddch(top + r, left + axis + x, (chtype)(unsigned char)ch | attr);
    }
  }
}

static void draw_frame(lwv_app_t *app) {
  erase();
  int x = 0;
  attron(A_BOLD);
  mvaddstr(0, 0, "lwview");
  attroff(A_BOLD);
  x = 7;
  for (int i = 0; i < app->nviews; i++) {
    char tab[32];
    snprintf(tab, sizeof tab, "%d:%s", i + 1, app->views[i]->name);
    if (i == app->cur) attron(A_REVERSE);
    mvaddnstr(0, x, tab, COLS - x > 0 ? COLS - x : 0);
    if (i == app->cur) attroff(A_REVERSE);
    x += (int)strlen(tab) + 1;
  }
  char a[32], b[32], c[32];
  if (app->db) {
    lwv_print(1, 0, "t %s / %s  seq %llu", lwv_fmt_ns(app->cursor, a, sizeof a),
              lwv_fmt_ns(app->t_end, b, sizeof b), (unsigned long long)app->cursor_seq);
    if (app->sel_state == 1)
      lwv_print(1, 44, "range from %s ...", lwv_fmt_ns(app->sel0, c, sizeof c));
    else if (app->sel_state == 2)
      lwv_print(1, 44, "range %s - %s", lwv_fmt_ns(app->sel0, a, sizeof a),
                lwv_fmt_ns(app->sel1, c, sizeof c));
    lwv_print(LINES - 1, 0, "?:help q:quit Tab:view <-/->:time Home/End p:peak [/]:range");
  } else {
    lwv_print(1, 0, "pid %d  %s  update #%llu", (int)app->live->pid,
              app->live_gone ? "EXITED (last data shown)" : "running",
              (unsigned long long)app->now.updates);
    lwv_print(LINES - 1, 0, "?:help q:quit Tab:view   live: refreshes %d times a second",
              1000 / LIVE_REFRESH_MS);
  }
  mvhline(2, 0, ACS_HLINE, COLS);
}

static void draw_help(const lwv_app_t *app) {
  const char *view_help = app->views[app->cur]->help;
  int lines = 14 + 2, w = 66;
  for (const char *p = view_help; p && *p; p++) lines += *p == '\n';
  int top = (LINES - lines) / 2, left = (COLS - w) / 2;
  if (top < 0) top = 0;
  for (int y = top; y < top + lines && y < LINES; y++) mvhline(y, left, ' ', w);
  attron(A_BOLD);
  lwv_print(top, left + 2, "Keys (any key closes)");
  attroff(A_BOLD);
  int y = top + 2;
  const char *texts[2] = {app->db ? global_help : "Tab / 1..9   switch view\nq            quit\n",
                          view_help};
  for (int t = 0; t < 2; t++) {
    const char *p = texts[t];
    while (p && *p) {
      const char *nl = strchr(p, '\n');
      int len = nl ? (int)(nl - p) : (int)strlen(p);
      if (y < LINES) mvaddnstr(y++, left + 2, p, len < w - 4 ? len : w - 4);
      p = nl ? nl + 1 : p + len;
    }
    y++;
  }
}

static void set_cursor(lwv_app_t *app, uint64_t t) {
  if (t < app->t_first) t = app->t_first;
  if (t > app->t_end) t = app->t_end;
  app->cursor = t;
  app->cursor_seq = lwv_db_seq_at(app->db, t);
}

static uint64_t step_ns(const lwv_app_t *app) {
  uint64_t w = (uint64_t)(COLS > 20 ? COLS - 12 : 8);
  uint64_t s = (app->t_end - app->t_first) / (w - 1);
  return s ? s : 1;
}

/* Keys every trace-mode view shares; 1 if used. */
static int global_key(lwv_app_t *app, int ch) {
  if (app->db == NULL) return 0;
  uint64_t st = step_ns(app);
  switch (ch) {
  case KEY_LEFT: set_cursor(app, app->cursor > st ? app->cursor - st : 0); return 1;
  case KEY_RIGHT: set_cursor(app, app->cursor + st); return 1;
  case KEY_PPAGE:
  case KEY_SLEFT: set_cursor(app, app->cursor > 10 * st ? app->cursor - 10 * st : 0); return 1;
  case KEY_NPAGE:
  case KEY_SRIGHT: set_cursor(app, app->cursor + 10 * st); return 1;
  case KEY_HOME: set_cursor(app, app->t_first); return 1;
  case KEY_END: set_cursor(app, app->t_end); return 1;
  case 'p': /* exactly after the call that reached the peak of live bytes */
    app->cursor = lwv_db_call_time(app->db, app->db->peak_seq);
    app->cursor_seq = app->db->peak_seq;
    return 1;
  case '[':
    app->sel0 = app->cursor;
    app->sel_state = 1;
    return 1;
  case ']':
    if (app->sel_state == 0) app->sel0 = app->t_first;
    app->sel1 = app->cursor;
    if (app->sel1 < app->sel0) {
      uint64_t t = app->sel0;
      app->sel0 = app->sel1;
      app->sel1 = t;
    }
    app->sel_state = 2;
    app->scroll = app->selected = 0;
    return 1;
  case KEY_BACKSPACE:
  case 127:
  case 8:
    app->sel_state = 0;
    app->scroll = app->selected = 0;
    return 1;
  default: return 0;
  }
}

static void switch_view(lwv_app_t *app, int v) {
  app->cur = (v + app->nviews) % app->nviews;
  app->sort_key = app->scroll = app->selected = app->expanded = 0;
}

static void live_sample(lwv_app_t *app) {
  if (!app->live_gone && !lwv_live_alive(app->live)) app->live_gone = 1;
  lw_live_page_t p;
  if (app->live_gone || lwv_live_snapshot(app->live, &p) != 0) return;
  app->now = p;
  if (app->hist_len == LWV_HISTORY) {
    memmove(app->hist_live, app->hist_live + 1, (LWV_HISTORY - 1) * sizeof(uint64_t));
    memmove(app->hist_committed, app->hist_committed + 1, (LWV_HISTORY - 1) * sizeof(uint64_t));
    memmove(app->hist_mapped, app->hist_mapped + 1, (LWV_HISTORY - 1) * sizeof(uint64_t));
    app->hist_len--;
  }
  app->hist_live[app->hist_len] = p.live_bytes;
  app->hist_committed[app->hist_len] = p.committed_bytes;
  app->hist_mapped[app->hist_len] = p.mapped_bytes;
  app->hist_len++;
}

static double ms_now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void app_init_times(lwv_app_t *app) {
  app->t_first = app->db->nti ? app->db->ti[0].t0 : 0;
  app->t_end = app->db->nti ? app->db->ti[app->db->nti - 1].t1 : 0;
  if (app->db->end_ns > app->t_end) app->t_end = app->db->end_ns;
}

int lwv_ui_bench(lwv_app_t *app, int positions) {
  app_init_times(app);
  FILE *null_out = fopen("/dev/null", "w");
  if (null_out == NULL) return 1;
  setenv("LINES", "24", 1);
  setenv("COLUMNS", "80", 1);
  use_env(TRUE);
  SCREEN *scr = newterm("xterm", null_out, stdin);
  if (scr == NULL) {
    fprintf(stderr, "lwview: cannot set up a terminal for the benchmark\n");
    return 1;
  }
  printf("%-10s %9s %9s %9s %9s  (%d cursor positions, 80x24, move + redraw)\n", "view",
         "wall mean", "wall max", "cpu mean", "cpu max", positions);
  for (int v = 0; v < app->nviews; v++) {
    app->cur = v;
    double sum = 0, max = 0, csum = 0, cmax = 0;
    for (int i = 0; i < positions; i++) {
      double t0 = ms_now(CLOCK_MONOTONIC), c0 = ms_now(CLOCK_PROCESS_CPUTIME_ID);
      set_cursor(app, app->t_first + (app->t_end - app->t_first) / (positions - 1 ? positions - 1 : 1) * i);
      draw_frame(app);
      app->views[v]->draw(app, 3, LINES - 4, COLS);
      refresh();
      double dt = ms_now(CLOCK_MONOTONIC) - t0, dc = ms_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
      sum += dt;
      csum += dc;
      if (dt > max) max = dt;
      if (dc > cmax) cmax = dc;
    }
    printf("%-10s %9.2f %9.2f %9.2f %9.2f\n", app->views[v]->name, sum / positions, max,
           csum / positions, cmax);
  }
  /* the range-dependent views, with the middle half of the trace selected:
   * the first draw computes the range, cursor moves reuse it */
  app->sel0 = app->t_first + (app->t_end - app->t_first) / 4;
  app->sel1 = app->t_first + (app->t_end - app->t_first) / 4 * 3;
  app->sel_state = 2;
  for (int v = 0; v < app->nviews; v++) {
    if (strcmp(app->views[v]->name, "Sites") != 0 && strcmp(app->views[v]->name, "Coalesce") != 0)
      continue;
    app->cur = v;
    double first = 0, sum = 0, max = 0;
    for (int i = 0; i < positions; i++) {
      double t0 = ms_now(CLOCK_MONOTONIC);
      set_cursor(app, app->sel0 + (app->sel1 - app->sel0) / (positions - 1 ? positions - 1 : 1) * i);
      draw_frame(app);
      app->views[v]->draw(app, 3, LINES - 4, COLS);
      refresh();
      double dt = ms_now(CLOCK_MONOTONIC) - t0;
      if (i == 0) first = dt;
      else sum += dt;
      if (i > 0 && dt > max) max = dt;
    }
    printf("%-10s range: first draw %.2f ms, then mean %.2f max %.2f ms (wall)\n",
           app->views[v]->name, first, sum / (positions - 1), max);
  }
  endwin();
  delscreen(scr);
  fclose(null_out);
  return 0;
}

int lwv_ui_run(lwv_app_t *app) {
  if (app->db) app_init_times(app);
  initscr();
  if (COLS < LWV_MIN_COLS || LINES < LWV_MIN_ROWS) {
    int c = COLS, l = LINES;
    endwin();
    fprintf(stderr, "lwview: terminal is %dx%d; lwview needs at least %dx%d\n", c, l,
            LWV_MIN_COLS, LWV_MIN_ROWS);
    return 1;
  }
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  timeout(app->live ? LIVE_REFRESH_MS : -1);
  if (app->db) set_cursor(app, app->t_end);
  else live_sample(app);
  while (!app->quit) {
    if (COLS < LWV_MIN_COLS || LINES < LWV_MIN_ROWS) {
      erase();
      lwv_print(0, 0, "terminal too small (%dx%d): enlarge to %dx%d, or q to quit", COLS, LINES,
                LWV_MIN_COLS, LWV_MIN_ROWS);
    } else {
      draw_frame(app);
      app->views[app->cur]->draw(app, 3, LINES - 4, COLS);
      if (app->show_help) draw_help(app);
    }
    refresh();
    int ch = getch();
    if (ch == ERR) { /* live-mode tick */
      if (app->live) live_sample(app);
      continue;
    }
    if (app->show_help) {
      app->show_help = 0;
      continue;
    }
    if (ch == KEY_RESIZE) continue;
    if (ch == 'q' || ch == 'Q') break;
    if (ch == '?') {
      app->show_help = 1;
      continue;
    }
    if (ch == '\t') switch_view(app, app->cur + 1);
    else if (ch == KEY_BTAB) switch_view(app, app->cur - 1);
    else if (ch >= '1' && ch <= '9' && ch - '1' < app->nviews) switch_view(app, ch - '1');
    else if (!(app->views[app->cur]->key && app->views[app->cur]->key(app, ch))) global_key(app, ch);
  }
  endwin();
  return 0;
}
