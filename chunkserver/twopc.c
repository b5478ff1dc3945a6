/*
 * twopc.c - the 2PC layer's state (options, metrics, stop flag), calls to
 * other servers in parallel, and the journal of prepared mutations that
 * lets a restarted replica find out whom to ask about them.
 */
#include "twopc_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC 0x4a503243u /* "C2PJ" little-endian */
#define JOURNAL_FORMAT 1u
#define JOURNAL_HDR 16u
#define JOURNAL_MAX (256u << 10)

cs__tp *cs__tp_get(const cs_server *s) { return cs_leases_attached(s->leases); }

void cs__tp_say(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

bool cs__tp_str_ok(const char *s, size_t max) {
  if (!s) return false;
  size_t n = strnlen(s, max + 1);
  if (n < 1 || n > max) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

bool cs__tp_addrs_ok(Cairn__V1__ServerAddress *const *a, size_t n) {
  if (n > CS_LEASES_MAX_REPLICAS) return false;
  for (size_t i = 0; i < n; i++) {
    if (!a[i] || !cs__tp_str_ok(a[i]->id, CS_LEASES_ID_MAX) ||
        !cs__tp_str_ok(a[i]->rpc_addr, CS_LEASES_ADDR_MAX))
      return false;
    if (a[i]->data_addr && strnlen(a[i]->data_addr, CS_LEASES_ADDR_MAX + 1) > CS_LEASES_ADDR_MAX)
      return false;
    for (size_t j = 0; j < i; j++)
      if (strcmp(a[i]->id, a[j]->id) == 0) return false; /* one replica per server */
  }
  return true;
}

/* ---- state ---- */

static void tp_free(void *arg) {
  cs__tp *t = arg;
  if (!t) return;
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t->journal_dir);
  free(t);
}

static int counter(cmn_metrics *m, const char *name, const char *help, cmn_counter **out) {
  return cmn_counter_register(m, name, help, NULL, 0, out);
}

static int register_metrics(cs__tp *t, cmn_metrics *m) {
  int rc = counter(m, "cairn_chunkserver_2pc_rounds_total", "2PC rounds run as primary",
                   &t->m_rounds);
  if (rc == 0)
    rc = counter(m, "cairn_chunkserver_2pc_commits_total", "2PC rounds that committed",
                 &t->m_commits);
  if (rc == 0)
    rc = counter(m, "cairn_chunkserver_2pc_aborts_total", "2PC rounds that aborted",
                 &t->m_aborts);
  if (rc == 0)
    rc = counter(m, "cairn_chunkserver_2pc_failed_replicas_reported_total",
                 "replicas reported to the master after a round", &t->m_reported);
  if (rc == 0)
    rc = counter(m, "cairn_chunkserver_2pc_recovered_total",
                 "undecided mutations resolved after a restart", &t->m_resolved);
  if (rc == 0)
    rc = cmn_histogram_register(m, "cairn_chunkserver_2pc_round_seconds",
                                "time of a 2PC round on the primary, lock to decision", NULL, 0,
                                cmn_metrics_latency_buckets, CMN_METRICS_LATENCY_NBUCKETS,
                                &t->m_round);
  return rc;
}

/* The first usable data dir of the store, for the default journal dir. */
static char *default_journal_dir(cs_store *st) {
  cs_store_usage *u = cmn_malloc(sizeof *u);
  char *dir = NULL;
  if (cs_store_stats(st, u) == 0) {
    for (size_t i = 0; i < u->ndirs && !dir; i++)
      if (u->dirs[i].state != CS_STORE_DIR_FAILED) dir = cmn_sprintf("%s/2pc", u->dirs[i].path);
  }
  free(u);
  return dir;
}

int cs_twopc_init(cs_server *s, const cs_twopc_opts *o) {
  if (!s || !s->store) return CAIRN_EINVAL;
  cs_twopc_opts d = o ? *o : (cs_twopc_opts){0};
  if (d.undecided_ms < 0 || d.retry_ms < 0 || d.report_timeout_ms < 0) return CAIRN_EINVAL;
  cs_leases *l = NULL;
  int rc = cs_leases_new(&d.leases, &l);
  if (rc != 0) return rc;
  cs__tp *t = cmn_calloc(1, sizeof *t);
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  cs_leases_attach(l, t, tp_free);
  t->undecided_ms = d.undecided_ms ? d.undecided_ms : cs_leases_options(l)->lease_ms;
  t->retry_ms = d.retry_ms ? d.retry_ms : 250;
  int64_t rpc = s->cfg.rpc_timeout_ms > 0 ? s->cfg.rpc_timeout_ms : 5000;
  t->report_timeout_ms = d.report_timeout_ms ? d.report_timeout_ms : CMN_MAX(4 * rpc, 10000);
  t->journal_dir = d.journal_dir ? cmn_strdup(d.journal_dir) : default_journal_dir(s->store);
  if (!t->journal_dir) {
    rc = CAIRN_EIO;
    goto fail;
  }
  if (mkdir(t->journal_dir, 0755) != 0 && errno != EEXIST) {
    CMN_ERROR(CS__TP_MOD, "cannot create the journal dir path=%s error=\"%s\"", t->journal_dir,
              strerror(errno));
    rc = CAIRN_EIO;
    goto fail;
  }
  if (s->metrics && (rc = register_metrics(t, s->metrics)) != 0) goto fail;
  s->leases = l;
  return 0;
fail:
  cs_leases_free(l);
  return rc;
}

void cs_twopc_stop(cs_server *s) {
  cs__tp *t = s && s->leases ? cs__tp_get(s) : NULL;
  if (!t) return;
  pthread_mutex_lock(&t->mu);
  t->stop = true;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

void cs_twopc_fini(cs_server *s) {
  if (!s) return;
  cs_leases_free(s->leases);
  s->leases = NULL;
}

/* ---- calls ---- */

void cs__tp_call_run(cs__tp_call *c) {
  cmn_rpc_channel *ch = NULL;
  c->reply = NULL;
  memset(&c->st, 0, sizeof c->st);
  if (c->service == &cairn__v1__master__descriptor) {
    ch = c->s->master;
    c->rc = ch ? 0 : CAIRN_EUNAVAIL;
  } else {
    c->rc = c->s->peers ? cmn_rpc_pool_get(c->s->peers, c->target, &ch) : CAIRN_EUNAVAIL;
  }
  if (c->rc == 0)
    c->rc = cmn_rpc_call_unary(ch, c->service, c->method, c->req, &c->reply, c->timeout_ms,
                               &c->st);
  if (c->rc != 0 && !c->st.message[0])
    snprintf(c->st.message, sizeof c->st.message, "%s", cairn_strerror(c->rc));
}

static void *call_main(void *arg) {
  cs__tp_call_run(arg);
  return NULL;
}

void cs__tp_calls_start(cs__tp_call *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    c[i].threaded = pthread_create(&c[i].th, NULL, call_main, &c[i]) == 0;
    if (!c[i].threaded) cs__tp_call_run(&c[i]); /* no thread: do it here */
  }
}

void cs__tp_calls_wait(cs__tp_call *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (c[i].threaded) pthread_join(c[i].th, NULL);
    c[i].threaded = false;
  }
}

