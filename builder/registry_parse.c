/* What the registry client parses: image references, WWW-Authenticate challenges, docker
 * config.json credentials, token server answers, Location headers, registry error bodies. All of
 * it comes from outside (a user, a registry, a token server, a config file), so every parser
 * bounds what it copies and refuses control bytes in anything that ends up in a header or a URL. */
#include "registry_internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define DOCKER_HUB "docker.io"

/* ---- image references ---- */

static bool is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* one path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool valid_component(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t sep = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]) || i == sep)
            return false;
    }
    return true;
}

bool bld_registry_valid_repository(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > 255)
        return false;
    const char *p = text;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!valid_component(p, len))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

bool bld_registry_valid_digest(const char *text)
{
    if (strncmp(text, "sha256:", 7) != 0 || strlen(text) != 7 + 64)
        return false;
    for (const char *p = text + 7; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    }
    return true;
}

bool bld_registry_valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    }
    return true;
}

/* host[:port]: dot-separated labels of letters, digits and inner dashes, or a bracketed IPv6
 * address; the port is decimal, 1..65535. */
static bool valid_registry(const char *s)
{
    const char *port = NULL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1)
            return false;
        for (const char *p = s + 1; p < close; p++) {
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        }
        if (close[1] != '\0' && close[1] != ':')
            return false;
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        size_t host_len = colon ? (size_t)(colon - s) : strlen(s);
        size_t label = 0;
        for (size_t i = 0; i < host_len; i++) {
            char ch = s[i];
            if (ch == '.') {
                if (label == 0 || s[i - 1] == '-')
                    return false;
                label = 0;
            } else if (isalnum((unsigned char)ch) || (ch == '-' && label > 0)) {
                label++;
            } else {
                return false;
            }
        }
        if (label == 0 || s[host_len - 1] == '-')
            return false;
        port = colon ? colon + 1 : NULL;
    }
    if (port) {
        unsigned long long value = 0;
        if (*port == '\0' || strlen(port) > 5 || hks_parse_uint(port, 1, 65535, &value) < 0)
            return false;
    }
    return true;
}

int bld_image_ref_parse(const char *text, bld_image_ref *out, hks_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return hks_fail(err, 0, "image reference: empty");
    size_t n = strlen(text);
    if (n > 1024)
        return hks_fail(err, 0, "image reference: longer than 1024 bytes");
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)text[i] <= ' ' || (unsigned char)text[i] >= 0x7f)
            return hks_fail(err, 0, "image reference '%.200s': blank, control or non-ASCII byte",
                            text);
    }
    char name[1025];
    memcpy(name, text, n + 1);

    char *at = strchr(name, '@');
    if (at) {
        *at = '\0';
        if (!bld_registry_valid_digest(at + 1))
            return hks_fail(err, 0,
                            "image reference '%.200s': the digest must be sha256: and 64 "
                            "lower-case hex digits",
                            text);
        memcpy(out->digest, at + 1, strlen(at + 1) + 1);
    }
    char *last_slash = strrchr(name, '/');
    char *colon = strrchr(last_slash ? last_slash : name, ':');
    if (colon) {
        *colon = '\0';
        if (!bld_registry_valid_tag(colon + 1))
            return hks_fail(err, 0,
                            "image reference '%.200s': tag '%.200s' is not "
                            "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
                            text, colon + 1);
        memcpy(out->tag, colon + 1, strlen(colon + 1) + 1);
    }

    /* As docker decides: the first component names a registry when it has a '.' or a ':', is
     * localhost or has upper case (repositories cannot); otherwise the name is Docker Hub's, and
     * a single-component name there is an official image under library/. */
    const char *repo = name;
    const char *registry = DOCKER_HUB;
    char *slash = strchr(name, '/');
    if (slash) {
        *slash = '\0';
        bool is_host = strchr(name, '.') || strchr(name, ':') || strcmp(name, "localhost") == 0;
        for (const char *p = name; !is_host && *p; p++)
            is_host = isupper((unsigned char)*p) != 0;
        if (is_host) {
            registry = name;
            repo = slash + 1;
        } else {
            *slash = '/';
        }
    }
    if (strcmp(registry, "index.docker.io") == 0 || strcmp(registry, "registry-1.docker.io") == 0)
        registry = DOCKER_HUB;
    if (!valid_registry(registry) || strlen(registry) >= sizeof(out->registry))
        return hks_fail(err, 0, "image reference '%.200s': '%.200s' is not a registry host[:port]",
                        text, registry);
    int w;
    if (strcmp(registry, DOCKER_HUB) == 0 && !strchr(repo, '/'))
        w = snprintf(out->repository, sizeof(out->repository), "library/%s", repo);
    else
        w = snprintf(out->repository, sizeof(out->repository), "%s", repo);
    if (w < 0 || (size_t)w >= sizeof(out->repository) || !bld_registry_valid_repository(repo) ||
        strlen(registry) + 1 + (size_t)w > 255)
        return hks_fail(err, 0,
                        "image reference '%.200s': repository '%.200s' is not lower-case "
                        "components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', "
                        "at most 255 bytes with the registry",
                        text, repo);
    memcpy(out->registry, registry, strlen(registry) + 1);
    return 0;
}

