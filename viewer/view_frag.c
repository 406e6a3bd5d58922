/* Fragmentation: a map of the heap's mapped regions at the cursor, each
 * cell showing how much of its address range holds live blocks, and how
 * much is free memory still waiting for deferred coalescing.
 *
 * What the trace lets us reconstruct: mapped regions from OS_MAP/UNMAP/
 * REMAP events (or, without them, clusters of live block addresses), live
 * blocks from the calls (requested sizes, so allocator headers and slot
 * rounding count as free), and "unmerged" free bytes as the medium blocks
 * (larger than the biggest pool slot) freed since the last COALESCE_RUN.
 *
 * Figures: external fragmentation = 1 - largest free extent / free bytes
 * (0 when all free memory is one extent, near 1 when it is shattered), and
 * overhead = mapped bytes / live bytes. */
#include <curses.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define FRAG_GAP (1u << 20) /* inferred regions: split at gaps above 1 MiB */

static int region_cmp(const void *a, const void *b) {
  const lwv_region_t *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int block_cmp(const void *a, const void *b) {
  const lwv_block_t *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Region holding addr (regions sorted, non-overlapping), or -1. */
static long region_of(const lwv_region_t *r, size_t n, uint64_t addr) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].addr <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0 || addr >= r[lo - 1].addr + r[lo - 1].bytes) return -1;
  return (long)lo - 1;
}

/* Adds [off, off+len) of the concatenated regions to per-cell counters. */
static void cells_add(double *cells, int ncell, double cell_bytes, uint64_t off, uint64_t len) {
  while (len > 0) {
    int c = (int)(off / cell_bytes);
    if (c >= ncell) break;
    uint64_t cell_end = (uint64_t)((c + 1) * cell_bytes);
    uint64_t take = cell_end > off ? cell_end - off : 1;
    if (take > len) take = len;
    cells[c] += (double)take;
    off += take;
    len -= take;
  }
}

