/* JWT verification for the internal operations API (RFC 7519, RFC 7515 compact form, RFC 8725).
 *
 * The token is hostile until its signature verifies: it is split and its header decoded, the key is
 * chosen by the operator's configuration (the header only names it), the signature is checked over
 * the exact bytes received, and only then is the payload decoded and its claims read. Messages say
 * what is wrong; they show at most a short, sanitised alg or kid, never the token. */
#include "jwt.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define HS256_FILE      "hs256.key"
#define RS256_SUFFIX    ".rs256.pem"
#define ES256_SUFFIX    ".es256.pem"
#define MAX_KEYS        64
#define MAX_KID         63
#define MAX_KEY_FILE    (64 * 1024)
#define MAX_RSA_BITS    16384
#define MAX_LEEWAY      3600
#define HS256_MAC_BYTES 32
#define ES256_SIG_BYTES 64
/* 9999-12-31T23:59:59Z: every time claim is bounded so that no arithmetic on it can overflow */
#define MAX_TIME 253402300799LL

typedef enum jwt_alg { ALG_HS256, ALG_RS256, ALG_ES256 } jwt_alg;
static const char *const alg_names[] = {"HS256", "RS256", "ES256"};

typedef struct jwt_key {
    char kid[MAX_KID + 1];
    jwt_alg alg;
    unsigned char *secret; /* HS256 */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS256, ES256 */
} jwt_key;

struct hks_jwt_keys {
    jwt_key *keys;
    size_t n;
};

/* ---- base64url (RFC 4648 §5, no padding) ---- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    return hks_base64_value(c, true);
}

/* Bound on the characters b64url_encode writes for n bytes. */
#define B64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes B64_LEN(n) characters at most, no NUL; returns how many. */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url_chars[(acc >> bits) & 63];
        }
        acc &= (1U << bits) - 1;
    }
    if (bits > 0)
        out[o++] = b64url_chars[(acc << (6 - bits)) & 63];
    return o;
}

/* Strict decoding: only the base64url alphabet, no padding, canonical trailing bits (so that one
 * value has exactly one encoding). *out is malloc'd (at least one byte). */
static int b64url_decode(const char *in, size_t len, const char *what, unsigned char **out,
                         size_t *out_len, hks_error *err)
{
    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (b64url_value(c) >= 0)
            continue;
        if (c == '=')
            return hks_fail(err, 0, "%s is not base64url: '=' padding is not allowed", what);
        if (c == '+' || c == '/')
            return hks_fail(err, 0, "%s is not base64url: '%c' belongs to standard base64", what,
                            c);
        if (c == ' ' || (c >= '\t' && c <= '\r'))
            return hks_fail(err, 0, "%s is not base64url: whitespace is not allowed", what);
        return hks_fail(err, 0, "%s is not base64url: invalid byte at offset %zu", what, i);
    }
    if (len % 4 == 1)
        return hks_fail(err, 0, "%s is not base64url: impossible length %zu", what, len);
    unsigned char *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return hks_fail(err, ENOMEM, "decode %s", what);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
        acc &= (1U << bits) - 1;
    }
    if (acc != 0) {
        free(buf);
        return hks_fail(err, 0, "%s is not base64url: non-canonical trailing bits", what);
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* ---- helpers ---- */

static int fail_openssl(hks_error *err, const char *what)
{
    unsigned long code = ERR_get_error();
    char detail[256] = "unknown error";
    if (code)
        ERR_error_string_n(code, detail, sizeof(detail));
    ERR_clear_error();
    return hks_fail(err, 0, "%s: %s", what, detail);
}

/* A token-supplied alg or kid, shown only when short and made of harmless characters. */
static const char *shown(const char *s, size_t len)
{
    if (len == 0 || len > 32)
        return "(not shown)";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (b64url_value(c) < 0 && c != '.' && c != '+' && c != ':')
            return "(not shown)";
    }
    return s;
}

static bool valid_kid(const char *s, size_t len)
{
    if (len == 0 || len > MAX_KID)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (b64url_value((unsigned char)s[i]) < 0 && s[i] != '.')
            return false;
    }
    return true;
}

