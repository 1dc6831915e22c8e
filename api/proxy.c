/* Invocations: a request for a function (its URL, /fn/{id}/..., or invoke-function) waits,
 * suspended, for an instance lease from the daemon; then one thread running libcurl's multi
 * interface sends it to the instance's Unix socket (local backend) or to the function's Knative
 * address (kubernetes backend) and reads the answer, for every invocation at once. No thread is
 * held while a function works, connections to instances are reused (keep-alive), and the
 * per-request timeout is curl's. */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

#define MAX_ANSWER_BYTES (16u << 20) /* a function's answer beyond this is a 502 */

struct proxy_job {
    request *req;
    hksd_lease lease;
    bool leased;
    bool json_answer; /* invoke-function: the answer wrapped in JSON */
    bool retried;     /* sent again after an instance refused the connection */
    bool sent;        /* the request went out on a connection (libcurl's pre-request callback):
                       * its instance may have acted on it, so it is never sent again */
    char method[16];
    char *target; /* path and query for the instance */
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    CURL *easy;
    uint64_t start_us;
    /* the answer */
    long status;
    json_t *answer_headers; /* [[name, value], ...] */
    char *answer;
    size_t answer_len, answer_cap;
    bool too_large;
    proxy_job *next;
};

struct api_proxy {
    api_server *server;
    hksd *daemon;
    CURLM *multi;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    proxy_job *incoming;
    bool stopping;
    unsigned active;
    /* easy handles kept for the next transfers (proxy thread only): init and cleanup per
     * request cost more than the request itself */
    CURL *spare[64];
    unsigned n_spare;
    bool used; /* transfers were made since the connection cache was last emptied */
};

void api_proxy_job_free(proxy_job *job)
{
    if (!job)
        return;
    curl_slist_free_all(job->headers);
    json_decref(job->answer_headers);
    free(job->target);
    free(job->body);
    free(job->answer);
    free(job);
}

/* ---- answers ---- */

static void fail(request *req, int status, const char *code, const char *message)
{
    api_error(req, status, code, message, NULL);
    if (status == 429 || status == 503)
        req->resp.retry_after_s = 1;
}

static void fail_from_lease(request *req, int failure, const char *message)
{
    switch (failure) {
    case HKSD_FAIL_NOT_FOUND:
        fail(req, 404, "not_found", "no such function");
        break;
    case HKSD_FAIL_BUSY:
        fail(req, 429, "overloaded", message);
        break;
    case HKSD_FAIL_UNAVAILABLE:
        fail(req, 503, "unavailable", message);
        break;
    case HKSD_FAIL_START:
        fail(req, 502, "bad_gateway", message);
        break;
    case HKSD_FAIL_TIMEOUT:
        fail(req, 504, "timeout", message);
        break;
    default:
        fail(req, 500, "internal", message);
    }
}

