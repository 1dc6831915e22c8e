/* hksd's offline subcommands besides `token` (private to the daemon). Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the process exit status: 0 done,
 * 1 failed, 2 usage. */
#ifndef HKSD_COMMANDS_H
#define HKSD_COMMANDS_H

#include "config.h"
#include "policy.h"

/* hksd build: a function image as an OCI image layout (cmd_build.c). */
int hksd_cmd_build(const hksd_config *cfg, int argc, char **argv);
/* hksd push: an OCI image layout to a registry (cmd_push.c). */
int hksd_cmd_push(const hksd_config *cfg, int argc, char **argv);
/* hksd audit [verify]: query and verify the audit log (cmd_audit.c). */
int hksd_cmd_audit(const hksd_config *cfg, int argc, char **argv);
/* hksd policy show|check|diff: the policies as the daemon enforces them (cmd_policy.c); api
 * carries the routes, scopes and JWT facts of the API module. */
int hksd_cmd_policy(hksd_config *cfg, const hksd_policy_api *api, int argc, char **argv);

#endif