static int check_rules(const hks_jwt_rules *rules, hks_error *err)
{
    if (!rules->issuer || !*rules->issuer)
        return hks_fail(err, EINVAL, "token rules: no issuer configured");
    if (!rules->audience || !*rules->audience)
        return hks_fail(err, EINVAL, "token rules: no audience configured");
    if (rules->leeway_s < 0 || rules->leeway_s > MAX_LEEWAY)
        return hks_fail(err, EINVAL, "token rules: leeway %ld s is outside 0..%d", rules->leeway_s,
                        MAX_LEEWAY);
    if (rules->max_lifetime_s <= 0 || rules->max_lifetime_s > MAX_TIME)
        return hks_fail(err, EINVAL, "token rules: maximum lifetime %ld s must be positive",
                        rules->max_lifetime_s);
    return 0;
}

/* The claim checks shared by verify and mint, so that mint never makes a token verify refuses. */
static int check_sub(const char *s, size_t len, hks_error *err)
{
    if (len == 0 || len > 127)
        return hks_fail(err, 0, "sub must be 1 to 127 bytes, not %zu", len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return hks_fail(err, 0, "sub contains a control character");
    }
    return 0;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int check_project(const char *s, size_t len, hks_error *err)
{
    bool ok = len >= 1 && len <= 63 && is_lower_alnum(s[0]) && is_lower_alnum(s[len - 1]);
    for (size_t i = 0; ok && i < len; i++)
        ok = is_lower_alnum(s[i]) || s[i] == '-';
    if (!ok)
        return hks_fail(err, 0,
                        "project must be 1 to 63 characters of [a-z0-9-] starting and ending "
                        "with a letter or digit");
    return 0;
}

/* RFC 6749 §3.3: scope-tokens of %x21 / %x23-5B / %x5D-7E separated by spaces; may be empty. */
static int check_scope(const char *s, size_t len, hks_error *err)
{
    if (len > 511)
        return hks_fail(err, 0, "scope is longer than 511 bytes");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return hks_fail(err, 0,
                            "scope may only hold printable ASCII scopes separated by spaces");
    }
    return 0;
}

/* ---- keys ---- */

static void key_release(jwt_key *key)
{
    if (key->secret)
        OPENSSL_clear_free(key->secret, key->secret_len);
    EVP_PKEY_free(key->pkey);
    memset(key, 0, sizeof(*key));
}

void hks_jwt_keys_free(hks_jwt_keys *keys)
{
    if (!keys)
        return;
    for (size_t i = 0; i < keys->n; i++)
        key_release(&keys->keys[i]);
    free(keys->keys);
    free(keys);
}

static void key_releasep(jwt_key *key)
{
    key_release(key);
}

size_t hks_jwt_keys_count(const hks_jwt_keys *keys)
{
    return keys ? keys->n : 0;
}

void hks_jwt_key_describe(const hks_jwt_keys *keys, size_t i, const char **kid, const char **alg)
{
    *kid = keys->keys[i].kid;
    *alg = alg_names[keys->keys[i].alg];
}

const char *const *hks_jwt_algorithms(void)
{
    static const char *const names[] = {"HS256", "RS256", "ES256", NULL};
    return names;
}

static int mkdir_parents(const char *dir, hks_error *err)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path))
        return hks_fail(err, ENAMETOOLONG, "key directory '%s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return hks_fail(err, errno, "create key directory %s", path);
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return hks_fail(err, errno, "key directory %s", dir);
    if (!S_ISDIR(st.st_mode))
        return hks_fail(err, ENOTDIR, "key directory %s", dir);
    return 0;
}

