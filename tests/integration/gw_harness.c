/*
 * gw_harness.c - the processes of a gateway test: a private PostgreSQL
 * (initdb + postgres run directly as children, as the `postgres` user when
 * the tests run as root) and the gateway environment (cluster, PostgreSQL,
 * certificate, keys, cairn-gateway). The client side (HTTP, bodies, RSS) is
 * in gw_http.c.
 */
#include "gw_harness.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_PORT "5432"
#define PG_START_TIMEOUT_MS 30000
#define PG_STOP_TIMEOUT_MS 15000
#define INITDB_TIMEOUT_MS 120000
#define GW_READY_TIMEOUT_MS 30000
#define GW_STOP_TIMEOUT_MS 10000
/* sun_path holds 108 bytes; "/.s.PGSQL.5432" and the NUL need 15. */
#define SOCK_PATH_MAX 107

/* ---- processes ------------------------------------------------------------ */

/* Who a child runs as: unchanged (NULL), or the server user of `pg`. */
static const gw_pg *as_user(const gw_pg *pg) { return pg->as_postgres ? pg : NULL; }

/*
 * Fork and exec argv[0] with stdout and stderr appended to `log`, stdin
 * from /dev/null, in directory `cwd` (NULL: unchanged), as the server user
 * of `cred` (NULL: as we are). PR_SET_PDEATHSIG is set after the user
 * change (which would clear it), so a test program that dies takes the
 * child with it. Returns the PID, or -1.
 */
static pid_t spawn_as(char *const argv[], const char *log, const char *cwd, const gw_pg *cred) {
  return it_spawn_as(argv, log, cwd, cred ? cred->uid : (uid_t)-1, cred ? cred->gid : (gid_t)-1);
}

/* Run argv to completion within timeout_ms (then SIGKILL). Exit status, or
 * -1 when it could not run, was killed or timed out. */
static int run_as(char *const argv[], const char *log, const gw_pg *cred, int timeout_ms) {
  it_proc p = {0};
  p.pid = spawn_as(argv, log, "/", cred);
  if (p.pid < 0) return -1;
  int64_t end = cmn_mono_ms() + timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(p.pid, &st, WNOHANG);
    if (r == p.pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r < 0 || cmn_mono_ms() >= end) break;
    usleep(10000);
  }
  fprintf(stderr, "%s did not finish within %d ms\n", argv[0], timeout_ms);
  it_stop(&p, SIGKILL, 5000);
  return -1;
}

/* The last `lines` lines of a log on stderr, to explain a failure. */
static void print_tail(const char *path, int lines) {
  char *text = NULL;
  size_t len = 0;
  if (cmn_read_file(path, 16u << 20, &text, &len) != 0) return;
  const char *p = text + len;
  for (int n = 0; p > text && n <= lines;) {
    p--;
    if (*p == '\n') n++;
  }
  fprintf(stderr, "--- last lines of %s:\n%s\n---\n", path, p);
  free(text);
}

int gw_find_exe(const char *name, char *out, size_t n) {
  const char *path = getenv("PATH");
  char *copy = cmn_strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  int rc = CAIRN_ENOENT;
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(out, n, "%s/%s", d, name);
    if (access(out, X_OK) == 0) {
      rc = 0;
      break;
    }
  }
  free(copy);
  return rc;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* The server binaries: $PG_BINDIR, else the highest version under
 * /usr/lib/postgresql, else `pg_config --bindir`. 0 or CAIRN_ENOENT. */
static int pg_find_bindir(char *out, size_t n) {
  const char *env = getenv("PG_BINDIR");
  if (env && *env) {
    snprintf(out, n, "%s", env);
    return 0;
  }
  long best = -1;
  DIR *d = opendir("/usr/lib/postgresql");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char *end;
    long v = strtol(e->d_name, &end, 10);
    char postgres[512];
    snprintf(postgres, sizeof postgres, "/usr/lib/postgresql/%s/bin/postgres", e->d_name);
    if (*end == '\0' && end != e->d_name && v > best && access(postgres, X_OK) == 0) {
      best = v;
      snprintf(out, n, "/usr/lib/postgresql/%ld/bin", v);
    }
  }
  if (d) closedir(d);
  if (best >= 0) return 0;
  FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
  if (!f) return CAIRN_ENOENT;
  int rc = fgets(out, (int)n, f) ? 0 : CAIRN_ENOENT;
  pclose(f);
  out[strcspn(out, "\n")] = '\0';
  return rc == 0 && *out ? 0 : CAIRN_ENOENT;
}

