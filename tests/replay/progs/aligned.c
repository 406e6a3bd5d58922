/* Traced by the replay tests: every aligned allocation call, alignments
 * 16..64 KiB, freed in a different order than made. Exits 0. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void *live[32] = {0};
  for (int i = 0; i < 3000; i++) {
    size_t align = (size_t)16 << (i % 13);
    size_t size = 24 + (size_t)(i * 53 % 3000);
    void *p = NULL;
    switch (i % 5) {
    case 0: p = memalign(align, size); break;
    case 1: if (posix_memalign(&p, align, size) != 0) p = NULL; break;
    case 2: p = aligned_alloc(align, (size + align - 1) / align * align); break;
    case 3: p = valloc(size); break;
    default: p = malloc(size); break;
    }
    if (!p) return 1;
    memset(p, 1, size);
    int slot = (i * 7) % 32;
    free(live[slot]);
    live[slot] = p;
  }
  for (int i = 0; i < 32; i++) free(live[i]);
  return 0;
}
