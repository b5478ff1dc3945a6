/*
 * cairn_error.h - the one list of cairn error codes.
 *
 * Every function in cairn returns 0 (or a positive count) on success and a
 * negative code from this list on failure, never a mix. The list is an X-macro
 * (libuv's UV_ERRNO_MAP is the model) that generates the enum, the names and
 * messages, and the mappings to gRPC status codes and HTTP statuses, so a new
 * code is added in exactly one place.
 *
 * This header is installed with libcairn and is part of its stable API:
 * codes are never renumbered, only appended.
 *
 * Thread safety: every function here is pure and may be called from any thread.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X(name, value, message, grpc_status, http_status, retryable)
 *
 * grpc_status is the numeric grpc_status_code (kept numeric so this header
 * does not pull in gRPC). Several codes share a gRPC status; a cairn server
 * therefore also sends the exact code in trailing metadata, and only a bare
 * gRPC status (e.g. a deadline raised by the gRPC stack itself) is mapped
 * back through cairn_err_from_grpc.
 * `retryable` says whether the same request may succeed if tried again later.
 */
#define CAIRN_ERRNO_MAP(X)                                                              \
  X(EINVAL,        -1,  "invalid argument",                         3, 400, 0)          \
  X(ENOENT,        -2,  "no such file, directory or chunk",         5, 404, 0)          \
  X(EEXIST,        -3,  "already exists",                           6, 409, 0)          \
  X(ENOTDIR,       -4,  "not a directory",                          9, 409, 0)          \
  X(EISDIR,        -5,  "is a directory",                           9, 409, 0)          \
  X(ENOTEMPTY,     -6,  "directory not empty",                      9, 409, 0)          \
  X(EBADPATH,      -7,  "invalid path",                             3, 400, 0)          \
  X(ENAMETOOLONG,  -8,  "name or path too long",                    3, 400, 0)          \
  X(ENOMEM,        -9,  "out of memory",                            8, 503, 1)          \
  X(EIO,           -10, "input/output error",                       13, 500, 1)         \
  X(ENOSPC,        -11, "no space left on device",                  8, 507, 1)          \
  X(ECHECKSUM,     -12, "checksum mismatch",                        15, 502, 1)         \
  X(ESTALE,        -13, "stale chunk version",                      9, 409, 1)          \
  X(ENOQUORUM,     -14, "write quorum not reached",                 14, 503, 1)         \
  X(EUNAVAIL,      -15, "service unavailable",                      14, 503, 1)         \
  X(ETIMEDOUT,     -16, "deadline exceeded",                        4, 504, 1)          \
  X(EAUTH,         -17, "authentication failed",                    16, 401, 0)         \
  X(EPERM,         -18, "permission denied",                        7, 403, 0)          \
  X(ETOOBIG,       -19, "too large",                                8, 413, 0)          \
  X(EBUSY,         -20, "resource busy, try again",                 8, 503, 1)          \
  X(ECANCELED,     -21, "operation canceled",                       1, 499, 1)          \
  X(EPROTO,        -22, "protocol error",                           3, 400, 0)          \
  X(EUNIMPL,       -23, "not implemented by the peer",              12, 501, 0)         \
  X(EINTERNAL,     -24, "internal error",                           13, 500, 0)         \
  X(ECONFIG,       -25, "invalid configuration",                    3, 400, 0)          \
  X(ENOSERVERS,    -26, "not enough live chunkservers",             14, 503, 1)         \
  X(ENOTPRIMARY,   -27, "not the primary or lease expired",         9, 409, 1)          \
  X(ECORRUPT,      -28, "corrupt data on disk",                     15, 500, 0)         \
  X(ERANGE,        -29, "range not satisfiable",                    11, 416, 0)         \
  X(EMEDIATYPE,    -30, "unsupported media type",                   3, 415, 0)          \
  X(ERATELIMIT,    -31, "rate limit exceeded",                      8, 429, 1)          \
  X(ECONFLICT,     -32, "conflicting concurrent change",            10, 409, 1)         \
  X(ECLOSED,       -33, "connection closed",                        14, 503, 1)         \
  X(ECHUNKFULL,    -34, "record does not fit, retry on next chunk", 11, 409, 1)         \
  X(EREADONLY,     -35, "read-only",                                9, 503, 0)          \
  X(EUNKNOWN,      -36, "unknown error",                            2, 500, 0)          \
  X(EPRECOND,      -37, "precondition failed",                      9, 409, 0)

typedef enum cairn_error {
  CAIRN_OK = 0,
#define CAIRN_ERROR_ENUM_(name, value, msg, grpc, http, retry) CAIRN_##name = (value),
  CAIRN_ERRNO_MAP(CAIRN_ERROR_ENUM_)
#undef CAIRN_ERROR_ENUM_
} cairn_error;

/* "invalid argument" for CAIRN_EINVAL; a fixed text for unknown codes.
 * The returned string is static. */
const char *cairn_strerror(int code);

/* "EINVAL" for CAIRN_EINVAL, "OK" for 0, "EUNKNOWN" for codes not in the list. */
const char *cairn_err_name(int code);

/* gRPC status code (numeric grpc_status_code) for a cairn code; 0 (OK) for 0. */
int cairn_err_to_grpc(int code);

/* cairn code for a gRPC status that did not carry its own cairn code
 * (the closest generic code: NOT_FOUND -> ENOENT, UNAVAILABLE -> EUNAVAIL...);
 * 0 for OK and CAIRN_EUNKNOWN for values outside gRPC's range. */
int cairn_err_from_grpc(int grpc_status);

/* HTTP status for a cairn code; 200 for 0, 500 for unknown codes. */
int cairn_err_http_status(int code);

/* 1 if retrying the same request later may succeed, else 0. */
int cairn_err_retryable(int code);

/* 1 if `code` is 0 or in the list, else 0. */
int cairn_err_known(int code);

#ifdef __cplusplus
}
#endif
#endif /* CAIRN_ERROR_H */
