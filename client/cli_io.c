/*
 * cli_io.c - the commands of `cairn` that move file contents: put, get,
 * cat and append, with a progress meter on a terminal for put and get.
 *
 * Local files are handled so that a failure changes nothing: put streams
 * into the library's temporary-name-then-rename upload, and get writes to
 * a temporary file beside LOCAL that replaces it only when complete.
 */
#include "cli.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records are at most a quarter of a chunk; the library refuses what is
 * too big for the cluster's chunk size, this only bounds the memory. */
#define MAX_RECORD (64u << 20)

/* ---- progress ------------------------------------------------------------------------ */

static void on_progress(void *arg, uint64_t done, uint64_t total) {
  cli_progress_update(arg, done, total, cmn_mono_ms());
}

static int term_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* A meter on stderr when it is a terminal and --quiet is off. The label
 * ("put photo.jpg") is written into `label`. */
static void progress_start(cli_ctx *x, cli_progress *p, const char *verb, const char *path,
                           char *label, size_t n) {
  char *base = cli_basename(path);
  snprintf(label, n, "%s %s", verb, base[0] ? base : path);
  free(base);
  cli_progress_init(p, stderr, x->stderr_tty, term_width(), label, cmn_mono_ms());
}

/* ---- put --------------------------------------------------------------------------------- */

/* Open LOCAL for reading ("-": stdin). Directories are refused here, where
 * the message can say so, not as a read error half-way. */
static int open_local_in(const char *local, int *fd) {
  struct stat st;
  if (strcmp(local, "-") == 0) {
    *fd = STDIN_FILENO;
    return CLI_EXIT_OK;
  }
  *fd = open(local, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return cli_error("cannot open %s: %s", local, strerror(errno));
  if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(*fd);
    *fd = -1;
    return cli_error("%s is a directory (put copies one file)", local);
  }
  return CLI_EXIT_OK;
}

int cli_cmd_put(cli_ctx *x) {
  const char *local = x->pos[0], *remote = x->pos[1];
  char *target = NULL, label[128];
  uint64_t bytes = 0;
  cli_progress p;
  int rc, fd = -1, code = open_local_in(local, &fd);
  if (code != CLI_EXIT_OK) return code;
  if ((code = cli_connect(x)) != CLI_EXIT_OK) goto fail;
  rc = strcmp(local, "-") == 0 ? (target = cmn_strdup(remote), 0)
                                   : cli_target_in_dir(x, local, remote, &target);
  if (rc != 0) {
    code = cli_fail(x, rc, "put %s", remote);
    goto fail;
  }
  progress_start(x, &p, "put", target, label, sizeof label);
  rc = cairn_put_fd(x->c, fd, target, x->o->overwrite, on_progress, &p, &bytes);
  if (rc != 0) {
    cli_progress_clear(&p);
    code = cli_fail(x, rc, "put %s", target);
    if (rc == CAIRN_EEXIST) fprintf(stderr, "cairn: hint: --overwrite replaces it\n");
    if (rc == CAIRN_EISDIR && strcmp(local, "-") == 0)
      fprintf(stderr, "cairn: hint: name the file: put - %s/NAME\n", remote);
    goto fail;
  }
  cli_progress_finish(&p, bytes, bytes, cmn_mono_ms());
  if (x->o->json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(target));
    json_object_set_new(doc, "bytes", json_integer((json_int_t)bytes));
    code = cli_print_json(doc);
  }
fail:
  if (fd > STDERR_FILENO) close(fd);
  free(target);
  return code;
}

/* ---- get --------------------------------------------------------------------------------- */

/* Where `get` writes: the final path (a directory gets the remote name
 * appended) and whether it is written in place (stdout, devices, pipes:
 * anything that is not a regular file cannot be replaced by a rename). */
static char *local_target(const char *local, const char *remote, bool *in_place) {
  struct stat st;
  *in_place = false;
  if (stat(local, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      char *base = cli_basename(remote);
      char *p = base[0] ? cli_join(local, base) : NULL;
      free(base);
      return p;
    }
    if (!S_ISREG(st.st_mode)) *in_place = true;
  }
  return cmn_strdup(local);
}

/*
 * Copy REMOTE into LOCAL: to a temporary file in LOCAL's directory (mode as
 * a new file would get), renamed over LOCAL once every byte arrived, so
 * LOCAL is either the old file or the complete new one.
 */
