/*
 * db.c - the PostgreSQL connection pool, the query helper and migrations.
 *
 * The pool is a fixed array of slots guarded by one mutex; a caller that
 * finds no free slot waits on a condition variable up to the pool's wait
 * limit, so a burst of requests queues instead of opening connections
 * without bound. Connections are opened lazily and re-opened when libpq
 * reports them broken.
 */
#include "gw_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#define GW_DB_MAX_PARAMS 16
/* Arbitrary constant naming the advisory lock that serialises migrations. */
#define GW_DB_MIGRATE_LOCK "7305311"

typedef struct gw_db_slot {
  PGconn *conn;
  int busy;
} gw_db_slot;

struct gw_db {
  char *conninfo;
  int size;
  int64_t wait_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  gw_db_slot *slots;
};

int gw_db_open(const char *conninfo, int size, int64_t wait_ms, gw_db **out) {
  if (conninfo == NULL || size < 1 || size > 256 || wait_ms < 0 || out == NULL) {
    return CAIRN_EINVAL;
  }
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
  if (opts == NULL) {
    CMN_ERROR("gw.db", "bad_conninfo err=\"%s\"", perr ? perr : "out of memory");
    PQfreemem(perr);
    return CAIRN_EINVAL;
  }
  PQconninfoFree(opts);
  gw_db *db = cmn_calloc(1, sizeof *db);
  db->conninfo = cmn_strdup(conninfo);
  db->size = size;
  db->wait_ms = wait_ms;
  db->slots = cmn_calloc((size_t)size, sizeof *db->slots);
  pthread_mutex_init(&db->mu, NULL);
  pthread_cond_init(&db->cv, NULL);
  *out = db;
  return 0;
}

void gw_db_close(gw_db *db) {
  if (db == NULL) {
    return;
  }
  for (int i = 0; i < db->size; i++) {
    if (db->slots[i].conn) {
      PQfinish(db->slots[i].conn);
    }
  }
  pthread_cond_destroy(&db->cv);
  pthread_mutex_destroy(&db->mu);
  free(db->slots);
  free(db->conninfo);
  free(db);
}

/* Make sure the slot's connection is usable: connect it the first time,
 * reconnect it when libpq says it is broken. Runs outside the pool lock
 * (connecting takes a round trip or more). */
static int slot_connect(gw_db *db, gw_db_slot *s) {
  if (s->conn && PQstatus(s->conn) == CONNECTION_OK) {
    return 0;
  }
  if (s->conn) {
    PQfinish(s->conn);
    s->conn = NULL;
  }
  PGconn *c = PQconnectdb(db->conninfo);
  if (c == NULL || PQstatus(c) != CONNECTION_OK) {
    CMN_WARN("gw.db", "connect_failed err=\"%s\"", c ? PQerrorMessage(c) : "out of memory");
    if (c) {
      PQfinish(c);
    }
    return CAIRN_EUNAVAIL;
  }
  s->conn = c;
  return 0;
}

int gw_db_acquire(gw_db *db, PGconn **out) {
  struct timespec deadline;
  cmn_deadline_in(&deadline, db->wait_ms);
  pthread_mutex_lock(&db->mu);
  gw_db_slot *slot = NULL;
  for (;;) {
    /* Prefer a slot with a live connection; else any free slot. */
    for (int i = 0; i < db->size; i++) {
      if (!db->slots[i].busy && (slot == NULL || (db->slots[i].conn && !slot->conn))) {
        slot = &db->slots[i];
      }
    }
    if (slot) {
      break;
    }
    if (pthread_cond_timedwait(&db->cv, &db->mu, &deadline) == ETIMEDOUT) {
      pthread_mutex_unlock(&db->mu);
      return CAIRN_EBUSY;
    }
  }
  slot->busy = 1;
  pthread_mutex_unlock(&db->mu);
  int rc = slot_connect(db, slot);
  if (rc < 0) {
    pthread_mutex_lock(&db->mu);
    slot->busy = 0;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
    return rc;
  }
  *out = slot->conn;
  return 0;
}

