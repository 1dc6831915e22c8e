#include "cli/http.h"

#include <curl/curl.h>
#include <string.h>

struct cli_http {
    CURL *curl;
    char *server;
    char *auth; /* "Authorization: Bearer ..." or NULL */
};

/* What one request collects. */
typedef struct exchange {
    cli_buf body;
    char retry_after[32];
    char request_id[80];
    /* streaming */
    cli_line_fn line_fn;
    void *line_arg;
    cli_buf pending;
    int stopped_by_fn;
    CURL *curl;
    /* progress */
    bool progress;
    unsigned long long last_us;
    bool waiting_shown;
} exchange;

int cli_http_open(cli_http **out, const cli_settings *s, cli_error *err)
{
    cli_http *h = calloc(1, sizeof(*h));
    if (!h)
        return cli_fail(err, ENOMEM, "HTTP client");
    h->curl = curl_easy_init();
    h->server = strdup(s->server);
    if (s->token) {
        size_t n = strlen(s->token) + 32;
        h->auth = malloc(n);
        if (h->auth)
            snprintf(h->auth, n, "Authorization: Bearer %s", s->token);
    }
    if (!h->curl || !h->server || (s->token && !h->auth)) {
        cli_http_close(h);
        return cli_fail(err, ENOMEM, "HTTP client");
    }
    *out = h;
    return 0;
}

void cli_http_close(cli_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->server);
    free(h->auth);
    free(h);
}

const char *cli_http_server(const cli_http *h)
{
    return h->server;
}

char *cli_url_escape(cli_http *h, const char *text)
{
    char *escaped = curl_easy_escape(h->curl, text, 0);
    char *out = escaped ? strdup(escaped) : NULL;
    curl_free(escaped);
    return out;
}

static void copy_header_value(char *dst, size_t size, const char *value, size_t len)
{
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' '))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    exchange *x = arg;
    size_t len = size * nmemb;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        copy_header_value(x->retry_after, sizeof(x->retry_after), data + 12, len - 12);
    else if (len > 13 && strncasecmp(data, "X-Request-Id:", 13) == 0)
        copy_header_value(x->request_id, sizeof(x->request_id), data + 13, len - 13);
    return len;
}

static int feed_lines(exchange *x, const char *data, size_t len)
{
    if (cli_buf_append(&x->pending, data, len) < 0)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < x->pending.len; i++) {
        if (x->pending.data[i] != '\n')
            continue;
        if (x->line_fn(x->pending.data + start, i - start, x->line_arg) != 0) {
            x->stopped_by_fn = 1;
            return -1;
        }
        start = i + 1;
    }
    memmove(x->pending.data, x->pending.data + start, x->pending.len - start);
    x->pending.len -= start;
    x->pending.data[x->pending.len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    exchange *x = arg;
    size_t len = size * nmemb;
    if (x->line_fn) {
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300)
            return feed_lines(x, data, len) < 0 ? 0 : len;
        if (x->body.len > 64 * 1024) /* an error body: keep its start */
            return len;
    }
    return cli_buf_append(&x->body, data, len) < 0 ? 0 : len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    exchange *x = arg;
    unsigned long long now = hks_now_us();
    if (ultotal <= 0 || now - x->last_us < 100000)
        return 0;
    x->last_us = now;
    if (ulnow < ultotal) {
        char done[32], total[32];
        cli_format_bytes((unsigned long long)ulnow, done, sizeof(done));
        cli_format_bytes((unsigned long long)ultotal, total, sizeof(total));
        fprintf(stderr, "\r\033[K  uploading %s of %s (%d%%)", done, total,
                (int)(ulnow * 100 / ultotal));
    } else if (!x->waiting_shown) {
        fprintf(stderr, "\r\033[K  uploaded; hksd is unpacking and checking the function...");
        x->waiting_shown = true;
    }
    return 0;
}

static const char *hint_for(long status, const json_t *details, const exchange *x, char *buf,
                            size_t size)
{
    const char *scope = json_string_value(json_object_get(details, "required_scope"));
    const char *field = json_string_value(json_object_get(details, "field"));
    switch (status) {
    case 400:
        snprintf(buf, size,
                 "hks-func sent a request hksd could not read; please report it "
                 "with the request id %s",
                 x->request_id[0] ? x->request_id : "(none)");
        break;
    case 401:
        snprintf(buf, size,
                 "get a new token (tokens live at most 1 h) and run hks-func login, or "
                 "set HKS_TOKEN");
        break;
    case 403:
        snprintf(buf, size, "the token lacks the scope %s: get one with --scope \"... %s\"",
                 scope ? scope : "this needs", scope ? scope : "");
        break;
    case 404:
        snprintf(buf, size,
                 "hks-func list shows the project's functions (a function is gone once "
                 "deleted or past its TTL)");
        break;
    case 413:
        snprintf(buf, size,
                 "the request is over hksd's body limit: make the project or the input "
                 "smaller");
        break;
    case 422:
        if (field)
            snprintf(buf, size, "fix %s (see hks-func CMD --help and docs/api.md)", field);
        else
            snprintf(buf, size, "check the options (see docs/api.md)");
        break;
    case 429:
        snprintf(buf, size, "hksd is busy: retry in %s s",
                 x->retry_after[0] ? x->retry_after : "a few");
        break;
    case 502:
    case 503:
        snprintf(buf, size, "an instance could not start: hks-func logs NAME says why");
        break;
    case 504:
        snprintf(buf, size,
                 "the function ran past its timeout: make it faster or deploy with a "
                 "larger --timeout");
        break;
    default:
        snprintf(buf, size, "see hksd's log (request id %s)",
                 x->request_id[0] ? x->request_id : "unknown");
        break;
    }
    return buf;
}

