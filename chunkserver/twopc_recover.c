/*
 * twopc_recover.c - finding out what became of prepared mutations: asking
 * the other replicas (Outcome), resolving one mutation that stands in the
 * way of a new one, and start-up recovery. The argument for why aborting
 * after the undecided period is safe is at the top of cs_twopc.h.
 */
#include "twopc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MAX_MS 5000

static int64_t rpc_timeout(const cs_server *s) {
  return s->cfg.rpc_timeout_ms > 0 ? s->cfg.rpc_timeout_ms : 5000;
}

int cs__tp_ask(cs_server *s, const Cairn__V1__PrepareRequest *j, int64_t timeout_ms) {
  Cairn__V1__OutcomeRequest q = CAIRN__V1__OUTCOME_REQUEST__INIT;
  q.handle = j->handle;
  q.version = j->version;
  q.serial = j->serial;
  cs__tp_call c[CS_LEASES_MAX_REPLICAS + 1];
  size_t n = 0;
  bool primary_named = false;
  for (size_t i = 0; i < j->n_replicas && n < CS_LEASES_MAX_REPLICAS; i++) {
    const Cairn__V1__ServerAddress *a = j->replicas[i];
    primary_named |= strcmp(a->id, j->primary_id) == 0;
    if (s->id && strcmp(a->id, s->id) == 0) continue;
    c[n++] = (cs__tp_call){.s = s, .target = a->rpc_addr,
                           .service = &cairn__v1__chunkserver__descriptor, .method = "Outcome",
                           .req = &q.base, .timeout_ms = timeout_ms};
  }
  if (!primary_named && (!s->id || strcmp(j->primary_id, s->id) != 0))
    c[n++] = (cs__tp_call){.s = s, .target = j->primary_rpc_addr,
                           .service = &cairn__v1__chunkserver__descriptor, .method = "Outcome",
                           .req = &q.base, .timeout_ms = timeout_ms};
  cs__tp_calls_start(c, n);
  cs__tp_calls_wait(c, n);
  bool committed = false, aborted = false, pending = false;
  for (size_t i = 0; i < n; i++) {
    if (c[i].rc != 0) continue;
    int o = ((const Cairn__V1__OutcomeReply *)c[i].reply)->outcome;
    committed |= o == CS__TP_OUT_COMMITTED;
    aborted |= o == CS__TP_OUT_ABORTED;
    pending |= o == CS__TP_OUT_PENDING;
  }
  cs__tp_calls_free(c, n);
  if (committed) return CS__TP_OUT_COMMITTED;
  if (aborted) return CS__TP_OUT_ABORTED;
  return pending ? CS__TP_OUT_PENDING : CS__TP_OUT_UNKNOWN;
}

/* Apply a decision to the pending mutation `it` (chunk mutex held). */
static int apply(cs_server *s, const cs_store_intent *it, bool commit, const char *why) {
  int rc = commit ? cs__tp_commit_locked(s, it->handle, it->version, it->serial)
                  : cs__tp_abort_locked(s, it->handle, it->version, it->serial);
  CMN_INFO(CS__TP_MOD, "undecided mutation resolved handle=%" PRIu64 " version=%" PRIu64
           " serial=%" PRIu64 " decision=%s why=\"%s\" result=%s", it->handle, it->version,
           it->serial, commit ? "commit" : "abort", why, cairn_err_name(rc));
  return rc;
}

static bool definite(int o) { return o == CS__TP_OUT_COMMITTED || o == CS__TP_OUT_ABORTED; }

int cs__tp_resolve_now(cs_server *s, uint64_t handle, int64_t timeout_ms, bool settle) {
  cs_store_intent it;
  if (cs__tp_pending_of(s, handle, &it) != 0) return 1; /* nothing in the way */
  Cairn__V1__PrepareRequest *j = NULL;
  int rc = cs__tp_journal_read(cs__tp_get(s), it.handle, it.version, it.serial, &j);
  if (rc == CAIRN_ENOENT) {
    rc = apply(s, &it, false, "no journal: it never voted yes");
    return rc == 0 ? 1 : rc;
  }
  if (rc != 0 && !settle) return 0;
  int o = j ? cs__tp_ask(s, j, timeout_ms) : CS__TP_OUT_UNKNOWN;
  if (!definite(o) && settle && j) {
    /* A Commit the primary sent just before it went may still be on its
     * way to another replica: give it a moment to land, then ask again. */
    struct timespec ts = {0, (long)cs__tp_get(s)->retry_ms * 1000000L};
    nanosleep(&ts, NULL);
    o = cs__tp_ask(s, j, timeout_ms);
  }
  if (j) protobuf_c_message_free_unpacked(&j->base, NULL);
  if (!definite(o) && !settle) return 0;
  const char *why = o == CS__TP_OUT_COMMITTED ? "a replica committed it"
                    : o == CS__TP_OUT_ABORTED ? "a replica aborted it"
                                              : "the master moved the version on and no replica "
                                                "knows the outcome";
  rc = apply(s, &it, o == CS__TP_OUT_COMMITTED, why);
  return rc == 0 ? 1 : rc;
}