int cli_cmd_get(cli_ctx *x) {
  const char *remote = x->pos[0], *local = x->pos[1];
  char *dest = NULL, *tmp = NULL, label[128];
  bool to_stdout = strcmp(local, "-") == 0, in_place = false;
  uint64_t bytes = 0;
  cli_progress p;
  int rc, fd = -1, code;
  if ((code = cli_connect(x)) != CLI_EXIT_OK) return code;
  if (to_stdout) {
    fd = STDOUT_FILENO;
    dest = cmn_strdup("-");
  } else {
    dest = local_target(local, remote, &in_place);
    if (!dest) {
      code = cli_error("get %s: cannot name a file after '%s'", remote, remote);
      goto fail;
    }
    if (in_place) {
      fd = open(dest, O_WRONLY | O_CLOEXEC);
    } else {
      tmp = cmn_sprintf("%s.cairn-XXXXXX", dest);
      fd = mkostemp(tmp, O_CLOEXEC);
      if (fd >= 0) {
        mode_t mask = umask(0);
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
      }
    }
    if (fd < 0) {
      code = cli_error("cannot write %s: %s", tmp ? tmp : dest, strerror(errno));
      free(tmp);
      tmp = NULL;
      goto fail;
    }
  }
  progress_start(x, &p, "get", remote, label, sizeof label);
  rc = cairn_get_fd(x->c, remote, fd, on_progress, &p, &bytes);
  if (rc != 0) {
    cli_progress_clear(&p);
    code = cli_fail(x, rc, "get %s", remote);
    goto fail;
  }
  if (fd > STDERR_FILENO) {
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
      code = cli_error("cannot write %s: %s", tmp ? tmp : dest, strerror(errno));
      goto fail;
    }
  }
  if (tmp && rename(tmp, dest) != 0) {
    code = cli_error("cannot rename %s to %s: %s", tmp, dest, strerror(errno));
    goto fail;
  }
  free(tmp);
  tmp = NULL;
  cli_progress_finish(&p, bytes, bytes, cmn_mono_ms());
  if (x->o->json && !to_stdout) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(remote));
    json_object_set_new(doc, "local", json_string(dest));
    json_object_set_new(doc, "bytes", json_integer((json_int_t)bytes));
    code = cli_print_json(doc);
  }
fail:
  if (fd > STDERR_FILENO) close(fd);
  if (tmp) unlink(tmp);
  free(tmp);
  free(dest);
  return code;
}

int cli_cmd_cat(cli_ctx *x) {
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_get_fd(x->c, x->pos[0], STDOUT_FILENO, NULL, NULL, NULL);
  return rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "cat %s", x->pos[0]);
}

/* ---- append ------------------------------------------------------------------------------ */

/* Read all of fd (at most MAX_RECORD bytes) into b. */
static int read_record(int fd, const char *name, cmn_buf *b) {
  for (;;) {
    cmn_buf_reserve(b, 64 * 1024);
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n == 0) return CLI_EXIT_OK;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cli_error("cannot read %s: %s", name, strerror(errno));
    b->len += (size_t)n;
    if (b->len > MAX_RECORD)
      return cli_error("%s: a record is at most %u MiB", name, MAX_RECORD >> 20);
  }
}

/* One record per invocation: the whole input, stored atomically; the
 * offset it landed at is printed. */
int cli_cmd_append(cli_ctx *x) {
  const char *remote = x->pos[0], *local = x->pos[1];
  cmn_buf rec = {0};
  cairn_file *f = NULL;
  uint64_t off = 0;
  int rc, fd = -1, code = open_local_in(local, &fd);
  if (code != CLI_EXIT_OK) return code;
  code = read_record(fd, strcmp(local, "-") == 0 ? "stdin" : local, &rec);
  if (code != CLI_EXIT_OK) goto fail;
  if ((code = cli_connect(x)) != CLI_EXIT_OK) goto fail;
  rc = cairn_open(x->c, remote, CAIRN_O_WRITE | (x->o->create ? CAIRN_O_CREATE : 0u), &f);
  if (rc == 0) rc = cairn_append(f, rec.data ? rec.data : "", rec.len, &off);
  if (rc != 0) {
    code = cli_fail(x, rc, "append %s", remote);
    goto fail;
  }
  if (x->o->json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(remote));
    json_object_set_new(doc, "offset", json_integer((json_int_t)off));
    json_object_set_new(doc, "length", json_integer((json_int_t)rec.len));
    code = cli_print_json(doc);
  } else {
    printf("%llu\n", (unsigned long long)off);
  }
fail:
  cairn_close(f);
  if (fd > STDERR_FILENO) close(fd);
  cmn_buf_free(&rec);
  return code;
}
