/*
 * ns_path.c - namespace path validation and splitting, and trash entry names.
 *
 * Every path that enters the namespace goes through mst_ns__path_parse once;
 * the walkers in namespace.c then step through components without checking
 * again. The rules are those of mst_ns.h.
 */
#include "ns_internal.h"

#include "cairn_error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A single component: not empty, no '/', no NUL, not "." or "..", at most
 * MST_NS_NAME_MAX bytes. The too-long check comes last so that a long name
 * with a NUL in it is reported as the bad path it is. */
int mst_ns__name_check(const char *name, size_t len) {
  if (len == 0) return CAIRN_EBADPATH;
  if (memchr(name, '\0', len) || memchr(name, '/', len)) return CAIRN_EBADPATH;
  if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
    return CAIRN_EBADPATH;
  if (len > MST_NS_NAME_MAX) return CAIRN_ENAMETOOLONG;
  return 0;
}

/*
 * Validates `s` and fills *out. One trailing '/' is accepted and remembered
 * (the path then names a directory); "//" and any other empty component are
 * refused. Errors are reported for the first offending component, except
 * that a path longer than MST_NS_PATH_MAX is refused before it is scanned.
 */
int mst_ns__path_parse(const char *s, size_t len, ns_path *out) {
  if (!s || len == 0) return CAIRN_EBADPATH;
  if (len > MST_NS_PATH_MAX) return CAIRN_ENAMETOOLONG;
  if (s[0] != '/') return CAIRN_EBADPATH;
  memset(out, 0, sizeof *out);
  out->s = s;
  if (len == 1) {
    out->len = 1;
    return 0;
  }
  size_t eff = len;
  if (s[len - 1] == '/') {
    out->slash = true;
    eff = len - 1;
    if (eff == 1) return CAIRN_EBADPATH; /* "//" */
  }
  size_t pos = 1;
  while (pos <= eff) {
    const char *slash = memchr(s + pos, '/', eff - pos);
    size_t end = slash ? (size_t)(slash - s) : eff;
    int rc = mst_ns__name_check(s + pos, end - pos);
    if (rc < 0) return rc;
    if (out->ncomp == 0)
      out->in_trash = end - pos == sizeof MST_NS_TRASH_NAME - 1 &&
                      memcmp(s + pos, MST_NS_TRASH_NAME, end - pos) == 0;
    out->ncomp++;
    out->parent_len = pos > 1 ? pos - 1 : 1;
    out->last = s + pos;
    out->last_len = end - pos;
    pos = end + 1;
  }
  out->len = eff;
  return 0;
}

bool mst_ns__path_next(const ns_path *p, size_t *pos, const char **comp, size_t *comp_len) {
  if (*pos >= p->len) return false;
  const char *slash = memchr(p->s + *pos, '/', p->len - *pos);
  size_t end = slash ? (size_t)(slash - p->s) : p->len;
  *comp = p->s + *pos;
  *comp_len = end - *pos;
  *pos = end + 1;
  return true;
}

int mst_ns_path_check(const char *path, size_t len) {
  ns_path p;
  return mst_ns__path_parse(path, len, &p);
}

/*
 * "<ms, 13 digits>-<id>-<name>": zero-padded time first so entries sort by
 * deletion time (times are capped at 13 digits), the id to make the name
 * unique, the original name to make it recognisable. The name part is cut to
 * keep the whole within MST_NS_NAME_MAX, backing off to a UTF-8 character
 * boundary so the result is still valid text when the name was.
 */
size_t mst_ns__trash_name(char *buf, int64_t ms, uint64_t id, const char *name, size_t len) {
  int n = snprintf(buf, MST_NS_NAME_MAX + 1, "%013" PRId64 "-%" PRIu64 "-", ms, id);
  size_t room = MST_NS_NAME_MAX - (size_t)n;
  size_t take = len;
  if (take > room) {
    take = room;
    while (take > 0 && ((unsigned char)name[take] & 0xC0) == 0x80) take--;
  }
  memcpy(buf + n, name, take);
  buf[(size_t)n + take] = '\0';
  return (size_t)n + take;
}
