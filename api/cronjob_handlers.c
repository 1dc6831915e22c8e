/* Handlers of /internal/v1/cronjobs: create, list, get, update, delete, runs and trigger. The
 * daemon checks definitions (cronjob_spec.c); this file maps its answers to HTTP. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define RUN_LOG_BYTES_DEFAULT (64u << 10)
#define RUN_LOG_BYTES_MAX     (256u << 10)
#define RUNS_LIMIT_MAX        1000

static hksd_caller caller_of(const request *req)
{
    return (hksd_caller){
        .request_id = req->id, .sub = req->claims.sub, .project = req->claims.project};
}

void api_handle_cronjob_create(request *req)
{
    json_auto_t *in = api_body_object(req);
    if (!in)
        return;
    hksd_caller caller = caller_of(req);
    json_t *view = NULL;
    char field[64] = "";
    hks_error err = {0};
    int failure = hksd_cronjob_create(req->daemon, &caller, in, &view, field, &err);
    if (failure)
        api_failure(req, failure, err.msg, "no such CronJob", field);
    else
        api_json(req, 201, view);
}

void api_handle_cronjobs_list(request *req)
{
    api_json(req, 200, hksd_cronjob_list(req->daemon, req->claims.project));
}

void api_handle_cronjob_get(request *req)
{
    json_t *view = hksd_cronjob_get(req->daemon, req->claims.project, req->fn_id);
    if (!view)
        api_error(req, 404, "not_found", "no such CronJob", NULL);
    else
        api_json(req, 200, view);
}

void api_handle_cronjob_update(request *req)
{
    json_auto_t *in = api_body_object(req);
    if (!in)
        return;
    hksd_caller caller = caller_of(req);
    json_t *view = NULL;
    char field[64] = "";
    hks_error err = {0};
    int failure = hksd_cronjob_update(req->daemon, &caller, req->fn_id, in, &view, field, &err);
    if (failure)
        api_failure(req, failure, err.msg, "no such CronJob", field);
    else
        api_json(req, 200, view);
}

void api_handle_cronjob_delete(request *req)
{
    hksd_caller caller = caller_of(req);
    json_t *view = hksd_cronjob_get(req->daemon, req->claims.project, req->fn_id);
    const char *id = json_string_value(json_object_get(view, "id"));
    hks_error err = {0};
    int failure = id ? hksd_cronjob_delete(req->daemon, &caller, id, &err) : HKSD_FAIL_NOT_FOUND;
    if (failure)
        api_failure(req, failure, err.msg, "no such CronJob", NULL);
    else
        api_json(req, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
    json_decref(view);
}

void api_handle_cronjob_runs(request *req)
{
    unsigned long long limit = RUNS_LIMIT_MAX, log_bytes = RUN_LOG_BYTES_DEFAULT;
    if (!api_query_uint(req, "limit", 1, RUNS_LIMIT_MAX, &limit) ||
        !api_query_uint(req, "log_bytes", 0, RUN_LOG_BYTES_MAX, &log_bytes))
        return;
    json_t *runs =
        hksd_cronjob_runs(req->daemon, req->claims.project, req->fn_id, (size_t)log_bytes);
    if (!runs) {
        api_error(req, 404, "not_found", "no such CronJob", NULL);
        return;
    }
    json_t *list = json_object_get(runs, "runs");
    while (json_array_size(list) > limit)
        json_array_remove(list, json_array_size(list) - 1);
    api_json(req, 200, runs);
}

void api_handle_cronjob_trigger(request *req)
{
    hksd_caller caller = caller_of(req);
    json_t *run = NULL;
    hks_error err = {0};
    int failure = hksd_cronjob_trigger(req->daemon, &caller, req->fn_id, &run, &err);
    if (failure)
        api_failure(req, failure, err.msg, "no such CronJob", NULL);
    else
        api_json(req, 201, run);
}
