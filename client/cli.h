/*
 * cli.h - internals of the `cairn` command-line tool shared by its files:
 * the settings every flag lands in, the per-run context and the command
 * functions (cli_ns.c, cli_io.c, cli_admin.c). Only the tool includes this.
 *
 * Each command function prints its own output and messages and returns
 * the process exit code (CLI_EXIT_*, see cli_util.h). Everything runs on
 * the main thread.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "cairn.h"
#include "cli_util.h"

/* Every flag of every command (one struct, so one table entry per flag can
 * be shared by several commands). Filled by cmn_config. */
typedef struct cli_opts {
  char *master;         /* NULL: $CAIRN_MASTER, else the library default */
  char *secret_file;    /* NULL: $CAIRN_SECRET_FILE */
  int64_t timeout_ms;   /* a whole operation with its retries */
  bool json;
  bool quiet;
  bool verbose;
  bool overwrite;       /* put, mv */
  bool long_fmt;        /* ls -l */
  bool human;           /* ls -H */
  bool parents;         /* mkdir -p */
  bool recursive;       /* rm -r */
  bool cancel;          /* drain --cancel */
  bool create;          /* append: create the file when missing */
} cli_opts;

typedef struct cli_ctx {
  const char *cmd;      /* the command's name, for messages */
  cli_opts *o;
  char **pos;           /* positionals (pointers into argv) */
  int npos;
  cairn_client *c;      /* connected before a command that needs it runs */
  const char *master;   /* effective address, for messages */
  const char *secret;   /* effective secret file, for messages */
  bool stderr_tty;      /* progress meters allowed (and not --quiet) */
} cli_ctx;

typedef int (*cli_cmd_fn)(cli_ctx *x);

/*
 * Check the master address and the secret (flags, else $CAIRN_MASTER and
 * $CAIRN_SECRET_FILE) and create x->c (freed by the dispatcher). Returns an
 * exit code: 0; CLI_EXIT_USAGE for a bad address or no secret;
 * CLI_EXIT_UNREACH when the secret file cannot be used. Messages printed.
 */
int cli_connect(cli_ctx *x);

/*
 * Report a failed libcairn call as "cairn: <what>: <reason>" on stderr
 * (with a hint when the cluster cannot be reached) and return its exit
 * code. `what` is printf-style ("stat /x").
 */
int cli_fail(const cli_ctx *x, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A usage error: "cairn CMD: <message>" and a pointer to the command's
 * --help on stderr (cmd NULL: the tool's). Returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "cairn: <message>" on stderr for local failures (files, stdout); returns
 * CLI_EXIT_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print `j` (a new reference, consumed) on stdout; CLI_EXIT_FAIL when
 * stdout cannot be written. */
int cli_print_json(json_t *j);

/* The remote path a file named like `src` gets when the user named `dst`:
 * dst itself, or dst/basename(src) when dst is an existing directory (as
 * cp and mv do). 0 with a new string in *out, or a libcairn error (then
 * *out is NULL). */
int cli_target_in_dir(cli_ctx *x, const char *src, const char *dst, char **out);

/* Commands (cli_ns.c). */
int cli_cmd_ls(cli_ctx *x);
int cli_cmd_stat(cli_ctx *x);
int cli_cmd_mkdir(cli_ctx *x);
int cli_cmd_mv(cli_ctx *x);
int cli_cmd_rm(cli_ctx *x);
int cli_cmd_undelete(cli_ctx *x);
int cli_cmd_setgoal(cli_ctx *x);

/* Commands (cli_io.c). */
int cli_cmd_put(cli_ctx *x);
int cli_cmd_get(cli_ctx *x);
int cli_cmd_cat(cli_ctx *x);
int cli_cmd_append(cli_ctx *x);

/* Commands (cli_admin.c). */
int cli_cmd_status(cli_ctx *x);
int cli_cmd_fsck(cli_ctx *x);
int cli_cmd_drain(cli_ctx *x);

#endif /* CLI_H */
