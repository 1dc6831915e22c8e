/* Scheduled invocations of functions: the daemon's CronJob runs ask the edge, which speaks HTTP,
 * to send one request to an instance of a function and wait for the answer. Called on a run's own
 * thread, so it blocks: an instance is leased like for any invocation, the request goes over the
 * instance's socket with libcurl's easy interface, and the lease is given back with the outcome,
 * so the function's counters, scaling and timeouts treat it like any other call. */
#include "internal.h"

#include <curl/curl.h>
#include <string.h>

typedef struct lease_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int failure;
    hksd_lease lease;
    char message[256];
} lease_wait;

static void on_lease(void *ctx, int failure, const hksd_lease *lease, const char *message)
{
    lease_wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->failure = failure;
    if (lease)
        w->lease = *lease;
    snprintf(w->message, sizeof(w->message), "%s", message ? message : "");
    w->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int acquire(hksd *d, const hksd_invocation *inv, hksd_lease *lease, char *message,
                   size_t size)
{
    lease_wait w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    hksd_fn_acquire(d, inv->project, inv->function_id, on_lease, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    *lease = w.lease;
    snprintf(message, size, "%s", w.message);
    return w.failure;
}

typedef struct transfer {
    hksd_invocation_result *out;
    size_t body_max, cap;
    const atomic_bool *cancel;
    const atomic_bool *stopping;
} transfer;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    transfer *t = arg;
    size_t len = size * n, keep = len;
    hksd_invocation_result *out = t->out;
    if (out->body_len + keep > t->body_max) {
        keep = t->body_max - out->body_len;
        out->body_truncated = true;
    }
    if (keep && out->body_len + keep + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < out->body_len + keep + 1)
            cap *= 2;
        char *grown = realloc(out->body, cap);
        if (!grown)
            return 0;
        out->body = grown;
        t->cap = cap;
    }
    if (keep) {
        memcpy(out->body + out->body_len, data, keep);
        out->body_len += keep;
        out->body[out->body_len] = '\0';
    }
    return len; /* the rest is read and dropped: the function is not cut off */
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    transfer *t = arg;
    return (t->cancel && atomic_load(t->cancel)) || atomic_load(t->stopping);
}

static struct curl_slist *request_headers(json_t *headers)
{
    struct curl_slist *list = curl_slist_append(NULL, "User-Agent: hksd-cronjob");
    /* libcurl adds these for a POST body unless told not to */
    list = list ? curl_slist_append(list, "Expect:") : NULL;
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        char *line = NULL;
        if (!list || asprintf(&line, "%s: %s", name, json_string_value(value)) < 0)
            break;
        struct curl_slist *grown = curl_slist_append(list, line);
        free(line);
        if (!grown)
            break;
        list = grown;
    }
    return list;
}

void api_cron_invoke(void *ctx, const hksd_invocation *inv, size_t body_max,
                     hksd_invocation_result *out)
{
    api_server *s = ctx;
    hksd *d = api_server_daemon(s);
    memset(out, 0, sizeof(*out));
    hksd_lease lease;
    int failure = acquire(d, inv, &lease, out->message, sizeof(out->message));
    if (failure) {
        out->failure = failure;
        if (failure == HKSD_FAIL_NOT_FOUND)
            snprintf(out->message, sizeof(out->message),
                     "the function %s does not exist (deleted or expired)", inv->function_id);
        return;
    }
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = request_headers(inv->headers);
    transfer t = {.out = out,
                  .body_max = body_max,
                  .cancel = inv->cancel,
                  .stopping = api_server_stopping_flag(s)};
    char url[4200];
    snprintf(url, sizeof(url), "http://localhost%s", inv->path);
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    uint64_t start = hks_now_us();
    if (easy && headers) {
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, lease.socket_path);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)lease.timeout_ms);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
        if (strcmp(inv->method, "HEAD") == 0) {
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        } else if (strcmp(inv->method, "GET") != 0 || inv->body_len) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)inv->body_len);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, inv->body ? inv->body : "");
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, inv->method);
        }
        rc = curl_easy_perform(easy);
    }
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    hksd_fn_outcome outcome = {.http_status = (int)status,
                               .timed_out = rc == CURLE_OPERATION_TIMEDOUT,
                               .failed = rc != CURLE_OK && rc != CURLE_OPERATION_TIMEDOUT &&
                                         rc != CURLE_ABORTED_BY_CALLBACK,
                               .not_sent = rc == CURLE_COULDNT_CONNECT,
                               .duration_us = hks_now_us() - start};
    hksd_fn_release(d, &lease, &outcome);
    curl_slist_free_all(headers);
    if (easy)
        curl_easy_cleanup(easy);
    if (rc == CURLE_OK) {
        out->http_status = (int)status;
        return;
    }
    out->failure = rc == CURLE_OPERATION_TIMEDOUT ? HKSD_FAIL_TIMEOUT : HKSD_FAIL_START;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out->message, sizeof(out->message), "the function timed out after %llu ms",
                 (unsigned long long)lease.timeout_ms);
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        snprintf(out->message, sizeof(out->message), "cancelled");
    else
        snprintf(out->message, sizeof(out->message), "the function gave no answer: %s",
                 curl_easy_strerror(rc));
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
}