/* Can `uid`/`gid` search (traverse) a directory with this stat? */
static bool can_traverse(const struct stat *st, uid_t uid, gid_t gid) {
  if (st->st_uid == uid) return (st->st_mode & S_IXUSR) != 0;
  if (st->st_gid == gid) return (st->st_mode & S_IXGRP) != 0;
  return (st->st_mode & S_IXOTH) != 0;
}

/* Check that the server user can reach `dir` through every directory above
 * it; only the caller's own directories (made by the test) get o+x, and
 * nothing above them is changed. 0 or CAIRN_EPERM. */
static int pg_open_path(const gw_pg *pg, const char *dir, const char *const *ours, size_t nours) {
  char path[sizeof pg->dir];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1;; p++) {
    bool last = *p == '\0';
    if (*p != '/' && !last) continue;
    *p = '\0';
    struct stat st;
    if (stat(path, &st) != 0) return CAIRN_EPERM;
    if (!can_traverse(&st, pg->uid, pg->gid)) {
      bool mine = false;
      for (size_t i = 0; i < nours; i++) mine |= strcmp(ours[i], path) == 0;
      if (!mine || chmod(path, (st.st_mode & 07777) | S_IXOTH) != 0) {
        fprintf(stderr,
                "gw_pg: the postgres user cannot enter %s; set TMPDIR to a directory it can "
                "reach\n",
                path);
        return CAIRN_EPERM;
      }
    }
    if (last) break;
    *p = '/';
  }
  return 0;
}

/* The harness's own connection string to database `db`: the published
 * conninfo's socket, with bounded connect and statement times. */
static char *pg_conn_for(const gw_pg *pg, const char *db) {
  return cmn_sprintf("host=%s/pgsock port=" PG_PORT " dbname=%s user=cairn connect_timeout=10 "
                     "options='-c statement_timeout=30000'",
                     pg->dir, db);
}

/*
 * Start the postmaster as a direct child and wait until it accepts
 * connections. A server that exits at once is started again a few times
 * within the bound: after a crash, the old server's processes may still
 * hold its shared memory for a moment.
 */
static int pg_spawn_server(gw_pg *pg) {
  char postgres[512], pgdata[512], sockdir[512], sockopt[600], log[512];
  snprintf(postgres, sizeof postgres, "%s/postgres", pg->bindir);
  snprintf(pgdata, sizeof pgdata, "%s/pgdata", pg->dir);
  snprintf(sockdir, sizeof sockdir, "%s/pgsock", pg->dir);
  snprintf(sockopt, sizeof sockopt, "unix_socket_directories=%s", sockdir);
  snprintf(log, sizeof log, "%s/postgres.log", pg->dir);
  char *argv[] = {postgres, "-D", pgdata, "-c", "listen_addresses=", "-c", sockopt,
                  "-c", "port=" PG_PORT, "-c", "fsync=off", "-c", "full_page_writes=off",
                  "-c", "logging_collector=off", "-c", "shared_buffers=32MB",
                  /* no parallel workers: their shared memory lives in /dev/shm,
                   * which containers keep small */
                  "-c", "max_parallel_workers_per_gather=0", NULL};
  char *conn = pg_conn_for(pg, "postgres");
  int64_t end = cmn_mono_ms() + PG_START_TIMEOUT_MS;
  int rc = CAIRN_ETIMEDOUT;
  for (int attempt = 0; attempt < 10 && cmn_mono_ms() < end; attempt++) {
    snprintf(pg->proc.log, sizeof pg->proc.log, "%s", log);
    pg->proc.pid = spawn_as(argv, log, pg->dir, as_user(pg));
    if (pg->proc.pid < 0) {
      pg->proc.pid = 0;
      rc = CAIRN_EIO;
      break;
    }
    while (cmn_mono_ms() < end && it_alive(&pg->proc)) {
      if (PQping(conn) == PQPING_OK) {
        free(conn);
        return 0;
      }
      usleep(20000);
    }
    if (it_alive(&pg->proc)) break; /* timed out while running */
    pg->proc.pid = 0;
    rc = CAIRN_EIO;
    usleep(200000);
  }
  free(conn);
  fprintf(stderr, "gw_pg: PostgreSQL did not start in %s: %s\n", pg->dir, cairn_strerror(rc));
  print_tail(log, 15);
  if (pg->proc.pid > 0) it_stop(&pg->proc, SIGKILL, 5000);
  return rc;
}

