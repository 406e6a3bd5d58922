/* Top allocation sites: call stacks ranked by bytes, allocations, bytes
 * live at the cursor, or bytes leaked (live when the trace ended). With a
 * time range selected, counts only blocks allocated inside it. Enter shows
 * the selected site's full symbolised stack. */
#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

static const char *const sort_names[] = {"bytes", "allocations", "live at cursor", "leaked bytes"};
static int sort_key_g;

static uint64_t site_key(const lwv_site_t *s) {
  switch (sort_key_g) {
  case 1: return s->allocs;
  case 2: return s->live_bytes;
  case 3: return s->leaked_bytes;
  default: return s->bytes;
  }
}

static int site_cmp(const void *a, const void *b) {
  uint64_t x = site_key(a), y = site_key(b);
  if (x != y) return x > y ? -1 : 1;
  return (int)((const lwv_site_t *)a)->stack_id - (int)((const lwv_site_t *)b)->stack_id;
}

/* The site totals for the whole trace or a range, cached: a range query
 * scans every block allocated in it, so it runs once per range, not once
 * per cursor move. Returns a copy the caller frees. */
static lwv_site_t *sites_totals(lwv_app_t *app, size_t *n) {
  static lwv_site_t *cache;
  static size_t ncache;
  static uint64_t c_seq0, c_seq1;
  static int c_valid, c_all;
  lwv_db_t *d = app->db;
  int all = app->sel_state != 2;
  uint64_t seq0 = all ? 0 : lwv_db_seq_at(d, app->sel0), seq1 = all ? 0 : lwv_db_seq_at(d, app->sel1);
  if (!c_valid || c_all != all || c_seq0 != seq0 || c_seq1 != seq1) {
    free(cache);
    cache = lwv_db_sites(d, all, seq0, seq1, &ncache);
    c_valid = 1;
    c_all = all;
    c_seq0 = seq0;
    c_seq1 = seq1;
  }
  *n = ncache;
  lwv_site_t *v = malloc((ncache ? ncache : 1) * sizeof *v);
  if (v && ncache) memcpy(v, cache, ncache * sizeof *v);
  return v;
}

/* Sites ranked for the current cursor, range and sort key. */
static lwv_site_t *sites_ranked(lwv_app_t *app, size_t *n) {
  lwv_db_t *d = app->db;
  lwv_site_t *v = sites_totals(app, n);
  if (v == NULL) return NULL;
  /* live bytes at the cursor per site: sites by stack id, then the live set */
  uint32_t max_id = 0;
  for (size_t i = 0; i < *n; i++)
    if (v[i].stack_id > max_id) max_id = v[i].stack_id;
  long *index = malloc(((size_t)max_id + 1) * sizeof *index);
  if (index) {
    for (uint32_t i = 0; i <= max_id; i++) index[i] = -1;
    for (size_t i = 0; i < *n; i++) index[v[i].stack_id] = (long)i;
    size_t nlive = 0;
    const lwv_block_t *live = lwv_db_live_at(d, app->cursor_seq, &nlive);
    for (size_t i = 0; i < nlive; i++)
      if (live[i].stack_id <= max_id && index[live[i].stack_id] >= 0) {
        lwv_site_t *s = &v[index[live[i].stack_id]];
        s->live++;
        s->live_bytes += live[i].size;
      }
    free(index);
  }
  sort_key_g = app->sort_key;
  qsort(v, *n, sizeof *v, site_cmp);
  return v;
}

static void sites_draw(lwv_app_t *app, int top, int rows, int cols) {
  size_t n = 0;
  lwv_site_t *v = sites_ranked(app, &n);
  if (app->selected >= (int)n) app->selected = n ? (int)n - 1 : 0;
  char a[24], b[24], c[24];
  if (app->expanded && n) {
    const lwv_site_t *s = &v[app->selected];
    size_t nf = 0;
    lwv_frame_t *f = lwv_db_frames(app->db, s->stack_id, &nf);
    attron(A_BOLD);
    lwv_print(top, 0, "stack %u: %s", s->stack_id, s->label);
    attroff(A_BOLD);
    lwv_print(top + 1, 0, "%llu allocations, %s; live at cursor %s; leaked %s  (Esc: back)",
              (unsigned long long)s->allocs, lwv_fmt_bytes(s->bytes, a, sizeof a),
              lwv_fmt_bytes(s->live_bytes, b, sizeof b), lwv_fmt_bytes(s->leaked_bytes, c, sizeof c));
    for (size_t i = 0; i < nf && (int)i < rows - 3; i++)
      lwv_print(top + 3 + (int)i, 0, "#%-3u %s", f[i].level, f[i].text);
    if (nf == 0) lwv_print(top + 3, 0, "(no frames recorded for this site)");
    free(f);
    free(v);
    return;
  }
  attron(A_BOLD);
  lwv_print(top, 0, "%10s %9s %10s %10s  %s", "bytes", "allocs", "live@cur", "leaked", "site");
  attroff(A_BOLD);
  lwv_print(top, cols - 26, "sort: %s%s", sort_names[app->sort_key],
            app->sel_state == 2 ? " (range)" : "");
  int list_rows = rows - 1;
  if (app->selected < app->scroll) app->scroll = app->selected;
  if (app->selected >= app->scroll + list_rows) app->scroll = app->selected - list_rows + 1;
  for (int r = 0; r < list_rows && app->scroll + r < (int)n; r++) {
    const lwv_site_t *s = &v[app->scroll + r];
    char l[24];
    if (app->scroll + r == app->selected) attron(A_REVERSE);
    lwv_print(top + 1 + r, 0, "%10s %9llu %10s %10s  %-*.*s", lwv_fmt_bytes(s->bytes, a, sizeof a),
              (unsigned long long)s->allocs, lwv_fmt_bytes(s->live_bytes, l, sizeof l),
              lwv_fmt_bytes(s->leaked_bytes, c, sizeof c), cols - 45, cols - 45, s->label);
    if (app->scroll + r == app->selected) attroff(A_REVERSE);
  }
  if (n == 0) lwv_print(top + 1, 0, "no allocations%s", app->sel_state == 2 ? " in the range" : "");
  free(v);
}

static int sites_key(lwv_app_t *app, int ch) {
  int page = LINES - 6 > 1 ? LINES - 6 : 1;
  if (app->expanded) {
    if (ch == '\n' || ch == KEY_ENTER || ch == 27 || ch == KEY_LEFT) {
      app->expanded = 0;
      return 1;
    }
    return ch == KEY_UP || ch == KEY_DOWN;
  }
  if (lwv_list_key(app, ch, page)) return 1;
  switch (ch) {
  case '\n':
  case KEY_ENTER: app->expanded = 1; return 1;
  default: return 0;
  }
}

const lwv_view_t lwv_view_sites = {
    "Sites", sites_draw, sites_key,
    "s            sort by bytes / allocations / live at cursor / leaked\n"
    "Up Down      select a site (PgUp PgDn: a page)\n"
    "Enter        show the full stack (Enter or Esc: back)\n"};