int hks_jwt_keys_ensure_local(const char *dir, hks_error *err)
{
    if (!dir)
        return hks_fail(err, EINVAL, "create local token key: no directory");
    if (mkdir_parents(dir, err) < 0)
        return -1;
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/" HS256_FILE, dir) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.hs256.key.XXXXXX", dir) >= (int)sizeof(tmp))
        return hks_fail(err, ENAMETOOLONG, "key directory %s", dir);
    struct stat st;
    if (lstat(path, &st) == 0)
        return 0; /* kept as it is; hks_jwt_keys_load judges it */
    if (errno != ENOENT)
        return hks_fail(err, errno, "stat %s", path);

    unsigned char secret[HKS_JWT_HS256_BYTES];
    if (RAND_bytes(secret, sizeof(secret)) != 1)
        return fail_openssl(err, "create local token key: random bytes");
    /* written aside then linked into place: never a partial key, and a key another process
     * created meanwhile wins */
    cleanup_fd int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        return hks_fail(err, errno, "create %s", tmp);
    }
    int rc = 0;
    if (fchmod(fd, 0600) < 0 || hks_write_all(fd, secret, sizeof(secret)) < 0 || fsync(fd) < 0)
        rc = hks_fail(err, errno, "write %s", tmp);
    else if (link(tmp, path) < 0 && errno != EEXIST)
        rc = hks_fail(err, errno, "create %s", path);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (unlink(tmp) < 0 && rc == 0)
        rc = hks_fail(err, errno, "remove %s", tmp);
    return rc;
}

/* Read a regular file of the key directory (links followed: Kubernetes mounts Secrets that way)
 * into an exactly sized buffer (at least one byte) that the caller releases with
 * OPENSSL_clear_free(*out, *out_len). */
static int read_key_file(int dfd, const char *name, unsigned char **out, size_t *out_len,
                         mode_t *mode, hks_error *err)
{
    *out = NULL;
    *out_len = 0;
    cleanup_fd int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return hks_fail(err, errno, "open %s", name);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "stat %s", name);
    if (!S_ISREG(st.st_mode))
        return hks_fail(err, 0, "%s is not a regular file", name);
    if (st.st_size > MAX_KEY_FILE)
        return hks_fail(err, 0, "%s is larger than %d bytes", name, MAX_KEY_FILE);
    unsigned char *buf = OPENSSL_malloc(MAX_KEY_FILE + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "read %s", name);
    size_t total = 0;
    int rc = 0;
    while (total <= MAX_KEY_FILE) {
        ssize_t n = read(fd, buf + total, MAX_KEY_FILE + 1 - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = hks_fail(err, errno, "read %s", name);
            break;
        }
        if (n == 0)
            break;
        total += (size_t)n;
    }
    if (rc == 0 && total > MAX_KEY_FILE)
        rc = hks_fail(err, 0, "%s is larger than %d bytes", name, MAX_KEY_FILE);
    unsigned char *exact = rc == 0 ? OPENSSL_malloc(total ? total : 1) : NULL;
    if (exact)
        memcpy(exact, buf, total);
    else if (rc == 0)
        rc = hks_fail(err, ENOMEM, "read %s", name);
    OPENSSL_clear_free(buf, MAX_KEY_FILE + 1);
    if (rc < 0)
        return -1;
    *mode = st.st_mode;
    *out_len = total;
    *out = exact;
    return 0;
}

static int load_secret(int dfd, jwt_key *key, hks_error *err)
{
    unsigned char *secret = NULL;
    size_t len = 0;
    mode_t mode = 0;
    if (read_key_file(dfd, HS256_FILE, &secret, &len, &mode, err) < 0)
        return -1;
    /* owned by key from here: key_release frees it on any failure */
    key->secret = secret;
    key->secret_len = len;
    if (mode & 077)
        return hks_fail(err, 0,
                        HS256_FILE " is accessible to group or others (mode %04o): it must be "
                                   "0600 or stricter",
                        (unsigned)(mode & 07777));
    if (len < HKS_JWT_HS256_BYTES)
        return hks_fail(err, 0, HS256_FILE " has %zu bytes, at least %d are required", len,
                        HKS_JWT_HS256_BYTES);
    snprintf(key->kid, sizeof(key->kid), "%s", HKS_JWT_LOCAL_KID);
    key->alg = ALG_HS256;
    return 0;
}

static bool is_p256(EVP_PKEY *pkey)
{
    char group[64];
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1)
        return false;
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid == NID_X9_62_prime256v1;
}

