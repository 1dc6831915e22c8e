/* The HTTP side of the Kubernetes client over libcurl: TLS verified against the cluster's CA
 * (in memory or a file), client certificates, a bearer token read again when it may have rotated
 * and after a 401, a timeout on every request, streamed replies for watches. Easy handles are
 * kept in a small pool so that connections to the API server are reused across requests and
 * threads. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#define POOL_SIZE      4
#define TOKEN_MAX      16384
#define TIMEOUT_MS     30000u
#define CONNECT_MS     5000u
#define TOKEN_REREAD_S 60u

struct kube_client {
    kube_conn conn;
    unsigned timeout_ms, connect_timeout_ms, token_reread_s;
    pthread_mutex_t lock; /* token and pool */
    char *token;          /* the bearer token in use, or NULL */
    time_t token_read_at;
    CURL *pool[POOL_SIZE];
    unsigned pooled;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const kube_kind_info kinds[KUBE_KIND_COUNT] = {
    [KUBE_NAMESPACE] = {"Namespace", "v1", "namespaces", "/api/v1", false},
    [KUBE_SERVICE_ACCOUNT] = {"ServiceAccount", "v1", "serviceaccounts", "/api/v1", true},
    [KUBE_CONFIG_MAP] = {"ConfigMap", "v1", "configmaps", "/api/v1", true},
    [KUBE_SECRET] = {"Secret", "v1", "secrets", "/api/v1", true},
    [KUBE_POD] = {"Pod", "v1", "pods", "/api/v1", true},
    [KUBE_NETWORK_POLICY] = {"NetworkPolicy", "networking.k8s.io/v1", "networkpolicies",
                             "/apis/networking.k8s.io/v1", true},
    [KUBE_JOB] = {"Job", "batch/v1", "jobs", "/apis/batch/v1", true},
    [KUBE_CRON_JOB] = {"CronJob", "batch/v1", "cronjobs", "/apis/batch/v1", true},
    [KUBE_KSERVICE] = {"Service", "serving.knative.dev/v1", "services",
                       "/apis/serving.knative.dev/v1", true},
};

const kube_kind_info *kube_kind_get(kube_kind kind)
{
    return (unsigned)kind < KUBE_KIND_COUNT ? &kinds[kind] : NULL;
}

const char *kube_kind_name(kube_kind kind)
{
    return (unsigned)kind < KUBE_KIND_COUNT ? kinds[kind].kind : "unknown";
}

int kube_kind_parse(const char *name)
{
    if (!name)
        return -1;
    static const struct {
        const char *name;
        kube_kind kind;
    } short_names[] = {
        {"ns", KUBE_NAMESPACE},
        {"sa", KUBE_SERVICE_ACCOUNT},
        {"cm", KUBE_CONFIG_MAP},
        {"netpol", KUBE_NETWORK_POLICY},
        {"cj", KUBE_CRON_JOB},
        {"ksvc", KUBE_KSERVICE},
        {"KnativeService", KUBE_KSERVICE},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(short_names); i++)
        if (strcmp(name, short_names[i].name) == 0)
            return short_names[i].kind;
    for (int k = 0; k < KUBE_KIND_COUNT; k++)
        if (strcmp(name, kinds[k].kind) == 0 || strcmp(name, kinds[k].plural) == 0 ||
            strcasecmp(name, kinds[k].kind) == 0)
            return k;
    return -1;
}

void kube_response_free(kube_response *rs)
{
    free(rs->body);
    memset(rs, 0, sizeof(*rs));
}

/* ---- the token ---- */

/* The token file's content (trimmed) into a malloc'd string. */
static char *read_token_file(const char *path, hks_error *err)
{
    cleanup_free char *buf = malloc(TOKEN_MAX + 1);
    if (!buf) {
        hks_fail(err, ENOMEM, "token file %s", path);
        return NULL;
    }
    ssize_t n = hks_read_file(path, buf, TOKEN_MAX + 1, err);
    if (n < 0) {
        hks_wrap(err, "bearer token");
        return NULL;
    }
    if ((size_t)n >= TOKEN_MAX) {
        kube_fail(err, EFBIG, "bearer token file %s: larger than %d bytes", path, TOKEN_MAX);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            OPENSSL_cleanse(buf, (size_t)n);
            kube_fail(err, EINVAL, "bearer token file %s: not a token (byte %zd)", path, i);
            return NULL;
        }
    if (n == 0) {
        kube_fail(err, EINVAL, "bearer token file %s is empty", path);
        return NULL;
    }
    return steal_pointer(&buf);
}

static void token_set(kube_client *c, char *token)
{
    if (c->token)
        OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
    c->token = token;
    c->token_read_at = time(NULL);
}

/* The "Authorization: Bearer ..." header to send, read again from the file when forced (after a
 * 401) or when the copy in memory is older than token_reread_s. NULL with err only when a file
 * that must be read cannot be; *header is "" when the configuration has no token. */
