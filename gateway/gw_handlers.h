/*
 * gw_handlers.h - every route handler of the gateway, by file. The table
 * that maps method and path to them is in routes.c. Handlers run on the
 * connection's thread and reply exactly once (gw.h).
 */
#ifndef GW_HANDLERS_H
#define GW_HANDLERS_H

#include "gw.h"

/* health.c */
void gw_h_health(gw_req *r);
void gw_h_metrics(gw_req *r);

/* auth.c: /v1/auth/..., /v1/me */
void gw_h_register(gw_req *r);
void gw_h_token(gw_req *r);
void gw_h_refresh(gw_req *r);
void gw_h_logout(gw_req *r);
void gw_h_me(gw_req *r);

/* tokens.c: /v1/tokens */
void gw_h_tokens_list(gw_req *r);
void gw_h_tokens_create(gw_req *r);
void gw_h_tokens_revoke(gw_req *r);

/* namespaces.c: /v1/namespaces */
void gw_h_ns_list(gw_req *r);
void gw_h_ns_create(gw_req *r);
void gw_h_ns_get(gw_req *r);
void gw_h_ns_patch(gw_req *r);
void gw_h_ns_delete(gw_req *r);

/* shares.c: /v1/namespaces/{ns}/shares and /v1/document/{id}/shares */
void gw_h_ns_share_list(gw_req *r);
void gw_h_ns_share_add(gw_req *r);
void gw_h_ns_share_remove(gw_req *r);
void gw_h_doc_share_list(gw_req *r);
void gw_h_doc_share_add(gw_req *r);
void gw_h_doc_share_remove(gw_req *r);

/* documents.c: metadata, listing, deletion, links */
void gw_h_doc_list(gw_req *r);
void gw_h_doc_get(gw_req *r);
void gw_h_doc_delete(gw_req *r);
void gw_h_doc_presign(gw_req *r);

/* upload.c: POST /v1/document (raw or multipart) and PUT /v1/ns/{ns}/{name} */
int gw_h_upload_begin(gw_req *r);
int gw_h_upload_data(gw_req *r, const char *buf, size_t n);
void gw_h_upload_end(gw_req *r);
int gw_h_put_begin(gw_req *r);

/* download.c: GET /v1/document/{id}/download and GET /v1/ns/{ns}/{name} */
void gw_h_download(gw_req *r);
void gw_h_path_get(gw_req *r);
void gw_h_path_delete(gw_req *r);

#endif /* GW_HANDLERS_H */
