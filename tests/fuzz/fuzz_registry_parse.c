/* libFuzzer target: what the registry client parses from outside. The first byte picks the
 * parser (a WWW-Authenticate value, a docker config.json, a token server's answer, a Location
 * header, a registry's error body, an image reference), the rest is its input. Whatever is
 * accepted must be safe to put into a header, a URL or an error line: bounded, NUL-terminated,
 * without control bytes. */
#include "builder/registry_internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_clean(const char *s, size_t cap, bool allow_space)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || (!allow_space && ch == ' '))
            __builtin_trap();
    }
}

static void fuzz_challenge(const char *in, size_t len)
{
    bld_auth_challenge ch;
    hks_error err = {0};
    if (bld_registry_parse_challenge(in, len, &ch, &err) == 0) {
        if (strcmp(ch.scheme, "basic") != 0 && strcmp(ch.scheme, "bearer") != 0)
            __builtin_trap();
        if (strcmp(ch.scheme, "bearer") == 0 && !ch.realm[0])
            __builtin_trap();
        check_clean(ch.realm, sizeof(ch.realm), true);
        check_clean(ch.service, sizeof(ch.service), true);
        check_clean(ch.scope, sizeof(ch.scope), true);
    } else if (ch.scheme[0] || ch.realm[0] || !err.msg[0]) {
        __builtin_trap();
    }
}

static void fuzz_docker_config(const char *in, size_t len)
{
    static const char *const registries[] = {"r.io", "docker.io", "127.0.0.1:5000"};
    bld_registry_credentials c;
    hks_error err = {0};
    int rc = bld_registry_parse_docker_config(in, len, registries[len % 3], &c, &err);
    if (rc == 1) {
        if (!c.username[0] && !c.identity_token[0])
            __builtin_trap();
        check_clean(c.username, sizeof(c.username), true);
        check_clean(c.password, sizeof(c.password), true);
        check_clean(c.identity_token, sizeof(c.identity_token), true);
    } else if (c.username[0] || c.password[0] || c.identity_token[0] || (rc < 0 && !err.msg[0])) {
        __builtin_trap();
    }
}

static void fuzz_token(const char *in, size_t len)
{
    hks_error err = {0};
    char *t = bld_registry_parse_token(in, len, &err);
    if (t) {
        if (!*t)
            __builtin_trap();
        check_clean(t, 64 * 1024 + 1, false);
        free(t);
    } else if (!err.msg[0]) {
        __builtin_trap();
    }
}

static void fuzz_location(const char *in, size_t len)
{
    char *loc = strndup(in, len);
    if (!loc)
        return;
    hks_error err = {0};
    bool allow_http = len % 2 == 0;
    char *url = bld_registry_resolve_location(
        allow_http ? "http://127.0.0.1:5000/v2/a/blobs/uploads/" : "https://r.io/v2/a/b/uploads/",
        loc, allow_http, &err);
    if (url) {
        if (strncmp(url, "https://", 8) != 0 && !(allow_http && strncmp(url, "http://", 7) == 0))
            __builtin_trap();
        check_clean(url, strlen(url) + 1, false);
        free(url);
    } else if (!err.msg[0]) {
        __builtin_trap();
    }
    free(loc);
}

static void fuzz_error_body(const char *in, size_t len)
{
    char out[300];
    bld_registry_error_summary(in, len, out, sizeof(out));
    check_clean(out, sizeof(out), true);
}

static void fuzz_ref(const char *in, size_t len)
{
    char *text = strndup(in, len);
    if (!text)
        return;
    bld_image_ref r;
    hks_error err = {0};
    if (bld_image_ref_parse(text, &r, &err) == 0) {
        if (!r.registry[0] || !bld_registry_valid_repository(r.repository) ||
            (r.digest[0] && !bld_registry_valid_digest(r.digest)) ||
            (r.tag[0] && !bld_registry_valid_tag(r.tag)))
            __builtin_trap();
        check_clean(r.registry, sizeof(r.registry), false);
        check_clean(r.tag, sizeof(r.tag), false);
    } else if (r.registry[0] || !err.msg[0]) {
        __builtin_trap();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 6) {
    case 0:
        fuzz_challenge(in, len);
        break;
    case 1:
        fuzz_docker_config(in, len);
        break;
    case 2:
        fuzz_token(in, len);
        break;
    case 3:
        fuzz_location(in, len);
        break;
    case 4:
        fuzz_error_body(in, len);
        break;
    default:
        fuzz_ref(in, len);
        break;
    }
    return 0;
}
