/*
 * lib_client.c - the client object: connecting, calls to the master and to
 * chunkservers with the retry policy of lib_policy.c, and the cluster's
 * chunk size.
 *
 * One gRPC channel to the master and one per chunkserver (cmn_rpc_pool),
 * all safe for concurrent calls; data-plane connections are pooled in
 * lib_dp.c. Everything the client holds after cairn_connect is either
 * immutable or has its own lock or atomics, so any number of threads may
 * share it.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- connect ---------------------------------------------------------------------- */

int cairn_connect(const cairn_options *o, cairn_client **out) {
  if (!o || !out) return CAIRN_EINVAL;
  cairn_client *c = cmn_calloc(1, sizeof *c);
  int rc = cairn__opts_resolve(o, getenv("CAIRN_MASTER"), getenv("CAIRN_SECRET_FILE"), &c->o);
  if (rc != 0) goto fail;
  rc = cmn_rpc_load_secret(c->o.secret_file, &c->secret);
  if (rc != 0) goto fail;
  cmn_rpc_client_config cc = {.secret = c->secret};
  if ((rc = cmn_rpc_channel_open(c->o.master, &cc, &c->master)) != 0) goto fail;
  if ((rc = cmn_rpc_pool_create(&cc, &c->peers)) != 0) goto fail;
  int dp_timeout = c->o.rpc_timeout_ms > INT_MAX ? INT_MAX : (int)c->o.rpc_timeout_ms;
  c->dp = cairn__dpool_new(c->secret, dp_timeout);
  c->cache = cairn__cache_new(c->o.cache_ttl_ms, CAIRN__CACHE_MAX);
  uint64_t seed = 0;
  (void)cmn_random_bytes(&seed, sizeof seed); /* jitter only: any value works */
  atomic_init(&c->rng, seed ^ (uint64_t)cmn_mono_ns());
  CMN_DEBUG(CAIRN__LOG, "connect master=%s io_threads=%d cache_ttl_ms=%lld", c->o.master,
            c->o.io_threads, (long long)c->o.cache_ttl_ms);
  *out = c;
  return 0;
fail:
  cairn_disconnect(c);
  return rc;
}

void cairn_disconnect(cairn_client *c) {
  if (!c) return;
  cairn__cache_free(c->cache);
  cairn__dpool_free(c->dp);
  cmn_rpc_pool_destroy(c->peers);
  cmn_rpc_channel_close(c->master);
  if (c->secret) memset(c->secret, 0, strlen(c->secret));
  free(c->secret);
  cairn__opts_free(&c->o);
  free(c);
}

/* ---- small helpers ------------------------------------------------------------------ */

