/*
 * config.c - one table per program drives its config file, its flags, its
 * --help text and its start-up dump (see cmn_config.h for the syntax).
 *
 * Every entry point that changes a config struct works on a deep copy
 * ("scratch") and swaps it in only when all input was accepted, so bad
 * input changes nothing.
 */
#include "cmn_config.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE_BYTES (1u << 20)
#define HELP_WIDTH 79
#define HELP_COL 28
#define NBSP '\x1f'

struct unit {
  const char *name;
  uint64_t mult;
};

/* Size suffixes are powers of 1024 whatever the spelling: "64M" is 64 MiB. */
static const struct unit size_units[] = {
    {"", 1},           {"B", 1},         {"K", 1ull << 10}, {"KiB", 1ull << 10},
    {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"G", 1ull << 30}, {"GiB", 1ull << 30},
    {"T", 1ull << 40}, {"TiB", 1ull << 40},
};

/* A bare duration is in seconds, the unit people mean for timeouts. */
static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a message into the caller's buffer (if any); returns CAIRN_ECONFIG
 * so error paths read `return fail(...)`. */
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return CAIRN_ECONFIG;
}

static void *field(void *base, const cmn_config_opt *o) { return (char *)base + o->offset; }
static const void *cfield(const void *base, const cmn_config_opt *o) {
  return (const char *)base + o->offset;
}

static int owns_string(const cmn_config_opt *o) {
  return o->type == CMN_CFG_STRING || o->type == CMN_CFG_ADDR;
}

static size_t type_size(cmn_config_type t) {
  switch (t) {
  case CMN_CFG_BOOL: return sizeof(bool);
  case CMN_CFG_INT: case CMN_CFG_DURATION: return sizeof(int64_t);
  case CMN_CFG_SIZE: return sizeof(uint64_t);
  case CMN_CFG_ENUM: return sizeof(int);
  case CMN_CFG_STRING: case CMN_CFG_ADDR: return sizeof(char *);
  }
  return 0;
}

/* Does the table name `tname` equal s[0..n), treating '-' and '_' alike? */
static int name_eq(const char *tname, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char a = tname[i] == '-' ? '_' : tname[i], b = s[i] == '-' ? '_' : s[i];
    if (a == '\0' || a != b) return 0;
  }
  return tname[n] == '\0';
}

static const cmn_config_opt *find_opt(const cmn_config_spec *spec, const char *s, size_t n) {
  for (size_t i = 0; i < spec->nopts; i++)
    if (name_eq(spec->opts[i].name, s, n)) return &spec->opts[i];
  return NULL;
}

/* Leading decimal digits of `s`; *end points past them. 0, or -1 when there
 * are no digits, -2 when the number does not fit in 64 bits. */
static int parse_digits(const char *s, uint64_t *out, const char **end) {
  uint64_t v = 0;
  const char *p = s;
  if (!isdigit((unsigned char)*p)) return -1;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return -2;
    v = v * 10 + d;
  }
  *out = v;
  *end = p;
  return 0;
}

/* "<digits>[ ]<unit>" with the unit from `units` (sizes in any case) and the
 * product checked against `limit`, so "99999999999T" is refused rather
 * than wrapped. */
static int parse_scaled(const char *v, const struct unit *units, size_t nunits, int fold_case,
                        uint64_t limit, const char *what, uint64_t *out, char *why, size_t wl) {
  uint64_t n;
  const char *p;
  int rc = parse_digits(v, &n, &p);
  if (rc == -1) return fail(why, wl, "'%s' is not a %s", v, what);
  if (rc == -2) return fail(why, wl, "'%s' is too large", v);
  while (*p == ' ' || *p == '\t') p++;
  for (size_t i = 0; i < nunits; i++) {
    if (fold_case ? strcasecmp(p, units[i].name) : strcmp(p, units[i].name)) continue;
    if (n > limit / units[i].mult) return fail(why, wl, "'%s' is too large", v);
    *out = n * units[i].mult;
    return 0;
  }
  return fail(why, wl, "'%s' is not a %s (unknown unit '%s')", v, what, p);
}

