/* elfsym: function symbols of one ELF file, read with <elf.h> (no external
 * tools): .symtab when present, else .dynsym; a separate debug file
 * /usr/lib/debug/.build-id/xx/yyyy.debug is preferred when it exists. */
#ifndef LWT_ELFSYM_H
#define LWT_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

typedef struct elfsym_s elfsym_t;

/* Loads the function symbols of path (build_id: hex string or NULL).
 * NULL if the file cannot be read, is not a 64-bit little-endian ELF, or
 * carries another build-id than build_id (a rebuilt or updated file). */
elfsym_t *elfsym_load(const char *path, const char *build_id);
/* The hex of the file's build-id note ("" if it has none). */
const char *elfsym_build_id(const elfsym_t *e);
/* Name of the function covering ELF virtual address vaddr, NULL if none;
 * *offset = vaddr - function start. */
const char *elfsym_lookup(const elfsym_t *e, uint64_t vaddr, uint64_t *offset);
/* The same for a return address: names the call before it (vaddr - 1);
 * *offset = vaddr - function start. */
const char *elfsym_lookup_ra(const elfsym_t *e, uint64_t vaddr, uint64_t *offset);
size_t elfsym_count(const elfsym_t *e);
void elfsym_free(elfsym_t *e);

#endif /* LWT_ELFSYM_H */
