/* fork while other threads allocate: fork [THREADS] [FORKS]
 *
 * Worker threads allocate and free without pause. The main thread forks
 * repeatedly; each child allocates and frees (small, medium, large, from
 * blocks the parent's threads owned as well) and exits 0. If a lock held
 * by another thread at fork time stayed held in the child, the child
 * would hang: every child gets a deadline and is killed and counted as a
 * failure past it, so a deadlock fails the test instead of hanging it. */
#include "stress_common.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_DEADLINE_MS 10000

static atomic_int stop;
static void *shared[512];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static void *allocator_thread(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  void *mine[64] = {0};
  while (!atomic_load(&stop)) {
    unsigned i = (unsigned)(rng_next(&rng) % 64);
    free(mine[i]);
    mine[i] = malloc(rng_size(&rng, 1));
    if (rng_next(&rng) % 16 == 0) { /* blocks that the child will free */
      unsigned s = (unsigned)(rng_next(&rng) % 512);
      void *p = malloc(rng_size(&rng, 1));
      pthread_mutex_lock(&shared_lock);
      void *old = shared[s];
      shared[s] = p;
      pthread_mutex_unlock(&shared_lock);
      free(old);
    }
  }
  for (int i = 0; i < 64; i++) free(mine[i]);
  return NULL;
}

/* Runs in the child: only this thread exists now. */
static int child_work(unsigned seed) {
  uint64_t rng = seed;
  void *p[200];
  for (int i = 0; i < 200; i++) {
    size_t n = rng_size(&rng, 1);
    p[i] = malloc(n);
    if (!p[i]) return 3;
    block_fill(p[i], n, (uint64_t)i);
    if (block_check(p[i], n, (uint64_t)i)) return 4;
  }
  for (int i = 0; i < 200; i++) free(p[i]);
  /* Blocks the parent's threads allocated: the child owns copies now. The
   * lock may have been held at fork time by a thread that no longer
   * exists, so it is not taken here (the child is alone). */
  for (int s = 0; s < 512; s += 3) {
    free(shared[s]);
    shared[s] = NULL;
  }
  void *big = malloc((size_t)3 << 20);
  if (!big) return 5;
  memset(big, 1, (size_t)3 << 20);
  free(big);
  void *al = NULL;
  if (posix_memalign(&al, 4096, 10000) != 0) return 6;
  free(al);
  return 0;
}

/* Waits for `pid` up to the deadline; returns its exit status, or -1 on
 * timeout (after killing it). */
static int wait_with_deadline(pid_t pid) {
  struct timespec tick = {0, 1000 * 1000};
  for (int ms = 0; ms < CHILD_DEADLINE_MS; ms++) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -2;
    nanosleep(&tick, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

int main(int argc, char **argv) {
  require_allocator();
  unsigned nthreads = arg_or(argc, argv, 1, 3);
  unsigned forks = arg_or(argc, argv, 2, 50);
  pthread_t tid[16];
  if (nthreads > 16) nthreads = 16;
  for (unsigned t = 0; t < nthreads; t++)
    if (pthread_create(&tid[t], NULL, allocator_thread, (void *)(uintptr_t)(t + 1)) != 0) return 2;
  unsigned failed = 0;
  for (unsigned f = 0; f < forks; f++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); failed++; continue; }
    if (pid == 0) _exit(child_work(f + 100));
    int rc = wait_with_deadline(pid);
    if (rc != 0) {
      fprintf(stderr, "fork %u: child %s (%d)\n", f, rc == -1 ? "deadlocked, killed" : "failed", rc);
      failed++;
    }
    /* The parent keeps allocating between forks as well. */
    free(malloc(1000 + f));
  }
  atomic_store(&stop, 1);
  for (unsigned t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
  for (int s = 0; s < 512; s++) free(shared[s]);
  printf("fork: %u forks with %u allocating threads: %u failed\n", forks, nthreads, failed);
  printf("%u passed, %u failed\n", forks - failed, failed);
  return failed ? 1 : 0;
}
