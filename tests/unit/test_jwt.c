/* Bearer tokens: every RFC 8725 rule hks_jwt_verify enforces, each with the message it gives.
 * Test tokens are built and signed here with OpenSSL directly (not with api/jwt.c), so that the
 * encoder and the verifier do not share mistakes. */
#include "tests/unit/helpers.h"

#include "api/jwt.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define NOW ((time_t)1700000000)

static const hks_jwt_rules rules = {
    .issuer = "https://hks.test", .audience = "hksd", .leeway_s = 30, .max_lifetime_s = 900};

static struct {
    char dir[64];
    hks_jwt_keys *keys;
    unsigned char secret[32]; /* dir/hs256.key */
    EVP_PKEY *rsa;            /* private half of dir/rsa1.rs256.pem */
    EVP_PKEY *ec;             /* private half of dir/ec1.es256.pem */
    char *rsa_pem;            /* the public PEM bytes, for algorithm confusion */
} fx;

typedef struct signer {
    const unsigned char *secret; /* HMAC-SHA256 with these bytes, or */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS256 / ES256 with this private key, or neither: no signature */
} signer;

/* ---- token building ---- */

static char *b64url(const void *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    assert_non_null(out);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    assert_true(n >= 0);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char c = out[i];
        if (c == '=')
            break;
        out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

static char *sign_b64(const signer *s, const char *input)
{
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    if (s->secret) {
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->secret, s->secret_len,
                                  (const unsigned char *)input, strlen(input), sig, sizeof(sig),
                                  &sig_len));
    } else if (s->pkey) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_non_null(ctx);
        assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, s->pkey, NULL), 1);
        assert_int_equal(
            EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)), 1);
        EVP_MD_CTX_free(ctx);
        if (EVP_PKEY_is_a(s->pkey, "EC")) {
            /* DER ECDSA-Sig-Value -> JOSE R || S */
            const unsigned char *p = sig;
            ECDSA_SIG *ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
            assert_non_null(ecdsa);
            unsigned char raw[64];
            assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), raw, 32), 32);
            assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), raw + 32, 32), 32);
            ECDSA_SIG_free(ecdsa);
            memcpy(sig, raw, sizeof(raw));
            sig_len = sizeof(raw);
        }
    } else {
        sig_len = 0;
    }
    return b64url(sig, sig_len);
}

/* "h64.p64.signature" with the segments given already encoded (so they can be malformed). */
static char *token_b64(const char *h64, const char *p64, const signer *s)
{
    size_t input_len = strlen(h64) + 1 + strlen(p64);
    char *input = malloc(input_len + 1);
    assert_non_null(input);
    snprintf(input, input_len + 1, "%s.%s", h64, p64);
    char *sig = sign_b64(s, input);
    size_t len = input_len + 1 + strlen(sig);
    char *token = malloc(len + 1);
    assert_non_null(token);
    snprintf(token, len + 1, "%s.%s", input, sig);
    free(input);
    free(sig);
    return token;
}

static char *token_json(const char *header, const char *payload, const signer *s)
{
    char *h64 = b64url_str(header);
    char *p64 = b64url_str(payload);
    char *token = token_b64(h64, p64, s);
    free(h64);
    free(p64);
    return token;
}

static json_t *claims(void)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", rules.issuer, "aud",
                          rules.audience, "sub", "agent-7", "project", "team-a", "scope",
                          "functions:read functions:invoke", "iat", (json_int_t)NOW - 10, "nbf",
                          (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 290);
    assert_non_null(c);
    return c;
}

/* claims() with one member replaced by value (NULL: removed). */
static char *claims_with(const char *name, json_t *value)
{
    json_t *c = claims();
    if (value)
        assert_int_equal(json_object_set_new(c, name, value), 0);
    else
        assert_int_equal(json_object_del(c, name), 0);
    char *text = json_dumps(c, JSON_COMPACT);
    assert_non_null(text);
    json_decref(c);
    return text;
}

static char *default_claims(void)
{
    json_t *c = claims();
    char *text = json_dumps(c, JSON_COMPACT);
    assert_non_null(text);
    json_decref(c);
    return text;
}

static signer hs_local(void)
{
    return (signer){.secret = fx.secret, .secret_len = sizeof(fx.secret)};
}

static signer rs(void)
{
    return (signer){.pkey = fx.rsa};
}

static signer es(void)
{
    return (signer){.pkey = fx.ec};
}

#define HS_HDR    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define HS_KID    "{\"alg\":\"HS256\",\"kid\":\"local\"}"
#define RS_HDR    "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa1\"}"
#define ES_HDR    "{\"alg\":\"ES256\",\"kid\":\"ec1\"}"
#define NONE_HDR  "{\"alg\":\"none\",\"typ\":\"JWT\"}"
#define HS_TOKEN  "hs"
#define NO_SIGNER ((signer){0})

/* ---- assertions ---- */

static void expect_ok_at(const char *token, size_t len, time_t now, hks_jwt_claims *out)
{
    hks_error err = {0};
    hks_jwt_claims c;
    if (hks_jwt_verify(fx.keys, &rules, token, len, now, &c, &err) != 0)
        fail_msg("token refused: %s", err.msg);
    if (out)
        *out = c;
}

static void expect_ok(const char *token)
{
    expect_ok_at(token, strlen(token), NOW, NULL);
}

