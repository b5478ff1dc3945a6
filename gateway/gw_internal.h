/*
 * gw_internal.h - glue between the gateway's server, reply and start-up
 * files; handlers use gw.h only.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include "gw.h"

/* server.c: listen with PEM cert/key strings (NULL: plain HTTP). */
int gw_http_start(gw_ctx *gw, const char *cert, const char *key, char *err, size_t errlen);
void gw_http_stop(gw_ctx *gw);

/* reply.c */
void gw_cors_preflight(gw_req *r);
void gw_reply_rate_limited(gw_req *r, int64_t retry_after_ms);
void gw_access_log(gw_ctx *gw, gw_req *r, int aborted);
int gw_metrics_init(gw_ctx *gw);
void gw_metrics_free(gw_ctx *gw);
/* "host:port" -> parts. 0 or CAIRN_EINVAL. */
int gw_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

/* download.c: the cache of small documents' contents (thread-safe). */
int gw_small_cache_new(uint64_t budget, gw_small_cache **out);
void gw_small_cache_free(gw_small_cache *c);

#endif /* GW_INTERNAL_H */
