/* Statistics: gathered on demand from the structures themselves (page
 * descriptors, heap totals, OS counters), so the fast paths count nothing
 * extra. Reads of other threads' pages are racy by design: a snapshot may
 * be a few operations stale, never unsafe (the page walk holds the page
 * lock, so no segment is unmapped under it; no other thread's lists are
 * followed). Takes no lock of the allocation fast path. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void count_page(lw_page_t *pg, void *arg) {
  lw_stats_t *out = arg;
  if (atomic_load_explicit(&pg->state, memory_order_relaxed) == LW_PAGE_FREE) return;
  unsigned c = __atomic_load_n(&pg->cls, __ATOMIC_RELAXED);
  if (c >= LW_NCLASSES) return;
  uint32_t used = __atomic_load_n(&pg->used, __ATOMIC_RELAXED);
  out->classes[c].slots_used += used;
  out->classes[c].slots_total += __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED);
  out->classes[c].pages++;
  out->small_bytes += (uint64_t)used * _lw_class_size[c];
}

LW_API void lw_stats(lw_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->nclasses = LW_NCLASSES;
  for (unsigned c = 0; c < LW_NCLASSES; c++) out->classes[c].slot_size = _lw_class_size[c];
  _lw_pool_visit(count_page, out);
  for (unsigned i = 0; i < _lw_g.narenas; i++) {
    lw_heap_t *h = &_lw_heaps[i];
    if (!__atomic_load_n(&h->can_grow, __ATOMIC_ACQUIRE)) continue;
    out->medium_bytes += __atomic_load_n(&h->live_bytes, __ATOMIC_RELAXED);
    out->free_bytes += __atomic_load_n(&h->free_bytes, __ATOMIC_RELAXED);
    out->unmerged_bytes += __atomic_load_n(&h->unmerged_bytes, __ATOMIC_RELAXED);
    out->coalesce_runs += __atomic_load_n(&h->coalesce_runs, __ATOMIC_RELAXED);
    out->coalesced_chunks += __atomic_load_n(&h->coalesced_chunks, __ATOMIC_RELAXED);
  }
  out->large_bytes = atomic_load_explicit(&_lw_big_live, memory_order_relaxed);
  out->mapped_bytes = atomic_load_explicit(&_lw_os_mapped, memory_order_relaxed);
  uint64_t dec = atomic_load_explicit(&_lw_os_decommitted, memory_order_relaxed);
  out->committed_bytes = out->mapped_bytes > dec ? out->mapped_bytes - dec : 0;
  out->os_maps = atomic_load_explicit(&_lw_os_maps, memory_order_relaxed);
  out->os_unmaps = atomic_load_explicit(&_lw_os_unmaps, memory_order_relaxed);
  out->os_decommits = atomic_load_explicit(&_lw_os_decommits, memory_order_relaxed);
  out->os_moves = atomic_load_explicit(&_lw_os_moves, memory_order_relaxed);
  for (lw_tld_t *t = _lw_tld_list(); t; t = t->next_all) {
    if (__atomic_load_n(&t->alive, __ATOMIC_RELAXED) == 1) out->threads++;
    for (unsigned c = 0; c < LW_NCLASSES; c++) { /* hot slots are freed, though their pages count them */
      uint64_t hot = __atomic_load_n(&t->nhot[c], __ATOMIC_RELAXED);
      if (hot > out->classes[c].slots_used) hot = out->classes[c].slots_used; /* racy reads */
      out->classes[c].slots_used -= hot;
      out->small_bytes -= hot * _lw_class_size[c];
    }
  }
  out->live_bytes = out->small_bytes + out->medium_bytes + out->large_bytes;
}

/* ---- printing without malloc or stdio ----------------------------------- */
typedef struct {
  char buf[512];
  size_t n;
  lw_output_fn *out;
  void *arg;
} printer_t;

static void pr_flush(printer_t *p) {
  p->buf[p->n] = 0;
  if (p->out)
    p->out(p->buf, p->arg);
  else
    _lw_write(p->buf);
  p->n = 0;
}
static void pr_str(printer_t *p, const char *s) {
  while (*s) {
    if (p->n >= sizeof p->buf - 1) pr_flush(p);
    p->buf[p->n++] = *s++;
  }
}
/* v right-aligned in `width` columns */
static void pr_num(printer_t *p, uint64_t v, int width) {
  char num[24];
  int len = (int)(_lw_fmt_u64(num, v, 10) - num);
  while (width-- > len) pr_str(p, " ");
  pr_str(p, num);
}

LW_API void lw_stats_print(lw_output_fn *out, void *arg) {
  lw_stats_t s;
  lw_stats(&s);
  printer_t p = {.n = 0, .out = out, .arg = arg};
  pr_str(&p, "lwmalloc stats (pid ");
  pr_num(&p, (uint64_t)getpid(), 0);
  pr_str(&p, ")\n  live bytes     ");
  pr_num(&p, s.live_bytes, 14);
  pr_str(&p, "   small ");
  pr_num(&p, s.small_bytes, 0);
  pr_str(&p, ", medium ");
  pr_num(&p, s.medium_bytes, 0);
  pr_str(&p, ", large ");
  pr_num(&p, s.large_bytes, 0);
  pr_str(&p, "\n  mapped bytes   ");
  pr_num(&p, s.mapped_bytes, 14);
  pr_str(&p, "   committed ");
  pr_num(&p, s.committed_bytes, 0);
  pr_str(&p, "\n  medium free    ");
  pr_num(&p, s.free_bytes, 14);
  pr_str(&p, "   unmerged ");
  pr_num(&p, s.unmerged_bytes, 0);
  pr_str(&p, "\n  coalesce runs  ");
  pr_num(&p, s.coalesce_runs, 14);
  pr_str(&p, "   chunks merged ");
  pr_num(&p, s.coalesced_chunks, 0);
  pr_str(&p, "\n  os calls       ");
  pr_num(&p, s.os_maps, 14);
  pr_str(&p, " mmap, ");
  pr_num(&p, s.os_unmaps, 0);
  pr_str(&p, " munmap, ");
  pr_num(&p, s.os_decommits, 0);
  pr_str(&p, " madvise, ");
  pr_num(&p, s.os_moves, 0);
  pr_str(&p, " mremap moves\n  threads        ");
  pr_num(&p, s.threads, 14);
  pr_str(&p, "\n  class  slot     used    total  pages\n");
  for (unsigned c = 0; c < s.nclasses; c++) {
    if (!s.classes[c].pages) continue;
    pr_num(&p, c, 7);
    pr_num(&p, s.classes[c].slot_size, 6);
    pr_num(&p, s.classes[c].slots_used, 9);
    pr_num(&p, s.classes[c].slots_total, 9);
    pr_num(&p, s.classes[c].pages, 7);
    pr_str(&p, "\n");
  }
  pr_flush(&p);
}
