/* Importer: file:line of every symbolised return address, from the
 * module's DWARF line table through addr2line, batched: one addr2line
 * process per module, fed every address of that module at once (never one
 * process per frame). Skipped when addr2line is missing, when
 * LWV_NO_SOURCE=1, or for modules without line information (addr2line
 * answers "??:0"); a module that takes longer than SOURCE_TIMEOUT_MS is
 * abandoned. */
#define _GNU_SOURCE /* memfd_create, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "import_internal.h"

#define SOURCE_TIMEOUT_MS 20000

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* addr2line says "??:0", "??:?" or "file:0" when it does not know. */
static int source_known(const char *line) {
  size_t len = strlen(line);
  if (len < 3 || line[0] == '?') return 0;
  return strcmp(line + len - 2, ":0") != 0 && strcmp(line + len - 2, ":?") != 0;
}

/* Runs `addr2line -e path` on the addresses in vaddrs[0..n) (one hex per
 * line on its stdin); lines[i] receives a malloc'ed "file:line" or NULL. */
static void addr2line_batch(const char *path, const uint64_t *vaddrs, size_t n, char **lines) {
  int in = memfd_create("lwview-addrs", MFD_CLOEXEC);
  if (in < 0) return;
  FILE *f = fdopen(dup(in), "w");
  if (f == NULL) {
    close(in);
    return;
  }
  for (size_t i = 0; i < n; i++) fprintf(f, "0x%llx\n", (unsigned long long)vaddrs[i]);
  fclose(f);
  lseek(in, 0, SEEK_SET);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in, 0);
    dup2(out[1], 1);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    execlp("addr2line", "addr2line", "-e", path, (char *)NULL);
    _exit(127);
  }
  close(in);
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return;
  }
  /* read "file:line\n" answers, in order, within the time limit */
  char buf[8192], line[4096];
  size_t have = 0, li = 0;
  int64_t deadline = ms_now() + SOURCE_TIMEOUT_MS;
  struct pollfd pfd = {out[0], POLLIN, 0};
  while (li < n) {
    int64_t left = deadline - ms_now();
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) break;
    ssize_t r = read(out[0], buf, sizeof buf);
    if (r <= 0) break;
    for (ssize_t k = 0; k < r && li < n; k++) {
      if (buf[k] != '\n') {
        if (have < sizeof line - 1) line[have++] = buf[k];
        continue;
      }
      line[have] = '\0';
      have = 0;
      char *disc = strstr(line, " (discriminator");
      if (disc) *disc = '\0';
      lines[li++] = source_known(line) ? strdup(line) : NULL;
    }
  }
  close(out[0]);
  kill(pid, SIGKILL); /* finished or not, it is done */
  waitpid(pid, NULL, 0);
}

int lwv_im_source_lines(importer_t *im) {
  const char *off = getenv("LWV_NO_SOURCE");
  if (off && *off == '1') return 0;
  sqlite3_stmt *upd = NULL;
  if (prep(im, &upd, "UPDATE symbols SET source = ? WHERE ip = ?")) return -1;
  u64map_t seen = {0};
  uint64_t *ips = NULL, *vaddrs = NULL;
  char **lines = NULL;
  size_t cap = 0, found = 0;
  int rc = 0;
  /* one batch per module file: every distinct ip of the stacks inside it */
  for (size_t m = 0; m < im->nmods && rc == 0; m++) {
    const module_t *mod = &im->mods[m];
    if (mod->path[0] != '/') continue;
    int first_of_file = 1;
    for (size_t k = 0; k < m; k++) first_of_file &= strcmp(im->mods[k].path, mod->path) != 0;
    if (!first_of_file) continue;
    size_t n = 0;
    for (size_t s = 0; s < im->nstacks; s++)
      for (uint32_t l = 0; l < im->stacks[s].depth; l++) {
        uint64_t ip = im->stacks[s].ips[l];
        const module_t *owner = NULL;
        for (size_t k = im->nmods; k-- > 0;)
          if (ip >= im->mods[k].start && ip < im->mods[k].end) {
            owner = &im->mods[k];
            break;
          }
        int added;
        if (owner == NULL || strcmp(owner->path, mod->path) != 0) continue;
        if (u64map_put(&seen, ip ? ip : 1, &added) == NULL || !added) continue;
        if (n == cap) {
          cap = cap ? cap * 2 : 256;
          uint64_t *a = realloc(ips, cap * sizeof *a), *b = realloc(vaddrs, cap * sizeof *b);
          if (a) ips = a;
          if (b) vaddrs = b;
          if (a == NULL || b == NULL) {
            rc = fail(im, "%s", "out of memory");
            break;
          }
        }
        ips[n] = ip;
        vaddrs[n++] = ip - 1 - owner->bias; /* the call instruction, not the return */
      }
    if (n == 0 || rc != 0) continue;
    lines = calloc(n, sizeof *lines);
    if (lines == NULL) {
      rc = fail(im, "%s", "out of memory");
      break;
    }
    addr2line_batch(mod->path, vaddrs, n, lines);
    for (size_t i = 0; i < n; i++) {
      if (lines[i] && rc == 0) {
        sqlite3_bind_text(upd, 1, lines[i], -1, SQLITE_TRANSIENT);
        bind_u64(upd, 2, ips[i], 0);
        rc = step_reset(im, upd);
        found++;
      }
      free(lines[i]);
    }
    free(lines);
    lines = NULL;
  }
  sqlite3_finalize(upd);
  u64map_free(&seen);
  free(ips);
  free(vaddrs);
  if (rc == 0) rc = meta_put_int(im, "source_lines", (int64_t)found);
  return rc;
}
