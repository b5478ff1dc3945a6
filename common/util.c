/*
 * util.c - allocation wrappers, clocks, bytes and durable file helpers.
 */
#include "cmn_util.h"

#include "cairn_error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n) {
  fprintf(stderr, "cairn: out of memory allocating %zu bytes\n", n);
  abort();
}

void *cmn_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  return p;
}

void *cmn_calloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) oom(count * size);
  return p;
}

void *cmn_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  return q;
}

char *cmn_strdup(const char *s) { return cmn_strndup(s, strlen(s)); }

char *cmn_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = cmn_malloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *cmn_sprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  char *s = cmn_malloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

int64_t cmn_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cmn_mono_ms(void) { return cmn_mono_ns() / 1000000; }

int64_t cmn_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cmn_deadline_in(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

int cmn_ct_equal(const void *a, const void *b, size_t n) {
  const volatile unsigned char *x = a, *y = b;
  unsigned char diff = 0;
  for (size_t i = 0; i < n; i++) diff |= (unsigned char)(x[i] ^ y[i]);
  return diff == 0;
}

int cmn_random_bytes(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return CAIRN_EIO;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

void cmn_hex_encode(const void *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int cmn_hex_decode(const char *hex, void *out, size_t n) {
  unsigned char *o = out;
  if (strlen(hex) != 2 * n) return CAIRN_EINVAL;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return CAIRN_EINVAL;
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

int cmn_errno_to_cairn(int err) {
  switch (err) {
  case 0: return 0;
  case ENOENT: return CAIRN_ENOENT;
  case EEXIST: return CAIRN_EEXIST;
  case ENOTDIR: return CAIRN_ENOTDIR;
  case EISDIR: return CAIRN_EISDIR;
  case ENOTEMPTY: return CAIRN_ENOTEMPTY;
  case ENAMETOOLONG: return CAIRN_ENAMETOOLONG;
  case ENOMEM: return CAIRN_ENOMEM;
  case ENOSPC: case EDQUOT: return CAIRN_ENOSPC;
  case EACCES: case EPERM: return CAIRN_EPERM;
  case EROFS: return CAIRN_EREADONLY;
  case ETIMEDOUT: return CAIRN_ETIMEDOUT;
  case EINVAL: return CAIRN_EINVAL;
  case ECONNREFUSED: case ECONNRESET: case EPIPE: return CAIRN_ECLOSED;
  case EBUSY: case EAGAIN: return CAIRN_EBUSY;
  default: return CAIRN_EIO;
  }
}

int cmn_read_file(const char *path, size_t max, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? CAIRN_ENOENT : cmn_errno_to_cairn(errno);
  int rc = 0;
  char *buf = NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = CAIRN_EIO;
    goto fail;
  }
  if ((uint64_t)st.st_size > max) {
    rc = CAIRN_ETOOBIG;
    goto fail;
  }
  size_t cap = (size_t)st.st_size + 1, n = 0;
  buf = cmn_malloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > max + 1) {
        rc = CAIRN_ETOOBIG;
        goto fail;
      }
      cap *= 2;
      buf = cmn_realloc(buf, cap);
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      rc = CAIRN_EIO;
      goto fail;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (n > max) {
    rc = CAIRN_ETOOBIG;
    goto fail;
  }
  buf[n] = '\0';
  close(fd);
  *out = buf;
  if (len) *len = n;
  return 0;
fail:
  free(buf);
  close(fd);
  return rc;
}

int cmn_write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == ENOSPC || errno == EDQUOT ? CAIRN_ENOSPC : CAIRN_EIO;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int cmn_fsync_parent_dir(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return CAIRN_ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return CAIRN_EIO;
  int rc = fsync(fd) == 0 ? 0 : CAIRN_EIO;
  close(fd);
  return rc;
}

int cmn_write_file_atomic(const char *path, const void *data, size_t len, int mode) {
  char *tmp = cmn_sprintf("%s.tmp.%ld", path, (long)getpid());
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail;
  }
  rc = cmn_write_all(fd, data, len);
  if (rc == 0 && fsync(fd) != 0) rc = CAIRN_EIO;
  if (close(fd) != 0 && rc == 0) rc = CAIRN_EIO;
  if (rc != 0) goto fail_unlink;
  if (rename(tmp, path) != 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail_unlink;
  }
  free(tmp);
  return cmn_fsync_parent_dir(path);
fail_unlink:
  unlink(tmp);
fail:
  free(tmp);
  return rc;
}

void cmn_buf_reserve(cmn_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) cap *= 2;
  b->data = cmn_realloc(b->data, cap);
  b->cap = cap;
}

void cmn_buf_append(cmn_buf *b, const void *data, size_t n) {
  cmn_buf_reserve(b, n);
  memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void cmn_buf_appendf(cmn_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  cmn_buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void cmn_buf_append_json_str(cmn_buf *b, const char *s) {
  cmn_buf_append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': cmn_buf_append(b, "\\\"", 2); break;
    case '\\': cmn_buf_append(b, "\\\\", 2); break;
    case '\n': cmn_buf_append(b, "\\n", 2); break;
    case '\r': cmn_buf_append(b, "\\r", 2); break;
    case '\t': cmn_buf_append(b, "\\t", 2); break;
    default:
      if (*p < 0x20) cmn_buf_appendf(b, "\\u%04x", *p);
      else cmn_buf_append(b, p, 1);
    }
  }
  cmn_buf_append(b, "\"", 1);
}

void cmn_buf_free(cmn_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
