/*
 * cmn_crc32c.h - CRC32C (Castagnoli), the checksum of every on-disk record,
 * data-plane frame and 64 KiB chunk block.
 *
 * The implementation is chosen once, at first use, from the CPU's feature
 * bits: SSE4.2 `crc32` on x86-64, the ARMv8 CRC extension (`crc32c*`) on
 * arm64 (Raspberry Pi 4/5), else a portable table-driven version. All paths
 * give identical results; tests run every path the CPU offers.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef CMN_CRC32C_H
#define CMN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `n` bytes. crc32c("123456789") = 0xE3069283.
 * Chaining is allowed: cmn_crc32c(cmn_crc32c(0, a, na), b, nb) equals the CRC
 * of a followed by b. */
uint32_t cmn_crc32c(uint32_t crc, const void *data, size_t n);

/* The implementations, for tests and benchmarks. */
typedef enum cmn_crc32c_impl {
  CMN_CRC32C_SOFT = 0,   /* portable, always available */
  CMN_CRC32C_SSE42 = 1,  /* x86-64 SSE4.2 */
  CMN_CRC32C_ARMV8 = 2,  /* arm64 CRC extension */
} cmn_crc32c_impl;

/* 1 if `impl` can run on this CPU. */
int cmn_crc32c_available(cmn_crc32c_impl impl);

/* Run a specific implementation (must be available). */
uint32_t cmn_crc32c_with(cmn_crc32c_impl impl, uint32_t crc, const void *data, size_t n);

/* The implementation cmn_crc32c uses on this CPU, and its name. */
cmn_crc32c_impl cmn_crc32c_active(void);
const char *cmn_crc32c_impl_name(cmn_crc32c_impl impl);

#endif /* CMN_CRC32C_H */
