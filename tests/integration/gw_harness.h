/*
 * gw_harness.h - what integration tests of cairn-gateway need on top of
 * harness.h and cluster.h: a private PostgreSQL (gw_pg), a whole gateway
 * environment (gw_env: a cluster of a master and 3 chunkservers, PostgreSQL
 * and a cairn-gateway process with a self-signed certificate), an HTTPS
 * client on libcurl (in memory, or streaming for bodies of any size), JSON
 * helpers, deterministic large bodies (gw_gen) and the gateway's peak RSS.
 *
 * Everything listens on 127.0.0.1 (PostgreSQL only on a Unix socket) and
 * lives in a temporary directory removed at stop unless CAIRN_KEEP_TEST_DIRS
 * is set. Every server is a direct child of the test program, started with
 * PR_SET_PDEATHSIG=SIGKILL and stopped by PID in gw_pg_stop / gw_env_stop,
 * which a test calls from its teardown so they also run when it failed.
 * Every wait is bounded in time.
 *
 * Errors: functions return 0 (or a count) on success and a negative
 * CAIRN_E* code on failure, with the reason on stderr (and the daemons'
 * logs under the test directory).
 *
 * Threads: gw_pg_* and gw_env_* (start, stop, restart, kill) are for the
 * test's main thread. The HTTP functions (gw_http_*, gw_login) may be called
 * from any thread concurrently once gw_env_start returned: each request uses
 * its own connection, and the env is only read.
 *
 * PostgreSQL refuses to run as root. A test run as root runs initdb and
 * postgres as the `postgres` user (Debian's postgresql package creates it):
 * the directories the harness makes get o+x (search only) so that user can
 * reach its data directory; directories above them are never changed, and
 * when postgres cannot traverse one of them gw_pg_start fails and says
 * which (set TMPDIR to a directory it can reach).
 */
#ifndef CAIRN_IT_GW_HARNESS_H
#define CAIRN_IT_GW_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cluster.h"
#include "harness.h"

/* ---- PostgreSQL ---------------------------------------------------------- */

typedef struct gw_pg {
  char dir[300];      /* holds pgdata/, pgsock/, postgres.log, initdb.log */
  char conninfo[400]; /* "host=<dir>/pgsock port=5432 dbname=cairn user=cairn" */
  char bindir[256];   /* the PostgreSQL server binaries used */
  it_proc proc;       /* the postmaster (a direct child); pid 0 when stopped */
  bool own_dir;       /* dir was made by gw_pg_start and is removed by gw_pg_stop */
  bool as_postgres;   /* running as root: the server runs as user postgres */
  uid_t uid;          /* the user the server runs as */
  gid_t gid;
} gw_pg;

/* Start a private PostgreSQL with fsync off: `parent`/pg/pgdata (initdb on
 * first use: superuser cairn, trust auth, UTF8, locale C), listening only
 * on the Unix socket in `parent`/pg/pgsock, port 5432, log in
 * `parent`/pg/postgres.log; create the database cairn; wait (bounded) until
 * it answers. `parent` must be a directory the test made (it gets o+x when
 * running as root); NULL makes a new temporary directory that gw_pg_stop
 * removes. On failure everything started is stopped again.
 * 0, CAIRN_EINVAL (path too long or unusable characters), CAIRN_ENOENT (no
 * PostgreSQL binaries, no postgres user), CAIRN_EPERM (postgres cannot reach
 * the directory), CAIRN_EIO or CAIRN_ETIMEDOUT. */
int gw_pg_start(gw_pg *pg, const char *parent);

/* Start the server again on the same directory after gw_pg_kill (bounded
 * retries while the old server's processes go away). 0 or as above. */
int gw_pg_restart(gw_pg *pg);

/* SIGKILL the postmaster (a crash); the directory is kept. */
void gw_pg_kill(gw_pg *pg);

/* Fast shutdown (SIGINT, then SIGKILL after 15 s), then remove the
 * directory if gw_pg_start made it (unless CAIRN_KEEP_TEST_DIRS). Safe on a
 * zeroed or already stopped gw_pg. */
void gw_pg_stop(gw_pg *pg);

/* Run one SQL statement in the database cairn (a connection of its own,
 * 10 s connect and 30 s statement timeouts). `out` (may be NULL) gets the
 * first column of the first row as text ("" when there is none or it is
 * NULL), truncated to n-1 bytes. Returns the number of rows (0 for
 * statements without rows), CAIRN_EIO when the server cannot be reached or
 * CAIRN_EINVAL when the statement failed (message on stderr). */
int gw_pg_query(const gw_pg *pg, const char *sql, char *out, size_t n);

