/* Results out: medians over runs, then an aligned table (allocators side
 * by side, ratios to the first), JSON or CSV. Every metric is listed once
 * in `metrics[]`; the three formats and the median all walk that list. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

enum mkind { M_SEC, M_BYTES, M_NS, M_RATE, M_COUNT, M_RATIO };
typedef struct metric_s {
  const char *key;   /* JSON / CSV name */
  const char *label; /* table row, NULL: not in the table */
  enum mkind kind;
  size_t off;
  int is_u64;
} metric_t;

#define MD(key, label, kind, field) {key, label, kind, offsetof(rp_result_t, field), 0}
#define MU(key, label, kind, field) {key, label, kind, offsetof(rp_result_t, field), 1}
#define MLAT(cl, name)                                                              \
  MD(name "_p50_ns", name " p50", M_NS, lat[cl].p50_ns),                              \
  MD(name "_p99_ns", name " p99", M_NS, lat[cl].p99_ns),                              \
  MD(name "_p999_ns", name " p99.9", M_NS, lat[cl].p999_ns),                          \
  MD(name "_max_ns", name " max", M_NS, lat[cl].max_ns),                              \
  MD(name "_mean_ns", NULL, M_NS, lat[cl].mean_ns),                                   \
  MU(name "_count", NULL, M_COUNT, lat[cl].count)

static const metric_t metrics[] = {
    MD("wall_s", "wall time", M_SEC, wall_s),
    MD("cpu_s", "CPU time", M_SEC, cpu_s),
    MD("user_s", NULL, M_SEC, user_s),
    MD("sys_s", NULL, M_SEC, sys_s),
    MD("events_per_s", "events/s", M_RATE, events_per_s),
    MLAT(RP_CL_MALLOC, "malloc"),
    MLAT(RP_CL_FREE, "free"),
    MLAT(RP_CL_REALLOC, "realloc"),
    MLAT(RP_CL_ALIGNED, "aligned"),
    MU("rss_peak_bytes", "peak RSS", M_BYTES, rss_peak),
    MU("rss_final_bytes", "final RSS", M_BYTES, rss_final),
    MU("rss_base_bytes", "baseline RSS", M_BYTES, rss_base),
    MU("rss_heap_peak_bytes", "heap RSS (peak-base)", M_BYTES, rss_heap_peak),
    MU("peak_live_bytes", "peak live bytes", M_BYTES, peak_live),
    MU("final_live_bytes", NULL, M_BYTES, final_live),
    MD("fragmentation", "fragmentation", M_RATIO, fragmentation),
    MU("handoff_waits", "hand-off waits", M_COUNT, waits),
    MU("ops", NULL, M_COUNT, ops),
    MU("rss_samples", NULL, M_COUNT, rss_samples),
};
#define NMETRICS (sizeof metrics / sizeof *metrics)

