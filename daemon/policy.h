/* `hksd policy`: the security team's view of the files the daemon enforces (policies/): what they
 * allow (show), whether they are sound (check), and what a change to them loosens (diff).
 *
 * Everything here reads files and prints; nothing starts a sandbox or serves HTTP. The API's own
 * facts (its routes and the scope each needs, the JWT algorithms and keys) come in through
 * hksd_policy_api, filled by daemon/main.c, so that the daemon does not depend on the API. */
#ifndef HKSD_POLICY_H
#define HKSD_POLICY_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"

/* ---- what the API tells the policy tools ---- */

typedef struct hksd_policy_route {
    const char *method;
    const char *path;
    const char *scope; /* NULL: no token needed; "": any valid token */
} hksd_policy_route;

typedef struct hksd_policy_api {
    const hksd_policy_route *routes;
    size_t n_routes;
    const char *const *algorithms; /* JWT algorithms accepted, NULL-terminated */
    /* The verification keys in keys_dir as [{"kid","alg"}], or NULL with err. */
    json_t *(*describe_keys)(const char *keys_dir, hks_error *err);
} hksd_policy_api;

/* ---- seccomp profiles as a table of system calls ---- */

/* Whose view of a Docker-format profile: the capabilities a process holds (rules whose
 * includes.caps are all held apply, rules whose excludes.caps name a held one do not) and
 * Docker's name of the architecture ("amd64"). A sandbox holds no capability. */
typedef struct policy_view {
    json_t *capabilities; /* array of "CAP_*" strings, or NULL for none */
    const char *arch;
} policy_view;

/* The effective treatment of every system call a profile names (OCI/Docker JSON, already parsed),
 * on the native architecture:
 *   {"default": "SCMP_ACT_ERRNO(EPERM)",
 *    "syscalls": {NAME: {"status": "allowed"|"filtered"|"refused", "action": A,
 *                        "filters": [{"when": "arg1 & 0xffffffff == 0x5401", "action": A}],
 *                        "rules": [rule indexes]}},
 *    "unknown": [names libseccomp does not know], "other_arch": [names without a number here]}
 * "filtered": only argument-conditioned rules name the call; "action" is then what happens when no
 * filter matches (the default). Malformed parts are skipped (policy_check reports them). NULL
 * when out of memory. */
json_t *policy_seccomp_table(json_t *profile, const policy_view *view);

/* Whether a rule's Docker includes/excludes let it apply in this view (minKernel is taken as met:
 * hksd needs a newer kernel than any minKernel in Docker's profile). */
bool policy_rule_applies(json_t *rule, const policy_view *view);

/* How a call the table does not name is treated: {"status", "action"} from table.default. */
json_t *policy_seccomp_lookup(json_t *table, const char *name);

/* "allowed", "filtered" or "refused" for a libseccomp action name (SCMP_ACT_LOG counts as
 * allowed). */
const char *policy_action_status(const char *action);

/* ---- the kubernetes backend's objects ---- */

/* What a deployed function gets on a cluster, rendered for a sample function from
 * policies_dir/kubernetes/ by cluster/'s renderers (exactly what the backend sends), with the
 * configured namespace rule, registry and the limits' defaults:
 *   {"sample": {id, project, namespace, runtime, image, ...},
 *    "objects": [{"kind", "name", "object"}, ...]}   (Namespace, ServiceAccount, NetworkPolicy,
 * Knative Service). NULL with err when the policy files do not load (a weakened rule). */
json_t *policy_kubernetes_sample(const hksd_config *cfg, hks_error *err);

/* ---- check ---- */

/* Validate every policy file under dir (limits.json, the profiles in seccomp/ and
 * seccomp/groups.json, the YAML and JSON files of kubernetes/): one line per problem, "FILE: FIELD:
 * what is wrong", on out. root is where tools/policy/ (the Kubernetes validator and its
 * node_modules) is. Returns the number of problems. */
int policy_check_dir(const char *dir, const char *root, FILE *out);

/* The checks of one seccomp profile file that go beyond libseccomp: the OCI runtime-spec schema
 * (and Docker's extensions), contradictory and duplicate rules. Problems are printed as
 * "label: FIELD: message" on out; returns their number. */
int policy_check_seccomp_json(json_t *profile, const char *label, FILE *out);

/* The syscall groups file against the profile it describes: every group's syscalls known and in
 * one group only, every syscall the profile names in a group, every group's status as it says.
 * Returns the number of problems. */
int policy_check_groups(json_t *groups, const char *groups_label, json_t *profile,
                        const char *profile_label, FILE *out);

/* ---- Kubernetes files (validated and compared by tools/policy/kubernetes.mjs) ---- */

/* Run the node tool: `node tools/policy/kubernetes.mjs COMMAND ARGS...`; its output lines go to
 * out. Returns its exit status, or -1 with err when it cannot run (no node, no node_modules). */
int policy_kubernetes_run(const char *root, const char *const *args, FILE *out, hks_error *err);

/* The YAML and JSON files of dir/kubernetes, sorted, as paths (NULL-terminated, malloc'd, free
 * with policy_free_list); NULL with err when dir/kubernetes cannot be listed (a missing directory
 * is an empty list). */
char **policy_kubernetes_files(const char *dir, hks_error *err);
void policy_free_list(char **list);

/* ---- show and diff ---- */

typedef enum policy_format { POLICY_TEXT, POLICY_JSON, POLICY_MARKDOWN } policy_format;

/* The effective policy of cfg (its policies_dir, keys_dir, JWT settings) as JSON (see
 * docs/security.md "Auditing"). NULL with err when a file the daemon needs is unreadable. */
json_t *policy_show_model(const hksd_config *cfg, const hksd_policy_api *api, hks_error *err);
/* Print the model in text or Markdown (JSON is printed by the caller). */
void policy_show_render(json_t *model, policy_format format, FILE *out);

/* What changes from old_dir to new_dir, one line per change: "loosened: ...", "tightened: ..."
 * or "changed: ...", then a summary. Returns the number of loosening changes, or -1 with err
 * when either side cannot be read. */
int policy_diff_dirs(const char *old_dir, const char *new_dir, const char *root, FILE *out,
                     hks_error *err);

/* What `hksd policy diff` found, by kind of line. */
typedef struct policy_diff_counts {
    int loosened, tightened, changed;
} policy_diff_counts;

/* One line "<kind>: ..." (kind "loosened", "tightened" or "changed"), counted. */
void policy_diff_line(FILE *out, policy_diff_counts *counts, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Lines for the difference of two seccomp tables, added to counts. */
void policy_diff_seccomp(json_t *old_table, json_t *new_table, const char *label, FILE *out,
                         policy_diff_counts *counts);

#endif
