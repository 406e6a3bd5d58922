/* The module map: every PT_LOAD segment of every loaded object, with its
 * GNU build id, so that stacks can be symbolised after the run. Runs on
 * the writer thread only (dl_iterate_phdr takes the loader lock; never
 * call it from a hook). A change of the object set (dlopen/dlclose) is
 * seen through dlpi_adds/dlpi_subs; an unload also clears unwind.c's
 * rule cache. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "recorder.h"

#define MOD_MAX_SEEN 4096

static struct {
  unsigned long long adds, subs;
  int have_counts;
  uint64_t seen[MOD_MAX_SEEN]; /* hash of (bias, name) of objects reported */
  unsigned nseen;
} mod;

typedef struct mod_scan_s {
  lwt_module_fn *fn;
  void *arg;
  int only_new;
  int first;
  unsigned long long adds, subs;
} mod_scan_t;

static int mod_counts(struct dl_phdr_info *info, size_t size, void *arg) {
  mod_scan_t *s = arg;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    s->adds = info->dlpi_adds;
    s->subs = info->dlpi_subs;
  }
  return 1; /* the counters are the same in every entry */
}

int _lwt_modules_changed(void) {
  mod_scan_t s = {0};
  dl_iterate_phdr(mod_counts, &s);
  int changed = !mod.have_counts || s.adds != mod.adds || s.subs != mod.subs;
  if (mod.have_counts && s.subs != mod.subs) _lwt_unwind_flush(); /* an object was unloaded */
  mod.adds = s.adds;
  mod.subs = s.subs;
  mod.have_counts = 1;
  return changed;
}

static uint64_t mod_key(uint64_t bias, const char *name) {
  uint64_t h = 1469598103934665603ull ^ bias;
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h ? h : 1;
}

static int mod_seen(uint64_t key, int add) {
  for (unsigned i = 0; i < mod.nseen; i++)
    if (mod.seen[i] == key) return 1;
  if (add && mod.nseen < MOD_MAX_SEEN) mod.seen[mod.nseen++] = key;
  return 0;
}

/* Finds NT_GNU_BUILD_ID in the object's PT_NOTE segments. */
static uint32_t mod_build_id(const struct dl_phdr_info *info, const uint8_t **id) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
    const uint8_t *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      size_t namesz = (nh->n_namesz + 3u) & ~3u, descsz = (nh->n_descsz + 3u) & ~3u;
      const uint8_t *name = p + sizeof *nh, *desc = name + namesz;
      if (desc + descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
          nh->n_descsz <= 64) {
        *id = desc;
        return nh->n_descsz;
      }
      p = desc + descsz;
    }
  }
  *id = NULL;
  return 0;
}

static int mod_visit(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  mod_scan_t *s = arg;
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  static char exe[4096];
  if (s->first && name[0] == 0) { /* the main program */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    name = exe;
  }
  s->first = 0;
  uint64_t key = mod_key(info->dlpi_addr, name);
  if (mod_seen(key, 1) && s->only_new) return 0;
  const uint8_t *id;
  uint32_t idlen = mod_build_id(info, &id);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uint64_t start = info->dlpi_addr + ph->p_vaddr;
    s->fn(s->arg, start, start + ph->p_memsz, ph->p_offset, info->dlpi_addr, name, id, idlen);
  }
  return 0;
}

void _lwt_modules_scan(lwt_module_fn *fn, void *arg, int only_new) {
  mod_scan_t s = {fn, arg, only_new, 1, 0, 0};
  dl_iterate_phdr(mod_visit, &s);
}

void _lwt_modules_forget(void) {
  mod.nseen = 0;
  mod.have_counts = 0;
}
