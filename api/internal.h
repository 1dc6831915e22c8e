/* Private to the api module. */
#ifndef HKS_API_INTERNAL_H
#define HKS_API_INTERNAL_H

#include "api.h"
#include "../daemon/function_store.h"

#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

typedef struct request request;

/* Verified tokens (token_cache.c). */
#define TOKEN_CACHE_SLOTS 256

typedef struct token_slot {
    char *token;
    size_t len;
    hks_jwt_claims claims;
} token_slot;

typedef struct token_cache {
    pthread_mutex_t lock;
    token_slot slots[TOKEN_CACHE_SLOTS];
} token_cache;

void api_token_cache_init(token_cache *c);
void api_token_cache_clear(token_cache *c);
void api_token_cache_destroy(token_cache *c);
bool api_token_cache_get(token_cache *c, const char *token, size_t len, time_t now, long leeway,
                         hks_jwt_claims *out);
void api_token_cache_put(token_cache *c, const char *token, size_t len,
                         const hks_jwt_claims *claims);

/* What a handler produced: status, body (JSON unless content_type says otherwise). */
typedef struct response {
    int status;
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;    /* NULL: application/json; "": none (a proxied answer) */
    int retry_after_s;           /* > 0: a Retry-After header */
    json_t *headers;             /* [[name, value], ...] to add (a proxied answer's) */
    struct MHD_Response *stream; /* prepared by the handler instead of a body (log following) */
} response;

typedef struct proxy_job proxy_job; /* proxy.c */

struct request {
    api_server *server;
    hksd *daemon;
    struct MHD_Connection *conn;
    char id[48];
    char method[16];
    char path[512];
    char *raw_uri; /* as the client sent it, query included */
    const struct route *route;
    char fn_id[64]; /* {id} of the path: a function id, a CronJob id or name */
    char *body;
    size_t len, cap;
    bool too_large;
    bool routed;
    hks_jwt_claims claims;
    uint64_t start_us;
    bool suspended;
    bool answered; /* resp is ready (possibly from a worker thread) */
    bool started;  /* the first call of the access handler happened */
    response resp;
    struct request *next_job;
    proxy_job *proxy; /* an invocation on its way to a function instance */
    unsigned long log_watch;
    struct log_follow *follow;
};

typedef void (*route_handler)(request *req);

typedef enum route_kind {
    ROUTE_PLAIN,  /* answered by the handler, on a worker thread when blocking */
    ROUTE_INVOKE, /* the connection waits, suspended, for a function's answer (proxy.c) */
} route_kind;

typedef struct route {
    const char *method;
    const char *path;  /* exact, or with {id} (one segment) and a trailing {path} (the rest) */
    const char *scope; /* NULL: no token needed; "": any valid token */
    bool blocking;     /* runs on a worker thread with the connection suspended */
    route_handler handler;
    const char *name; /* for metrics */
    route_kind kind;
} route;

/* The route for method and path; its {id} goes to id (size 64). */
const route *api_find_route(const char *method, const char *path, bool *path_known, char *id);

/* Fill req->resp. */
void api_json(request *req, int status, json_t *body);
void api_error(request *req, int status, const char *code, const char *message, json_t *details);

/* Standard base64 with padding, nothing else accepted; malloc'd and NUL-terminated, NULL when
 * invalid. */
char *api_base64_decode(const char *text, size_t len, size_t *out_len);
char *api_base64_encode(const void *data, size_t len);

/* The execute request, decoded (execute_decode.c). */
#define MAX_ARGS 256
#define MAX_ENV  128

typedef struct execute_input {
    rt_file files[RT_MAX_FILES];
    char *decoded[RT_MAX_FILES]; /* base64 contents, owned */
    size_t n_files;
    const char *entry;
    char *argv[MAX_ARGS + 1];
    char *env[MAX_ENV + 1];
    char *env_storage[MAX_ENV];
    sbx_limits limits;
} execute_input;

typedef struct decode_error {
    char field[64];
    char message[512];
} decode_error;

/* Decode and check an execute request against the policy; on failure e says which field and why
 * (a 422). out's strings point into in, which must outlive it. */
int api_decode_execute(json_t *in, const hksd_policy_limits *policy, const rt_runtime **rt,
                       execute_input *out, decode_error *e);
void api_execute_input_release(execute_input *in);

