/* lwreplay: replays a trace deterministically against one or more
 * allocators and reports time, latency tails, RSS and fragmentation.
 *
 *   lwreplay TRACE [--allocator=NAME] [--compare=A,B,...] [--runs N]
 *            [--touch] [--check] [--serial] [--json|--csv]
 *   lwreplay --bench-engine[=EVENTS] [--allocator=NAME] [--runs N]
 *   lwreplay --synth=KIND[,EVENTS[,THREADS]] ...   (a generated trace)
 *
 * Exit status: 0 ok; 1 a replay failed a check (NULL, misaligned,
 * overlap, non-deterministic result) or crashed; 2 usage, trace or
 * allocator-lookup error. Every error is one line on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay.h"

#define MAX_ALLOCATORS 16

static void usage(FILE *f) {
  fprintf(f,
          "usage: lwreplay TRACE [options]\n"
          "       lwreplay --bench-engine[=EVENTS] [options]\n"
          "       lwreplay --synth=KIND[,EVENTS[,THREADS]] [options]\n"
          "  --allocator=NAME   lw, glibc, mimalloc, jemalloc, tcmalloc or PATH.so (default lw);\n"
          "                     null = bump pointer, free is a no-op (engine overhead only)\n"
          "  --compare=A,B,...  replay against each, interleaved; ratios are to the first\n"
          "  --runs N           runs per allocator; the report shows medians (default 1)\n"
          "  --touch            write the requested bytes, so RSS is real\n"
          "  --check            also check that no result overlaps a live block\n"
          "  --serial           one thread, in the trace's global order\n"
          "  --latency=N|all|off  time one op in N, picked at random, or every op (default:\n"
          "                     all below %u ops, else 1 in %u)\n"
          "  --json | --csv     machine-readable output\n"
          "  --verbose          time the load phases (stderr)\n"
          "  --synth=KIND,...   replay a generated trace: churn, handoff, realloc, aligned\n"
          "  --bench-engine     engine throughput: churn on one thread (default 20M events)\n",
          RP_LAT_ALL_BELOW, RP_LAT_EVERY_DEFAULT);
}

static int die(int code, const char *msg) {
  fprintf(stderr, "lwreplay: %s\n", msg);
  return code;
}

static int child(int argc, char **argv) {
  if (argc < 6) return die(2, "--child: bad arguments");
  rp_opts_t o = {.label = argv[5]};
  for (int i = 6; i < argc; i++) {
    if (!strcmp(argv[i], "--touch")) o.touch = 1;
    else if (!strcmp(argv[i], "--check")) o.check = 1;
    else if (!strcmp(argv[i], "--serial")) o.serial = 1;
    else if (!strcmp(argv[i], "--no-rss")) o.no_rss = 1;
    else if (!strncmp(argv[i], "--lat=", 6)) o.lat_every = (unsigned)atoi(argv[i] + 6);
  }
  const char *so = strcmp(argv[4], "-") ? argv[4] : "";
  return rp_child_main(atoi(argv[2]), atoi(argv[3]), so, &o);
}

static int load_synth(const char *spec, uint64_t def_events, rp_plan_t *plan, char *err, size_t errlen) {
  char kind[32] = "";
  unsigned long long events = def_events;
  unsigned threads = 1;
  if (sscanf(spec, "%31[a-z],%llu,%u", kind, &events, &threads) < 1 || threads == 0 || threads > 4096) {
    snprintf(err, errlen, "--synth=%s: expected KIND[,EVENTS[,THREADS]]", spec);
    return -1;
  }
  uint64_t tids[4097];
  size_t n;
  uint32_t nth = threads;
  rp_call_t *calls = rp_synth(kind, events, &nth, &n, tids);
  if (!calls) {
    snprintf(err, errlen, "--synth: unknown kind '%s' (churn, handoff, realloc, aligned)", kind);
    return -1;
  }
  int rc = rp_plan_build(calls, n, nth, tids, plan, err, errlen);
  free(calls);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--child")) return child(argc, argv);

  enum { O_ALLOC = 1, O_COMPARE, O_RUNS, O_TOUCH, O_CHECK, O_SERIAL, O_JSON, O_CSV, O_SYNTH,
         O_BENCH, O_LATENCY, O_VERBOSE, O_HELP };
  static const struct option longopts[] = {
      {"allocator", required_argument, 0, O_ALLOC}, {"compare", required_argument, 0, O_COMPARE},
      {"runs", required_argument, 0, O_RUNS},       {"touch", no_argument, 0, O_TOUCH},
      {"check", no_argument, 0, O_CHECK},           {"serial", no_argument, 0, O_SERIAL},
      {"json", no_argument, 0, O_JSON},             {"csv", no_argument, 0, O_CSV},
      {"synth", required_argument, 0, O_SYNTH},     {"bench-engine", optional_argument, 0, O_BENCH},
      {"latency", required_argument, 0, O_LATENCY}, {"help", no_argument, 0, O_HELP},
      {"verbose", no_argument, 0, O_VERBOSE},
      {0, 0, 0, 0}};
  rp_opts_t o = {.lat_every = RP_LAT_AUTO};
  enum rp_format fmt = RP_FMT_TABLE;
  const char *names[MAX_ALLOCATORS];
  size_t nnames = 0;
  unsigned long runs = 1;
  const char *synth = NULL;
  uint64_t bench_events = 0;
  char *compare = NULL, *end;
  int c;
  while ((c = getopt_long(argc, argv, "a:", longopts, NULL)) != -1) {
    switch (c) {
    case 'a':
    case O_ALLOC:
      if (nnames == MAX_ALLOCATORS) return die(2, "too many allocators");
      names[nnames++] = optarg;
      break;
    case O_COMPARE: compare = optarg; break;
    case O_RUNS:
      errno = 0;
      runs = strtoul(optarg, &end, 10);
      if (errno || *end || runs == 0 || runs > 1000) return die(2, "--runs: expected 1..1000");
      break;
    case O_TOUCH: o.touch = 1; break;
    case O_CHECK: o.check = 1; break;
    case O_SERIAL: o.serial = 1; break;
    case O_JSON: fmt = RP_FMT_JSON; break;
    case O_CSV: fmt = RP_FMT_CSV; break;
    case O_SYNTH: synth = optarg; break;
    case O_BENCH:
      bench_events = optarg ? strtoull(optarg, &end, 10) : 20000000ull;
      if (optarg && (*end || bench_events == 0)) return die(2, "--bench-engine: expected EVENTS");
      break;
    case O_LATENCY:
      if (!strcmp(optarg, "all")) o.lat_every = 1;
      else if (!strcmp(optarg, "off")) o.lat_every = 0;
      else if ((o.lat_every = (unsigned)strtoul(optarg, &end, 10)) == 0 || *end)
        return die(2, "--latency: expected all, off or N (time 1 op in N)");
      break;
    case O_VERBOSE: rp_verbose = 1; break;
    case O_HELP: usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  for (char *tok = compare ? strtok(compare, ",") : NULL; tok; tok = strtok(NULL, ",")) {
    if (nnames == MAX_ALLOCATORS) return die(2, "too many allocators");
    names[nnames++] = tok;
  }
  if (nnames == 0) names[nnames++] = bench_events ? "glibc" : "lw";
  const char *trace = optind < argc ? argv[optind] : NULL;
  if (optind + 1 < argc) return die(2, "more than one trace given");
  if (!trace && !synth && !bench_events) {
    usage(stderr);
    return 2;
  }

  /* Resolve every allocator before spending time on the trace. */
  static rp_series_t series[MAX_ALLOCATORS];
  char err[512];
  for (size_t i = 0; i < nnames; i++) {
    series[i].name = names[i];
    if (rp_backend_resolve(names[i], series[i].so, sizeof series[i].so, err, sizeof err) != 0)
      return die(2, err);
    series[i].runs = calloc(runs, sizeof *series[i].runs);
    if (!series[i].runs) return die(2, "out of memory");
  }

  rp_plan_t plan = {.fd = -1};
  char label[PATH_MAX + 32];
  if (bench_events) {
    snprintf(label, sizeof label, "synth:churn,%llu,1", (unsigned long long)bench_events);
    if (load_synth("churn", bench_events, &plan, err, sizeof err) != 0) return die(2, err);
    o.no_rss = 1; /* nothing but the engine and the allocator on the clock */
  } else if (synth) {
    snprintf(label, sizeof label, "synth:%s", synth);
    if (load_synth(synth, 100000, &plan, err, sizeof err) != 0) return die(2, err);
  } else {
    snprintf(label, sizeof label, "%s", trace);
    if (rp_load_trace(trace, &plan, err, sizeof err) != 0) return die(2, err);
  }
  rp_plan_detach(&plan);
  if (o.lat_every == RP_LAT_AUTO)
    o.lat_every = plan.hdr->nops < RP_LAT_ALL_BELOW ? 1 : RP_LAT_EVERY_DEFAULT;

  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) return die(2, "cannot find my own executable (/proc/self/exe)");
  self[sl] = 0;

  /* Interleave: run 1 of every allocator, then run 2, ... so that drift in
   * the machine's state hits all of them alike. */
  const rp_plan_hdr_t *h = plan.hdr;
  for (size_t r = 0; r < runs; r++) {
    for (size_t i = 0; i < nnames; i++) {
      rp_result_t *res = &series[i].runs[r];
      o.label = names[i];
      if (rp_backend_run(self, series[i].so, &plan, &o, res) != 0) {
        fprintf(stderr, "lwreplay: %s\n", res->error);
        return 1;
      }
      series[i].nruns = r + 1;
      if (res->op_hash != h->plan_hash) {
        fprintf(stderr, "lwreplay: %s run %zu: op-stream hash %016llx differs from the plan's %016llx\n",
                names[i], r + 1, (unsigned long long)res->op_hash, (unsigned long long)h->plan_hash);
        return 1;
      }
      if (res->peak_live != h->trace_peak_live) {
        fprintf(stderr, "lwreplay: %s run %zu: peak live bytes %llu differ from the trace's %llu\n",
                names[i], r + 1, (unsigned long long)res->peak_live,
                (unsigned long long)h->trace_peak_live);
        return 1;
      }
    }
  }
  for (size_t i = 0; i < nnames; i++) rp_median(&series[i]);
  rp_report(stdout, fmt, label, &plan, series, nnames, &o);
  if (bench_events && fmt == RP_FMT_TABLE)
    printf("\nengine: %.2f M events/s on one thread with %s, %.2f M per CPU-second "
           "(latency: %s; target >= 20 M/s)\n",
           series[0].median.events_per_s / 1e6, names[0],
           series[0].median.cpu_s > 0 ? (double)h->nops / series[0].median.cpu_s / 1e6 : 0,
           o.lat_every == 0 ? "off" : o.lat_every == 1 ? "every op" : "sampled");
  rp_plan_unmap(&plan);
  for (size_t i = 0; i < nnames; i++) free(series[i].runs);
  return 0;
}
