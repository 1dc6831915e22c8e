/* Bearer tokens of the internal operations API: JWTs verified per RFC 8725 (JWT BCP).
 *
 * Every key is pinned to exactly one algorithm by its file name, so a token can never choose how
 * it is checked: "none" and every algorithm but HS256, RS256 and ES256 are refused, and a header
 * alg that differs from the selected key's algorithm is refused (no RS256 -> HS256 confusion with
 * the public key as HMAC secret). Keys come only from the key directory; "jwk", "jku", "x5u" and
 * "x5c" header members are never consulted.
 *
 * Threads: a loaded hks_jwt_keys is immutable; verify, has_scope and mint may run concurrently on
 * it. */
#ifndef HKS_API_JWT_H
#define HKS_API_JWT_H

#include "../common/common.h"

#include <stdbool.h>
#include <time.h>

#define HKS_JWT_MAX_TOKEN   8192 /* bytes, the whole compact serialization */
#define HKS_JWT_HS256_BYTES 32   /* size of the secret hks_jwt_keys_ensure_local creates */
#define HKS_JWT_LOCAL_KID   "local"

typedef struct hks_jwt_keys hks_jwt_keys;

/* Create dir (0700, with missing parents) and a random 32-byte HS256 secret dir/hs256.key (0600)
 * if missing. An existing key is kept as it is. */
int hks_jwt_keys_ensure_local(const char *dir, hks_error *err);

/* Load the verification keys of dir: hs256.key (HS256 secret, raw bytes used verbatim, refused if
 * group/world accessible or < 32 bytes), NAME.rs256.pem (RSA public key, >= 2048 bits) and
 * NAME.es256.pem (EC P-256 public key), both "BEGIN PUBLIC KEY" PEM. The algorithm is pinned per
 * key by its file name; the key id (JWT header "kid") is NAME ([A-Za-z0-9._-], 1..63 chars, not
 * "local"), "local" for hs256.key. Hidden files and other names are ignored. At least one key is
 * required. */
int hks_jwt_keys_load(const char *dir, hks_jwt_keys **out, hks_error *err);
void hks_jwt_keys_free(hks_jwt_keys *keys);
/* Number of keys loaded. */
size_t hks_jwt_keys_count(const hks_jwt_keys *keys);
/* The key id and pinned algorithm of key i (< hks_jwt_keys_count), for reports. */
void hks_jwt_key_describe(const hks_jwt_keys *keys, size_t i, const char **kid, const char **alg);
/* The algorithms a token may name, NULL-terminated: "HS256", "RS256", "ES256". */
const char *const *hks_jwt_algorithms(void);

typedef struct hks_jwt_rules {
    const char *issuer;   /* required "iss" */
    const char *audience; /* must be "aud" or one element of it */
    long leeway_s;        /* clock skew allowed on exp, nbf and iat (0..3600) */
    long max_lifetime_s;  /* largest exp - iat accepted (> 0) */
} hks_jwt_rules;

typedef struct hks_jwt_claims {
    char sub[128];
    char project[64];
    char scope[512];
    long iat, nbf, exp; /* nbf is iat when the token has none */
} hks_jwt_claims;

/* Verify token (len bytes, need not be NUL-terminated) per RFC 8725: header alg must be HS256,
 * RS256 or ES256 and equal the selected key's pinned alg (key chosen by "kid" when present, else
 * the only key of that alg); "crit" rejected; "typ" if present must be "JWT"; signature checked
 * with OpenSSL; claims: iss == rules.issuer, aud (string or array) contains rules.audience, exp
 * required and > now - leeway, nbf (if present) <= now + leeway, iat required and <= now + leeway,
 * 0 < exp - iat <= max_lifetime_s; sub (1..127 chars), project (1..63 chars, [a-z0-9-], starting
 * and ending alphanumeric) and scope (printable ASCII, space-separated, may be empty) required.
 * Numbers must be JSON integers; JSON is parsed with duplicate keys rejected; base64url strictly
 * (no padding, no '+', '/' or whitespace, canonical trailing bits); at most HKS_JWT_MAX_TOKEN
 * bytes. The signature is checked before the claims are parsed. err->msg says what is wrong
 * without echoing the token. On failure *out is zeroed. Returns 0 or -1. */
int hks_jwt_verify(const hks_jwt_keys *keys, const hks_jwt_rules *rules, const char *token,
                   size_t len, time_t now, hks_jwt_claims *out, hks_error *err);

/* Whether the space-separated scope list contains exactly this scope. */
bool hks_jwt_has_scope(const hks_jwt_claims *claims, const char *scope);

/* Mint an HS256 token with the local key (kid "local", typ "JWT"): iss, aud from rules, sub,
 * project, scope (checked as verify checks them), iat = nbf = now, exp = now + ttl_s (ttl_s must
 * be 1..rules.max_lifetime_s). *token is malloc'd and NUL-terminated. Returns 0 or -1. */
int hks_jwt_mint_hs256(const hks_jwt_keys *keys, const hks_jwt_rules *rules, const char *sub,
                       const char *project, const char *scope, long ttl_s, time_t now, char **token,
                       hks_error *err);

#endif