/* Refused with a message containing want, which repeats no 12-byte run of the token. */
static void expect_refused_keys(const hks_jwt_keys *keys, const char *token, size_t len,
                                const char *want)
{
    hks_error err = {0};
    hks_jwt_claims c;
    memset(&c, 0x55, sizeof(c));
    if (hks_jwt_verify(keys, &rules, token, len, NOW, &c, &err) == 0)
        fail_msg("token accepted, expected \"%s\"", want);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, want);
    for (size_t i = 0; token && len >= 12 && i + 12 <= len; i++) {
        char run[13];
        memcpy(run, token + i, 12);
        run[12] = '\0';
        if (strlen(run) == 12 && strstr(err.msg, run))
            fail_msg("message \"%s\" echoes the token", err.msg);
    }
    assert_int_equal(c.sub[0], 0); /* out is cleared on failure */
    assert_int_equal(c.exp, 0);
}

static void expect_refused(const char *token, const char *want)
{
    expect_refused_keys(fx.keys, token, strlen(token), want);
}

/* Builds, checks and frees. */
static void refused_json(const char *header, const char *payload, signer s, const char *want)
{
    char *token = token_json(header, payload, &s);
    expect_refused(token, want);
    free(token);
}

static void accepted_json(const char *header, const char *payload, signer s)
{
    char *token = token_json(header, payload, &s);
    expect_ok(token);
    free(token);
}

static void refused_claim(const char *name, json_t *value, const char *want)
{
    char *payload = claims_with(name, value);
    refused_json(HS_HDR, payload, hs_local(), want);
    free(payload);
}

static void accepted_claim(const char *name, json_t *value)
{
    char *payload = claims_with(name, value);
    accepted_json(HS_HDR, payload, hs_local());
    free(payload);
}

/* ---- files ---- */

static void write_file(const char *dir, const char *name, const void *data, size_t len, int mode)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

static void write_pem(const char *dir, const char *name, EVP_PKEY *pkey, bool private_key)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    BIO *bio = BIO_new_file(path, "w");
    assert_non_null(bio);
    if (private_key)
        assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    BIO_free(bio);
}