void gw_db_release(gw_db *db, PGconn *c) {
  if (c == NULL) {
    return;
  }
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
  }
  pthread_mutex_lock(&db->mu);
  for (int i = 0; i < db->size; i++) {
    if (db->slots[i].conn == c) {
      db->slots[i].busy = 0;
      break;
    }
  }
  pthread_cond_signal(&db->cv);
  pthread_mutex_unlock(&db->mu);
}

/* Map a failed result to a cairn code by its SQLSTATE class. */
static int result_error(PGconn *c, PGresult *r, const char *sql) {
  if (PQstatus(c) != CONNECTION_OK) {
    CMN_WARN("gw.db", "connection_lost err=\"%s\"", PQerrorMessage(c));
    return CAIRN_EUNAVAIL;
  }
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (state == NULL) {
    CMN_ERROR("gw.db", "query_failed err=\"%s\"", PQerrorMessage(c));
    return CAIRN_EUNAVAIL;
  }
  if (strcmp(state, "23505") == 0) {
    return CAIRN_EEXIST;
  }
  if (strcmp(state, "23503") == 0) {
    return CAIRN_ENOENT;
  }
  if (strcmp(state, "23514") == 0 || strcmp(state, "22P02") == 0 ||
      strcmp(state, "22001") == 0 || strcmp(state, "23502") == 0 ||
      strcmp(state, "22021") == 0) {
    return CAIRN_EINVAL;
  }
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
    return CAIRN_ECONFLICT;
  }
  if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0) {
    return CAIRN_EUNAVAIL;
  }
  char head[80];
  snprintf(head, sizeof head, "%s", sql);
  for (char *p = head; *p; p++) {
    if (*p == '\n' || *p == '"') {
      *p = ' ';
    }
  }
  CMN_ERROR("gw.db", "query_failed sqlstate=%s sql=\"%s\" err=\"%s\"", state, head,
            PQresultErrorMessage(r));
  return CAIRN_EINTERNAL;
}

int gw_qv(PGconn *c, PGresult **res, const char *sql, int n, const char *const *params) {
  if (res) {
    *res = NULL;
  }
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    int rc = result_error(c, r, sql);
    PQclear(r);
    return rc;
  }
  if (res) {
    *res = r;
  } else {
    PQclear(r);
  }
  return 0;
}

/* Gather n text parameters from a va_list. 0 or CAIRN_EINVAL (too many). */
static int collect(int n, va_list ap, const char **params) {
  if (n < 0 || n > GW_DB_MAX_PARAMS) {
    return CAIRN_EINVAL;
  }
  for (int i = 0; i < n; i++) {
    params[i] = va_arg(ap, const char *);
  }
  return 0;
}

int gw_q(PGconn *c, PGresult **res, const char *sql, int n, ...) {
  const char *params[GW_DB_MAX_PARAMS];
  va_list ap;
  va_start(ap, n);
  int rc = collect(n, ap, params);
  va_end(ap);
  return rc < 0 ? rc : gw_qv(c, res, sql, n, params);
}

int gw_db_query(gw_db *db, PGresult **res, const char *sql, int n, ...) {
  const char *params[GW_DB_MAX_PARAMS];
  va_list ap;
  va_start(ap, n);
  int rc = collect(n, ap, params);
  va_end(ap);
  if (res) {
    *res = NULL;
  }
  if (rc < 0) {
    return rc;
  }
  PGconn *c;
  rc = gw_db_acquire(db, &c);
  if (rc < 0) {
    return rc;
  }
  rc = gw_qv(c, res, sql, n, params);
  gw_db_release(db, c);
  return rc;
}

int gw_db_begin(PGconn *c) {
  return gw_q(c, NULL, "BEGIN", 0);
}

int gw_db_commit(PGconn *c) {
  return gw_q(c, NULL, "COMMIT", 0);
}

