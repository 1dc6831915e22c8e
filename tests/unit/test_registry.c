/* The registry client's parsers (image references, WWW-Authenticate, docker config.json, token
 * answers, Location resolution, error bodies) and the layout checks a push makes before it talks
 * to any registry. Pushes against real registries are in tests/integration/test_registry.py. */
#include "tests/unit/helpers.h"

#include "builder/registry_internal.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include <openssl/sha.h>

/* ---- image references ---- */

static void ref_ok(const char *text, const char *registry, const char *repository, const char *tag,
                   const char *digest)
{
    bld_image_ref r;
    hks_error err = {0};
    if (bld_image_ref_parse(text, &r, &err) != 0)
        fail_msg("'%s' refused: %s", text, err.msg);
    assert_string_equal(r.registry, registry);
    assert_string_equal(r.repository, repository);
    assert_string_equal(r.tag, tag);
    assert_string_equal(r.digest, digest);
}

static void ref_bad(const char *text, const char *needle)
{
    bld_image_ref r;
    hks_error err = {0};
    if (bld_image_ref_parse(text, &r, &err) == 0)
        fail_msg("'%s' accepted as %s / %s", text, r.registry, r.repository);
    if (!strstr(err.msg, needle))
        fail_msg("'%s': '%s' lacks '%s'", text, err.msg, needle);
    assert_string_equal(r.registry, "");
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void image_references(void **state)
{
    (void)state;
    ref_ok("127.0.0.1:5000/hks/app:v1", "127.0.0.1:5000", "hks/app", "v1", "");
    ref_ok("localhost/app", "localhost", "app", "", "");
    ref_ok("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "", "");
    ref_ok("ubuntu", "docker.io", "library/ubuntu", "", "");
    ref_ok("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "");
    ref_ok("user/app:Tag_1", "docker.io", "user/app", "Tag_1", "");
    ref_ok("index.docker.io/library/x", "docker.io", "library/x", "", "");
    ref_ok("docker.io/x", "docker.io", "library/x", "", "");
    ref_ok("registry.example.com/a/b@sha256:" D64, "registry.example.com", "a/b", "",
           "sha256:" D64);
    ref_ok("r.io/a:t@sha256:" D64, "r.io", "a", "t", "sha256:" D64);
    ref_ok("[::1]:5000/a:t", "[::1]:5000", "a", "t", "");
    ref_ok("Registry/a", "Registry", "a", "", ""); /* upper case: a host, as docker decides */
    ref_ok("r.io/a__b/c-d--e/f.g_h", "r.io", "a__b/c-d--e/f.g_h", "", "");

    ref_bad("", "empty");
    ref_bad("r.io/a b", "blank");
    ref_bad("r.io/A", "repository");
    ref_bad("r.io/a//b", "repository");
    ref_bad("r.io/a___b", "repository");
    ref_bad("r.io/.a", "repository");
    ref_bad("r.io/a-", "repository");
    ref_bad("r.io/", "repository");
    ref_bad("r.io/a:", "tag");
    ref_bad("r.io/a:-x", "tag");
    ref_bad("r.io/a:" /* 129 characters */
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "tag");
    ref_bad("r.io/a@sha256:abc", "digest");
    ref_bad("r.io/a@sha512:" D64, "digest");
    ref_bad("r.io/a@sha256:" D64 "0", "digest");
    ref_bad("r.io:99999/a", "registry");
    ref_bad("r.io:/a", "registry");
    ref_bad("-r.io/a", "registry");
    ref_bad("r..io/a", "registry");
    ref_bad("r_x.io/a", "registry");

    char long_ref[400];
    memset(long_ref, 'a', sizeof(long_ref) - 1);
    long_ref[sizeof(long_ref) - 1] = '\0';
    memcpy(long_ref, "r.io/", 5);
    ref_bad(long_ref, "repository");
}

static void names_and_digests(void **state)
{
    (void)state;
    assert_true(bld_registry_valid_repository("a"));
    assert_true(bld_registry_valid_repository("a0/b-c/d.e/f__g"));
    assert_false(bld_registry_valid_repository(""));
    assert_false(bld_registry_valid_repository("a/"));
    assert_false(bld_registry_valid_repository("/a"));
    assert_false(bld_registry_valid_repository("a..b"));
    assert_false(bld_registry_valid_repository("a?b"));
    assert_true(bld_registry_valid_digest("sha256:" D64));
    assert_false(bld_registry_valid_digest("sha256:" D64 "a"));
    assert_false(bld_registry_valid_digest("sha256:0123456789ABCDEF0123456789abcdef0123456789abc"
                                           "def0123456789abcdef"));
    assert_false(bld_registry_valid_digest("sha256:../../../../etc/passwd"));
    assert_true(bld_registry_valid_tag("v1.2_3-x"));
    assert_false(bld_registry_valid_tag(".x"));
    assert_false(bld_registry_valid_tag("a/b"));
    assert_false(bld_registry_valid_tag(""));
}

/* ---- WWW-Authenticate ---- */

static void challenge_ok(const char *value, const char *scheme, const char *realm,
                         const char *service, const char *scope)
{
    bld_auth_challenge ch;
    hks_error err = {0};
    if (bld_registry_parse_challenge(value, strlen(value), &ch, &err) != 0)
        fail_msg("'%s' refused: %s", value, err.msg);
    assert_string_equal(ch.scheme, scheme);
    assert_string_equal(ch.realm, realm);
    assert_string_equal(ch.service, service);
    assert_string_equal(ch.scope, scope);
}

static void challenge_bad(const char *value, size_t len, const char *needle)
{
    bld_auth_challenge ch;
    hks_error err = {0};
    if (bld_registry_parse_challenge(value, len, &ch, &err) == 0)
        fail_msg("'%s' accepted", value);
    if (!strstr(err.msg, needle))
        fail_msg("'%s': '%s' lacks '%s'", value, err.msg, needle);
    assert_string_equal(ch.scheme, "");
    assert_string_equal(ch.realm, "");
}

static void www_authenticate(void **state)
{
    (void)state;
    challenge_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                 "scope=\"repository:samalba/my-app:pull,push\"",
                 "bearer", "https://auth.docker.io/token", "registry.docker.io",
                 "repository:samalba/my-app:pull,push");
    challenge_ok("Basic realm=\"Registry Realm\"", "basic", "Registry Realm", "", "");
    challenge_ok("basic", "basic", "", "", "");
    challenge_ok("BEARER Realm=https://h/token , Service = svc", "bearer", "https://h/token", "svc",
                 "");
    challenge_ok("Bearer realm=\"https://h/t?a=\\\"q\\\"\"", "bearer", "https://h/t?a=\"q\"", "",
                 "");
    /* other schemes are skipped, token68 included; the first Basic or Bearer is taken */
    challenge_ok("Negotiate abc==, Digest realm=\"x\", nonce=\"y\", Basic realm=\"b\"", "basic",
                 "b", "", "");
    challenge_ok("Basic realm=\"a\", Bearer realm=\"https://b\"", "basic", "a", "", "");
    challenge_ok("Bearer realm=\"https://b\",error=\"insufficient_scope\"", "bearer", "https://b",
                 "", "");

    challenge_bad("", 0, "no Basic or Bearer");
    challenge_bad("Digest realm=\"x\"", 16, "no Basic or Bearer");
    challenge_bad("Bearer service=\"x\"", 18, "without a realm");
    challenge_bad("Bearer realm=\"https://x", 23, "realm");
    challenge_bad("Bearer realm=\"a\nb\"", 18, "control");
    challenge_bad("Bearer realm=\"a\0b\"", 18, "control");
    challenge_bad("Bearer realm=\"x\", \"junk\"", 24, "unexpected");

    char big[3000];
    int n = snprintf(big, sizeof(big), "Bearer realm=\"https://");
    memset(big + n, 'a', sizeof(big) - (size_t)n - 2);
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    challenge_bad(big, strlen(big), "too long");
    /* a length shorter than the string: nothing past it is read */
    bld_auth_challenge ch;
    hks_error err = {0};
    assert_int_equal(bld_registry_parse_challenge("Basic realm=\"abcdef\"", 15, &ch, &err), -1);
}

/* ---- docker config.json ---- */

static int creds(const char *json, const char *registry, bld_registry_credentials *c,
                 hks_error *err)
{
    return bld_registry_parse_docker_config(json, strlen(json), registry, c, err);
}

static void docker_config(void **state)
{
    (void)state;
    bld_registry_credentials c;
    hks_error err = {0};
    /* aGtzOnMzY3I6dA== is base64 of "hks:s3cr:t" (a colon in the password stays) */
    assert_int_equal(
        creds("{\"auths\":{\"r.io:5000\":{\"auth\":\"aGtzOnMzY3I6dA==\"}}}", "r.io:5000", &c, &err),
        1);
    assert_string_equal(c.username, "hks");
    assert_string_equal(c.password, "s3cr:t");
    assert_int_equal(creds("{\"auths\":{\"https://R.io:5000/v1/\":{\"username\":\"u\","
                           "\"password\":\"p\"}},\"credsStore\":\"desktop\"}",
                           "r.io:5000", &c, &err),
                     1);
    assert_string_equal(c.username, "u");
    assert_string_equal(c.password, "p");
    assert_int_equal(creds("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dTpw\"}}}",
                           "docker.io", &c, &err),
                     1);
    assert_string_equal(c.username, "u");
    assert_int_equal(
        creds("{\"auths\":{\"r.io\":{\"identitytoken\":\"refresh-me\"}}}", "r.io", &c, &err), 1);
    assert_string_equal(c.identity_token, "refresh-me");
    assert_string_equal(c.username, "");

    /* nothing for this registry: anonymous */
    assert_int_equal(
        creds("{\"auths\":{\"r.io:5001\":{\"auth\":\"dTpw\"}}}", "r.io:5000", &c, &err), 0);
    assert_int_equal(creds("{}", "r.io", &c, &err), 0);
    assert_int_equal(creds("{\"auths\":{\"r.io\":{\"auth\":\"\"}}}", "r.io", &c, &err), 0);
    assert_string_equal(c.username, "");

    struct {
        const char *json, *needle;
    } bad[] = {
        {"not json", "not JSON"},
        {"[]", "object"},
        {"{\"auths\":[]}", "object"},
        {"{\"auths\":{\"r.io\":\"x\"}}", "not an object"},
        {"{\"auths\":{\"r.io\":{\"auth\":\"dXNlcg==\"}}}", "user:password"}, /* "user" */
        {"{\"auths\":{\"r.io\":{\"auth\":\"!!!!\"}}}", "base64"},
        {"{\"auths\":{\"r.io\":{\"auth\":7}}}", "not a string"},
        {"{\"auths\":{\"r.io\":{\"username\":\"a\\nb\",\"password\":\"p\"}}}", "control"},
        {"{\"auths\":{\"r.io\":{\"auth\":\"dTpwCg==\"}}}", "user:password"}, /* "u:p\n" */
        {"{\"auths\":{\"r.io\":{}},\"auths\":{}}", "duplicate"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof(err));
        if (creds(bad[i].json, "r.io", &c, &err) != -1 || !strstr(err.msg, bad[i].needle))
            fail_msg("%s: '%s' lacks '%s'", bad[i].json, err.msg, bad[i].needle);
        assert_string_equal(c.username, "");
    }
}

/* ---- token answers ---- */

static void token_answers(void **state)
{
    (void)state;
    hks_error err = {0};
    const char *a = "{\"token\":\"abc.def.ghi\",\"expires_in\":300}";
    char *t = bld_registry_parse_token(a, strlen(a), &err);
    assert_string_equal(t, "abc.def.ghi");
    free(t);
    const char *b = "{\"access_token\":\"xyz\"}";
    t = bld_registry_parse_token(b, strlen(b), &err);
    assert_string_equal(t, "xyz");
    free(t);
    const char *c = "{\"token\":\"\",\"access_token\":\"xyz\"}";
    t = bld_registry_parse_token(c, strlen(c), &err);
    assert_string_equal(t, "xyz");
    free(t);
    const char *bad[] = {"",
                         "{}",
                         "{\"token\":5}",
                         "{\"token\":\"a b\"}",
                         "{\"token\":\"a\\r\\nX-Injected: 1\"}",
                         "{\"token\":\"a\\u0000b\"}",
                         "[\"token\"]"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof(err));
        t = bld_registry_parse_token(bad[i], strlen(bad[i]), &err);
        if (t)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err.msg, "token server answer"));
    }
}

