/*
 * master_ops.c - metadata operations per second against a running master,
 * from 1 and from 16 concurrent clients (threads, each with its own
 * channel): durable create, stat, list of a 1,000-entry directory, rename
 * and delete. Prints one "name value" line per figure.
 *
 *   bench_master_ops HOST:PORT SECRET_FILE [ops_per_thread]
 */
#include "cairn_error.h"
#include "cmn_rpc.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_CREATE, OP_STAT, OP_LIST, OP_RENAME, OP_DELETE, OP_COUNT };
static const char *const op_names[] = {"create", "stat", "list1000", "rename", "delete"};

struct worker {
  const char *addr;
  const char *secret;
  int id;
  int threads;
  int ops;
  enum op op;
  int failures;
  int64_t ns;
  cmn_rpc_channel *ch;
};

static ProtobufCBinaryData b(const char *s) {
  ProtobufCBinaryData d = {strlen(s), (uint8_t *)s};
  return d;
}

static int call(cmn_rpc_channel *ch, const char *m, const ProtobufCMessage *req) {
  ProtobufCMessage *r = NULL;
  int rc = cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, m, req, &r, 30000, NULL);
  if (r) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

static void *run(void *p) {
  struct worker *w = p;
  char path[128], to[128];
  int64_t t0 = cmn_mono_ns();
  for (int i = 0; i < w->ops; i++) {
    snprintf(path, sizeof path, "/bench%d/t%02d/file-%07d", w->threads, w->id, i);
    snprintf(to, sizeof to, "/bench%d/t%02d/renamed-%07d", w->threads, w->id, i);
    int rc = 0;
    switch (w->op) {
    case OP_CREATE: {
      Cairn__V1__CreateRequest r = CAIRN__V1__CREATE_REQUEST__INIT;
      r.path = b(path);
      r.exclusive = 1;
      rc = call(w->ch, "Create", &r.base);
      break;
    }
    case OP_STAT: {
      Cairn__V1__PathRequest r = CAIRN__V1__PATH_REQUEST__INIT;
      r.path = b(path);
      rc = call(w->ch, "Stat", &r.base);
      break;
    }
    case OP_LIST: {
      Cairn__V1__ListRequest r = CAIRN__V1__LIST_REQUEST__INIT;
      r.path = b("/bench-list");
      r.limit = 1000;
      rc = call(w->ch, "List", &r.base);
      break;
    }
    case OP_RENAME: {
      Cairn__V1__RenameRequest r = CAIRN__V1__RENAME_REQUEST__INIT;
      r.from = b(path);
      r.to = b(to);
      rc = call(w->ch, "Rename", &r.base);
      break;
    }
    case OP_DELETE: {
      Cairn__V1__DeleteRequest r = CAIRN__V1__DELETE_REQUEST__INIT;
      r.path = b(to);
      rc = call(w->ch, "Delete", &r.base);
      break;
    }
    default:
      break;
    }
    if (rc != 0) w->failures++;
  }
  w->ns = cmn_mono_ns() - t0;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_master_ops HOST:PORT SECRET_FILE [ops_per_thread]\n");
    return 2;
  }
  int per = argc > 3 ? atoi(argv[3]) : 1000;
  char *secret;
  if (cmn_rpc_load_secret(argv[2], &secret) != 0) {
    fprintf(stderr, "cannot read secret %s\n", argv[2]);
    return 2;
  }
  cmn_rpc_client_config cc = {.secret = secret};
  struct worker ws[16];
  for (int i = 0; i < 16; i++) {
    memset(&ws[i], 0, sizeof ws[i]);
    if (cmn_rpc_channel_open(argv[1], &cc, &ws[i].ch) != 0) return 1;
  }
  /* The 1,000-entry directory for list, and per-thread directories. */
  Cairn__V1__MkdirRequest mk = CAIRN__V1__MKDIR_REQUEST__INIT;
  mk.parents = 1;
  mk.path = b("/bench-list");
  call(ws[0].ch, "Mkdir", &mk.base);
  for (int i = 0; i < 1000; i++) {
    char p[64];
    snprintf(p, sizeof p, "/bench-list/entry-%04d", i);
    Cairn__V1__CreateRequest r = CAIRN__V1__CREATE_REQUEST__INIT;
    r.path = b(p);
    call(ws[0].ch, "Create", &r.base);
  }
  int levels[2] = {1, 16};
  for (int l = 0; l < 2; l++) {
    int t = levels[l];
    for (int i = 0; i < t; i++) {
      char p[64];
      snprintf(p, sizeof p, "/bench%d/t%02d", t, i);
      mk.path = b(p);
      call(ws[0].ch, "Mkdir", &mk.base);
    }
    for (int op = 0; op < OP_COUNT; op++) {
      pthread_t th[16];
      int ops = op == OP_LIST ? per / 10 : per;
      if (t == 1) ops *= 2;
      for (int i = 0; i < t; i++) {
        ws[i].addr = argv[1];
        ws[i].id = i;
        ws[i].threads = t;
        ws[i].ops = ops;
        ws[i].op = (enum op)op;
        ws[i].failures = 0;
        pthread_create(&th[i], NULL, run, &ws[i]);
      }
      int64_t max_ns = 0;
      long total = 0, failures = 0;
      for (int i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
        if (ws[i].ns > max_ns) max_ns = ws[i].ns;
        total += ws[i].ops;
        failures += ws[i].failures;
      }
      printf("master_%s_per_s_%d_clients %.0f\n", op_names[op], t,
             (double)total / ((double)max_ns / 1e9));
      if (failures) printf("master_%s_failures_%d_clients %ld\n", op_names[op], t, failures);
      fflush(stdout);
    }
  }
  for (int i = 0; i < 16; i++) cmn_rpc_channel_close(ws[i].ch);
  free(secret);
  return 0;
}