void gw_db_rollback(PGconn *c) {
  if (PQtransactionStatus(c) != PQTRANS_IDLE) {
    (void)gw_q(c, NULL, "ROLLBACK", 0);
  }
}

/* Read the schema version on an acquired connection (0 when the version
 * table does not exist yet). */
static int read_version(PGconn *c) {
  PGresult *r;
  int rc = gw_q(c, &r, "SELECT to_regclass('public.schema_migrations') IS NOT NULL", 0);
  if (rc < 0) {
    return rc;
  }
  int exists = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!exists) {
    return 0;
  }
  rc = gw_q(c, &r, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0);
  if (rc < 0) {
    return rc;
  }
  int v = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

int gw_db_schema_version(gw_db *db) {
  PGconn *c;
  int rc = gw_db_acquire(db, &c);
  if (rc < 0) {
    return rc;
  }
  rc = read_version(c);
  gw_db_release(db, c);
  return rc;
}

/* Apply migrations newer than the current version on `c`, which holds the
 * advisory lock. */
static int migrate_locked(PGconn *c, char *err, size_t errlen) {
  int rc = gw_q(c, NULL,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                0);
  if (rc < 0) {
    snprintf(err, errlen, "cannot create schema_migrations: %s", cairn_strerror(rc));
    return rc;
  }
  int have = read_version(c);
  if (have < 0) {
    snprintf(err, errlen, "cannot read the schema version: %s", cairn_strerror(have));
    return have;
  }
  int known = gw_migrations_count ? gw_migrations[gw_migrations_count - 1].version : 0;
  if (have > known) {
    snprintf(err, errlen,
             "the database schema is version %d but this gateway knows only up to %d; "
             "run a newer gateway",
             have, known);
    return CAIRN_ECONFIG;
  }
  for (size_t i = 0; i < gw_migrations_count; i++) {
    const gw_migration *m = &gw_migrations[i];
    if (m->version <= have) {
      continue;
    }
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    rc = gw_db_begin(c);
    if (rc == 0) {
      PGresult *r = PQexec(c, m->sql); /* several statements: simple protocol */
      if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "migration %s failed: %s", m->name,
                 r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        gw_db_rollback(c);
        return CAIRN_EINTERNAL;
      }
      PQclear(r);
      rc = gw_q(c, NULL, "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)", 2,
                ver, m->name);
    }
    if (rc == 0) {
      rc = gw_db_commit(c);
    }
    if (rc < 0) {
      gw_db_rollback(c);
      snprintf(err, errlen, "migration %s failed: %s", m->name, cairn_strerror(rc));
      return rc;
    }
    CMN_INFO("gw.db", "migrated version=%d name=%s", m->version, m->name);
  }
  return 0;
}

int gw_db_migrate(gw_db *db, char *err, size_t errlen) {
  PGconn *c;
  int rc = gw_db_acquire(db, &c);
  if (rc < 0) {
    snprintf(err, errlen, "cannot connect to PostgreSQL: %s", cairn_strerror(rc));
    return rc;
  }
  rc = gw_q(c, NULL, "SELECT pg_advisory_lock(" GW_DB_MIGRATE_LOCK ")", 0);
  if (rc == 0) {
    rc = migrate_locked(c, err, errlen);
    (void)gw_q(c, NULL, "SELECT pg_advisory_unlock(" GW_DB_MIGRATE_LOCK ")", 0);
  } else {
    snprintf(err, errlen, "cannot lock for migrations: %s", cairn_strerror(rc));
  }
  gw_db_release(db, c);
  return rc;
}

void gw_db_warm(gw_db *db) {
  PGconn **got = cmn_calloc((size_t)db->size, sizeof *got);
  int n = 0;
  while (n < db->size && gw_db_acquire(db, &got[n]) == 0) {
    n++;
  }
  for (int i = 0; i < n; i++) {
    gw_db_release(db, got[i]);
  }
  free(got);
}

int gw_db_ping(gw_db *db) {
  return gw_db_query(db, NULL, "SELECT 1", 0);
}
