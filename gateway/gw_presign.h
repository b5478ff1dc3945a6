/*
 * gw_presign.h - presigned links: a URL that grants one method on one
 * document until a time, to whoever holds it, without a token.
 *
 *   signature = base64url(HMAC-SHA256(key, "<method>\n<doc_id>\n<expires_s>"))
 *
 * with expires_s in decimal. Neither method nor doc_id may contain a
 * newline, so no two different (method, doc_id, expires) share a message.
 * The key is a subkey for this purpose only (gw_derive_key).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef GW_PRESIGN_H
#define GW_PRESIGN_H

#include <stddef.h>
#include <stdint.h>

/* Characters of a signature, without the NUL. */
#define GW_PRESIGN_SIG_LEN 43
/* Longest method and document id accepted, in bytes. */
#define GW_PRESIGN_METHOD_MAX 16
#define GW_PRESIGN_ID_MAX 256

/* Write the signature for (method, doc_id, expires_s) into sig, NUL
 * terminated (siglen >= GW_PRESIGN_SIG_LEN + 1 = 44). Returns
 * GW_PRESIGN_SIG_LEN, or CAIRN_EINVAL (NULL arguments, empty or overlong
 * method or doc_id, or one holding a newline), CAIRN_ETOOBIG (sig too
 * small); sig is untouched on error. */
int gw_presign_make(const uint8_t key[32], const char *method, const char *doc_id,
                    int64_t expires_s, char *sig, size_t siglen);

/* Check a link's signature, then its expiry against now_s (Unix seconds).
 * Returns 0 when the signature matches (constant-time compare) and
 * expires_s > now_s. Otherwise CAIRN_EPERM: for a signature that is
 * malformed or does not match (including any method or doc_id
 * gw_presign_make would refuse) *expired is 0; for a valid signature whose
 * time has passed *expired is 1, so the caller can say "link expired"
 * rather than "link invalid". `expired` may be NULL; it is always set when
 * given. CAIRN_EINVAL when key is NULL. */
int gw_presign_check(const uint8_t key[32], const char *method, const char *doc_id,
                     int64_t expires_s, const char *sig, int64_t now_s, int *expired);

#endif /* GW_PRESIGN_H */