/* Make the database cairn (owned by cairn) unless it exists. */
static int pg_ensure_db(gw_pg *pg) {
  char *conn = pg_conn_for(pg, "postgres");
  PGconn *c = PQconnectdb(conn);
  free(conn);
  int rc = CAIRN_EIO;
  PGresult *r = NULL;
  if (PQstatus(c) != CONNECTION_OK) goto fail;
  r = PQexec(c, "SELECT 1 FROM pg_database WHERE datname = 'cairn'");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) goto fail;
  if (PQntuples(r) == 0) {
    PQclear(r);
    r = PQexec(c, "CREATE DATABASE cairn OWNER cairn");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) goto fail;
  }
  rc = 0;
fail:
  if (rc != 0) fprintf(stderr, "gw_pg: cannot create the database: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return rc;
}

/* Directory layout, the server user and the paths it must reach. */
static int pg_prepare(gw_pg *pg, const char *parent) {
  if (parent) {
    snprintf(pg->dir, sizeof pg->dir, "%s/pg", parent);
    if (mkdir(pg->dir, 0700) != 0 && errno != EEXIST) return CAIRN_EIO;
  } else {
    if (it_tmpdir(pg->dir, sizeof pg->dir, "pg") != 0) return CAIRN_EIO;
    pg->own_dir = true;
  }
  if (strlen(pg->dir) + strlen("/pgsock") + 15 > SOCK_PATH_MAX || strpbrk(pg->dir, " '\\,=\t\n")) {
    fprintf(stderr, "gw_pg: %s is too long for a socket path or has unusable characters\n",
            pg->dir);
    return CAIRN_EINVAL;
  }
  snprintf(pg->conninfo, sizeof pg->conninfo,
           "host=%s/pgsock port=" PG_PORT " dbname=cairn user=cairn", pg->dir);
  if (pg_find_bindir(pg->bindir, sizeof pg->bindir) != 0) {
    fprintf(stderr, "gw_pg: no PostgreSQL server binaries (install postgresql or set PG_BINDIR)\n");
    return CAIRN_ENOENT;
  }
  pg->uid = getuid();
  pg->gid = getgid();
  if (geteuid() != 0) return 0;
  struct passwd *pw = getpwnam("postgres");
  if (!pw) {
    fprintf(stderr, "gw_pg: running as root needs the 'postgres' user\n");
    return CAIRN_ENOENT;
  }
  pg->as_postgres = true;
  pg->uid = pw->pw_uid;
  pg->gid = pw->pw_gid;
  const char *ours[2] = {pg->dir, parent ? parent : pg->dir};
  return pg_open_path(pg, pg->dir, ours, 2);
}

/* A directory owned by the server user, mode 0700. */
static int pg_mkdir_owned(const gw_pg *pg, const char *path) {
  if (mkdir(path, 0700) != 0 && errno != EEXIST) return CAIRN_EIO;
  if (pg->as_postgres && chown(path, pg->uid, pg->gid) != 0) return CAIRN_EIO;
  return 0;
}

