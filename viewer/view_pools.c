/* Pools: occupancy of every small size class, from the latest pool
 * snapshot at or before the cursor (trace mode) or from the live page. */
#include <curses.h>

#include "ui.h"

/* One line per class: "  32 B [######....]  1234 / 2048  60%". */
static void draw_classes(int top, int rows, int cols, const lwv_class_t *cl, unsigned n) {
  lwv_print(top, 0, "%8s  %-*s %21s %5s", "slot", cols - 40, "occupancy", "used / total slots",
            "use");
  int y = top + 1;
  for (unsigned c = 0; c < n && y < top + rows; c++) {
    if (cl[c].slot_size == 0) continue;
    char sz[24];
    lwv_print(y, 0, "%8s", lwv_fmt_bytes(cl[c].slot_size, sz, sizeof sz));
    lwv_bar(y, 10, cols - 40, cl[c].slots_used, cl[c].slots_total);
    lwv_print(y, cols - 29, "%10llu / %-10llu %3.0f%%", (unsigned long long)cl[c].slots_used,
              (unsigned long long)cl[c].slots_total,
              cl[c].slots_total ? 100.0 * cl[c].slots_used / cl[c].slots_total : 0.0);
    y++;
  }
}

static void pools_draw(lwv_app_t *app, int top, int rows, int cols) {
  lwv_snapshot_t snap;
  if (!lwv_db_snapshot_at(app->db, app->cursor, &snap)) {
    lwv_print(top + 1, 0, app->db->n_snapshots ? "no pool snapshot before the cursor yet"
                                               : "this trace has no pool snapshots");
    return;
  }
  char t[24], a[24], b[24], c[24], u[24];
  lwv_print(top, 0, "snapshot %llu at %s: live %s mapped %s committed %s unmerged %s",
            (unsigned long long)snap.id, lwv_fmt_ns(snap.time_ns, t, sizeof t),
            lwv_fmt_bytes(snap.live, a, sizeof a), lwv_fmt_bytes(snap.mapped, b, sizeof b),
            lwv_fmt_bytes(snap.committed, c, sizeof c), lwv_fmt_bytes(snap.unmerged, u, sizeof u));
  draw_classes(top + 2, rows - 2, cols, snap.classes, snap.nclasses);
}

const lwv_view_t lwv_view_pools = {"Pools", pools_draw, NULL,
                                   "(bars) # slots in use  . free slots, per size class\n"};

static void live_pools_draw(lwv_app_t *app, int top, int rows, int cols) {
  lwv_class_t cl[LW_MAX_CLASSES];
  unsigned n = app->now.nclasses < LW_MAX_CLASSES ? (unsigned)app->now.nclasses : LW_MAX_CLASSES;
  for (unsigned i = 0; i < n; i++) {
    cl[i].slot_size = app->now.classes[i].slot_size;
    cl[i].slots_used = app->now.classes[i].slots_used;
    cl[i].slots_total = app->now.classes[i].slots_total;
  }
  char a[24];
  lwv_print(top, 0, "small-object bytes %s in %u classes",
            lwv_fmt_bytes(app->now.small_bytes, a, sizeof a), n);
  draw_classes(top + 2, rows - 2, cols, cl, n);
}

const lwv_view_t lwv_view_live_pools = {"Pools", live_pools_draw, NULL,
                                        "(bars) # slots in use  . free slots, per size class\n"};