/* ---- Location ---- */

static void location_is(const char *base, const char *location, bool http, const char *want)
{
    hks_error err = {0};
    char *got = bld_registry_resolve_location(base, location, http, &err);
    if (!want) {
        if (got)
            fail_msg("'%s' resolved to '%s'", location, got);
        assert_non_null(strstr(err.msg, "Location"));
        return;
    }
    if (!got)
        fail_msg("'%s' refused: %s", location, err.msg);
    assert_string_equal(got, want);
    free(got);
}

static void location_resolution(void **state)
{
    (void)state;
    const char *base = "https://r.io:5000/v2/hks/app/blobs/uploads/";
    location_is(base, "https://r.io:5000/v2/hks/app/blobs/uploads/u1?_state=x", false,
                "https://r.io:5000/v2/hks/app/blobs/uploads/u1?_state=x");
    location_is(base, "/v2/hks/app/blobs/uploads/u2?_state=a%2Bb", false,
                "https://r.io:5000/v2/hks/app/blobs/uploads/u2?_state=a%2Bb");
    location_is(base, "u3?x=1", false, "https://r.io:5000/v2/hks/app/blobs/uploads/u3?x=1");
    location_is(base, "../other", false, "https://r.io:5000/v2/hks/app/blobs/other");
    location_is(base, "//storage.example/put?sig=1", false, "https://storage.example/put?sig=1");
    location_is(base, "/v2/x#frag", false, "https://r.io:5000/v2/x");
    location_is("http://127.0.0.1:5000/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u", true,
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u");
    /* a downgrade to plain http only for an insecure registry; other schemes never */
    location_is(base, "http://r.io:5000/v2/x", false, NULL);
    location_is("http://127.0.0.1:5000/v2/", "/v2/a", false, NULL);
    location_is(base, "ftp://r.io/x", true, NULL);
    location_is(base, "file:///etc/passwd", true, NULL);
    location_is(base, "", false, NULL);
    location_is(base, "/v2/a b", false, NULL);
    location_is(base, "/v2/a\r\nX: y", false, NULL);
}

/* ---- error bodies ---- */

static void error_summaries(void **state)
{
    (void)state;
    char out[300];
    const char *spec = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name "
                       "not known to registry\",\"detail\":{\"name\":\"x\"}},{\"code\":\"B\"}]}";
    bld_registry_error_summary(spec, strlen(spec), out, sizeof(out));
    assert_string_equal(out, "NAME_UNKNOWN: repository name not known to registry");
    const char *go = "Client sent an HTTP request to an HTTPS server.\n";
    bld_registry_error_summary(go, strlen(go), out, sizeof(out));
    assert_string_equal(out, "Client sent an HTTP request to an HTTPS server.");
    const char *ctl = "{\"errors\":[{\"code\":\"A\\u0007\",\"message\":\"m\\nX\"}]}";
    bld_registry_error_summary(ctl, strlen(ctl), out, sizeof(out));
    assert_string_equal(out, "A?: m");
    bld_registry_error_summary("", 0, out, sizeof(out));
    assert_string_equal(out, "");
    bld_registry_error_summary(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
    char small[8];
    bld_registry_error_summary(spec, strlen(spec), small, sizeof(small));
    assert_string_equal(small, "NAME_UN");
}

/* ---- the layout, checked before any request ---- */

typedef struct layout {
    char dir[64];
    char manifest[72], config[72];
} layout;

static void put_blob(const char *dir, const char *data, char digest[72])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, strlen(data), md);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(digest, 72, "sha256:%s", hex);
    char path[256];
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void put_file(const char *dir, const char *name, const char *data)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

/* a layout whose index names two images, "a" and "b"; the manifest has one empty layer */
static void make_layout(layout *l)
{
    snprintf(l->dir, sizeof(l->dir), "/tmp/hks-test-registry-XXXXXX");
    assert_non_null(mkdtemp(l->dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/blobs", l->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/blobs/sha256", l->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    put_blob(l->dir, config, l->config);
    char empty[72], manifest[1024], index[2048];
    put_blob(l->dir, "", empty);
    snprintf(manifest, sizeof(manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":0}]}",
             l->config, strlen(config), empty);
    put_blob(l->dir, manifest, l->manifest);
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"manifests\":["
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
             "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"a\"}},"
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
             "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"b\"}}]}",
             l->manifest, strlen(manifest), l->manifest, strlen(manifest));
    put_file(l->dir, "index.json", index);
    put_file(l->dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_layout(const layout *l)
{
    nftw(l->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void push_fails(const layout *l, const char *ref_name, const char *dest_text,
                       const char *needle)
{
    /* port 1 on loopback: were the push to get as far as a request, it would fail there */
    bld_image_ref dest;
    hks_error err = {0};
    assert_int_equal(bld_image_ref_parse(dest_text, &dest, &err), 0);
    bld_registry_options opt = {.insecure = true, .retries = 1};
    char digest[72] = "x";
    bld_push_stats stats = {.blobs_uploaded = 9};
    assert_int_equal(bld_registry_push(&opt, l->dir, ref_name, &dest, digest, &stats, &err), -1);
    if (!strstr(err.msg, needle))
        fail_msg("'%s' lacks '%s'", err.msg, needle);
    assert_string_equal(digest, "");
    assert_int_equal(stats.blobs_uploaded, 0);
}

static void layout_checks_before_any_request(void **state)
{
    (void)state;
    layout l;
    make_layout(&l);
    push_fails(&l, NULL, "127.0.0.1:1/hks/a", "has 2 manifests");
    push_fails(&l, "c", "127.0.0.1:1/hks/a", "'a', 'b'");
    char dest[200];
    snprintf(dest, sizeof(dest), "127.0.0.1:1/hks/a@sha256:%s", D64);
    push_fails(&l, "a", dest, "destination names digest");

    /* a manifest whose bytes no longer hash to its name */
    char path[256];
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", l.dir, l.manifest + 7);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fputc('[', f);
    fclose(f);
    push_fails(&l, "a", "127.0.0.1:1/hks/a:t", "corrupt");
    push_fails(&l, "a", "127.0.0.1:1/hks/a:t", l.manifest);

    put_file(l.dir, "index.json", "{\"manifests\":{}}");
    push_fails(&l, "a", "127.0.0.1:1/hks/a:t", "\"manifests\" array");
    snprintf(path, sizeof(path), "%s/oci-layout", l.dir);
    unlink(path);
    push_fails(&l, "a", "127.0.0.1:1/hks/a:t", "not an OCI image layout");
    remove_layout(&l);

    bld_image_ref ref;
    hks_error err = {0};
    assert_int_equal(bld_image_ref_parse("127.0.0.1:1/hks/a:t", &ref, &err), 0);
    bld_registry_options opt = {.insecure = true, .mount_from = "Bad Name"};
    char digest[72];
    assert_int_equal(bld_registry_push(&opt, "/nonexistent", NULL, &ref, digest, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "mount source"));
    opt.mount_from = NULL;
    snprintf(ref.tag, sizeof(ref.tag), "../../x");
    assert_int_equal(bld_registry_push(&opt, "/nonexistent", NULL, &ref, digest, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "destination tag"));
    snprintf(ref.tag, sizeof(ref.tag), "t");
    assert_int_equal(bld_registry_push(&opt, "/nonexistent", NULL, &ref, digest, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_references), cmocka_unit_test(names_and_digests),
        cmocka_unit_test(www_authenticate), cmocka_unit_test(docker_config),
        cmocka_unit_test(token_answers),    cmocka_unit_test(location_resolution),
        cmocka_unit_test(error_summaries),  cmocka_unit_test(layout_checks_before_any_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