/* Shared by the decoders: a 422 naming field (returns -1); "code" (one string, written as
 * code_name) or "files"; whether a name can be an environment variable's. */
int api_invalid(decode_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int api_decode_files(decode_error *e, json_t *in, const char *code_name,
                     const hksd_policy_limits *policy, execute_input *out);
bool api_safe_env_name(const char *name);
/* The first key of in that is not one of known, or NULL. */
const char *api_unknown_field(json_t *in, const char *const *known, size_t n_known);

/* The deploy-function request, decoded (deploy_decode.c); spec's strings and env point into in. */
typedef struct deploy_input {
    execute_input code; /* code or files */
    char *archive;      /* decoded base64 of a .tar.gz, owned */
    size_t archive_len;
    hksd_fn_spec spec;
} deploy_input;

#define DEPLOY_MAX_SCALE       8
#define DEPLOY_MAX_CONCURRENCY 1000

int api_decode_deploy(json_t *in, const hksd_policy_limits *policy, deploy_input *out,
                      decode_error *e);
void api_deploy_input_release(deploy_input *in);

/* The API server's own bookkeeping of requests that wait outside a worker (server.c). */
void api_request_wait_begin(request *req);
/* The response is in req->resp: resume the connection (any thread). */
void api_request_wait_end(request *req);

/* Function invocations through the proxy (proxy.c): the route handler of ROUTE_INVOKE routes
 * starts one; its answer resumes the connection. */
typedef struct api_proxy api_proxy;
int api_proxy_start(api_server *s, hksd *d, api_proxy **out, hks_error *err);
void api_proxy_stop(api_proxy *p);
api_proxy *api_server_proxy(api_server *s);
void api_handle_fn_url(request *req);
void api_handle_invoke(request *req);
void api_proxy_job_free(proxy_job *job);

/* The function URL for a response: http://<Host the client used>/fn/<id>/ */
char *api_function_url(request *req, const char *id);

/* A query parameter that must be an integer in [min, max] when given (value untouched when
 * absent); false, with a 422 naming it in req->resp, when it is not. */
bool api_query_uint(request *req, const char *name, unsigned long long min, unsigned long long max,
                    unsigned long long *value);

/* The body as a JSON object (duplicate keys refused), or NULL with a 400 already in req->resp. */
json_t *api_body_object(request *req);
/* 507 insufficient_storage: the state directory is full; nothing of the request was kept. */
void api_no_space(request *req, const char *detail);
/* A hksd_failure as its HTTP answer (422, 409, 404, 429, 503, 502, 504, 507, 500); not_found is
 * the 404's message ("no such function"); field (NULL or "": none) the field a 422 or 409 is
 * about, in details.field. */
void api_failure(request *req, int failure, const char *message, const char *not_found,
                 const char *field);

/* Handlers (handlers.c, function_handlers.c). */
void api_handle_deploy(request *req);
void api_handle_delete(request *req);
void api_handle_functions_list(request *req);
void api_handle_function_get(request *req);
void api_handle_function_logs(request *req);
void api_log_follow_free(request *req);
/* End every log follow now (the server stops). */
void api_log_follow_stop_all(api_server *s);
void api_handle_execute(request *req);
void api_handle_runtimes(request *req);
void api_handle_healthz(request *req);
/* CronJobs (cronjob_handlers.c) */
void api_handle_cronjob_create(request *req);
void api_handle_cronjobs_list(request *req);
void api_handle_cronjob_get(request *req);
void api_handle_cronjob_update(request *req);
void api_handle_cronjob_delete(request *req);
void api_handle_cronjob_runs(request *req);
void api_handle_cronjob_trigger(request *req);
/* The daemon's invoker of scheduled function calls (cron_invoke.c); ctx is the api_server. */
void api_cron_invoke(void *ctx, const hksd_invocation *inv, size_t body_max,
                     hksd_invocation_result *out);
hksd *api_server_daemon(api_server *s);
/* Set once the server begins to stop: scheduled calls in flight give up. */
const atomic_bool *api_server_stopping_flag(api_server *s);
void api_handle_readyz(request *req);
/* Recent activity (activity.c) */
void api_handle_function_invocations(request *req);
void api_handle_function_usage(request *req);
void api_handle_executions(request *req);
/* The dashboard's static files (ui.c) */
void api_handle_ui(request *req);
void api_handle_ui_redirect(request *req);
void api_handle_metrics(request *req);

#endif