static char *public_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    char *copy = strndup(data, (size_t)len);
    BIO_free(bio);
    return copy;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void make_dir(char *out, size_t size)
{
    snprintf(out, size, "/tmp/hks-test-jwt-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static EVP_PKEY *rsa_key(unsigned bits)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    assert_non_null(pkey);
    return pkey;
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(pkey);
    return pkey;
}

static int group_setup(void **state)
{
    (void)state;
    make_dir(fx.dir, sizeof(fx.dir));
    hks_error err = {0};
    if (hks_jwt_keys_ensure_local(fx.dir, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/hs256.key", fx.dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, fx.secret, sizeof(fx.secret)) != (ssize_t)sizeof(fx.secret))
        return -1;
    close(fd);
    fx.rsa = rsa_key(2048);
    fx.ec = ec_key("P-256");
    fx.rsa_pem = public_pem(fx.rsa);
    write_pem(fx.dir, "rsa1.rs256.pem", fx.rsa, false);
    write_pem(fx.dir, "ec1.es256.pem", fx.ec, false);
    write_file(fx.dir, "README", "not a key\n", 10, 0644); /* other names are ignored */
    if (hks_jwt_keys_load(fx.dir, &fx.keys, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return hks_jwt_keys_count(fx.keys) == 3 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    hks_jwt_keys_free(fx.keys);
    EVP_PKEY_free(fx.rsa);
    EVP_PKEY_free(fx.ec);
    free(fx.rsa_pem);
    remove_tree(fx.dir);
    return 0;
}

/* ---- tests ---- */

static void valid_tokens_of_each_algorithm_are_accepted(void **state)
{
    (void)state;
    char *payload = default_claims();
    const char *headers[] = {HS_HDR, HS_KID,
                             RS_HDR, "{\"alg\":\"RS256\"}",
                             ES_HDR, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"};
    signer signers[] = {hs_local(), hs_local(), rs(), rs(), es(), es()};
    for (size_t i = 0; i < HKS_ARRAY_LEN(headers); i++) {
        char *token = token_json(headers[i], payload, &signers[i]);
        hks_jwt_claims c;
        expect_ok_at(token, strlen(token), NOW, &c);
        assert_string_equal(c.sub, "agent-7");
        assert_string_equal(c.project, "team-a");
        assert_string_equal(c.scope, "functions:read functions:invoke");
        assert_int_equal(c.iat, NOW - 10);
        assert_int_equal(c.nbf, NOW - 10);
        assert_int_equal(c.exp, NOW + 290);
        free(token);
    }
    free(payload);

    /* the length given is what is read: no NUL needed, bytes after it ignored */
    payload = default_claims();
    signer s = es();
    char *token = token_json(ES_HDR, payload, &s);
    size_t len = strlen(token);
    char *copy = malloc(len + 8);
    assert_non_null(copy);
    snprintf(copy, len + 8, "%s.junk!", token);
    expect_ok_at(copy, len, NOW, NULL);
    free(copy);
    free(token);
    free(payload);
}

static void algorithm_none_and_unsupported_algorithms_are_refused(void **state)
{
    (void)state;
    char *payload = default_claims();
    /* unsigned ("h.p.") and with a signature appended */
    refused_json(NONE_HDR, payload, NO_SIGNER, "algorithm none is not accepted");
    refused_json(NONE_HDR, payload, hs_local(), "algorithm none is not accepted");
    refused_json("{\"alg\":\"NONE\"}", payload, NO_SIGNER, "algorithm none is not accepted");
    refused_json("{\"alg\":\"None\",\"kid\":\"local\"}", payload, hs_local(),
                 "algorithm none is not accepted");
    const char *others[] = {"HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA", "hs256", ""};
    for (size_t i = 0; i < HKS_ARRAY_LEN(others); i++) {
        char header[64];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", others[i]);
        refused_json(header, payload, hs_local(), "is not accepted (only HS256, RS256 and ES256)");
    }
    refused_json("{\"typ\":\"JWT\"}", payload, hs_local(), "header has no alg");
    refused_json("{\"alg\":256}", payload, hs_local(), "header alg must be a string");
    refused_json("{\"alg\":null}", payload, hs_local(), "header alg must be a string");
    free(payload);
}

static void algorithm_confusion_is_refused(void **state)
{
    (void)state;
    char *payload = default_claims();
    /* the RSA public key's PEM bytes as HMAC secret: the key rsa1 is pinned to RS256 */
    signer pem = {.secret = (const unsigned char *)fx.rsa_pem, .secret_len = strlen(fx.rsa_pem)};
    refused_json("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload, pem,
                 "algorithm HS256 does not match key rsa1, which is pinned to RS256");
    /* without kid the only HS256 key is the local secret, which this does not verify with */
    refused_json(HS_HDR, payload, pem, "signature does not verify");
    /* RS256 presented to the ES256-pinned kid, and the other way round */
    refused_json("{\"alg\":\"RS256\",\"kid\":\"ec1\"}", payload, rs(),
                 "algorithm RS256 does not match key ec1, which is pinned to ES256");
    refused_json("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", payload, es(),
                 "algorithm ES256 does not match key rsa1, which is pinned to RS256");
    refused_json("{\"alg\":\"RS256\",\"kid\":\"local\"}", payload, rs(),
                 "does not match key local, which is pinned to HS256");
    free(payload);
}

static void wrong_keys_and_tampering_are_refused(void **state)
{
    (void)state;
    char *payload = default_claims();
    unsigned char other_secret[32];
    assert_int_equal(RAND_bytes(other_secret, sizeof(other_secret)), 1);
    refused_json(HS_HDR, payload, (signer){.secret = other_secret, .secret_len = 32},
                 "signature does not verify");
    EVP_PKEY *other_rsa = rsa_key(2048);
    EVP_PKEY *other_ec = ec_key("P-256");
    refused_json(RS_HDR, payload, (signer){.pkey = other_rsa}, "signature does not verify");
    refused_json(ES_HDR, payload, (signer){.pkey = other_ec}, "signature does not verify");
    EVP_PKEY_free(other_rsa);
    EVP_PKEY_free(other_ec);

    /* a payload swapped under a valid signature, for each algorithm */
    char *evil = claims_with("project", json_string("team-b"));
    char *evil64 = b64url_str(evil);
    const char *headers[] = {HS_HDR, RS_HDR, ES_HDR};
    signer signers[] = {hs_local(), rs(), es()};
    for (size_t i = 0; i < HKS_ARRAY_LEN(headers); i++) {
        char *token = token_json(headers[i], payload, &signers[i]);
        const char *first = strchr(token, '.');
        const char *second = strchr(first + 1, '.');
        char tampered[4096];
        snprintf(tampered, sizeof(tampered), "%.*s.%s%s", (int)(first - token), token, evil64,
                 second);
        expect_refused(tampered, "signature does not verify");
        /* a signature bit flipped (in the first character, so the encoding stays canonical) */
        snprintf(tampered, sizeof(tampered), "%s", token);
        char *sig = strrchr(tampered, '.') + 1;
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        expect_refused(tampered, "signature does not verify");
        free(token);
    }
    /* a MAC of the wrong length */
    unsigned char zeros[64] = {0};
    char *h64 = b64url_str(HS_HDR);
    char *p64 = b64url_str(payload);
    char *z64 = b64url(zeros, 31);
    char token[4096];
    snprintf(token, sizeof(token), "%s.%s.%s", h64, p64, z64);
    expect_refused(token, "signature does not verify");
    free(h64);
    free(p64);
    free(z64);
    /* ES256 signatures are exactly 64 bytes; r = s = 0 never verifies */
    h64 = b64url_str(ES_HDR);
    p64 = b64url_str(payload);
    z64 = b64url(zeros, sizeof(zeros));
    char *short64 = b64url(zeros, 63);
    snprintf(token, sizeof(token), "%s.%s.%s", h64, p64, z64);
    expect_refused(token, "signature does not verify");
    snprintf(token, sizeof(token), "%s.%s.%s", h64, p64, short64);
    expect_refused(token, "ES256 needs 64 bytes");
    free(h64);
    free(p64);
    free(z64);
    free(short64);
    free(evil64);
    free(evil);
    free(payload);
}

static char *times(long iat, long nbf, long exp)
{
    json_t *c = claims();
    json_object_set_new(c, "iat", json_integer(iat));
    json_object_set_new(c, "nbf", json_integer(nbf));
    json_object_set_new(c, "exp", json_integer(exp));
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}

static void refused_times(long iat, long nbf, long exp, const char *want)
{
    char *payload = times(iat, nbf, exp);
    refused_json(HS_HDR, payload, hs_local(), want);
    free(payload);
}

static void accepted_times(long iat, long nbf, long exp)
{
    char *payload = times(iat, nbf, exp);
    accepted_json(HS_HDR, payload, hs_local());
    free(payload);
}

static void time_claims_are_enforced(void **state)
{
    (void)state;
    const long now = (long)NOW;
    /* leeway 30 s on each side */
    refused_times(now - 600, now - 600, now - 30, "token expired");
    refused_times(now - 600, now - 600, now - 300, "token expired");
    accepted_times(now - 600, now - 600, now - 29);
    refused_times(now, now + 31, now + 300, "token is not yet valid (nbf)");
    accepted_times(now, now + 30, now + 300);
    refused_times(now + 31, now, now + 300, "token was issued in the future (iat)");
    accepted_times(now + 30, now, now + 300);
    /* lifetime at most 900 s */
    refused_times(now, now, now + 901, "token lifetime of 901 s exceeds the maximum of 900 s");
    accepted_times(now, now, now + 900);
    refused_times(now, now, now, "exp <= iat");
    refused_claim("exp", NULL, "token has no exp claim");
    refused_claim("iat", NULL, "token has no iat claim");
    /* nbf is optional; claims.nbf is then iat */
    char *payload = claims_with("nbf", NULL);
    signer s = hs_local();
    char *token = token_json(HS_HDR, payload, &s);
    hks_jwt_claims c;
    expect_ok_at(token, strlen(token), NOW, &c);
    assert_int_equal(c.nbf, c.iat);
    /* the same token later: expired once past exp + leeway */
    expect_ok_at(token, strlen(token), NOW + 290 + 29, NULL);
    hks_error err = {0};
    assert_int_equal(
        hks_jwt_verify(fx.keys, &rules, token, strlen(token), NOW + 290 + 30, &c, &err), -1);
    assert_non_null(strstr(err.msg, "token expired"));
    free(token);
    free(payload);
    /* integers only */
    refused_claim("exp", json_real((double)NOW + 290), "exp claim must be an integer, not a real");
    refused_claim("iat", json_real((double)NOW), "iat claim must be an integer, not a real");
    refused_claim("nbf", json_real((double)NOW), "nbf claim must be an integer, not a real");
    refused_claim("exp", json_string("1700000290"), "exp claim must be an integer");
    refused_claim("exp", json_true(), "exp claim must be an integer");
    refused_claim("exp", json_integer(-1), "exp claim is out of range");
    refused_claim("iat", json_integer(-5), "iat claim is out of range");
    refused_claim("exp", json_integer(1000000000000000LL), "exp claim is out of range");
    /* literal spellings jansson reads as reals or cannot hold */
    const char *raw[] = {"1700000290.0", "1.70000029e9", "17000002900e-1"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(raw); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "{\"iss\":\"https://hks.test\",\"aud\":\"hksd\",\"sub\":\"a\",\"project\":\"p\","
                 "\"scope\":\"\",\"iat\":1699999990,\"exp\":%s}",
                 raw[i]);
        refused_json(HS_HDR, text, hs_local(), "exp claim must be an integer, not a real");
    }
    refused_json(HS_HDR,
                 "{\"iss\":\"https://hks.test\",\"aud\":\"hksd\",\"sub\":\"a\",\"project\":\"p\","
                 "\"scope\":\"\",\"iat\":1699999990,\"exp\":170000029000000000000000000}",
                 hs_local(), "payload has a number out of range");
}

static void issuer_and_audience_are_checked(void **state)
{
    (void)state;
    refused_claim("iss", json_string("https://evil.test"), "issuer mismatch");
    refused_claim("iss", json_string("https://hks.test/"), "issuer mismatch");
    refused_claim("iss", json_string("https://hks.tes"), "issuer mismatch");
    refused_claim("iss", NULL, "token has no iss claim");
    refused_claim("iss", json_integer(1), "iss claim must be a string");
    refused_claim("aud", json_string("other"), "audience mismatch");
    refused_claim("aud", json_string("hks"), "audience mismatch");
    refused_claim("aud", json_string("hksd2"), "audience mismatch");
    refused_claim("aud", NULL, "token has no aud claim");
    refused_claim("aud", json_pack("[s, s]", "a", "b"), "audience mismatch");
    refused_claim("aud", json_array(), "audience mismatch");
    refused_claim("aud", json_pack("[i, s]", 1, "hksd"),
                  "aud claim must be a string or an array of strings");
    refused_claim("aud", json_pack("{s:s}", "aud", "hksd"),
                  "aud claim must be a string or an array of strings");
    accepted_claim("aud", json_pack("[s, s]", "other", "hksd"));
    accepted_claim("aud", json_pack("[s]", "hksd"));
}

static void subject_project_and_scope_are_checked(void **state)
{
    (void)state;
    refused_claim("sub", NULL, "token has no sub claim");
    refused_claim("project", NULL, "token has no project claim");
    refused_claim("scope", NULL, "token has no scope claim");
    refused_claim("sub", json_string(""), "sub must be 1 to 127 bytes");
    char long_text[200];
    memset(long_text, 'a', sizeof(long_text));
    long_text[128] = '\0';
    refused_claim("sub", json_string(long_text), "sub must be 1 to 127 bytes, not 128");
    long_text[127] = '\0';
    accepted_claim("sub", json_string(long_text));
    refused_claim("sub", json_string("agent\n7"), "sub contains a control character");
    refused_claim("sub", json_integer(7), "sub claim must be a string");

    const char *bad_projects[] = {"../x", "A",   "Team", "-a", "a-",  "a_b",
                                  "a/b",  "a.b", "",     " a", "a b", "ü"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad_projects); i++)
        refused_claim("project", json_string(bad_projects[i]), "project must be 1 to 63");
    long_text[64] = '\0';
    refused_claim("project", json_string(long_text), "project must be 1 to 63");
    long_text[63] = '\0';
    accepted_claim("project", json_string(long_text));
    accepted_claim("project", json_string("a"));
    accepted_claim("project", json_string("team-1"));
    accepted_claim("project", json_string("0-x-9"));
    refused_claim("project", json_null(), "project claim must be a string");

    accepted_claim("scope", json_string(""));
    accepted_claim("scope", json_string("functions:deploy cronjobs:write"));
    refused_claim("scope", json_string("functions:read\nfunctions:deploy"), "scope may only hold");
    refused_claim("scope", json_string("a\"b"), "scope may only hold");
    refused_claim("scope", json_pack("[s]", "functions:read"), "scope claim must be a string");
    char long_scope[600];
    memset(long_scope, 'x', sizeof(long_scope));
    long_scope[512] = '\0';
    refused_claim("scope", json_string(long_scope), "scope is longer than 511 bytes");
}

static void json_is_parsed_strictly(void **state)
{
    (void)state;
    char *payload = default_claims();
    refused_json("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", payload, hs_local(),
                 "header has a duplicate member");
    refused_json("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"alg\":\"none\"}", payload, hs_local(),
                 "header has a duplicate member");
    refused_json("{\"alg\":\"HS256\",\"kid\":\"local\",\"kid\":\"rsa1\"}", payload, hs_local(),
                 "header has a duplicate member");
    refused_json("[\"HS256\"]", payload, hs_local(), "header is not a JSON object");
    refused_json("\"HS256\"", payload, hs_local(), "header is not a JSON object");
    refused_json("{\"alg\":\"HS256\"", payload, hs_local(), "header is not valid JSON");
    refused_json("{\"alg\":\"HS256\"} x", payload, hs_local(), "header is not valid JSON");
    refused_json("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, hs_local(),
                 "header crit is not supported");
    refused_json("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", payload, hs_local(),
                 "header typ must be \"JWT\"");
    refused_json("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", payload, hs_local(),
                 "header typ must be \"JWT\"");
    refused_json("{\"alg\":\"HS256\",\"typ\":1}", payload, hs_local(),
                 "header typ must be \"JWT\"");
    refused_json("{\"alg\":\"HS256\",\"kid\":\"nope\"}", payload, hs_local(),
                 "unknown key id nope");
    refused_json("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", payload, hs_local(),
                 "unknown key id (not shown)");
    refused_json("{\"alg\":\"HS256\",\"kid\":\"\"}", payload, hs_local(), "unknown key id");
    refused_json("{\"alg\":\"HS256\",\"kid\":7}", payload, hs_local(),
                 "header kid must be a string");
    /* keys come from the directory only: an embedded key is never used */
    accepted_json(
        "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"},\"jku\":\"http://x\"}",
        payload, hs_local());
    free(payload);

    const char *dup = "{\"iss\":\"https://hks.test\",\"aud\":\"hksd\",\"sub\":\"a\",\"sub\":\"b\","
                      "\"project\":\"p\",\"scope\":\"\",\"iat\":1699999990,\"exp\":1700000100}";
    refused_json(HS_HDR, dup, hs_local(), "payload has a duplicate member");
    const char *dup_exp = "{\"iss\":\"https://hks.test\",\"aud\":\"hksd\",\"sub\":\"a\","
                          "\"project\":\"p\",\"scope\":\"\",\"iat\":1699999990,\"exp\":1,"
                          "\"exp\":1700000100}";
    refused_json(HS_HDR, dup_exp, hs_local(), "payload has a duplicate member");
    refused_json(HS_HDR, "[]", hs_local(), "payload is not a JSON object");
    refused_json(HS_HDR, "null", hs_local(), "payload is not a JSON object");
    refused_json(HS_HDR, "{", hs_local(), "payload is not valid JSON");
    refused_json(HS_HDR, "{\"sub\":\"a\\u0000b\"}", hs_local(), "payload has a NUL character");
    refused_json(HS_HDR, "{\"sub\":\"\xff\"}", hs_local(), "payload is not valid UTF-8");
    /* a valid duplicate-free payload spelled with escapes is fine */
    const char *escaped = "{\"iss\":\"https:\\/\\/hks.test\",\"aud\":\"hks\\u0064\",\"sub\":\"a\","
                          "\"project\":\"p\",\"scope\":\"\",\"iat\":1699999990,\"exp\":1700000100}";
    accepted_json(HS_HDR, escaped, hs_local());
}

static void base64url_is_strict(void **state)
{
    (void)state;
    char *payload = default_claims();
    char *h64 = b64url_str(HS_HDR);
    char *p64 = b64url_str(payload);
    signer s = hs_local();
    char *good = token_b64(h64, p64, &s);
    expect_ok(good);
    char bad[4096];
    const char *sig = strrchr(good, '.') + 1;

    /* padding in each segment */
    snprintf(bad, sizeof(bad), "%s=.%s.%s", h64, p64, sig);
    expect_refused(bad, "header is not base64url: '=' padding is not allowed");
    snprintf(bad, sizeof(bad), "%s.%s=", h64, p64);
    char *signed_bad = token_b64(h64, strchr(bad, '.') + 1, &s);
    expect_refused(signed_bad, "payload is not base64url: '=' padding is not allowed");
    free(signed_bad);
    snprintf(bad, sizeof(bad), "%s.%s.%s=", h64, p64, sig);
    expect_refused(bad, "signature is not base64url: '=' padding is not allowed");

    /* standard-alphabet characters */
    snprintf(bad, sizeof(bad), "%s.%s.%s", h64, p64, sig);
    bad[2] = '+';
    expect_refused(bad, "header is not base64url: '+' belongs to standard base64");
    char *p_slash = strdup(p64);
    p_slash[5] = '/';
    signed_bad = token_b64(h64, p_slash, &s);
    expect_refused(signed_bad, "payload is not base64url: '/' belongs to standard base64");
    free(signed_bad);
    free(p_slash);
    snprintf(bad, sizeof(bad), "%s.%s.%s", h64, p64, sig);
    bad[strlen(bad) - 3] = '+';
    expect_refused(bad, "signature is not base64url: '+' belongs to standard base64");

    /* whitespace anywhere */
    snprintf(bad, sizeof(bad), "%s\n.%s.%s", h64, p64, sig);
    expect_refused(bad, "header is not base64url: whitespace is not allowed");
    snprintf(bad, sizeof(bad), "%s.%s.%s ", h64, p64, sig);
    expect_refused(bad, "signature is not base64url: whitespace is not allowed");
    snprintf(bad, sizeof(bad), "%s.%s.\t%s", h64, p64, sig);
    expect_refused(bad, "signature is not base64url: whitespace is not allowed");
    snprintf(bad, sizeof(bad), " %s.%s.%s", h64, p64, sig);
    expect_refused(bad, "header is not base64url: whitespace is not allowed");

    /* other bytes, a NUL inside the length, impossible lengths, non-canonical last character */
    snprintf(bad, sizeof(bad), "%s.%s.%s", h64, p64, sig);
    bad[4] = '*';
    expect_refused(bad, "header is not base64url: invalid byte at offset 4");
    snprintf(bad, sizeof(bad), "%s.%s.%s", h64, p64, sig);
    size_t len = strlen(bad);
    bad[len - 2] = '\0';
    expect_refused_keys(fx.keys, bad, len, "signature is not base64url: invalid byte at offset 41");
    snprintf(bad, sizeof(bad), "%sA.%s.%s", h64, p64, sig);
    assert_int_equal(strlen(h64) % 4, 0);
    expect_refused(bad, "header is not base64url: impossible length 37");
    snprintf(bad, sizeof(bad), "%s.%s.%s", h64, p64, sig);
    /* 32 bytes are 43 characters whose last carries 2 unused bits */
    assert_int_equal(strlen(sig), 43);
    char *last = bad + strlen(bad) - 1;
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    *last = alphabet[(strchr(alphabet, *last) - alphabet) | 1];
    expect_refused(bad, "signature is not base64url: non-canonical trailing bits");

    free(good);
    free(h64);
    free(p64);
    free(payload);
}

static void token_shape_is_checked(void **state)
{
    (void)state;
    hks_error err = {0};
    hks_jwt_claims c;
    assert_int_equal(hks_jwt_verify(fx.keys, &rules, "", 0, NOW, &c, &err), -1);
    assert_non_null(strstr(err.msg, "token is empty"));
    assert_int_equal(hks_jwt_verify(fx.keys, &rules, NULL, 10, NOW, &c, &err), -1);
    assert_non_null(strstr(err.msg, "token is empty"));
    assert_int_equal(hks_jwt_verify(NULL, &rules, "a.b.c", 5, NOW, &c, &err), -1);
    hks_jwt_rules no_aud = rules;
    no_aud.audience = NULL;
    assert_int_equal(hks_jwt_verify(fx.keys, &no_aud, "a.b.c", 5, NOW, &c, &err), -1);
    assert_non_null(strstr(err.msg, "no audience configured"));

    char *payload = default_claims();
    signer s = hs_local();
    char *good = token_json(HS_HDR, payload, &s);
    char bad[4096];
    expect_refused("abc", "token must have 3 dot-separated segments, not 1");
    const char *first_dot = strchr(good, '.');
    snprintf(bad, sizeof(bad), "%.*s", (int)(strrchr(good, '.') - good), good);
    expect_refused(bad, "token must have 3 dot-separated segments, not 2");
    snprintf(bad, sizeof(bad), "%s.e30", good);
    expect_refused(bad, "token must have 3 dot-separated segments, not 4");
    expect_refused("a.b.c.d.e", "token must have 3 dot-separated segments, not 5");
    snprintf(bad, sizeof(bad), "%s", first_dot);
    expect_refused(bad, "header segment is empty");
    expect_refused("..", "header segment is empty");
    snprintf(bad, sizeof(bad), "%.*s.%s", (int)(first_dot - good), good, strrchr(good, '.'));
    expect_refused(bad, "payload segment is empty");
    snprintf(bad, sizeof(bad), "%.*s.", (int)(strrchr(good, '.') - good), good);
    expect_refused(bad, "signature segment is empty");

    /* 8 KiB at most, counted on the whole token */
    size_t big_len = HKS_JWT_MAX_TOKEN + 1;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'A', big_len);
    big[10] = '.';
    big[20] = '.';
    big[big_len] = '\0';
    expect_refused_keys(fx.keys, big, big_len, "token is longer than 8192 bytes");
    free(big);
    /* a large but allowed token passes */
    char pad[5000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char *padded = claims_with("pad", json_string(pad));
    char *large = token_json(HS_HDR, padded, &s);
    assert_true(strlen(large) > 6000 && strlen(large) <= HKS_JWT_MAX_TOKEN);
    expect_ok(large);
    free(large);
    free(padded);
    free(good);
    free(payload);
}

static void scopes_match_exactly(void **state)
{
    (void)state;
    hks_jwt_claims c = {0};
    snprintf(c.scope, sizeof(c.scope), "functions:read functions:invoke");
    assert_true(hks_jwt_has_scope(&c, "functions:read"));
    assert_true(hks_jwt_has_scope(&c, "functions:invoke"));
    assert_false(hks_jwt_has_scope(&c, "functions:readx"));
    assert_false(hks_jwt_has_scope(&c, "functions:rea"));
    assert_false(hks_jwt_has_scope(&c, "functions"));
    assert_false(hks_jwt_has_scope(&c, "read"));
    assert_false(hks_jwt_has_scope(&c, "functions:deploy"));
    assert_false(hks_jwt_has_scope(&c, ""));
    assert_false(hks_jwt_has_scope(&c, "functions:read functions:invoke"));
    assert_false(hks_jwt_has_scope(&c, NULL));
    assert_false(hks_jwt_has_scope(NULL, "functions:read"));
    snprintf(c.scope, sizeof(c.scope), "functions:readx");
    assert_false(hks_jwt_has_scope(&c, "functions:read"));
    snprintf(c.scope, sizeof(c.scope), "xfunctions:read");
    assert_false(hks_jwt_has_scope(&c, "functions:read"));
    snprintf(c.scope, sizeof(c.scope), "  a   b ");
    assert_true(hks_jwt_has_scope(&c, "a"));
    assert_true(hks_jwt_has_scope(&c, "b"));
    assert_false(hks_jwt_has_scope(&c, " "));
    c.scope[0] = '\0';
    assert_false(hks_jwt_has_scope(&c, "a"));
}

static void minted_tokens_verify(void **state)
{
    (void)state;
    hks_error err = {0};
    char *token = NULL;
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "agent-7", "team-a",
                                        "functions:deploy functions:read", 300, NOW, &token, &err),
                     0);
    assert_non_null(token);
    hks_jwt_claims c;
    expect_ok_at(token, strlen(token), NOW, &c);
    assert_string_equal(c.sub, "agent-7");
    assert_string_equal(c.project, "team-a");
    assert_string_equal(c.scope, "functions:deploy functions:read");
    assert_int_equal(c.iat, NOW);
    assert_int_equal(c.nbf, NOW);
    assert_int_equal(c.exp, NOW + 300);
    assert_true(hks_jwt_has_scope(&c, "functions:deploy"));
    assert_false(hks_jwt_has_scope(&c, "functions:delete"));
    /* the header names the local key, and the header and payload decode as our encoder would */
    char *h64 = b64url_str("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"local\"}");
    assert_int_equal(strncmp(token, h64, strlen(h64)), 0);
    assert_int_equal(token[strlen(h64)], '.');
    free(h64);
    /* and it expires */
    expect_ok_at(token, strlen(token), NOW + 300 + 29, NULL);
    assert_int_equal(hks_jwt_verify(fx.keys, &rules, token, strlen(token), NOW + 330, &c, &err),
                     -1);
    assert_non_null(strstr(err.msg, "token expired"));
    free(token);

    /* empty scope is allowed; what verify would refuse is not minted */
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "a", "p", "", 1, NOW, &token, &err), 0);
    expect_ok(token);
    free(token);
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "a", "p", "", 0, NOW, &token, &err), -1);
    assert_non_null(strstr(err.msg, "lifetime 0 s is outside 1..900 s"));
    assert_null(token);
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "a", "p", "", 901, NOW, &token, &err), -1);
    assert_non_null(strstr(err.msg, "lifetime 901 s is outside 1..900 s"));
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "a", "../x", "", 60, NOW, &token, &err),
                     -1);
    assert_non_null(strstr(err.msg, "mint token: project must be"));
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "", "p", "", 60, NOW, &token, &err), -1);
    assert_non_null(strstr(err.msg, "mint token: sub must be"));
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "a", "p", "x\ny", 60, NOW, &token, &err),
                     -1);
    assert_non_null(strstr(err.msg, "mint token: scope may only hold"));
    assert_int_equal(hks_jwt_mint_hs256(fx.keys, &rules, "\xff", "p", "", 60, NOW, &token, &err),
                     -1);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));

    /* only the local HS256 key mints */
    char dir[64];
    make_dir(dir, sizeof(dir));
    write_pem(dir, "only.rs256.pem", fx.rsa, false);
    hks_jwt_keys *rsa_only = NULL;
    assert_int_equal(hks_jwt_keys_load(dir, &rsa_only, &err), 0);
    assert_int_equal(hks_jwt_mint_hs256(rsa_only, &rules, "a", "p", "", 60, NOW, &token, &err), -1);
    assert_non_null(strstr(err.msg, "no local HS256 key"));
    /* and an HS256 token has no key there */
    char *payload = default_claims();
    signer s = hs_local();
    char *hs = token_json(HS_HDR, payload, &s);
    expect_refused_keys(rsa_only, hs, strlen(hs), "no key is configured for algorithm HS256");
    free(hs);
    free(payload);
    hks_jwt_keys_free(rsa_only);
    remove_tree(dir);
}

