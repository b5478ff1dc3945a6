/*
 * cmn_util.h - small shared helpers: allocation, time, bytes, files.
 *
 * Allocation: cmn_malloc and friends never return NULL; out of memory aborts
 * the process with a message in one place (Redis zmalloc is the model), so
 * callers do not carry an error path for every small allocation. Code that
 * must survive a large allocation failing (buffers sized by the network)
 * uses plain malloc and returns CAIRN_ENOMEM.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef CMN_UTIL_H
#define CMN_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *cmn_malloc(size_t n);
void *cmn_calloc(size_t count, size_t size);
void *cmn_realloc(void *p, size_t n);
char *cmn_strdup(const char *s);
char *cmn_strndup(const char *s, size_t n);
/* printf into a new string (caller frees). */
char *cmn_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CMN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CMN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CMN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic clock (for timeouts and durations), and wall clock (for what is
 * stored or shown), in milliseconds / nanoseconds. */
int64_t cmn_mono_ms(void);
int64_t cmn_mono_ns(void);
int64_t cmn_wall_ms(void);

/* The absolute CLOCK_REALTIME time `ms` from now, for
 * pthread_cond_timedwait (whose default clock that is). */
struct timespec;
void cmn_deadline_in(struct timespec *ts, int64_t ms);

/* Compare two buffers in time that depends only on `n`, not on where they
 * differ (secrets, MACs). Returns 1 when equal. */
int cmn_ct_equal(const void *a, const void *b, size_t n);

/* Fill `buf` with `n` bytes from the kernel CSPRNG. 0 or CAIRN_EIO. */
int cmn_random_bytes(void *buf, size_t n);

/* Lower-case hex of `n` bytes into `out` (2n+1 bytes, NUL-terminated). */
void cmn_hex_encode(const void *in, size_t n, char *out);
/* Parse exactly 2n hex digits into n bytes. 0 or CAIRN_EINVAL. */
int cmn_hex_decode(const char *hex, void *out, size_t n);

/* Read a whole file of at most `max` bytes into a new NUL-terminated buffer
 * (caller frees *out). 0, CAIRN_ENOENT, CAIRN_ETOOBIG or CAIRN_EIO. */
int cmn_read_file(const char *path, size_t max, char **out, size_t *len);

/* Durably replace `path` with `data`: write a temp file beside it, fsync,
 * rename over the target, fsync the directory. On failure the old file is
 * untouched and the temp file removed. `mode` as for open(2).
 * 0, CAIRN_ENOSPC or CAIRN_EIO. */
int cmn_write_file_atomic(const char *path, const void *data, size_t len, int mode);

/* fsync the directory that contains `path` (so a create/rename in it is
 * durable). 0 or CAIRN_EIO. */
int cmn_fsync_parent_dir(const char *path);

/* Write all `len` bytes to fd, retrying short writes and EINTR.
 * 0, CAIRN_ENOSPC or CAIRN_EIO. */
int cmn_write_all(int fd, const void *data, size_t len);

/* Map an errno value to the closest cairn code. */
int cmn_errno_to_cairn(int err);

/* Growable byte buffer. Zero-initialised is an empty buffer; cmn_buf_free
 * releases it. Appends abort on out of memory (see above). */
typedef struct cmn_buf {
  char *data;
  size_t len;
  size_t cap;
} cmn_buf;

void cmn_buf_reserve(cmn_buf *b, size_t extra);
void cmn_buf_append(cmn_buf *b, const void *data, size_t n);
void cmn_buf_appendf(cmn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append `s` as a JSON string literal (quotes and escapes included). */
void cmn_buf_append_json_str(cmn_buf *b, const char *s);
void cmn_buf_free(cmn_buf *b);

#endif /* CMN_UTIL_H */