/* ---- WWW-Authenticate ---- */

static bool is_tchar(char ch)
{
    return isalnum((unsigned char)ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_blanks(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static size_t read_token(cursor *c, const char **start)
{
    *start = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - *start);
}

/* A parameter value (token68-ish bare value or quoted-string) into out (size bytes); -1 when it
 * does not fit, holds a control byte or its quote is not closed. */
static int read_value(cursor *c, char *out, size_t size)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return -1;
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p >= c->end)
                    return -1;
                ch = *c->p++;
            }
            if ((unsigned char)ch < 0x20 || ch == 0x7f || n + 1 >= size)
                return -1;
            out[n++] = ch;
        }
    } else {
        while (c->p < c->end && *c->p != ',' && *c->p != ' ' && *c->p != '\t') {
            char ch = *c->p++;
            if ((unsigned char)ch < 0x20 || ch == 0x7f || n + 1 >= size)
                return -1;
            out[n++] = ch;
        }
    }
    out[n] = '\0';
    return 0;
}

static void skip_separators(cursor *c)
{
    while (c->p < c->end && (*c->p == ',' || *c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* The parameters of one challenge, up to the next scheme (a token not followed by '=') or the
 * end. Values go to out when want, else to a scratch buffer: a challenge of another scheme is
 * still read through so that the one after it is found. */
static int read_params(cursor *c, bool want, bld_auth_challenge *out, hks_error *err)
{
    for (;;) {
        skip_separators(c);
        if (c->p >= c->end)
            return 0;
        const char *name = NULL;
        size_t name_len = read_token(c, &name);
        if (name_len == 0)
            return hks_fail(err, 0, "WWW-Authenticate: unexpected byte 0x%02x",
                            (unsigned char)*c->p);
        skip_blanks(c);
        if (c->p >= c->end || *c->p != '=') {
            c->p = name; /* the next challenge's scheme */
            return 0;
        }
        while (c->p < c->end && *c->p == '=')
            c->p++; /* one '=', or a token68's padding */
        skip_blanks(c);
        char scratch[2048];
        char *dest = scratch;
        size_t size = sizeof(scratch);
        if (want && name_len == 5 && strncasecmp(name, "realm", 5) == 0) {
            dest = out->realm;
            size = sizeof(out->realm);
        } else if (want && name_len == 7 && strncasecmp(name, "service", 7) == 0) {
            dest = out->service;
            size = sizeof(out->service);
        } else if (want && name_len == 5 && strncasecmp(name, "scope", 5) == 0) {
            dest = out->scope;
            size = sizeof(out->scope);
        }
        if (read_value(c, dest, size) < 0)
            return hks_fail(err, 0,
                            "WWW-Authenticate: parameter '%.*s' is too long, unterminated or "
                            "holds a control byte",
                            (int)(name_len > 64 ? 64 : name_len), name);
    }
}

int bld_registry_parse_challenge(const char *value, size_t len, bld_auth_challenge *out,
                                 hks_error *err)
{
    memset(out, 0, sizeof(*out));
    cursor c = {value, value + len};
    for (;;) {
        skip_separators(&c);
        if (c.p >= c.end)
            break;
        const char *scheme = NULL;
        size_t scheme_len = read_token(&c, &scheme);
        if (scheme_len == 0) {
            memset(out, 0, sizeof(*out));
            return hks_fail(err, 0, "WWW-Authenticate: unexpected byte 0x%02x",
                            (unsigned char)*c.p);
        }
        bool want = (scheme_len == 5 && strncasecmp(scheme, "basic", 5) == 0) ||
                    (scheme_len == 6 && strncasecmp(scheme, "bearer", 6) == 0);
        if (read_params(&c, want, out, err) < 0) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
        if (!want)
            continue;
        for (size_t i = 0; i < scheme_len; i++)
            out->scheme[i] = (char)tolower((unsigned char)scheme[i]);
        if (strcmp(out->scheme, "bearer") == 0 && !out->realm[0]) {
            memset(out, 0, sizeof(*out));
            return hks_fail(err, 0, "WWW-Authenticate: Bearer challenge without a realm");
        }
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return hks_fail(err, 0, "WWW-Authenticate: no Basic or Bearer challenge");
}

/* ---- docker config.json ---- */

/* Standard base64 (padding optional) of in into out, NUL-terminated; -1 when malformed or too
 * long. */
static int base64_decode(const char *in, size_t len, char *out, size_t size)
{
    while (len > 0 && in[len - 1] == '=')
        len--;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = hks_base64_value((unsigned char)in[i], false);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= size)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return (int)n;
}

/* the host[:port] of an "auths" key: without scheme and path, lower-cased */
static void auths_key_host(const char *key, char *out, size_t size)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    size_t n = strcspn(p, "/");
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
}

static bool registry_matches(const char *host, const char *registry)
{
    if (strcasecmp(host, registry) == 0)
        return true;
    if (strcmp(registry, DOCKER_HUB) == 0)
        return strcmp(host, "index.docker.io") == 0 || strcmp(host, "registry-1.docker.io") == 0;
    return false;
}

static bool header_safe(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

static int copy_field(json_t *entry, const char *key, char *out, size_t size, const char *what,
                      hks_error *err)
{
    json_t *v = json_object_get(entry, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return hks_fail(err, 0, "docker config: %s: \"%s\" is not a string", what, key);
    const char *s = json_string_value(v);
    if (json_string_length(v) >= size || strlen(s) != json_string_length(v) || !header_safe(s))
        return hks_fail(err, 0, "docker config: %s: \"%s\" is too long or holds a control byte",
                        what, key);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int bld_registry_parse_docker_config(const char *json, size_t len, const char *registry,
                                     bld_registry_credentials *out, hks_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hks_fail(err, 0, "docker config: not JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = 0;
    json_t *auths = json_object_get(root, "auths");
    if (!json_is_object(root) || (auths && !json_is_object(auths))) {
        rc = hks_fail(err, 0, "docker config: expected an object with an \"auths\" object");
        goto out;
    }
    const char *key;
    json_t *entry;
    json_object_foreach(auths, key, entry)
    {
        char host[256];
        auths_key_host(key, host, sizeof(host));
        if (!registry_matches(host, registry))
            continue;
        if (!json_is_object(entry)) {
            rc = hks_fail(err, 0, "docker config: auths entry for %s is not an object", registry);
            goto out;
        }
        char what[300];
        snprintf(what, sizeof(what), "auths entry for %s", registry);
        if (copy_field(entry, "username", out->username, sizeof(out->username), what, err) < 0 ||
            copy_field(entry, "password", out->password, sizeof(out->password), what, err) < 0 ||
            copy_field(entry, "identitytoken", out->identity_token, sizeof(out->identity_token),
                       what, err) < 0) {
            rc = -1;
            goto out;
        }
        json_t *auth = json_object_get(entry, "auth");
        if (auth && !json_is_string(auth)) {
            rc = hks_fail(err, 0, "docker config: %s: \"auth\" is not a string", what);
            goto out;
        }
        const char *b64 = auth ? json_string_value(auth) : "";
        if (*b64) {
            char plain[1400];
            int n = base64_decode(b64, strlen(b64), plain, sizeof(plain));
            char *sep = n > 0 ? strchr(plain, ':') : NULL;
            if (n < 0 || (size_t)n != strlen(plain) || !sep || !header_safe(plain)) {
                rc = hks_fail(err, 0, "docker config: %s: \"auth\" is not base64 of user:password",
                              what);
                goto out;
            }
            *sep = '\0';
            if (strlen(plain) >= sizeof(out->username) ||
                strlen(sep + 1) >= sizeof(out->password)) {
                rc = hks_fail(err, 0, "docker config: %s: \"auth\" is too long", what);
                goto out;
            }
            memcpy(out->username, plain, strlen(plain) + 1);
            memcpy(out->password, sep + 1, strlen(sep + 1) + 1);
        }
        rc = out->username[0] || out->identity_token[0] ? 1 : 0;
        if (rc == 0)
            memset(out, 0, sizeof(*out));
        goto out;
    }
out:
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- token server answers ---- */

char *bld_registry_parse_token(const char *json, size_t len, hks_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        hks_fail(err, 0, "token server answer: not JSON: %s", jerr.text);
        return NULL;
    }
    json_t *tok = json_object_get(root, "token");
    if (!json_is_string(tok) || json_string_length(tok) == 0)
        tok = json_object_get(root, "access_token");
    char *out = NULL;
    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        hks_fail(err, 0, "token server answer: no \"token\" or \"access_token\" string");
    } else if (json_string_length(tok) > 64 * 1024) {
        hks_fail(err, 0, "token server answer: token longer than 65536 bytes");
    } else {
        const char *s = json_string_value(tok);
        bool ok = strlen(s) == json_string_length(tok);
        for (const char *p = s; ok && *p; p++)
            ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
        if (!ok)
            hks_fail(err, 0, "token server answer: the token holds a blank or control byte");
        else if (!(out = strdup(s)))
            hks_fail(err, ENOMEM, "token server answer");
    }
    json_decref(root);
    return out;
}

/* ---- Location ---- */

char *bld_registry_resolve_location(const char *base_url, const char *location, bool allow_http,
                                    hks_error *err)
{
    if (!location || !*location) {
        hks_fail(err, 0, "Location: empty");
        return NULL;
    }
    for (const char *p = location; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            hks_fail(err, 0, "Location '%.200s': blank or control byte", location);
            return NULL;
        }
    }
    CURLU *u = curl_url();
    if (!u) {
        hks_fail(err, ENOMEM, "Location");
        return NULL;
    }
    char *out = NULL;
    char *scheme = NULL;
    char *url = NULL;
    /* set on a handle holding the base, a relative URL is resolved against it (RFC 3986) */
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, base_url, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(u, CURLUPART_URL, location, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_URL, &url, 0);
    if (rc != CURLUE_OK) {
        hks_fail(err, 0, "Location '%.200s': %s", location, curl_url_strerror(rc));
    } else if (strcmp(scheme, "https") != 0 && !(allow_http && strcmp(scheme, "http") == 0)) {
        hks_fail(err, 0, "Location '%.200s': scheme %s refused (%s)", location, scheme,
                 allow_http ? "only http and https" : "plain http needs the registry insecure");
    } else if (!(out = strdup(url))) {
        hks_fail(err, ENOMEM, "Location");
    }
    curl_free(scheme);
    curl_free(url);
    curl_url_cleanup(u);
    return out;
}

/* ---- error bodies ---- */

static void append_clean(char *out, size_t size, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < len && *n + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r')
            break;
        out[(*n)++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[*n] = '\0';
}

void bld_registry_error_summary(const char *body, size_t len, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    if (!body || len == 0)
        return;
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *first = json_array_get(json_object_get(root, "errors"), 0);
    if (json_is_object(first)) {
        const char *code = json_string_value(json_object_get(first, "code"));
        const char *msg = json_string_value(json_object_get(first, "message"));
        if (code)
            append_clean(out, size, &n, code, strlen(code));
        if (code && msg)
            append_clean(out, size, &n, ": ", 2);
        if (msg)
            append_clean(out, size, &n, msg, strlen(msg));
    }
    json_decref(root);
    if (n > 0)
        return;
    /* not the spec's JSON (a proxy's page, Go's "Client sent an HTTP request to an HTTPS
     * server."): its first line says enough */
    size_t skip = 0;
    while (skip < len && isspace((unsigned char)body[skip]))
        skip++;
    append_clean(out, size < 201 ? size : 201, &n, body + skip, len - skip);
}