static int parse_int(const char *v, int64_t *out, char *why, size_t wl) {
  const char *p = v, *end = v;
  int neg = *p == '-';
  if (*p == '-' || *p == '+') p++;
  uint64_t n;
  int rc = parse_digits(p, &n, &end);
  if (rc == -1 || *end) return fail(why, wl, "'%s' is not a whole number", v);
  if (rc == -2 || n > (uint64_t)INT64_MAX + neg) return fail(why, wl, "'%s' is too large", v);
  *out = neg ? (int64_t)(0 - n) : (int64_t)n;
  return 0;
}

static int parse_bool(const char *v) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(yes); i++) {
    if (strcasecmp(v, yes[i]) == 0) return 1;
    if (strcasecmp(v, no[i]) == 0) return 0;
  }
  return -1;
}

/* "host:port" or "[v6]:port": host non-empty without blanks, quotes, '#'
 * or '/' (and without ':' unless bracketed), port min_port..65535 in digits
 * (min_port 0 for listen addresses, where 0 asks for any free port). */
static int check_addr(const char *v, int64_t min_port, char *why, size_t wl) {
  const char *host = v, *colon;
  size_t hlen;
  if (v[0] == '[') {
    const char *rb = strchr(v, ']');
    if (!rb || rb[1] != ':') return fail(why, wl, "'%s' is not [ADDR]:PORT", v);
    host = v + 1;
    hlen = (size_t)(rb - host);
    colon = rb + 1;
  } else {
    colon = strrchr(v, ':');
    if (!colon) return fail(why, wl, "'%s' has no port (expected HOST:PORT)", v);
    hlen = (size_t)(colon - v);
    if (memchr(v, ':', hlen)) return fail(why, wl, "'%s': write an IPv6 host as [ADDR]:PORT", v);
  }
  if (hlen == 0) return fail(why, wl, "'%s' has an empty host", v);
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (isspace(c) || iscntrl(c) || c == '"' || c == '#' || c == '/' || c == '[' || c == ']')
      return fail(why, wl, "'%s' has a bad character in the host", v);
  }
  uint64_t port;
  const char *end;
  if (parse_digits(colon + 1, &port, &end) != 0 || *end || end - (colon + 1) > 5 ||
      (int64_t)port < min_port || port > 65535)
    return fail(why, wl, "'%s' needs a port from %lld to 65535", v, (long long)min_port);
  return 0;
}

/* A size or duration in its largest exact unit ("64MiB", "3s"), an integer
 * as itself. */
static void fmt_num(cmn_config_type t, int64_t v, char *buf, size_t n) {
  const struct unit *u = t == CMN_CFG_SIZE ? size_units : duration_units;
  size_t nu = t == CMN_CFG_SIZE ? CMN_ARRAY_LEN(size_units) : CMN_ARRAY_LEN(duration_units);
  const char *best = t == CMN_CFG_SIZE ? "" : "ms";
  uint64_t bestm = 1;
  if (t == CMN_CFG_INT || v <= 0) {
    snprintf(buf, n, t == CMN_CFG_DURATION ? "%lldms" : "%lld", (long long)v);
    return;
  }
  for (size_t i = 0; i < nu; i++)
    if (u[i].name[0] && (uint64_t)v % u[i].mult == 0 && u[i].mult > bestm &&
        (t != CMN_CFG_SIZE || strlen(u[i].name) == 3)) /* "MiB", not "M" */
      best = u[i].name, bestm = u[i].mult;
  snprintf(buf, n, "%llu%s", (unsigned long long)((uint64_t)v / bestm), best);
}

/*
 * Parse `v` for option `o` and store it in `base` (a scratch copy). On error
 * a reason without prefix goes to `why` and the field is untouched.
 */
