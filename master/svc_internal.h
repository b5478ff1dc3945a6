/*
 * svc_internal.h - shared by the master's RPC service files.
 */
#ifndef MST_SVC_INTERNAL_H
#define MST_SVC_INTERNAL_H

#include "mst_master.h"

/*
 * A reply held back until the operation-log record of the mutation it
 * answers is durable. `msg` points at one of the union members, whose
 * strings point into `path`/`path2`.
 */
typedef struct mst_deferred {
  cmn_rpc_call *call;
  ProtobufCMessage *msg;
  union {
    Cairn__V1__FileInfoReply info;
    Cairn__V1__Empty empty;
    Cairn__V1__DeleteReply del;
    Cairn__V1__PrepareWriteReply prep;
  } u;
  Cairn__V1__FileInfo info;
  cmn_buf path;
  cmn_buf path2;
  void *extra; /* freed with the deferred reply */
} mst_deferred;

mst_deferred *mst_deferred_new(cmn_rpc_call *call);
/* mst_durable_fn: send the reply (status 0) or fail it, then free. */
void mst_deferred_send(void *arg, int status);
/* Fail at once with `code` and free. */
void mst_deferred_fail(mst_deferred *d, int code, const char *what);

void mst_fill_info(Cairn__V1__FileInfo *fi, const mst_ns_info *in, const char *path);

void mst_mutate_with_ids(mst_master *m, mst_deferred *d, Cairn__V1__OplogRecord *rec,
                         uint64_t *first_id,
                         void (*then)(mst_master *, mst_deferred *, const Cairn__V1__OplogRecord *),
                         const char *what);

#endif
