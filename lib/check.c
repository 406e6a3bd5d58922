/* Error reports and the invariant walk. Reports never allocate: they
 * format into a stack buffer and write(2) it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void _lw_write(const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* Writes v in `base` (10 or 16) at out, NUL-terminated; returns the end. */
char *_lw_fmt_u64(char *out, uint64_t v, int base) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
    v /= (unsigned)base;
  } while (v);
  while (n) *out++ = tmp[--n];
  *out = 0;
  return out;
}

void _lw_report(const char *what, const void *p) {
  char buf[256], *o = buf;
  const char *pre = "lwmalloc: ";
  size_t n = strlen(pre), m = strlen(what);
  if (m > 180) m = 180;
  memcpy(o, pre, n), o += n;
  memcpy(o, what, m), o += m;
  *o++ = ' ', *o++ = '0', *o++ = 'x';
  o = _lw_fmt_u64(o, (uintptr_t)p, 16);
  *o++ = '\n', *o = 0;
  _lw_write(buf);
  abort();
}

void _lw_fail(const char *file, int line, const char *what) {
  char num[24];
  _lw_fmt_u64(num, (uint64_t)line, 10);
  _lw_write("lwmalloc: invariant broken: ");
  _lw_write(what);
  _lw_write(" (");
  _lw_write(file);
  _lw_write(":");
  _lw_write(num);
  _lw_write(")\n");
  abort();
}

/* Every checker reports through LW_INSIST, which aborts: reaching the end
 * means every invariant held. */
LW_API int lw_check(void) {
  lw_ensure_init();
  _lw_pool_check();
  for (unsigned i = 0; i < _lw_g.narenas; i++)
    if (_lw_heaps[i].can_grow) _lw_heap_check(&_lw_heaps[i]);
  return 0;
}