static int set_value(const cmn_config_opt *o, void *base, const char *v, char *why, size_t wl) {
  void *f = field(base, o);
  int64_t n = 0;
  uint64_t u = 0;
  int rc;
  switch (o->type) {
  case CMN_CFG_BOOL: {
    int b = parse_bool(v);
    if (b < 0) return fail(why, wl, "'%s' is not on/off (true/false, yes/no, on/off, 1/0)", v);
    *(bool *)f = b;
    return 0;
  }
  case CMN_CFG_ENUM: {
    cmn_buf names = {0};
    for (int i = 0; o->choices[i]; i++) {
      if (strcasecmp(v, o->choices[i]) == 0) {
        *(int *)f = i;
        cmn_buf_free(&names);
        return 0;
      }
      cmn_buf_appendf(&names, "%s%s", i ? ", " : "", o->choices[i]);
    }
    rc = fail(why, wl, "'%s' is not one of: %s", v, names.data);
    cmn_buf_free(&names);
    return rc;
  }
  case CMN_CFG_ADDR:
    if ((rc = check_addr(v, o->min, why, wl)) != 0) return rc;
    /* fall through */
  case CMN_CFG_STRING: {
    char **p = f;
    free(*p);
    *p = cmn_strdup(v);
    return 0;
  }
  case CMN_CFG_INT:
    if ((rc = parse_int(v, &n, why, wl)) != 0) return rc;
    break;
  case CMN_CFG_SIZE:
    rc = parse_scaled(v, size_units, CMN_ARRAY_LEN(size_units), 1, UINT64_MAX, "size", &u, why,
                      wl);
    if (rc) return rc;
    n = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u; /* too big for any max: see below */
    break;
  case CMN_CFG_DURATION:
    rc = parse_scaled(v, duration_units, CMN_ARRAY_LEN(duration_units), 0, INT64_MAX,
                      "duration", &u, why, wl);
    if (rc) return rc;
    n = (int64_t)u;
    break;
  }
  if (n < o->min || n > o->max || u > (uint64_t)INT64_MAX) {
    char lo[32], hi[32];
    fmt_num(o->type, o->min, lo, sizeof lo);
    fmt_num(o->type, o->max, hi, sizeof hi);
    return fail(why, wl, "'%s' is out of range %s..%s", v, lo, hi);
  }
  if (o->type == CMN_CFG_SIZE) *(uint64_t *)f = u;
  else *(int64_t *)f = n;
  return 0;
}

void cmn_config_free(const cmn_config_spec *spec, void *cfg) {
  for (size_t i = 0; i < spec->nopts; i++) {
    if (!owns_string(&spec->opts[i])) continue;
    char **p = field(cfg, &spec->opts[i]);
    free(*p);
    *p = NULL;
  }
}

/* A deep copy of `cfg` that owns its own strings. */
static void *scratch_new(const cmn_config_spec *spec, const void *cfg) {
  char *s = cmn_malloc(spec->size);
  memcpy(s, cfg, spec->size);
  for (size_t i = 0; i < spec->nopts; i++) {
    char **p = field(s, &spec->opts[i]);
    if (owns_string(&spec->opts[i]) && *p) *p = cmn_strdup(*p);
  }
  return s;
}

/* rc == 0: replace `cfg` by the scratch copy; else drop the copy. Returns rc. */
static int scratch_end(const cmn_config_spec *spec, void *cfg, void *scratch, int rc) {
  if (rc == 0) {
    cmn_config_free(spec, cfg);
    memcpy(cfg, scratch, spec->size);
  } else {
    cmn_config_free(spec, scratch);
  }
  free(scratch);
  return rc;
}