void cs__tp_calls_free(cs__tp_call *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (c[i].reply) protobuf_c_message_free_unpacked(c[i].reply, NULL);
    c[i].reply = NULL;
  }
}

/* ---- journal ---- */

static char *journal_path(const cs__tp *t, uint64_t h, uint64_t v, uint64_t serial) {
  return cmn_sprintf("%s/%016" PRIx64 "-%" PRIu64 "-%" PRIu64, t->journal_dir, h, v, serial);
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * File: magic u32, format u32, payload length u32, CRC32C u32 of the
 * payload, then the PrepareRequest as protobuf. The rename makes it appear
 * whole; the CRC catches later damage.
 */
int cs__tp_journal_write(const cs__tp *t, const Cairn__V1__PrepareRequest *req) {
  size_t n = protobuf_c_message_get_packed_size(&req->base);
  if (n > JOURNAL_MAX - JOURNAL_HDR) return CAIRN_EINVAL;
  unsigned char *buf = cmn_malloc(JOURNAL_HDR + n);
  protobuf_c_message_pack(&req->base, buf + JOURNAL_HDR);
  put32(buf, JOURNAL_MAGIC);
  put32(buf + 4, JOURNAL_FORMAT);
  put32(buf + 8, (uint32_t)n);
  put32(buf + 12, cmn_crc32c(0, buf + JOURNAL_HDR, n));
  char *path = journal_path(t, req->handle, req->version, req->serial);
  int rc = cmn_write_file_atomic(path, buf, JOURNAL_HDR + n, 0644);
  if (rc != 0)
    CMN_ERROR(CS__TP_MOD, "journal write failed path=%s error=%s", path, cairn_err_name(rc));
  free(path);
  free(buf);
  return rc == CAIRN_ENOSPC ? rc : rc != 0 ? CAIRN_EIO : 0;
}

int cs__tp_journal_read(const cs__tp *t, uint64_t handle, uint64_t version, uint64_t serial,
                        Cairn__V1__PrepareRequest **out) {
  *out = NULL;
  char *path = journal_path(t, handle, version, serial);
  char *data = NULL;
  size_t len = 0;
  int rc = cmn_read_file(path, JOURNAL_MAX, &data, &len);
  if (rc != 0) {
    rc = rc == CAIRN_ENOENT ? rc : rc == CAIRN_ETOOBIG ? CAIRN_ECORRUPT : CAIRN_EIO;
    goto fail;
  }
  const unsigned char *b = (const unsigned char *)data;
  rc = CAIRN_ECORRUPT;
  if (len < JOURNAL_HDR || get32(b) != JOURNAL_MAGIC || get32(b + 4) != JOURNAL_FORMAT ||
      get32(b + 8) != len - JOURNAL_HDR ||
      get32(b + 12) != cmn_crc32c(0, b + JOURNAL_HDR, len - JOURNAL_HDR))
    goto fail;
  Cairn__V1__PrepareRequest *r =
      cairn__v1__prepare_request__unpack(NULL, len - JOURNAL_HDR, b + JOURNAL_HDR);
  if (!r) goto fail;
  if (r->handle != handle || r->version != version || r->serial != serial ||
      !cs__tp_addrs_ok(r->replicas, r->n_replicas)) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    goto fail;
  }
  *out = r;
  rc = 0;
fail:
  if (rc == CAIRN_ECORRUPT) CMN_WARN(CS__TP_MOD, "journal file is damaged path=%s", path);
  free(data);
  free(path);
  return rc;
}

