/* The fast stack walk: CFA rules read from .eh_frame, cached per code
 * address, so that a frame seen before costs a hash probe and two loads.
 *
 * A rule says how to get from a frame at address pc to its caller:
 *     CFA = (sp or fp) + cfa_off
 *     RA  = *(CFA + ra_off)      (or: still in the link register, aarch64,
 *                                 first frame only)
 *     fp' = *(CFA + fp_off)      (or: unchanged)
 *     sp' = CFA
 * (x86-64: sp rsp, fp rbp, RA rip at CFA-8; aarch64: sp, fp x29, RA x30.)
 * Everything else a CFI program can say (DWARF expressions, a CFA on
 * another register, signal frames, pointer authentication, unknown
 * opcodes or augmentations, no object or no FDE for pc) gives the rule
 * FALLBACK: the whole stack is then taken by unw_backtrace (the caller's
 * job: _lwt_unwind returns -1), so no stack is ever guessed. A return
 * address rule of DW_CFA_undefined (_start, clone) gives END: the stack
 * ends there, as it does for libunwind.
 *
 * The cache (uw.table): 2^16 words, one per slot, written and read with
 * single relaxed atomic 64-bit accesses; no lock, no allocation, so it is
 * safe in signal handlers and across fork (a word is always whole).
 * A word is (tag << 32 | packed rule). pc, below 2^48, is mapped by a
 * bijection p = pc * K mod 2^48 (K odd); the slot is p's top 16 bits, the
 * tag its low 32. Invariant: a slot holds 0 or a word written for a pc
 * with that slot and tag, i.e. exactly that pc, with the rule parsed from
 * the object mapped at pc when it was written. A miss parses (lock-free:
 * _dl_find_object, a binary search of .eh_frame_hdr, one FDE) and stores
 * the word; two threads storing the same slot both store whole words.
 * A parser only parses addresses on its own live stack, so the object
 * cannot be unloaded meanwhile; when one is unloaded, _lwt_unwind_flush
 * (modules.c, on a change of the object set) clears the table, so no rule
 * outlives its object for longer than that poll (see Known limits).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recorder.h"

#if defined(__x86_64__)
#define UW_SP 7
#define UW_FP 6
#define UW_RA 16
#define UW_ARCH 1
#elif defined(__aarch64__)
#define UW_SP 31
#define UW_FP 29
#define UW_RA 30
#define UW_ARCH 1
#else
#define UW_ARCH 0
#endif

#if UW_ARCH && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define UW_HAVE_FIND_OBJECT 1
#else
#define UW_HAVE_FIND_OBJECT 0
#endif

#define UW_SLOT_BITS 16
#define UW_PC_BITS 48
#define UW_MUL 0x9E3779B97F4A7C15ull
#define UW_MAX_FRAME (1ull << 30) /* a CFA further than this above sp: not believed */
#define UW_STATES 16              /* DW_CFA_remember_state depth */

enum { UW_EMPTY = 0, UW_STEP = 1, UW_END = 2, UW_FALLBACK = 3 };

typedef struct uw_rule_s {
  int kind;
  int cfa_fp;   /* CFA from fp, else from sp */
  int fp_saved; /* fp' = *(CFA + fp_off), else unchanged */
  int ra_inreg; /* RA in the link register, else *(CFA + ra_off) */
  int64_t cfa_off, fp_off, ra_off;
} uw_rule_t;

static struct {
  int enabled; /* read at start: LW_TRACE_UNWIND=libunwind clears it */
  _Atomic uint64_t table[1u << UW_SLOT_BITS];
} uw;

/* ---- the packed rule ---------------------------------------------------
 *   bits  0-1   kind
 *   bit   2     cfa_fp
 *   bit   3     fp_saved
 *   bit   4     ra_inreg
 *   bits  5-11  fp_off / 8, signed
 *   bits 12-18  ra_off / 8, signed
 *   bits 19-31  cfa_off / 8, unsigned
 * A rule that does not fit is not cached (parsed again on every walk). */

static int uw_fits(int64_t v, int bits, int is_signed) {
  if (v & 7) return 0;
  v /= 8;
  return is_signed ? v >= -(1ll << (bits - 1)) && v < (1ll << (bits - 1)) : v >= 0 && v < (1ll << bits);
}

static uint32_t uw_pack(const uw_rule_t *r) {
  if (r->kind != UW_STEP) return (uint32_t)r->kind;
  if (!uw_fits(r->cfa_off, 13, 0) || !uw_fits(r->fp_off, 7, 1) || !uw_fits(r->ra_off, 7, 1)) return 0;
  return UW_STEP | (uint32_t)r->cfa_fp << 2 | (uint32_t)r->fp_saved << 3 | (uint32_t)r->ra_inreg << 4 |
         ((uint32_t)(r->fp_off / 8) & 0x7f) << 5 | ((uint32_t)(r->ra_off / 8) & 0x7f) << 12 |
         (uint32_t)(r->cfa_off / 8) << 19;
}