/* The checks a table must pass; a failure is a bug in the program. */
static int check_table(const cmn_config_spec *spec, char *err, size_t errlen) {
  for (size_t i = 0; i < spec->nopts; i++) {
    const cmn_config_opt *o = &spec->opts[i];
    if (!o->name || !o->name[0] ||
        strspn(o->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(o->name))
      return fail(err, errlen, "config table entry %zu: name must be [a-z0-9_]+", i);
    if (name_eq(o->name, "config", 6) || name_eq(o->name, "help", 4))
      return fail(err, errlen, "config table: '%s' is a reserved name", o->name);
    for (size_t j = 0; j < i; j++)
      if (name_eq(spec->opts[j].name, o->name, strlen(o->name)))
        return fail(err, errlen, "config table: '%s' appears twice", o->name);
    if ((unsigned)o->type > CMN_CFG_ADDR || o->offset + type_size(o->type) > spec->size)
      return fail(err, errlen, "config table: '%s' has a bad type or offset", o->name);
    if (o->min > o->max || ((o->type == CMN_CFG_SIZE || o->type == CMN_CFG_DURATION) && o->min < 0))
      return fail(err, errlen, "config table: '%s' has bad bounds", o->name);
    if (o->type == CMN_CFG_ENUM && (!o->choices || !o->choices[0]))
      return fail(err, errlen, "config table: '%s' has no choices", o->name);
    if (!o->def && o->type != CMN_CFG_STRING)
      return fail(err, errlen, "config table: '%s' has no default", o->name);
  }
  return 0;
}

int cmn_config_defaults(const cmn_config_spec *spec, void *cfg, char *err, size_t errlen) {
  int rc = check_table(spec, err, errlen);
  if (rc) return rc;
  void *s = scratch_new(spec, cfg);
  char why[256];
  for (size_t i = 0; i < spec->nopts && rc == 0; i++) {
    const cmn_config_opt *o = &spec->opts[i];
    if (o->def) {
      if (set_value(o, s, o->def, why, sizeof why) != 0)
        rc = fail(err, errlen, "config table: default of '%s': %s", o->name, why);
    } else {
      char **p = field(s, o);
      free(*p);
      *p = NULL;
    }
  }
  return scratch_end(spec, cfg, s, rc);
}

int cmn_config_set(const cmn_config_spec *spec, void *cfg, const char *name, const char *value,
                   char *err, size_t errlen) {
  const cmn_config_opt *o = find_opt(spec, name, strlen(name));
  if (!o) return fail(err, errlen, "unknown setting '%s'", name);
  char why[256];
  void *s = scratch_new(spec, cfg);
  int rc = set_value(o, s, value, why, sizeof why);
  if (rc) fail(err, errlen, "%s: %s", o->name, why);
  return scratch_end(spec, cfg, s, rc);
}

/*
 * Parse one line of a config file (NUL-terminated, newline removed) into
 * the scratch copy. `seen` holds, per option, the line that set it (0 if
 * none) to refuse duplicates.
 */
static int parse_line(const cmn_config_spec *spec, void *s, char *line, const char *path,
                      int lineno, int *seen, char *err, size_t errlen) {
  char *p = line, *q, why[256];
  size_t n = strlen(p);
  if (n && p[n - 1] == '\r') p[--n] = '\0';
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\0' || *p == '#') return 0;
  char *eq = strchr(p, '=');
  if (!eq) return fail(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
  for (q = eq; q > p && (q[-1] == ' ' || q[-1] == '\t'); q--) {}
  if (q == p) return fail(err, errlen, "%s:%d: missing name before '='", path, lineno);
  *q = '\0';
  const cmn_config_opt *o = find_opt(spec, p, strlen(p));
  if (!o) return fail(err, errlen, "%s:%d: unknown key '%s'", path, lineno, p);
  size_t idx = (size_t)(o - spec->opts);
  if (seen[idx])
    return fail(err, errlen, "%s:%d: duplicate key '%s' (first set on line %d)", path, lineno, p,
                seen[idx]);
  seen[idx] = lineno;
  char *v = eq + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (*v == '"') {
    char *close = strchr(++v, '"');
    if (!close) return fail(err, errlen, "%s:%d: %s: unterminated quote", path, lineno, p);
    *close = '\0';
    for (q = close + 1; *q == ' ' || *q == '\t'; q++) {}
    if (*q && *q != '#')
      return fail(err, errlen, "%s:%d: %s: text after the closing quote", path, lineno, p);
  } else {
    /* A '#' opens a comment at the start of the value or after a blank. */
    for (q = v; *q; q++)
      if (*q == '#' && (q == v || q[-1] == ' ' || q[-1] == '\t')) break;
    while (q > v && (q[-1] == ' ' || q[-1] == '\t')) q--;
    *q = '\0';
  }
  if (set_value(o, s, v, why, sizeof why) != 0)
    return fail(err, errlen, "%s:%d: %s: %s", path, lineno, p, why);
  return 0;
}

/* Read and apply a whole file to the scratch copy `s`. */
static int load_into(const cmn_config_spec *spec, void *s, const char *path, char *err,
                     size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  int *seen = NULL;
  char *line;
  int rc = cmn_read_file(path, MAX_FILE_BYTES, &text, &len);
  if (rc) {
    fail(err, errlen, "%s: cannot read config file: %s", path, cairn_strerror(rc));
    return rc;
  }
  if (strlen(text) != len) {
    rc = fail(err, errlen, "%s: contains a NUL byte", path);
    goto fail;
  }
  seen = cmn_calloc(spec->nopts ? spec->nopts : 1, sizeof *seen);
  line = text;
  for (int lineno = 1; line; lineno++) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    rc = parse_line(spec, s, line, path, lineno, seen, err, errlen);
    if (rc) goto fail;
    line = nl ? nl + 1 : NULL;
  }
fail:
  free(seen);
  free(text);
  return rc;
}

int cmn_config_load_file(const cmn_config_spec *spec, void *cfg, const char *path, char *err,
                         size_t errlen) {
  void *s = scratch_new(spec, cfg);
  return scratch_end(spec, cfg, s, load_into(spec, s, path, err, errlen));
}

struct argscan {
  int help;
  const char *config;
  int end; /* index of the first positional, or argc */
};

/*
 * One walk over argv[1..]. With `apply` NULL it only learns the structure:
 * where flags end, whether --help is there, which file --config names; it
 * keeps going after an error so that "--bogus --help" still means help.
 * With `apply` set it also parses every value into that scratch copy.
 * Returns the first error, with its message in err.
 */
static int walk_args(const cmn_config_spec *spec, void *apply, int argc, char *const *argv,
                     int stop_at_pos, struct argscan *sc, char *err, size_t errlen) {
  int rc = 0, i;
  char why[256];
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      if (!stop_at_pos && i < argc && !rc)
        rc = fail(err, errlen, "unexpected argument '%s'", argv[i]);
      break;
    }
    if (a[0] != '-' || a[1] == '\0') {
      if (stop_at_pos) break;
      if (!rc) rc = fail(err, errlen, "unexpected argument '%s'", a);
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      sc->help = 1;
      continue;
    }
    if (a[1] != '-') {
      if (!rc) rc = fail(err, errlen, "unknown option '%s' (options are --name)", a);
      continue;
    }
    const char *name = a + 2, *val = strchr(a, '=');
    size_t nlen = val ? (size_t)(val - name) : strlen(name);
    if (val) val++;
    int neg = 0;
    const cmn_config_opt *o = find_opt(spec, name, nlen);
    if (!o && !name_eq("config", name, nlen) && nlen > 3 && name_eq("no_", name, 3)) {
      o = find_opt(spec, name + 3, nlen - 3);
      neg = o != NULL;
      if (o && o->type != CMN_CFG_BOOL) {
        if (!rc)
          rc = fail(err, errlen, "option '%.*s': only on/off options have a --no- form",
                    (int)(nlen + 2), a);
        continue;
      }
    }
    if (!o && !name_eq("config", name, nlen)) {
      if (!rc) rc = fail(err, errlen, "unknown option '%.*s' (see --help)", (int)(nlen + 2), a);
      continue;
    }
    if (o && o->type == CMN_CFG_BOOL) {
      if (neg && val) {
        if (!rc) rc = fail(err, errlen, "option '%.*s' takes no value", (int)(nlen + 2), a);
        continue;
      }
      if (!val) val = neg ? "false" : "true";
    } else if (!val) {
      if (i + 1 >= argc) {
        if (!rc) rc = fail(err, errlen, "option '%s' needs a value", a);
        continue;
      }
      val = argv[++i];
    }
    if (!o) { /* --config FILE */
      if (!apply && sc->config && !rc) rc = fail(err, errlen, "option '--config' given twice");
      if (!apply) sc->config = val;
    } else if (apply && !rc && set_value(o, apply, val, why, sizeof why) != 0) {
      rc = fail(err, errlen, "option '%.*s': %s", (int)(nlen + 2), a, why);
    }
  }
  sc->end = i < argc ? i : argc;
  return rc;
}

