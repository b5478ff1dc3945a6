/*
 * crc32c.c - CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Three implementations that give identical results:
 *   - soft:  slice-by-8 tables, any CPU;
 *   - sse42: the x86-64 SSE4.2 `crc32` instruction;
 *   - armv8: the arm64 CRC extension (`crc32c[bd]`).
 * The hardware paths are compiled with a per-function target attribute, so
 * the rest of the file (and the project) needs no -msse4.2 / -march flags,
 * and are only ever called after a run-time CPU check.
 *
 * State: the tables and the chosen implementation are written once, inside
 * pthread_once, at first use, and only read afterwards; pthread_once gives
 * every later caller a happens-before edge to those writes. No lock is held
 * on the hot path.
 *
 * Convention: the public crc is the finished value (pre- and post-inverted),
 * so 0 starts a new CRC and a returned value can be fed back in to chain.
 * Internally the "register" is the inverted value.
 */
#include "cmn_crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_HW 1
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#include <asm/hwcap.h>
#define CRC32C_HAVE_HW 1
#endif

#define CRC32C_POLY 0x82F63B78u

static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static cmn_crc32c_impl crc_active = CMN_CRC32C_SOFT;
static int crc_have_sse42, crc_have_armv8;
/* soft_tab[k][b]: register contribution of byte b followed by k zero bytes. */
static uint32_t soft_tab[8][256];

/* Load 8 bytes as a little-endian word, whatever the host byte order and
 * alignment (memcpy compiles to one load). */
static inline uint64_t load_le64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}

/*
 * Portable path: bytes until `p` is 8-byte aligned, then 8 bytes per step
 * with eight table lookups (slice-by-8: each table folds one more byte
 * position), then the tail bytes one at a time.
 */
static uint32_t crc32c_soft(uint32_t crc, const void *data, size_t n) {
  const unsigned char *p = data;
  uint32_t c = ~crc;
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = soft_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    n--;
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w = load_le64(p) ^ c;
    c = soft_tab[7][w & 0xff] ^ soft_tab[6][(w >> 8) & 0xff] ^
        soft_tab[5][(w >> 16) & 0xff] ^ soft_tab[4][(w >> 24) & 0xff] ^
        soft_tab[3][(w >> 32) & 0xff] ^ soft_tab[2][(w >> 40) & 0xff] ^
        soft_tab[1][(w >> 48) & 0xff] ^ soft_tab[0][w >> 56];
  }
  while (n-- > 0) c = soft_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#ifdef CRC32C_HAVE_HW
/*
 * The hardware instruction has a latency of about three cycles but can start
 * one per cycle, so large buffers are cut into three equal blocks whose CRCs
 * run side by side (crc1 and crc2 start from a zero register). They are then
 * joined: the register update is linear over GF(2), so the register after
 * A then B equals (register after A, advanced over |B| zero bytes) XOR (the
 * register of B alone). Advancing over a fixed number of zero bytes is a
 * 32x32 bit matrix, kept as four 256-entry tables (one per register byte).
 */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256
static uint32_t zeros_long[4][256], zeros_short[4][256];

/* Fill `tab` with the operator "advance the register over `len` zero
 * bytes": first its 32 columns (the image of each single bit), then every
 * byte value's image as the XOR of the columns of its set bits. */
static void zeros_table(uint32_t tab[4][256], size_t len) {
  uint32_t col[32];
  for (int i = 0; i < 32; i++) {
    uint32_t s = (uint32_t)1 << i;
    for (size_t k = 0; k < len; k++) s = soft_tab[0][s & 0xff] ^ (s >> 8);
    col[i] = s;
  }
  for (int k = 0; k < 4; k++)
    for (unsigned b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int j = 0; j < 8; j++)
        if ((b >> j) & 1) v ^= col[8 * k + j];
      tab[k][b] = v;
    }
}

static inline uint32_t zeros_shift(uint32_t tab[4][256], uint32_t c) {
  return tab[0][c & 0xff] ^ tab[1][(c >> 8) & 0xff] ^ tab[2][(c >> 16) & 0xff] ^
         tab[3][c >> 24];
}

/*
 * One body for both hardware paths, so the interleaving logic tested on one
 * architecture is the same code that runs on the other; only the two
 * instructions differ. Order: head bytes to 8-byte alignment, 3 x LONG
 * blocks, 3 x SHORT blocks, single words, tail bytes.
 */
