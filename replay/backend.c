/* Which allocator a replay runs against, and how it gets loaded.
 *
 * Every replay runs in a child that is this same executable re-executed
 * (hidden --child mode) with LD_PRELOAD=<allocator .so> (nothing for
 * glibc), so that the engine's own allocations come from the allocator
 * under test, exactly as an application's would. The parent keeps the
 * plan in a memfd that the child inherits and maps; the child writes one
 * rp_result_t back on a pipe.
 *
 * Named peers are the Debian packages, looked up in the multiarch lib dir
 * (or only in $LWREPLAY_LIBDIR when set); a missing one is reported with
 * the package to install. "lw" is liblwmalloc.so from the build tree next to
 * this executable (../lib/) or the install lib dir. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "replay.h"

#ifndef LW_INSTALL_LIBDIR
#define LW_INSTALL_LIBDIR "/usr/local/lib"
#endif
#ifndef LW_MULTIARCH
#define LW_MULTIARCH ""
#endif

typedef struct peer_s {
  const char *name;
  const char *soname; /* NULL: glibc (no preload); "" : lw */
  const char *package;
} peer_t;

static const peer_t peers[] = {
    {"lw", "", "(build the lwmalloc target)"},
    {"glibc", NULL, "libc6"},
    {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0"},
    {"jemalloc", "libjemalloc.so.2", "libjemalloc2"},
    {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
};
const char *const rp_allocator_names[] = {"lw", "glibc", "mimalloc", "jemalloc", "tcmalloc", NULL};

static int readable(const char *path) { return access(path, R_OK) == 0; }

/* The directory holding libc: the multiarch library dir of this system. */
static void libc_dir(char *dir, size_t len) {
  Dl_info info;
  dir[0] = 0;
  if (dladdr((void *)&getpid, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
    snprintf(dir, len, "%s", info.dli_fname);
    *strrchr(dir, '/') = 0;
  }
}

static int find_system_lib(const char *soname, char *out, size_t len) {
  const char *only = getenv("LWREPLAY_LIBDIR"); /* e.g. a sysroot's lib dir */
  if (only && *only) {
    snprintf(out, len, "%s/%s", only, soname);
    return readable(out) ? 0 : -1;
  }
  char dir[PATH_MAX];
  libc_dir(dir, sizeof dir);
  const char *dirs[] = {dir, NULL, "/usr/lib/" LW_MULTIARCH, "/usr/lib", "/usr/local/lib"};
  char usrdir[PATH_MAX + 8];
  if (!strncmp(dir, "/lib", 4)) snprintf(usrdir, sizeof usrdir, "/usr%s", dir), dirs[1] = usrdir;
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    if (!dirs[i] || !dirs[i][0]) continue;
    snprintf(out, len, "%s/%s", dirs[i], soname);
    if (readable(out)) return 0;
  }
  return -1;
}

static int find_lw(char *out, size_t len, char *looked, size_t looklen) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  looked[0] = 0;
  if (n > 0) {
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(out, len, "%s/../lib/liblwmalloc.so", exe);
    if (readable(out)) {
      char real[PATH_MAX];
      if (realpath(out, real)) snprintf(out, len, "%s", real);
      return 0;
    }
    snprintf(looked, looklen, "%s, ", out);
  }
  snprintf(out, len, "%s/liblwmalloc.so", LW_INSTALL_LIBDIR);
  if (readable(out)) return 0;
  size_t l = strlen(looked);
  snprintf(looked + l, looklen - l, "%s", out);
  return -1;
}

int rp_backend_resolve(const char *name, char *so, size_t solen, char *err, size_t errlen) {
  if (!strcmp(name, "null")) { /* engine overhead only: see null_fns() */
    snprintf(so, solen, "%s", RP_NULL_ALLOCATOR);
    return 0;
  }
  for (size_t i = 0; i < sizeof peers / sizeof *peers; i++) {
    const peer_t *p = &peers[i];
    if (strcmp(name, p->name) != 0) continue;
    if (!p->soname) {
      so[0] = 0;
      return 0;
    }
    if (!p->soname[0]) {
      char looked[2 * PATH_MAX];
      if (find_lw(so, solen, looked, sizeof looked) == 0) return 0;
      snprintf(err, errlen, "allocator lw: liblwmalloc.so not found (looked at %s); build the lwmalloc target", looked);
      return -1;
    }
    if (find_system_lib(p->soname, so, solen) == 0) return 0;
    snprintf(err, errlen, "allocator %s: %s not found; install it with: apt-get install %s",
             p->name, p->soname, p->package);
    return -1;
  }
  if (strchr(name, '/') || strstr(name, ".so")) {
    if (!readable(name)) {
      snprintf(err, errlen, "allocator %s: cannot read it: %s", name, strerror(errno));
      return -1;
    }
    if (!realpath(name, so)) snprintf(so, solen, "%s", name);
    return 0;
  }
  snprintf(err, errlen, "unknown allocator '%s' (valid: lw, glibc, mimalloc, jemalloc, tcmalloc, null, or PATH.so)", name);
  return -1;
}

/* ---- child side: the functions to call -------------------------------- */
static rp_fns_t base; /* what the emulations below build on */
static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void *emu_reallocarray(void *p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return base.realloc(p, bytes);
}
static void emu_free_sized(void *p, size_t size) { (void)size, base.free(p); }
static void emu_free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align, (void)size, base.free(p);
}
static void *emu_memalign(size_t align, size_t size) {
  void *p = NULL;
  if (align < sizeof(void *)) align = sizeof(void *);
  return base.posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void *emu_no_memalign(size_t align, size_t size) {
  (void)align, (void)size;
  errno = ENOMEM;
  return NULL;
}
static int emu_posix_memalign(void **out, size_t align, size_t size) {
  void *p = base.memalign(align, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
static void *emu_aligned_alloc(size_t align, size_t size) { return base.memalign(align, size); }
static void *emu_valloc(size_t size) { return base.memalign(page_size(), size); }
static void *emu_pvalloc(size_t size) {
  size_t pg = page_size();
  return base.memalign(pg, size ? (size + pg - 1) & ~(pg - 1) : pg);
}

/* dlsym(name), but only if it comes from the same object as malloc (or
 * when we replay glibc itself). */
static void *resolve(const char *name, const char *malloc_obj, int any, char *fb, size_t fblen) {
  void *f = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (f && !any && (!dladdr(f, &info) || !info.dli_fname || strcmp(info.dli_fname, malloc_obj)))
    f = NULL;
  if (!f) {
    size_t l = strlen(fb);
    snprintf(fb + l, fblen - l, "%s%s", l ? "," : "", name);
  }
  return f;
}

/* "--allocator=null": a bump pointer over a large MAP_NORESERVE region
 * (as large as the address space allows), free does nothing. It never
 * touches the memory, so replaying with it measures the engine alone
 * (--bench-engine). Thread-safe (one atomic bump). Not for --touch. */
static _Atomic(uintptr_t) null_next;
static uintptr_t null_end;

static int null_init(void) {
  for (size_t len = (size_t)1 << 46; len >= ((size_t)1 << 30); len >>= 1) {
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m != MAP_FAILED) {
      null_end = (uintptr_t)m + len;
      atomic_store(&null_next, (uintptr_t)m);
      return 0;
    }
  }
  return -1;
}

static void *null_alloc(size_t align, size_t n) {
  if (align < 16) align = 16;
  uintptr_t cur = atomic_load_explicit(&null_next, memory_order_relaxed), p, next;
  do {
    p = (cur + align - 1) & ~(uintptr_t)(align - 1);
    if (n >= null_end - p) return NULL;
    next = p + (n ? n : 1);
  } while (!atomic_compare_exchange_weak_explicit(&null_next, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed));
  return (void *)p;
}
static void *null_malloc(size_t n) { return null_alloc(16, n); }
static void *null_calloc(size_t c, size_t n) { return null_alloc(16, c * n); }
static void *null_realloc(void *p, size_t n) { (void)p; return null_alloc(16, n); }
static void *null_reallocarray(void *p, size_t c, size_t n) { (void)p; return null_alloc(16, c * n); }
static void null_free(void *p) { (void)p; }
static void null_free_sized(void *p, size_t n) { (void)p, (void)n; }
static void null_free_aligned_sized(void *p, size_t a, size_t n) { (void)p, (void)a, (void)n; }
static int null_posix_memalign(void **o, size_t a, size_t n) {
  *o = null_alloc(a, n);
  return *o ? 0 : ENOMEM;
}
static void *null_valloc(size_t n) { return null_alloc(page_size(), n); }

static const rp_fns_t null_fns = {null_malloc, null_calloc, null_realloc, null_reallocarray,
                                  null_free, null_free_sized, null_free_aligned_sized,
                                  null_alloc, null_posix_memalign, null_alloc, null_valloc,
                                  null_valloc};

/* A static executable has no dynamic symbols: the linked-in functions are
 * the allocator. */
static void static_fns(rp_fns_t *f) {
  f->malloc = malloc;
  f->free = free;
  f->calloc = calloc;
  f->realloc = realloc;
  f->reallocarray = reallocarray;
  f->memalign = memalign;
  f->posix_memalign = posix_memalign;
  f->aligned_alloc = aligned_alloc;
  f->valloc = valloc;
  f->pvalloc = pvalloc;
  f->free_sized = emu_free_sized;
  f->free_aligned_sized = emu_free_aligned_sized;
}

void rp_backend_fns(const char *so, rp_fns_t *fns, char *malloc_from, size_t mflen,
                    char *fallbacks, size_t fblen) {
  Dl_info info;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  fallbacks[0] = 0;
  if (!m) {
    static_fns(&base);
    *fns = base;
    snprintf(malloc_from, mflen, "(statically linked)");
    snprintf(fallbacks, fblen, "free_sized,free_aligned_sized");
    return;
  }
  const char *obj = dladdr(m, &info) && info.dli_fname ? info.dli_fname : "?";
  snprintf(malloc_from, mflen, "%s", obj);
  int any = !so || !so[0];
  /* The core four must be there: the parent checks malloc_from. */
  base.malloc = (void *(*)(size_t))m;
  base.free = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
  base.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "calloc");
  base.realloc = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "realloc");
  base.memalign = (void *(*)(size_t, size_t))resolve("memalign", obj, any, fallbacks, fblen);
  base.posix_memalign = (int (*)(void **, size_t, size_t))resolve("posix_memalign", obj, any, fallbacks, fblen);
  if (!base.memalign && !base.posix_memalign) /* nothing to build on: aligned ops fail */
    base.memalign = emu_no_memalign;
  if (!base.memalign) base.memalign = emu_memalign;
  if (!base.posix_memalign) base.posix_memalign = emu_posix_memalign;
  base.reallocarray = (void *(*)(void *, size_t, size_t))resolve("reallocarray", obj, any, fallbacks, fblen);
  if (!base.reallocarray) base.reallocarray = emu_reallocarray;
  base.free_sized = (void (*)(void *, size_t))resolve("free_sized", obj, any, fallbacks, fblen);
  if (!base.free_sized) base.free_sized = emu_free_sized;
  base.free_aligned_sized = (void (*)(void *, size_t, size_t))resolve("free_aligned_sized", obj, any, fallbacks, fblen);
  if (!base.free_aligned_sized) base.free_aligned_sized = emu_free_aligned_sized;
  base.aligned_alloc = (void *(*)(size_t, size_t))resolve("aligned_alloc", obj, any, fallbacks, fblen);
  if (!base.aligned_alloc) base.aligned_alloc = emu_aligned_alloc;
  base.valloc = (void *(*)(size_t))resolve("valloc", obj, any, fallbacks, fblen);
  if (!base.valloc) base.valloc = emu_valloc;
  base.pvalloc = (void *(*)(size_t))resolve("pvalloc", obj, any, fallbacks, fblen);
  if (!base.pvalloc) base.pvalloc = emu_pvalloc;
  *fns = base;
}