static void ensure_local_creates_a_private_key_once(void **state)
{
    (void)state;
    char base[64];
    make_dir(base, sizeof(base));
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/state/keys", base);
    hks_error err = {0};
    assert_int_equal(hks_jwt_keys_ensure_local(dir, &err), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/hs256.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    unsigned char first[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, first, sizeof(first)), 32);
    close(fd);
    ino_t inode = st.st_ino;

    /* kept as it is, and nothing left behind */
    assert_int_equal(hks_jwt_keys_ensure_local(dir, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_ino, inode);
    unsigned char second[32];
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, second, sizeof(second)), 32);
    close(fd);
    assert_memory_equal(first, second, 32);
    assert_int_equal(count_entries_with_prefix(dir, ""), 1);

    hks_jwt_keys *keys = NULL;
    assert_int_equal(hks_jwt_keys_load(dir, &keys, &err), 0);
    assert_int_equal(hks_jwt_keys_count(keys), 1);
    hks_jwt_keys_free(keys);

    /* a file where the directory should be */
    snprintf(dir, sizeof(dir), "%s/state/keys/hs256.key", base);
    assert_int_equal(hks_jwt_keys_ensure_local(dir, &err), -1);
    assert_non_null(strstr(err.msg, "hs256.key"));
    remove_tree(base);
}

