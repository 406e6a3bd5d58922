/* Importer: the writer thread. While the record stream is imported, the
 * main thread reads, decodes and derives; this thread binds and steps the
 * SQLite statements (about two thirds of the import's CPU time), so on two
 * cores the two halves overlap.
 *
 * Rows travel in batches of WR_BATCH_WORDS words through a bounded queue
 * of WR_BATCHES batches (memory: WR_BATCHES × 256 KiB, whatever the
 * trace). A row is [statement][n][n words of parameters], a parameter being
 * (index << 8 | ROW_INT, value), (index << 8 | ROW_NULL) or
 * (index << 8 | ROW_TEXT, a strdup'ed string the writer frees), or
 * (n << 8 | ROW_ROWS, n rows for the virtual table lwv_rows). The writer
 * steps the rows in queue order, committing every IMPORT_BATCH rows as
 * step_reset does, so the database is the one the rows would make when
 * stepped at once (LWV_WRITER=0). The connection is used by one thread at
 * a time: by the writer from lwv_wr_start to lwv_wr_stop (the main thread
 * touches no statement meanwhile), by the main thread otherwise.
 *
 * A failed step stops the writer stepping (the rest of the queue is
 * dropped); the main thread sees it at its next batch and fails with the
 * writer's message. */
#include <pthread.h>

#include "import_internal.h"

#define WR_BATCH_WORDS (32u * 1024) /* 256 KiB */
#define WR_BATCHES 8

typedef struct batch_s {
  uint64_t w[WR_BATCH_WORDS];
  size_t used; /* words of whole rows */
} batch_t;

struct writer_s {
  importer_t *im;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv_full, cv_free; /* a batch was queued / handed back */
  batch_t *batches;                /* WR_BATCHES */
  size_t full[WR_BATCHES];         /* queued batches, in order: a ring */
  size_t full_head, nfull;
  size_t freel[WR_BATCHES]; /* batches nobody holds */
  size_t nfree;
  int waiting;   /* the main thread waits for free batches */
  int stopping;  /* no more batches will come */
  int failed;    /* a step failed: err holds why */
  char err[512];
  double cpu, idle; /* the writer's CPU seconds, seconds waiting for a batch */
  double blocked;   /* (main thread) seconds waiting for a free batch */
  batch_t *cur;  /* (main thread) the batch being filled, or NULL */
  uint64_t *row; /* (main thread) the row being filled */
};

/* ---- the writer thread ------------------------------------------------- */

/* Frees the strings of the rows in [p, end) (rows not stepped). */
static void free_texts(const uint64_t *p, const uint64_t *end) {
  for (; p < end; p += 2 + p[1])
    for (const uint64_t *q = p + 2; q < p + 2 + p[1]; q++) {
      if ((*q & 0xff) == ROW_TEXT) free((void *)(uintptr_t)q[1]);
      if ((*q & 0xff) == ROW_ROWS) q += (*q >> 8) * ROWS_WORDS;
      else if ((*q & 0xff) != ROW_NULL) q++;
    }
}

/* Binds and steps the rows of b; 0, or -1 with wr->err set. */
static int run_batch(writer_t *wr, const batch_t *b) {
  importer_t *im = wr->im;
  const uint64_t *p = b->w, *end = b->w + b->used;
  while (p < end) {
    sqlite3_stmt *st = (sqlite3_stmt *)(uintptr_t)p[0];
    const uint64_t *q = p + 2, *qend = q + p[1];
    for (; q < qend; q++) {
      int i = (int)(*q >> 8);
      switch (*q & 0xff) {
      case ROW_INT:
        sqlite3_bind_int64(st, i, (sqlite3_int64)q[1]);
        q++;
        break;
      case ROW_TEXT:
        sqlite3_bind_text(st, i, (const char *)(uintptr_t)q[1], -1, SQLITE_TRANSIENT);
        free((void *)(uintptr_t)q[1]);
        q++;
        break;
      case ROW_ROWS: /* i rows */
        im->rows = q + 1;
        im->nrows = (size_t)i;
        q += (size_t)i * ROWS_WORDS;
        break;
      default: sqlite3_bind_null(st, i); break;
      }
    }
    p = qend;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
      snprintf(wr->err, sizeof wr->err, "database: insert: %s", sqlite3_errmsg(im->db));
      free_texts(p, end);
      return -1;
    }
    if (++im->pending_rows >= IMPORT_BATCH) {
      im->pending_rows = 0;
      char *msg = NULL;
      if (sqlite3_exec(im->db, "COMMIT; BEGIN", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(wr->err, sizeof wr->err, "database: %s", msg ? msg : "error");
        sqlite3_free(msg);
        free_texts(p, end);
        return -1;
      }
    }
  }
  return 0;
}

