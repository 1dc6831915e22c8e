/* The HTTP server: request life cycle on libmicrohttpd's epoll thread pool. Bodies are capped
 * from Content-Length and while streaming; requests that wait on a sandbox are suspended and
 * finished by a worker thread, so a slow execution holds no MHD thread. */
#include "internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define WORKERS     32  /* executions waiting on sandboxes at once */
#define MAX_QUEUED  256 /* beyond this: 429 */
#define RETRY_AFTER 1

struct api_server {
    hksd *daemon;
    pthread_rwlock_t keys_lock;
    hks_jwt_keys *keys; /* owned */
    hks_jwt_rules rules;
    token_cache tokens;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int port;
    size_t max_body;
    pthread_t workers[WORKERS];
    unsigned n_workers;
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* work queued for the workers */
    pthread_cond_t drained; /* busy reached zero (only stop waits for it) */
    request *queue_head, *queue_tail;
    size_t queued; /* waiting for a worker */
    size_t busy;   /* being worked on, or waiting suspended for an instance or a log */
    bool stopping;
    bool stopping_wait; /* stop waits for busy to reach zero */
    api_proxy *proxy;
    atomic_bool invoker_stopping;
};

hksd *api_server_daemon(api_server *s)
{
    return s->daemon;
}

const atomic_bool *api_server_stopping_flag(api_server *s)
{
    return &s->invoker_stopping;
}

api_proxy *api_server_proxy(api_server *s)
{
    return s->proxy;
}

void api_request_wait_begin(request *req)
{
    api_server *s = req->server;
    pthread_mutex_lock(&s->lock);
    s->busy++;
    pthread_mutex_unlock(&s->lock);
}

void api_request_wait_end(request *req)
{
    api_server *s = req->server;
    struct MHD_Connection *conn = req->conn;
    pthread_mutex_lock(&s->lock);
    if (--s->busy == 0 && s->stopping_wait)
        pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->lock);
    MHD_resume_connection(conn);
}

/* ---- responses ---- */

void api_json(request *req, int status, json_t *body)
{
    free(req->resp.body);
    req->resp = (response){.status = status, .content_type = "application/json"};
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(body);
    if (!text) {
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the "
                      "response\"}}");
        req->resp.status = 500;
    }
    req->resp.body = text;
    req->resp.len = text ? strlen(text) : 0;
    req->answered = true;
}

void api_error(request *req, int status, const char *code, const char *message, json_t *details)
{
    json_t *error = json_pack("{s:s,s:s}", "code", code, "message", message);
    if (details)
        json_object_set_new(error, "details", details);
    api_json(req, status, json_pack("{s:o}", "error", error));
}

static void log_request(const request *req)
{
    double ms = (double)(hks_now_us() - req->start_us) / 1000.0;
    json_t *line = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:f}", "level", "info", "msg", "request",
                             "request_id", req->id, "method", req->method, "path", req->path,
                             "status", req->resp.status, "duration_ms", ms);
    if (req->claims.sub[0]) {
        json_object_set_new(line, "sub", json_string(req->claims.sub));
        json_object_set_new(line, "project", json_string(req->claims.project));
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
    json_decref(line);
}

static enum MHD_Result send_response(request *req)
{
    response *r = &req->resp;
    struct MHD_Response *resp = r->stream;
    r->stream = NULL;
    if (!resp) {
        resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            return MHD_NO;
        r->body = NULL; /* MHD frees it */
    }
    size_t i;
    json_t *pair;
    json_array_foreach(r->headers, i, pair)
    {
        MHD_add_response_header(resp, json_string_value(json_array_get(pair, 0)),
                                json_string_value(json_array_get(pair, 1)));
    }
    if (!r->content_type || r->content_type[0])
        MHD_add_response_header(resp, "Content-Type",
                                r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    if (!r->headers)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->retry_after_s > 0) {
        char value[16];
        snprintf(value, sizeof(value), "%d", r->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", value);
    }
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"hksd\"");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- request ids, auth ---- */

static void request_id(struct MHD_Connection *conn, char *out, size_t size)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t len = given ? strlen(given) : 0;
    bool ok = len > 0 && len < size && len <= 64;
    for (size_t i = 0; ok && i < len; i++)
        ok = (given[i] >= 'a' && given[i] <= 'z') || (given[i] >= 'A' && given[i] <= 'Z') ||
             (given[i] >= '0' && given[i] <= '9') || given[i] == '-' || given[i] == '_';
    if (ok) {
        snprintf(out, size, "%s", given);
        return;
    }
    unsigned char raw[12];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        memset(raw, 0, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* Returns true when the request may go on; otherwise req->resp holds the 401/403. */
static bool authorize(api_server *s, request *req)
{
    const char *scope = req->route->scope;
    if (!scope)
        return true;
    const char *header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp(header, "Bearer ", 7) != 0 || !header[7]) {
        api_error(req, 401, "unauthenticated", "an Authorization: Bearer token is required", NULL);
        return false;
    }
    const char *token = header + 7;
    size_t token_len = strlen(token);
    hks_error err = {0};
    time_t now = time(NULL);
    int verified = 0;
    pthread_rwlock_rdlock(&s->keys_lock);
    if (!api_token_cache_get(&s->tokens, token, token_len, now, s->rules.leeway_s, &req->claims)) {
        verified = hks_jwt_verify(s->keys, &s->rules, token, token_len, now, &req->claims, &err);
        if (verified == 0)
            api_token_cache_put(&s->tokens, token, token_len, &req->claims);
    }
    pthread_rwlock_unlock(&s->keys_lock);
    if (verified < 0) {
        memset(&req->claims, 0, sizeof(req->claims));
        api_error(req, 401, "invalid_token", err.msg, NULL);
        return false;
    }
    if (scope[0] && !hks_jwt_has_scope(&req->claims, scope)) {
        char message[128];
        snprintf(message, sizeof(message), "the token lacks the scope %s", scope);
        api_error(req, 403, "forbidden", message, json_pack("{s:s}", "required_scope", scope));
        return false;
    }
    return true;
}

/* ---- workers for requests that wait on a sandbox ---- */

static void *worker_main(void *arg)
{
    api_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->queue_head && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        request *req = s->queue_head;
        if (!req) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        s->queue_head = req->next_job;
        if (!s->queue_head)
            s->queue_tail = NULL;
        s->queued--;
        s->busy++;
        pthread_mutex_unlock(&s->lock);

        req->route->handler(req);
        api_request_wait_end(req); /* the busy count and the connection's resumption */
    }
}