static int load_public_key(int dfd, const char *name, size_t name_len, jwt_alg alg, jwt_key *key,
                           hks_error *err)
{
    if (!valid_kid(name, name_len) ||
        (name_len == strlen(HKS_JWT_LOCAL_KID) && memcmp(name, HKS_JWT_LOCAL_KID, name_len) == 0))
        return hks_fail(err, 0,
                        "key file %s: the key id before the suffix must be 1 to %d characters of "
                        "[A-Za-z0-9._-] and not \"" HKS_JWT_LOCAL_KID "\"",
                        name, MAX_KID);
    const char *file = name;
    unsigned char *buf = NULL;
    size_t len = 0;
    mode_t mode = 0;
    if (read_key_file(dfd, file, &buf, &len, &mode, err) < 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(buf, len);
    if (!pkey) {
        ERR_clear_error();
        return hks_fail(err, 0, "%s holds no PEM public key (-----BEGIN PUBLIC KEY-----)", file);
    }
    key->pkey = pkey; /* released by the caller on failure */
    if (alg == ALG_RS256) {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return hks_fail(err, 0, "%s is not an RSA public key (the name pins RS256)", file);
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048 || bits > MAX_RSA_BITS)
            return hks_fail(err, 0, "%s: RSA key has %d bits, 2048 to %d are required", file, bits,
                            MAX_RSA_BITS);
    } else if (!is_p256(pkey)) {
        return hks_fail(err, 0, "%s is not an EC P-256 public key (the name pins ES256)", file);
    }
    memcpy(key->kid, name, name_len);
    key->kid[name_len] = '\0';
    key->alg = alg;
    return 0;
}

static bool has_suffix(const char *name, const char *suffix, size_t *stem)
{
    size_t n = strlen(name);
    size_t s = strlen(suffix);
    if (n < s || strcmp(name + n - s, suffix) != 0)
        return false;
    *stem = n - s;
    return true;
}

static const jwt_key *find_kid(const hks_jwt_keys *keys, const char *kid, size_t len)
{
    for (size_t i = 0; i < keys->n; i++) {
        if (strlen(keys->keys[i].kid) == len && memcmp(keys->keys[i].kid, kid, len) == 0)
            return &keys->keys[i];
    }
    return NULL;
}

/* Add the keys of d's entries to keys. */
static int load_entries(DIR *d, const char *dir, hks_jwt_keys *keys, hks_error *err)
{
    for (;;) {
        errno = 0;
        const struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                return hks_fail(err, errno, "read key directory %s", dir);
            return 0;
        }
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        __attribute__((cleanup(key_releasep))) jwt_key key = {0};
        size_t stem = 0;
        int rc;
        if (strcmp(name, HS256_FILE) == 0)
            rc = load_secret(dirfd(d), &key, err);
        else if (has_suffix(name, RS256_SUFFIX, &stem))
            rc = load_public_key(dirfd(d), name, stem, ALG_RS256, &key, err);
        else if (has_suffix(name, ES256_SUFFIX, &stem))
            rc = load_public_key(dirfd(d), name, stem, ALG_ES256, &key, err);
        else
            continue;
        if (rc < 0)
            return hks_wrap(err, "key directory %s", dir);
        if (find_kid(keys, key.kid, strlen(key.kid)))
            return hks_fail(err, 0, "key directory %s: two keys have the id '%s'", dir, key.kid);
        if (keys->n == MAX_KEYS)
            return hks_fail(err, 0, "key directory %s: more than %d keys", dir, MAX_KEYS);
        keys->keys[keys->n++] = key;
        memset(&key, 0, sizeof(key)); /* now owned by keys */
    }
}

int hks_jwt_keys_load(const char *dir, hks_jwt_keys **out, hks_error *err)
{
    if (!out || !dir)
        return hks_fail(err, EINVAL, "load token keys: missing argument");
    *out = NULL;
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return hks_fail(err, errno, "open key directory %s", dir);
    hks_jwt_keys *keys = calloc(1, sizeof(*keys));
    if (!keys)
        return hks_fail(err, ENOMEM, "load token keys");
    keys->keys = calloc(MAX_KEYS, sizeof(*keys->keys));
    int rc =
        keys->keys ? load_entries(d, dir, keys, err) : hks_fail(err, ENOMEM, "load token keys");
    if (rc == 0 && keys->n == 0)
        rc = hks_fail(err, 0,
                      "key directory %s has no keys (expected " HS256_FILE ", NAME" RS256_SUFFIX
                      " or NAME" ES256_SUFFIX ")",
                      dir);
    if (rc < 0) {
        hks_jwt_keys_free(keys);
        return -1;
    }
    *out = keys;
    return 0;
}

/* ---- signatures ---- */