static bool hop_by_hop(const char *name)
{
    static const char *const names[] = {"connection",
                                        "keep-alive",
                                        "proxy-authenticate",
                                        "proxy-authorization",
                                        "te",
                                        "trailer",
                                        "transfer-encoding",
                                        "upgrade",
                                        "content-length",
                                        "date"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(names); i++) {
        if (strcasecmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

static bool valid_utf8(const char *data, size_t len)
{
    json_t *probe = json_stringn(data, len);
    bool ok = probe != NULL;
    json_decref(probe);
    return ok;
}

/* The function's answer as the client's response. */
static void answer(proxy_job *job, CURLcode rc, hksd_fn_outcome *outcome)
{
    request *req = job->req;
    outcome->duration_us = hks_now_us() - job->start_us;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        outcome->timed_out = true;
        char message[128];
        snprintf(message, sizeof(message), "the function did not answer within %llu ms",
                 (unsigned long long)job->lease.timeout_ms);
        fail(req, 504, "timeout", message);
        return;
    }
    if (job->too_large) {
        outcome->failed = true;
        fail(req, 502, "bad_gateway", "the function's answer is larger than 16 MiB");
        return;
    }
    if (rc != CURLE_OK || job->status < 100) {
        outcome->failed = true;
        char message[300];
        snprintf(message, sizeof(message), "the function's instance did not answer: %s",
                 rc == CURLE_COULDNT_CONNECT && job->sent
                     ? "it ended while handling the request, which was not sent again"
                     : curl_easy_strerror(rc));
        fail(req, 502, "bad_gateway", message);
        return;
    }
    outcome->http_status = (int)job->status;
    if (!job->json_answer) {
        free(req->resp.body);
        req->resp = (response){.status = (int)job->status,
                               .body = job->answer ? job->answer : strdup(""),
                               .len = job->answer_len,
                               .content_type = "",
                               .headers = job->answer_headers};
        job->answer = NULL;
        job->answer_headers = NULL;
        req->answered = true;
        return;
    }
    json_t *headers = json_object();
    size_t i;
    json_t *pair;
    json_array_foreach(job->answer_headers, i, pair)
    {
        char name[128];
        snprintf(name, sizeof(name), "%s", json_string_value(json_array_get(pair, 0)));
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *value = json_string_value(json_array_get(pair, 1));
        json_t *before = json_object_get(headers, name);
        if (before) {
            char *joined = NULL;
            if (asprintf(&joined, "%s, %s", json_string_value(before), value) >= 0) {
                json_object_set_new(headers, name, json_string(joined));
                free(joined);
            }
        } else {
            json_object_set_new(headers, name, json_string(value));
        }
    }
    const char *data = job->answer ? job->answer : "";
    bool text = valid_utf8(data, job->answer_len);
    char *encoded = text ? NULL : api_base64_encode(data, job->answer_len);
    json_t *body = text ? json_stringn(data, job->answer_len) : json_string(encoded ? encoded : "");
    free(encoded);
    api_json(req, 200,
             json_pack("{s:i,s:o,s:o,s:s,s:f,s:b}", "status", (int)job->status, "headers", headers,
                       "body", body, "body_encoding", text ? "utf8" : "base64", "duration_ms",
                       (double)outcome->duration_us / 1000.0, "cold_start", job->lease.cold));
}

static void on_lease(void *ctx, int failure, const hksd_lease *lease, const char *message);

static void finish(api_proxy *p, proxy_job *job, CURLcode rc)
{
    /* libcurl sends a request again by itself when a reused connection dies before the answer,
     * and that new connect fails too when the instance is gone: job->sent tells the cases apart */
    if (rc == CURLE_COULDNT_CONNECT && job->leased && !job->retried && !job->sent) {
        /* the instance died before the daemon heard of it; nothing reached it, so another
         * instance (or a fresh one) may take the request */
        hksd_fn_outcome not_sent = {.not_sent = true};
        hksd_fn_release(p->daemon, &job->lease, &not_sent);
        job->leased = false;
        job->retried = true;
        job->status = 0;
        job->answer_len = 0;
        job->too_large = false;
        json_array_clear(job->answer_headers);
        hksd_fn_acquire(p->daemon, job->req->claims.project, job->req->fn_id, on_lease, job->req);
        return;
    }
    hksd_fn_outcome outcome = {0};
    answer(job, rc, &outcome);
    if (job->leased)
        hksd_fn_release(p->daemon, &job->lease, &outcome);
    job->leased = false;
    api_request_wait_end(job->req);
}

/* ---- curl callbacks (proxy thread) ---- */

static int on_prerequest(void *arg, char *conn_primary_ip, char *conn_local_ip,
                         int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
    proxy_job *job = arg;
    job->sent = true;
    return CURL_PREREQFUNC_OK;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    proxy_job *job = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new status line (after a 100 Continue too): headers start over */
        json_array_clear(job->answer_headers);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - data);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len && (value[value_len - 1] == '\r' || value[value_len - 1] == '\n' ||
                         value[value_len - 1] == ' '))
        value_len--;
    char name[128];
    if (name_len == 0 || name_len >= sizeof(name))
        return len;
    memcpy(name, data, name_len);
    name[name_len] = '\0';
    if (hop_by_hop(name))
        return len;
    json_t *pair = json_pack("[s,s#]", name, value, (int)value_len);
    if (pair)
        json_array_append_new(job->answer_headers, pair);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    proxy_job *job = arg;
    size_t len = size * n;
    if (job->answer_len + len > MAX_ANSWER_BYTES) {
        job->too_large = true;
        return 0; /* aborts the transfer */
    }
    if (job->answer_len + len + 1 > job->answer_cap) {
        size_t cap = job->answer_cap ? job->answer_cap : 4096;
        while (cap < job->answer_len + len + 1)
            cap *= 2;
        char *grown = realloc(job->answer, cap);
        if (!grown)
            return 0;
        job->answer = grown;
        job->answer_cap = cap;
    }
    memcpy(job->answer + job->answer_len, data, len);
    job->answer_len += len;
    job->answer[job->answer_len] = '\0';
    return len;
}