static int auth_header(kube_client *c, bool force, char **header, hks_error *err)
{
    *header = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->conn.token_file[0] &&
        (force || !c->token || time(NULL) - c->token_read_at >= (time_t)c->token_reread_s)) {
        char *fresh = read_token_file(c->conn.token_file, err);
        if (!fresh && !c->token) {
            pthread_mutex_unlock(&c->lock);
            return -1;
        }
        if (fresh)
            token_set(c, fresh);
    }
    size_t n = c->token ? strlen(c->token) + 32 : 1;
    *header = malloc(n);
    if (*header)
        snprintf(*header, n, c->token ? "Authorization: Bearer %s" : "%s",
                 c->token ? c->token : "");
    pthread_mutex_unlock(&c->lock);
    return *header ? 0 : hks_fail(err, ENOMEM, "authorization header");
}

static void header_free(char **h)
{
    if (*h) {
        OPENSSL_cleanse(*h, strlen(*h));
        free(*h);
    }
}

/* ---- the client ---- */

int kube_client_new(const kube_options *opt, kube_client **out, hks_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return kube_fail(err, EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    kube_client *c = calloc(1, sizeof(*c));
    if (!c)
        return hks_fail(err, ENOMEM, "kubernetes client");
    pthread_mutex_init(&c->lock, NULL);
    c->timeout_ms = opt->timeout_ms ? opt->timeout_ms : TIMEOUT_MS;
    c->connect_timeout_ms = opt->connect_timeout_ms ? opt->connect_timeout_ms : CONNECT_MS;
    c->token_reread_s = opt->token_reread_s ? opt->token_reread_s : TOKEN_REREAD_S;
    if (kube_config_load(opt, &c->conn, err) < 0) {
        kube_client_free(c);
        return -1;
    }
    if (c->conn.token && !(c->token = strdup(c->conn.token))) {
        kube_client_free(c);
        return hks_fail(err, ENOMEM, "kubernetes client");
    }
    c->token_read_at = time(NULL);
    /* files named by the configuration are read now so that a wrong path fails at start */
    const char *files[] = {c->conn.ca_file, c->conn.cert_file, c->conn.key_file};
    for (size_t i = 0; i < HKS_ARRAY_LEN(files); i++)
        if (files[i][0] && access(files[i], R_OK) < 0) {
            hks_fail(err, errno, "%s: %s", c->conn.source, files[i]);
            kube_client_free(c);
            return -1;
        }
    if (c->conn.token_file[0]) {
        char *token = read_token_file(c->conn.token_file, err);
        if (!token) {
            hks_wrap(err, "%s", c->conn.source);
            kube_client_free(c);
            return -1;
        }
        token_set(c, token);
    }
    *out = c;
    return 0;
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->pooled; i++)
        curl_easy_cleanup(c->pool[i]);
    token_set(c, NULL);
    kube_conn_free(&c->conn);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *kube_client_namespace(const kube_client *c)
{
    return c->conn.ns;
}

const char *kube_client_server(const kube_client *c)
{
    return c->conn.server;
}

const char *kube_client_source(const kube_client *c)
{
    return c->conn.source;
}

static CURL *handle_take(kube_client *c)
{
    pthread_mutex_lock(&c->lock);
    CURL *h = c->pooled ? c->pool[--c->pooled] : NULL;
    pthread_mutex_unlock(&c->lock);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void handle_give(kube_client *c, CURL *h)
{
    pthread_mutex_lock(&c->lock);
    if (c->pooled < POOL_SIZE) {
        c->pool[c->pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one request ---- */

typedef struct reply_sink {
    const kube_request *rq;
    kube_response *rs;
    size_t cap;
    CURL *h;
    int stop_rc;    /* what on_line returned to stop the stream */
    hks_error *err; /* on_line's */
    bool too_big;
} reply_sink;

/* Streamed replies: hand each complete line to on_line, keep the unfinished tail. */
static int sink_lines(reply_sink *s)
{
    size_t start = 0;
    for (size_t i = 0; i < s->rs->body_len; i++) {
        if (s->rs->body[i] != '\n')
            continue;
        size_t len = i - start;
        if (len > 0) {
            int rc = s->rq->on_line(s->rq->line_ctx, s->rs->body + start, len, s->err);
            if (rc != 0) {
                s->stop_rc = rc;
                return -1;
            }
        }
        start = i + 1;
    }
    memmove(s->rs->body, s->rs->body + start, s->rs->body_len - start);
    s->rs->body_len -= start;
    return 0;
}

static size_t sink_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    reply_sink *s = userdata;
    size_t n = size * nmemb;
    size_t max = s->rq->on_line ? KUBE_EVENT_MAX : KUBE_BODY_MAX;
    if (s->rs->body_len + n > max) {
        s->too_big = true;
        return 0;
    }
    if (s->rs->body_len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->rs->body_len + n + 1)
            cap *= 2;
        char *grown = realloc(s->rs->body, cap);
        if (!grown)
            return 0;
        s->rs->body = grown;
        s->cap = cap;
    }
    memcpy(s->rs->body + s->rs->body_len, data, n);
    s->rs->body_len += n;
    s->rs->body[s->rs->body_len] = '\0';
    if (s->rq->on_line) {
        long status = 0;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && sink_lines(s) < 0)
            return 0;
    }
    return n;
}

static int configure_tls(kube_client *c, CURL *h)
{
    int bad = 0;
    if (c->conn.insecure) {
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
    }
    if (c->conn.ca_pem) {
        struct curl_blob blob = {c->conn.ca_pem, c->conn.ca_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK;
    } else if (c->conn.ca_file[0]) {
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO, c->conn.ca_file) != CURLE_OK;
    }
    if (c->conn.cert_pem) {
        struct curl_blob cert = {c->conn.cert_pem, c->conn.cert_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK;
    } else if (c->conn.cert_file[0]) {
        bad |= curl_easy_setopt(h, CURLOPT_SSLCERT, c->conn.cert_file) != CURLE_OK;
    }
    if (c->conn.key_pem) {
        struct curl_blob key = {c->conn.key_pem, c->conn.key_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK;
    } else if (c->conn.key_file[0]) {
        bad |= curl_easy_setopt(h, CURLOPT_SSLKEY, c->conn.key_file) != CURLE_OK;
    }
    return bad ? -1 : 0;
}

static void slist_free(struct curl_slist **l)
{
    curl_slist_free_all(*l);
}

static int send_once(kube_client *c, CURL *h, const kube_request *rq, const char *auth,
                     kube_response *rs, hks_error *err)
{
    char url[KUBE_SERVER_MAX + 4096];
    int n = snprintf(url, sizeof(url), "%s%s", c->conn.server, rq->path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return kube_fail(err, EINVAL, "%s: request path too long", rq->what);
    __attribute__((cleanup(slist_free))) struct curl_slist *headers = NULL;
    char content_type[128];
    snprintf(content_type, sizeof(content_type), "Content-Type: %s",
             rq->content_type ? rq->content_type : "application/json");
    char accept[128];
    snprintf(accept, sizeof(accept), "Accept: %s", rq->accept ? rq->accept : "application/json");
    const char *lines[] = {accept, auth[0] ? auth : NULL, rq->body ? content_type : NULL};
    for (size_t i = 0; i < HKS_ARRAY_LEN(lines); i++) {
        if (!lines[i])
            continue;
        struct curl_slist *next = curl_slist_append(headers, lines[i]);
        if (!next)
            return hks_fail(err, ENOMEM, "%s: headers", rq->what);
        headers = next;
    }
    reply_sink sink = {.rq = rq, .rs = rs, .h = h, .err = err};
    unsigned timeout = rq->timeout_ms ? rq->timeout_ms : c->timeout_ms;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "hksd") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    if (rq->body) {
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body) != CURLE_OK;
        bad |=
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) != CURLE_OK;
    } else if (strcmp(rq->method, "GET") == 0) {
        bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    if (bad || configure_tls(c, h) < 0)
        return kube_fail(err, EIO, "%s: libcurl refused an option", rq->what);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    if (sink.stop_rc)
        return sink.stop_rc;
    if (sink.too_big)
        return kube_fail(err, EIO, "%s: reply larger than %u bytes", rq->what,
                         rq->on_line ? KUBE_EVENT_MAX : KUBE_BODY_MAX);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return kube_fail(err, ETIMEDOUT, "%s: %s: no complete reply within %u ms", rq->what,
                         c->conn.server, timeout);
    if (rc != CURLE_OK)
        return kube_fail(err, EIO, "%s: %s: %s", rq->what, c->conn.server, curl_easy_strerror(rc));
    /* the tail of a stream that did not end with a newline */
    if (rq->on_line && rs->status == 200 && rs->body_len > 0) {
        int line_rc = rq->on_line(rq->line_ctx, rs->body, rs->body_len, err);
        rs->body_len = 0;
        if (line_rc != 0)
            return line_rc;
    }
    return 0;
}

int kube_send(kube_client *c, const kube_request *rq, kube_response *rs, hks_error *err)
{
    memset(rs, 0, sizeof(*rs));
    for (int attempt = 0; attempt < 2; attempt++) {
        char *auth = NULL;
        if (auth_header(c, attempt > 0, &auth, err) < 0)
            return hks_wrap(err, "%s", rq->what);
        CURL *h = handle_take(c);
        int rc = h ? send_once(c, h, rq, auth, rs, err)
                   : hks_fail(err, ENOMEM, "%s: curl_easy_init", rq->what);
        if (h)
            handle_give(c, h);
        header_free(&auth);
        if (rc != 0)
            return rc;
        /* a bound token rotated under us: read it again and retry once */
        if (rs->status != 401 || attempt > 0 || !c->conn.token_file[0])
            return 0;
        kube_response_free(rs);
    }
    return 0;
}

int kube_fail_reply(hks_error *err, const char *what, const kube_response *rs)
{
    char summary[800];
    kube_status_summary(rs->status, rs->body, rs->body_len, summary, sizeof(summary));
    return kube_fail(err, kube_status_errno(rs->status, rs->body, rs->body_len), "%s: %s", what,
                     summary);
}
