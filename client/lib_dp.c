/*
 * lib_dp.c - data-plane connections to chunkservers, kept for reuse.
 *
 * A connection costs a TCP handshake and the HMAC handshake (two round
 * trips) before its first byte, which would dominate small reads; so a
 * connection that finished an operation cleanly goes back to an idle list
 * and the next operation on the same server takes it. Only connections
 * that succeeded are kept (after any error its stream may be out of sync),
 * idle ones are closed after CAIRN__DP_IDLE_MS (the server closes them
 * after its own idle timeout, 60 s by default), and a reused connection
 * that turns out to be closed is replaced by a fresh one once before the
 * error counts against the replica.
 *
 * Every connection is bound to the server id the master named for the
 * replica (cmn_dp_connect_ex): after a restart on other ports another
 * server may answer at an old address, and it must not serve our reads.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAIRN__DP_IDLE_MS 20000
#define CAIRN__DP_MAX_IDLE 64
#define CAIRN__DP_MAX_IDLE_PER_ADDR 8
#define CAIRN__DP_MAX_SUSPECTS 32
#define CAIRN__DP_SUSPECT_MS 10000

typedef struct idle_conn {
  char *addr;
  char *id;
  cmn_dp_conn *conn;
  int64_t since_ms;
} idle_conn;

/* A server that could not be reached lately (see cairn__dp_suspect). */
typedef struct suspect {
  char addr[128];
  int64_t until_ms;
} suspect;

struct cairn__dpool {
  pthread_mutex_t mu;
  char *secret;
  int timeout_ms;
  idle_conn idle[CAIRN__DP_MAX_IDLE];
  size_t n;
  suspect suspects[CAIRN__DP_MAX_SUSPECTS];
};

cairn__dpool *cairn__dpool_new(const char *secret, int timeout_ms) {
  cairn__dpool *p = cmn_calloc(1, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  p->secret = cmn_strdup(secret);
  p->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
  return p;
}

static void idle_free(idle_conn *e) {
  cmn_dp_close(e->conn);
  free(e->addr);
  free(e->id);
}

void cairn__dpool_free(cairn__dpool *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) idle_free(&p->idle[i]);
  memset(p->secret, 0, strlen(p->secret));
  free(p->secret);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* Remove entry i (caller holds the lock); returns its connection. */
static cmn_dp_conn *take(cairn__dpool *p, size_t i) {
  cmn_dp_conn *conn = p->idle[i].conn;
  free(p->idle[i].addr);
  free(p->idle[i].id);
  p->idle[i] = p->idle[--p->n];
  return conn;
}

/* An idle connection to (addr, id), or a new one (always with `fresh`,
 * which also closes every idle one to addr: after one of them turned out
 * closed, the others are suspect too). *reused says which. */
static int dp_get(cairn__dpool *p, const char *addr, const char *id, bool fresh,
                  cmn_dp_conn **out, bool *reused) {
  cmn_dp_conn *old[CAIRN__DP_MAX_IDLE];
  size_t nold = 0;
  cmn_dp_conn *found = NULL;
  int64_t now = cmn_mono_ms();
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->n;) {
    idle_conn *e = &p->idle[i];
    if (now - e->since_ms > CAIRN__DP_IDLE_MS || (fresh && strcmp(e->addr, addr) == 0)) {
      old[nold++] = take(p, i);
      continue;
    }
    if (!found && !fresh && strcmp(e->addr, addr) == 0 && strcmp(e->id, id ? id : "") == 0) {
      found = take(p, i);
      continue;
    }
    i++;
  }
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < nold; i++) cmn_dp_close(old[i]);
  *reused = found != NULL;
  if (found) {
    *out = found;
    return 0;
  }
  char err[200];
  int rc = cmn_dp_connect_ex(addr, p->secret, id, p->timeout_ms, err, sizeof err, out);
  if (rc != 0)
    CMN_DEBUG(CAIRN__LOG, "data connect failed addr=%s error=%s message=\"%s\"", addr,
              cairn_err_name(rc), err);
  return rc;
}

/* Give a connection back: kept when the operation succeeded and there is
 * room, else closed. */
static void dp_put(cairn__dpool *p, const char *addr, const char *id, cmn_dp_conn *conn, bool ok) {
  if (ok) {
    size_t same = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < CAIRN__DP_MAX_SUSPECTS; i++) /* it answered: no longer suspect */
      if (strcmp(p->suspects[i].addr, addr) == 0) p->suspects[i].until_ms = 0;
    for (size_t i = 0; i < p->n; i++) same += strcmp(p->idle[i].addr, addr) == 0;
    if (p->n < CAIRN__DP_MAX_IDLE && same < CAIRN__DP_MAX_IDLE_PER_ADDR) {
      p->idle[p->n++] = (idle_conn){cmn_strdup(addr), cmn_strdup(id ? id : ""), conn,
                                    cmn_mono_ms()};
      conn = NULL;
    }
    pthread_mutex_unlock(&p->mu);
  }
  cmn_dp_close(conn);
}