static int start_transfer(api_proxy *p, proxy_job *job)
{
    CURL *easy = p->n_spare ? p->spare[--p->n_spare] : curl_easy_init();
    if (!easy)
        return -1;
    job->easy = easy;
    if (!job->answer_headers)
        job->answer_headers = json_array();
    char url[4096];
    if (job->lease.url[0]) {
        /* the kubernetes backend: the function's Knative address over TCP (its Host header is
         * how Knative's data path finds the function) */
        if ((size_t)snprintf(url, sizeof(url), "%s%s", job->lease.url, job->target) >= sizeof(url))
            return -1;
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    } else {
        snprintf(url, sizeof(url), "http://function%s", job->target);
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, job->lease.socket_path);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
    }
    curl_easy_setopt(easy, CURLOPT_PRIVATE, job);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)job->lease.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, job);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_prerequest);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, job);
    job->sent = false;
    if (strcmp(job->method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(job->method, "GET") != 0 || job->body_len > 0) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job->body ? job->body : "");
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, job->method);
    }
    job->start_us = hks_now_us();
    return curl_multi_add_handle(p->multi, easy) == CURLM_OK ? 0 : -1;
}

/* libcurl keeps idle connections to instances for reuse and drops those whose instance ended
 * only when it opens a new one: after a burst they would hold their fds for as long as hksd stays
 * idle. A second of idleness empties the cache (a new multi handle); the next request connects
 * again, which costs a Unix socket connect. */
static void forget_connections(api_proxy *p)
{
    pthread_mutex_lock(&p->lock);
    CURLM *fresh = p->active == 0 && !p->incoming ? curl_multi_init() : NULL;
    if (fresh) {
        curl_multi_setopt(fresh, CURLMOPT_MAXCONNECTS, 256L);
        curl_multi_cleanup(p->multi);
        p->multi = fresh;
        p->used = false;
    }
    pthread_mutex_unlock(&p->lock);
}

static void *proxy_main(void *arg)
{
    api_proxy *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        proxy_job *incoming = p->incoming;
        p->incoming = NULL;
        bool stop = p->stopping && p->active == 0 && !incoming;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        while (incoming) {
            proxy_job *job = incoming;
            incoming = job->next;
            if (start_transfer(p, job) < 0) {
                finish(p, job, CURLE_FAILED_INIT);
                pthread_mutex_lock(&p->lock);
                p->active--;
                pthread_mutex_unlock(&p->lock);
            }
        }
        int running = 0;
        curl_multi_perform(p->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(p->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode rc = msg->data.result;
            proxy_job *job = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, &job);
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &job->status);
            curl_multi_remove_handle(p->multi, easy);
            if (p->n_spare < HKS_ARRAY_LEN(p->spare)) {
                curl_easy_reset(easy);
                p->spare[p->n_spare++] = easy;
            } else {
                curl_easy_cleanup(easy);
            }
            job->easy = NULL;
            finish(p, job, rc);
            pthread_mutex_lock(&p->lock);
            p->active--;
            pthread_mutex_unlock(&p->lock);
            p->used = true;
        }
        uint64_t before = hks_now_us();
        curl_multi_poll(p->multi, NULL, 0, 1000, NULL);
        if (running == 0 && p->used && hks_now_us() - before >= 900 * 1000)
            forget_connections(p); /* a second without a transfer */
    }
}

/* ---- the lease: called by the daemon, on any thread, without blocking ---- */

