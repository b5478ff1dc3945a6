/*
 * mst_diskio.h - internal helpers shared by the master's on-disk formats
 * (the operation log and checkpoints): little-endian field access, a
 * windowed file reader, and the file-name pattern `<prefix>.<16 hex digits>`.
 *
 * Not a public interface: only oplog*.c and checkpoint.c include it.
 * Every function may be called from any thread on objects it owns; nothing
 * here uses locks, threads or globals (checkpoint writers run in a forked
 * child).
 */
#ifndef MST_DISKIO_H
#define MST_DISKIO_H

#include <stddef.h>
#include <stdint.h>

static inline void mst__put_le32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static inline void mst__put_le64(unsigned char *p, uint64_t v) {
  mst__put_le32(p, (uint32_t)v);
  mst__put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t mst__get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t mst__get_le64(const unsigned char *p) {
  return (uint64_t)mst__get_le32(p) | (uint64_t)mst__get_le32(p + 4) << 32;
}

/*
 * A read-only view of a file through a sliding buffer: mst__rd_get makes a
 * byte range available without the caller tracking what is buffered, so a
 * sequential walk and a byte-by-byte forward scan cost one pread per window.
 * Ranges are limited by what the caller asks for (a record), not by the file
 * size, so multi-gigabyte segments never sit in memory.
 */
typedef struct mst__rd {
  int fd;            /* borrowed: not closed by mst__rd_free */
  uint64_t size;     /* file size at mst__rd_init */
  unsigned char *buf;
  size_t cap;
  uint64_t buf_off;  /* file offset of buf[0] */
  size_t buf_len;    /* valid bytes in buf */
} mst__rd;

/* Start reading `fd` (size taken from fstat). 0 or CAIRN_EIO. */
int mst__rd_init(mst__rd *r, int fd);

/* Point *p at bytes [off, off + n) of the file; the pointer stays valid until
 * the next call on `r`. Returns 0, 1 when the range extends past the end of
 * the file (nothing returned), or CAIRN_EIO. */
int mst__rd_get(mst__rd *r, uint64_t off, size_t n, const unsigned char **p);

/* Release the buffer (not the fd). */
void mst__rd_free(mst__rd *r);

/* Parse "<prefix>.<16 lower-case hex digits><suffix>" (suffix may be ""), the
 * only spelling cairn writes. Returns 1 and sets *num on a match, else 0. */
int mst__parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *num);

/* fsync the directory `dir` itself. 0 or CAIRN_EIO. */
int mst__fsync_dir(const char *dir);

#endif /* MST_DISKIO_H */