/* Queue a suspended request for a worker; false when the queue is full (429). */
static bool enqueue(api_server *s, request *req)
{
    pthread_mutex_lock(&s->lock);
    bool ok = !s->stopping && s->queued < MAX_QUEUED;
    if (ok) {
        req->next_job = NULL;
        if (s->queue_tail)
            s->queue_tail->next_job = req;
        else
            s->queue_head = req;
        s->queue_tail = req;
        s->queued++;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* ---- the access handler ---- */

/* The request's state, made when MHD has the request line: the raw URI (query included) is
 * only known here, and a proxied request passes it on as the client sent it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    (void)cls;
    request *req = calloc(1, sizeof(*req));
    if (req)
        req->raw_uri = strdup(uri ? uri : "/");
    return req;
}

static enum MHD_Result first_call(api_server *s, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    request *req = *con_cls;
    if (!req || !req->raw_uri)
        return MHD_NO;
    req->started = true;
    req->server = s;
    req->daemon = s->daemon;
    req->conn = conn;
    req->start_us = hks_now_us();
    snprintf(req->method, sizeof(req->method), "%s", method);
    snprintf(req->path, sizeof(req->path), "%s", url);
    request_id(conn, req->id, sizeof(req->id));

    bool path_known = false;
    req->route = api_find_route(method, url, &path_known, req->fn_id);
    if (!req->route) {
        if (path_known)
            api_error(req, 405, "method_not_allowed", "this path does not take that method", NULL);
        else
            api_error(req, 404, "not_found", "no such endpoint", NULL);
        return send_response(req);
    }
    /* the body cap, checked before any of it is read */
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long declared = 0;
    if (length && (hks_parse_uint(length, 0, ~0ULL, &declared) < 0 || declared > s->max_body)) {
        api_error(req, 413, "too_large", "the request body is larger than the server accepts",
                  json_pack("{s:I}", "max_bytes", (json_int_t)s->max_body));
        return send_response(req);
    }
    if (!authorize(s, req))
        return send_response(req);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    api_server *s = cls;
    request *req = *con_cls;
    if (!req || !req->started)
        return first_call(s, conn, url, method, con_cls);
    if (req->suspended) {
        /* resumed: the worker has filled the response */
        req->suspended = false;
        return send_response(req);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_large || req->len + n > s->max_body) {
            req->too_large = true; /* keep reading and dropping: the answer comes at the end */
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            size_t cap = req->cap ? req->cap : 4096;
            while (cap < req->len + n + 1)
                cap *= 2;
            char *grown = realloc(req->body, cap);
            if (!grown)
                return MHD_NO;
            req->body = grown;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        return MHD_YES;
    }
    if (req->too_large) {
        api_error(req, 413, "too_large", "the request body is larger than the server accepts",
                  json_pack("{s:I}", "max_bytes", (json_int_t)s->max_body));
        return send_response(req);
    }
    if (req->route->kind == ROUTE_INVOKE) {
        /* the answer comes from a function instance; the handler resumes the connection */
        MHD_suspend_connection(conn);
        req->suspended = true;
        api_request_wait_begin(req);
        req->route->handler(req);
        return MHD_YES;
    }
    if (req->route->blocking) {
        MHD_suspend_connection(conn);
        req->suspended = true;
        if (!enqueue(s, req)) {
            req->suspended = false;
            MHD_resume_connection(conn);
            api_error(req, 429, "overloaded", "too many requests are waiting; retry shortly", NULL);
            req->resp.retry_after_s = RETRY_AFTER;
            return send_response(req);
        }
        return MHD_YES;
    }
    req->route->handler(req);
    return send_response(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)conn;
    (void)code;
    api_server *s = cls;
    request *req = *con_cls;
    if (!req)
        return;
    if (req->answered) {
        log_request(req);
        hksd_count_request(s->daemon, req->route ? req->route->name : "unknown", req->resp.status);
    }
    api_proxy_job_free(req->proxy);
    api_log_follow_free(req);
    if (req->resp.stream)
        MHD_destroy_response(req->resp.stream);
    json_decref(req->resp.headers);
    free(req->resp.body);
    free(req->body);
    free(req->raw_uri);
    free(req);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

static int listen_on(const char *host, int port, int *out_port, hks_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &ai);
    if (rc != 0)
        return hks_fail(err, 0, "listen address %s: %s", host, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return hks_fail(err, saved, "listen on %s:%d", host, port);
    }
    freeaddrinfo(ai);
    struct sockaddr_storage bound = {0};
    socklen_t len = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &len) < 0) {
        int saved = errno;
        close(fd);
        return hks_fail(err, saved, "getsockname");
    }
    if (bound.ss_family == AF_INET6) {
        struct sockaddr_in6 a6;
        memcpy(&a6, &bound, sizeof(a6));
        *out_port = ntohs(a6.sin6_port);
    } else {
        struct sockaddr_in a4;
        memcpy(&a4, &bound, sizeof(a4));
        *out_port = ntohs(a4.sin_port);
    }
    return fd;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    json_t *line = json_pack("{s:s,s:s,s:s}", "level", "warn", "msg", "http", "detail", text);
    char *out = json_dumps(line, JSON_COMPACT);
    if (out) {
        fprintf(stderr, "%s\n", out);
        free(out);
    }
    json_decref(line);
}

