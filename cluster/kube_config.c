/* Where the API server is and how to authenticate to it: the in-cluster configuration (service
 * account token, CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount,
 * KUBERNETES_SERVICE_HOST/PORT) or a kubeconfig's context (bearer token or token file, client
 * certificate and key, CA, inline as base64 data or as files). */
#include "kube_internal.h"

#include <errno.h>
#include <libgen.h>
#include <string.h>

#include <openssl/crypto.h>

void kube_conn_free(kube_conn *conn)
{
    if (conn->token)
        OPENSSL_cleanse(conn->token, strlen(conn->token));
    if (conn->key_pem)
        OPENSSL_cleanse(conn->key_pem, conn->key_len);
    free(conn->token);
    free(conn->ca_pem);
    free(conn->cert_pem);
    free(conn->key_pem);
    memset(conn, 0, sizeof(*conn));
}

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

/* key's value in obj: absent is NULL and fine; present, it must be a printable string shorter
 * than max. */
static int optional_string(const json_t *obj, const char *key, size_t max, const char *where,
                           const char **out, hks_error *err)
{
    *out = NULL;
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return kube_fail(err, EINVAL, "%s: \"%s\" is not a string", where, key);
    const char *s = json_string_value(v);
    if (json_string_length(v) >= max || strlen(s) != json_string_length(v) || !printable(s))
        return kube_fail(err, EINVAL, "%s: \"%s\" is too long or holds control bytes", where, key);
    *out = s;
    return 0;
}

/* RFC 4648 base64 (whitespace ignored, padding optional) into a malloc'd buffer. */
static int base64_decode(const char *text, char **out, size_t *out_len)
{
    size_t n = strlen(text);
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return -1;
    size_t o = 0, pad = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        if (ch == '=') {
            pad++;
            continue;
        }
        int v = hks_base64_value(ch, false);
        if (v < 0 || pad) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (pad > 2 || bits >= 6 || acc != 0) {
        free(buf);
        return -1;
    }
    buf[o] = '\0';
    *out = (char *)buf;
    *out_len = o;
    return 0;
}

/* path made absolute against base_dir when relative. */
static int resolve_path(const char *path, const char *base_dir, char *out, size_t size,
                        const char *where, const char *key, hks_error *err)
{
    int n = (path[0] == '/' || !base_dir || !base_dir[0])
                ? snprintf(out, size, "%s", path)
                : snprintf(out, size, "%s/%s", base_dir, path);
    if (n < 0 || (size_t)n >= size)
        return kube_fail(err, ENAMETOOLONG, "%s: \"%s\" is too long", where, key);
    return 0;
}

/* An entry of a kubeconfig list ("clusters", "contexts", "users"): {name, <field>: {...}}. */
static const json_t *named_entry(const json_t *root, const char *list, const char *field,
                                 const char *name, hks_error *err)
{
    const json_t *arr = json_object_get(root, list);
    if (arr && !json_is_array(arr) && !json_is_null(arr)) {
        kube_fail(err, EINVAL, "kubeconfig: \"%s\" is not a list", list);
        return NULL;
    }
    const json_t *found = NULL;
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *n = string_at(e, "name");
        if (!n || strcmp(n, name) != 0)
            continue;
        if (found) {
            kube_fail(err, EINVAL, "kubeconfig: two %s named \"%.100s\"", list, name);
            return NULL;
        }
        found = json_object_get(e, field);
        if (!json_is_object(found)) {
            kube_fail(err, EINVAL, "kubeconfig: %s \"%.100s\" has no \"%s\" mapping", list, name,
                      field);
            return NULL;
        }
    }
    if (!found)
        kube_fail(err, EINVAL, "kubeconfig: no %s named \"%.100s\"", list, name);
    return found;
}

