/* libFuzzer target for elfsym (tracer/elfsym.c), which reads the module
 * files a trace names: any bytes must load as a symbol table or give NULL,
 * never a crash, a hang or a leak. The bytes are put in a memfd and loaded
 * by its /proc path, as a module file would be. Seeds: any ELF files (CTest
 * passes the fuzzer's own binary). Without libFuzzer, fuzz_main.c replays
 * files. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  if (fd < 0) fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  /* with a build id that cannot match, then without */
  elfsym_t *e = elfsym_load(path, "00");
  elfsym_free(e);
  e = elfsym_load(path, NULL);
  if (!e) return 0;
  uint64_t off;
  volatile size_t sink = 0;
  for (uint64_t a = 0; a < 1u << 20; a = a * 3 + 17) {
    const char *name = elfsym_lookup_ra(e, a, &off);
    if (name) sink += name[0] + off; /* the name must be readable */
  }
  sink += elfsym_count(e) + elfsym_build_id(e)[0];
  (void)sink;
  elfsym_free(e);
  return 0;
}
