/*
 * cli_util.c - argument splitting, exit codes, paths and human-readable
 * values for the `cairn` tool (see cli_util.h).
 */
#include "cli_util.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_exit_code(int rc) {
  switch (rc) {
  case 0: return CLI_EXIT_OK;
  case CAIRN_EUNAVAIL:
  case CAIRN_ETIMEDOUT:
  case CAIRN_EAUTH:
  case CAIRN_ECLOSED: return CLI_EXIT_UNREACH;
  default: return CLI_EXIT_FAIL;
  }
}

/* ---- arguments ------------------------------------------------------------------------ */

/* Does the flag text `s` (after "--", up to '=' or the end) name an option
 * of `spec` that takes a value as the next argument? '-' and '_' are
 * interchangeable, as in cmn_config. "--config FILE" takes one too. */
static int takes_value(const cmn_config_spec *spec, const char *s) {
  size_t n = strcspn(s, "=");
  if (s[n] == '=') return 0;
  if (n == 6 && strncmp(s, "config", 6) == 0) return 1;
  for (size_t i = 0; i < spec->nopts; i++) {
    const char *t = spec->opts[i].name;
    size_t k = 0;
    for (; k < n && t[k]; k++) {
      char a = s[k] == '-' ? '_' : s[k];
      if (a != t[k]) break;
    }
    if (k == n && t[k] == '\0') return spec->opts[i].type != CMN_CFG_BOOL;
  }
  return 0;
}

static const char *short_alias(const cli_short *shorts, char letter) {
  for (const cli_short *s = shorts; s && s->letter; s++)
    if (s->letter == letter) return s->name;
  return NULL;
}

/*
 * Split argv into the flags (handed to cmn_config_parse_args, which does
 * all validation) and the positionals, so that flags may follow the
 * positionals as people type them. Short aliases are rewritten to their
 * long form first, because cmn_config only knows "--name".
 */
int cli_parse_args(const cmn_config_spec *spec, const cli_short *shorts, void *cfg, int argc,
                   char *const *argv, cli_args *out, char *err, size_t errlen) {
  /* Room for every letter of combined aliases ("-lH" is two flags). */
  size_t room = 1;
  for (int i = 0; i < argc; i++) room += strlen(argv[i]) + 1;
  char **flags = cmn_calloc(room, sizeof *flags);
  char **pos = cmn_calloc((size_t)argc + 1, sizeof *pos);
  const char *bad_short = NULL;
  int nf = 0, np = 0, rest = 0, help = 0, rc;
  out->pos = NULL;
  out->npos = 0;
  flags[nf++] = argc > 0 ? argv[0] : "cairn";
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (rest || a[0] != '-' || a[1] == '\0') {
      pos[np++] = a;
    } else if (strcmp(a, "--") == 0) {
      rest = 1;
    } else if (strcmp(a, "-h") == 0) {
      help = 1;
      flags[nf++] = a;
    } else if (a[1] != '-') {
      /* "-l" or "-lH": every letter must be an alias. */
      for (const char *l = a + 1; *l; l++) {
        const char *alias = short_alias(shorts, *l);
        if (alias) flags[nf++] = (char *)alias;
        else if (!bad_short) bad_short = a;
      }
    } else {
      help |= strcmp(a, "--help") == 0;
      flags[nf++] = a;
      if (takes_value(spec, a + 2) && i + 1 < argc) flags[nf++] = argv[++i];
    }
  }
  /* cmn_config would call "-x" unknown too, but point at "--name" options
   * only; the short ones exist here. Help still wins over any error. */
  if (bad_short && !help) {
    free(flags);
    free(pos);
    if (err && errlen) snprintf(err, errlen, "unknown option '%s' (see --help)", bad_short);
    return CAIRN_ECONFIG;
  }
  rc = cmn_config_parse_args(spec, cfg, nf, flags, NULL, err, errlen);
  free(flags);
  if (rc == 0) {
    out->pos = pos;
    out->npos = np;
  } else {
    free(pos);
  }
  return rc;
}

