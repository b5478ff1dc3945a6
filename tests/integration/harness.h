/*
 * harness.h - helpers for integration tests that run real cairn daemons on
 * 127.0.0.1: temporary directories, starting processes with their output in
 * a log file, waiting (bounded) for a daemon's ready file, stopping by PID.
 *
 * Every process started here gets PR_SET_PDEATHSIG=SIGKILL, so a test
 * program that crashes does not leave daemons behind, and tests stop what
 * they started in their teardown even when an assertion failed.
 */
#ifndef CAIRN_IT_HARNESS_H
#define CAIRN_IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct it_proc {
  pid_t pid;      /* 0 when not running */
  char log[512];  /* where stdout and stderr go (appended) */
} it_proc;

/* A new directory under $TMPDIR (or /tmp); `out` gets its path. 0 or -1. */
int it_tmpdir(char *out, size_t n, const char *tag);

/* Remove a directory tree (best effort). */
void it_rm_rf(const char *dir);

/* Path of a cairn binary: $CAIRN_BIN_DIR/<name>. Static buffer per call site
 * is not used: the result is written to `out`. */
void it_bin(char *out, size_t n, const char *name);

/* Start argv[0] with argv, output appended to p->log. 0 or -1. */
int it_spawn(it_proc *p, char *const argv[]);

/* Fork and exec argv[0] with stdout/stderr appended to `log`, stdin from
 * /dev/null, signals unblocked, killed when the test dies, in `cwd` (NULL:
 * unchanged) and as uid/gid (uid (uid_t)-1: unchanged). The child's pid,
 * or -1 when fork failed. */
pid_t it_spawn_as(char *const argv[], const char *log, const char *cwd, uid_t uid, gid_t gid);

/* Run argv to completion (bounded by timeout_ms, then killed); returns its
 * exit status, or -1 when it could not run or was killed. Output to `log`. */
int it_run(char *const argv[], const char *log, int timeout_ms);

/* Wait until `path` exists and is non-empty, or the process died, or the
 * timeout passed. 0 when it exists, -1 otherwise. */
int it_wait_file(const char *path, const it_proc *p, int timeout_ms);

/* Send `sig`; wait up to timeout_ms for the process to exit, then SIGKILL.
 * Returns the wait status, or -1 if it was not running. */
int it_stop(it_proc *p, int sig, int timeout_ms);

/* Is the process still running? */
int it_alive(const it_proc *p);

/* Value of "key=value" line in a file, into out. 0 or -1. */
int it_read_kv(const char *file, const char *key, char *out, size_t n);

/* 1 if the file contains `needle`. */
int it_file_contains(const char *file, const char *needle);

/* Plain HTTP/1.1 GET against host:port, body into out (NUL-terminated,
 * truncated to n-1). Returns the status code, or -1. */
int it_http_get(const char *hostport, const char *path, const char *accept, char *out, size_t n);

#endif
