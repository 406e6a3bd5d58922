/* Call stacks: the lock-free intern table (the hook calls unw_backtrace
 * itself, one frame less to walk, and hands the frames to
 * _lwt_stack_intern).
 *
 * Every distinct stack is stored once in an arena of fixed-size entries
 * (id = index + 1) and found through an open-addressing table of entry
 * ids. Both live in mmap'd memory reserved once (MAP_NORESERVE: only
 * touched pages cost RAM), so the hot path never allocates and never
 * locks: a known stack costs one hash + probe; a new one a fetch_add on the
 * arena top and a CAS on a table slot.
 *
 * Entry states:  FILLING -> READY (published by the CAS)   or
 *                FILLING -> DEAD  (lost the CAS race to an equal stack)
 *                READY   -> EMITTED (the writer wrote its STACK record)
 * Invariant: a table slot only ever points at a READY or EMITTED entry,
 * so every stack id a CALL record holds was READY before the CALL was put
 * in a lane; the writer drains lanes before emitting stacks, hence a STACK
 * record always precedes the first CALL that uses it in the file.
 */
#define UNW_LOCAL_ONLY
#define _GNU_SOURCE
#include <libunwind.h>

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#include "recorder.h"

enum { STK_FILLING = 0, STK_READY = 1, STK_DEAD = 2, STK_EMITTED = 3 };

#define STK_SLOTS (1u << 21) /* table slots; load stays below 1/2 */
#define STK_ARENA_BYTES (512ull << 20)
#define STK_PROBES 64

typedef struct stk_entry_s {
  _Atomic uint32_t state;
  uint32_t depth;
  uint64_t hash;
  uint64_t ips[]; /* stk.depth slots, depth used */
} stk_entry_t;

static struct {
  _Atomic uint32_t *slots;
  uint8_t *arena;
  size_t esize;
  uint32_t max_entries;
  unsigned depth;
  uint64_t own_lo, own_hi; /* code of this object (frames to skip) */
  int own_is_main;
  /* written while recording: kept off the line every capture reads */
  _Alignas(LWT_LINE) _Atomic uint32_t top; /* entries handed out (may exceed max_entries) */
  _Alignas(LWT_LINE) uint32_t emit_lo;     /* writer: entries below are EMITTED or DEAD */
} stk;

static stk_entry_t *stk_entry(uint32_t idx) { return (stk_entry_t *)(stk.arena + (size_t)idx * stk.esize); }

static int stk_find_self(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uint64_t self = (uint64_t)(uintptr_t)arg, lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
    if (s < lo) lo = s;
    if (e > hi) hi = e;
  }
  if (self < lo || self >= hi) return 0;
  stk.own_lo = lo;
  stk.own_hi = hi;
  stk.own_is_main = info->dlpi_name == NULL || info->dlpi_name[0] == 0;
  return 1;
}

