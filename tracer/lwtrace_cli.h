/* The lwtrace CLI's commands (lwtrace.c dispatches; one file per command). */
#ifndef LWTRACE_CLI_H
#define LWTRACE_CLI_H

#include <stdio.h>

#include "trace_read.h"

/* trace_dump.c */
void lwt_print_header(FILE *f, const lwt_header_t *h);
void lwt_print_record(FILE *f, const lwt_record_t *r);
int lwt_cmd_dump(const char *path);
/* trace_info.c */
int lwt_cmd_info(const char *path, int json);
/* trace_record.c */
int lwt_cmd_record(int argc, char **argv);

#endif /* LWTRACE_CLI_H */