static double mget(const rp_result_t *r, const metric_t *m) {
  const char *p = (const char *)r + m->off;
  return m->is_u64 ? (double)*(const uint64_t *)p : *(const double *)p;
}
static void mset(rp_result_t *r, const metric_t *m, double v) {
  char *p = (char *)r + m->off;
  if (m->is_u64) *(uint64_t *)p = (uint64_t)(v + 0.5);
  else *(double *)p = v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void rp_median(rp_series_t *s) {
  if (s->nruns == 0) return;
  s->median = s->runs[0]; /* hashes and strings: identical across runs (checked by the caller) */
  double *v = malloc(s->nruns * sizeof *v);
  if (!v) return;
  for (size_t k = 0; k < NMETRICS; k++) {
    for (size_t r = 0; r < s->nruns; r++) v[r] = mget(&s->runs[r], &metrics[k]);
    qsort(v, s->nruns, sizeof *v, cmp_double);
    size_t mid = s->nruns / 2;
    mset(&s->median, &metrics[k], s->nruns & 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2);
  }
  free(v);
}

/* ---- table ------------------------------------------------------------------ */
static void human(char *buf, size_t len, enum mkind kind, double v) {
  switch (kind) {
  case M_SEC:
    if (v >= 1) snprintf(buf, len, "%.3f s", v);
    else snprintf(buf, len, "%.2f ms", v * 1e3);
    break;
  case M_BYTES:
    if (v >= 1 << 30) snprintf(buf, len, "%.2f GiB", v / (1 << 30));
    else if (v >= 1 << 20) snprintf(buf, len, "%.2f MiB", v / (1 << 20));
    else if (v >= 1 << 10) snprintf(buf, len, "%.1f KiB", v / (1 << 10));
    else snprintf(buf, len, "%.0f B", v);
    break;
  case M_NS:
    if (v >= 1e6) snprintf(buf, len, "%.2f ms", v / 1e6);
    else if (v >= 1e4) snprintf(buf, len, "%.1f us", v / 1e3);
    else snprintf(buf, len, "%.0f ns", v);
    break;
  case M_RATE: snprintf(buf, len, "%.2f M/s", v / 1e6); break;
  case M_COUNT: snprintf(buf, len, "%.0f", v); break;
  case M_RATIO: snprintf(buf, len, "%.3f", v); break;
  }
}

static int class_used(const rp_series_t *s, size_t n, const metric_t *m) {
  for (int c = 0; c < RP_NCLASSES; c++) {
    const char *name[] = {"malloc", "free", "realloc", "aligned"};
    if (!strncmp(m->key, name[c], strlen(name[c])) && m->key[strlen(name[c])] == '_') {
      for (size_t i = 0; i < n; i++)
        if (s[i].median.lat[c].count) return 1;
      return 0;
    }
  }
  return 1;
}

static void report_table(FILE *f, const char *trace, const rp_plan_hdr_t *h,
                         const rp_series_t *s, size_t n, const rp_opts_t *o) {
  char a[48], b[96];
  fprintf(f, "lwreplay %s\n", trace);
  human(a, sizeof a, M_BYTES, (double)h->trace_peak_live);
  fprintf(f, "  %llu ops on %llu thread%s, %llu blocks, %llu cross-thread hand-offs; trace peak live %s;\n"
             "  op-stream hash %016llx\n",
          (unsigned long long)h->nops, (unsigned long long)h->nthreads, h->nthreads == 1 ? "" : "s",
          (unsigned long long)h->nblocks, (unsigned long long)h->handoffs, a,
          (unsigned long long)h->plan_hash);
  if (h->skipped_failed || h->skipped_unknown || h->orphaned || h->realloc0_as_free)
    fprintf(f, "  not replayed: %llu failed calls, %llu frees of unknown blocks; %llu addresses "
               "returned twice; %llu realloc(p,0) replayed as free\n",
            (unsigned long long)h->skipped_failed, (unsigned long long)h->skipped_unknown,
            (unsigned long long)h->orphaned, (unsigned long long)h->realloc0_as_free);
  if (h->trace_lost)
    fprintf(f, "  WARNING: the recorder lost %llu records; the replay is of an incomplete trace\n",
            (unsigned long long)h->trace_lost);
  fprintf(f, "  %s of %zu run%s each%s\n", s[0].nruns > 1 ? "median" : "result", s[0].nruns,
          s[0].nruns > 1 ? "s" : "", n > 1 ? "; (x) = ratio to the first allocator" : "");
  fprintf(f, "  latency: %s; %s%s%s\n",
          o->lat_every == 0 ? "not measured" : o->lat_every == 1 ? "every op timed" : "1 op in ~16 timed (--latency=all for every op)",
          o->touch ? "--touch: RSS includes every requested byte"
                   : "RSS counts only pages the allocator wrote (--touch for real RSS)",
          o->serial ? "; --serial" : "", o->check ? "; --check" : "");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "  %-10s malloc from %s%s%s\n", s[i].name, s[i].median.malloc_from,
            s[i].median.fallbacks[0] ? "; emulated: " : "", s[i].median.fallbacks);
  fprintf(f, "\n%-22s", "");
  for (size_t i = 0; i < n; i++) fprintf(f, " %24s", s[i].name);
  fprintf(f, "\n");
  for (size_t k = 0; k < NMETRICS; k++) {
    const metric_t *m = &metrics[k];
    if (!m->label || !class_used(s, n, m)) continue;
    fprintf(f, "%-22s", m->label);
    double first = mget(&s[0].median, m);
    for (size_t i = 0; i < n; i++) {
      double v = mget(&s[i].median, m);
      human(a, sizeof a, m->kind, v);
      if (i > 0 && first > 0) {
        snprintf(b, sizeof b, "%s (%.2fx)", a, v / first);
        fprintf(f, " %24s", b);
      } else {
        fprintf(f, " %24s", a);
      }
    }
    fprintf(f, "\n");
  }
}