static inline int64_t uw_sext7(uint32_t v) { return (int64_t)(int8_t)(uint8_t)(v << 1) / 2; }

static inline void uw_unpack(uint32_t w, uw_rule_t *r) {
  r->kind = (int)(w & 3);
  r->cfa_fp = (int)(w >> 2 & 1);
  r->fp_saved = (int)(w >> 3 & 1);
  r->ra_inreg = (int)(w >> 4 & 1);
  r->fp_off = uw_sext7(w >> 5 & 0x7f) * 8;
  r->ra_off = uw_sext7(w >> 12 & 0x7f) * 8;
  r->cfa_off = (int64_t)(w >> 19) * 8;
}

/* ---- reading .eh_frame -------------------------------------------------- */

typedef struct uw_in_s {
  const uint8_t *p, *end;
  int bad;
} uw_in_t;

static uint64_t uw_uleb(uw_in_t *in) {
  uint64_t v = 0;
  for (unsigned shift = 0; in->p < in->end; shift += 7) {
    uint8_t b = *in->p++;
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  in->bad = 1;
  return 0;
}

static int64_t uw_sleb(uw_in_t *in) {
  uint64_t v = 0;
  unsigned shift = 0;
  while (in->p < in->end) {
    uint8_t b = *in->p++;
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) {
      if (shift < 64 && (b & 0x40)) v |= ~0ull << shift;
      return (int64_t)v;
    }
  }
  in->bad = 1;
  return 0;
}

static uint64_t uw_fixed(uw_in_t *in, unsigned n) {
  if ((size_t)(in->end - in->p) < n) {
    in->bad = 1;
    return 0;
  }
  uint64_t v = 0;
  memcpy(&v, in->p, n); /* little-endian targets only (x86-64, aarch64) */
  in->p += n;
  return v;
}

/* A DW_EH_PE_* encoded value; pcrel and datarel (base: .eh_frame_hdr) only. */
static uint64_t uw_enc(uw_in_t *in, uint8_t enc, uint64_t datarel) {
  uint64_t at = (uint64_t)(uintptr_t)in->p, v;
  switch (enc & 0x0f) {
  case 0x00: v = uw_fixed(in, 8); break;
  case 0x01: v = uw_uleb(in); break;
  case 0x02: v = uw_fixed(in, 2); break;
  case 0x03: v = uw_fixed(in, 4); break;
  case 0x04: v = uw_fixed(in, 8); break;
  case 0x09: v = (uint64_t)uw_sleb(in); break;
  case 0x0a: v = (uint64_t)(int64_t)(int16_t)uw_fixed(in, 2); break;
  case 0x0b: v = (uint64_t)(int64_t)(int32_t)uw_fixed(in, 4); break;
  case 0x0c: v = uw_fixed(in, 8); break;
  default: in->bad = 1; return 0;
  }
  switch (enc & 0x70) {
  case 0x00: break;
  case 0x10: v += at; break;
  case 0x30: v += datarel; break;
  default: in->bad = 1; return 0;
  }
  if (enc & 0x80) in->bad = 1; /* indirect: not for code addresses */
  return v;
}

/* Rule of one tracked register while a CFI program runs. */
enum { REG_SAME = 0, REG_OFFSET, REG_UNDEF, REG_OTHER };
typedef struct uw_reg_s {
  int how;
  int64_t off;
} uw_reg_t;

typedef struct uw_state_s {
  unsigned cfa_reg;
  int cfa_expr; /* CFA given by an expression (or never defined) */
  int64_t cfa_off;
  uw_reg_t fp, ra;
  int sp_touched; /* a rule for sp itself: not sp = CFA */
} uw_state_t;

typedef struct uw_cie_s {
  uint64_t code_align;
  int64_t data_align;
  uint8_t fde_enc;
  int aug_z;
  const uint8_t *insns, *insns_end;
} uw_cie_t;

static uw_reg_t *uw_reg(uw_state_t *s, uint64_t reg) {
  return reg == UW_FP ? &s->fp : reg == UW_RA ? &s->ra : NULL;
}

/* Sets rule `how` for reg (other registers do not matter to the walk,
 * except sp, whose value must stay the CFA). */
static void uw_set(uw_state_t *s, uint64_t reg, int how, int64_t off) {
  uw_reg_t *r = uw_reg(s, reg);
  if (r) {
    r->how = how;
    r->off = off;
  } else if (reg == UW_SP && how != REG_SAME) {
    s->sp_touched = 1;
  }
}

/* Runs CFI instructions from loc while loc <= pc (pc = UINT64_MAX: all,
 * for a CIE's initial instructions). Returns 0, or -1 for anything this
 * unwinder does not express. */
