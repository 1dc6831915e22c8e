/* Private to the api module. */
#ifndef HKS_API_INTERNAL_H
#define HKS_API_INTERNAL_H

#include "api.h"

#include <microhttpd.h>

typedef struct request request;

/* What a handler produced: status, body (JSON unless content_type says otherwise). */
typedef struct response {
    int status;
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;
    int retry_after_s; /* > 0: a Retry-After header */
} response;

struct request {
    api_server *server;
    hksd *daemon;
    struct MHD_Connection *conn;
    char id[48];
    char method[16];
    char path[512];
    const struct route *route;
    char *body;
    size_t len, cap;
    bool too_large;
    bool routed;
    hks_jwt_claims claims;
    uint64_t start_us;
    bool suspended;
    bool answered; /* resp is ready (possibly from a worker thread) */
    response resp;
    struct request *next_job;
};

typedef void (*route_handler)(request *req);

typedef struct route {
    const char *method;
    const char *path;  /* exact path */
    const char *scope; /* NULL: no token needed; "": any valid token */
    bool blocking;     /* runs on a worker thread with the connection suspended */
    route_handler handler;
    const char *name; /* for metrics */
} route;

const route *api_find_route(const char *method, const char *path, bool *path_known);

/* Fill req->resp. */
void api_json(request *req, int status, json_t *body);
void api_error(request *req, int status, const char *code, const char *message, json_t *details);

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

/* Handlers (handlers.c). */
void api_handle_execute(request *req);
void api_handle_runtimes(request *req);
void api_handle_healthz(request *req);
void api_handle_readyz(request *req);
void api_handle_metrics(request *req);

#endif
