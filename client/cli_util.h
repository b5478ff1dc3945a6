/*
 * cli_util.h - the pure parts of the `cairn` command-line tool: argument
 * splitting, exit codes, human-readable sizes/rates/times, JSON shaping of
 * library results, and the progress meter's state and rendering.
 *
 * These live in the small static library cairn_cli_util (not in libcairn)
 * so the unit tests can exercise them without a cluster. Nothing here
 * talks to the network or keeps global state; every function may be called
 * from any thread on its own arguments.
 */
#ifndef CLI_UTIL_H
#define CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cairn.h"
#include "cmn_config.h"

/* ---- exit codes ------------------------------------------------------------------- */

/* What `cairn` returns, for scripts (documented in `cairn --help`). */
enum {
  CLI_EXIT_OK = 0,       /* success (fsck: the cluster is healthy) */
  CLI_EXIT_FAIL = 1,     /* the operation failed (fsck: the cluster is not healthy) */
  CLI_EXIT_USAGE = 2,    /* bad command line: unknown command or flag, wrong arguments */
  CLI_EXIT_UNREACH = 3,  /* cannot reach or authenticate to the cluster */
};

/* Exit code for a libcairn result: 0 for 0, CLI_EXIT_UNREACH for
 * CAIRN_EUNAVAIL, CAIRN_ETIMEDOUT, CAIRN_EAUTH and CAIRN_ECLOSED, else
 * CLI_EXIT_FAIL. */
int cli_exit_code(int rc);

/* ---- arguments -------------------------------------------------------------------- */

/* A one-letter alias: "-l" stands for "--long". A table ends with {0, NULL}. */
typedef struct cli_short {
  char letter;
  const char *name;
} cli_short;

/* Positionals found by cli_parse_args; the strings point into the argv given
 * to it (valid as long as that argv), the array is owned here. */
typedef struct cli_args {
  char **pos;
  int npos;
} cli_args;

/*
 * Parse argv[1..argc-1] (argv[0] is the command name) with `spec` into `cfg`,
 * letting flags and positionals come in any order: "put a /b --overwrite"
 * and "put --overwrite a /b" mean the same. "-" is a positional; after "--"
 * everything is. A flag that takes a value (not on/off) takes the next
 * argument even when it starts with '-'. Letters in `shorts` (may be NULL)
 * may stand alone or be combined ("-l", "-lH"); a single-dash word with any
 * other letter is refused ("-h" alone asks for help).
 *
 * Returns 0 with the positionals in *out (free with cli_args_free);
 * CMN_CONFIG_HELP when -h/--help appears (nothing changed, *out empty);
 * CAIRN_ECONFIG with a message in err for an unknown flag or a bad value
 * (then `cfg` and *out are unchanged/empty, as cmn_config_parse_args).
 */
int cli_parse_args(const cmn_config_spec *spec, const cli_short *shorts, void *cfg, int argc,
                   char *const *argv, cli_args *out, char *err, size_t errlen);
void cli_args_free(cli_args *a);

/* Replication goal "1".."9" (digits only). 0 or CAIRN_EINVAL. */
int cli_parse_goal(const char *s, uint32_t *out);

/* "host:port" or "[v6]:port" with a non-empty host and a port 1..65535.
 * 0 or CAIRN_EINVAL. */
int cli_check_addr(const char *s);

/* ---- paths -------------------------------------------------------------------------- */

/* Last component of a local or remote path, trailing '/' ignored: "a/b/" ->
 * "b", "/" -> "" . A new string the caller frees. */
char *cli_basename(const char *path);

/* dir + '/' + name without doubling the '/': "/" + "x" -> "/x". A new string
 * the caller frees. */
char *cli_join(const char *dir, const char *name);

/* ---- human-readable values --------------------------------------------------------- */

/* Bytes in binary units with three significant digits: "0 B", "999 B",
 * "1.00 KiB", "12.5 MiB", "123 GiB". Always NUL-terminated in buf[n]. */
void cli_fmt_size(uint64_t bytes, char *buf, size_t n);

