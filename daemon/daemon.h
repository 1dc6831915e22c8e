/* hksd's core, below the HTTP edge: configuration in force, the limits policy, the warm pools,
 * runtime manifests, the audit log and metrics. Nothing here knows HTTP.
 *
 * Threads: hksd_start forks the sandbox spawner and probes the runtimes, so call it before any
 * thread exists; everything else is thread-safe. */
#ifndef HKS_DAEMON_H
#define HKS_DAEMON_H

#include <jansson.h>
#include <stdatomic.h>

#include "../runtimes/runtimes.h"
#include "config.h"

typedef struct hksd hksd;

int hksd_start(const hksd_config *cfg, hksd **out, hks_error *err);
void hksd_stop(hksd *d);
const hksd_config *hksd_config_of(const hksd *d);
/* A copy of the limits policy in force (it may be reloaded at any time). */
void hksd_policy_snapshot(hksd *d, hksd_policy_limits *out);
/* Read policies/limits.json again and have the seccomp profile compiled again (SIGHUP); on error
 * the policy in force stays. */
int hksd_reload_policy(hksd *d, hks_error *err);
/* The runtimes and what they offer, probed at start, with the limits policy in force:
 * {"runtimes":[manifest, ...],"limits":{"defaults":{..},"maxima":{..}}}; a new reference. */
json_t *hksd_runtimes(hksd *d);
/* Whether executions can be served now (the pools are running). */
bool hksd_ready(const hksd *d);

/* Who asks, for the audit log. */
typedef struct hksd_caller {
    const char *request_id;
    const char *sub;
    const char *project;
} hksd_caller;

/* One execution through the warm pool; the audit record and metrics are written here. */
int hksd_execute(hksd *d, const hksd_caller *caller, const rt_exec_request *req,
                 rt_exec_result *result, hks_error *err);

/* HTTP-side counters kept with the others, so /metrics renders one consistent set. */
void hksd_count_request(hksd *d, const char *route, int status);
/* Prometheus text exposition format; malloc'd. */
char *hksd_metrics_text(hksd *d);

/* Append one JSON record to the audit log (adds "ts"), fsync'd. */
int hksd_audit(hksd *d, json_t *record, hks_error *err);

/* Hex SHA-256 of an execution's files (names and contents), for the audit log. */
void hksd_code_digest(const rt_file *files, size_t n_files, char hex[65]);

#endif