int gw_pg_start(gw_pg *pg, const char *parent) {
  memset(pg, 0, sizeof *pg);
  int rc = pg_prepare(pg, parent);
  if (rc != 0) goto fail;
  char pgdata[512], version[600], sockdir[512], log[512], initdb[512];
  snprintf(pgdata, sizeof pgdata, "%s/pgdata", pg->dir);
  snprintf(version, sizeof version, "%s/PG_VERSION", pgdata);
  snprintf(sockdir, sizeof sockdir, "%s/pgsock", pg->dir);
  if (access(version, F_OK) != 0) {
    rc = pg_mkdir_owned(pg, pgdata);
    if (rc != 0) goto fail;
    snprintf(log, sizeof log, "%s/initdb.log", pg->dir);
    snprintf(initdb, sizeof initdb, "%s/initdb", pg->bindir);
    char *argv[] = {initdb, "-D", pgdata, "--no-sync", "-A", "trust", "-U", "cairn",
                    "-E", "UTF8", "--locale=C", NULL};
    if (run_as(argv, log, as_user(pg), INITDB_TIMEOUT_MS) != 0) {
      fprintf(stderr, "gw_pg: initdb failed\n");
      print_tail(log, 15);
      rc = CAIRN_EIO;
      goto fail;
    }
  }
  rc = pg_mkdir_owned(pg, sockdir);
  if (rc != 0) goto fail;
  rc = pg_spawn_server(pg);
  if (rc != 0) goto fail;
  rc = pg_ensure_db(pg);
  if (rc != 0) goto fail;
  return 0;
fail:
  gw_pg_stop(pg);
  return rc;
}

int gw_pg_restart(gw_pg *pg) {
  if (pg->proc.pid > 0) return 0;
  return pg_spawn_server(pg);
}

void gw_pg_kill(gw_pg *pg) {
  if (pg->proc.pid > 0) it_stop(&pg->proc, SIGKILL, 5000);
}

void gw_pg_stop(gw_pg *pg) {
  /* SIGINT is PostgreSQL's fast shutdown: clients are cut off at once. */
  if (pg->proc.pid > 0) it_stop(&pg->proc, SIGINT, PG_STOP_TIMEOUT_MS);
  if (pg->own_dir && pg->dir[0]) {
    if (getenv("CAIRN_KEEP_TEST_DIRS")) fprintf(stderr, "kept %s\n", pg->dir);
    else it_rm_rf(pg->dir);
  }
  pg->own_dir = false;
}

int gw_pg_query(const gw_pg *pg, const char *sql, char *out, size_t n) {
  if (out && n) out[0] = '\0';
  char *conn = pg_conn_for(pg, "cairn");
  PGconn *c = PQconnectdb(conn);
  free(conn);
  int rc = CAIRN_EIO;
  PGresult *r = NULL;
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "gw_pg_query: %s", PQerrorMessage(c));
    goto fail;
  }
  r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK) {
    rc = 0;
  } else if (st == PGRES_TUPLES_OK) {
    rc = PQntuples(r);
    if (rc > 0 && PQnfields(r) > 0 && out && n) snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
  } else {
    fprintf(stderr, "gw_pg_query: %s: %s", sql, PQerrorMessage(c));
    rc = CAIRN_EINVAL;
  }
fail:
  PQclear(r);
  PQfinish(c);
  return rc;
}

/* ---- the gateway environment ------------------------------------------------ */

/* A self-signed certificate for 127.0.0.1 and localhost, by `openssl req`. */
static int make_cert(gw_env *env) {
  char openssl[512], log[400];
  if (gw_find_exe("openssl", openssl, sizeof openssl) != 0) {
    fprintf(stderr, "gw_env: openssl not found in PATH\n");
    return CAIRN_ENOENT;
  }
  snprintf(log, sizeof log, "%s/openssl.log", env->dir);
  char *argv[] = {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825",
                  "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-keyout", env->tls_key, "-out", env->cert, NULL};
  if (run_as(argv, log, NULL, 30000) != 0) {
    print_tail(log, 10);
    return CAIRN_EIO;
  }
  return 0;
}

/* 32 random bytes, mode 0600: the gateway's token and link key. */
static int make_key_file(const char *path) {
  uint8_t key[32];
  int rc = cmn_random_bytes(key, sizeof key);
  if (rc != 0) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return CAIRN_EIO;
  rc = cmn_write_all(fd, key, sizeof key);
  if (close(fd) != 0 && rc == 0) rc = CAIRN_EIO;
  return rc;
}

