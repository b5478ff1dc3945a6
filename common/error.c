/*
 * error.c - tables generated from CAIRN_ERRNO_MAP.
 */
#include "cairn_error.h"

#include <stddef.h>

struct err_row {
  int code;
  const char *name;
  const char *msg;
  int grpc;
  int http;
  int retryable;
};

static const struct err_row rows[] = {
#define ERR_ROW_(name, value, msg, grpc, http, retry) {value, #name, msg, grpc, http, retry},
    CAIRN_ERRNO_MAP(ERR_ROW_)
#undef ERR_ROW_
};

#define NROWS (sizeof rows / sizeof rows[0])

/* Codes are dense from -1 downwards, so a lookup is an index; the loop is a
 * fallback that keeps this correct should the list ever get a gap. */
static const struct err_row *find(int code) {
  if (code < 0 && (size_t)(-code) <= NROWS && rows[-code - 1].code == code) return &rows[-code - 1];
  for (size_t i = 0; i < NROWS; i++)
    if (rows[i].code == code) return &rows[i];
  return NULL;
}

const char *cairn_strerror(int code) {
  if (code == 0) return "success";
  const struct err_row *r = find(code);
  return r ? r->msg : "unknown error code";
}

const char *cairn_err_name(int code) {
  if (code == 0) return "OK";
  const struct err_row *r = find(code);
  return r ? r->name : "EUNKNOWN";
}

int cairn_err_to_grpc(int code) {
  if (code == 0) return 0;
  const struct err_row *r = find(code);
  return r ? r->grpc : 2 /* GRPC_STATUS_UNKNOWN */;
}

/* Indexed by grpc_status_code. The forward map is many-to-one, so the way
 * back picks, per gRPC status, the code a caller can act on best. */
static const int from_grpc[17] = {
    [0] = 0,
    [1] = CAIRN_ECANCELED,    /* CANCELLED */
    [2] = CAIRN_EUNKNOWN,     /* UNKNOWN */
    [3] = CAIRN_EINVAL,       /* INVALID_ARGUMENT */
    [4] = CAIRN_ETIMEDOUT,    /* DEADLINE_EXCEEDED */
    [5] = CAIRN_ENOENT,       /* NOT_FOUND */
    [6] = CAIRN_EEXIST,       /* ALREADY_EXISTS */
    [7] = CAIRN_EPERM,        /* PERMISSION_DENIED */
    [8] = CAIRN_ETOOBIG,      /* RESOURCE_EXHAUSTED: gRPC's own use is message size */
    [9] = CAIRN_EPRECOND,     /* FAILED_PRECONDITION */
    [10] = CAIRN_ECONFLICT,   /* ABORTED */
    [11] = CAIRN_ERANGE,      /* OUT_OF_RANGE */
    [12] = CAIRN_EUNIMPL,     /* UNIMPLEMENTED */
    [13] = CAIRN_EINTERNAL,   /* INTERNAL */
    [14] = CAIRN_EUNAVAIL,    /* UNAVAILABLE */
    [15] = CAIRN_ECORRUPT,    /* DATA_LOSS */
    [16] = CAIRN_EAUTH,       /* UNAUTHENTICATED */
};

int cairn_err_from_grpc(int grpc_status) {
  if (grpc_status < 0 || grpc_status > 16) return CAIRN_EUNKNOWN;
  return from_grpc[grpc_status];
}

int cairn_err_http_status(int code) {
  if (code == 0) return 200;
  const struct err_row *r = find(code);
  return r ? r->http : 500;
}

int cairn_err_retryable(int code) {
  const struct err_row *r = find(code);
  return r ? r->retryable : 0;
}

int cairn_err_known(int code) { return code == 0 || find(code) != NULL; }
