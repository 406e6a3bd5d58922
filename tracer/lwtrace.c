/* lwtrace: record, inspect and dump lwmalloc allocation traces.
 *   lwtrace record [-o FILE] [--depth N] [--no-stacks] [--all-stacks]
 *                  [--follow-fork] [--follow-exec] -- PROG ARGS...
 *   lwtrace info [--json] FILE
 *   lwtrace dump FILE
 * Exit status: record passes PROG's through; info/dump: 0, 1 on a bad
 * trace (after printing everything readable), 2 on wrong usage. */
#include <stdio.h>
#include <string.h>

#include "lwtrace_cli.h"

static int usage(void) {
  fprintf(stderr,
          "usage: lwtrace record [-o FILE] [--depth N] [--no-stacks] [--all-stacks] "
          "[--follow-fork] [--follow-exec] -- PROG ARGS...\n"
          "       lwtrace info [--json] FILE\n"
          "       lwtrace dump FILE\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *cmd = argv[1];
  if (strcmp(cmd, "record") == 0) return lwt_cmd_record(argc - 1, argv + 1);
  if (strcmp(cmd, "info") == 0) {
    int json = 0, i = 2;
    if (i < argc && strcmp(argv[i], "--json") == 0) {
      json = 1;
      i++;
    }
    if (i + 1 != argc || argv[i][0] == '-') return usage();
    return lwt_cmd_info(argv[i], json);
  }
  if (strcmp(cmd, "dump") == 0) {
    if (argc != 3 || argv[2][0] == '-') return usage();
    return lwt_cmd_dump(argv[2]);
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage();
    return 0;
  }
  return usage();
}