/* data (base64) or a file: the pair a kubeconfig offers for a CA, a certificate, a key. */
static int blob_or_file(const json_t *entry, const char *data_key, const char *file_key,
                        const char *base_dir, const char *where, char **pem, size_t *pem_len,
                        char *file, size_t file_size, hks_error *err)
{
    const char *data = NULL, *path = NULL;
    if (optional_string(entry, data_key, KUBE_DOC_MAX, where, &data, err) < 0 ||
        optional_string(entry, file_key, PATH_MAX, where, &path, err) < 0)
        return -1;
    if (data && path)
        return kube_fail(err, EINVAL, "%s: both \"%s\" and \"%s\"", where, data_key, file_key);
    if (data) {
        if (base64_decode(data, pem, pem_len) < 0 || *pem_len == 0)
            return kube_fail(err, EINVAL, "%s: \"%s\" is not base64", where, data_key);
        return 0;
    }
    if (path && path[0])
        return resolve_path(path, base_dir, file, file_size, where, file_key, err);
    return 0;
}

static int check_server(const char *server, const char *where, hks_error *err)
{
    size_t n = strlen(server);
    bool scheme = strncmp(server, "https://", 8) == 0 || strncmp(server, "http://", 7) == 0;
    const char *host = scheme ? strstr(server, "://") + 3 : "";
    if (!scheme || !host[0] || host[0] == '/' || strpbrk(server, " \"'<>\\^`{|}") ||
        n >= KUBE_SERVER_MAX)
        return kube_fail(err, EINVAL, "%s: server \"%.200s\" is not an http(s) URL", where, server);
    return 0;
}

static int parse_user(const json_t *user, const char *user_name, const char *base_dir,
                      kube_conn *out, hks_error *err)
{
    char where[200];
    snprintf(where, sizeof(where), "kubeconfig: user \"%.100s\"", user_name);
    static const char *const unsupported[] = {"exec", "auth-provider", "username", "password",
                                              "as",   "impersonate"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(unsupported); i++)
        if (json_object_get(user, unsupported[i]))
            return kube_fail(err, EINVAL,
                             "%s: \"%s\" is not supported (use a token, a token file or a client "
                             "certificate)",
                             where, unsupported[i]);
    const char *token = NULL, *token_file = NULL;
    if (optional_string(user, "token", 16384, where, &token, err) < 0 ||
        optional_string(user, "tokenFile", PATH_MAX, where, &token_file, err) < 0)
        return -1;
    if (token && token[0] && !(out->token = strdup(token)))
        return kube_fail(err, ENOMEM, "%s: token", where);
    if (!token && token_file && token_file[0] &&
        resolve_path(token_file, base_dir, out->token_file, sizeof(out->token_file), where,
                     "tokenFile", err) < 0)
        return -1;
    if (blob_or_file(user, "client-certificate-data", "client-certificate", base_dir, where,
                     &out->cert_pem, &out->cert_len, out->cert_file, sizeof(out->cert_file),
                     err) < 0 ||
        blob_or_file(user, "client-key-data", "client-key", base_dir, where, &out->key_pem,
                     &out->key_len, out->key_file, sizeof(out->key_file), err) < 0)
        return -1;
    bool has_cert = out->cert_pem || out->cert_file[0];
    bool has_key = out->key_pem || out->key_file[0];
    if (has_cert != has_key)
        return kube_fail(err, EINVAL, "%s: a client certificate needs its key and the reverse",
                         where);
    return 0;
}