/* ---- The gateway environment --------------------------------------------- */

#define GW_MAX_FLAGS 32

typedef struct gw_env {
  it_cluster cluster;  /* master + 3 chunkservers; cluster.dir holds everything */
  gw_pg pg;            /* in cluster.dir/pg */
  it_proc gw;          /* cairn-gateway; log in cluster.dir/gateway.log */
  char dir[320];       /* cluster.dir/gw: certificate, keys, ready file */
  char cert[400];      /* tls.crt: also the CA the HTTP client trusts */
  char tls_key[400];   /* tls.key */
  char key_file[400];  /* 32 random bytes for tokens and links */
  char ready[400];     /* the gateway's ready file */
  char url[128];       /* "https://127.0.0.1:PORT" once started */
  unsigned port;       /* kept across gw_gateway_start calls */
  char *flags[GW_MAX_FLAGS + 1]; /* extra gateway flags (copies), NULL-terminated */
  bool curl_ready;     /* curl_global_init was called by gw_env_start */
} gw_env;

/* Start a cluster (3 chunkservers in 3 zones), PostgreSQL and cairn-gateway
 * ($CAIRN_BIN_DIR/cairn-gateway) with a new self-signed certificate for
 * 127.0.0.1/localhost (made with `openssl req`), fast password hashing
 * (--argon2-memory 64KiB --argon2-time 1) and `extra_flags` (NULL or a
 * NULL-terminated list, e.g. {"--max-upload", "1M", NULL}) appended; wait
 * (bounded) for its ready file. `tag` names the temporary directory. On
 * failure the caller still calls gw_env_stop (which stops what did start).
 * 0, CAIRN_EINVAL (too many flags), CAIRN_ENOENT (no cairn-gateway or
 * openssl), or an error of the part that failed (see the logs). */
int gw_env_start(gw_env *env, const char *tag, const char *const *extra_flags);

/* (Re)start the gateway with the same flags, on the port it had before
 * (a free one the first time), against the master's current address.
 * 0, CAIRN_EIO (did not start or exited: see cluster.dir/gateway.log). */
int gw_gateway_start(gw_env *env);

/* Send `sig` to the gateway and wait up to 10 s (then SIGKILL). Returns its
 * wait status (0 for a clean exit), or -1 when it was not running. */
int gw_gateway_stop(gw_env *env, int sig);

/* Stop the gateway, PostgreSQL and the cluster, free everything and remove
 * the directory (unless CAIRN_KEEP_TEST_DIRS). Safe on a zeroed env and
 * after a failed gw_env_start. */
void gw_env_stop(gw_env *env);

/* ---- HTTP client ---------------------------------------------------------- */

typedef struct gw_http_resp {
  long status;      /* HTTP status of the final response; 0 when none */
  char *body;       /* malloc'd, NUL-terminated; "" when streamed to a callback */
  size_t body_len;  /* bytes of the body received (also when streamed) */
  char *headers;    /* raw header block of the final response, NUL-terminated */
  char hval[1024];  /* where gw_http_header puts the value it returns */
} gw_http_resp;

/* In-memory request bodies and responses are capped (larger: stream). */
#define GW_HTTP_MAX_BODY (256u << 20)
#define GW_HTTP_TIMEOUT_MS 30000

/* One HTTP/1.1 request to env->url + `path` (or to `path` itself when it
 * starts with http:// or https://), trusting env->cert as CA; only
 * env->url and env->cert are read. `headers`: NULL or a NULL-terminated list
 * of "Name: value" (a body without a Content-Type header is sent without
 * one). `body`/`len`: the request body (NULL and 0: none; POST, PUT and
 * PATCH then send an empty body). 30 s timeout. *out is filled in (free
 * with gw_http_resp_free, also after an error). 0 when a response arrived
 * (whatever its status), CAIRN_ETIMEDOUT, CAIRN_ETOOBIG (response body over
 * GW_HTTP_MAX_BODY) or CAIRN_EIO. */
int gw_http_request(const gw_env *env, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t len,
                    gw_http_resp *out);

/* Streaming callbacks. A reader fills `buf` with up to `n` bytes and returns
 * how many (0: end of body, GW_READ_ABORT: abort the request). A writer
 * consumes `n` bytes of the response body and returns 0, or non-zero to
 * abort. Both are called on the calling thread. */
#define GW_READ_ABORT ((size_t)-1)
typedef size_t (*gw_read_fn)(void *arg, char *buf, size_t n);
typedef int (*gw_write_fn)(void *arg, const char *buf, size_t n);