static int hs256(const unsigned char *secret, size_t secret_len, const char *data, size_t len,
                 unsigned char mac[HS256_MAC_BYTES], hks_error *err)
{
    size_t mac_len = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len, (const void *)data, len,
                   mac, HS256_MAC_BYTES, &mac_len) ||
        mac_len != HS256_MAC_BYTES)
        return fail_openssl(err, "HMAC-SHA256");
    return 0;
}

static void md_ctx_freep(EVP_MD_CTX **ctx)
{
    EVP_MD_CTX_free(*ctx);
}

static int verify_signature(const jwt_key *key, const char *input, size_t input_len,
                            const unsigned char *sig, size_t sig_len, hks_error *err)
{
    if (key->alg == ALG_HS256) {
        unsigned char mac[HS256_MAC_BYTES];
        if (hs256(key->secret, key->secret_len, input, input_len, mac, err) < 0)
            return -1;
        bool ok = sig_len == sizeof(mac) && CRYPTO_memcmp(mac, sig, sizeof(mac)) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return ok ? 0 : hks_fail(err, 0, "signature does not verify");
    }
    unsigned char *der = NULL;
    int der_len = 0;
    if (key->alg == ALG_ES256) {
        /* JWS carries R || S (RFC 7518 §3.4); OpenSSL wants an ASN.1 DER ECDSA-Sig-Value */
        if (sig_len != ES256_SIG_BYTES)
            return hks_fail(err, 0, "signature does not verify (ES256 needs %d bytes, not %zu)",
                            ES256_SIG_BYTES, sig_len);
        ECDSA_SIG *ecdsa = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, ES256_SIG_BYTES / 2, NULL);
        BIGNUM *s = BN_bin2bn(sig + ES256_SIG_BYTES / 2, ES256_SIG_BYTES / 2, NULL);
        if (!ecdsa || !r || !s || !ECDSA_SIG_set0(ecdsa, r, s)) {
            ECDSA_SIG_free(ecdsa);
            BN_free(r);
            BN_free(s);
            return fail_openssl(err, "ES256 signature");
        }
        der_len = i2d_ECDSA_SIG(ecdsa, &der);
        ECDSA_SIG_free(ecdsa);
        if (der_len <= 0)
            return fail_openssl(err, "ES256 signature");
        sig = der;
        sig_len = (size_t)der_len;
    }
    __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, key->pkey, NULL) != 1) {
        rc = fail_openssl(err, "signature check");
    } else if (EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) != 1) {
        /* 0 is a bad signature, < 0 a malformed one: both are refusals */
        ERR_clear_error();
        rc = hks_fail(err, 0, "signature does not verify");
    } else {
        rc = 0;
    }
    OPENSSL_free(der);
    return rc;
}

/* ---- header and claims ---- */

static int parse_json(const unsigned char *data, size_t len, const char *what, json_t **out,
                      hks_error *err)
{
    json_error_t jerr;
    json_t *json =
        json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!json) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_duplicate_key)
            return hks_fail(err, 0, "%s has a duplicate member", what);
        if (code == json_error_invalid_utf8)
            return hks_fail(err, 0, "%s is not valid UTF-8", what);
        if (code == json_error_numeric_overflow)
            return hks_fail(err, 0, "%s has a number out of range", what);
        if (code == json_error_null_character || code == json_error_null_byte_in_key)
            return hks_fail(err, 0, "%s has a NUL character", what);
        return hks_fail(err, 0, "%s is not valid JSON (at byte %d)", what, jerr.position);
    }
    if (!json_is_object(json)) {
        json_decref(json);
        return hks_fail(err, 0, "%s is not a JSON object", what);
    }
    *out = json;
    return 0;
}