/* ---- unreachable servers ----------------------------------------------------------------- */

/* Could not connect, or the connection broke: the server may be down. */
static bool unreachable_error(int rc) {
  return rc == CAIRN_EUNAVAIL || rc == CAIRN_ETIMEDOUT || rc == CAIRN_ECLOSED || rc == CAIRN_EIO;
}

/* Remember that addr failed, for CAIRN__DP_SUSPECT_MS: the oldest entry
 * makes room. */
static void note_unreachable(cairn__dpool *p, const char *addr) {
  int64_t now = cmn_mono_ms();
  pthread_mutex_lock(&p->mu);
  size_t slot = 0;
  for (size_t i = 0; i < CAIRN__DP_MAX_SUSPECTS; i++) {
    if (strcmp(p->suspects[i].addr, addr) == 0) {
      slot = i;
      break;
    }
    if (p->suspects[i].until_ms < p->suspects[slot].until_ms) slot = i;
  }
  snprintf(p->suspects[slot].addr, sizeof p->suspects[slot].addr, "%s", addr);
  p->suspects[slot].until_ms = now + CAIRN__DP_SUSPECT_MS;
  pthread_mutex_unlock(&p->mu);
}

/*
 * Until the master declares a dead server dead (15 s by default), it keeps
 * naming it among a chunk's replicas, and a host that went silent makes
 * every connect wait for the timeout. So a server that failed to answer is
 * suspect for a while: reads try it last and pushes leave it out of the
 * chain. Any thread.
 */
bool cairn__dp_suspect(cairn_client *c, const char *addr) {
  cairn__dpool *p = c->dp;
  int64_t now = cmn_mono_ms();
  bool hit = false;
  pthread_mutex_lock(&p->mu);
  for (size_t i = 0; i < CAIRN__DP_MAX_SUSPECTS && !hit; i++)
    hit = p->suspects[i].until_ms > now && strcmp(p->suspects[i].addr, addr) == 0;
  pthread_mutex_unlock(&p->mu);
  return hit;
}

/* ---- operations ----------------------------------------------------------------------------- */

/* A reused connection failing like this was most likely closed while idle. */
static bool stale_conn_error(int rc) { return rc == CAIRN_ECLOSED || rc == CAIRN_EIO; }

int64_t cairn__dp_read(cairn_client *c, const cairn__replica *r, uint64_t handle,
                       uint64_t version, uint64_t offset, size_t len, void *buf) {
  for (bool fresh = false;; fresh = true) {
    cmn_dp_conn *conn;
    bool reused;
    int rc = dp_get(c->dp, r->data_addr, r->id, fresh, &conn, &reused);
    if (rc != 0) {
      if (unreachable_error(rc)) note_unreachable(c->dp, r->data_addr);
      return rc;
    }
    int64_t got = cmn_dp_read(conn, handle, version, offset, len, buf);
    if (got < 0)
      CMN_DEBUG(CAIRN__LOG,
                "read failed server=%s handle=%llu version=%llu error=%s message=\"%s\"",
                r->id, (unsigned long long)handle, (unsigned long long)version,
                cairn_err_name((int)got), cmn_dp_error(conn));
    dp_put(c->dp, r->data_addr, r->id, conn, got >= 0);
    if (got >= 0 || !reused || !stale_conn_error((int)got)) {
      if (got < 0 && unreachable_error((int)got)) note_unreachable(c->dp, r->data_addr);
      return got;
    }
  }
}

int cairn__dp_push(cairn_client *c, const cairn__replica *head, const char *const *chain,
                   size_t nchain, const uint8_t id[16], const void *data, size_t len,
                   const cmn_frame_place *place) {
  for (bool fresh = false;; fresh = true) {
    cmn_dp_conn *conn;
    bool reused;
    int rc = dp_get(c->dp, head->data_addr, head->id, fresh, &conn, &reused);
    if (rc != 0) {
      if (unreachable_error(rc)) note_unreachable(c->dp, head->data_addr);
      return rc;
    }
    rc = cmn_dp_push_at(conn, id, data, len, chain, nchain, place);
    if (rc != 0)
      CMN_DEBUG(CAIRN__LOG, "push failed server=%s chain=%zu error=%s message=\"%s\"", head->id,
                nchain, cairn_err_name(rc), cmn_dp_error(conn));
    dp_put(c->dp, head->data_addr, head->id, conn, rc == 0);
    /* nothing reached a closed connection: the same id may be pushed again */
    if (rc == 0 || !reused || !stale_conn_error(rc)) return rc;
  }
}