int cmn_config_parse_args(const cmn_config_spec *spec, void *cfg, int argc, char *const *argv,
                          int *first_pos, char *err, size_t errlen) {
  struct argscan sc = {0, NULL, argc};
  int rc = walk_args(spec, NULL, argc, argv, first_pos != NULL, &sc, err, errlen);
  if (sc.help) {
    if (err && errlen) err[0] = '\0';
    if (first_pos) *first_pos = sc.end;
    return CMN_CONFIG_HELP;
  }
  if (rc) return rc;
  void *s = scratch_new(spec, cfg);
  if (sc.config) rc = load_into(spec, s, sc.config, err, errlen);
  if (rc == 0) rc = walk_args(spec, s, argc, argv, first_pos != NULL, &sc, err, errlen);
  if (rc == 0 && first_pos) *first_pos = sc.end;
  return scratch_end(spec, cfg, s, rc);
}

/* Append `text` word by word from column `col`, breaking lines before
 * HELP_WIDTH and indenting continuation lines to HELP_COL. NBSP (a 0x1f
 * byte) is printed as a space that never breaks ("default 64MiB"). */
static void wrap(cmn_buf *b, size_t col, const char *text) {
  for (const char *p = text; *p;) {
    while (*p == ' ') p++;
    size_t w = strcspn(p, " ");
    if (w == 0) break;
    if (col > HELP_COL && col + 1 + w > HELP_WIDTH) {
      cmn_buf_appendf(b, "\n%*s", HELP_COL, "");
      col = HELP_COL;
    } else if (col > HELP_COL) {
      cmn_buf_append(b, " ", 1);
      col++;
    }
    for (size_t k = 0; k < w; k++) cmn_buf_append(b, p[k] == NBSP ? " " : &p[k], 1);
    col += w;
    p += w;
  }
  cmn_buf_append(b, "\n", 1);
}

