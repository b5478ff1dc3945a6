/*
 * cli.c - `cairn`, the command-line tool for a cairn cluster, built on
 * libcairn only: the command table, flag tables, help texts, connection
 * set-up and dispatch. The commands themselves are in cli_ns.c (namespace),
 * cli_io.c (file contents) and cli_admin.c (cluster administration).
 *
 *   cairn [GLOBAL FLAGS] COMMAND [ARGS and FLAGS in any order]
 *
 * Every flag is described once in a cmn_config table, which parses it and
 * writes its --help entry. Global flags are accepted before the command and
 * among its arguments alike.
 */
#include "cli.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- flags ------------------------------------------------------------------------------ */

#define GLOBAL_OPTS                                                                          \
  CMN_OPT_STRING(cli_opts, master, "master", NULL,                                         \
                 "master address HOST:PORT (default: $CAIRN_MASTER, else 127.0.0.1:9000)"), \
      CMN_OPT_STRING(cli_opts, secret_file, "secret_file", NULL,                             \
                     "file holding the cluster secret (default: $CAIRN_SECRET_FILE)"),      \
      CMN_OPT_DURATION(cli_opts, timeout_ms, "timeout", 100, 86400000, "60s",                \
                       "give up on an operation, retries included, after this long"),       \
      CMN_OPT_BOOL(cli_opts, json, "json", "false",                                          \
                   "print results as JSON (ls, stat, rm, append, put, get, status, fsck, "   \
                   "drain)"),                                                                \
      CMN_OPT_BOOL(cli_opts, quiet, "quiet", "false",                                        \
                   "no progress meter, no informational messages (errors still go to "       \
                   "stderr)"),                                                               \
      CMN_OPT_BOOL(cli_opts, verbose, "verbose", "false", "log what the library does to stderr")

#define OPT_OVERWRITE                                                                        \
  CMN_OPT_BOOL(cli_opts, overwrite, "overwrite", "false",                                    \
               "replace an existing file (the old one goes to the trash)")
#define OPT_LONG                                                                             \
  CMN_OPT_BOOL(cli_opts, long_fmt, "long", "false",                                          \
               "-l: one line per entry: type, goal, size, chunks, modified, name")
#define OPT_HUMAN                                                                            \
  CMN_OPT_BOOL(cli_opts, human, "human", "false", "-H: sizes as 1.5 MiB instead of bytes")
#define OPT_PARENTS                                                                          \
  CMN_OPT_BOOL(cli_opts, parents, "parents", "false",                                        \
               "-p: create missing parent directories; an existing directory is fine")
#define OPT_RECURSIVE                                                                        \
  CMN_OPT_BOOL(cli_opts, recursive, "recursive", "false",                                    \
               "-r: remove a non-empty directory with everything in it")
#define OPT_CANCEL                                                                           \
  CMN_OPT_BOOL(cli_opts, cancel, "cancel", "false", "stop draining; the server takes new "   \
               "replicas again")
#define OPT_CREATE                                                                           \
  CMN_OPT_BOOL(cli_opts, create, "create", "true", "create the file when it does not exist")

static const cmn_config_opt all_opts[] = {GLOBAL_OPTS,  OPT_OVERWRITE, OPT_LONG,  OPT_HUMAN,
                                          OPT_PARENTS,  OPT_RECURSIVE, OPT_CANCEL, OPT_CREATE};
static const cmn_config_opt global_opts[] = {GLOBAL_OPTS};
static const cmn_config_opt plain_opts[] = {GLOBAL_OPTS};
static const cmn_config_opt overwrite_opts[] = {OPT_OVERWRITE, GLOBAL_OPTS};
static const cmn_config_opt ls_opts[] = {OPT_LONG, OPT_HUMAN, GLOBAL_OPTS};
static const cmn_config_opt mkdir_opts[] = {OPT_PARENTS, GLOBAL_OPTS};
static const cmn_config_opt rm_opts[] = {OPT_RECURSIVE, GLOBAL_OPTS};
static const cmn_config_opt drain_opts[] = {OPT_CANCEL, GLOBAL_OPTS};
static const cmn_config_opt append_opts[] = {OPT_CREATE, GLOBAL_OPTS};

