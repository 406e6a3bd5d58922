/* Function symbols from an ELF file's .symtab/.dynsym (see elfsym.h).
 * The file is mapped read-only; every offset read from it is checked
 * against its size, so a corrupt or truncated module cannot crash its
 * reader (lwtrace info, lwview's import): it just yields no symbols. */
#include "elfsym.h"

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct elfsym_entry_s {
  uint64_t start, size;
  const char *name; /* points into the mapped file */
} elfsym_entry_t;

struct elfsym_s {
  void *map;
  size_t map_len;
  elfsym_entry_t *syms;
  size_t n;
  char build_id[2 * 64 + 1]; /* hex of the NT_GNU_BUILD_ID note, "" if none */
};

static int elfsym_cmp(const void *a, const void *b) {
  const elfsym_entry_t *x = a, *y = b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  /* among aliases prefer the sized one, then the shorter name */
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return (int)strlen(x->name) - (int)strlen(y->name);
}

static int in_file(size_t len, uint64_t off, uint64_t size) {
  return off <= len && size <= len - off;
}

/* Appends the function symbols of section `symsec` (SHT_SYMTAB/DYNSYM). */
static int elfsym_read_table(elfsym_t *e, const Elf64_Ehdr *eh, const Elf64_Shdr *sh,
                             unsigned symsec) {
  const uint8_t *base = e->map;
  const Elf64_Shdr *s = &sh[symsec];
  if (s->sh_entsize != sizeof(Elf64_Sym) || !in_file(e->map_len, s->sh_offset, s->sh_size) ||
      s->sh_link >= eh->e_shnum)
    return -1;
  const Elf64_Shdr *strs = &sh[s->sh_link];
  if (!in_file(e->map_len, strs->sh_offset, strs->sh_size) || strs->sh_size == 0) return -1;
  const char *strtab = (const char *)base + strs->sh_offset;
  if (strtab[strs->sh_size - 1] != '\0') return -1; /* names must be terminated */
  size_t count = s->sh_size / sizeof(Elf64_Sym);
  elfsym_entry_t *v = realloc(e->syms, (e->n + count) * sizeof *v);
  if (v == NULL) return -1;
  e->syms = v;
  const Elf64_Sym *sym = (const Elf64_Sym *)(base + s->sh_offset);
  for (size_t i = 0; i < count; i++) {
    unsigned type = ELF64_ST_TYPE(sym[i].st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym[i].st_shndx == SHN_UNDEF ||
        sym[i].st_value == 0 || sym[i].st_name >= strs->sh_size)
      continue;
    v[e->n++] = (elfsym_entry_t){sym[i].st_value, sym[i].st_size, strtab + sym[i].st_name};
  }
  return 0;
}

/* The hex of the file's GNU build-id note, from its SHT_NOTE sections. */
static void elfsym_read_build_id(elfsym_t *e, const Elf64_Ehdr *eh, const Elf64_Shdr *sh) {
  const uint8_t *base = e->map;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_NOTE || !in_file(e->map_len, sh[i].sh_offset, sh[i].sh_size)) continue;
    const uint8_t *p = base + sh[i].sh_offset, *end = p + sh[i].sh_size;
    while ((size_t)(end - p) >= sizeof(Elf64_Nhdr)) {
      const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(const void *)p;
      size_t name = (nh->n_namesz + 3u) & ~(size_t)3, desc = (nh->n_descsz + 3u) & ~(size_t)3;
      size_t room = (size_t)(end - p) - sizeof *nh;
      if (name > room || desc > room - name) break;
      const uint8_t *d = p + sizeof *nh + name;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
          memcmp(p + sizeof *nh, "GNU", 4) == 0 && nh->n_descsz > 0 && nh->n_descsz <= 64) {
        for (unsigned k = 0; k < nh->n_descsz; k++) snprintf(e->build_id + 2 * k, 3, "%02x", d[k]);
        return;
      }
      p += sizeof *nh + name + desc;
    }
  }
}

static elfsym_t *elfsym_load_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
    close(fd);
    return NULL;
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return NULL;
  elfsym_t *e = calloc(1, sizeof *e);
  if (e == NULL) {
    munmap(map, (size_t)st.st_size);
    return NULL;
  }
  e->map = map;
  e->map_len = (size_t)st.st_size;
  const Elf64_Ehdr *eh = map;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_shentsize != sizeof(Elf64_Shdr) ||
      !in_file(e->map_len, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))) {
    elfsym_free(e);
    return NULL;
  }
  const Elf64_Shdr *sh = (const Elf64_Shdr *)((const uint8_t *)map + eh->e_shoff);
  elfsym_read_build_id(e, eh, sh);
  int have_symtab = 0;
  for (unsigned i = 0; i < eh->e_shnum; i++)
    if (sh[i].sh_type == SHT_SYMTAB && elfsym_read_table(e, eh, sh, i) == 0) have_symtab = 1;
  if (!have_symtab)
    for (unsigned i = 0; i < eh->e_shnum; i++)
      if (sh[i].sh_type == SHT_DYNSYM) elfsym_read_table(e, eh, sh, i);
  qsort(e->syms, e->n, sizeof *e->syms, elfsym_cmp);
  return e;
}

elfsym_t *elfsym_load(const char *path, const char *build_id) {
  if (build_id != NULL && strlen(build_id) > 2) {
    char dbg[512];
    snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id, build_id + 2);
    elfsym_t *e = elfsym_load_file(dbg);
    if (e != NULL && e->n > 0) return e;
    elfsym_free(e);
  }
  elfsym_t *e = elfsym_load_file(path);
  /* another build of the file than the one recorded: its names would be wrong */
  if (e && build_id && build_id[0] && e->build_id[0] && strcmp(e->build_id, build_id) != 0) {
    elfsym_free(e);
    return NULL;
  }
  return e;
}

const char *elfsym_build_id(const elfsym_t *e) { return e ? e->build_id : ""; }

const char *elfsym_lookup(const elfsym_t *e, uint64_t vaddr, uint64_t *offset) {
  if (e == NULL || e->n == 0 || vaddr < e->syms[0].start) return NULL;
  size_t lo = 0, hi = e->n; /* last entry with start <= vaddr is in [lo, hi) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (e->syms[mid].start <= vaddr) lo = mid;
    else hi = mid;
  }
  /* step back over zero-size aliases to one whose size covers vaddr */
  for (size_t i = lo + 1; i-- > 0 && e->syms[i].start + 65536 > vaddr;) {
    const elfsym_entry_t *s = &e->syms[i];
    if (vaddr < s->start + (s->size ? s->size : 1)) {
      *offset = vaddr - s->start;
      return s->name;
    }
    if (s->start != e->syms[lo].start) break;
  }
  return NULL;
}

const char *elfsym_lookup_ra(const elfsym_t *e, uint64_t vaddr, uint64_t *offset) {
  const char *name = vaddr ? elfsym_lookup(e, vaddr - 1, offset) : NULL;
  if (name) *offset += 1;
  return name;
}

size_t elfsym_count(const elfsym_t *e) { return e ? e->n : 0; }

void elfsym_free(elfsym_t *e) {
  if (e == NULL) return;
  if (e->map) munmap(e->map, e->map_len);
  free(e->syms);
  free(e);
}