/* "--flag HINT" padded to HELP_COL, then the wrapped help, default and bounds. */
static void help_entry(cmn_buf *b, const char *flag, const char *hint, const char *text) {
  size_t start = b->len;
  cmn_buf_appendf(b, "  %s%s%s", flag, hint[0] ? " " : "", hint);
  size_t col = b->len - start;
  if (col + 2 > HELP_COL) cmn_buf_appendf(b, "\n%*s", HELP_COL, "");
  else cmn_buf_appendf(b, "%*s", (int)(HELP_COL - col), "");
  wrap(b, HELP_COL, text);
}

static void help_option(cmn_buf *b, const cmn_config_opt *o) {
  static const char *const hints[] = {"", "N", "SIZE", "DURATION", "STRING", "", "HOST:PORT"};
  cmn_buf flag = {0}, hint = {0}, text = {0};
  cmn_buf_appendf(&flag, "--%s%s", o->type == CMN_CFG_BOOL ? "[no-]" : "", o->name);
  for (char *c = flag.data; *c; c++)
    if (*c == '_') *c = '-';
  cmn_buf_appendf(&hint, "%s", hints[o->type]);
  for (int i = 0; o->type == CMN_CFG_ENUM && o->choices[i]; i++)
    cmn_buf_appendf(&hint, "%s%s", i ? "|" : "", o->choices[i]);
  cmn_buf_appendf(&text, "%s", o->help ? o->help : "");
  int numeric = o->type == CMN_CFG_INT || o->type == CMN_CFG_SIZE || o->type == CMN_CFG_DURATION;
  int64_t lowest = o->type == CMN_CFG_INT ? INT64_MIN : 0;
  int bounded = numeric && (o->max != INT64_MAX || o->min != lowest);
  if (o->def && o->def[0])
    cmn_buf_appendf(&text, " (default\x1f%s%s", o->def, bounded ? ";" : ")");
  else if (bounded)
    cmn_buf_appendf(&text, " (");
  if (bounded) {
    char lo[32], hi[32];
    fmt_num(o->type, o->min, lo, sizeof lo);
    fmt_num(o->type, o->max, hi, sizeof hi);
    cmn_buf_appendf(&text, "%srange\x1f%s..%s)", o->def && o->def[0] ? " " : "", lo, hi);
  }
  help_entry(b, flag.data, hint.data, text.data);
  cmn_buf_free(&flag);
  cmn_buf_free(&hint);
  cmn_buf_free(&text);
}

