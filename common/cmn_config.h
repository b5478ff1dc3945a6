/*
 * cmn_config.h - table-driven configuration: one table per program drives
 * its config file, its command-line flags, its --help text and the dump of
 * the effective settings logged at start-up (Redis static_configs[] is the
 * model).
 *
 * A program keeps its settings in a plain struct of its own and describes
 * every field once:
 *
 *   struct mst_config { char *listen; uint64_t chunk_size; int64_t lease_ms;
 *                       bool fsync; int log_level; };
 *   static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
 *   static const cmn_config_opt mst_opts[] = {
 *     CMN_OPT_ADDR(struct mst_config, listen, "listen", "0.0.0.0:9000", "gRPC address"),
 *     CMN_OPT_SIZE(struct mst_config, chunk_size, "chunk_size", 1 << 20, 1 << 30,
 *                  "64MiB", "size of a chunk"),
 *     ...
 *   };
 *   static const cmn_config_spec mst_spec =
 *       CMN_CONFIG_SPEC("cairn-master", NULL, "metadata master", struct mst_config, mst_opts);
 *
 *   struct mst_config cfg = {0};
 *   char err[256];
 *   int rc = cmn_config_defaults(&mst_spec, &cfg, err, sizeof err);
 *   if (rc == 0) rc = cmn_config_parse_args(&mst_spec, &cfg, argc, argv, NULL, err, sizeof err);
 *   if (rc == CMN_CONFIG_HELP) { print and free cmn_config_help(&mst_spec); exit 0 }
 *   if (rc < 0) { fprintf(stderr, "cairn-master: %s\n", err); exit 2; }
 *   ...
 *   cmn_config_free(&mst_spec, &cfg);
 *
 * Types and the C field each one is stored in:
 *   BOOL      bool      true/false, yes/no, on/off, 1/0 (any case)
 *   INT       int64_t   decimal with optional sign; bounds min..max
 *   SIZE      uint64_t  bytes; suffix B, K/KiB, M/MiB, G/GiB, T/TiB (powers of
 *                       1024, any case, space before it allowed); bounds
 *                       min..max with 0 <= min <= max <= INT64_MAX
 *   DURATION  int64_t   milliseconds; suffix ms, s, m, h, d (lower case);
 *                       a bare number means SECONDS; whole numbers only;
 *                       never negative; bounds min..max in ms
 *   STRING    char *    owned by the struct (freed by cmn_config_free); a
 *                       NULL default leaves it NULL
 *   ENUM      int       index into the option's NULL-terminated `choices`
 *                       (names matched in any case)
 *   ADDR      char *    "host:port" or "[v6addr]:port", host non-empty,
 *                       (CMN_OPT_LISTEN: the same with port 0 allowed)
 *                       port 1..65535; stored as written, owned like STRING
 *
 * Names: table names are lower case with '_' ("chunk_size"). In files and
 * flags '-' and '_' are interchangeable; --help shows flags with '-'
 * ("--chunk-size") and dumps use the table spelling.
 *
 * File syntax: one `name = value` per line; blank lines; '#' starts a comment
 * at the start of a line or after whitespace ("a#b" is a value); a value may
 * be wrapped in double quotes to keep spaces or '#' (no escapes inside).
 * Unknown keys, repeated keys, a missing '=', bad values and out-of-range
 * numbers are refused with "FILE:LINE: ..." in the error buffer.
 *
 * Flags: `--name value`, `--name=value`; on/off options take `--name`,
 * `--no-name` or `--name=value` only (never the next argument, which keeps
 * positionals unambiguous). `--config FILE` loads FILE before any flag is
 * applied, wherever it stands; `-h`/`--help` asks for help. The names
 * "config" and "help" are reserved. Environment variables are not read.
 *
 * Precedence: table defaults < config file < flags.
 *
 * Every function that changes a config struct is all-or-nothing: on error
 * the struct is exactly as before (values are parsed into a scratch copy
 * that replaces the struct only when everything was accepted).
 *
 * Errors are written, NUL-terminated and truncated to fit, into the
 * caller's `err` buffer of `errlen` bytes (NULL/0 means no message), never
 * printed, so the caller decides where they go.
 *
 * Thread safety: no global state; any thread may call any function, but a
 * given config struct must not be used by another thread during a call that
 * changes it.
 */
#ifndef CMN_CONFIG_H
#define CMN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cmn_config_type {
  CMN_CFG_BOOL,
  CMN_CFG_INT,
  CMN_CFG_SIZE,
  CMN_CFG_DURATION,
  CMN_CFG_STRING,
  CMN_CFG_ENUM,
  CMN_CFG_ADDR,
} cmn_config_type;

/* One setting. Declare with the CMN_OPT_* macros below, which also check at
 * compile time that the field has the C type the setting is stored in. */
typedef struct cmn_config_opt {
  const char *name;            /* table spelling: [a-z0-9_], e.g. "chunk_size" */
  cmn_config_type type;
  size_t offset;               /* offsetof(struct, field) */
  int64_t min, max;            /* INT, SIZE (bytes), DURATION (ms) */
  const char *def;             /* default, parsed like a file value */
  const char *help;            /* one sentence for --help */
  const char *const *choices;  /* ENUM: NULL-terminated names */
} cmn_config_opt;

/* A program's whole table. Build it with CMN_CONFIG_SPEC. */
typedef struct cmn_config_spec {
  const char *prog;            /* "cairn-master", first word of the usage line */
  const char *args;            /* positional synopsis ("<command> [args...]") or NULL */
  const char *summary;         /* one line under the usage line, or NULL */
  const cmn_config_opt *opts;
  size_t nopts;
  size_t size;                 /* sizeof the program's config struct */
} cmn_config_spec;

