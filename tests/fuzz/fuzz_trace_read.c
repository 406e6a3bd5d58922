/* libFuzzer target for the trace reader: any bytes must give records then
 * a clean end or a one-line error, never a crash, a hang or a leak.
 *   clang -fsanitize=fuzzer,address fuzz_trace_read.c trace_read.c -lzstd
 * Without libFuzzer, fuzz_main.c replays files (the seed corpus). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "trace_read.h"

static int read_trace(const uint8_t *data, size_t size);

/* Input "R" + bytes: the bytes are the decompressed stream (compressed
 * here), so mutations reach the record parser instead of dying in zstd. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == 'R') {
    size_t cap = ZSTD_compressBound(size - 1);
    uint8_t *z = malloc(cap);
    if (!z) return 0;
    size_t n = ZSTD_compress(z, cap, data + 1, size - 1, 1);
    if (!ZSTD_isError(n)) read_trace(z, n);
    free(z);
    return 0;
  }
  return read_trace(data, size);
}

static int read_trace(const uint8_t *data, size_t size) {
  char err[1024];
  lwt_reader_t *r = lwt_open_mem(data, size, "fuzz", err, sizeof err);
  if (!r) {
    if (strchr(err, '\n')) __builtin_trap(); /* one line */
    return 0;
  }
  const lwt_header_t *h = lwt_header(r);
  if (!h->exe) __builtin_trap();
  lwt_record_t rec;
  int rc;
  uint64_t sum = 0;
  for (unsigned n = 0; (rc = lwt_next(r, &rec)) == 1 && n < 1000000; n++) {
    /* touch every pointer the record hands out */
    switch (rec.kind) {
    case LWT_STACK:
      for (uint32_t i = 0; i < rec.stack.depth; i++) sum += rec.stack.ips[i];
      break;
    case LWT_MODULE:
      sum += strlen(rec.module.path);
      for (uint32_t i = 0; i < rec.module.build_id_len; i++) sum += rec.module.build_id[i];
      break;
    case LWT_THREAD_START:
    case LWT_THREAD_NAME: sum += strlen(rec.thread.name); break;
    case LWT_PROCESS:
      sum += strlen(rec.process.exe);
      for (uint32_t i = 0; i < rec.process.argc; i++) sum += strlen(rec.process.argv[i]);
      break;
    case LWT_POOL_SNAPSHOT:
      for (uint32_t i = 0; i < rec.pool.nclasses; i++) sum += rec.pool.classes[i].slots_used;
      break;
    case LWT_EXEC: sum += strlen(rec.exec.path); break;
    default: break;
    }
  }
  if (rc < 0) {
    const char *e = lwt_error(r);
    if (strncmp(e, "fuzz: ", 6) != 0 || strchr(e, '\n')) __builtin_trap();
  }
  lwt_close(r);
  return (int)(sum & 0); /* sum only keeps the loads alive */
}
