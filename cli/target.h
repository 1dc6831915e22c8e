/* Which function a command means: `hks-func invoke|describe|logs|delete [NAME|ID]`. */
#ifndef HKS_CLI_TARGET_H
#define HKS_CLI_TARGET_H

#include "cli/http.h"

typedef struct cli_target {
    char id[64];
    char name[64];
    bool local; /* found through the directory's .hks/function.json */
} cli_target;

/* Whether s looks like a function id: "fn-" and 20 hex digits. */
bool cli_is_function_id(const char *s);

/* Resolve arg:
 * - an id: itself (the name comes from the directory's .hks/function.json when it matches);
 * - a name: the id the directory's .hks/function.json remembers for it on this server, else the
 *   one function of that name in the token's project (GET /internal/v1/functions; several are
 *   an error naming their ids);
 * - NULL: the directory's .hks/function.json (deployed to this server), else its func.yaml's
 *   name looked up as above; neither is a usage error. */
int cli_target_resolve(cli_http *h, const char *arg, const char *dir, cli_target *out,
                       cli_error *err);

#endif