static void on_lease(void *ctx, int failure, const hksd_lease *lease, const char *message)
{
    request *req = ctx;
    proxy_job *job = req->proxy;
    api_proxy *p = api_server_proxy(req->server);
    if (failure) {
        fail_from_lease(req, failure, message);
        api_request_wait_end(req);
        return;
    }
    job->lease = *lease;
    job->leased = true;
    pthread_mutex_lock(&p->lock);
    job->next = p->incoming;
    p->incoming = job;
    p->active++;
    curl_multi_wakeup(p->multi); /* under the lock: the proxy thread may replace the handle */
    pthread_mutex_unlock(&p->lock);
}

/* ---- building the request for the instance ---- */

static bool hksd_only_header(const char *name)
{
    return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "host") == 0 ||
           strcasecmp(name, "expect") == 0 || strcasecmp(name, "x-request-id") == 0 ||
           hop_by_hop(name);
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    proxy_job *job = cls;
    if (!key || !value || hksd_only_header(key))
        return MHD_YES;
    char *line = NULL;
    if (asprintf(&line, "%s: %s", key, value) >= 0) {
        struct curl_slist *grown = curl_slist_append(job->headers, line);
        if (grown)
            job->headers = grown;
        free(line);
    }
    return MHD_YES;
}

static proxy_job *new_job(request *req)
{
    proxy_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->req = req;
    req->proxy = job;
    /* curl adds its own Expect and Accept otherwise; the request id travels on */
    char id_header[80];
    snprintf(id_header, sizeof(id_header), "X-Request-Id: %s", req->id);
    job->headers = curl_slist_append(NULL, "Expect:");
    job->headers = curl_slist_append(job->headers, id_header);
    return job;
}

/* ANY /fn/{id}/{path}: the client's request, passed on as it came. */
void api_handle_fn_url(request *req)
{
    proxy_job *job = new_job(req);
    if (!job) {
        fail(req, 503, "unavailable", "out of memory");
        api_request_wait_end(req);
        return;
    }
    snprintf(job->method, sizeof(job->method), "%s", req->method);
    /* the raw URI minus "/fn/<id>": the path and query the function sees (an id spelled with
     * escapes is not a function id) */
    size_t id_len = strlen(req->fn_id);
    if (strncmp(req->raw_uri, "/fn/", 4) != 0 ||
        strncmp(req->raw_uri + 4, req->fn_id, id_len) != 0 ||
        !strchr("/?", req->raw_uri[4 + id_len] ? req->raw_uri[4 + id_len] : '/')) {
        fail(req, 404, "not_found", "no such function");
        api_request_wait_end(req);
        return;
    }
    const char *rest = req->raw_uri + 4 + id_len;
    bool bare = *rest == '\0' || *rest == '?';
    if (asprintf(&job->target, "%s%s", bare ? "/" : "", rest) < 0)
        job->target = NULL;
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, copy_header, job);
    job->body = req->body;
    job->body_len = req->len;
    req->body = NULL;
    req->len = req->cap = 0;
    if (!job->target) {
        fail(req, 503, "unavailable", "out of memory");
        api_request_wait_end(req);
        return;
    }
    hksd_fn_acquire(req->daemon, req->claims.project, req->fn_id, on_lease, req);
}