static int uw_run(uw_in_t *in, const uw_cie_t *cie, uint64_t loc, uint64_t pc, uw_state_t *s,
                  const uw_state_t *init) {
  uw_state_t stack[UW_STATES];
  unsigned depth = 0;
  while (in->p < in->end && !in->bad) {
    uint8_t op = *in->p++, low = op & 0x3f;
    uint64_t reg, delta;
    switch (op >> 6) {
    case 1: /* DW_CFA_advance_loc */
      loc += low * cie->code_align;
      if (loc > pc) return 0;
      continue;
    case 2: /* DW_CFA_offset */
      uw_set(s, low, REG_OFFSET, (int64_t)uw_uleb(in) * cie->data_align);
      continue;
    case 3: /* DW_CFA_restore */
      if (!init) return -1;
      if (low == UW_FP) s->fp = init->fp;
      else if (low == UW_RA) s->ra = init->ra;
      else if (low == UW_SP) s->sp_touched = init->sp_touched;
      continue;
    }
    switch (op) {
    case 0x00: break; /* nop */
    case 0x01: /* set_loc */
      loc = uw_enc(in, cie->fde_enc, 0);
      if (loc > pc) return 0;
      break;
    case 0x02: case 0x03: case 0x04: /* advance_loc1/2/4 */
      delta = uw_fixed(in, op == 0x02 ? 1 : op == 0x03 ? 2 : 4);
      loc += delta * cie->code_align;
      if (loc > pc) return 0;
      break;
    case 0x05: /* offset_extended */
      reg = uw_uleb(in);
      uw_set(s, reg, REG_OFFSET, (int64_t)uw_uleb(in) * cie->data_align);
      break;
    case 0x06: /* restore_extended */
      reg = uw_uleb(in);
      if (!init) return -1;
      if (reg == UW_FP) s->fp = init->fp;
      else if (reg == UW_RA) s->ra = init->ra;
      else if (reg == UW_SP) s->sp_touched = init->sp_touched;
      break;
    case 0x07: uw_set(s, uw_uleb(in), REG_UNDEF, 0); break;
    case 0x08: uw_set(s, uw_uleb(in), REG_SAME, 0); break;
    case 0x09: /* register */
      reg = uw_uleb(in);
      uw_uleb(in);
      uw_set(s, reg, REG_OTHER, 0);
      break;
    case 0x0a:
      if (depth == UW_STATES) return -1;
      stack[depth++] = *s;
      break;
    case 0x0b:
      if (depth == 0) return -1;
      *s = stack[--depth]; /* the CFA rule too, as libgcc and libunwind do */
      break;
    case 0x0c: /* def_cfa */
      s->cfa_reg = (unsigned)uw_uleb(in);
      s->cfa_off = (int64_t)uw_uleb(in);
      s->cfa_expr = 0;
      break;
    case 0x0d: s->cfa_reg = (unsigned)uw_uleb(in); break;
    case 0x0e: s->cfa_off = (int64_t)uw_uleb(in); break;
    case 0x0f: /* def_cfa_expression */
      delta = uw_uleb(in);
      if (delta > (uint64_t)(in->end - in->p)) return -1;
      in->p += delta;
      s->cfa_expr = 1;
      break;
    case 0x10: case 0x16: /* expression, val_expression */
      reg = uw_uleb(in);
      delta = uw_uleb(in);
      if (delta > (uint64_t)(in->end - in->p)) return -1;
      in->p += delta;
      uw_set(s, reg, REG_OTHER, 0);
      break;
    case 0x11: /* offset_extended_sf */
      reg = uw_uleb(in);
      uw_set(s, reg, REG_OFFSET, uw_sleb(in) * cie->data_align);
      break;
    case 0x12: /* def_cfa_sf */
      s->cfa_reg = (unsigned)uw_uleb(in);
      s->cfa_off = uw_sleb(in) * cie->data_align;
      s->cfa_expr = 0;
      break;
    case 0x13: s->cfa_off = uw_sleb(in) * cie->data_align; break;
    case 0x14: case 0x15: /* val_offset(_sf) */
      reg = uw_uleb(in);
      if (op == 0x14) uw_uleb(in);
      else uw_sleb(in);
      uw_set(s, reg, REG_OTHER, 0);
      break;
    case 0x2e: uw_uleb(in); break; /* GNU_args_size */
    case 0x2f: /* GNU_negative_offset_extended */
      reg = uw_uleb(in);
      uw_set(s, reg, REG_OFFSET, -(int64_t)uw_uleb(in) * cie->data_align);
      break;
    default: /* 0x2d: aarch64 negate_ra_state (signed RA), and the unknown */
      return -1;
    }
  }
  return in->bad ? -1 : 0;
}

