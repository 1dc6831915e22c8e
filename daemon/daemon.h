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

/* ---- deployed functions (functions.c, instances.c, function_logs.c; kube_backend*.c) ----
 *
 * Functions and their instances live here; the HTTP edge speaks HTTP to an instance over the
 * socket a lease names, or to the URL it names on the kubernetes backend (the config's
 * "backend"), where the cluster is the record: any hksd pointed at it sees the same functions.
 * Every call that takes a project sees only that project's functions: another project's id is "not
 * found", exactly like an id that never existed. */

/* What went wrong, for the edge to choose a status. */
typedef enum hksd_failure {
    HKSD_FAIL_INTERNAL = 1, /* 500 */
    HKSD_FAIL_INVALID,      /* 422 */
    HKSD_FAIL_NOT_FOUND,    /* 404 */
    HKSD_FAIL_BUSY,         /* 429, retry shortly */
    HKSD_FAIL_UNAVAILABLE,  /* 503 (stopping, spawner gone) */
    HKSD_FAIL_START,        /* 502: the function's instance could not start */
    HKSD_FAIL_TIMEOUT,      /* 504 */
    HKSD_FAIL_CONFLICT,     /* 409: a name taken, a run refused by the Forbid policy */
    HKSD_FAIL_NO_SPACE,     /* 507: the state directory's file system is full (or over quota) */
} hksd_failure;

/* HKSD_FAIL_NO_SPACE when err is a full file system (ENOSPC, EDQUOT), else otherwise. */
int hksd_storage_failure(const hks_error *err, int otherwise);

typedef struct hksd_fn_spec {
    const char *name;     /* checked by the edge: 1-63 of [a-z0-9-], a letter first */
    const char *runtime;  /* a known runtime */
    const rt_file *files; /* the code; or an archive: */
    size_t n_files;
    const void *archive; /* a tar.gz of a Knative Functions project, extracted safely */
    size_t archive_len;
    json_t *env;         /* {"NAME": "value"}, checked by the edge */
    sbx_limits limits;   /* resolved against the policy; wall_ms is the per-request timeout */
    json_t *limits_json; /* the same in the policy's units, for the record */
    uint64_t ttl_s;
    unsigned min_scale, max_scale, concurrency;
} hksd_fn_spec;

/* Deploy: the code is written under the state dir, the record persisted atomically, min_scale
 * instances started. *record: the function's public view (a new reference). Returns 0 or a
 * hksd_failure with err. */
int hksd_fn_deploy(hksd *d, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **record,
                   hks_error *err);
/* Delete: instances stopped, files and record removed, an audit record written. */
int hksd_fn_delete(hksd *d, const hksd_caller *caller, const char *id, hks_error *err);
/* The public view of one function / of all of a project's ({"functions":[...]}); NULL: none. */
json_t *hksd_fn_get(hksd *d, const char *project, const char *id);
json_t *hksd_fn_list(hksd *d, const char *project);
/* Recent activity, kept in memory (lost at a restart). A function's last invocations, newest
 * first, at most limit, with p50/p95 durations over those kept: {"function_id", "duration_ms",
 * "invocations": [{"ts", "status", "http_status", "duration_ms", "cold_start"}]}. Its usage
 * sampled every 5 s for the last 10 minutes: {"function_id", "interval_ms", "samples": [{"ts",
 * "instances_running", "instances_busy", "waiting", "invocations", "errors",
 * "peak_memory_bytes", "cpu_ms"}]}. NULL: no such function in project. */
json_t *hksd_fn_invocations(hksd *d, const char *project, const char *id, size_t limit);
json_t *hksd_fn_usage(hksd *d, const char *project, const char *id);
/* The project's last executions, newest first, at most limit: {"executions": [...]}. */
json_t *hksd_executions(hksd *d, const char *project, size_t limit);
/* The function's log file (NDJSON lines) and whether the function still exists; the path is
 * stable for the function's lifetime. Returns false when no such function. */
bool hksd_fn_log_path(hksd *d, const char *project, const char *id, char *path, size_t size);
/* Call wake(ctx) once, the next time the function's log grows or the function goes away (or at
 * once when it is already gone). Returns a watch id for hksd_fn_log_unwatch. */
unsigned long hksd_fn_log_watch(hksd *d, const char *id, void (*wake)(void *ctx), void *ctx);
void hksd_fn_log_unwatch(hksd *d, unsigned long watch);

/* One request to one instance: on the local backend an instance's Unix socket, on the kubernetes
 * backend the function's Knative address (http://NAME.NS.svc.cluster.local), reached over TCP. */
typedef struct hksd_lease {
    char socket_path[108]; /* sun_path of the instance's listening socket; "" with a url */
    char url[512];         /* the function's base URL (no trailing '/'); "" on the local backend */
    uint64_t timeout_ms;   /* the function's per-request timeout */
    bool cold;             /* the instance was started for this request */
    uint64_t waited_us;    /* time spent waiting for an instance */
    void *instance;        /* opaque; give the lease back with hksd_fn_release */
} hksd_lease;