static const cmn_config_spec all_spec =
    CMN_CONFIG_SPEC("cairn", NULL, NULL, cli_opts, all_opts);
static const cmn_config_spec global_spec =
    CMN_CONFIG_SPEC("cairn", "COMMAND [ARGS...]",
                    "Store and read files in a cairn cluster, and look after it.", cli_opts,
                    global_opts);

static const cli_short ls_shorts[] = {{'l', "--long"}, {'H', "--human"}, {0, NULL}};
static const cli_short mkdir_shorts[] = {{'p', "--parents"}, {0, NULL}};
static const cli_short rm_shorts[] = {{'r', "--recursive"}, {0, NULL}};

/* ---- the command table ------------------------------------------------------------------ */

typedef struct cli_command {
  const char *name;
  cli_cmd_fn run;
  int min_pos, max_pos;
  const char *args;              /* positional synopsis */
  const char *summary;           /* one line for the command list */
  const char *text;              /* the rest of its --help: details, examples */
  const cmn_config_opt *opts;    /* its own flags first, then the global ones */
  size_t nopts, nown;
  const cli_short *shorts;
} cli_command;

#define OPTS(table, nown) table, CMN_ARRAY_LEN(table), nown

static const cli_command commands[] = {
    {"put", cli_cmd_put, 2, 2, "LOCAL|- REMOTE", "copy a local file (or stdin) into the cluster",
     "The bytes go to a temporary name that is renamed to REMOTE when complete:\n"
     "readers never see a half-written file and a failed copy leaves nothing.\n"
     "REMOTE may be an existing directory: the file keeps its local name.\n"
     "A progress meter is shown on a terminal.\n\n"
     "examples:\n"
     "  cairn put ./photo.jpg /photos/photo.jpg\n"
     "  cairn put ./photo.jpg /photos/\n"
     "  tar c ./src | cairn put - /backup/src.tar --overwrite\n",
     OPTS(overwrite_opts, 1), NULL},
    {"get", cli_cmd_get, 2, 2, "REMOTE LOCAL|-", "copy a file from the cluster to a local file",
     "LOCAL is replaced only once the whole file was read (a temporary file beside\n"
     "it is renamed); '-' writes to stdout. LOCAL may be an existing directory.\n\n"
     "examples:\n"
     "  cairn get /photos/photo.jpg ./photo.jpg\n"
     "  cairn get /backup/src.tar - | tar x\n",
     OPTS(plain_opts, 0), NULL},
    {"cat", cli_cmd_cat, 1, 1, "REMOTE", "write a file to stdout",
     "examples:\n  cairn cat /logs/today | grep ERROR\n", OPTS(plain_opts, 0), NULL},
    {"ls", cli_cmd_ls, 0, 1, "[PATH]", "list a directory (default /)",
     "Entries in name order; directories end with '/'. A file lists itself.\n"
     "--json prints {\"path\": ..., \"entries\": [{\"name\", \"type\", \"size\", ...}]}.\n\n"
     "examples:\n  cairn ls -l /photos\n  cairn ls --json / | jq -r '.entries[].name'\n",
     OPTS(ls_opts, 2), ls_shorts},
    {"stat", cli_cmd_stat, 1, 1, "PATH", "show a file's or directory's attributes",
     "Shows id, type, size, chunks, replication goal and modification time.\n\n"
     "examples:\n  cairn stat /photos/photo.jpg\n  cairn stat --json /photos/photo.jpg\n",
     OPTS(plain_opts, 0), NULL},
    {"mkdir", cli_cmd_mkdir, 1, 1, "PATH", "create a directory",
     "examples:\n  cairn mkdir /photos\n  cairn mkdir -p /photos/2024/05\n",
     OPTS(mkdir_opts, 1), mkdir_shorts},
    {"mv", cli_cmd_mv, 2, 2, "FROM TO", "rename a file or directory (atomic)",
     "TO may be an existing directory: FROM moves into it under its own name.\n"
     "An existing file TO is an error unless --overwrite.\n\n"
     "examples:\n  cairn mv /tmp/upload /photos/photo.jpg\n  cairn mv /a.txt /docs/\n",
     OPTS(overwrite_opts, 1), NULL},
    {"rm", cli_cmd_rm, 1, 1, "PATH", "move a file or directory to the trash",
     "Prints the trash path, which 'cairn undelete' takes until the trash period\n"
     "(3 days by default) has passed.\n\n"
     "examples:\n  cairn rm /photos/photo.jpg\n  cairn rm -r /old\n",
     OPTS(rm_opts, 1), rm_shorts},
    {"undelete", cli_cmd_undelete, 1, 2, "TRASH_PATH [TO]", "restore an entry from the trash",
     "Without TO the entry goes back where it was deleted from.\n\n"
     "examples:\n"
     "  t=$(cairn rm /photos/photo.jpg) && cairn undelete \"$t\"\n"
     "  cairn undelete \"$t\" /photos/restored.jpg\n",
     OPTS(plain_opts, 0), NULL},
    {"append", cli_cmd_append, 2, 2, "REMOTE LOCAL|-", "append one record to a file",
     "The whole of LOCAL (or stdin) is stored atomically as ONE record at the end\n"
     "of REMOTE, and its offset is printed. Records are at most a quarter of a\n"
     "chunk. Appends are at-least-once: a retried append may store a record twice.\n\n"
     "examples:\n  echo \"job 42 done\" | cairn append /logs/jobs -\n",
     OPTS(append_opts, 1), NULL},
    {"setgoal", cli_cmd_setgoal, 2, 2, "PATH N", "set the replication goal (1..9)",
     "For a file its chunks are repaired or trimmed to N copies; for a directory N\n"
     "is the default of files created in it from now on.\n\n"
     "examples:\n  cairn setgoal /scratch 1\n  cairn setgoal /photos/photo.jpg 5\n",
     OPTS(plain_opts, 0), NULL},
    {"status", cli_cmd_status, 0, 0, "", "cluster overview: servers, space, replication",
     "One line per chunkserver (state, zone, space, chunks, last heartbeat), the\n"
     "totals, and the replication counters.\n\n"
     "examples:\n  cairn status\n  cairn status --json | jq '.servers[] | select(.state != \"alive\")'\n",
     OPTS(plain_opts, 0), NULL},
    {"fsck", cli_cmd_fsck, 0, 0, "", "check replication health (exit 0 healthy, 1 not)",
     "Healthy means no chunk is missing, corrupt or under-replicated. --json prints\n"
     "one object with at least the integer fields files, chunks, under_replicated,\n"
     "missing and corrupt, and the boolean healthy.\n\n"
     "examples:\n  cairn fsck || echo 'needs attention'\n  cairn fsck --json\n",
     OPTS(plain_opts, 0), NULL},
    {"drain", cli_cmd_drain, 1, 1, "SERVER_ID", "move all replicas off a chunkserver",
     "The server takes no new replicas and the master moves its replicas away;\n"
     "watch 'cairn status' until its chunk count reaches 0.\n\n"
     "examples:\n  cairn drain 5f0c...e1\n  cairn drain 5f0c...e1 --cancel\n",
     OPTS(drain_opts, 1), NULL},
};