static int uw_parse_cie(const uint8_t *cie, uw_cie_t *c) {
  uw_in_t in = {cie, cie + 4, 0};
  uint32_t len = (uint32_t)uw_fixed(&in, 4);
  if (len == 0 || len == 0xffffffffu) return -1;
  in.end = cie + 4 + len;
  if (uw_fixed(&in, 4) != 0) return -1; /* CIE id */
  uint8_t version = (uint8_t)uw_fixed(&in, 1);
  if (version != 1 && version != 3) return -1;
  const char *aug = (const char *)in.p;
  size_t alen = strnlen(aug, (size_t)(in.end - in.p));
  if (alen == (size_t)(in.end - in.p)) return -1;
  in.p += alen + 1;
  c->code_align = uw_uleb(&in);
  c->data_align = uw_sleb(&in);
  uint64_t ra = version == 1 ? uw_fixed(&in, 1) : uw_uleb(&in);
  if (ra != UW_RA) return -1;
  c->fde_enc = 0;
  c->aug_z = 0;
  if (aug[0] == 'z') {
    c->aug_z = 1;
    uint64_t n = uw_uleb(&in);
    if (in.bad || n > (uint64_t)(in.end - in.p)) return -1;
    uw_in_t a = {in.p, in.p + n, 0};
    in.p += n;
    for (size_t i = 1; i < alen; i++) {
      switch (aug[i]) {
      case 'R': c->fde_enc = (uint8_t)uw_fixed(&a, 1); break;
      case 'L': uw_fixed(&a, 1); break;
      case 'P': { /* the personality routine: skipped by its size */
        uint8_t enc = (uint8_t)uw_fixed(&a, 1);
        if ((enc & 0x70) == 0x50) return -1;
        uw_enc(&a, enc & 0x7f, 0);
        a.bad = 0;
        break;
      }
      default: return -1; /* 'S' (signal frame), 'B', 'G', ... */
      }
    }
    if (a.bad) return -1;
  } else if (aug[0]) {
    return -1;
  }
  if (in.bad) return -1;
  c->insns = in.p;
  c->insns_end = in.end;
  return 0;
}

/* Finds pc's FDE through .eh_frame_hdr's sorted table and runs its CFI. */
static void uw_parse(uint64_t pc, uw_rule_t *r) {
  r->kind = UW_FALLBACK;
#if UW_HAVE_FIND_OBJECT
  struct dl_find_object fo;
  if (_dl_find_object((void *)(uintptr_t)pc, &fo) != 0 || !fo.dlfo_eh_frame) return;
  const uint8_t *hdr = fo.dlfo_eh_frame;
  if (hdr[0] != 1 || hdr[3] != 0x3b) return; /* version 1, table of datarel sdata4 pairs */
  uint64_t base = (uint64_t)(uintptr_t)hdr;
  uw_in_t in = {hdr + 4, hdr + 4 + 32, 0};
  uw_enc(&in, hdr[1], base);                 /* eh_frame_ptr: not needed */
  uint64_t count = uw_enc(&in, hdr[2], base);
  if (in.bad || count == 0) return;
  const int32_t *tab = (const int32_t *)(const void *)in.p;
  uint64_t lo = 0, hi = count; /* last entry with start <= pc */
  if (base + (uint64_t)(int64_t)tab[0] > pc) return;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (base + (uint64_t)(int64_t)tab[2 * mid] <= pc) lo = mid;
    else hi = mid;
  }
  const uint8_t *fde = (const uint8_t *)(uintptr_t)(base + (uint64_t)(int64_t)tab[2 * lo + 1]);
  uw_in_t f = {fde, fde + 8, 0};
  uint32_t len = (uint32_t)uw_fixed(&f, 4);
  if (len == 0 || len == 0xffffffffu) return;
  f.end = fde + 4 + len;
  uint32_t cie_off = (uint32_t)uw_fixed(&f, 4);
  if (cie_off == 0) return;
  uw_cie_t cie;
  if (uw_parse_cie(fde + 4 - cie_off, &cie) < 0) return;
  uint64_t start = uw_enc(&f, cie.fde_enc, 0);
  uint64_t range = uw_enc(&f, cie.fde_enc & 0x0f, 0);
  if (f.bad || pc < start || pc - start >= range) return; /* no FDE covers pc */
  if (cie.aug_z) {
    uint64_t n = uw_uleb(&f);
    if (f.bad || n > (uint64_t)(f.end - f.p)) return;
    f.p += n;
  }
  uw_state_t init = {0}, s;
  init.cfa_expr = 1; /* until the CIE defines it */
  uw_in_t ci = {cie.insns, cie.insns_end, 0};
  if (uw_run(&ci, &cie, 0, UINT64_MAX, &init, NULL) < 0) return;
  s = init;
  if (uw_run(&f, &cie, start, pc, &s, &init) < 0) return;
  if (s.ra.how == REG_UNDEF) {
    r->kind = UW_END;
    return;
  }
  if (s.cfa_expr || s.sp_touched || (s.cfa_reg != UW_SP && s.cfa_reg != UW_FP)) return;
  if (s.fp.how != REG_SAME && s.fp.how != REG_OFFSET) return;
  if (s.ra.how != REG_OFFSET && !(s.ra.how == REG_SAME && UW_RA != 16)) return;
  r->kind = UW_STEP;
  r->cfa_fp = s.cfa_reg == UW_FP;
  r->cfa_off = s.cfa_off;
  r->fp_saved = s.fp.how == REG_OFFSET;
  r->fp_off = r->fp_saved ? s.fp.off : 0;
  r->ra_inreg = s.ra.how == REG_SAME;
  r->ra_off = r->ra_inreg ? 0 : s.ra.off;