/* Called exactly once per hksd_fn_acquire: with failure 0 and a lease, or a hksd_failure and a
 * message. It may run before hksd_fn_acquire returns, or later on another thread; it must not
 * block. */
typedef void (*hksd_lease_cb)(void *ctx, int failure, const hksd_lease *lease, const char *message);
/* Ask for an instance with room for one more request: a ready one, or one being started (cold
 * start) when all are full and max_scale allows; otherwise the request waits, in a bounded queue
 * (full: HKSD_FAIL_BUSY), for room. */
void hksd_fn_acquire(hksd *d, const char *project, const char *id, hksd_lease_cb cb, void *ctx);

typedef struct hksd_fn_outcome {
    int http_status; /* the function's answer; 0 when there was none */
    bool timed_out;  /* the per-request timeout passed: the instance is replaced */
    bool failed;     /* no answer (connection refused or cut): the instance is replaced */
    bool not_sent;   /* nothing reached the instance (sent again elsewhere): not counted */
    uint64_t duration_us;
} hksd_fn_outcome;

void hksd_fn_release(hksd *d, hksd_lease *lease, const hksd_fn_outcome *outcome);

/* ---- CronJobs (cronjobs.c, cronjob_spec.c, cronjob_runs.c) ----
 *
 * Definitions and run history live under <state_dir>/cronjobs and survive restarts; hksd's
 * scheduler runs them. As for functions, every call takes the caller's project and sees only its
 * CronJobs; a CronJob is named by its id ("cj-...") or its name. */

/* Create from a request body (cronjob_spec.c checks it; *field names the offending field on a
 * HKSD_FAIL_INVALID). *view: the CronJob's public view. Returns 0 or a hksd_failure. */
int hksd_cronjob_create(hksd *d, const hksd_caller *caller, json_t *body, json_t **view,
                        char field[64], hks_error *err);
/* Change some fields (the same keys as create, name excepted); runs already going are not
 * touched. */
int hksd_cronjob_update(hksd *d, const hksd_caller *caller, const char *ref, json_t *changes,
                        json_t **view, char field[64], hks_error *err);
/* Delete: runs going are cancelled, the definition and history removed. */
int hksd_cronjob_delete(hksd *d, const hksd_caller *caller, const char *ref, hks_error *err);
/* NULL: no such CronJob in the project. */
json_t *hksd_cronjob_get(hksd *d, const char *project, const char *ref);
json_t *hksd_cronjob_list(hksd *d, const char *project);
/* {"runs":[...]} newest first, each with its logs (up to log_bytes of each, the end kept). */
json_t *hksd_cronjob_runs(hksd *d, const char *project, const char *ref, size_t log_bytes);
/* A manual run now, subject to the concurrency policy; *run: the run started. */
int hksd_cronjob_trigger(hksd *d, const hksd_caller *caller, const char *ref, json_t **run,
                         hks_error *err);

/* A scheduled invocation of a function, made by the HTTP edge on the scheduler's behalf (the
 * daemon does not speak HTTP). */
typedef struct hksd_invocation {
    const char *project, *function_id;
    const char *method, *path; /* path with its query, starting with '/' */
    json_t *headers;           /* {"Name": "value"} */
    const void *body;
    size_t body_len;
    const atomic_bool *cancel; /* set when the run is cancelled: give up */
} hksd_invocation;

typedef struct hksd_invocation_result {
    int failure;     /* 0, or a hksd_failure: no answer from the function */
    int http_status; /* the function's answer */
    char *body;      /* malloc'd, up to body_max bytes of it */
    size_t body_len;
    bool body_truncated;
    char message[256]; /* why, on a failure */
} hksd_invocation_result;

/* Synchronous: returns when the function answered, failed or the run was cancelled. */
typedef void (*hksd_invoker)(void *ctx, const hksd_invocation *inv, size_t body_max,
                             hksd_invocation_result *out);
/* Set (or, with NULL, clear) the invoker; clearing waits until no call is using the old one. */
void hksd_set_invoker(hksd *d, hksd_invoker invoker, void *ctx);

/* HTTP-side counters kept with the others, so /metrics renders one consistent set. */
void hksd_count_request(hksd *d, const char *route, int status);
/* Prometheus text exposition format; malloc'd. */
char *hksd_metrics_text(hksd *d);

/* Append one JSON record to the audit log (adds "ts"), fsync'd. */
int hksd_audit(hksd *d, json_t *record, hks_error *err);

/* Hex SHA-256 of an execution's files (names and contents), for the audit log. */
void hksd_code_digest(const rt_file *files, size_t n_files, char hex[65]);

#endif
