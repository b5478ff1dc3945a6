/*
 * gw_db.h - the gateway's PostgreSQL side: a bounded pool of libpq
 * connections, one query helper that turns SQLSTATEs into cairn codes, and
 * the schema migrations compiled into the binary.
 *
 *   gw_db *db;
 *   gw_db_open(conninfo, 8, 5000, &db);
 *   gw_db_migrate(db, err, sizeof err);      // at start, before serving
 *   PGconn *c;
 *   if (gw_db_acquire(db, &c) == 0) {
 *     PGresult *res;
 *     int rc = gw_q(c, &res, "SELECT id FROM users WHERE username = $1", 1, name);
 *     ...; PQclear(res);
 *     gw_db_release(db, c);
 *   }
 *
 * Thread safety: every function may be called from any thread; a PGconn
 * belongs to the thread that acquired it until it is released.
 */
#ifndef GW_DB_H
#define GW_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* One migration: gateway/migrations/NNNN_name.sql, embedded at build time
 * in version order (gw_migrations.c is generated). */
typedef struct gw_migration {
  int version;
  const char *name;
  const char *sql;
} gw_migration;

extern const gw_migration gw_migrations[];
extern const size_t gw_migrations_count;

typedef struct gw_db gw_db;

/* Prepare a pool of at most `size` connections (1..256) to `conninfo`;
 * connections are made lazily. A caller waits at most `wait_ms` for a free
 * connection. *out is the caller's until gw_db_close. CAIRN_EINVAL for bad
 * arguments or a conninfo libpq cannot parse. */
int gw_db_open(const char *conninfo, int size, int64_t wait_ms, gw_db **out);

/* Close every connection and free the pool. No connection may be out. */
void gw_db_close(gw_db *db);

/* Borrow a connection (connecting it if needed). 0 and *out set;
 * CAIRN_EBUSY when none became free within wait_ms; CAIRN_EUNAVAIL when the
 * server cannot be reached. */
int gw_db_acquire(gw_db *db, PGconn **out);

/* Give a connection back. A connection left inside a transaction is rolled
 * back; a broken one is dropped and reconnected at the next acquire. */
void gw_db_release(gw_db *db, PGconn *c);

/* Run `sql` with `n` text parameters (a NULL one is SQL NULL). On success
 * returns 0 and *res (may be NULL when the caller wants no rows) holds the
 * result, which the caller PQclear()s. Errors: CAIRN_EEXIST (unique
 * violation), CAIRN_ENOENT (foreign key target missing), CAIRN_EINVAL
 * (check constraint, bad text representation, value too long),
 * CAIRN_ECONFLICT (serialization failure or deadlock), CAIRN_EUNAVAIL (the
 * connection is broken), CAIRN_EINTERNAL (anything else; logged with its
 * SQLSTATE). On error *res is NULL. */
int gw_q(PGconn *c, PGresult **res, const char *sql, int n, ...);

/* The same with the parameters in an array. */
int gw_qv(PGconn *c, PGresult **res, const char *sql, int n, const char *const *params);

/* gw_q on a connection borrowed from the pool for just this statement
 * (acquire errors as gw_db_acquire). */
int gw_db_query(gw_db *db, PGresult **res, const char *sql, int n, ...);

/* BEGIN / COMMIT / ROLLBACK: 0 or an error as for gw_q. */
int gw_db_begin(PGconn *c);
int gw_db_commit(PGconn *c);
void gw_db_rollback(PGconn *c);

/* Apply every embedded migration newer than the database's schema version,
 * each in its own transaction, serialised against other gateways by an
 * advisory lock. Refuses (CAIRN_ECONFIG, message in err) a database whose
 * schema is newer than this binary knows. Other errors as for gw_q. */
int gw_db_migrate(gw_db *db, char *err, size_t errlen);

/* The schema version now in the database (0 before any migration), or an
 * error. */
int gw_db_schema_version(gw_db *db);

/* Open every connection of the pool now (as far as the server lets us),
 * so the first burst of requests does not open them all at once. */
void gw_db_warm(gw_db *db);

/* One cheap round trip (SELECT 1) for /healthz: 0 or an error. */
int gw_db_ping(gw_db *db);

#endif /* GW_DB_H */