static const char exit_code_text[] =
    "exit codes:\n"
    "  0  success (fsck: the cluster is healthy)\n"
    "  1  the operation failed, reason on stderr (fsck: the cluster is not healthy)\n"
    "  2  usage error: unknown command or flag, wrong or missing arguments, no secret\n"
    "  3  cannot reach the cluster: master unavailable, deadline exceeded,\n"
    "     authentication failed (wrong secret), secret file unreadable\n";

static const cli_command *find_command(const char *name) {
  for (size_t i = 0; i < CMN_ARRAY_LEN(commands); i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* ---- help -------------------------------------------------------------------------------- */

static void print_main_help(FILE *f) {
  char *opts = cmn_config_help(&global_spec);
  fputs(opts, f);
  free(opts);
  fputs("\ncommands:\n", f);
  for (size_t i = 0; i < CMN_ARRAY_LEN(commands); i++) {
    char syn[64];
    snprintf(syn, sizeof syn, "%s %s", commands[i].name, commands[i].args);
    fprintf(f, "  %-26s%s\n", syn, commands[i].summary);
  }
  fprintf(f, "  %-26s%s\n", "help [COMMAND]", "this text, or a command's flags and examples");
  fputs("\nGlobal flags may also follow the command. 'cairn COMMAND --help' shows a\n"
        "command's own flags and examples.\n\n",
        f);
  fputs(exit_code_text, f);
  fputs("\nenvironment:\n"
        "  CAIRN_MASTER       master address when --master is not given\n"
        "  CAIRN_SECRET_FILE  secret file when --secret-file is not given\n"
        "  CAIRN_LOG_LEVEL    library log level: debug, info, warn, error, off\n"
        "\nexamples:\n"
        "  export CAIRN_MASTER=10.0.0.2:9000 CAIRN_SECRET_FILE=/etc/cairn/secret\n"
        "  cairn put ./report.pdf /docs/report.pdf\n"
        "  cairn ls -l /docs\n"
        "  cairn get /docs/report.pdf ./copy.pdf\n"
        "  cairn fsck --json\n",
        f);
}

static void print_command_help(FILE *f, const cli_command *cmd) {
  char prog[32];
  snprintf(prog, sizeof prog, "cairn %s", cmd->name);
  cmn_config_spec own = {prog, cmd->args[0] ? cmd->args : NULL, cmd->summary, cmd->opts,
                         cmd->nown, sizeof(cli_opts)};
  char *opts = cmn_config_help(&own);
  fputs(opts, f);
  free(opts);
  fprintf(f, "\n%s\nglobal flags (also accepted here): --master, --secret-file, --timeout, "
             "--json,\n--quiet, --verbose; see 'cairn --help'.\n",
          cmd->text);
  fputs("\n", f);
  fputs(exit_code_text, f);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "cairn%s%s: ", cmd ? " " : "", cmd ? cmd : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'cairn %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
  return CLI_EXIT_USAGE;
}

/* ---- messages shared by the commands ------------------------------------------------------ */

int cli_fail(const cli_ctx *x, int rc, const char *fmt, ...) {
  va_list ap;
  fputs("cairn: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, ": %s", cairn_strerror(rc));
  if (rc == CAIRN_EAUTH)
    fprintf(stderr, " (is %s the cluster's secret file?)", x->secret ? x->secret : "?");
  else if (cli_exit_code(rc) == CLI_EXIT_UNREACH)
    fprintf(stderr, " (master %s)", x->master ? x->master : "?");
  fputc('\n', stderr);
  return cli_exit_code(rc);
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  fputs("cairn: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return CLI_EXIT_FAIL;
}

int cli_print_json(json_t *j) {
  if (cli_json_print(stdout, j) != 0) return cli_error("cannot write to stdout");
  return CLI_EXIT_OK;
}

/* ---- connecting ------------------------------------------------------------------------- */

/*
 * Check the master address and the secret (from flags, else the
 * environment) and make the client. A bad or missing setting is a usage
 * error (2); a secret file the library cannot read means we cannot
 * authenticate (3). The connection itself is made by the first call.
 */
int cli_connect(cli_ctx *x) {
  const cli_opts *o = x->o;
  const char *env_master = getenv("CAIRN_MASTER");
  const char *env_secret = getenv("CAIRN_SECRET_FILE");
  x->master = o->master ? o->master : env_master && *env_master ? env_master : "127.0.0.1:9000";
  if (cli_check_addr(x->master) != 0)
    return cli_usage(NULL, "%s: '%s' is not HOST:PORT",
                       o->master ? "--master" : "$CAIRN_MASTER", x->master);
  const char *secret = o->secret_file ? o->secret_file : env_secret;
  x->secret = secret;
  if (!secret || !*secret)
    return cli_usage(NULL, "no cluster secret: give --secret-file FILE or set "
                             "CAIRN_SECRET_FILE");
  cairn_options co;
  cairn_options_init(&co);
  co.master = x->master;
  co.secret_file = secret;
  co.op_timeout_ms = o->timeout_ms;
  if (co.rpc_timeout_ms > o->timeout_ms) co.rpc_timeout_ms = o->timeout_ms;
  int rc = cairn_connect(&co, &x->c);
  if (rc != 0) {
    fprintf(stderr, "cairn: cannot use secret file %s: %s\n", secret,
            rc == CAIRN_ENOENT ? "no such file" : cairn_strerror(rc));
    return CLI_EXIT_UNREACH;
  }
  return CLI_EXIT_OK;
}

/* Parse a command's flags and arguments, check the argument count against
 * the table, then run it. Commands check their arguments' values and call
 * cli_connect themselves, so every usage error is found before the cluster
 * is needed. */
static int run_command(const cli_command *cmd, cli_opts *o, int argc, char **argv) {
  char err[256] = "";
  cli_args args = {0};
  int rc = cli_parse_args(&(cmn_config_spec){"cairn", NULL, NULL, cmd->opts, cmd->nopts,
                                             sizeof(cli_opts)},
                          cmd->shorts, o, argc, argv, &args, err, sizeof err);
  if (rc == CMN_CONFIG_HELP) {
    print_command_help(stdout, cmd);
    return CLI_EXIT_OK;
  }
  if (rc != 0) return cli_usage(cmd->name, "%s", err);
  if (args.npos < cmd->min_pos || args.npos > cmd->max_pos) {
    rc = args.npos < cmd->min_pos
             ? cli_usage(cmd->name, "missing argument%s: usage: cairn %s %s",
                           cmd->min_pos - args.npos > 1 ? "s" : "", cmd->name, cmd->args)
             : cli_usage(cmd->name, "unexpected argument '%s': usage: cairn %s %s",
                           args.pos[cmd->max_pos], cmd->name, cmd->args);
    cli_args_free(&args);
    return rc;
  }
  if (o->verbose) cmn_log_set_level(CMN_LOG_INFO);
  else if (o->quiet) cmn_log_set_level(CMN_LOG_ERROR);
  cli_ctx x = {.cmd = cmd->name, .o = o, .pos = args.pos, .npos = args.npos,
               .stderr_tty = !o->quiet && isatty(STDERR_FILENO)};
  rc = cmd->run(&x);
  cairn_disconnect(x.c);
  cli_args_free(&args);
  return rc;
}

int main(int argc, char **argv) {
  cli_opts o = {0};
  char err[256] = "";
  int first = argc, rc;
  cmn_log_init("cairn");
  if (!getenv("CAIRN_LOG_LEVEL")) cmn_log_set_level(CMN_LOG_WARN);
  if (cmn_config_defaults(&all_spec, &o, err, sizeof err) != 0) {
    fprintf(stderr, "cairn: %s\n", err); /* a bug in the tables above */
    return CLI_EXIT_FAIL;
  }
  rc = cmn_config_parse_args(&global_spec, &o, argc, argv, &first, err, sizeof err);
  const cli_command *cmd = first < argc ? find_command(argv[first]) : NULL;
  if (rc == CMN_CONFIG_HELP) {
    if (cmd) print_command_help(stdout, cmd);
    else print_main_help(stdout);
    rc = CLI_EXIT_OK;
  } else if (rc != 0) {
    rc = cli_usage(NULL, "%s", err);
  } else if (first >= argc) {
    rc = cli_usage(NULL, "no command given");
  } else if (strcmp(argv[first], "help") == 0) {
    const cli_command *about = first + 1 < argc ? find_command(argv[first + 1]) : NULL;
    if (first + 2 < argc) rc = cli_usage(NULL, "help takes at most one command name");
    else if (first + 1 < argc && !about)
      rc = cli_usage(NULL, "unknown command '%s'", argv[first + 1]);
    else if (about) print_command_help(stdout, about), rc = CLI_EXIT_OK;
    else print_main_help(stdout), rc = CLI_EXIT_OK;
  } else if (!cmd) {
    rc = cli_usage(NULL, "unknown command '%s'", argv[first]);
  } else {
    rc = run_command(cmd, &o, argc - first, argv + first);
  }
  cmn_config_free(&all_spec, &o);
  if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) rc = cli_error("cannot write to stdout");
  return rc;
}
