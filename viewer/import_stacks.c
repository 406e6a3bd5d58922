/* Importer: modules, interned stacks and their symbolisation from each
 * module's ELF symbol table (elfsym.c), written at the end of pass 1. */
#include "import_internal.h"

int lwv_im_on_module(importer_t *im, const lwt_record_t *r) {
  module_t *v = grow(im->mods, &im->capmods, im->nmods + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->mods = v;
  module_t *m = &v[im->nmods++];
  m->start = r->module.start;
  m->end = r->module.end;
  m->bias = r->module.bias;
  m->path = strdup(r->module.path ? r->module.path : "");
  m->build_id = NULL;
  if (r->module.build_id_len > 0) {
    m->build_id = malloc(2 * (size_t)r->module.build_id_len + 1);
    if (m->build_id)
      for (uint32_t i = 0; i < r->module.build_id_len; i++)
        sprintf(m->build_id + 2 * i, "%02x", r->module.build_id[i]);
  }
  if (m->path == NULL) return fail(im, "%s", "out of memory");
  if (row_begin(im, im->ins_module, 7)) return -1;
  row_int(im, 1, im->nmods);
  row_int(im, 2, m->start);
  row_int(im, 3, m->end);
  row_int(im, 4, r->module.offset);
  row_int(im, 5, m->bias);
  if (row_text(im, 6, m->path)) return fail(im, "%s", "out of memory");
  if (m->build_id == NULL) row_null(im, 7);
  else if (row_text(im, 7, m->build_id)) return fail(im, "%s", "out of memory");
  return row_step(im);
}

int lwv_im_on_stack(importer_t *im, const lwt_record_t *r) {
  int added;
  uint64_t *slot = u64map_put(&im->stack_ids, (uint64_t)r->stack.id + 1, &added);
  if (slot == NULL) return fail(im, "%s", "out of memory");
  if (!added) return 0; /* already known (a fork child may repeat it) */
  stack_t_ *v = grow(im->stacks, &im->capstacks, im->nstacks + 1, sizeof *v);
  if (v == NULL) return fail(im, "%s", "out of memory");
  im->stacks = v;
  stack_t_ *s = &v[im->nstacks];
  *slot = im->nstacks++;
  s->id = r->stack.id;
  s->depth = r->stack.depth;
  s->ips = malloc((r->stack.depth ? r->stack.depth : 1) * sizeof *s->ips);
  if (s->ips == NULL) return fail(im, "%s", "out of memory");
  memcpy(s->ips, r->stack.ips, r->stack.depth * sizeof *s->ips);
  return 0;
}

/* ---- symbolisation (end of pass 1) ------------------------------------ */

static const module_t *module_of(importer_t *im, uint64_t ip) {
  for (size_t i = im->nmods; i-- > 0;) /* latest mapping wins */
    if (ip >= im->mods[i].start && ip < im->mods[i].end) return &im->mods[i];
  return NULL;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Frames inside the allocator or the tracer are not "the call site". */
static int frame_is_internal(const module_t *m) {
  return m != NULL && strstr(base_name(m->path), "lwmalloc") != NULL;
}

static const char *symbolise(importer_t *im, uint64_t ip, const module_t **mod, uint64_t *off) {
  const module_t *m = module_of(im, ip);
  *mod = m;
  if (m == NULL) return NULL;
  module_t *mm = (module_t *)m;
  if (!mm->loaded) {
    mm->loaded = 1;
    /* every PT_LOAD segment of one file shares the symbol table */
    for (size_t i = 0; i < im->nmods; i++)
      if (im->mods[i].loaded && im->mods[i].syms && strcmp(im->mods[i].path, mm->path) == 0) {
        mm->syms = im->mods[i].syms;
        break;
      }
    if (mm->syms == NULL && mm->path[0] == '/') mm->syms = elfsym_load(mm->path, mm->build_id);
  }
  return elfsym_lookup_ra(mm->syms, ip - mm->bias, off);
}

int lwv_im_write_stacks(importer_t *im) {
  sqlite3_stmt *ins_stack = NULL, *ins_frame = NULL, *ins_sym = NULL;
  u64map_t seen = {0};
  int rc = -1;
  if (prep(im, &ins_stack, "INSERT INTO stacks(id, depth, site) VALUES(?,?,?)") ||
      prep(im, &ins_frame, "INSERT INTO frames(stack_id, level, ip) VALUES(?,?,?)") ||
      prep(im, &ins_sym, "INSERT INTO symbols(ip, module_id, module_offset, func, func_offset) "
                         "VALUES(?,?,?,?,?)"))
    goto out;
  for (size_t i = 0; i < im->nstacks; i++) {
    const stack_t_ *s = &im->stacks[i];
    char site[256] = "", first[256] = "";
    for (uint32_t l = 0; l < s->depth; l++) {
      uint64_t ip = s->ips[l], off = 0;
      const module_t *m;
      const char *fn = symbolise(im, ip, &m, &off);
      char label[256];
      if (fn) snprintf(label, sizeof label, "%s+0x%llx", fn, (unsigned long long)off);
      else if (m) snprintf(label, sizeof label, "%s+0x%llx", base_name(m->path),
                           (unsigned long long)(ip - m->bias));
      else snprintf(label, sizeof label, "0x%llx", (unsigned long long)ip);
      if (l == 0) memcpy(first, label, sizeof first);
      if (!site[0] && !frame_is_internal(m)) memcpy(site, label, sizeof site);
      int added;
      uint64_t *slot = u64map_put(&seen, ip ? ip : 1, &added);
      if (slot == NULL) {
        fail(im, "%s", "out of memory");
        goto out;
      }
      if (added) {
        bind_u64(ins_sym, 1, ip, 0);
        if (m) {
          bind_u64(ins_sym, 2, (uint64_t)(m - im->mods) + 1, 0);
          bind_u64(ins_sym, 3, ip - m->bias, 0);
        } else {
          sqlite3_bind_null(ins_sym, 2);
          sqlite3_bind_null(ins_sym, 3);
        }
        if (fn) {
          sqlite3_bind_text(ins_sym, 4, fn, -1, SQLITE_TRANSIENT);
          bind_u64(ins_sym, 5, off, 0);
        } else {
          sqlite3_bind_null(ins_sym, 4);
          sqlite3_bind_null(ins_sym, 5);
        }
        if (step_reset(im, ins_sym) != 0) goto out;
      }
      bind_u64(ins_frame, 1, s->id, 0);
      bind_u64(ins_frame, 2, l, 0);
      bind_u64(ins_frame, 3, ip, 0);
      if (step_reset(im, ins_frame) != 0) goto out;
    }
    bind_u64(ins_stack, 1, s->id, 0);
    bind_u64(ins_stack, 2, s->depth, 0);
    sqlite3_bind_text(ins_stack, 3, site[0] ? site : first, -1, SQLITE_TRANSIENT);
    if (step_reset(im, ins_stack) != 0) goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(ins_stack);
  sqlite3_finalize(ins_frame);
  sqlite3_finalize(ins_sym);
  u64map_free(&seen);
  return rc;
}