typedef struct gw_stream {
  gw_read_fn read;   /* NULL: no request body */
  void *read_arg;
  int64_t body_len;  /* size of the request body; -1: unknown (chunked) */
  gw_write_fn write; /* NULL: the response body is kept in out->body */
  void *write_arg;
  int timeout_ms;    /* whole request; 0: 600 s */
} gw_stream;

/* gw_http_request with a streamed request and/or response body, so a test
 * moves gigabytes in constant memory. Besides the total timeout, a transfer
 * slower than 1 KiB/s for 30 s is aborted. 0, CAIRN_ETIMEDOUT,
 * CAIRN_ECANCELED (a callback aborted), CAIRN_ETOOBIG or CAIRN_EIO. */
int gw_http_stream(const gw_env *env, const char *method, const char *path,
                   const char *const *headers, const gw_stream *s, gw_http_resp *out);

/* A JSON request: Content-Type application/json, and "Authorization:
 * Bearer <token>" when token is not NULL; `json` may be NULL (no body).
 * As gw_http_request. */
int gw_http_json(const gw_env *env, const char *method, const char *path, const char *token,
                 const char *json, gw_http_resp *out);

/* Value of response header `name` (case-insensitive, trimmed), in r->hval
 * (valid until the next call on r), or NULL when absent. */
const char *gw_http_header(gw_http_resp *r, const char *name);

/* Free the body and headers; the struct is zeroed. NULL is fine. */
void gw_http_resp_free(gw_http_resp *r);

/* The body parsed as JSON (caller json_decref's), or NULL when it is not. */
json_t *gw_json(const gw_http_resp *r);

/* "Authorization: Bearer <token>" into out. */
void gw_auth_header(char *out, size_t n, const char *token);

/* Register `user` (an existing one is fine) and log in; the access token
 * goes to `token`. 0, CAIRN_EAUTH (wrong password), CAIRN_EPROTO (an
 * unexpected status or body, printed), CAIRN_EINVAL (token does not fit)
 * or a transport error as gw_http_request. */
int gw_login(const gw_env *env, const char *user, const char *pass, char *token, size_t n);

/* ---- Large deterministic bodies ------------------------------------------- */

/* A body of `len` bytes that depends only on (seed, offset), produced or
 * checked piece by piece, with its SHA-256. Use gw_gen_read as a gw_read_fn
 * for uploads and gw_gen_check as a gw_write_fn for downloads. */
typedef struct gw_gen {
  uint64_t seed;
  uint64_t len;
  uint64_t pos;       /* bytes produced or checked so far */
  uint64_t bad_at;    /* first offset that differed (valid when mismatch) */
  bool mismatch;      /* a checked byte differed, or more than len arrived */
  void *sha;          /* EVP_MD_CTX of the bytes so far */
} gw_gen;

void gw_gen_init(gw_gen *g, uint64_t seed, uint64_t len);
size_t gw_gen_read(void *g, char *buf, size_t n);
int gw_gen_check(void *g, const char *buf, size_t n);
/* Fill buf with bytes [off, off+n) of the body (without advancing). */
void gw_gen_fill(const gw_gen *g, uint64_t off, void *buf, size_t n);
/* Lower-case hex SHA-256 of the bytes so far (65 bytes with NUL). */
void gw_gen_sha256(const gw_gen *g, char out[65]);
/* 1 when exactly `len` bytes went through and all matched. */
int gw_gen_complete(const gw_gen *g);
void gw_gen_free(gw_gen *g);

/* ---- Odds and ends --------------------------------------------------------- */

/* Absolute path of executable `name` found in $PATH, into out.
 * 0 or CAIRN_ENOENT. */
int gw_find_exe(const char *name, char *out, size_t n);

/* ---- Memory --------------------------------------------------------------- */

/* 1 in a sanitizer build (the gateway is built like the tests). ASan's
 * shadow memory and quarantine inflate every RSS figure, so memory bounds
 * are meaningful only when this is 0. */
#if defined(__SANITIZE_ADDRESS__)
#define GW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_SANITIZED 1
#endif
#endif
#ifndef GW_SANITIZED
#define GW_SANITIZED 0
#endif

/* Peak resident set size (VmHWM of /proc/<pid>/status) in KiB. 0, or
 * CAIRN_ENOENT when the process is gone. */
int gw_peak_rss_kib(pid_t pid, int64_t *kib);

/* Reset the peak to the current RSS (writes 5 to /proc/<pid>/clear_refs),
 * so a test can measure the peak of one phase. 0 or CAIRN_EIO. */
int gw_reset_peak_rss(pid_t pid);

#endif