int gw_gateway_start(gw_env *env) {
  if (env->gw.pid > 0) return 0;
  char bin[512], listen[64];
  it_bin(bin, sizeof bin, "cairn-gateway");
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "gw_env: no %s\n", bin);
    return CAIRN_ENOENT;
  }
  snprintf(listen, sizeof listen, "127.0.0.1:%u", env->port);
  char *argv[16 + 2 * 12 + GW_MAX_FLAGS] = {
      bin, "--listen", listen, "--tls-cert", env->cert, "--tls-key", env->tls_key,
      "--master", env->cluster.master_rpc, "--secret-file", env->cluster.secret_file,
      "--db", env->pg.conninfo, "--key-file", env->key_file, "--ready-file", env->ready,
      "--data-dir-prefix", "/gateway", "--argon2-memory", "64KiB", "--argon2-time", "1"};
  size_t n = 0;
  while (argv[n]) n++;
  for (size_t i = 0; env->flags[i]; i++) argv[n++] = env->flags[i];
  argv[n] = NULL;
  unlink(env->ready);
  snprintf(env->gw.log, sizeof env->gw.log, "%s/gateway.log", env->cluster.dir);
  if (it_spawn(&env->gw, argv) != 0) return CAIRN_EIO;
  char port[16];
  if (it_wait_file(env->ready, &env->gw, GW_READY_TIMEOUT_MS) != 0 ||
      it_read_kv(env->ready, "url", env->url, sizeof env->url) != 0) {
    fprintf(stderr, "gw_env: cairn-gateway did not become ready\n");
    print_tail(env->gw.log, 20);
    if (env->gw.pid > 0) it_stop(&env->gw, SIGKILL, 5000);
    return CAIRN_EIO;
  }
  const char *colon = strrchr(env->url, ':');
  snprintf(port, sizeof port, "%s", colon ? colon + 1 : "0");
  env->port = (unsigned)strtoul(port, NULL, 10);
  return 0;
}

int gw_gateway_stop(gw_env *env, int sig) {
  if (env->gw.pid <= 0) return -1;
  return it_stop(&env->gw, sig, GW_STOP_TIMEOUT_MS);
}

int gw_env_start(gw_env *env, const char *tag, const char *const *extra_flags) {
  memset(env, 0, sizeof *env);
  size_t nflags = 0;
  while (extra_flags && extra_flags[nflags]) nflags++;
  if (nflags > GW_MAX_FLAGS) {
    fprintf(stderr, "gw_env: more than %d extra gateway flags\n", GW_MAX_FLAGS);
    return CAIRN_EINVAL;
  }
  for (size_t i = 0; i < nflags; i++) env->flags[i] = cmn_strdup(extra_flags[i]);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return CAIRN_EIO;
  env->curl_ready = true;
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-gateway");
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "gw_env: no %s\n", bin);
    return CAIRN_ENOENT;
  }
  if (it_cluster_start(&env->cluster, tag, 3, 3) != 0) {
    fprintf(stderr, "gw_env: the cluster did not start (logs in %s)\n", env->cluster.dir);
    return CAIRN_EIO;
  }
  snprintf(env->dir, sizeof env->dir, "%s/gw", env->cluster.dir);
  snprintf(env->cert, sizeof env->cert, "%s/tls.crt", env->dir);
  snprintf(env->tls_key, sizeof env->tls_key, "%s/tls.key", env->dir);
  snprintf(env->key_file, sizeof env->key_file, "%s/key", env->dir);
  snprintf(env->ready, sizeof env->ready, "%s/gateway.ready", env->dir);
  if (mkdir(env->dir, 0700) != 0) return CAIRN_EIO;
  int rc = gw_pg_start(&env->pg, env->cluster.dir);
  if (rc == 0) rc = make_cert(env);
  if (rc == 0) rc = make_key_file(env->key_file);
  if (rc == 0) rc = gw_gateway_start(env);
  return rc;
}

void gw_env_stop(gw_env *env) {
  /* The gateway first: it uses everything else. */
  if (env->gw.pid > 0) it_stop(&env->gw, SIGTERM, GW_STOP_TIMEOUT_MS);
  gw_pg_stop(&env->pg);
  it_cluster_stop(&env->cluster);
  for (size_t i = 0; i < GW_MAX_FLAGS && env->flags[i]; i++) free(env->flags[i]);
  if (env->curl_ready) curl_global_cleanup();
  memset(env, 0, sizeof *env);
}