/* ---- start-up recovery ---- */

typedef struct item {
  cs_store_intent it;
  Cairn__V1__PrepareRequest *j; /* NULL: journal damaged */
  bool done;
} item;

typedef struct items {
  item *v;
  size_t n, cap;
} items;

static int collect(void *arg, const cs_store_intent *it) {
  items *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->v = cmn_realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = (item){.it = *it};
  return 0;
}

struct orphan_ctx {
  cs_server *s;
  items *l;
};

/* Remove a journal whose mutation is no longer pending (decided before a
 * crash took the journal's removal with it). */
static int orphan_cb(void *arg, uint64_t h, uint64_t v, uint64_t serial) {
  struct orphan_ctx *o = arg;
  for (size_t i = 0; i < o->l->n; i++) {
    const cs_store_intent *it = &o->l->v[i].it;
    if (it->handle == h && it->version == v && it->serial == serial) return 0;
  }
  cs__tp_journal_remove(cs__tp_get(o->s), h, v, serial);
  return 0;
}

/* Still the same pending mutation (nobody resolved it meanwhile)? */
static bool still_pending(cs_server *s, const cs_store_intent *it) {
  cs_store_intent now;
  return cs__tp_pending_of(s, it->handle, &now) == 0 && now.version == it->version &&
         now.serial == it->serial;
}

/* Decide one item under its chunk mutex (unless it was settled meanwhile). */
static void settle(cs_server *s, item *x, bool commit, const char *why) {
  cs_leases_lock(s->leases, x->it.handle);
  if (still_pending(s, &x->it)) (void)apply(s, &x->it, commit, why);
  cs_leases_unlock(s->leases, x->it.handle);
  x->done = true;
}

/* Sleep up to ms, or less if stopped. true when stopped. */
static bool pause_or_stop(cs__tp *t, int64_t ms) {
  struct timespec ts;
  cmn_deadline_in(&ts, ms);
  pthread_mutex_lock(&t->mu);
  while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0) {
  }
  bool stop = t->stop;
  pthread_mutex_unlock(&t->mu);
  return stop;
}

/* One pass over the undecided items: ask, apply definite answers. Returns
 * how many are still undecided. */
static size_t ask_all(cs_server *s, items *l, size_t *resolved) {
  size_t left = 0;
  for (size_t i = 0; i < l->n; i++) {
    item *x = &l->v[i];
    if (x->done) continue;
    if (!still_pending(s, &x->it)) { /* a Prepare or SetVersion settled it */
      x->done = true;
      continue;
    }
    int o = x->j ? cs__tp_ask(s, x->j, rpc_timeout(s)) : CS__TP_OUT_UNKNOWN;
    if (o == CS__TP_OUT_COMMITTED || o == CS__TP_OUT_ABORTED) {
      settle(s, x, o == CS__TP_OUT_COMMITTED,
             o == CS__TP_OUT_COMMITTED ? "a replica committed it" : "a replica aborted it");
      (*resolved)++;
    } else {
      left++;
    }
  }
  return left;
}

int cs_twopc_recover(cs_server *s) {
  cs__tp *t = cs__tp_get(s);
  items l = {0};
  size_t resolved = 0;
  int rc = cs_store_pending(s->store, collect, &l);
  if (rc < 0) goto done;
  struct orphan_ctx oc = {s, &l};
  (void)cs__tp_journal_list(t, orphan_cb, &oc);
  if (l.n) CMN_INFO(CS__TP_MOD, "undecided mutations found at start count=%zu", l.n);
  for (size_t i = 0; i < l.n; i++) {
    item *x = &l.v[i];
    int jr = cs__tp_journal_read(t, x->it.handle, x->it.version, x->it.serial, &x->j);
    if (jr == CAIRN_ENOENT) {
      settle(s, x, false, "no journal: it never voted yes");
      resolved++;
    }
  }
  int64_t deadline = cmn_mono_ms() + t->undecided_ms;
  int64_t backoff = t->retry_ms;
  for (;;) {
    if (ask_all(s, &l, &resolved) == 0) break;
    int64_t now = cmn_mono_ms();
    if (now >= deadline) {
      for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].done) continue;
        settle(s, &l.v[i], false, "nobody knows the outcome and the lease period is over");
        resolved++;
      }
      break;
    }
    if (pause_or_stop(t, CMN_MIN(backoff, deadline - now))) {
      rc = CAIRN_ECANCELED;
      goto done;
    }
    backoff = CMN_MIN(backoff * 2, RETRY_MAX_MS);
  }
  rc = (int)resolved;
done:
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i].j) protobuf_c_message_free_unpacked(&l.v[i].j->base, NULL);
  free(l.v);
  cs__tp_count(t->m_resolved, resolved);
  return rc;
}
