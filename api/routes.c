/* The route table: exact paths of DESIGN.md, the scope each needs, and its handler. */
#include "internal.h"

#include <string.h>

static const route routes[] = {
    {"POST", "/internal/v1/operations/execute", "functions:execute", true, api_handle_execute,
     "execute"},
    {"GET", "/internal/v1/runtimes", "", false, api_handle_runtimes, "runtimes"},
    {"GET", "/healthz", NULL, false, api_handle_healthz, "healthz"},
    {"GET", "/readyz", NULL, false, api_handle_readyz, "readyz"},
    {"GET", "/metrics", NULL, false, api_handle_metrics, "metrics"},
};

const route *api_find_route(const char *method, const char *path, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < HKS_ARRAY_LEN(routes); i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
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