static int select_key(const hks_jwt_keys *keys, json_t *header, const jwt_key **out, hks_error *err)
{
    json_t *alg = json_object_get(header, "alg");
    if (!alg)
        return hks_fail(err, 0, "header has no alg");
    if (!json_is_string(alg))
        return hks_fail(err, 0, "header alg must be a string");
    const char *name = json_string_value(alg);
    size_t name_len = json_string_length(alg);
    if (name_len == 4 && strncasecmp(name, "none", 4) == 0)
        return hks_fail(err, 0, "algorithm none is not accepted");
    size_t a = 0;
    while (a < HKS_ARRAY_LEN(alg_names) &&
           !(name_len == strlen(alg_names[a]) && memcmp(name, alg_names[a], name_len) == 0))
        a++;
    if (a == HKS_ARRAY_LEN(alg_names))
        return hks_fail(err, 0, "algorithm %s is not accepted (only HS256, RS256 and ES256)",
                        shown(name, name_len));
    if (json_object_get(header, "crit"))
        return hks_fail(err, 0, "header crit is not supported");
    json_t *typ = json_object_get(header, "typ");
    if (typ && !(json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0))
        return hks_fail(err, 0, "header typ must be \"JWT\"");

    json_t *kid = json_object_get(header, "kid");
    if (kid) {
        if (!json_is_string(kid))
            return hks_fail(err, 0, "header kid must be a string");
        const char *id = json_string_value(kid);
        size_t id_len = json_string_length(kid);
        const jwt_key *key = valid_kid(id, id_len) ? find_kid(keys, id, id_len) : NULL;
        if (!key)
            return hks_fail(err, 0, "unknown key id %s", shown(id, id_len));
        if (key->alg != (jwt_alg)a)
            return hks_fail(err, 0, "algorithm %s does not match key %s, which is pinned to %s",
                            alg_names[a], key->kid, alg_names[key->alg]);
        *out = key;
        return 0;
    }
    const jwt_key *found = NULL;
    size_t count = 0;
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->keys[i].alg == (jwt_alg)a) {
            found = &keys->keys[i];
            count++;
        }
    }
    if (count == 0)
        return hks_fail(err, 0, "no key is configured for algorithm %s", alg_names[a]);
    if (count > 1)
        return hks_fail(err, 0, "token has no kid and %zu keys use %s", count, alg_names[a]);
    *out = found;
    return 0;
}

/* Whether the JSON string (text, len) is exactly want. */
static bool same(const char *text, size_t len, const char *want)
{
    return text && len == strlen(want) && memcmp(text, want, len) == 0;
}

static int string_claim(json_t *payload, const char *name, const char **value, size_t *len,
                        hks_error *err)
{
    json_t *v = json_object_get(payload, name);
    if (!v)
        return hks_fail(err, 0, "token has no %s claim", name);
    if (!json_is_string(v))
        return hks_fail(err, 0, "%s claim must be a string", name);
    *value = json_string_value(v);
    *len = json_string_length(v);
    return *value ? 0 : hks_fail(err, 0, "%s claim must be a string", name);
}

/* NumericDate as a JSON integer; *present false when absent and not required. */
static int time_claim(json_t *payload, const char *name, bool required, long long *value,
                      bool *present, hks_error *err)
{
    json_t *v = json_object_get(payload, name);
    *present = v != NULL;
    *value = 0;
    if (!v)
        return required ? hks_fail(err, 0, "token has no %s claim", name) : 0;
    if (json_is_real(v))
        return hks_fail(err, 0, "%s claim must be an integer, not a real number", name);
    if (!json_is_integer(v))
        return hks_fail(err, 0, "%s claim must be an integer", name);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > MAX_TIME)
        return hks_fail(err, 0, "%s claim is out of range", name);
    *value = (long long)x;
    return 0;
}

static int check_audience(json_t *payload, const char *audience, hks_error *err)
{
    json_t *aud = json_object_get(payload, "aud");
    if (!aud)
        return hks_fail(err, 0, "token has no aud claim");
    if (json_is_string(aud))
        return same(json_string_value(aud), json_string_length(aud), audience)
                   ? 0
                   : hks_fail(err, 0, "audience mismatch");
    if (!json_is_array(aud))
        return hks_fail(err, 0, "aud claim must be a string or an array of strings");
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return hks_fail(err, 0, "aud claim must be a string or an array of strings");
        if (same(json_string_value(v), json_string_length(v), audience))
            found = true;
    }
    return found ? 0 : hks_fail(err, 0, "audience mismatch");
}

