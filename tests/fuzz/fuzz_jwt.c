/* libFuzzer target: bearer tokens (the first bytes any API caller controls). Verification must
 * bound everything, never crash, never read past the length given, and accept only tokens it can
 * stand behind. Keys: a fixed HS256 secret (the seeds are signed with it), plus an RS256 and an
 * ES256 key made once so that their header and signature paths are reached too. */
#include "api/jwt.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* 32 bytes; tests/fuzz/corpus/jwt/valid-* are HS256 tokens signed with it at FUZZ_NOW */
#define FUZZ_SECRET "hks-fuzz-secret-0123456789abcdef"
#define FUZZ_NOW    ((time_t)1700000000)

static const hks_jwt_rules rules = {
    .issuer = "https://hks.test", .audience = "hksd", .leeway_s = 30, .max_lifetime_s = 900};
static hks_jwt_keys *keys;

static int write_public(const char *dir, const char *name, const char *type, const void *arg)
{
    EVP_PKEY *pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)2048)
                                              : EVP_PKEY_Q_keygen(NULL, NULL, type, arg);
    if (!pkey)
        return -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    BIO *bio = BIO_new_file(path, "w");
    int rc = bio && PEM_write_bio_PUBKEY(bio, pkey) == 1 ? 0 : -1;
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return rc;
}

static void remove_file(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

static int setup(void)
{
    char dir[] = "/tmp/hks-fuzz-jwt-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/hs256.key", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = -1;
    hks_error err = {0};
    if (fd >= 0 && write(fd, FUZZ_SECRET, strlen(FUZZ_SECRET)) == (ssize_t)strlen(FUZZ_SECRET) &&
        write_public(dir, "rsa1.rs256.pem", "RSA", NULL) == 0 &&
        write_public(dir, "ec1.es256.pem", "EC", "P-256") == 0)
        rc = hks_jwt_keys_load(dir, &keys, &err);
    if (fd >= 0)
        close(fd);
    remove_file(dir, "hs256.key");
    remove_file(dir, "rsa1.rs256.pem");
    remove_file(dir, "ec1.es256.pem");
    rmdir(dir);
    if (rc < 0)
        fprintf(stderr, "fuzz_jwt setup: %s\n", err.msg);
    return rc;
}

static bool valid_project(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!keys && setup() < 0)
        __builtin_trap();
    hks_error err = {0};
    hks_jwt_claims claims;
    int rc = hks_jwt_verify(keys, &rules, (const char *)data, size, FUZZ_NOW, &claims, &err);
    if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
        __builtin_trap();
    if (rc == 0) {
        /* what verification accepted is what the API would authorise with */
        size_t sub_len = strnlen(claims.sub, sizeof(claims.sub));
        if (sub_len == 0 || sub_len == sizeof(claims.sub) || !valid_project(claims.project) ||
            strnlen(claims.scope, sizeof(claims.scope)) == sizeof(claims.scope))
            __builtin_trap();
        if (claims.exp <= FUZZ_NOW - rules.leeway_s || claims.iat > FUZZ_NOW + rules.leeway_s ||
            claims.nbf > FUZZ_NOW + rules.leeway_s ||
            claims.exp - claims.iat > rules.max_lifetime_s)
            __builtin_trap();
        (void)hks_jwt_has_scope(&claims, "functions:read");
    } else if (claims.sub[0] || claims.project[0] || claims.exp) {
        __builtin_trap(); /* nothing of a refused token is handed out */
    }
    return 0;
}