static void frag_draw(lwv_app_t *app, int top, int rows, int cols) {
  lwv_db_t *d = app->db;
  uint64_t seq = app->cursor_seq;
  size_t nlive = 0, nreg = 0, nfreed = 0;
  const lwv_block_t *live = lwv_db_live_at(d, seq, &nlive);
  lwv_block_t *blocks = malloc((nlive ? nlive : 1) * sizeof *blocks);
  lwv_region_t *reg = lwv_db_regions_at(d, seq, &nreg);
  if (blocks == NULL) return;
  if (nlive) memcpy(blocks, live, nlive * sizeof *blocks);
  qsort(blocks, nlive, sizeof *blocks, block_cmp);
  /* blocks outside every recorded mapping (mapped before the trace began,
   * or no OS events at all): cluster their addresses into inferred regions */
  size_t ninferred = 0;
  {
    lwv_region_t *all = realloc(reg, (nreg + nlive + 1) * sizeof *all);
    if (all == NULL) {
      free(blocks);
      free(reg);
      return;
    }
    reg = all;
    size_t nrec = nreg;
    for (size_t i = 0; i < nlive; i++) {
      if (region_of(reg, nrec, blocks[i].addr) >= 0) continue;
      uint64_t end = blocks[i].addr + (blocks[i].size ? blocks[i].size : 1);
      lwv_region_t *last = nreg > nrec ? &reg[nreg - 1] : NULL;
      if (last && blocks[i].addr <= last->addr + last->bytes + FRAG_GAP) {
        if (end > last->addr + last->bytes) last->bytes = end - last->addr;
      } else {
        reg[nreg++] = (lwv_region_t){blocks[i].addr, end - blocks[i].addr};
        ninferred++;
      }
    }
    qsort(reg, nreg, sizeof *reg, region_cmp);
  }
  if (nreg == 0) {
    lwv_print(top + 1, 0, "no heap at the cursor (no mappings and no live blocks yet)");
    free(blocks);
    free(reg);
    return;
  }
  uint64_t *prefix = malloc((nreg + 1) * sizeof *prefix);
  prefix[0] = 0;
  for (size_t i = 0; i < nreg; i++) prefix[i + 1] = prefix[i] + reg[i].bytes;
  uint64_t total = prefix[nreg];

  int map_rows = rows - 8, map_cols = cols;
  int ncell = map_rows * map_cols;
  double cell_bytes = (double)total / ncell;
  if (cell_bytes < 1) cell_bytes = 1;
  double *used = calloc((size_t)ncell, sizeof *used), *unm = calloc((size_t)ncell, sizeof *unm);

  /* live blocks (sorted, like the regions): cells and exact free extents */
  uint64_t live_in = 0, outside = 0, largest_free = 0, free_total = 0;
  size_t bi = 0;
  for (size_t r = 0; r < nreg; r++) {
    uint64_t pos = reg[r].addr, rend = reg[r].addr + reg[r].bytes;
    for (; bi < nlive && blocks[bi].addr < reg[r].addr; bi++) outside += blocks[bi].size;
    for (; bi < nlive && blocks[bi].addr < rend; bi++) {
      const lwv_block_t *b = &blocks[bi];
      if (b->addr > pos) {
        free_total += b->addr - pos;
        if (b->addr - pos > largest_free) largest_free = b->addr - pos;
      }
      uint64_t end = b->addr + b->size < rend ? b->addr + b->size : rend;
      if (end > pos) pos = end;
      live_in += b->size;
      cells_add(used, ncell, cell_bytes, prefix[r] + (b->addr - reg[r].addr), end - b->addr);
    }
    if (rend > pos) {
      free_total += rend - pos;
      if (rend - pos > largest_free) largest_free = rend - pos;
    }
  }
  for (; bi < nlive; bi++) outside += blocks[bi].size;

  /* unmerged: medium blocks freed since the last coalescing run */
  lwv_snapshot_t snap;
  uint64_t small_max = 1024;
  if (lwv_db_snapshot_at(d, app->cursor, &snap))
    for (unsigned c = 0; c < snap.nclasses; c++)
      if (snap.classes[c].slot_size > small_max) small_max = snap.classes[c].slot_size;
  uint64_t last_run = lwv_db_last_run(d, seq), unmerged = 0;
  lwv_region_t *freed = lwv_db_freed_between(d, last_run, seq, &nfreed);
  for (size_t i = 0; i < nfreed; i++) {
    long r = region_of(reg, nreg, freed[i].addr);
    if (r < 0 || freed[i].bytes <= small_max) continue;
    unmerged += freed[i].bytes;
    cells_add(unm, ncell, cell_bytes, prefix[r] + (freed[i].addr - reg[r].addr), freed[i].bytes);
  }

  /* the map, row-major in address order */
  for (int c = 0; c < ncell; c++) {
    double fu = used[c] / cell_bytes, fm = unm[c] / cell_bytes;
    char ch = fu >= 0.75 ? '#' : fu >= 0.25 ? '+' : fm >= 0.25 ? '~' : fu > 0 ? ',' : '.';
    if ((uint64_t)(c * cell_bytes) >= total) ch = ' ';
    mvaddch(top + c / map_cols, c % map_cols, (chtype)(unsigned char)ch);
  }
  char a[24], b[24], e[24], f[24], g[24];
  int y = top + map_rows;
  lwv_print(y++, 0, "one cell = %s   # >=75%% used  + >=25%%  , some  ~ unmerged free  . free",
            lwv_fmt_bytes((uint64_t)cell_bytes, a, sizeof a));
  lwv_print(y++, 0, "%zu regions (%zu inferred), %s; live %s in %zu blocks%s%s", nreg, ninferred,
            lwv_fmt_bytes(total, a, sizeof a), lwv_fmt_bytes(live_in, b, sizeof b), nlive,
            outside ? ", outside " : "", outside ? lwv_fmt_bytes(outside, e, sizeof e) : "");
  lwv_print(y++, 0, "free %s, largest extent %s; unmerged %s (freed since seq %llu)",
            lwv_fmt_bytes(free_total, a, sizeof a), lwv_fmt_bytes(largest_free, f, sizeof f),
            lwv_fmt_bytes(unmerged, g, sizeof g), (unsigned long long)last_run);
  attron(A_BOLD);
  lwv_print(y++, 0, "external fragmentation %.1f%%   overhead (mapped/live) %.2f",
            free_total ? 100.0 * (1.0 - (double)largest_free / (double)free_total) : 0.0,
            live_in ? (double)total / (double)live_in : 0.0);
  attroff(A_BOLD);
  lwv_print(y++, 0, "ext. frag = 1 - largest free extent / free bytes; sizes as requested");
  free(used);
  free(unm);
  free(freed);
  free(prefix);
  free(blocks);
  free(reg);
}

const lwv_view_t lwv_view_frag = {
    "Frag", frag_draw, NULL,
    "(map) cells over the mapped regions, in address order:\n"
    "  # >=75% live  + >=25% live  , some live  ~ unmerged free  . free\n"};
