/* Recent activity for dashboards and agents: a function's last invocations and usage samples, the
 * project's last executions. Kept by the daemon in memory (daemon/recent.c). */
#include "internal.h"

/* the daemon keeps at most this many of either */
#define INVOCATIONS_LIMIT_MAX 200
#define RECENT_LIMIT_MAX      500

static void not_found(request *req)
{
    api_error(req, 404, "not_found", "no such function", NULL);
}

void api_handle_function_invocations(request *req)
{
    unsigned long long limit = 100;
    if (!api_query_uint(req, "limit", 1, INVOCATIONS_LIMIT_MAX, &limit))
        return;
    json_t *out =
        hksd_function_id_valid(req->fn_id)
            ? hksd_fn_invocations(req->daemon, req->claims.project, req->fn_id, (size_t)limit)
            : NULL;
    if (!out)
        not_found(req);
    else
        api_json(req, 200, out);
}

void api_handle_function_usage(request *req)
{
    json_t *out = hksd_function_id_valid(req->fn_id)
                      ? hksd_fn_usage(req->daemon, req->claims.project, req->fn_id)
                      : NULL;
    if (!out)
        not_found(req);
    else
        api_json(req, 200, out);
}

void api_handle_executions(request *req)
{
    unsigned long long limit = 100;
    if (!api_query_uint(req, "limit", 1, RECENT_LIMIT_MAX, &limit))
        return;
    api_json(req, 200, hksd_executions(req->daemon, req->claims.project, (size_t)limit));
}