/* Same file? (LD_PRELOAD may name it through a symlink or relative path.) */
static int same_object(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  if (!realpath(a, ra) || !realpath(b, rb)) return !strcmp(a, b);
  return !strcmp(ra, rb);
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n, len -= (size_t)n;
  }
  return 0;
}

int rp_child_main(int plan_fd, int outfd, const char *so, const rp_opts_t *o) {
  static rp_result_t res; /* static: the child's stack stays small */
  res.magic = RP_RESULT_MAGIC;
  rp_plan_t plan = {.fd = -1};
  rp_fns_t fns;
  rp_backend_fns(so, &fns, res.malloc_from, sizeof res.malloc_from, res.fallbacks,
                 sizeof res.fallbacks);
  int null = !strcmp(so, RP_NULL_ALLOCATOR);
  if (null) {
    fns = null_fns;
    snprintf(res.malloc_from, sizeof res.malloc_from, "(null allocator: engine overhead only)");
    res.fallbacks[0] = 0;
  }
  if (null && o->touch) {
    snprintf(res.error, sizeof res.error, "null allocator: --touch would write terabytes");
    res.status = 1;
  } else if (null && null_init() != 0) {
    snprintf(res.error, sizeof res.error, "null allocator: cannot reserve address space");
    res.status = 1;
  } else if (so[0] && !null && !same_object(res.malloc_from, so)) {
    snprintf(res.error, sizeof res.error, "%s: LD_PRELOAD=%s did not take effect (malloc is from %s)",
             o->label, so, res.malloc_from);
    res.status = 1;
  } else if (rp_plan_map(plan_fd, &plan, res.error, sizeof res.error) != 0) {
    res.status = 1;
  } else {
    rp_replay(&plan, &fns, o, &res);
    rp_plan_unmap(&plan);
  }
  if (write_all(outfd, &res, sizeof res) != 0) return 3;
  close(outfd);
  return res.status ? 1 : 0;
}

