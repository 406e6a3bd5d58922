/* Loads and unloads a library 200 times, allocating between (the recorder
 * interposes dlclose to drop the stack walk's rules of the object). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dlcloser LIBRARY.so\n");
    return 2;
  }
  for (int i = 0; i < 200; i++) {
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 1;
    }
    void *volatile p = malloc(100 + (size_t)i); /* volatile: gcc drops free(malloc(n)) */
    free(p);
    if (dlclose(h) != 0) {
      fprintf(stderr, "dlclose: %s\n", dlerror());
      return 1;
    }
  }
  puts("ok");
  return 0;
}