#else
  (void)pc;
#endif
}

/* ---- the cache and the walk --------------------------------------------- */

/* The per-thread level above uw.table: a small direct-mapped array of
 * (pc, packed rule) pairs, dense, so that a walk's rules stay in the L1
 * cache (uw.table's words are one a line: a deep walk's probes of it were
 * a fifth of its time on python3's interpreter stacks). Only a walk that
 * owns the thread's walk state (uw_memo_busy, below) reads or writes it, so
 * a signal handler's walk never sees a half-written pair; a change of uw_gen
 * (a flush) clears it before the next walk uses it. An entry is (pc, rule)
 * as uw.table gave or parsed it for that pc: the same invariant. */
#define UW_L1_BITS 9
typedef struct uw_l1_s {
  uint64_t pc;
  uint32_t packed; /* UW_EMPTY: no entry */
} uw_l1_t;
static __thread uw_l1_t uw_l1[1u << UW_L1_BITS] __attribute__((tls_model("initial-exec")));
static __thread uint32_t uw_l1_gen __attribute__((tls_model("initial-exec")));

static inline uint32_t uw_rule_for(uint64_t pc, uw_rule_t *r) {
  if (pc >> UW_PC_BITS) {
    uw_parse(pc, r);
    return 0;
  }
  uint64_t p = (pc * UW_MUL) & ((1ull << UW_PC_BITS) - 1);
  _Atomic uint64_t *slot = &uw.table[p >> (UW_PC_BITS - UW_SLOT_BITS)];
  uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);
  uint32_t tag = (uint32_t)p, packed;
  if ((uint32_t)(w >> 32) == tag && (packed = (uint32_t)w) != UW_EMPTY) {
    uw_unpack(packed, r);
    return packed;
  }
  uw_parse(pc, r);
  packed = uw_pack(r);
  if (packed) atomic_store_explicit(slot, (uint64_t)tag << 32 | packed, memory_order_relaxed);
  return packed;
}

static inline void uw_rule_l1(uint64_t pc, uw_rule_t *r) {
  uw_l1_t *e = &uw_l1[(pc * UW_MUL) >> (64 - UW_L1_BITS)];
  if (e->pc == pc && e->packed != UW_EMPTY) {
    uw_unpack(e->packed, r);
    return;
  }
  uint32_t packed = uw_rule_for(pc, r);
  if (packed) {
    e->pc = pc;
    e->packed = packed;
  }
}

void _lwt_unwind_init(void) {
  const char *e = getenv("LW_TRACE_UNWIND");
  uw.enabled = UW_ARCH && UW_HAVE_FIND_OBJECT && !(e && strcmp(e, "libunwind") == 0);
}

/* ---- the per-thread memo of walks ----------------------------------------
 * A walk is a function of its first registers (pc, sp, fp, and lr on
 * aarch64), of the rules (a function of pc while the objects stay loaded)
 * and of the stack words it reads (each RA slot and each saved-fp slot
 * whose value a CFA was computed from). So is the rest of a walk from any
 * frame on, given that frame's registers. Two memo tables: one keyed at
 * frame 0, one at frame UW_MEMO_AT (4). A walk looks in the first; on a
 * miss it walks, and at frame 4 looks in the second (the first frames are
 * the recorder's own and the allocator's entry, whose sp differs with the
 * caller's path while the frames above repeat); on a miss of both it
 * records an entry in each. sqlite3 (one call path, few sps): the first
 * answers 99.8 % of walks; python3 PYTHONMALLOC=malloc: frames walked for
 * 7.9 M stacks ~68 M with the first table alone, 29 M with both (16 sets
 * x 4 ways: 33 % answered by the first, 56 % by the second), 19 M with 8
 * sets x 8 ways (the same memory: 42 % and 58 %, 0.2 % walked through;
 * many of python's stacks share the sp of frame 0). A walk answered by the
 * second table completes the entry it was recording in the first with the
 * second's checks (uw_rec_join), so the same registers are answered at
 * frame 0 next time: 99.7 % answered by the first, 0.56 M frames walked.
 * An entry also keeps the stack's id, so a walk it answers skips
 * _lwt_stack_intern. An entry
 * keeps, per (pc, sp) of its frame, the slots the rest of the walk read and their
 * values; a later walk that reaches the same registers and finds every slot
 * still holding its value would read the same words at the same places and
 * produce the same frames, so it takes them without walking. fp and lr are
 * compared only when the walk used their values at that frame (without frame
 * pointers fp is any register, different each call). The loads of the
 * check are independent of each other, unlike a walk's, where each frame's
 * rule waits for the previous frame's RA.
 * Entries carry the rule cache's generation: a flush voids them all. */