void cli_args_free(cli_args *a) {
  free(a->pos);
  a->pos = NULL;
  a->npos = 0;
}

int cli_parse_goal(const char *s, uint32_t *out) {
  if (!s || s[0] < '1' || s[0] > '9' || s[1] != '\0') return CAIRN_EINVAL;
  *out = (uint32_t)(s[0] - '0');
  return 0;
}

/* The rules of cmn_config's address type, for --master, whose default
 * comes from the environment and so cannot be a table default. */
int cli_check_addr(const char *s) {
  const char *host = s, *colon;
  size_t hlen;
  if (!s || !*s) return CAIRN_EINVAL;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':') return CAIRN_EINVAL;
    host = s + 1;
    hlen = (size_t)(rb - host);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return CAIRN_EINVAL;
    hlen = (size_t)(colon - s);
    if (memchr(s, ':', hlen)) return CAIRN_EINVAL;
  }
  if (hlen == 0) return CAIRN_EINVAL;
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (isspace(c) || iscntrl(c) || c == '/' || c == '[' || c == ']' || c == '"' || c == '#')
      return CAIRN_EINVAL;
  }
  const char *p = colon + 1;
  size_t nd = strspn(p, "0123456789");
  if (nd == 0 || nd > 5 || p[nd] != '\0') return CAIRN_EINVAL;
  long port = strtol(p, NULL, 10);
  return port >= 1 && port <= 65535 ? 0 : CAIRN_EINVAL;
}

/* ---- paths ------------------------------------------------------------------------------ */

char *cli_basename(const char *path) {
  size_t end = strlen(path);
  while (end > 0 && path[end - 1] == '/') end--;
  size_t start = end;
  while (start > 0 && path[start - 1] != '/') start--;
  return cmn_strndup(path + start, end - start);
}

char *cli_join(const char *dir, const char *name) {
  size_t n = strlen(dir);
  return cmn_sprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* ---- human-readable values ----------------------------------------------------------- */

/* `v` bytes in the largest binary unit that keeps it under 1024, with three
 * significant digits, then `suffix`. */
static void fmt_scaled(double v, const char *suffix, char *buf, size_t n) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t u = 0;
  if (n == 0) return;
  if (!isfinite(v) || v < 0) {
    snprintf(buf, n, "-- B%s", suffix);
    return;
  }
  while (v >= 1024 && u + 1 < CMN_ARRAY_LEN(units)) {
    v /= 1024;
    u++;
  }
  if (u == 0) snprintf(buf, n, "%.0f B%s", floor(v), suffix);
  else if (v < 9.995) snprintf(buf, n, "%.2f %s%s", v, units[u], suffix);
  else if (v < 99.95) snprintf(buf, n, "%.1f %s%s", v, units[u], suffix);
  else snprintf(buf, n, "%.0f %s%s", v, units[u], suffix);
}

void cli_fmt_size(uint64_t bytes, char *buf, size_t n) {
  if (bytes < 1024) {
    if (n) snprintf(buf, n, "%llu B", (unsigned long long)bytes);
    return;
  }
  fmt_scaled((double)bytes, "", buf, n);
}

void cli_fmt_rate(double bytes_per_s, char *buf, size_t n) { fmt_scaled(bytes_per_s, "/s", buf, n); }

void cli_fmt_eta(int64_t seconds, char *buf, size_t n) {
  if (n == 0) return;
  if (seconds < 0 || seconds >= 100 * 3600) {
    snprintf(buf, n, "--:--");
    return;
  }
  int h = (int)(seconds / 3600), m = (int)(seconds / 60 % 60), s = (int)(seconds % 60);
  if (h) snprintf(buf, n, "%d:%02d:%02d", h, m, s);
  else snprintf(buf, n, "%d:%02d", m, s);
}

void cli_fmt_time(int64_t ms, char *buf, size_t n) {
  struct tm tm;
  time_t t = (time_t)(ms / 1000);
  if (n == 0) return;
  if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, n, "-");
}