static int check_claims(json_t *payload, const hks_jwt_rules *rules, long long now,
                        hks_jwt_claims *c, hks_error *err)
{
    const char *s = NULL;
    size_t len = 0;
    if (string_claim(payload, "iss", &s, &len, err) < 0)
        return -1;
    if (!same(s, len, rules->issuer))
        return hks_fail(err, 0, "issuer mismatch");
    if (check_audience(payload, rules->audience, err) < 0)
        return -1;

    long long exp = 0, nbf = 0, iat = 0;
    bool present = false, has_nbf = false;
    if (time_claim(payload, "exp", true, &exp, &present, err) < 0 ||
        time_claim(payload, "nbf", false, &nbf, &has_nbf, err) < 0 ||
        time_claim(payload, "iat", true, &iat, &present, err) < 0)
        return -1;
    long long leeway = rules->leeway_s;
    if (exp <= now - leeway)
        return hks_fail(err, 0, "token expired");
    if (has_nbf && nbf > now + leeway)
        return hks_fail(err, 0, "token is not yet valid (nbf)");
    if (iat > now + leeway)
        return hks_fail(err, 0, "token was issued in the future (iat)");
    if (exp <= iat)
        return hks_fail(err, 0, "token expires before it was issued (exp <= iat)");
    if (exp - iat > rules->max_lifetime_s)
        return hks_fail(err, 0, "token lifetime of %lld s exceeds the maximum of %ld s", exp - iat,
                        rules->max_lifetime_s);

    if (string_claim(payload, "sub", &s, &len, err) < 0 || check_sub(s, len, err) < 0)
        return -1;
    memcpy(c->sub, s, len);
    c->sub[len] = '\0';
    if (string_claim(payload, "project", &s, &len, err) < 0 || check_project(s, len, err) < 0)
        return -1;
    memcpy(c->project, s, len);
    c->project[len] = '\0';
    if (string_claim(payload, "scope", &s, &len, err) < 0 || check_scope(s, len, err) < 0)
        return -1;
    memcpy(c->scope, s, len);
    c->scope[len] = '\0';
    c->iat = (long)iat;
    c->nbf = (long)(has_nbf ? nbf : iat);
    c->exp = (long)exp;
    return 0;
}

int hks_jwt_verify(const hks_jwt_keys *keys, const hks_jwt_rules *rules, const char *token,
                   size_t len, time_t now, hks_jwt_claims *out, hks_error *err)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!keys || !rules || !out)
        return hks_fail(err, EINVAL, "verify token: missing argument");
    if (check_rules(rules, err) < 0)
        return -1;
    if ((long long)now < 0 || (long long)now > MAX_TIME)
        return hks_fail(err, EINVAL, "verify token: the clock is out of range");
    if (!token || len == 0)
        return hks_fail(err, 0, "token is empty");
    if (len > HKS_JWT_MAX_TOKEN)
        return hks_fail(err, 0, "token is longer than %d bytes", HKS_JWT_MAX_TOKEN);
    size_t dots[2] = {0, 0};
    size_t n_dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (n_dots < 2)
                dots[n_dots] = i;
            n_dots++;
        }
    }
    if (n_dots != 2)
        return hks_fail(err, 0, "token must have 3 dot-separated segments, not %zu", n_dots + 1);
    const char *h64 = token;
    size_t h64_len = dots[0];
    const char *p64 = token + dots[0] + 1;
    size_t p64_len = dots[1] - dots[0] - 1;
    const char *s64 = token + dots[1] + 1;
    size_t s64_len = len - dots[1] - 1;
    if (h64_len == 0)
        return hks_fail(err, 0, "header segment is empty");
    if (p64_len == 0)
        return hks_fail(err, 0, "payload segment is empty");

    cleanup_free unsigned char *hdr_bytes = NULL;
    size_t hdr_len = 0;
    json_auto_t *header = NULL;
    if (b64url_decode(h64, h64_len, "header", &hdr_bytes, &hdr_len, err) < 0 ||
        parse_json(hdr_bytes, hdr_len, "header", &header, err) < 0)
        return -1;
    const jwt_key *key = NULL;
    if (select_key(keys, header, &key, err) < 0)
        return -1;

    if (s64_len == 0)
        return hks_fail(err, 0, "signature segment is empty");
    cleanup_free unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (b64url_decode(s64, s64_len, "signature", &sig, &sig_len, err) < 0 ||
        verify_signature(key, token, dots[1], sig, sig_len, err) < 0)
        return -1;

    cleanup_free unsigned char *payload_bytes = NULL;
    size_t payload_len = 0;
    json_auto_t *payload = NULL;
    if (b64url_decode(p64, p64_len, "payload", &payload_bytes, &payload_len, err) < 0 ||
        parse_json(payload_bytes, payload_len, "payload", &payload, err) < 0)
        return -1;
    hks_jwt_claims claims = {0};
    if (check_claims(payload, rules, (long long)now, &claims, err) < 0)
        return -1;
    *out = claims;
    return 0;
}

