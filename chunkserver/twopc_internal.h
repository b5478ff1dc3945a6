/*
 * twopc_internal.h - what the files of the 2PC layer share (twopc.c: state,
 * peer calls, journal; twopc_participant.c; twopc_primary.c;
 * twopc_recover.c). Not a public interface: cs__tp_ prefix.
 */
#ifndef TWOPC_INTERNAL_H
#define TWOPC_INTERNAL_H

#include "cs_twopc.h"

#include "cmn_metrics.h"
#include "cmn_rpc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CS__TP_MOD "2pc"
#define CS__TP_OUT_UNKNOWN CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_UNKNOWN
#define CS__TP_OUT_COMMITTED CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_COMMITTED
#define CS__TP_OUT_ABORTED CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_ABORTED
#define CS__TP_OUT_PENDING CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_PENDING

/* The 2PC layer's state, attached to s->leases. Read-only after init but
 * for `stop` (under mu). */
typedef struct cs__tp {
  char *journal_dir;
  int64_t undecided_ms, retry_ms, report_timeout_ms;
  cmn_counter *m_rounds, *m_commits, *m_aborts, *m_reported, *m_resolved;
  cmn_histogram *m_round;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* stop was set */
  bool stop;
} cs__tp;

cs__tp *cs__tp_get(const cs_server *s);

/* printf into err (NULL or errlen 0: nothing). */
void cs__tp_say(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline bool cs__tp_handle_ok(uint64_t h) { return h != 0 && h != UINT64_MAX; }
/* 1..max printable ASCII characters without spaces. */
bool cs__tp_str_ok(const char *s, size_t max);
/* Every replica address of a request valid (id and rpc_addr required). */
bool cs__tp_addrs_ok(Cairn__V1__ServerAddress *const *a, size_t n);

static inline void cs__tp_count(cmn_counter *c, uint64_t n) {
  if (c && n) cmn_counter_add(c, n);
}

/* ---- calls to other servers, in parallel ---- */

typedef struct cs__tp_call {
  cs_server *s;
  const char *target;           /* rpc_addr; must stay valid during the call */
  const ProtobufCServiceDescriptor *service;
  const char *method;
  const ProtobufCMessage *req;  /* must stay valid during the call */
  int64_t timeout_ms;
  ProtobufCMessage *reply;      /* on success; freed by cs__tp_calls_free */
  int rc;
  cmn_rpc_status st;
  pthread_t th;
  bool threaded;
} cs__tp_call;

/* Start each call on a thread of its own (inline if no thread can be made);
 * wait for all of them; free the replies. Channels come from s->peers, or
 * s->master for the Master service. */
void cs__tp_calls_start(cs__tp_call *c, size_t n);
void cs__tp_calls_wait(cs__tp_call *c, size_t n);
void cs__tp_calls_free(cs__tp_call *c, size_t n);
/* One call on the calling thread. */
void cs__tp_call_run(cs__tp_call *c);

/* ---- journal of prepared mutations: <journal_dir>/<handle:016x>-<version>-<serial> ---- */

/* Durably write the round's PrepareRequest (temp file, fsync, rename, dir
 * fsync). 0, CAIRN_ENOSPC, CAIRN_EIO. */
int cs__tp_journal_write(const cs__tp *t, const Cairn__V1__PrepareRequest *req);
/* Read it back: *out is the caller's (protobuf_c_message_free_unpacked).
 * 0, CAIRN_ENOENT, CAIRN_ECORRUPT (bad magic, CRC, message or key), CAIRN_EIO. */
int cs__tp_journal_read(const cs__tp *t, uint64_t handle, uint64_t version, uint64_t serial,
                        Cairn__V1__PrepareRequest **out);
/* Remove it (durably: dir fsync). Missing is fine. */
void cs__tp_journal_remove(const cs__tp *t, uint64_t handle, uint64_t version, uint64_t serial);
/* Call cb for every journal file name that parses; nonzero stops. */
typedef int (*cs__tp_journal_fn)(void *arg, uint64_t handle, uint64_t version, uint64_t serial);
int cs__tp_journal_list(const cs__tp *t, cs__tp_journal_fn cb, void *arg);

/* ---- participant steps (twopc_participant.c), chunk mutex held ---- */

int cs__tp_prepare_locked(cs_server *s, const Cairn__V1__PrepareRequest *req, char *err,
                          size_t errlen);
/* Commit / abort in the store, then the decision ring, the journal and the
 * pushed bytes. */
int cs__tp_commit_locked(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial);
int cs__tp_abort_locked(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial);
/* The prepared mutation of handle in the store: 0 with *out, or CAIRN_ENOENT. */
int cs__tp_pending_of(cs_server *s, uint64_t handle, cs_store_intent *out);

/* ---- outcome queries (twopc_recover.c) ---- */

/* Ask every replica the journal `j` names (not us) for the outcome of its
 * mutation, in parallel, each within timeout_ms: COMMITTED if any says so,
 * else ABORTED if any says so, else UNKNOWN (PENDING, UNKNOWN, unreachable). */
int cs__tp_ask(cs_server *s, const Cairn__V1__PrepareRequest *j, int64_t timeout_ms);

/* The chunk mutex of `handle` is held and its pending mutation stands in
 * the way: read its journal and ask the others once; apply a definite
 * answer (abort as well when there is no journal: it never voted yes).
 * With `settle`, an answer nobody can give is taken as abort after one more
 * round of questions (see cs_twopc_set_version in cs_twopc.h for when that
 * is safe). 1 resolved, 0 still undecided, or an error of the store. */
int cs__tp_resolve_now(cs_server *s, uint64_t handle, int64_t timeout_ms, bool settle);

#endif /* TWOPC_INTERNAL_H */
