/* LEB128 varints and zigzag signed varints, shared by the recorder and the
 * reader. Encoders write at most LWT_VARINT_MAX bytes and return the new
 * end; the decoder is bounds-checked. */
#ifndef LWT_VARINT_H
#define LWT_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define LWT_VARINT_MAX 10

static inline uint8_t *lwt_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static inline uint64_t lwt_zigzag(int64_t v) {
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t lwt_unzigzag(uint64_t v) {
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline uint8_t *lwt_put_svarint(uint8_t *p, int64_t v) {
  return lwt_put_varint(p, lwt_zigzag(v));
}

/* Decodes one varint from [*pp, end). Returns 1 and advances *pp, 0 when
 * the input ends inside the varint, -1 when it is longer than 10 bytes
 * or overflows 64 bits. */
static inline int lwt_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (p >= end) return 0;
    uint8_t b = *p++;
    if (shift == 63 && b > 1) return -1;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *pp = p;
      *out = v;
      return 1;
    }
  }
  return -1;
}

#endif /* LWT_VARINT_H */
