/*
 * cli_ns.c - the namespace commands of `cairn`: ls, stat, mkdir, mv, rm,
 * undelete, setgoal. Each checks its arguments, connects, makes one or a
 * few libcairn calls and prints the result (plain text or --json).
 */
#include "cli.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

/* One `ls` line. Plain: the name ("/" after directories). Long: type, goal,
 * size (bytes, or human with -H), chunks, modification time, name. */
static void print_entry(const cli_opts *o, const char *name, const cairn_stat *st) {
  int dir = st->type == CAIRN_TYPE_DIR;
  if (o->long_fmt) {
    char size[32], when[40];
    if (dir) snprintf(size, sizeof size, "-");
    else if (o->human) cli_fmt_size(st->size, size, sizeof size);
    else snprintf(size, sizeof size, "%llu", (unsigned long long)st->size);
    cli_fmt_time(st->mtime_ms, when, sizeof when);
    char chunks[24];
    if (dir) snprintf(chunks, sizeof chunks, "-");
    else snprintf(chunks, sizeof chunks, "%llu", (unsigned long long)st->chunks);
    printf("%-4s %u %12s %7s  %-20s  %s%s\n", dir ? "dir" : "file", st->goal, size, chunks,
           when, name, dir ? "/" : "");
  } else {
    printf("%s%s\n", name, dir ? "/" : "");
  }
}

/* `ls FILE` lists the file itself, as ls(1) does. */
static int ls_one(cli_ctx *x, const char *path) {
  cairn_stat st;
  int rc = cairn_stat_path(x->c, path, &st);
  if (rc != 0) return cli_fail(x, rc, "ls %s", path);
  if (x->o->json) {
    json_t *doc = json_object(), *entries = json_array();
    json_array_append_new(entries, cli_json_stat(path, &st));
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, "entries", entries);
    return cli_print_json(doc);
  }
  print_entry(x->o, path, &st);
  return CLI_EXIT_OK;
}

/*
 * List a directory page by page as the library fetches it. Plain output is
 * streamed; JSON is collected into one document. A path that turns out to
 * be a file (CAIRN_ENOTDIR at open or at the first entry) lists itself.
 */
int cli_cmd_ls(cli_ctx *x) {
  const char *path = x->npos ? x->pos[0] : "/";
  cairn_list *l = NULL;
  cairn_dirent ent;
  json_t *entries = NULL;
  int n = 0, rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_list_open(x->c, path, &l);
  if (rc == CAIRN_ENOTDIR) return ls_one(x, path);
  if (rc != 0) return cli_fail(x, rc, "ls %s", path);
  if (x->o->json) entries = json_array();
  while ((rc = cairn_list_next(l, &ent)) == 1) {
    n++;
    if (entries) {
      char *full = cli_join(path, ent.name);
      json_array_append_new(entries, cli_json_stat(full, &ent.st));
      free(full);
    } else {
      print_entry(x->o, ent.name, &ent.st);
    }
  }
  cairn_list_close(l);
  if (rc == CAIRN_ENOTDIR && n == 0) {
    json_decref(entries);
    return ls_one(x, path);
  }
  if (rc < 0) {
    json_decref(entries);
    return cli_fail(x, rc, "ls %s", path);
  }
  if (!entries) return CLI_EXIT_OK;
  json_t *doc = json_object();
  json_object_set_new(doc, "path", json_string(path));
  json_object_set_new(doc, "entries", entries);
  return cli_print_json(doc);
}

int cli_cmd_stat(cli_ctx *x) {
  const char *path = x->pos[0];
  cairn_stat st;
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_stat_path(x->c, path, &st);
  if (rc != 0) return cli_fail(x, rc, "stat %s", path);
  if (x->o->json) return cli_print_json(cli_json_stat(path, &st));
  char size[32], when[40];
  cli_fmt_size(st.size, size, sizeof size);
  cli_fmt_time(st.mtime_ms, when, sizeof when);
  printf("path:     %s\n", path);
  printf("type:     %s\n", st.type == CAIRN_TYPE_DIR ? "directory" : "file");
  printf("id:       %llu\n", (unsigned long long)st.id);
  if (st.type != CAIRN_TYPE_DIR) {
    printf("size:     %llu (%s)\n", (unsigned long long)st.size, size);
    printf("chunks:   %llu\n", (unsigned long long)st.chunks);
  }
  printf("goal:     %u\n", st.goal);
  printf("modified: %s\n", when);
  if (st.trashed_ms > 0) {
    cli_fmt_time(st.trashed_ms, when, sizeof when);
    printf("trashed:  %s\n", when);
  }
  return CLI_EXIT_OK;
}

int cli_cmd_mkdir(cli_ctx *x) {
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_mkdir(x->c, x->pos[0], x->o->parents);
  return rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "mkdir %s", x->pos[0]);
}

/* See cli.h. A stat failure other than "cannot reach the cluster" is left
 * for the operation itself to report. */
int cli_target_in_dir(cli_ctx *x, const char *src, const char *dst, char **out) {
  cairn_stat st;
  *out = NULL;
  int rc = cairn_stat_path(x->c, dst, &st);
  if (rc == 0 && st.type == CAIRN_TYPE_DIR) {
    char *base = cli_basename(src);
    if (!base[0]) {
      free(base);
      return CAIRN_EINVAL;
    }
    *out = cli_join(dst, base);
    free(base);
    return 0;
  }
  if (rc != 0 && rc != CAIRN_ENOENT && cli_exit_code(rc) == CLI_EXIT_UNREACH) return rc;
  *out = cmn_strdup(dst);
  return 0;
}

int cli_cmd_mv(cli_ctx *x) {
  const char *from = x->pos[0];
  char *to = NULL;
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cli_target_in_dir(x, from, x->pos[1], &to);
  if (rc != 0) return cli_fail(x, rc, "mv %s %s", from, x->pos[1]);
  rc = cairn_rename(x->c, from, to, x->o->overwrite);
  int code = rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "mv %s %s", from, to);
  if (rc == CAIRN_EEXIST) fprintf(stderr, "cairn: hint: --overwrite replaces it\n");
  free(to);
  return code;
}

/* Prints the trash path (or {"path", "trash_path"}) so scripts can undelete. */
int cli_cmd_rm(cli_ctx *x) {
  const char *path = x->pos[0];
  char trash[4096] = "";
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_remove(x->c, path, x->o->recursive, trash, sizeof trash);
  if (rc != 0) {
    int code = cli_fail(x, rc, "rm %s", path);
    if (rc == CAIRN_ENOTEMPTY)
      fprintf(stderr, "cairn: hint: -r removes a directory with its contents\n");
    return code;
  }
  if (x->o->json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, "trash_path", json_string(trash));
    return cli_print_json(doc);
  }
  printf("%s\n", trash);
  return CLI_EXIT_OK;
}

int cli_cmd_undelete(cli_ctx *x) {
  const char *trash = x->pos[0], *to = x->npos > 1 ? x->pos[1] : NULL;
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_undelete(x->c, trash, to);
  return rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "undelete %s", trash);
}

int cli_cmd_setgoal(cli_ctx *x) {
  uint32_t goal;
  if (cli_parse_goal(x->pos[1], &goal) != 0)
    return cli_usage(x->cmd, "goal '%s' is not a number from 1 to 9", x->pos[1]);
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_set_goal(x->c, x->pos[0], goal);
  return rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "setgoal %s %u", x->pos[0], goal);
}
