/* Handlers: decode and check the request, call the daemon core, encode the answer. */
#include "internal.h"

#include <ctype.h>
#include <string.h>

static json_t *execute_result(const char *id, const rt_runtime *rt, const rt_exec_result *r)
{
    json_t *o = sbx_result_to_json(&r->sandbox);
    json_object_del(o, "cgroup");
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "runtime", json_string(rt->name));
    json_object_set_new(o, "warm", json_boolean(r->warm));
    return o;
}

/* The body as a JSON object, or a 400 already in req->resp. */
json_t *api_body_object(request *req)
{
    json_error_t jerr;
    json_t *in = json_loadb(req->body ? req->body : "", req->len, JSON_REJECT_DUPLICATES, &jerr);
    if (in && json_is_object(in))
        return in;
    api_error(req, 400, "malformed_json",
              in ? "the body must be a JSON object" : "the body is not valid JSON",
              in ? NULL
                 : json_pack("{s:s,s:i,s:i}", "reason", jerr.text, "line", jerr.line, "column",
                             jerr.column));
    json_decref(in);
    return NULL;
}

void api_handle_execute(request *req)
{
    json_t *in = api_body_object(req);
    if (!in)
        return;
    execute_input *input = calloc(1, sizeof(*input));
    const rt_runtime *rt = NULL;
    if (!input) {
        api_error(req, 503, "unavailable", "out of memory", NULL);
        json_decref(in);
        return;
    }
    hksd_policy_limits policy;
    hksd_policy_snapshot(req->daemon, &policy);
    decode_error derr = {{0}, {0}};
    if (api_decode_execute(in, &policy, &rt, input, &derr) < 0) {
        api_error(req, 422, "invalid", derr.message, json_pack("{s:s}", "field", derr.field));
    } else if (rt) {
        json_t *stdin_json = json_object_get(in, "stdin");
        rt_exec_request er = {.runtime = rt->name,
                              .files = input->files,
                              .n_files = input->n_files,
                              .entry = input->entry,
                              .argv = input->argv,
                              .env = input->env,
                              .stdin_data = json_string_value(stdin_json),
                              .stdin_len = stdin_json ? json_string_length(stdin_json) : 0,
                              .limits = &input->limits};
        hksd_caller caller = {
            .request_id = req->id, .sub = req->claims.sub, .project = req->claims.project};
        rt_exec_result result;
        hks_error err = {0};
        if (hksd_execute(req->daemon, &caller, &er, &result, &err) < 0) {
            if (hksd_storage_failure(&err, 0) == HKSD_FAIL_NO_SPACE) {
                api_no_space(req, err.msg);
            } else {
                api_error(req, 503, "unavailable", err.msg, NULL);
                req->resp.retry_after_s = 1;
            }
        } else {
            char id[64];
            snprintf(id, sizeof(id), "exe-%s", req->id);
            api_json(req, 200, execute_result(id, rt, &result));
            rt_exec_result_release(&result);
        }
    }
    api_execute_input_release(input);
    free(input);
    json_decref(in);
}

/* A query parameter that must be an integer in [min, max] when given; false (and a 422 in
 * req->resp) when it is not. */
bool api_query_uint(request *req, const char *name, unsigned long long min, unsigned long long max,
                    unsigned long long *value)
{
    const char *text = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!text)
        return true;
    if (hks_parse_uint(text, min, max, value) < 0) {
        char message[160];
        snprintf(message, sizeof(message), "%s must be an integer from %llu to %llu", name, min,
                 max);
        api_error(req, 422, "invalid", message, json_pack("{s:s}", "field", name));
        return false;
    }
    return true;
}

void api_failure(request *req, int failure, const char *message, const char *not_found,
                 const char *field)
{
    json_t *details = field && field[0] ? json_pack("{s:s}", "field", field) : NULL;
    switch (failure) {
    case HKSD_FAIL_INVALID:
        api_error(req, 422, "invalid", message, details);
        return;
    case HKSD_FAIL_CONFLICT:
        api_error(req, 409, "conflict", message, details);
        return;
    case HKSD_FAIL_NOT_FOUND:
        api_error(req, 404, "not_found", not_found, NULL);
        break;
    case HKSD_FAIL_BUSY:
        api_error(req, 429, "overloaded", message, NULL);
        req->resp.retry_after_s = 5;
        break;
    case HKSD_FAIL_UNAVAILABLE:
        api_error(req, 503, "unavailable", message, NULL);
        req->resp.retry_after_s = 1;
        break;
    case HKSD_FAIL_START: /* the cluster or the registry refused (kubernetes backend) */
        api_error(req, 502, "bad_gateway", message, NULL);
        break;
    case HKSD_FAIL_TIMEOUT:
        api_error(req, 504, "timeout", message, NULL);
        break;
    case HKSD_FAIL_NO_SPACE:
        api_no_space(req, message);
        break;
    default:
        api_error(req, 500, "internal", message, NULL);
    }
    json_decref(details);
}

void api_no_space(request *req, const char *detail)
{
    char message[1200];
    snprintf(message, sizeof(message),
             "no space left in hksd's state directory; nothing of this request was kept (%s)",
             detail);
    api_error(req, 507, "insufficient_storage", message, NULL);
    req->resp.retry_after_s = 5;
}

/* ---- the rest ---- */

void api_handle_runtimes(request *req)
{
    api_json(req, 200, hksd_runtimes(req->daemon));
}

void api_handle_healthz(request *req)
{
    api_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_handle_readyz(request *req)
{
    bool ready = hksd_ready(req->daemon);
    api_json(req, ready ? 200 : 503, json_pack("{s:s}", "status", ready ? "ready" : "starting"));
}

void api_handle_metrics(request *req)
{
    char *text = hksd_metrics_text(req->daemon);
    api_json(req, 200, NULL);
    free(req->resp.body);
    req->resp = (response){.status = text ? 200 : 500,
                           .body = text ? text : strdup(""),
                           .len = text ? strlen(text) : 0,
                           .content_type = "text/plain; version=0.0.4"};
    req->answered = true;
}