#define CRC32C_HW_BLOCKS(BLK, TAB)                                                         \
  while (n >= 3 * (size_t)(BLK)) {                                                         \
    uint32_t c1 = 0, c2 = 0;                                                               \
    const unsigned char *end = p + (BLK);                                                  \
    do {                                                                                   \
      c0 = CRC64(c0, load_le64(p));                                                        \
      c1 = CRC64(c1, load_le64(p + (BLK)));                                                \
      c2 = CRC64(c2, load_le64(p + 2 * (BLK)));                                            \
      p += 8;                                                                              \
    } while (p < end);                                                                     \
    c0 = zeros_shift(TAB, c0) ^ c1;                                                        \
    c0 = zeros_shift(TAB, c0) ^ c2;                                                        \
    p += 2 * (BLK);                                                                        \
    n -= 3 * (size_t)(BLK);                                                                \
  }

#define CRC32C_HW_DEFINE(NAME, TARGET)                                                     \
  __attribute__((target(TARGET))) static uint32_t NAME(uint32_t crc, const void *data,     \
                                                       size_t n) {                         \
    const unsigned char *p = data;                                                         \
    uint32_t c0 = ~crc;                                                                    \
    while (n > 0 && ((uintptr_t)p & 7) != 0) {                                             \
      c0 = CRC8(c0, *p++);                                                                 \
      n--;                                                                                 \
    }                                                                                      \
    CRC32C_HW_BLOCKS(CRC32C_LONG, zeros_long)                                              \
    CRC32C_HW_BLOCKS(CRC32C_SHORT, zeros_short)                                            \
    for (; n >= 8; n -= 8, p += 8) c0 = CRC64(c0, load_le64(p));                           \
    while (n-- > 0) c0 = CRC8(c0, *p++);                                                   \
    return ~c0;                                                                            \
  }

#if defined(__x86_64__)
#define CRC8(c, b) ((uint32_t)_mm_crc32_u8((c), (b)))
#define CRC64(c, w) ((uint32_t)_mm_crc32_u64((c), (w)))
CRC32C_HW_DEFINE(crc32c_sse42, "sse4.2")
#elif defined(__aarch64__)
#define CRC8(c, b) __crc32cb((c), (b))
#define CRC64(c, w) __crc32cd((c), (w))
#if defined(__clang__)
CRC32C_HW_DEFINE(crc32c_armv8, "crc")
#else
CRC32C_HW_DEFINE(crc32c_armv8, "+crc")
#endif
#endif
#undef CRC8
#undef CRC64
#endif /* CRC32C_HAVE_HW */

/* Runs once per process: build the tables, probe the CPU, pick the fastest
 * available implementation. Takes well under a millisecond. */
static void crc32c_init(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
    soft_tab[0][b] = c;
  }
  for (int k = 1; k < 8; k++)
    for (unsigned b = 0; b < 256; b++)
      soft_tab[k][b] = soft_tab[0][soft_tab[k - 1][b] & 0xff] ^ (soft_tab[k - 1][b] >> 8);
#ifdef CRC32C_HAVE_HW
  zeros_table(zeros_long, CRC32C_LONG);
  zeros_table(zeros_short, CRC32C_SHORT);
#endif
#if defined(__x86_64__)
  __builtin_cpu_init();
  crc_have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  if (crc_have_sse42) crc_active = CMN_CRC32C_SSE42;
#elif defined(__aarch64__)
  crc_have_armv8 = (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
  if (crc_have_armv8) crc_active = CMN_CRC32C_ARMV8;
#endif
}

int cmn_crc32c_available(cmn_crc32c_impl impl) {
  pthread_once(&crc_once, crc32c_init);
  switch (impl) {
  case CMN_CRC32C_SOFT: return 1;
  case CMN_CRC32C_SSE42: return crc_have_sse42;
  case CMN_CRC32C_ARMV8: return crc_have_armv8;
  }
  return 0;
}

/* An implementation the CPU lacks (or an unknown value) runs the portable
 * path instead: the result is the same, and an illegal instruction is never
 * risked on a caller's mistake. */
uint32_t cmn_crc32c_with(cmn_crc32c_impl impl, uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc32c_init);
  if (n == 0) return crc;
#if defined(__x86_64__)
  if (impl == CMN_CRC32C_SSE42 && crc_have_sse42) return crc32c_sse42(crc, data, n);
#elif defined(__aarch64__)
  if (impl == CMN_CRC32C_ARMV8 && crc_have_armv8) return crc32c_armv8(crc, data, n);
#endif
  (void)impl;
  return crc32c_soft(crc, data, n);
}

uint32_t cmn_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc32c_init);
  return cmn_crc32c_with(crc_active, crc, data, n);
}

cmn_crc32c_impl cmn_crc32c_active(void) {
  pthread_once(&crc_once, crc32c_init);
  return crc_active;
}

const char *cmn_crc32c_impl_name(cmn_crc32c_impl impl) {
  switch (impl) {
  case CMN_CRC32C_SOFT: return "soft";
  case CMN_CRC32C_SSE42: return "sse4.2";
  case CMN_CRC32C_ARMV8: return "armv8-crc";
  }
  return "unknown";
}