int api_server_start(hksd *d, hks_jwt_keys *keys, api_server **out, hks_error *err)
{
    const hksd_config *cfg = hksd_config_of(d);
    api_server *s = calloc(1, sizeof(*s));
    if (!s)
        return hks_fail(err, ENOMEM, "api server");
    s->daemon = d;
    s->keys = keys;
    pthread_rwlock_init(&s->keys_lock, NULL);
    api_token_cache_init(&s->tokens);
    s->rules = (hks_jwt_rules){.issuer = cfg->jwt_issuer,
                               .audience = cfg->jwt_audience,
                               .leeway_s = cfg->jwt_leeway_s,
                               .max_lifetime_s = cfg->jwt_max_lifetime_s};
    s->max_body = cfg->max_body_bytes;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->drained, NULL);
    s->listen_fd = listen_on(cfg->listen_host, cfg->listen_port, &s->port, err);
    if (s->listen_fd < 0) {
        pthread_rwlock_destroy(&s->keys_lock);
        free(s); /* the keys stay the caller's on failure */
        return -1;
    }
    for (unsigned i = 0; i < WORKERS; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
            break;
        s->n_workers++;
    }
    if (api_proxy_start(s, d, &s->proxy, err) < 0) {
        s->keys = NULL; /* the keys stay the caller's on failure */
        api_server_stop(s);
        return -1;
    }
    unsigned threads = cfg->threads ? cfg->threads : 4;
    s->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
        s->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_END);
    if (!s->mhd) {
        hks_fail(err, 0, "start the HTTP server on %s:%d", cfg->listen_host, s->port);
        s->keys = NULL; /* the keys stay the caller's on failure */
        api_server_stop(s);
        return -1;
    }
    hksd_set_invoker(d, api_cron_invoke, s);
    *out = s;
    return 0;
}

void api_server_replace_keys(api_server *s, hks_jwt_keys *keys)
{
    pthread_rwlock_wrlock(&s->keys_lock);
    hks_jwt_keys *old = s->keys;
    s->keys = keys;
    api_token_cache_clear(&s->tokens); /* a token of a key taken away must fail from now on */
    pthread_rwlock_unlock(&s->keys_lock);
    hks_jwt_keys_free(old);
}

int api_server_port(const api_server *s)
{
    return s->port;
}

void api_server_stop(api_server *s)
{
    if (!s)
        return;
    /* scheduled calls in flight give up; none starts from now on */
    atomic_store(&s->invoker_stopping, true);
    hksd_set_invoker(s->daemon, NULL, NULL);
    /* no new connections; then every suspended request finishes (its sandbox has limits), and
     * only then may MHD stop (stopping with suspended connections is an API violation) */
    if (s->mhd)
        MHD_quiesce_daemon(s->mhd);
    api_log_follow_stop_all(s);
    pthread_mutex_lock(&s->lock);
    s->stopping_wait = true;
    while (s->queued > 0 || s->busy > 0)
        pthread_cond_wait(&s->drained, &s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    api_proxy_stop(s->proxy);
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->lock);
    pthread_rwlock_destroy(&s->keys_lock);
    api_token_cache_destroy(&s->tokens);
    hks_jwt_keys_free(s->keys);
    free(s);
}