static void *writer_main(void *arg) {
  writer_t *wr = arg;
  pthread_mutex_lock(&wr->mu);
  for (;;) {
    if (wr->nfull == 0 && !wr->stopping) {
      double t0 = now_s();
      while (wr->nfull == 0 && !wr->stopping) pthread_cond_wait(&wr->cv_full, &wr->mu);
      wr->idle += now_s() - t0;
    }
    if (wr->nfull == 0) break; /* stopping, and nothing left */
    size_t k = wr->full[wr->full_head];
    wr->full_head = (wr->full_head + 1) % WR_BATCHES;
    wr->nfull--;
    int failed = wr->failed;
    pthread_mutex_unlock(&wr->mu);
    batch_t *b = &wr->batches[k];
    int rc = 0;
    if (failed) free_texts(b->w, b->w + b->used);
    else rc = run_batch(wr, b);
    b->used = 0;
    pthread_mutex_lock(&wr->mu);
    if (rc != 0) wr->failed = 1;
    wr->freel[wr->nfree++] = k;
    if (wr->waiting && wr->nfree >= WR_BATCHES / 2) pthread_cond_signal(&wr->cv_free);
  }
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  wr->cpu = (double)ts.tv_sec + ts.tv_nsec / 1e9;
  pthread_mutex_unlock(&wr->mu);
  return NULL;
}

/* ---- the main thread's side -------------------------------------------- */

/* Queues the batch being filled (if any) and takes a free one (unless
 * take is 0). -1 if the writer failed (its message in im->err if report). */
static int cycle(importer_t *im, writer_t *wr, int take, int report) {
  pthread_mutex_lock(&wr->mu);
  if (wr->cur != NULL) {
    if (wr->cur->used == 0) {
      wr->freel[wr->nfree++] = (size_t)(wr->cur - wr->batches);
    } else {
      wr->full[(wr->full_head + wr->nfull) % WR_BATCHES] = (size_t)(wr->cur - wr->batches);
      wr->nfull++;
      pthread_cond_signal(&wr->cv_full);
    }
    wr->cur = NULL;
  }
  if (take) {
    if (wr->nfree == 0) { /* the writer is behind: wait until it has done half the queue */
      double t0 = now_s();
      wr->waiting = 1;
      while (wr->nfree < WR_BATCHES / 2) pthread_cond_wait(&wr->cv_free, &wr->mu);
      wr->waiting = 0;
      wr->blocked += now_s() - t0;
    }
    wr->cur = &wr->batches[wr->freel[--wr->nfree]];
  }
  int failed = wr->failed;
  pthread_mutex_unlock(&wr->mu);
  if (failed && report) snprintf(im->err, im->errlen, "%s", wr->err);
  return failed ? -1 : 0;
}

int lwv_wr_reserve(importer_t *im, sqlite3_stmt *st, size_t words) {
  writer_t *wr = im->wr;
  size_t need = 2 + words;
  if (wr->cur == NULL || wr->cur->used + need > WR_BATCH_WORDS) {
    if (cycle(im, wr, 1, 1) != 0) return -1;
  }
  wr->row = wr->cur->w + wr->cur->used;
  wr->row[0] = (uint64_t)(uintptr_t)st;
  im->wpos = wr->row + 2;
  return 0;
}

int lwv_wr_row_end(importer_t *im) {
  writer_t *wr = im->wr;
  wr->row[1] = (uint64_t)(im->wpos - (wr->row + 2));
  wr->cur->used = (size_t)(im->wpos - wr->cur->w);
  return 0;
}

int lwv_wr_start(importer_t *im) {
  const char *env = getenv("LWV_WRITER");
  if (env && strcmp(env, "0") == 0) return 0;
  writer_t *wr = calloc(1, sizeof *wr);
  if (wr == NULL) return fail(im, "%s", "out of memory");
  wr->batches = calloc(WR_BATCHES, sizeof *wr->batches); /* pages touched as used */
  if (wr->batches == NULL) {
    free(wr);
    return fail(im, "%s", "out of memory");
  }
  wr->im = im;
  for (size_t k = 0; k < WR_BATCHES; k++) wr->freel[wr->nfree++] = WR_BATCHES - 1 - k;
  pthread_mutex_init(&wr->mu, NULL);
  pthread_cond_init(&wr->cv_full, NULL);
  pthread_cond_init(&wr->cv_free, NULL);
  if (pthread_create(&wr->thread, NULL, writer_main, wr) != 0) {
    pthread_mutex_destroy(&wr->mu);
    pthread_cond_destroy(&wr->cv_full);
    pthread_cond_destroy(&wr->cv_free);
    free(wr->batches);
    free(wr);
    return 0; /* no thread: the rows are stepped at once */
  }
  im->wr = wr;
  return 0;
}

int lwv_wr_stop(importer_t *im, int report) {
  writer_t *wr = im->wr;
  if (wr == NULL) return 0;
  int rc = cycle(im, wr, 0, report);
  pthread_mutex_lock(&wr->mu);
  wr->stopping = 1;
  pthread_cond_signal(&wr->cv_full);
  pthread_mutex_unlock(&wr->mu);
  pthread_join(wr->thread, NULL);
  if (getenv("LWV_TIMING"))
    fprintf(stderr, "lwview: writer thread: %.2f s CPU, %.2f s idle; the reader waited %.2f s for it\n",
            wr->cpu, wr->idle, wr->blocked);
  if (rc == 0 && wr->failed) {
    if (report) snprintf(im->err, im->errlen, "%s", wr->err);
    rc = -1;
  }
  pthread_mutex_destroy(&wr->mu);
  pthread_cond_destroy(&wr->cv_full);
  pthread_cond_destroy(&wr->cv_free);
  free(wr->batches);
  free(wr);
  im->wr = NULL;
  im->wpos = NULL;
  return rc;
}
