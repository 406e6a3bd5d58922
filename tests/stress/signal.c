/* malloc from a signal handler: signal [THREADS] [SIGNALS]
 *
 * malloc is not async-signal-safe (POSIX), and no allocator that uses a
 * lock can be safe when the signal interrupts malloc itself on the same
 * thread; that case is out of scope here. What an allocator can and must
 * get right is the case tested here: the handler interrupts code outside
 * the allocator (a compute loop) while other threads hold and contend the
 * allocator's locks, and the handler's malloc may be the very first
 * allocation of its thread (lazy thread-cache set-up inside a handler).
 * A deadlock makes the watchdog alarm kill the test. */
#include "stress_common.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_SECONDS 20

static atomic_int stop, target_ready;
static atomic_uint handled, handler_failures;

static void on_usr1(int sig) {
  (void)sig;
  unsigned n = atomic_load(&handled);
  size_t sizes[] = {16, 100, 2000, 20000, 300000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t sz = sizes[(i + n) % 5];
    void *p = malloc(sz);
    if (!p) { atomic_fetch_add(&handler_failures, 1); continue; }
    block_fill(p, sz, n);
    if (block_check(p, sz, n)) atomic_fetch_add(&handler_failures, 1);
    free(p);
  }
  atomic_fetch_add(&handled, 1);
}

/* Never calls malloc outside the handler. */
static void *target(void *arg) {
  (void)arg;
  volatile uint64_t x = 1;
  atomic_store(&target_ready, 1);
  while (!atomic_load(&stop)) x = x * 6364136223846793005ull + 1;
  return NULL;
}

static void *churn(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  void *mine[32] = {0};
  while (!atomic_load(&stop)) {
    unsigned i = (unsigned)(rng_next(&rng) % 32);
    free(mine[i]);
    mine[i] = malloc(rng_size(&rng, 1));
  }
  for (int i = 0; i < 32; i++) free(mine[i]);
  return NULL;
}

int main(int argc, char **argv) {
  require_allocator();
  unsigned nchurn = arg_or(argc, argv, 1, 2);
  unsigned nsignals = arg_or(argc, argv, 2, 2000);
  alarm(WATCHDOG_SECONDS); /* default action: the process dies, the test fails */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);

  pthread_t tt, ct[8];
  if (nchurn > 8) nchurn = 8;
  if (pthread_create(&tt, NULL, target, NULL) != 0) return 2;
  for (unsigned t = 0; t < nchurn; t++)
    if (pthread_create(&ct[t], NULL, churn, (void *)(uintptr_t)(t + 1)) != 0) return 2;
  while (!atomic_load(&target_ready)) sched_yield();

  struct timespec tick = {0, 20 * 1000};
  for (unsigned s = 0; s < nsignals; s++) {
    unsigned before = atomic_load(&handled);
    pthread_kill(tt, SIGUSR1);
    while (atomic_load(&handled) == before) nanosleep(&tick, NULL); /* the watchdog bounds this */
  }
  /* The main thread, too, is interrupted outside malloc (in nanosleep). */
  for (unsigned s = 0; s < 100; s++) raise(SIGUSR1);

  atomic_store(&stop, 1);
  pthread_join(tt, NULL);
  for (unsigned t = 0; t < nchurn; t++) pthread_join(ct[t], NULL);
  unsigned f = atomic_load(&handler_failures);
  printf("signal: %u handler runs, %u failures\n", atomic_load(&handled), f);
  printf("%d passed, %d failed\n", f ? 0 : 1, f ? 1 : 0);
  return f ? 1 : 0;
}