/* POST /internal/v1/operations/invoke-function: the request described in JSON. */
void api_handle_invoke(request *req)
{
    json_auto_t *in = api_body_object(req);
    const char *field = NULL, *problem = NULL;
    if (!in) {
        api_request_wait_end(req);
        return;
    }
    static const char *const known[] = {"id",      "method", "path",         "query",
                                        "headers", "body",   "body_encoding"};
    const char *key;
    json_t *value;
    field = api_unknown_field(in, known, HKS_ARRAY_LEN(known));
    if (field)
        problem = "unknown field";
    const char *id = json_string_value(json_object_get(in, "id"));
    json_t *method_json = json_object_get(in, "method");
    const char *method = method_json ? json_string_value(method_json) : "POST";
    json_t *path_json = json_object_get(in, "path");
    const char *path = path_json ? json_string_value(path_json) : "/";
    json_t *query_json = json_object_get(in, "query");
    const char *query = query_json ? json_string_value(query_json) : "";
    json_t *headers = json_object_get(in, "headers");
    json_t *body = json_object_get(in, "body");
    json_t *encoding_json = json_object_get(in, "body_encoding");
    const char *encoding = encoding_json ? json_string_value(encoding_json) : "utf8";
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    bool method_ok = false;
    for (size_t i = 0; method && i < HKS_ARRAY_LEN(methods); i++)
        method_ok = method_ok || strcmp(method, methods[i]) == 0;
    if (field) {
    } else if (!id) {
        field = "id", problem = "id is required (a function id, fn-...)";
    } else if (!method_ok) {
        field = "method", problem = "method must be one of GET HEAD POST PUT PATCH DELETE OPTIONS";
    } else if (!path || path[0] != '/' || strpbrk(path, " \r\n?#")) {
        field = "path", problem = "path must start with / and hold no spaces, ? or #";
    } else if (!query || strpbrk(query, " \r\n#")) {
        field = "query", problem = "query must be a string without spaces";
    } else if (headers && !json_is_object(headers)) {
        field = "headers", problem = "headers must be an object of strings";
    } else if (body && !json_is_string(body)) {
        field = "body", problem = "body must be a string";
    } else if (!encoding || (strcmp(encoding, "utf8") != 0 && strcmp(encoding, "base64") != 0)) {
        field = "body_encoding", problem = "body_encoding must be utf8 or base64";
    }
    proxy_job *job = field ? NULL : new_job(req);
    if (!field && job) {
        json_object_foreach(headers, key, value)
        {
            const char *v = json_string_value(value);
            bool clean = v && !strpbrk(v, "\r\n") && key[0] && !strpbrk(key, " :\r\n");
            if (!clean) {
                field = "headers", problem = "each header must be a name and a one-line string";
                break;
            }
            copy_header(job, MHD_HEADER_KIND, key, v);
        }
    }
    if (!field && job && body) {
        const char *text = json_string_value(body);
        size_t len = json_string_length(body);
        if (strcmp(encoding, "base64") == 0) {
            job->body = api_base64_decode(text, len, &job->body_len);
            if (!job->body)
                field = "body", problem = "body is not valid base64";
        } else if ((job->body = malloc(len + 1))) {
            memcpy(job->body, text, len + 1);
            job->body_len = len;
        }
    }
    if (field) {
        api_error(req, 422, "invalid", problem, json_pack("{s:s}", "field", field));
        api_request_wait_end(req);
        return;
    }
    if (!job || asprintf(&job->target, "%s%s%s", path, query[0] ? "?" : "", query) < 0) {
        if (job)
            job->target = NULL;
        fail(req, 503, "unavailable", "out of memory");
        api_request_wait_end(req);
        return;
    }
    job->json_answer = true;
    snprintf(job->method, sizeof(job->method), "%s", method);
    snprintf(req->fn_id, sizeof(req->fn_id), "%.31s", id);
    hksd_fn_acquire(req->daemon, req->claims.project, req->fn_id, on_lease, req);
}

/* ---- start and stop ---- */

int api_proxy_start(api_server *s, hksd *d, api_proxy **out, hks_error *err)
{
    /* thread-safe since curl 7.84 (CURL_VERSION_THREADSAFE) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return hks_fail(err, 0, "curl_global_init");
    api_proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return hks_fail(err, ENOMEM, "proxy");
    p->server = s;
    p->daemon = d;
    pthread_mutex_init(&p->lock, NULL);
    p->multi = curl_multi_init();
    if (!p->multi) {
        free(p);
        return hks_fail(err, 0, "curl_multi_init");
    }
    /* idle keep-alive connections kept per instance socket */
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, 256L);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        curl_multi_cleanup(p->multi);
        free(p);
        return hks_fail(err, errno, "start the proxy thread");
    }
    p->running = true;
    *out = p;
    return 0;
}

void api_proxy_stop(api_proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    if (p->running)
        curl_multi_wakeup(p->multi); /* under the lock: the proxy thread may replace the handle */
    pthread_mutex_unlock(&p->lock);
    if (p->running)
        pthread_join(p->thread, NULL);
    while (p->n_spare)
        curl_easy_cleanup(p->spare[--p->n_spare]);
    curl_multi_cleanup(p->multi);
    pthread_mutex_destroy(&p->lock);
    free(p);
    curl_global_cleanup();
}
