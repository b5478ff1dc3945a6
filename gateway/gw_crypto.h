/*
 * gw_crypto.h - the gateway's cryptographic building blocks: base64url,
 * SHA-256 (one-shot and streaming), HMAC-SHA256, random tokens, key
 * derivation, a keyed hash for in-memory tables, and argon2id password
 * hashes.
 *
 * Hashes and MACs come from OpenSSL (EVP / HMAC / RAND_bytes), password
 * hashing from libargon2; nothing here reimplements a primitive except
 * base64url (a few lines, strict in ways library decoders are not) and
 * SipHash (a table hash, not a MAC exposed to clients).
 *
 * Hex: use cmn_hex_encode / cmn_hex_decode from cmn_util.h.
 *
 * Thread safety: every function may be called from any thread. A
 * gw_sha256_ctx belongs to one thread at a time.
 */
#ifndef GW_CRYPTO_H
#define GW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* Characters of base64url (no padding) for n bytes, without the NUL. */
#define GW_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))

/* Largest PHC string gw_password_hash produces for any parameters, NUL included. */
#define GW_PASSWORD_HASH_MAX 128
/* Longest password accepted, in bytes. */
#define GW_PASSWORD_MAX 1024

/* Encode n bytes of `in` as base64url without padding into `out`, NUL
 * terminated. Returns the characters written (without the NUL), or
 * CAIRN_ETOOBIG when outlen < GW_B64URL_LEN(n) + 1 (out untouched), or
 * CAIRN_EINVAL when in or out is NULL with a non-zero size. */
int gw_b64url_encode(const void *in, size_t n, char *out, size_t outlen);

/* Strictly decode n characters of base64url: no padding, no whitespace,
 * only [A-Za-z0-9_-], no length of the form 4k+1, and the unused low bits
 * of the last character must be zero (so every byte string has exactly
 * one accepted encoding). No NUL is added. Returns the bytes written, or
 * CAIRN_EINVAL for malformed input, CAIRN_ETOOBIG when outlen is too
 * small; on any error `out` is untouched. */
int gw_b64url_decode(const char *in, size_t n, void *out, size_t outlen);

/* SHA-256 of n bytes. Aborts only if OpenSSL cannot allocate. */
void gw_sha256(const void *d, size_t n, uint8_t out[32]);

/* HMAC-SHA256(key, d). Any key length (keys over 64 bytes are hashed
 * first, as HMAC specifies). Aborts only if OpenSSL cannot allocate. */
void gw_hmac_sha256(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32]);

/* Streaming SHA-256 (uploads hash their bytes as they pass). */
typedef struct gw_sha256_ctx gw_sha256_ctx;

/* A new context ready for updates; never NULL (aborts on out of memory).
 * The caller frees it with gw_sha256_free. */
gw_sha256_ctx *gw_sha256_new(void);
/* Add n bytes (d may be NULL when n is 0). */
void gw_sha256_update(gw_sha256_ctx *c, const void *d, size_t n);
/* Write the digest of everything updated so far and reset the context, so
 * it may hash a new message. */
void gw_sha256_final(gw_sha256_ctx *c, uint8_t out[32]);
/* NULL is fine. */
void gw_sha256_free(gw_sha256_ctx *c);

/* Fill buf with n bytes from OpenSSL's CSPRNG. 0 or CAIRN_EIO. */
int gw_random_bytes(void *buf, size_t n);

/* `prefix` (may be NULL for none) followed by base64url of 32 random bytes,
 * e.g. "cat_" + 43 characters. Returns the length written (NUL added), or
 * CAIRN_ETOOBIG when out cannot hold it (untouched), CAIRN_EINVAL when out
 * is NULL, or CAIRN_EIO. */
int gw_random_token(const char *prefix, char *out, size_t outlen);

/* A 32-byte subkey for one purpose: HMAC-SHA256(master, label). Different
 * labels give independent keys, so one secret can serve several uses. */
void gw_derive_key(const void *master, size_t n, const char *label, uint8_t out[32]);

/* SipHash-2-4 of n bytes under a 16-byte key: a fast hash for in-memory
 * tables whose keys clients influence, which a random key keeps from
 * being forced into one bucket. Not a MAC for anything that leaves the
 * process. */
uint64_t gw_siphash(const uint8_t key[16], const void *d, size_t n);

typedef struct gw_argon2_params {
  uint32_t m_kib;   /* memory, KiB; at least 8 per lane */
  uint32_t t_cost;  /* passes, >= 1 */
  uint32_t lanes;   /* parallelism, 1..16 */
} gw_argon2_params;

/* Hash a password with argon2id, a fresh 16-byte random salt and a 32-byte
 * tag, as a PHC string "$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>" in
 * out (GW_PASSWORD_HASH_MAX bytes always suffice). The call takes about as
 * long and as much memory as the parameters say: run it on a thread that
 * may block. Returns 0, or CAIRN_EINVAL (password over GW_PASSWORD_MAX
 * bytes, NULL arguments, parameters argon2 refuses), CAIRN_ETOOBIG (out
 * too small), CAIRN_ENOMEM (argon2 could not get its memory),
 * CAIRN_EIO (no randomness) or CAIRN_EINTERNAL; out is untouched on error. */
int gw_password_hash(const gw_argon2_params *p, const char *pw, size_t n, char *out,
                     size_t outlen);

/* Check a password against a string made by gw_password_hash, with the
 * parameters recorded in it and a constant-time tag compare. Returns 0 when
 * it matches, CAIRN_EAUTH when it does not (a password over GW_PASSWORD_MAX
 * bytes never matches and is refused at once), CAIRN_EINVAL when `encoded`
 * is not an argon2id PHC string with a 32-byte tag (or records parameters
 * argon2 refuses),
 * CAIRN_ENOMEM when argon2 could not get the memory the string asks for,
 * CAIRN_EINTERNAL on misuse of libargon2 (a bug). Like hashing, this
 * blocks for the time and memory recorded in `encoded`. */
int gw_password_verify(const char *encoded, const char *pw, size_t n);

#endif /* GW_CRYPTO_H */