static void load_refused(const char *dir, const char *want)
{
    hks_error err = {0};
    hks_jwt_keys *keys = NULL;
    if (hks_jwt_keys_load(dir, &keys, &err) == 0)
        fail_msg("keys of %s loaded, expected \"%s\"", dir, want);
    assert_null(keys);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, want);
}

static void load_accepted(const char *dir, size_t count)
{
    hks_error err = {0};
    hks_jwt_keys *keys = NULL;
    if (hks_jwt_keys_load(dir, &keys, &err) != 0)
        fail_msg("keys of %s refused: %s", dir, err.msg);
    assert_int_equal(hks_jwt_keys_count(keys), count);
    hks_jwt_keys_free(keys);
}

static void unsafe_or_weak_keys_are_refused(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof(dir));
    load_refused(dir, "has no keys");
    load_refused("/nonexistent/hks-keys", "open key directory /nonexistent/hks-keys");

    unsigned char secret[64];
    assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
    write_file(dir, "hs256.key", secret, 32, 0644);
    load_refused(dir, "hs256.key is accessible to group or others (mode 0644)");
    write_file(dir, "hs256.key", secret, 32, 0640);
    load_refused(dir, "(mode 0640)");
    write_file(dir, "hs256.key", secret, 32, 0604);
    load_refused(dir, "(mode 0604)");
    write_file(dir, "hs256.key", secret, 16, 0600);
    load_refused(dir, "hs256.key has 16 bytes, at least 32 are required");
    write_file(dir, "hs256.key", secret, 0, 0600);
    load_refused(dir, "hs256.key has 0 bytes");
    write_file(dir, "hs256.key", secret, 64, 0400);
    load_accepted(dir, 1);

    EVP_PKEY *weak = rsa_key(1024);
    write_pem(dir, "weak.rs256.pem", weak, false);
    load_refused(dir, "weak.rs256.pem: RSA key has 1024 bits, 2048 to 16384 are required");
    /* the file name pins the algorithm: an RSA key named es256 is refused, and the reverse */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/weak.rs256.pem", dir);
    assert_int_equal(unlink(path), 0);
    EVP_PKEY_free(weak);
    write_pem(dir, "r.es256.pem", fx.rsa, false);
    load_refused(dir, "r.es256.pem is not an EC P-256 public key");
    snprintf(path, sizeof(path), "%s/r.es256.pem", dir);
    assert_int_equal(unlink(path), 0);
    write_pem(dir, "e.rs256.pem", fx.ec, false);
    load_refused(dir, "e.rs256.pem is not an RSA public key");
    snprintf(path, sizeof(path), "%s/e.rs256.pem", dir);
    assert_int_equal(unlink(path), 0);
    EVP_PKEY *p384 = ec_key("P-384");
    write_pem(dir, "p384.es256.pem", p384, false);
    EVP_PKEY_free(p384);
    load_refused(dir, "p384.es256.pem is not an EC P-256 public key");
    snprintf(path, sizeof(path), "%s/p384.es256.pem", dir);
    assert_int_equal(unlink(path), 0);
    /* private keys and junk are not public keys */
    write_pem(dir, "priv.es256.pem", fx.ec, true);
    load_refused(dir, "priv.es256.pem holds no PEM public key");
    snprintf(path, sizeof(path), "%s/priv.es256.pem", dir);
    assert_int_equal(unlink(path), 0);
    const char *junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    write_file(dir, "junk.rs256.pem", junk, strlen(junk), 0644);
    load_refused(dir, "junk.rs256.pem holds no PEM public key");
    snprintf(path, sizeof(path), "%s/junk.rs256.pem", dir);
    assert_int_equal(unlink(path), 0);
    /* key ids are plain names; "local" is the HS256 secret's */
    write_pem(dir, "local.rs256.pem", fx.rsa, false);
    load_refused(dir, "key file local.rs256.pem: the key id");
    snprintf(path, sizeof(path), "%s/local.rs256.pem", dir);
    assert_int_equal(unlink(path), 0);
    write_pem(dir, "a b.rs256.pem", fx.rsa, false);
    load_refused(dir, "key file a b.rs256.pem: the key id");
    snprintf(path, sizeof(path), "%s/a b.rs256.pem", dir);
    assert_int_equal(unlink(path), 0);
    write_pem(dir, ".rs256.pem", fx.rsa, false); /* hidden: ignored */
    write_pem(dir, "dup.rs256.pem", fx.rsa, false);
    write_pem(dir, "dup.es256.pem", fx.ec, false);
    load_refused(dir, "two keys have the id 'dup'");
    snprintf(path, sizeof(path), "%s/dup.es256.pem", dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/sub.rs256.pem", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    load_refused(dir, "sub.rs256.pem is not a regular file");
    assert_int_equal(rmdir(path), 0);

    /* two RS256 keys: a token must say which (same key material under two ids here) */
    write_pem(dir, "second.rs256.pem", fx.rsa, false);
    load_accepted(dir, 3);
    hks_error err = {0};
    hks_jwt_keys *keys = NULL;
    assert_int_equal(hks_jwt_keys_load(dir, &keys, &err), 0);
    char *payload = default_claims();
    signer s = rs();
    char *token = token_json("{\"alg\":\"RS256\"}", payload, &s);
    expect_refused_keys(keys, token, strlen(token), "token has no kid and 2 keys use RS256");
    free(token);
    token = token_json("{\"alg\":\"RS256\",\"kid\":\"second\"}", payload, &s);
    hks_jwt_claims c;
    assert_int_equal(hks_jwt_verify(keys, &rules, token, strlen(token), NOW, &c, &err), 0);
    free(token);
    free(payload);
    hks_jwt_keys_free(keys);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_tokens_of_each_algorithm_are_accepted),
        cmocka_unit_test(algorithm_none_and_unsupported_algorithms_are_refused),
        cmocka_unit_test(algorithm_confusion_is_refused),
        cmocka_unit_test(wrong_keys_and_tampering_are_refused),
        cmocka_unit_test(time_claims_are_enforced),
        cmocka_unit_test(issuer_and_audience_are_checked),
        cmocka_unit_test(subject_project_and_scope_are_checked),
        cmocka_unit_test(json_is_parsed_strictly),
        cmocka_unit_test(base64url_is_strict),
        cmocka_unit_test(token_shape_is_checked),
        cmocka_unit_test(scopes_match_exactly),
        cmocka_unit_test(minted_tokens_verify),
        cmocka_unit_test(ensure_local_creates_a_private_key_once),
        cmocka_unit_test(unsafe_or_weak_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
