/* The route table: the paths of DESIGN.md, the scope each needs, and its handler. */
#include "internal.h"

#include <string.h>

#define FN_URL(method)                                                                             \
    {                                                                                              \
        method, "/fn/{id}/{path}", "functions:invoke", false, api_handle_fn_url, "fn",             \
            ROUTE_INVOKE                                                                           \
    }

static const route routes[] = {
    {"POST", "/internal/v1/operations/execute", "functions:execute", true, api_handle_execute,
     "execute", ROUTE_PLAIN},
    {"POST", "/internal/v1/operations/deploy-function", "functions:deploy", true, api_handle_deploy,
     "deploy-function", ROUTE_PLAIN},
    {"POST", "/internal/v1/operations/invoke-function", "functions:invoke", false,
     api_handle_invoke, "invoke-function", ROUTE_INVOKE},
    {"POST", "/internal/v1/operations/delete-function", "functions:delete", true, api_handle_delete,
     "delete-function", ROUTE_PLAIN},
    {"GET", "/internal/v1/functions", "functions:read", false, api_handle_functions_list,
     "functions", ROUTE_PLAIN},
    {"GET", "/internal/v1/functions/{id}", "functions:read", false, api_handle_function_get,
     "function", ROUTE_PLAIN},
    {"GET", "/internal/v1/functions/{id}/logs", "functions:read", true, api_handle_function_logs,
     "function-logs", ROUTE_PLAIN},
    {"GET", "/internal/v1/functions/{id}/invocations", "functions:read", false,
     api_handle_function_invocations, "function-invocations", ROUTE_PLAIN},
    {"GET", "/internal/v1/functions/{id}/usage", "functions:read", false, api_handle_function_usage,
     "function-usage", ROUTE_PLAIN},
    {"GET", "/internal/v1/executions", "functions:read", false, api_handle_executions, "executions",
     ROUTE_PLAIN},
    {"POST", "/internal/v1/cronjobs", "cronjobs:write", true, api_handle_cronjob_create,
     "cronjob-create", ROUTE_PLAIN},
    {"GET", "/internal/v1/cronjobs", "cronjobs:read", false, api_handle_cronjobs_list, "cronjobs",
     ROUTE_PLAIN},
    {"GET", "/internal/v1/cronjobs/{id}", "cronjobs:read", false, api_handle_cronjob_get, "cronjob",
     ROUTE_PLAIN},
    {"PATCH", "/internal/v1/cronjobs/{id}", "cronjobs:write", true, api_handle_cronjob_update,
     "cronjob-update", ROUTE_PLAIN},
    {"DELETE", "/internal/v1/cronjobs/{id}", "cronjobs:write", true, api_handle_cronjob_delete,
     "cronjob-delete", ROUTE_PLAIN},
    {"GET", "/internal/v1/cronjobs/{id}/runs", "cronjobs:read", true, api_handle_cronjob_runs,
     "cronjob-runs", ROUTE_PLAIN},
    {"POST", "/internal/v1/cronjobs/{id}/trigger", "cronjobs:write", true,
     api_handle_cronjob_trigger, "cronjob-trigger", ROUTE_PLAIN},
    {"GET", "/internal/v1/runtimes", "", false, api_handle_runtimes, "runtimes", ROUTE_PLAIN},
    {"GET", "/healthz", NULL, false, api_handle_healthz, "healthz", ROUTE_PLAIN},
    {"GET", "/readyz", NULL, false, api_handle_readyz, "readyz", ROUTE_PLAIN},
    {"GET", "/metrics", NULL, false, api_handle_metrics, "metrics", ROUTE_PLAIN},
    {"GET", "/ui", NULL, false, api_handle_ui_redirect, "ui", ROUTE_PLAIN},
    {"GET", "/ui/{path}", NULL, false, api_handle_ui, "ui", ROUTE_PLAIN},
    FN_URL("GET"),
    FN_URL("HEAD"),
    FN_URL("POST"),
    FN_URL("PUT"),
    FN_URL("PATCH"),
    FN_URL("DELETE"),
    FN_URL("OPTIONS"),
};

/* Whether path matches pattern; {id} takes one non-empty segment (copied to id), a final
 * {path} whatever is left, even nothing ("/fn/x" is "/fn/x/"). */
static bool path_matches(const char *pattern, const char *path, char *id)
{
    while (*pattern) {
        if (strncmp(pattern, "{path}", 6) == 0)
            return true;
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= 64)
                return false;
            memcpy(id, path, n);
            id[n] = '\0';
            path += n;
            pattern += 4;
            if (strcmp(pattern, "/{path}") == 0 && *path == '\0')
                return true;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *path == '\0';
}

const route *api_find_route(const char *method, const char *path, bool *path_known, char *id)
{
    *path_known = false;
    for (size_t i = 0; i < HKS_ARRAY_LEN(routes); i++) {
        char matched_id[64] = "";
        if (!path_matches(routes[i].path, path, matched_id))
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, method) == 0) {
            memcpy(id, matched_id, sizeof(matched_id));
            return &routes[i];
        }
    }
    return NULL;
}

const char *const *api_routes(void)
{
    static const char *names[HKS_ARRAY_LEN(routes) + 1];
    static char storage[HKS_ARRAY_LEN(routes)][128];
    for (size_t i = 0; i < HKS_ARRAY_LEN(routes); i++) {
        snprintf(storage[i], sizeof(storage[i]), "%s %s", routes[i].method, routes[i].path);
        names[i] = storage[i];
    }
    names[HKS_ARRAY_LEN(routes)] = NULL;
    return names;
}

const hksd_policy_route *api_route_scopes(size_t *n)
{
    static hksd_policy_route table[HKS_ARRAY_LEN(routes)];
    for (size_t i = 0; i < HKS_ARRAY_LEN(routes); i++)
        table[i] = (hksd_policy_route){routes[i].method, routes[i].path, routes[i].scope};
    *n = HKS_ARRAY_LEN(routes);
    return table;
}
