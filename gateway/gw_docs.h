/*
 * gw_docs.h - what the document files of the gateway share: the document
 * row as C and as JSON, lookups, the access check that replies on refusal,
 * and the small-document cache. Used by documents.c, upload.c and
 * download.c; all functions run on a request's thread.
 */
#ifndef GW_DOCS_H
#define GW_DOCS_H

#include "gw.h"

/* The columns gw_doc_from_row and gw_doc_json read, in this order, from
 * "documents d JOIN namespaces n ON n.id = d.namespace_id". */
#define GW_DOC_COLS                                                                        \
  "d.id, n.name, d.name, d.content_type, d.size, coalesce(d.sha256, ''), d.upload_status, " \
  "d.owner_id, " GW_SQL_TS("d.created_at") ", " GW_SQL_TS("d.updated_at") ", d.cluster_path, " \
  "coalesce(d.error, '')"
#define GW_DOC_FROM "documents d JOIN namespaces n ON n.id = d.namespace_id"

typedef struct gw_doc {
  char id[37];
  char ns[64];
  char *name;
  char *content_type;
  int64_t size;
  char sha256[65];
  char status[12];
  int64_t owner;
  char *cluster_path;
} gw_doc;

/* Fill `d` from row `row` of a GW_DOC_COLS result (strings copied). */
void gw_doc_from_row(const PGresult *res, int row, gw_doc *d);
void gw_doc_clear(gw_doc *d);
/* The JSON of a document (a new reference). */
json_t *gw_doc_json(const PGresult *res, int row);

/* Load a document by id (any status). 0, CAIRN_ENOENT, or a database error. */
int gw_doc_load(gw_ctx *gw, const char *id, gw_doc *out);
/* The id of the completed document `name` of namespace `ns`. 0, CAIRN_ENOENT
 * or a database error. */
int gw_doc_find(gw_ctx *gw, const char *ns, const char *name, char id[37]);

/* May the requester do `need` (GW_PERM_*) on document `id`? Returns 0 when
 * allowed; otherwise replies (401 anonymous, 404 no access at all, 403 some
 * access but not this, 503 database) and returns 1. */
int gw_doc_access(gw_req *r, const char *id, unsigned need);

/* Delete document `id` (access already checked): its row, then its bytes.
 * Replies 204 or an error. */
void gw_doc_delete(gw_req *r, const char *id);

/* Send document `id` (access already checked), honouring Range,
 * If-None-Match and ?inline=1. */
void gw_doc_serve(gw_req *r, const char *id);

/* Parse a Range header for a document of `size` bytes: 1 with the one
 * satisfiable range in start/len; 0 when absent, malformed or multi-range
 * (serve the whole document); CAIRN_ERANGE when unsatisfiable (416). */
int gw_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len);

/* The small-document cache (smallcache.c): contents of documents up to
 * GW_SMALL_MAX bytes, keyed by id, bounded by the configured budget, each
 * entry kept at most cache_ttl. Thread-safe. */
#define GW_SMALL_MAX (64 * 1024)
typedef struct gw_small_doc {
  char *data;
  size_t len;
  char *content_type;
  char *name;
  char sha256[65];
} gw_small_doc;
/* 1 and a copy in *out (free with gw_small_doc_clear) on a hit, else 0. */
int gw_small_get(gw_small_cache *c, const char *id, int64_t ttl_ms, gw_small_doc *out);
void gw_small_put(gw_small_cache *c, const char *id, const gw_small_doc *doc);
void gw_small_remove(gw_small_cache *c, const char *id);
void gw_small_doc_clear(gw_small_doc *d);

#endif /* GW_DOCS_H */