#define UW_MEMO_SETS 8 /* sets of UW_MEMO_WAYS entries, chosen by sp */
#define UW_MEMO_WAYS 8
#define UW_MEMO_FRAMES 32
#define UW_MEMO_FPS 8
#define UW_MEMO_AT 4 /* the second table is keyed by the registers of this frame */

typedef struct uw_memo_s {
  uint64_t pc0, sp0, fp0, lr0; /* registers at frame UW_MEMO_AT */
  uint32_t gen;
  uint8_t max, n, nchk, nfp, valid; /* frames out; RA slots checked (n + 1: a 0 ended it) */
  uint8_t use_fp0, use_lr0;           /* the walk used the first fp / lr (else they may differ) */
  uint32_t id;                  /* the stack's id (stacks.c; 0: not known) */
  uint64_t pre[UW_MEMO_AT];     /* table 1: the frames walked before this one, for id */
  int32_t ra_at[UW_MEMO_FRAMES]; /* RA slot - sp0 (INT32_MIN: the link register) */
  int32_t fp_at[UW_MEMO_FPS];    /* saved-fp slot - sp0 */
  uint64_t ra[UW_MEMO_FRAMES], fpv[UW_MEMO_FPS];
} uw_memo_t;

static _Atomic uint32_t uw_gen = 1;
/* [0]: keyed at frame 0, [1]: at frame UW_MEMO_AT */
static __thread uw_memo_t uw_memo[2][UW_MEMO_SETS][UW_MEMO_WAYS];
static __thread uint8_t uw_memo_next[2][UW_MEMO_SETS]; /* round-robin replacement */
/* the way that answered last: the probe starts there (python3 has several
 * entries of one sp in a set: probing from way 0 checked 1.87 entries a
 * walk, from the last hit 1.44; sqlite3 1.48 -> 1.25). Replacement stays
 * round-robin (sparing the last hit's way made python3's misses 20 k ->
 * 0.5 M). */
static __thread uint8_t uw_memo_mru[2][UW_MEMO_SETS];
/* each entry's sp0, a set's on one line: a probe touches an entry (~0.5 KiB,
 * 68 KiB in all, past the L1) only when its sp matches */
static __thread uint64_t uw_memo_sp[2][UW_MEMO_SETS][UW_MEMO_WAYS];
/* set while this thread reads or writes its memo: a signal handler's
 * walk then leaves the memo alone */
static __thread volatile int uw_memo_busy;

static int uw_memo_at(uw_memo_t *m, uint64_t sp0, uint64_t addr, int32_t *at) {
  uint64_t d = addr - sp0;
  if (d > INT32_MAX) return m->valid = 0;
  *at = (int32_t)d;
  return 1;
}

void _lwt_unwind_flush(void) {
  atomic_fetch_add_explicit(&uw_gen, 1, memory_order_relaxed);
  for (size_t i = 0; i < sizeof uw.table / sizeof uw.table[0]; i++)
    atomic_store_explicit(&uw.table[i], 0, memory_order_relaxed);
}

/* A memo entry being recorded by a walk: from frame base, registers sp0... */
typedef struct uw_rec_s {
  uw_memo_t *m;
  uint64_t sp0, fp_slot;
  int base;
  int fp_src; /* fp is: 0 the first fp, 1 a slot's value not yet kept, 2 one kept */
} uw_rec_t;

/* Looks the rest of a walk up in memo table t from these registers: the
 * number of frames put in out, or -1 and *rc set to record a new entry. */
static inline __attribute__((always_inline)) int uw_memo_find(unsigned t, uint64_t pc, uint64_t sp, uint64_t fp, uint64_t lr,
                               unsigned left, uint32_t gen, int base, void **out, uw_rec_t *rc,
                               uw_memo_t **hit) {
  unsigned set = (unsigned)((sp * UW_MUL) >> 61) & (UW_MEMO_SETS - 1), mru = uw_memo_mru[t][set];
  for (unsigned k = 0; k < UW_MEMO_WAYS; k++) {
    unsigned w = (mru + k) % UW_MEMO_WAYS;
    if (uw_memo_sp[t][set][w] != sp) continue;
    const uw_memo_t *m = &uw_memo[t][set][w];
    if (!m->valid || m->sp0 != sp || m->pc0 != pc || (m->use_fp0 && m->fp0 != fp) ||
        (m->use_lr0 && m->lr0 != lr) || m->gen != gen || m->max != left)
      continue;
    int same = 1;
    for (unsigned i = 0; same && i < m->nfp; i++)
      same = *(const uint64_t *)(uintptr_t)(sp + (uint64_t)(int64_t)m->fp_at[i]) == m->fpv[i];
    for (unsigned i = 0; same && i < m->nchk; i++) {
      uint64_t v = m->ra_at[i] == INT32_MIN ? lr : *(const uint64_t *)(uintptr_t)(sp + (uint64_t)(int64_t)m->ra_at[i]);
      same = v == m->ra[i];
      if (i < m->n) out[i] = (void *)(uintptr_t)v;
    }
    if (same) {
      uw_memo_mru[t][set] = (uint8_t)w;
      *hit = (uw_memo_t *)m;
      return m->n;
    }
  }
  unsigned v = uw_memo_next[t][set]++ % UW_MEMO_WAYS;
  uw_memo_t *m = &uw_memo[t][set][v];
  uw_memo_sp[t][set][v] = sp;
  m->valid = 1;
  m->pc0 = pc;
  m->sp0 = sp;
  m->fp0 = fp;
  m->lr0 = lr;
  m->gen = gen;
  m->id = 0;
  m->max = (uint8_t)left;
  m->nfp = m->use_fp0 = m->use_lr0 = 0;
  rc->m = m;
  rc->sp0 = sp;
  rc->base = base;
  rc->fp_src = 0;
  rc->fp_slot = 0;
  return -1;
}

