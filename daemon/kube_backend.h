/* Private to the daemon: the kubernetes backend (config "backend": "kubernetes"). A deployed
 * function is an image in the configured registry plus its objects on the cluster (ServiceAccount,
 * NetworkPolicy, Knative Service, rendered by cluster/ from policies/kubernetes/); the cluster is
 * the record, so any hksd pointed at it lists, invokes, deletes and reaps the same functions.
 *
 * Each hksd also keeps a journal of its own deploys in <state_dir>/kube/functions/<id>.json (the
 * function store's format, "state": "deploying" until Ready, then "ready" with the Knative URL and
 * the image digest, or "failed" when removing a failed deploy's objects failed too) and builds in
 * <state_dir>/kube/build/<id>/; a start after a crash removes what an interrupted deploy left, on
 * the cluster and on disk, and the reaper retries the "failed" ones.
 *
 * Threads: every call is thread-safe. kb_deploy and the first kb_acquire of a function block on
 * the cluster (a build, a push, API requests); the lease callback itself never blocks. */
#ifndef HKSD_KUBE_BACKEND_H
#define HKSD_KUBE_BACKEND_H

#include "daemon.h"
#include "function_store.h"

#include "../cluster/cluster.h"

#include <pthread.h>

/* How long a function's Knative URL is used without asking the cluster again (another node may
 * have deleted it). */
#define KB_URL_FRESH_US (5ULL * 1000000)

typedef struct kb_url {
    struct kb_url *next;
    char id[HKSD_FUNCTION_ID_LEN + 1];
    char project[128];
    char url[512];
    uint64_t timeout_ms;
    long long expires_at;
    uint64_t fetched_us;
} kb_url;

typedef struct kb_backend {
    hksd *d;
    const hksd_config *cfg;
    kube_client *client;
    kube_policy *policy;
    hksd_function_store journal; /* <state_dir>/kube/functions */
    char build_root[PATH_MAX];   /* <state_dir>/kube/build */
    pthread_mutex_t lock;        /* urls, deploying, stopping */
    pthread_cond_t wake;
    kb_url *urls;
    unsigned deploying; /* deploys in progress here */
    bool stopping;
    pthread_t reaper;
    bool reaper_running;
    atomic_ulong deployed_total, deploy_failures_total, deleted_total, reaped_total,
        orphans_removed_total, reap_errors_total;
} kb_backend;

/* kube_backend.c: start (connect, load the policy, reconcile the journal, start the reaper) */
int kb_start(kb_backend *kb, hksd *d, const hksd_config *cfg, hks_error *err);
void kb_stop(kb_backend *kb);
void kb_acquire(kb_backend *kb, const char *project, const char *id, hksd_lease_cb cb, void *ctx);
void kb_metrics(kb_backend *kb, FILE *out);
/* The namespace of project's functions; -1 with err when the rule makes no valid name. */
int kb_namespace(const kb_backend *kb, const char *project, char out[64], hks_error *err);
/* The URL cache (lock taken inside). */
void kb_url_put(kb_backend *kb, const char *id, const char *project, const char *url,
                uint64_t timeout_ms, long long expires_at);
void kb_url_drop(kb_backend *kb, const char *id);
/* One JSON log line on stderr. */
void kb_log(const char *level, const char *msg, const char *fn_id, const char *detail);
/* An audit record of what happened to a function. */
void kb_audit(kb_backend *kb, const hksd_caller *caller, const char *action, const char *project,
              const char *id, const char *runtime, const char *code_sha256, const char *result);

/* kube_deploy.c: deploy, delete and the public view, read from the Knative Service */
int kb_deploy(kb_backend *kb, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **view,
              hks_error *err);
int kb_delete(kb_backend *kb, const hksd_caller *caller, const char *id, hks_error *err);
json_t *kb_get(kb_backend *kb, const char *project, const char *id);
json_t *kb_list(kb_backend *kb, const char *project);
/* The public view of a function from its Knative Service (a new reference); NULL when the object
 * is not a function of project (NULL project: of any). */
json_t *kb_view(const json_t *ksvc, const char *project);
/* Remove what an interrupted or failed deploy of id left: the objects on the cluster, the build
 * directory, the journal record. */
void kb_undo_deploy(kb_backend *kb, const char *ns, const char *id);

#endif
