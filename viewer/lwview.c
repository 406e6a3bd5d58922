/* lwview: imports an lwtrace file into SQLite (once) and browses it in the
 * terminal, or shows a running process's live statistics page.
 *
 *   lwview TRACE.lwt.zst        import to TRACE.db if needed, then view
 *   lwview FILE.db              view an imported trace
 *   lwview --pid PID            live view of a process run with LW_LIVE=1
 *   lwview --import-only TRACE  import and print a summary (scripts, tests)
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "import.h"
#include "live.h"
#include "ui.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: lwview [options] TRACE.lwt.zst | FILE.db\n"
          "       lwview --pid PID\n"
          "  --import-only   import the trace (if needed) and print a summary; no UI\n"
          "  --force         re-import even if the database is up to date\n"
          "  --db PATH       database to write (default: TRACE minus .lwt.zst, plus .db)\n"
          "  --quiet         no progress bar\n"
          "  --bench-views   time every view at 50 cursor positions (80x24, no terminal needed)\n"
          "  --pid PID       live view of a process running lwmalloc with LW_LIVE=1\n"
          "Schema and example queries: viewer/README.md\n");
}

enum file_kind { KIND_MISSING, KIND_DB, KIND_TRACE, KIND_OTHER };

static enum file_kind file_kind(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return KIND_MISSING;
  }
  unsigned char head[16] = {0};
  ssize_t n = read(fd, head, sizeof head);
  close(fd);
  if (n == 16 && memcmp(head, "SQLite format 3", 16) == 0) return KIND_DB;
  if (n >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
    return KIND_TRACE;
  snprintf(err, errlen, "%s: neither an lwtrace file (zstd) nor an lwview database", path);
  return KIND_OTHER;
}

static int run_live(const char *pid_text) {
  char *end;
  long pid = strtol(pid_text, &end, 10);
  char err[512];
  if (*pid_text == '\0' || *end != '\0' || pid <= 0) {
    fprintf(stderr, "lwview: --pid needs a process id, got '%s'\n", pid_text);
    return 2;
  }
  lwv_live_t live;
  if (lwv_live_attach((pid_t)pid, &live, err, sizeof err) != 0) {
    fprintf(stderr, "lwview: %s\n", err);
    return 1;
  }
  if (!isatty(STDOUT_FILENO)) {
    fprintf(stderr, "lwview: the live view needs a terminal\n");
    lwv_live_detach(&live);
    return 1;
  }
  static const lwv_view_t *const views[] = {&lwv_view_live, &lwv_view_live_pools};
  static lwv_app_t app; /* large (sample history): not on the stack */
  app.live = &live;
  app.views = views;
  app.nviews = 2;
  int rc = lwv_ui_run(&app);
  lwv_live_detach(&live);
  return rc;
}

static void print_summary(const char *db_path) {
  char err[512];
  lwv_db_t *d = lwv_db_open(db_path, err, sizeof err);
  if (d == NULL) {
    fprintf(stderr, "lwview: %s\n", err);
    return;
  }
  printf("database %s\ncalls %llu\nrecords %llu\npeak_live_bytes %llu\nfinal_live_bytes %llu\n"
         "final_live_blocks %llu\nduration_ns %llu\ncoalesce_runs %llu\npool_snapshots %llu\n",
         db_path, (unsigned long long)d->calls, (unsigned long long)d->records,
         (unsigned long long)d->peak_live, (unsigned long long)d->final_live,
         (unsigned long long)d->final_blocks, (unsigned long long)d->end_ns,
         (unsigned long long)d->n_runs, (unsigned long long)d->n_snapshots);
  lwv_db_close(d);
}

int main(int argc, char **argv) {
  int import_only = 0, force = 0, quiet = 0, bench = 0;
  const char *path = NULL, *db_arg = NULL, *pid = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--import-only") == 0) import_only = 1;
    else if (strcmp(a, "--force") == 0) force = 1;
    else if (strcmp(a, "--quiet") == 0) quiet = 1;
    else if (strcmp(a, "--bench-views") == 0) bench = 1;
    else if ((strcmp(a, "--db") == 0 || strcmp(a, "--pid") == 0) && i + 1 < argc)
      *(a[2] == 'd' ? &db_arg : &pid) = argv[++i];
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "lwview: unknown option %s (see lwview --help)\n", a);
      return 2;
    } else if (path == NULL) path = a;
    else {
      usage(stderr);
      return 2;
    }
  }
  setlocale(LC_ALL, "");
  if (pid) return run_live(pid);
  if (path == NULL) {
    usage(stderr);
    return 2;
  }
  char err[1400], warn[1400], db_path[4096];
  enum file_kind kind = file_kind(path, err, sizeof err);
  if (kind == KIND_MISSING || kind == KIND_OTHER) {
    fprintf(stderr, "lwview: %s\n", err);
    return 1;
  }
  if (kind == KIND_DB) {
    snprintf(db_path, sizeof db_path, "%s", path);
  } else {
    if (db_arg) snprintf(db_path, sizeof db_path, "%s", db_arg);
    else lwv_db_path_for(path, db_path, sizeof db_path);
    if (force || !lwv_import_is_current(path, db_path)) {
      lwv_import_stats_t st;
      if (lwv_import(path, db_path, !quiet && isatty(STDERR_FILENO), &st, warn, sizeof warn, err,
                     sizeof err) != 0) {
        fprintf(stderr, "lwview: %s\n", err);
        return 1;
      }
      if (warn[0]) fprintf(stderr, "lwview: warning: %s\n", warn);
      if (!quiet)
        fprintf(stderr, "lwview: imported %llu records (%llu calls) in %.2f s: %.2f M records/s\n",
                (unsigned long long)st.records, (unsigned long long)st.calls, st.seconds,
                st.seconds > 0 ? st.records / st.seconds / 1e6 : 0.0);
    }
  }
  if (import_only) {
    print_summary(db_path);
    return 0;
  }
  lwv_db_t *d = lwv_db_open(db_path, err, sizeof err);
  if (d == NULL) {
    fprintf(stderr, "lwview: %s\n", err);
    return 1;
  }
  static const lwv_view_t *const views[] = {&lwv_view_overview, &lwv_view_pools,
                                            &lwv_view_frag,     &lwv_view_coalesce,
                                            &lwv_view_sites,    &lwv_view_threads};
  static lwv_app_t app;
  app.db = d;
  app.views = views;
  app.nviews = 6;
  if (bench) {
    int brc = lwv_ui_bench(&app, 50);
    lwv_db_close(d);
    return brc;
  }
  if (!isatty(STDOUT_FILENO)) {
    fprintf(stderr, "lwview: stdout is not a terminal (use --import-only in scripts)\n");
    lwv_db_close(d);
    return 1;
  }
  int rc = lwv_ui_run(&app);
  lwv_db_close(d);
  return rc;
}