static int parse_kubeconfig_tree(const json_t *root, const char *base_dir, const char *context,
                                 kube_conn *out, hks_error *err)
{
    if (!json_is_object(root))
        return kube_fail(err, EINVAL, "kubeconfig: not a mapping");
    const char *current = NULL;
    if (!context) {
        if (optional_string(root, "current-context", 256, "kubeconfig", &current, err) < 0)
            return -1;
        if (!current || !current[0])
            return kube_fail(err, EINVAL, "kubeconfig: no current-context (name one)");
        context = current;
    }
    const json_t *ctx = named_entry(root, "contexts", "context", context, err);
    if (!ctx)
        return -1;
    char where[200];
    snprintf(where, sizeof(where), "kubeconfig: context \"%.100s\"", context);
    const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
    if (optional_string(ctx, "cluster", 256, where, &cluster_name, err) < 0 ||
        optional_string(ctx, "user", 256, where, &user_name, err) < 0 ||
        optional_string(ctx, "namespace", KUBE_NAMESPACE_MAX, where, &ns, err) < 0)
        return -1;
    if (!cluster_name || !cluster_name[0])
        return kube_fail(err, EINVAL, "%s: no cluster", where);
    if (ns && ns[0] && !kube_dns_label(ns))
        return kube_fail(err, EINVAL, "%s: namespace \"%s\" is not a DNS label", where, ns);
    snprintf(out->ns, sizeof(out->ns), "%s", ns && ns[0] ? ns : "default");

    const json_t *cluster = named_entry(root, "clusters", "cluster", cluster_name, err);
    if (!cluster)
        return -1;
    snprintf(where, sizeof(where), "kubeconfig: cluster \"%.100s\"", cluster_name);
    const char *server = NULL;
    if (optional_string(cluster, "server", KUBE_SERVER_MAX, where, &server, err) < 0)
        return -1;
    if (!server)
        return kube_fail(err, EINVAL, "%s: no server", where);
    if (check_server(server, where, err) < 0)
        return -1;
    snprintf(out->server, sizeof(out->server), "%s", server);
    size_t n = strlen(out->server);
    while (n > 0 && out->server[n - 1] == '/')
        out->server[--n] = '\0';
    const json_t *insecure = json_object_get(cluster, "insecure-skip-tls-verify");
    if (insecure && !json_is_boolean(insecure))
        return kube_fail(err, EINVAL, "%s: insecure-skip-tls-verify is not true or false", where);
    out->insecure = json_is_true(insecure);
    if (json_object_get(cluster, "proxy-url"))
        return kube_fail(err, EINVAL, "%s: \"proxy-url\" is not supported", where);
    if (blob_or_file(cluster, "certificate-authority-data", "certificate-authority", base_dir,
                     where, &out->ca_pem, &out->ca_len, out->ca_file, sizeof(out->ca_file),
                     err) < 0)
        return -1;

    if (user_name && user_name[0]) {
        const json_t *user = named_entry(root, "users", "user", user_name, err);
        if (!user || parse_user(user, user_name, base_dir, out, err) < 0)
            return -1;
    }
    return 0;
}

int kube_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                 const char *context, kube_conn *out, hks_error *err)
{
    memset(out, 0, sizeof(*out));
    json_t *root = kube_yaml_parse(text, len, err);
    if (!root)
        return hks_wrap(err, "kubeconfig");
    int rc = parse_kubeconfig_tree(root, base_dir, context, out, err);
    json_decref(root);
    if (rc < 0)
        kube_conn_free(out);
    return rc;
}