char *cmn_config_help(const cmn_config_spec *spec) {
  cmn_buf b = {0};
  int sizes = 0, durations = 0;
  cmn_buf_appendf(&b, "usage: %s [options]%s%s\n", spec->prog, spec->args ? " " : "",
                  spec->args ? spec->args : "");
  if (spec->summary) cmn_buf_appendf(&b, "%s\n", spec->summary);
  cmn_buf_appendf(&b, "\noptions:\n");
  for (size_t i = 0; i < spec->nopts; i++) {
    help_option(&b, &spec->opts[i]);
    sizes |= spec->opts[i].type == CMN_CFG_SIZE;
    durations |= spec->opts[i].type == CMN_CFG_DURATION;
  }
  help_entry(&b, "--config", "FILE",
             "read settings from FILE first ('name = value' lines); flags override it");
  help_entry(&b, "-h, --help", "", "show this help and exit");
  if (sizes || durations) cmn_buf_append(&b, "\n", 1);
  if (sizes) cmn_buf_appendf(&b, "SIZE: bytes, or K, M, G, T (also KiB...; powers of 1024).\n");
  if (durations) cmn_buf_appendf(&b, "DURATION: ms, s, m, h or d; a bare number is seconds.\n");
  return b.data;
}

char *cmn_config_dump(const cmn_config_spec *spec, const void *cfg) {
  cmn_buf b = {0};
  cmn_buf_reserve(&b, 0); /* an empty table still yields "" */
  b.data[0] = '\0';
  for (size_t i = 0; i < spec->nopts; i++) {
    const cmn_config_opt *o = &spec->opts[i];
    const void *f = cfield(cfg, o);
    char num[32];
    switch (o->type) {
    case CMN_CFG_BOOL:
      cmn_buf_appendf(&b, "%s = %s\n", o->name, *(const bool *)f ? "true" : "false");
      break;
    case CMN_CFG_INT: case CMN_CFG_DURATION:
      fmt_num(o->type, *(const int64_t *)f, num, sizeof num);
      cmn_buf_appendf(&b, "%s = %s\n", o->name, num);
      break;
    case CMN_CFG_SIZE:
      fmt_num(o->type, (int64_t)*(const uint64_t *)f, num, sizeof num);
      cmn_buf_appendf(&b, "%s = %s\n", o->name, num);
      break;
    case CMN_CFG_ENUM: {
      int k = *(const int *)f, n = 0;
      while (o->choices[n]) n++;
      cmn_buf_appendf(&b, "%s = %s\n", o->name, k >= 0 && k < n ? o->choices[k] : "?");
      break;
    }
    case CMN_CFG_STRING: case CMN_CFG_ADDR: {
      const char *s = *(char *const *)f ? *(char *const *)f : "";
      cmn_buf_appendf(&b, strchr(s, '"') ? "%s = %s\n" : "%s = \"%s\"\n", o->name, s);
      break;
    }
    }
  }
  return b.data;
}