/* ---- parent side ----------------------------------------------------------- */
extern char **environ;

/* environ without LD_PRELOAD, plus LD_PRELOAD=so when so is set. */
static char **child_env(const char *so, char *preload, size_t len) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 2, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
  if (so[0] && strcmp(so, RP_NULL_ALLOCATOR) != 0) {
    snprintf(preload, len, "LD_PRELOAD=%s", so);
    env[k++] = preload;
  }
  env[k] = NULL;
  return env;
}

int rp_backend_run(const char *self, const char *so, const rp_plan_t *plan, const rp_opts_t *o,
                   rp_result_t *res) {
  memset(res, 0, sizeof *res);
  int pfd[2];
  char preload[PATH_MAX + 16], a_plan[16], a_out[16], a_lat[32];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    snprintf(res->error, sizeof res->error, "pipe: %s", strerror(errno));
    return res->status = -1;
  }
  char **env = child_env(so, preload, sizeof preload);
  snprintf(a_plan, sizeof a_plan, "%d", plan->fd);
  snprintf(a_out, sizeof a_out, "%d", pfd[1]);
  const char *argv[16];
  int c = 0;
  argv[c++] = self;
  argv[c++] = "--child";
  argv[c++] = a_plan;
  argv[c++] = a_out;
  argv[c++] = so[0] ? so : "-";
  argv[c++] = o->label ? o->label : "?";
  if (o->touch) argv[c++] = "--touch";
  if (o->check) argv[c++] = "--check";
  if (o->serial) argv[c++] = "--serial";
  if (o->no_rss) argv[c++] = "--no-rss";
  snprintf(a_lat, sizeof a_lat, "--lat=%u", o->lat_every);
  argv[c++] = a_lat;
  argv[c] = NULL;
  fflush(NULL);
  pid_t pid = env ? fork() : -1;
  if (pid == 0) {
    fcntl(pfd[1], F_SETFD, 0); /* the child writes its result here */
    dup2(2, 1); /* whatever the allocator prints must not mix with our JSON/CSV */
    /* Same address layout every run: page straddling and brk/mmap bases
     * then do not vary, which keeps RSS repeatable (best effort). */
    int pers = personality(0xffffffff);
    if (pers != -1) personality((unsigned long)pers | ADDR_NO_RANDOMIZE);
    execve(self, (char *const *)argv, env);
    _exit(127);
  }
  free(env);
  close(pfd[1]);
  if (pid < 0) {
    close(pfd[0]);
    snprintf(res->error, sizeof res->error, "fork: %s", strerror(errno));
    return res->status = -1;
  }
  size_t got = 0;
  while (got < sizeof *res) {
    ssize_t n = read(pfd[0], (char *)res + got, sizeof *res - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(pfd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (got != sizeof *res || res->magic != RP_RESULT_MAGIC) {
    memset(res, 0, sizeof *res);
    if (WIFSIGNALED(status))
      snprintf(res->error, sizeof res->error, "%s: replay died of signal %d (%s)", o->label,
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
      snprintf(res->error, sizeof res->error, "%s: replay exited with status %d and no result",
               o->label, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return res->status = -1;
  }
  return res->status ? -1 : 0;
}