int kube_config_in_cluster(const char *host, const char *port, const char *sa_dir, kube_conn *out,
                           hks_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!host || !host[0] || !port || !port[0])
        return kube_fail(err, ENOENT,
                         "not in a cluster: KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT "
                         "is not set");
    unsigned long long port_no;
    if (hks_parse_uint(port, 1, 65535, &port_no) < 0)
        return kube_fail(err, EINVAL, "KUBERNETES_SERVICE_PORT \"%.20s\" is not a port", port);
    bool ipv6 = strchr(host, ':') != NULL;
    if (strpbrk(host, "/[]@ ") || strlen(host) > 255 || !printable(host))
        return kube_fail(err, EINVAL, "KUBERNETES_SERVICE_HOST \"%.100s\" is not a host", host);
    snprintf(out->server, sizeof(out->server), "https://%s%s%s:%llu", ipv6 ? "[" : "", host,
             ipv6 ? "]" : "", port_no);
    int n = snprintf(out->token_file, sizeof(out->token_file), "%s/token", sa_dir);
    int m = snprintf(out->ca_file, sizeof(out->ca_file), "%s/ca.crt", sa_dir);
    if (n < 0 || (size_t)n >= sizeof(out->token_file) || m < 0 || (size_t)m >= sizeof(out->ca_file))
        return kube_fail(err, ENAMETOOLONG, "service account directory %.200s", sa_dir);
    char ns_path[PATH_MAX + 16];
    snprintf(ns_path, sizeof(ns_path), "%s/namespace", sa_dir);
    char ns[KUBE_NAMESPACE_MAX + 2];
    ssize_t got = hks_read_file(ns_path, ns, sizeof(ns), err);
    if (got < 0)
        return hks_wrap(err, "in-cluster namespace");
    while (got > 0 && (ns[got - 1] == '\n' || ns[got - 1] == ' '))
        ns[--got] = '\0';
    if (!kube_dns_label(ns))
        return kube_fail(err, EINVAL, "in-cluster namespace in %s is not a DNS label", ns_path);
    snprintf(out->ns, sizeof(out->ns), "%.63s", ns);
    snprintf(out->source, sizeof(out->source), "in-cluster (service account in %.1000s)", sa_dir);
    return 0;
}

static int load_kubeconfig_file(const char *path, const char *context, kube_conn *out,
                                hks_error *err)
{
    cleanup_file FILE *f = fopen(path, "re");
    if (!f)
        return hks_fail(err, errno, "kubeconfig %s", path);
    cleanup_free char *text = malloc(KUBE_DOC_MAX + 1);
    if (!text)
        return hks_fail(err, ENOMEM, "kubeconfig %s", path);
    size_t len = fread(text, 1, KUBE_DOC_MAX + 1, f);
    if (ferror(f))
        return hks_fail(err, EIO, "kubeconfig %s: read", path);
    if (len > KUBE_DOC_MAX)
        return kube_fail(err, EFBIG, "kubeconfig %s: larger than %u bytes", path, KUBE_DOC_MAX);
    char dir_buf[PATH_MAX];
    snprintf(dir_buf, sizeof(dir_buf), "%s", path);
    const char *base_dir = dirname(dir_buf);
    if (kube_config_parse_kubeconfig(text, len, base_dir, context, out, err) < 0)
        return hks_wrap(err, "%s", path);
    snprintf(out->source, sizeof(out->source), "kubeconfig %s%s%.100s", path,
             context ? ", context " : "", context ? context : "");
    return 0;
}

int kube_config_load(const kube_options *opt, kube_conn *out, hks_error *err)
{
    const char *sa_dir = opt->serviceaccount_dir ? opt->serviceaccount_dir : KUBE_SA_DIR;
    if (opt->in_cluster)
        return kube_config_in_cluster(getenv("KUBERNETES_SERVICE_HOST"),
                                      getenv("KUBERNETES_SERVICE_PORT"), sa_dir, out, err);
    if (opt->kubeconfig)
        return load_kubeconfig_file(opt->kubeconfig, opt->context, out, err);
    const char *env = getenv("KUBECONFIG");
    if (env && env[0]) {
        char first[PATH_MAX];
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(env, ":"), env);
        return load_kubeconfig_file(first, opt->context, out, err);
    }
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return kube_config_in_cluster(getenv("KUBERNETES_SERVICE_HOST"),
                                      getenv("KUBERNETES_SERVICE_PORT"), sa_dir, out, err);
    const char *home = getenv("HOME");
    if (!home || !home[0])
        return kube_fail(err, ENOENT,
                         "no Kubernetes configuration: not in a cluster, no KUBECONFIG, no HOME");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.kube/config", home);
    return load_kubeconfig_file(path, opt->context, out, err);
}
