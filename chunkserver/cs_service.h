/*
 * cs_service.h - the dispatch table of cairn.v1.Chunkserver: thin glue
 * from the RPC layer (cmn_rpc.h) to the 2PC layer (cs_twopc.h) and the
 * store. Start the server with
 *
 *   cfg.service = &cairn__v1__chunkserver__descriptor;
 *   cfg.methods = cs_methods; cfg.n_methods = cs_nmethods; cfg.ctx = s;
 *
 * where s is the cs_server (its store, push buffer, leases (cs_twopc_init),
 * peers and master channel set up before the first call).
 *
 * Write, Append, Prepare and SetVersion wait on disks, on other servers and
 * on the chunk mutex, so each runs on a thread of its own and answers from
 * there; Commit, Abort, Outcome and ChunkInfo answer on the RPC worker.
 * After answering, a call's thread touches nothing of the server, so
 * cmn_rpc_server_stop (which waits for every answer) is enough to shut down.
 */
#ifndef CS_SERVICE_H
#define CS_SERVICE_H

#include <stddef.h>

#include "cmn_rpc.h"

extern const cmn_rpc_method cs_methods[];
extern const size_t cs_nmethods;

#endif /* CS_SERVICE_H */
