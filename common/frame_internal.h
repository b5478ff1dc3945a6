/*
 * frame_internal.h - pieces shared by frame.c, frame_msg.c and frame_auth.c.
 * Not part of the common library's interface.
 */
#ifndef CMN_FRAME_INTERNAL_H
#define CMN_FRAME_INTERNAL_H

#include "cmn_frame.h"

#include <stddef.h>
#include <stdint.h>

/* What the wire format allows for one type: payload length range and
 * whether it is a streamed data type. `name` is NULL for unknown types. */
typedef struct xx_frame_type_info {
  const char *name;
  uint32_t min_len;
  uint32_t max_len;
  bool is_data;
} xx_frame_type_info;

/* The row of `type`, or NULL when the type is not defined. */
const xx_frame_type_info *xx_frame_type_info_of(int type);

/* Little-endian loads and stores. */
static inline void xx_frame_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void xx_frame_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void xx_frame_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t xx_frame_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t xx_frame_get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline uint64_t xx_frame_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

#endif