/* parse_args result meaning "-h or --help was given": print the help, exit 0. */
#define CMN_CONFIG_HELP 1

/* Compile-time check that T.f has type `ctype` (comparing pointers of
 * different types is an error under -Werror), yielding offsetof(T, f). */
#define CMN_OPT_FIELD_(T, f, ctype) (offsetof(T, f) + 0 * sizeof(&((T *)0)->f == (ctype *)0))

#define CMN_OPT_BOOL(T, f, name, def, help)                                                  \
  {name, CMN_CFG_BOOL, CMN_OPT_FIELD_(T, f, bool), 0, 1, def, help, NULL}
#define CMN_OPT_INT(T, f, name, min, max, def, help)                                         \
  {name, CMN_CFG_INT, CMN_OPT_FIELD_(T, f, int64_t), min, max, def, help, NULL}
#define CMN_OPT_SIZE(T, f, name, min, max, def, help)                                        \
  {name, CMN_CFG_SIZE, CMN_OPT_FIELD_(T, f, uint64_t), min, max, def, help, NULL}
#define CMN_OPT_DURATION(T, f, name, min_ms, max_ms, def, help)                              \
  {name, CMN_CFG_DURATION, CMN_OPT_FIELD_(T, f, int64_t), min_ms, max_ms, def, help, NULL}
#define CMN_OPT_STRING(T, f, name, def, help)                                                \
  {name, CMN_CFG_STRING, CMN_OPT_FIELD_(T, f, char *), 0, 0, def, help, NULL}
#define CMN_OPT_ENUM(T, f, name, choices, def, help)                                         \
  {name, CMN_CFG_ENUM, CMN_OPT_FIELD_(T, f, int), 0, 0, def, help, choices}
#define CMN_OPT_ADDR(T, f, name, def, help)                                                  \
  {name, CMN_CFG_ADDR, CMN_OPT_FIELD_(T, f, char *), 1, 65535, def, help, NULL}
/* An address to listen on: like ADDR, but port 0 (any free port) is allowed. */
#define CMN_OPT_LISTEN(T, f, name, def, help)                                                \
  {name, CMN_CFG_ADDR, CMN_OPT_FIELD_(T, f, char *), 0, 65535, def, help, NULL}

#define CMN_CONFIG_SPEC(prog, args, summary, T, table)                                       \
  {prog, args, summary, table, sizeof(table) / sizeof((table)[0]), sizeof(T)}

/*
 * Check the table and set every field it describes to its default.
 * `cfg` must be zeroed or previously filled by this module (string fields
 * NULL or owned); owned strings it held are freed when replaced.
 * Returns 0, or CAIRN_ECONFIG when the table itself is wrong (duplicate or
 * reserved name, bad bounds, field outside the struct, a default that does
 * not parse...): a programming error, caught by any test that calls this.
 * The other functions assume a table this function accepted.
 */
int cmn_config_defaults(const cmn_config_spec *spec, void *cfg, char *err, size_t errlen);

/*
 * Read the config file at `path` into `cfg` (see the file syntax above).
 * Returns 0; CAIRN_ECONFIG for bad content ("path:line: ..." in err);
 * CAIRN_ENOENT, CAIRN_EPERM, CAIRN_ETOOBIG (over 1 MiB) or CAIRN_EIO when
 * the file cannot be read. On error `cfg` is unchanged.
 */
int cmn_config_load_file(const cmn_config_spec *spec, void *cfg, const char *path, char *err,
                         size_t errlen);

/*
 * Apply the command line argv[1..argc-1] to `cfg`: first the file named by
 * --config (if any; a relative path is taken from the working directory),
 * then every flag in order (a later flag wins over an earlier one). Call
 * cmn_config_defaults first: this function does not apply defaults.
 *
 * Positionals: with `first_pos` NULL any non-flag argument is refused.
 * Otherwise flag parsing stops at the first non-flag argument ("-" counts
 * as one) or just after "--", and *first_pos receives its index (argc when
 * there is none), so a CLI can read argv[*first_pos..] as its command and
 * parse that command's own flags with another table.
 *
 * Returns 0; CMN_CONFIG_HELP when -h/--help appears among the flags (then
 * nothing is changed, even if other flags are wrong); CAIRN_ECONFIG for an
 * unknown flag, a missing or bad value, or a bad config file; the read
 * errors of cmn_config_load_file. On error `cfg` is unchanged.
 * argv is only read; nothing keeps pointers into it.
 */
int cmn_config_parse_args(const cmn_config_spec *spec, void *cfg, int argc, char *const *argv,
                          int *first_pos, char *err, size_t errlen);

/*
 * Set one setting by name ('-' or '_'), parsing `value` like a file value.
 * 0 or CAIRN_ECONFIG ("name: reason" in err); on error `cfg` is unchanged.
 */
int cmn_config_set(const cmn_config_spec *spec, void *cfg, const char *name, const char *value,
                   char *err, size_t errlen);

/*
 * The --help text: usage line, summary, one entry per option (flag, value
 * hint, help, default and bounds), wrapped at 79 columns, then --config and
 * --help and a note on units. A new string the caller frees.
 */
char *cmn_config_help(const cmn_config_spec *spec);

/*
 * The effective settings as "name = value" lines in file syntax (sizes and
 * durations in their largest exact unit), for the start-up log. A new
 * string the caller frees. Every value is printed: keep secrets out of
 * these tables (pass a path to a secret file instead).
 */
char *cmn_config_dump(const cmn_config_spec *spec, const void *cfg);

/* Free the strings owned by `cfg` and set those fields to NULL.
 * Safe to call twice; other fields are left as they are. */
void cmn_config_free(const cmn_config_spec *spec, void *cfg);

#endif /* CMN_CONFIG_H */
