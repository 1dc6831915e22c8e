/* The HTTP edge of hksd: libmicrohttpd on its internal epoll thread pool, JSON requests and
 * responses, JWT bearer authentication, scopes per route. It calls the daemon core and knows
 * nothing of sandboxes. */
#ifndef HKS_API_H
#define HKS_API_H

#include "../daemon/daemon.h"
#include "../daemon/policy.h"
#include "jwt.h"

typedef struct api_server api_server;

/* Listen on the configured address; the server owns keys from then on (not on failure). */
int api_server_start(hksd *d, hks_jwt_keys *keys, api_server **out, hks_error *err);
/* Verify tokens with new keys from now on (SIGHUP); the old ones are freed. */
void api_server_replace_keys(api_server *s, hks_jwt_keys *keys);
/* The port actually bound (useful with port 0). */
int api_server_port(const api_server *s);
/* Stop accepting, let in-flight requests finish (executions end by their own limits), stop. */
void api_server_stop(api_server *s);

/* The routes this build serves, "METHOD /path" with {param} placeholders, NULL-terminated: the
 * test that keeps api/openapi.yaml honest compares against it (hksd --routes). */
const char *const *api_routes(void);

/* Every route with the scope it requires, for `hksd policy show` (daemon/policy.h). */
const hksd_policy_route *api_route_scopes(size_t *n);

#endif