uint64_t cairn__rand(cairn_client *c) {
  /* splitmix64 over an atomic counter */
  uint64_t z = atomic_fetch_add(&c->rng, 0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void cairn__sleep_ms(int64_t ms) {
  if (ms <= 0) return;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void cairn__retry_start(cairn_client *c, cairn__retry *r) {
  cairn__retry_init(r, c->o.max_retries, c->o.op_timeout_ms, cmn_mono_ms());
}

int cairn__retry_wait(cairn_client *c, cairn__retry *r, int rc) {
  int64_t d = cairn__retry_next(r, rc, cmn_mono_ms(), cairn__rand(c));
  if (d < 0) return 0;
  CMN_DEBUG(CAIRN__LOG, "retry attempt=%d error=%s wait_ms=%lld", r->attempts, cairn_err_name(rc),
            (long long)d);
  cairn__sleep_ms(d);
  return 1;
}

void cairn__client_stats(cairn_client *c, cairn__stats *out) {
  out->lookups = atomic_load(&c->n_lookups);
  out->prepares = atomic_load(&c->n_prepares);
  out->fallbacks = atomic_load(&c->n_fallbacks);
}

/* ---- calls ---------------------------------------------------------------------------- */

int cairn__master_once(cairn_client *c, const char *method, const ProtobufCMessage *req,
                       ProtobufCMessage **reply, int64_t timeout_ms) {
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(c->master, &cairn__v1__master__descriptor, method, req, reply,
                              timeout_ms, &st);
  if (rc != 0)
    CMN_DEBUG(CAIRN__LOG, "master call failed method=%s error=%s message=\"%s\"", method,
              cairn_err_name(rc), st.message);
  return rc;
}

/*
 * A master call within one operation's budget. Mutations are not repeated
 * after a timeout or a cancel: the first call may have been applied, and a
 * repeat would then fail (EEXIST, ENOENT) for an operation that succeeded.
 */
int cairn__master_call(cairn_client *c, const char *method, const ProtobufCMessage *req,
                       ProtobufCMessage **reply, cairn__call_kind kind) {
  cairn__retry r;
  cairn__retry_start(c, &r);
  for (;;) {
    int64_t t = cairn__retry_timeout(&r, c->o.rpc_timeout_ms, cmn_mono_ms());
    int rc = cairn__master_once(c, method, req, reply, t);
    if (rc == 0) return 0;
    if (kind == CAIRN__MUTATION && (rc == CAIRN_ETIMEDOUT || rc == CAIRN_ECANCELED)) return rc;
    if (!cairn__retry_wait(c, &r, rc)) return rc;
  }
}

int cairn__cs_call(cairn_client *c, const char *rpc_addr, const char *method,
                   const ProtobufCMessage *req, ProtobufCMessage **reply, int64_t timeout_ms) {
  *reply = NULL;
  cmn_rpc_channel *ch;
  int rc = cmn_rpc_pool_get(c->peers, rpc_addr, &ch);
  if (rc != 0) return rc;
  cmn_rpc_status st;
  rc = cmn_rpc_call_unary(ch, &cairn__v1__chunkserver__descriptor, method, req, reply, timeout_ms,
                          &st);
  if (rc != 0)
    CMN_DEBUG(CAIRN__LOG, "chunkserver call failed server=%s method=%s error=%s message=\"%s\"",
              rpc_addr, method, cairn_err_name(rc), st.message);
  return rc;
}

/* ---- chunk size ------------------------------------------------------------------------ */

void cairn__chunk_size_learn(cairn_client *c, uint64_t chunk_size) {
  if (chunk_size > 0) atomic_store(&c->chunk_size, chunk_size);
}

/*
 * The chunk size maps file offsets to chunk indexes, so every read needs
 * it, but the master names it only in PrepareWrite replies (which a reader
 * must not call: they allocate chunks and grant leases). A client that has
 * not written yet therefore measures it once on a live chunkserver's data
 * plane: a READ whose range ends past the chunk size is refused with
 * CAIRN_ERANGE before any replica is looked at (cairn-chunkserver's
 * dataplane_read.c), so a binary search over the offset finds the size
 * exactly in about 31 round trips. Any server will do: they all run with
 * the cluster's chunk size (the master checks it at registration).
 */
int cairn__chunk_size(cairn_client *c, uint64_t *out) {
  uint64_t cs = atomic_load(&c->chunk_size);
  if (cs) {
    *out = cs;
    return 0;
  }
  /* The master says it in its status (readers must not call PrepareWrite,
   * which allocates and leases). */
  Cairn__V1__ClusterStatusRequest req = CAIRN__V1__CLUSTER_STATUS_REQUEST__INIT;
  Cairn__V1__ClusterStatusReply *st = NULL;
  int rc = cairn__master_call(c, "GetClusterStatus", &req.base, (ProtobufCMessage **)&st,
                              CAIRN__IDEMPOTENT);
  if (rc != 0) return rc;
  cs = st->chunk_size;
  protobuf_c_message_free_unpacked(&st->base, NULL);
  if (cs == 0) return CAIRN_EPROTO;
  /* a PrepareWrite reply may have told us meanwhile: it wins */
  uint64_t zero = 0;
  if (!atomic_compare_exchange_strong(&c->chunk_size, &zero, cs)) cs = zero;
  CMN_DEBUG(CAIRN__LOG, "chunk size learnt bytes=%llu", (unsigned long long)cs);
  *out = cs;
  return 0;
}