/* The walk computes a CFA from fp: keep where fp's value came from. */
static inline void uw_rec_fp(uw_rec_t *rc, uint64_t fp) {
  uw_memo_t *m = rc->m;
  if (rc->fp_src == 0) m->use_fp0 = 1;
  if (rc->fp_src == 1 && m->nfp == UW_MEMO_FPS) m->valid = 0;
  if (rc->fp_src == 1 && m->valid && uw_memo_at(m, rc->sp0, rc->fp_slot, &m->fp_at[m->nfp])) m->fpv[m->nfp++] = fp;
  rc->fp_src = 2;
}

/* Frame n's RA, read from ra_slot (0: the link register). */
static inline void uw_rec_ra(uw_rec_t *rc, int n, uint64_t ra_slot, uint64_t ra) {
  uw_memo_t *m = rc->m;
  int32_t at = INT32_MIN;
  if (ra_slot) uw_memo_at(m, rc->sp0, ra_slot, &at);
  else m->use_lr0 = 1;
  m->ra_at[n - rc->base] = at;
  m->ra[n - rc->base] = ra;
}

/* Table-0 entry rc, recorded from frame 0 up to frame UW_MEMO_AT, where
 * table-1 entry m1 answered the rest (sp, fp: the registers there): rc
 * takes m1's checks, moved to its own sp0, as if it had walked on. The
 * next walk from the same registers is then answered at frame 0. */
static inline void uw_rec_join(uw_rec_t *rc, const uw_memo_t *m1, uint64_t sp, uint64_t fp) {
  uw_memo_t *m = rc->m;
  if (m1->use_fp0) uw_rec_fp(rc, fp);
  if (m1->use_lr0) m->valid = 0; /* the link register past frame 0: never */
  for (unsigned i = 0; m->valid && i < m1->nfp; i++) {
    if (m->nfp == UW_MEMO_FPS) m->valid = 0;
    else if (uw_memo_at(m, rc->sp0, sp + (uint64_t)(int64_t)m1->fp_at[i], &m->fp_at[m->nfp]))
      m->fpv[m->nfp++] = m1->fpv[i];
  }
  for (unsigned i = 0; m->valid && i < m1->nchk; i++) {
    if (m1->ra_at[i] == INT32_MIN) m->valid = 0;
    else if (uw_memo_at(m, rc->sp0, sp + (uint64_t)(int64_t)m1->ra_at[i], &m->ra_at[UW_MEMO_AT + i]))
      m->ra[UW_MEMO_AT + i] = m1->ra[i];
  }
  m->n = (uint8_t)(UW_MEMO_AT + m1->n);
  m->nchk = (uint8_t)(UW_MEMO_AT + m1->nchk);
}

static inline void uw_rec_end(uw_rec_t *rc, int n, int max, int last_zero) {
  uw_memo_t *m = rc->m;
  m->valid &= n >= 0;
  m->n = m->nchk = (uint8_t)(n > rc->base ? n - rc->base : 0);
  if (n >= 0 && n < max && last_zero) m->nchk++; /* the zero RA that ended it is checked too */
}

/* The walk, inlined into the two entry points below: its first registers
 * are theirs. id NULL: frames only. */