void cs__tp_journal_remove(const cs__tp *t, uint64_t handle, uint64_t version, uint64_t serial) {
  /* Not fsynced: a journal that survives a crash without its intent is an
   * orphan that recovery removes. */
  char *path = journal_path(t, handle, version, serial);
  unlink(path);
  free(path);
}

/* "<handle:016x>-<version>-<serial>" exactly. */
static bool parse_name(const char *name, uint64_t *h, uint64_t *v, uint64_t *serial) {
  if (strlen(name) < 20 || name[16] != '-') return false;
  for (int i = 0; i < 16; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
  char *end;
  errno = 0;
  *h = strtoull(name, &end, 16);
  if (end != name + 16) return false;
  const char *p = name + 17;
  if (*p < '0' || *p > '9') return false;
  *v = strtoull(p, &end, 10);
  if (*end != '-' || errno) return false;
  p = end + 1;
  if (*p < '0' || *p > '9') return false;
  *serial = strtoull(p, &end, 10);
  return *end == '\0' && errno == 0;
}

int cs__tp_journal_list(const cs__tp *t, cs__tp_journal_fn cb, void *arg) {
  DIR *d = opendir(t->journal_dir);
  if (!d) return errno == ENOENT ? 0 : CAIRN_EIO;
  /* Collect first: the callback may remove files. */
  size_t n = 0, cap = 0;
  uint64_t(*keys)[3] = NULL;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t h, v, serial;
    if (de->d_name[0] == '.') continue;
    if (parse_name(de->d_name, &h, &v, &serial)) {
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        keys = cmn_realloc(keys, cap * sizeof *keys);
      }
      keys[n][0] = h;
      keys[n][1] = v;
      keys[n][2] = serial;
      n++;
    } else if (strstr(de->d_name, ".tmp.")) {
      char *p = cmn_sprintf("%s/%s", t->journal_dir, de->d_name);
      unlink(p); /* an unfinished write: it never counted */
      free(p);
    }
  }
  closedir(d);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = cb(arg, keys[i][0], keys[i][1], keys[i][2]);
  free(keys);
  return rc;
}