/* A rate in bytes per second, like cli_fmt_size with "/s"; a negative or
 * non-finite rate is "-- B/s". */
void cli_fmt_rate(double bytes_per_s, char *buf, size_t n);

/* Remaining time: "0:07", "12:34", "1:02:03"; "--:--" when unknown
 * (negative) or beyond 99 hours. */
void cli_fmt_eta(int64_t seconds, char *buf, size_t n);

/* Milliseconds since the epoch as UTC "2024-05-01T12:00:03Z" (ISO 8601);
 * "-" for 0 or less. */
void cli_fmt_time(int64_t ms, char *buf, size_t n);

/* ---- JSON shaping (jansson) --------------------------------------------------------
 * Each returns a new reference the caller json_decref()s. Unsigned values
 * above INT64_MAX are clamped (JSON integers in jansson are signed). */

/* One namespace entry: path, name, id, type ("file"|"dir"), size, chunks,
 * goal, mtime_ms, mtime (ISO 8601), and trashed_ms when trashed. */
json_t *cli_json_stat(const char *path, const cairn_stat *st);

/* `cairn status --json`: cluster_id, the totals, the replication counters
 * and a "servers" array (id, state, zone, data_addr, capacity, free, used,
 * chunks, last_heartbeat_ms). */
json_t *cli_json_status(const cairn_cluster_status *s);

/* `cairn fsck --json`: healthy (bool), files, directories, chunks,
 * under_replicated, missing, corrupt, repair_queue, clones_in_flight,
 * servers, servers_alive, servers_dead, servers_draining, capacity, free. */
json_t *cli_json_fsck(const cairn_cluster_status *s);

/* 1 when nothing is missing, corrupt or under-replicated. */
int cli_fsck_healthy(const cairn_cluster_status *s);

/* Write `j` to `f` (two-space indent, then a newline) and drop the
 * reference. 0, or CAIRN_EIO when it could not be written. */
int cli_json_print(FILE *f, json_t *j);

/* ---- progress meter ---------------------------------------------------------------- */

/* State of one transfer's meter. Zero-initialise, then cli_progress_init. */
typedef struct cli_progress {
  FILE *out;             /* where the meter goes (stderr) */
  bool enabled;          /* false: every call is a no-op */
  int width;             /* terminal columns */
  const char *label;     /* shown first ("put big.iso"); not owned */
  int64_t start_ms;      /* clock at init */
  int64_t last_draw_ms;  /* clock of the last redraw, or -1 */
  uint64_t last_done;    /* bytes at the last rate sample */
  int64_t last_sample_ms;
  double rate;           /* smoothed bytes per second, < 0 before the first sample */
  bool drawn;            /* something is on the line (to finish with a newline) */
} cli_progress;

/* Minimum interval between redraws (at most ten a second). */
#define CLI_PROGRESS_INTERVAL_MS 100

void cli_progress_init(cli_progress *p, FILE *out, bool enabled, int width, const char *label,
                       int64_t now_ms);

/* Feed the library's progress callback at time now_ms; redraws when at least
 * CLI_PROGRESS_INTERVAL_MS passed since the last redraw. Returns 1 when it
 * redrew, else 0. */
int cli_progress_update(cli_progress *p, uint64_t done, uint64_t total, int64_t now_ms);

/* Draw the final state (when the meter was ever drawn or `done` is large
 * enough to matter) and end the line. */
void cli_progress_finish(cli_progress *p, uint64_t done, uint64_t total, int64_t now_ms);

/* Wipe the meter's line (used before printing an error). */
void cli_progress_clear(cli_progress *p);

/* Render one meter line into buf (no newline, at most `width` columns):
 *   "put big.iso  [#####-----]  45%  12.5 MiB / 27.8 MiB  3.20 MiB/s  ETA 0:04"
 * total 0 (unknown size) drops the bar, percentage and ETA. */
void cli_progress_render(char *buf, size_t n, int width, const char *label, uint64_t done,
                         uint64_t total, double rate);

#endif /* CLI_UTIL_H */