/* Turn a non-2xx answer into err. */
static int answer_error(long status, const exchange *x, cli_error *err)
{
    cleanup_json json_t *doc = x->body.len ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *message = json_string_value(json_object_get(e, "message"));
    json_t *details = json_object_get(e, "details");
    char extra[256] = "";
    const char *field = json_string_value(json_object_get(details, "field"));
    if (field)
        snprintf(extra, sizeof(extra), " (field %s)", field);
    if (code)
        cli_fail(err, 0, "hksd answered %ld %s: %s%s", status, code, message ? message : "", extra);
    else
        cli_fail(err, 0, "hksd answered %ld: %.200s", status, x->body.len ? x->body.data : "");
    if (field)
        snprintf(err->field, sizeof(err->field), "%s", field);
    char hint[400];
    cli_hint(err, "%s", hint_for(status, details, x, hint, sizeof(hint)));
    return -1;
}

static int perform(cli_http *h, const char *method, const char *path, const char *payload,
                   exchange *x, long timeout_s, long *status, cli_error *err)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    char url[8192];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", h->server, path) >= sizeof(url))
        return cli_fail(err, ENAMETOOLONG, "request %s", path);
    struct curl_slist *headers = NULL;
    struct curl_slist *tmp = curl_slist_append(NULL, "Accept: application/json");
    headers = tmp;
    if (tmp && payload)
        tmp = curl_slist_append(headers, "Content-Type: application/json");
    if (tmp)
        headers = tmp;
    if (tmp && h->auth && (tmp = curl_slist_append(headers, h->auth)))
        headers = tmp;
    if (!tmp) {
        curl_slist_free_all(headers);
        return cli_fail(err, ENOMEM, "request");
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    x->curl = c;
    /* the options below only fail on out-of-memory; perform() reports that */
    (void)curl_easy_setopt(c, CURLOPT_URL, url);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    (void)curl_easy_setopt(c, CURLOPT_USERAGENT, "hks-func/1");
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    (void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    (void)curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    (void)curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (payload) {
        (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        (void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (x->progress) {
        (void)curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        (void)curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        (void)curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (x->progress)
        fputs("\r\033[K", stderr);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = rc == CURLE_OK || x->stopped_by_fn ? code : 0;
    if (x->stopped_by_fn)
        return 0;
    if (rc != CURLE_OK) {
        cli_fail(err, 0, "cannot reach hksd at %s: %s", h->server,
                 curl_err[0] ? curl_err : curl_easy_strerror(rc));
        if (rc == CURLE_OPERATION_TIMEDOUT)
            cli_hint(err, "hksd did not answer in %ld s; is it overloaded?", timeout_s);
        else
            cli_hint(err, "is hksd running there? set the server with hks-func login --server URL "
                          "or HKS_SERVER");
        return -1;
    }
    if (code < 200 || code >= 300)
        return answer_error(code, x, err);
    return 0;
}

int cli_http_json(cli_http *h, const char *method, const char *path, const json_t *body,
                  unsigned flags, json_t **answer, long *status, cli_error *err)
{
    if (answer)
        *answer = NULL;
    cleanup_free char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (body && !payload)
        return cli_fail(err, ENOMEM, "request body");
    exchange x = {.progress = (flags & CLI_HTTP_PROGRESS) && cli_tty.tty_err};
    int rc = perform(h, method, path, payload, &x, 600, status, err);
    if (rc == 0 && answer && x.body.len) {
        json_error_t jerr;
        *answer = json_loadb(x.body.data, x.body.len, 0, &jerr);
        if (!*answer) {
            cli_fail(err, 0, "hksd's answer is not JSON: %s", jerr.text);
            cli_hint(err, "is %s an hksd server?", h->server);
            rc = -1;
        }
    }
    cli_buf_free(&x.body);
    return rc;
}

int cli_http_lines(cli_http *h, const char *path, cli_line_fn fn, void *arg, long *status,
                   cli_error *err)
{
    exchange x = {.line_fn = fn, .line_arg = arg};
    int rc = perform(h, "GET", path, NULL, &x, 0, status, err);
    if (rc == 0 && !x.stopped_by_fn && x.pending.len)
        fn(x.pending.data, x.pending.len, arg); /* a last line without '\n' */
    cli_buf_free(&x.body);
    cli_buf_free(&x.pending);
    return rc;
}