bool hks_jwt_has_scope(const hks_jwt_claims *claims, const char *scope)
{
    if (!claims || !scope)
        return false;
    size_t want = strlen(scope);
    if (want == 0 || memchr(scope, ' ', want))
        return false;
    const char *list = claims->scope;
    size_t n = strnlen(list, sizeof(claims->scope));
    size_t i = 0;
    while (i < n) {
        while (i < n && list[i] == ' ')
            i++;
        size_t start = i;
        while (i < n && list[i] != ' ')
            i++;
        if (i - start == want && memcmp(list + start, scope, want) == 0)
            return true;
    }
    return false;
}

/* ---- minting ---- */

int hks_jwt_mint_hs256(const hks_jwt_keys *keys, const hks_jwt_rules *rules, const char *sub,
                       const char *project, const char *scope, long ttl_s, time_t now, char **token,
                       hks_error *err)
{
    if (token)
        *token = NULL;
    if (!keys || !rules || !sub || !project || !scope || !token)
        return hks_fail(err, EINVAL, "mint token: missing argument");
    if (check_rules(rules, err) < 0)
        return -1;
    const jwt_key *key = find_kid(keys, HKS_JWT_LOCAL_KID, strlen(HKS_JWT_LOCAL_KID));
    if (!key || key->alg != ALG_HS256)
        return hks_fail(err, 0, "mint token: no local HS256 key (" HS256_FILE ")");
    if (ttl_s < 1 || ttl_s > rules->max_lifetime_s)
        return hks_fail(err, 0, "mint token: lifetime %ld s is outside 1..%ld s", ttl_s,
                        rules->max_lifetime_s);
    if ((long long)now < 0 || (long long)now > MAX_TIME - ttl_s)
        return hks_fail(err, 0, "mint token: the clock is out of range");
    if (check_sub(sub, strlen(sub), err) < 0 || check_project(project, strlen(project), err) < 0 ||
        check_scope(scope, strlen(scope), err) < 0)
        return hks_wrap(err, "mint token");

    json_auto_t *claims =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", rules->issuer, "aud",
                  rules->audience, "sub", sub, "project", project, "scope", scope, "iat",
                  (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)now + ttl_s);
    if (!claims)
        return hks_fail(err, 0, "mint token: claims are not valid UTF-8");
    cleanup_free char *payload = json_dumps(claims, JSON_COMPACT);
    if (!payload)
        return hks_fail(err, ENOMEM, "mint token");
    static const char header[] =
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"" HKS_JWT_LOCAL_KID "\"}";
    size_t payload_len = strlen(payload);
    size_t cap =
        B64_LEN(sizeof(header) - 1) + 1 + B64_LEN(payload_len) + 1 + B64_LEN(HS256_MAC_BYTES) + 1;
    cleanup_free char *out = malloc(cap);
    if (!out)
        return hks_fail(err, ENOMEM, "mint token");
    size_t n = b64url_encode((const unsigned char *)header, sizeof(header) - 1, out);
    out[n++] = '.';
    n += b64url_encode((const unsigned char *)payload, payload_len, out + n);
    unsigned char mac[HS256_MAC_BYTES];
    if (hs256(key->secret, key->secret_len, out, n, mac, err) < 0)
        return hks_wrap(err, "mint token");
    out[n++] = '.';
    n += b64url_encode(mac, sizeof(mac), out + n);
    OPENSSL_cleanse(mac, sizeof(mac));
    out[n] = '\0';
    if (n > HKS_JWT_MAX_TOKEN)
        return hks_fail(err, 0, "mint token: the token would be longer than %d bytes",
                        HKS_JWT_MAX_TOKEN);
    *token = steal_pointer(&out);
    return 0;
}
