/* `lwtrace dump FILE`: one text line per record (the golden-test format;
 * changing it means regenerating the .dump.expected files in traces/). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lwtrace_cli.h"
#include "trace_read.h"

static int arg_is_address(const char *name) {
  return strcmp(name, "addr") == 0 || strcmp(name, "page") == 0 || strcmp(name, "old") == 0 ||
         strcmp(name, "new") == 0;
}

void lwt_print_header(FILE *f, const lwt_header_t *h) {
  fprintf(f, "HEADER version=%u.%u pid=%u ppid=%u page_size=%u depth=%u flags=0x%x start=%" PRIu64
             " exe=%s\n",
          h->version_major, h->version_minor, h->pid, h->ppid, h->page_size, h->max_depth,
          h->flags, h->start_realtime_ns, h->exe);
}

void lwt_print_record(FILE *f, const lwt_record_t *r) {
  switch (r->kind) {
  case LWT_CALL: {
    unsigned op = r->call.op;
    fprintf(f, "CALL seq=%" PRIu64 " t=%" PRIu64 " tid=%u %s", r->seq, r->time_ns, r->tid,
            lwt_op_name(op));
    if (lwt_op_has_size(op)) fprintf(f, " size=%" PRIu64, r->call.size);
    if (lwt_op_has_align(op)) fprintf(f, " align=%" PRIu64, r->call.align);
    if (lwt_op_has_in(op)) fprintf(f, " in=0x%" PRIx64, r->call.in_ptr);
    if (lwt_op_has_out(op)) fprintf(f, " out=0x%" PRIx64, r->call.out_ptr);
    if (lwt_op_has_free_seq(op)) fprintf(f, " free_seq=%" PRIu64, r->call.free_seq);
    if (r->call.stack_id) fprintf(f, " stack=%u", r->call.stack_id);
    fputc('\n', f);
    break;
  }
  case LWT_EVENT: {
    unsigned k = r->event.kind;
    const uint64_t v[3] = {r->event.a, r->event.b, r->event.c};
    fprintf(f, "EVENT seq=%" PRIu64 " t=%" PRIu64 " tid=%u %s", r->seq, r->time_ns, r->tid,
            lwt_event_name(k));
    for (unsigned i = 0; i < 3; i++) {
      const char *n = lwt_event_arg_name(k, i);
      if (!n[0]) continue;
      if (arg_is_address(n))
        fprintf(f, " %s=0x%" PRIx64, n, v[i]);
      else
        fprintf(f, " %s=%" PRIu64, n, v[i]);
    }
    fputc('\n', f);
    break;
  }
  case LWT_STACK:
    fprintf(f, "STACK id=%u depth=%u", r->stack.id, r->stack.depth);
    for (uint32_t i = 0; i < r->stack.depth; i++) fprintf(f, " 0x%" PRIx64, r->stack.ips[i]);
    fputc('\n', f);
    break;
  case LWT_MODULE:
    fprintf(f, "MODULE t=%" PRIu64 " start=0x%" PRIx64 " end=0x%" PRIx64 " offset=0x%" PRIx64
               " bias=0x%" PRIx64 " build_id=",
            r->time_ns, r->module.start, r->module.end, r->module.offset, r->module.bias);
    for (uint32_t i = 0; i < r->module.build_id_len; i++) fprintf(f, "%02x", r->module.build_id[i]);
    if (!r->module.build_id_len) fputc('-', f);
    fprintf(f, " path=%s\n", r->module.path);
    break;
  case LWT_THREAD_START:
    fprintf(f, "THREAD_START seq=%" PRIu64 " t=%" PRIu64 " tid=%u name=%s\n", r->seq, r->time_ns,
            r->tid, r->thread.name);
    break;
  case LWT_THREAD_EXIT:
    fprintf(f, "THREAD_EXIT seq=%" PRIu64 " t=%" PRIu64 " tid=%u\n", r->seq, r->time_ns, r->tid);
    break;
  case LWT_THREAD_NAME:
    fprintf(f, "THREAD_NAME t=%" PRIu64 " tid=%u name=%s\n", r->time_ns, r->tid, r->thread.name);
    break;
  case LWT_POOL_SNAPSHOT:
    fprintf(f, "POOL_SNAPSHOT t=%" PRIu64 " seq=%" PRIu64 " live=%" PRIu64 " mapped=%" PRIu64
               " committed=%" PRIu64 " unmerged=%" PRIu64 " classes=%u",
            r->time_ns, r->seq, r->pool.live_bytes, r->pool.mapped_bytes,
            r->pool.committed_bytes, r->pool.unmerged_bytes, r->pool.nclasses);
    for (uint32_t i = 0; i < r->pool.nclasses; i++)
      fprintf(f, " %" PRIu64 ":%" PRIu64 "/%" PRIu64, r->pool.classes[i].slot_size,
              r->pool.classes[i].slots_used, r->pool.classes[i].slots_total);
    fputc('\n', f);
    break;
  case LWT_PROCESS:
    fprintf(f, "PROCESS t=%" PRIu64 " pid=%u ppid=%u exe=%s argc=%u", r->time_ns, r->process.pid,
            r->process.ppid, r->process.exe, r->process.argc);
    for (uint32_t i = 0; i < r->process.argc; i++) fprintf(f, " [%s]", r->process.argv[i]);
    fputc('\n', f);
    break;
  case LWT_FORK:
    fprintf(f, "FORK seq=%" PRIu64 " t=%" PRIu64 " tid=%u parent=%u child=%u\n", r->seq,
            r->time_ns, r->tid, r->fork.parent_pid, r->fork.child_pid);
    break;
  case LWT_EXEC:
    fprintf(f, "EXEC t=%" PRIu64 " pid=%u path=%s\n", r->time_ns, r->exec.pid, r->exec.path);
    break;
  case LWT_LOST:
    fprintf(f, "LOST tid=%u count=%" PRIu64 "\n", r->tid, r->lost.count);
    break;
  case LWT_END:
    fprintf(f, "END t=%" PRIu64 " seq=%" PRIu64 " records=%" PRIu64 " lost=%" PRIu64 "\n",
            r->time_ns, r->seq, r->end.records, r->end.lost);
    break;
  default:
    fprintf(f, "? kind=%u\n", r->kind);
  }
}

int lwt_cmd_dump(const char *path) {
  char err[1024];
  lwt_reader_t *r = lwt_open(path, err, sizeof err);
  if (!r) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lwt_print_header(stdout, lwt_header(r));
  lwt_record_t rec;
  int rc;
  while ((rc = lwt_next(r, &rec)) == 1) lwt_print_record(stdout, &rec);
  fflush(stdout);
  if (rc < 0) fprintf(stderr, "%s\n", lwt_error(r));
  lwt_close(r);
  return rc < 0 ? 1 : 0;
}