int _lwt_stacks_init(unsigned depth) {
  if (stk.slots) return 0; /* kept across stop/start: ids stay valid */
  if (depth == 0) return 0;
  stk.depth = LWT_MAX_DEPTH; /* entries sized for any later depth */
  stk.esize = sizeof(stk_entry_t) + sizeof(uint64_t) * stk.depth;
  stk.max_entries = (uint32_t)(STK_ARENA_BYTES / stk.esize);
  if (stk.max_entries > STK_SLOTS / 2) stk.max_entries = STK_SLOTS / 2;
  void *slots = mmap(NULL, STK_SLOTS * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void *arena = mmap(NULL, (size_t)stk.max_entries * stk.esize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (slots == MAP_FAILED || arena == MAP_FAILED) {
    if (slots != MAP_FAILED) munmap(slots, STK_SLOTS * sizeof(uint32_t));
    if (arena != MAP_FAILED) munmap(arena, (size_t)stk.max_entries * stk.esize);
    return -1;
  }
  stk.arena = arena;
  /* per-thread unwind caches: the default global cache takes a lock on
   * every unw_backtrace (heaptrack sets the same) */
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  unw_set_cache_size(unw_local_addr_space, 1024, 0);
  dl_iterate_phdr(stk_find_self, (void *)(uintptr_t)&_lwt_stacks_init);
  stk.slots = slots;
  return 0;
}

/* Four independent multiply chains: a stack of 20 frames hashes in about
 * a quarter of the latency of one chain. */
static uint64_t stk_hash(const uint64_t *ips, unsigned n) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h[4] = {0x243F6A8885A308D3ull ^ n, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                   0x082EFA98EC4E6C89ull};
  unsigned i = 0;
  for (; i + 4 <= n; i += 4)
    for (unsigned j = 0; j < 4; j++) h[j] = (h[j] ^ ips[i + j]) * k;
  for (unsigned j = 0; i < n; i++, j++) h[j] = (h[j] ^ ips[i]) * k;
  uint64_t r = h[0] ^ (h[1] >> 7 | h[1] << 57) ^ (h[2] >> 19 | h[2] << 45) ^ (h[3] >> 31 | h[3] << 33);
  r = (r ^ (r >> 29)) * k;
  return r ^ (r >> 32);
}

/* Per-thread memo of recent stack ids, sets indexed by the innermost frames
 * (cheap to hash), STK_MEMO_WAYS ids a set, most recently used first. A hit
 * is only taken after comparing every frame with the interned entry, so it
 * never yields a different stack; it saves the full hash and the probe of
 * the large, cache-cold slot table. Ids stay valid for the life of the
 * process (the arena is never cleared). Ways because stacks that share
 * their innermost frames are common (python3's allocation helpers, called
 * from many interpreter paths): with one id a set, 256 sets, python3
 * PYTHONMALLOC=malloc missed 2.7 M of 7.9 M lookups; with 4 ways, 64 sets
 * (the same 1 KiB), 17 k. */
#define STK_MEMO_SETS 64
#define STK_MEMO_WAYS 4
static __thread uint32_t stk_memo[STK_MEMO_SETS][STK_MEMO_WAYS] __attribute__((tls_model("initial-exec")));

static unsigned stk_memo_index(void *const *frames, unsigned n) {
  uint64_t k = (uint64_t)(uintptr_t)frames[0] ^ n;
  if (n > 1) k ^= (uint64_t)(uintptr_t)frames[1] << 1;
  if (n > 2) k ^= (uint64_t)(uintptr_t)frames[2] << 2;
  return (unsigned)((k * 0x9E3779B97F4A7C15ull) >> 56) % STK_MEMO_SETS;
}

static uint32_t stk_intern(const uint64_t *ips, unsigned n) {
  uint64_t h = stk_hash(ips, n);
  uint32_t mask = STK_SLOTS - 1, idx = (uint32_t)h & mask;
  uint32_t mine = 0; /* our FILLING/READY entry id, once made */
  for (unsigned probe = 0; probe < STK_PROBES; probe++, idx = (idx + 1) & mask) {
    uint32_t v = atomic_load_explicit(&stk.slots[idx], memory_order_acquire);
    if (v == 0) {
      if (!mine) {
        uint32_t i = atomic_fetch_add_explicit(&stk.top, 1, memory_order_relaxed);
        if (i >= stk.max_entries) return 0; /* arena full: no stack */
        stk_entry_t *e = stk_entry(i);
        e->depth = n;
        e->hash = h;
        memcpy(e->ips, ips, n * sizeof(uint64_t));
        atomic_store_explicit(&e->state, STK_READY, memory_order_release);
        mine = i + 1;
      }
      uint32_t expect = 0;
      if (atomic_compare_exchange_strong_explicit(&stk.slots[idx], &expect, mine,
                                                  memory_order_acq_rel, memory_order_acquire))
        return mine;
      v = expect; /* someone else took the slot: compare with theirs */
    }
    stk_entry_t *e = stk_entry(v - 1);
    if (e->hash == h && e->depth == n && memcmp(e->ips, ips, n * sizeof(uint64_t)) == 0) {
      if (mine) atomic_store_explicit(&stk_entry(mine - 1)->state, STK_DEAD, memory_order_release);
      return v;
    }
  }
  if (mine) atomic_store_explicit(&stk_entry(mine - 1)->state, STK_DEAD, memory_order_release);
  return 0;
}

int _lwt_stacks_ready(void) { return stk.slots != NULL && _lwt_g.depth != 0; }

uint32_t _lwt_stack_intern(void *const *buf, int got) {
  if (got <= 0) return 0;
  unsigned skip = 0, n = (unsigned)got;
  if (stk.own_is_main) {
    skip = 1; /* the hook; the allocator's frames stay */
  } else {
    while (skip < n && (uint64_t)(uintptr_t)buf[skip] >= stk.own_lo &&
           (uint64_t)(uintptr_t)buf[skip] < stk.own_hi)
      skip++;
  }
  if (skip >= n) return 0;
  n -= skip;
  if (n > _lwt_g.depth) n = _lwt_g.depth;
  uint64_t ips[LWT_MAX_DEPTH];
  for (unsigned i = 0; i < n; i++) ips[i] = (uint64_t)(uintptr_t)buf[skip + i];
  uint32_t *set = stk_memo[stk_memo_index(buf + skip, n)];
  for (unsigned w = 0; w < STK_MEMO_WAYS; w++) {
    uint32_t id = set[w];
    if (!id) break;
    const stk_entry_t *e = stk_entry(id - 1);
    if (e->depth == n && memcmp(e->ips, ips, n * sizeof(uint64_t)) == 0) {
      for (; w > 0; w--) set[w] = set[w - 1]; /* most recent first */
      set[0] = id;
      return id;
    }
  }
  uint32_t id = stk_intern(ips, n);
  if (id) {
    memmove(set + 1, set, (STK_MEMO_WAYS - 1) * sizeof *set);
    set[0] = id;
  }
  return id;
}

void _lwt_stacks_emit(void (*emit)(void *arg, uint32_t id, uint32_t depth, const uint64_t *ips),
                      void *arg) {
  if (!stk.slots) return;
  uint32_t top = atomic_load_explicit(&stk.top, memory_order_acquire);
  if (top > stk.max_entries) top = stk.max_entries;
  int contiguous = 1;
  for (uint32_t i = stk.emit_lo; i < top; i++) {
    stk_entry_t *e = stk_entry(i);
    uint32_t s = atomic_load_explicit(&e->state, memory_order_acquire);
    if (s == STK_READY) {
      emit(arg, i + 1, e->depth, e->ips);
      atomic_store_explicit(&e->state, STK_EMITTED, memory_order_relaxed);
    } else if (s == STK_FILLING) {
      contiguous = 0; /* still being filled: look again next round */
    }
    if (contiguous) stk.emit_lo = i + 1;
  }
}

void _lwt_stacks_reset_emitted(void) {
  if (!stk.slots) return;
  uint32_t top = atomic_load_explicit(&stk.top, memory_order_acquire);
  if (top > stk.max_entries) top = stk.max_entries;
  for (uint32_t i = 0; i < top; i++) {
    stk_entry_t *e = stk_entry(i);
    uint32_t s = atomic_load_explicit(&e->state, memory_order_relaxed);
    if (s == STK_EMITTED) atomic_store_explicit(&e->state, STK_READY, memory_order_relaxed);
    /* an entry another thread was filling at fork time never completes */
    if (s == STK_FILLING) atomic_store_explicit(&e->state, STK_DEAD, memory_order_relaxed);
  }
  stk.emit_lo = 0;
}
