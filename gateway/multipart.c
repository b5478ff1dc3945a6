/*
 * multipart.c - multipart/form-data uploads (an HTML form, `curl -F
 * file=@x`): libmicrohttpd's post processor splits the body; the one file
 * part streams into the upload like a raw body. A "name" field before the
 * file names the document (else the ?name= parameter, else the file
 * name); the part's Content-Type is kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_upload.h"

#define FIELD_MAX 1024

int gw_upload_is_multipart(gw_req *r) {
  const char *ct = gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size) {
  (void)kind;
  (void)transfer_encoding;
  gw_upload *u = cls;
  if (u->closing) {
    return MHD_NO;
  }
  if (filename == NULL) {
    /* A plain field: only "name" means something, and only before the file. */
    if (key && strcmp(key, "name") == 0 && u->file_parts == 0) {
      size_t have = u->form_name ? strlen(u->form_name) : 0;
      if (have + size > FIELD_MAX) {
        u->mp_error = CAIRN_EINVAL;
        return MHD_NO;
      }
      u->form_name = cmn_realloc(u->form_name, have + size + 1);
      memcpy(u->form_name + have, data, size);
      u->form_name[have + size] = '\0';
    }
    return MHD_YES;
  }
  /* A part's first piece comes at offset 0; so does every later part's. */
  if (off == 0 && u->in_file && (u->size > 0 || size > 0)) {
    u->mp_error = CAIRN_EINVAL; /* one document per request */
    return MHD_NO;
  }
  if (off == 0 && !u->in_file) {
    u->file_parts++;
    u->in_file = 1;
    const char *name = u->form_name && *u->form_name ? u->form_name : u->name;
    if (name == NULL || *name == '\0') {
      name = filename;
    }
    const char *ct = content_type && *content_type ? content_type : "application/octet-stream";
    int rc = gw_upload_start(u, name, ct);
    if (rc < 0) {
      u->mp_error = rc;
      return MHD_NO;
    }
  }
  if (size > 0) {
    int rc = gw_upload_feed(u, data, size);
    if (rc < 0) {
      u->mp_error = rc;
      return MHD_NO;
    }
  }
  return MHD_YES;
}

int gw_upload_multipart_begin(gw_req *r, gw_upload *u, const char *name) {
  if (name && *name) {
    u->name = cmn_strdup(name);
  }
  u->expected = -1; /* the file's own size is not known */
  u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, u);
  if (u->pp == NULL) {
    CMN_INFO("gw.upload", "bad_multipart id=%s content_type=\"%s\"", r->id,
             gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE));
    gw_reply_error(r, 400, "invalid", "bad multipart/form-data (no boundary?)");
    return 1;
  }
  return 0;
}

int gw_upload_multipart_data(gw_req *r, gw_upload *u, const char *buf, size_t n) {
  (void)r;
  if (MHD_post_process(u->pp, buf, n) != MHD_YES) {
    return u->mp_error ? u->mp_error : CAIRN_EINVAL;
  }
  return 0;
}

int gw_upload_multipart_end(gw_req *r, gw_upload *u) {
  (void)r;
  if (u->file_parts == 0) {
    return CAIRN_EPROTO;
  }
  return u->mp_error;
}
