/*
 * cmn_daemon.h - what every cairn daemon's main() needs: signals, a lock on
 * its data directory, persistent identities, and start-up as a list of
 * module init functions with reverse-order shutdown (MooseFS RunTab style).
 *
 * Thread rules: cmn_daemon_block_signals must run in main() before any
 * thread is started (gRPC starts threads in grpc_init), so that every thread
 * inherits the mask and SIGINT/SIGTERM are only ever taken by
 * cmn_daemon_wait_signal.
 */
#ifndef CMN_DAEMON_H
#define CMN_DAEMON_H

#include <stddef.h>

/* Block SIGINT, SIGTERM and SIGHUP in the calling thread (inherited by threads
 * created later) and ignore SIGPIPE. */
void cmn_daemon_block_signals(void);

/* Wait for SIGINT, SIGTERM or SIGHUP; returns the signal number. */
int cmn_daemon_wait_signal(void);

/* Take an exclusive lock on `<dir>/LOCK` so two daemons never share a data
 * directory. Returns the lock's fd (>= 0, keep it open for the process's
 * life), CAIRN_EBUSY when another process holds it, or an I/O error code. */
int cmn_daemon_lock_dir(const char *dir);

/* A random (version 4) UUID as 36 characters plus NUL. 0 or CAIRN_EIO. */
int cmn_uuid_v4(char out[37]);

/* 1 if `s` is a UUID in canonical 8-4-4-4-12 lower/upper hex form. */
int cmn_uuid_valid(const char *s);

/*
 * Start-up table: modules start in order; when one fails, those already
 * started stop in reverse order. cmn_daemon_stop_all stops all in reverse
 * order. `ctx` is the daemon's context, passed to every function.
 */
typedef struct cmn_daemon_module {
  const char *name;
  int (*start)(void *ctx);  /* 0 or a cairn error code */
  void (*stop)(void *ctx);  /* may be NULL */
} cmn_daemon_module;

/* Start modules[0..n). On failure returns the code, having stopped the
 * started ones; on success returns 0. */
int cmn_daemon_start_all(const cmn_daemon_module *modules, size_t n, void *ctx);
void cmn_daemon_stop_all(const cmn_daemon_module *modules, size_t n, void *ctx);

#endif /* CMN_DAEMON_H */