static inline __attribute__((always_inline)) int uw_walk(void **buf, int max, uint32_t *id,
                                                       lwt_intern_fn *intern) {
  if (id) *id = 0;
  if (!uw.enabled) return -1;
#if UW_ARCH
  uint64_t pc, sp, fp, lr = 0;
  /* pc is the address of the second instruction: the CFI row there
   * describes the registers as captured */
#if defined(__x86_64__)
  __asm__ volatile("leaq 1f(%%rip), %0\n1:\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2"
                   : "=&r"(pc), "=&r"(sp), "=&r"(fp));
#else
  __asm__ volatile("adr %0, 1f\n1:\n\tmov %1, sp\n\tmov %2, x29\n\tmov %3, x30"
                   : "=&r"(pc), "=&r"(sp), "=&r"(fp), "=&r"(lr));
#endif
  uint32_t gen = atomic_load_explicit(&uw_gen, memory_order_relaxed);
  int own = !uw_memo_busy; /* this walk owns the memo and uw_l1 */
  if (own) {
    uw_memo_busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
    if (uw_l1_gen != gen) {
      memset(uw_l1, 0, sizeof uw_l1);
      uw_l1_gen = gen;
    }
  }
  /* memo entries being recorded: rc[0] from frame 0, rc[1] from UW_MEMO_AT */
  uw_rec_t rc[2];
  unsigned nrc = 0;
  uw_memo_t *hit = NULL; /* the entry that answered */
  int n = 0, first = 1, last_zero = 0;
  uint64_t fp_slot = 0;
  int fp_loaded = 0;
  if (own && max <= UW_MEMO_FRAMES) {
    int got = uw_memo_find(0, pc, sp, fp, lr, (unsigned)max, gen, 0, buf, &rc[0], &hit);
    if (got >= 0) {
      n = got;
      goto done;
    }
    nrc = 1;
  }
  while (n < max) {
    if (n == UW_MEMO_AT && own && max <= UW_MEMO_FRAMES) {
      int got = uw_memo_find(1, pc, sp, fp, lr, (unsigned)(max - n), gen, n, buf + n, &rc[nrc], &hit);
      if (got >= 0) {
        n += got;
        if (nrc) uw_rec_join(&rc[0], hit, sp, fp);
        goto done;
      }
      nrc++;
    }
    uw_rule_t r;
    if (own) uw_rule_l1(pc, &r);
    else uw_rule_for(pc, &r);
    if (r.kind == UW_END) break;
    if (r.kind != UW_STEP) {
      n = -1;
      break;
    }
    uint64_t cfa = (r.cfa_fp ? fp : sp) + (uint64_t)r.cfa_off;
    if (r.cfa_fp)
      for (unsigned i = 0; i < nrc; i++) uw_rec_fp(&rc[i], fp);
    if (cfa < sp || cfa - sp > UW_MAX_FRAME || (cfa == sp && !first)) {
      n = -1;
      break;
    }
    uint64_t ra, ra_slot = 0;
    if (r.ra_inreg) {
      if (!first) {
        n = -1;
        break;
      }
      ra = lr;
    } else {
      ra_slot = cfa + (uint64_t)r.ra_off;
      ra = *(const uint64_t *)(uintptr_t)ra_slot;
    }
    if (r.fp_saved) {
      fp_slot = cfa + (uint64_t)r.fp_off;
      fp = *(const uint64_t *)(uintptr_t)fp_slot;
      fp_loaded = 1;
    }
    sp = cfa;
    for (unsigned i = 0; i < nrc; i++) { /* the slot read even when it ends the walk */
      uw_rec_ra(&rc[i], n, ra_slot, ra);
      if (fp_loaded) {
        rc[i].fp_src = 1;
        rc[i].fp_slot = fp_slot;
      }
    }
    fp_loaded = 0;
    if (ra == 0) {
      last_zero = 1;
      break;
    }
    buf[n++] = (void *)(uintptr_t)ra;
    pc = ra - 1; /* the call instruction: its row and its FDE */
    first = 0;
  }
  for (unsigned i = 0; i < nrc; i++) uw_rec_end(&rc[i], n, max, last_zero);
done:
  if (id && own && n >= 0) {
    /* The stack's id: an entry's frames are the walk's from its base on,
     * and a table-1 entry also keeps the UW_MEMO_AT frames walked below
     * it, so equal frames give the id interned for them before. Interned
     * here while this walk owns the memo (no handler's walk touches it). */
    int hit1 = hit && hit >= &uw_memo[1][0][0]; /* an entry of table 1 */
    if (hit && hit->id && (!hit1 || memcmp(hit->pre, buf, sizeof hit->pre) == 0)) {
      *id = hit->id;
    } else {
      *id = intern(buf, n);
      if (hit) {
        hit->id = *id;
        if (hit1) memcpy(hit->pre, buf, sizeof hit->pre);
      }
    }
    for (unsigned i = 0; i < nrc; i++)
      if (rc[i].m->valid) {
        rc[i].m->id = *id;
        if (rc[i].base) memcpy(rc[i].m->pre, buf, sizeof rc[i].m->pre);
      }
  }
  if (own) {
    atomic_signal_fence(memory_order_seq_cst);
    uw_memo_busy = 0;
  }
  return n;
#else
  (void)buf;
  (void)max;
  return -1;
#endif
}

__attribute__((noinline)) int _lwt_unwind(void **buf, int max) { return uw_walk(buf, max, NULL, NULL); }

__attribute__((noinline)) int _lwt_unwind_stack(void **buf, int max, uint32_t *id, lwt_intern_fn *intern) {
  return uw_walk(buf, max, id, intern);
}
