/*
 * gw_jwt.h - HS256 JSON Web Tokens (RFC 7519) for the gateway's access
 * tokens: header {"alg":"HS256","typ":"JWT"}, a fixed set of claims,
 * HMAC-SHA256 under a 32-byte key (derived with gw_derive_key).
 *
 * Only what the gateway itself issues is accepted: HS256 and nothing else
 * (never "none", never an algorithm the token names for itself), exactly
 * the claim types below, and a signature checked before any JSON of the
 * token is parsed.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <stddef.h>
#include <stdint.h>

/* Longest token gw_jwt_verify looks at, in characters. */
#define GW_JWT_MAX 4096

typedef struct gw_jwt_claims {
  int64_t sub;      /* user id */
  char sid[40];     /* session id, NUL terminated (at most 39 bytes) */
  char typ[16];     /* token kind, e.g. "access" (at most 15 bytes) */
  char scope[64];   /* "" for all, or space separated, e.g. "read write" */
  int64_t iat, exp; /* issued at, expires at: Unix seconds */
} gw_jwt_claims;

/* Sign the claims into out as "<header>.<payload>.<signature>", NUL
 * terminated (GW_JWT_MAX + 1 bytes always suffice). An empty scope is left
 * out of the payload. Returns the token's length, or CAIRN_EINVAL (NULL
 * arguments; sid, typ or scope not NUL terminated within their arrays, or
 * not valid UTF-8), CAIRN_ETOOBIG (out too small); out is
 * untouched on error. */
int gw_jwt_sign(const uint8_t key[32], const gw_jwt_claims *c, char *out, size_t outlen);

/* Verify a token made by gw_jwt_sign under `key` and not yet expired at
 * now_s (Unix seconds): at most GW_JWT_MAX characters, exactly three
 * strict base64url parts, a signature that matches (constant-time
 * compare), a header with alg "HS256" (typ, if present, "JWT"; no "crit"),
 * a payload object with integer sub, string sid (< 40 bytes), string typ
 * (< 16), optional string scope (< 64), integer iat and exp, and
 * exp > now_s. Strings holding a NUL are refused; other claims are
 * ignored. Returns 0 with the claims in *out, or CAIRN_EAUTH for anything
 * wrong with the token (*out untouched), or CAIRN_EINVAL when key or out
 * is NULL. */
int gw_jwt_verify(const uint8_t key[32], const char *token, int64_t now_s, gw_jwt_claims *out);

#endif /* GW_JWT_H */