/* ---- JSON / CSV ---------------------------------------------------------------- */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void json_metrics(FILE *f, const rp_result_t *r, const rp_result_t *first) {
  fprintf(f, "{");
  for (size_t k = 0; k < NMETRICS; k++) {
    double v = mget(r, &metrics[k]);
    if (first) {
      double d = mget(first, &metrics[k]);
      fprintf(f, "%s\"%s\": %.6g", k ? ", " : "", metrics[k].key, d > 0 ? v / d : 0);
    } else if (metrics[k].is_u64) {
      fprintf(f, "%s\"%s\": %.0f", k ? ", " : "", metrics[k].key, v);
    } else {
      fprintf(f, "%s\"%s\": %.9g", k ? ", " : "", metrics[k].key, v);
    }
  }
  fprintf(f, "}");
}

static void report_json(FILE *f, const char *trace, const rp_plan_hdr_t *h,
                        const rp_series_t *s, size_t n, const rp_opts_t *o) {
  fprintf(f, "{\"trace\": ");
  json_str(f, trace);
  fprintf(f, ", \"touch\": %s, \"check\": %s, \"serial\": %s, \"latency_every\": %u",
          o->touch ? "true" : "false", o->check ? "true" : "false", o->serial ? "true" : "false",
          o->lat_every);
  fprintf(f, ", \"ops\": %llu, \"threads\": %llu, \"blocks\": %llu, \"handoffs\": %llu, "
             "\"op_hash\": \"%016llx\", "
             "\"trace_peak_live_bytes\": %llu, \"trace_final_live_bytes\": %llu, "
             "\"skipped_failed\": %llu, \"skipped_unknown\": %llu, \"orphaned\": %llu, "
             "\"realloc0_as_free\": %llu, \"trace_lost\": %llu, \"runs\": %zu,\n \"allocators\": [",
          (unsigned long long)h->nops, (unsigned long long)h->nthreads,
          (unsigned long long)h->nblocks, (unsigned long long)h->handoffs,
          (unsigned long long)h->plan_hash, (unsigned long long)h->trace_peak_live, (unsigned long long)h->trace_final_live,
          (unsigned long long)h->skipped_failed, (unsigned long long)h->skipped_unknown,
          (unsigned long long)h->orphaned, (unsigned long long)h->realloc0_as_free,
          (unsigned long long)h->trace_lost, s[0].nruns);
  for (size_t i = 0; i < n; i++) {
    fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
    json_str(f, s[i].name);
    fprintf(f, ", \"so\": ");
    json_str(f, s[i].so);
    fprintf(f, ", \"malloc_from\": ");
    json_str(f, s[i].median.malloc_from);
    fprintf(f, ", \"emulated\": ");
    json_str(f, s[i].median.fallbacks);
    fprintf(f, ", \"op_hash\": \"%016llx\",\n   \"median\": ", (unsigned long long)s[i].median.op_hash);
    json_metrics(f, &s[i].median, NULL);
    if (i > 0) {
      fprintf(f, ",\n   \"ratio_to_first\": ");
      json_metrics(f, &s[i].median, &s[0].median);
    }
    fprintf(f, ",\n   \"runs\": [");
    for (size_t r = 0; r < s[i].nruns; r++) {
      fprintf(f, "%s\n    ", r ? "," : "");
      json_metrics(f, &s[i].runs[r], NULL);
    }
    fprintf(f, "]}");
  }
  fprintf(f, "]}\n");
}

static void csv_row(FILE *f, const char *name, const char *run, const rp_result_t *r) {
  fprintf(f, "%s,%s,%016llx", name, run, (unsigned long long)r->op_hash);
  for (size_t k = 0; k < NMETRICS; k++) {
    double v = mget(r, &metrics[k]);
    fprintf(f, metrics[k].is_u64 ? ",%.0f" : ",%.9g", v);
  }
  fprintf(f, "\n");
}

static void report_csv(FILE *f, const rp_series_t *s, size_t n) {
  fprintf(f, "allocator,run,op_hash");
  for (size_t k = 0; k < NMETRICS; k++) fprintf(f, ",%s", metrics[k].key);
  fprintf(f, "\n");
  for (size_t i = 0; i < n; i++) {
    char run[24];
    for (size_t r = 0; r < s[i].nruns; r++) {
      snprintf(run, sizeof run, "%zu", r + 1);
      csv_row(f, s[i].name, run, &s[i].runs[r]);
    }
    csv_row(f, s[i].name, "median", &s[i].median);
  }
}

void rp_report(FILE *f, enum rp_format fmt, const char *trace, const rp_plan_t *plan,
               const rp_series_t *s, size_t n, const rp_opts_t *o) {
  if (n == 0) return;
  if (fmt == RP_FMT_JSON) report_json(f, trace, plan->hdr, s, n, o);
  else if (fmt == RP_FMT_CSV) report_csv(f, s, n);
  else report_table(f, trace, plan->hdr, s, n, o);
}
