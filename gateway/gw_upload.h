/*
 * gw_upload.h - one upload in progress, shared by upload.c (raw bodies,
 * the writer and completion) and multipart.c (multipart/form-data). Owned
 * by its request (r->state) and used only on the request's thread, except
 * for the ring and file, which the writer thread uses too.
 */
#ifndef GW_UPLOAD_H
#define GW_UPLOAD_H

#include <pthread.h>

#include "gw.h"
#include "gw_ring.h"

/* Bytes of multipart framing allowed over max_upload in Content-Length. */
#define GW_MULTIPART_SLACK (64 * 1024)

typedef struct gw_upload {
  gw_ctx *gw;
  int64_t owner;
  char ns[64];
  char ns_id[24];
  char *name;
  char *ctype;
  int overwrite;
  int64_t expected;        /* Content-Length, -1 unknown */
  char id[37];
  char path[300];
  int started;             /* row inserted (bytes may exist) */
  int finished;            /* completed or failed recorded */
  int error;
  cairn_file *file;
  gw_sha256_ctx *sha;
  uint64_t size;
  gw_ring *ring;
  gw_ring_buf *cur;        /* the buffer being filled */
  pthread_t writer;
  int writer_running;
  /* multipart */
  struct MHD_PostProcessor *pp;
  char *form_name;         /* a "name" field seen before the file */
  int file_parts;
  int in_file;
  int mp_error;
  int closing;             /* the request is over: ignore late parts */
} gw_upload;

/* Row + cluster file + writer; see upload.c. 0 or a cairn code. */
int gw_upload_start(gw_upload *u, const char *name, const char *ctype);
/* Append body bytes (sha256, ring). 0 or a cairn code. */
int gw_upload_feed(gw_upload *u, const char *data, size_t n);
/* Mark failed, remove bytes (idempotent). */
void gw_upload_fail(gw_upload *u, int rc, const char *why);
/* The refusal for an upload error. */
void gw_upload_reply_error(gw_req *r, int rc);

/* multipart.c */
int gw_upload_is_multipart(gw_req *r);
int gw_upload_multipart_begin(gw_req *r, gw_upload *u, const char *name);
int gw_upload_multipart_data(gw_req *r, gw_upload *u, const char *buf, size_t n);
int gw_upload_multipart_end(gw_req *r, gw_upload *u);

#endif /* GW_UPLOAD_H */
