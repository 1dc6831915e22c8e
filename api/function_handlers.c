/* Handlers of the function lifecycle: deploy, delete, list and get. Invocations are in proxy.c,
 * logs in logs.c. */
#include "internal.h"

#include <string.h>

/* A host name and port as a client may send them: nothing that could break out of a URL. */
static bool plain_host(const char *host)
{
    if (!host || !host[0] || strlen(host) > 255)
        return false;
    for (const char *c = host; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr(".-:[]", *c)))
            return false;
    }
    return true;
}

char *api_function_url(request *req, const char *id)
{
    const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Host");
    char fallback[300];
    if (!plain_host(host)) {
        const hksd_config *cfg = hksd_config_of(req->daemon);
        snprintf(fallback, sizeof(fallback), strchr(cfg->listen_host, ':') ? "[%s]:%d" : "%s:%d",
                 cfg->listen_host, cfg->listen_port);
        host = fallback;
    }
    char *url = NULL;
    return asprintf(&url, "http://%s/fn/%s/", host, id) < 0 ? NULL : url;
}

static json_t *with_url(request *req, json_t *view)
{
    const char *id = json_string_value(json_object_get(view, "id"));
    char *url = id ? api_function_url(req, id) : NULL;
    if (url)
        json_object_set_new(view, "url", json_string(url));
    free(url);
    return view;
}

void api_handle_deploy(request *req)
{
    json_auto_t *in = api_body_object(req);
    if (!in)
        return;
    hksd_policy_limits policy;
    hksd_policy_snapshot(req->daemon, &policy);
    deploy_input *input = calloc(1, sizeof(*input));
    if (!input) {
        api_error(req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    decode_error derr = {{0}, {0}};
    if (api_decode_deploy(in, &policy, input, &derr) < 0) {
        api_error(req, 422, "invalid", derr.message, json_pack("{s:s}", "field", derr.field));
    } else {
        hksd_caller caller = {
            .request_id = req->id, .sub = req->claims.sub, .project = req->claims.project};
        json_t *view = NULL;
        hks_error err = {0};
        int failure = hksd_fn_deploy(req->daemon, &caller, &input->spec, &view, &err);
        if (failure)
            api_failure(req, failure, err.msg, "no such function", NULL);
        else
            api_json(req, 201, with_url(req, view));
    }
    api_deploy_input_release(input);
    free(input);
}

void api_handle_delete(request *req)
{
    json_auto_t *in = api_body_object(req);
    if (!in)
        return;
    static const char *const known[] = {"id"};
    const char *unknown = api_unknown_field(in, known, 1);
    if (unknown) {
        api_error(req, 422, "invalid", "unknown field", json_pack("{s:s}", "field", unknown));
        return;
    }
    const char *id = json_string_value(json_object_get(in, "id"));
    if (!id) {
        api_error(req, 422, "invalid", "id is required (a function id, fn-...)",
                  json_pack("{s:s}", "field", "id"));
        return;
    }
    if (!hksd_function_id_valid(id)) {
        api_error(req, 404, "not_found", "no such function", NULL);
        return;
    }
    hksd_caller caller = {
        .request_id = req->id, .sub = req->claims.sub, .project = req->claims.project};
    hks_error err = {0};
    int failure = hksd_fn_delete(req->daemon, &caller, id, &err);
    if (failure)
        api_failure(req, failure, err.msg, "no such function", NULL);
    else
        api_json(req, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

void api_handle_functions_list(request *req)
{
    json_t *list = hksd_fn_list(req->daemon, req->claims.project);
    size_t i;
    json_t *view;
    json_array_foreach(json_object_get(list, "functions"), i, view)
    {
        with_url(req, view);
    }
    api_json(req, 200, list);
}

void api_handle_function_get(request *req)
{
    json_t *view = hksd_function_id_valid(req->fn_id)
                       ? hksd_fn_get(req->daemon, req->claims.project, req->fn_id)
                       : NULL;
    if (!view) {
        api_error(req, 404, "not_found", "no such function", NULL);
        return;
    }
    api_json(req, 200, with_url(req, view));
}
