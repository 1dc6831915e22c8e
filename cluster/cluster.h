/* Cluster: the Kubernetes side of HKS Functions. A Kubernetes API client (libcurl + jansson)
 * configured in-cluster or from a kubeconfig; renderers of the objects a deployed function gets
 * (ServiceAccount, NetworkPolicy, Knative Service) from the reviewable policy files in
 * policies/kubernetes/; and the function-level operations the daemon calls: apply, wait until
 * ready, delete, list (for the reaper).
 *
 * Errors: every call that fails fills err with a message naming the object ("create
 * ServiceAccount fn-1 in namespace p: HTTP 409 AlreadyExists: serviceaccounts \"fn-1\" already
 * exists") and sets err->errnum to say what kind of failure it was, so callers can branch on it:
 *   ENOENT 404 NotFound            EEXIST 409 AlreadyExists      EBUSY 409 Conflict (stale write)
 *   ESTALE 410 Gone/Expired        EINVAL 400 BadRequest, 422 Invalid, a malformed object or reply
 *   EACCES 401/403                 EAGAIN 429 TooManyRequests    ETIMEDOUT the request timed out
 *   EIO    5xx, transport failures, a reply that is not what the API promises
 *
 * Threads: a kube_client is safe to share between threads (requests run on their own curl
 * handles; the token is re-read under a lock). A kube_policy is immutable once loaded. */
#ifndef HKS_CLUSTER_H
#define HKS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../common/common.h"

/* ---- configuration and client (kube_config.c, kube_client.c) ---- */

typedef struct kube_options {
    /* A kubeconfig file to use. NULL: $KUBECONFIG (its first path) when set, else the in-cluster
     * configuration, else ~/.kube/config. */
    const char *kubeconfig;
    const char *context;            /* NULL: the kubeconfig's current-context */
    const char *serviceaccount_dir; /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
    bool in_cluster;                /* use the in-cluster configuration, never a kubeconfig */
    unsigned timeout_ms;            /* each request's total time; 0: 30000 */
    unsigned connect_timeout_ms;    /* 0: 5000 */
    unsigned token_reread_s;        /* a token file is read again after this long; 0: 60 */
} kube_options;

typedef struct kube_client kube_client;

/* A client for the cluster the options point at. Files named by the configuration (token, CA,
 * client certificate and key) are read now, so a missing one is an error here; a token file is
 * read again every token_reread_s and after a 401 (the kubelet rotates bound tokens). */
int kube_client_new(const kube_options *opt, kube_client **out, hks_error *err);
void kube_client_free(kube_client *c);
/* The namespace of the configuration (in-cluster: the service account's; kubeconfig: the
 * context's, else "default"). */
const char *kube_client_namespace(const kube_client *c);
/* The API server's base URL and where the configuration came from, for logs. */
const char *kube_client_server(const kube_client *c);
const char *kube_client_source(const kube_client *c);

/* ---- the kinds hksd uses ---- */

typedef enum kube_kind {
    KUBE_NAMESPACE,
    KUBE_SERVICE_ACCOUNT,
    KUBE_CONFIG_MAP,
    KUBE_SECRET,
    KUBE_POD,
    KUBE_NETWORK_POLICY,
    KUBE_JOB,
    KUBE_CRON_JOB,
    KUBE_KSERVICE, /* serving.knative.dev/v1 Service */
    KUBE_KIND_COUNT,
} kube_kind;

/* "ServiceAccount", "Service" (Knative's), ... and the reverse, which also takes the plural
 * ("serviceaccounts", "ksvc"); -1 for an unknown name. */
const char *kube_kind_name(kube_kind kind);
int kube_kind_parse(const char *name);

/* ---- REST operations (kube_api.c). ns is ignored for cluster-scoped kinds; for list and watch
 * ns NULL means every namespace. Objects returned are new references. ---- */

/* POST the object; *created (optional) is what the server stored. */
int kube_create(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **created,
                hks_error *err);
/* PUT the object (it must carry metadata.resourceVersion unless the kind allows blind updates). */
int kube_replace(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **stored,
                 hks_error *err);
/* Create, or when it already exists replace it (taking the stored resourceVersion; a write that
 * races another is retried). */
int kube_apply(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **stored,
               hks_error *err);
int kube_get(kube_client *c, kube_kind kind, const char *ns, const char *name, json_t **out,
             hks_error *err);
/* JSON merge patch (RFC 7386). */
int kube_patch(kube_client *c, kube_kind kind, const char *ns, const char *name, json_t *patch,
               json_t **out, hks_error *err);

typedef enum kube_propagation {
    KUBE_PROPAGATE_BACKGROUND,
    KUBE_PROPAGATE_FOREGROUND,
    KUBE_PROPAGATE_ORPHAN,
} kube_propagation;

/* DELETE with DeleteOptions{propagationPolicy}. A 404 is an error (ENOENT): callers that mean
 * "make sure it is gone" treat it as success. */
int kube_delete(kube_client *c, kube_kind kind, const char *ns, const char *name,
                kube_propagation propagation, hks_error *err);

/* The items of a list (a JSON array) and the list's resourceVersion (to watch from).
 * label_selector may be NULL ("a=b,c!=d,e"); so may field_selector and resource_version. */
int kube_list(kube_client *c, kube_kind kind, const char *ns, const char *label_selector,
              const char *field_selector, json_t **items, char *resource_version, size_t rv_size,
              hks_error *err);

/* A watch event handed to a callback: type is "ADDED", "MODIFIED", "DELETED" or "BOOKMARK" (and
 * "SYNC" for the items of a re-list, see kube_list_watch). Return 0 to go on, 1 to stop (the
 * call then returns 1), -1 with err to fail. */
typedef int (*kube_event_fn)(void *ctx, const char *type, json_t *object, hks_error *err);

typedef struct kube_watch_options {
    const char *label_selector; /* NULL: every object */
    const char *field_selector; /* NULL, or e.g. "metadata.name=fn-1" */
    unsigned timeout_ms;        /* give up (ETIMEDOUT) after this long; 0: 5 minutes */
} kube_watch_options;

/* One watch from resource_version (NULL or "": from now). Events go to fn; *last_rv (optional,
 * rv_size bytes) follows the last resourceVersion seen so a caller can resume. Returns 1 when
 * fn stopped it, 0 when the server ended the stream (a caller re-watches from *last_rv), -1 with
 * err: ESTALE when resource_version is too old (410 Gone, as a status or an ERROR event): re-list.
 * ETIMEDOUT at the deadline. */
int kube_watch(kube_client *c, kube_kind kind, const char *ns, const kube_watch_options *opt,
               const char *resource_version, kube_event_fn fn, void *ctx, char *last_rv,
               size_t rv_size, hks_error *err);

/* List, hand every item to fn as "SYNC", then watch from the list's resourceVersion; on 410 Gone
 * list again (the "SYNC" items are the current state) and go on; when the server ends a watch,
 * watch again from the last resourceVersion. Returns 1 when fn stops, -1 with err (ETIMEDOUT at
 * opt->timeout_ms). */
int kube_list_watch(kube_client *c, kube_kind kind, const char *ns, const kube_watch_options *opt,
                    kube_event_fn fn, void *ctx, hks_error *err);

/* ---- policies and renderers (render.c): pure functions of the policy and the function ---- */

typedef struct kube_policy kube_policy;

/* Read policies/kubernetes/ (dir): function-serviceaccount.yaml, function-networkpolicy.yaml,
 * function-pod-security.yaml, namespace-functions.yaml, namespace-builds.yaml. A file that breaks
 * a rule its comment states is refused, naming the file and the field (automount not false, no
 * Egress policy type, a container securityContext short of Pod Security "restricted", namespace
 * labels not enforcing restricted/baseline). */
int kube_policy_load(const char *dir, kube_policy **out, hks_error *err);
void kube_policy_free(kube_policy *p);

typedef struct kube_function {
    const char *id;                /* "fn-<20 hex>": the name of every object of the function */
    const char *name;              /* the user's name for it (an annotation) */
    const char *project;           /* the tenant: a label and an annotation */
    const char *ns;                /* the namespace of its objects; NULL: project */
    const char *owner;             /* the token's sub */
    const char *runtime;           /* "python", "node" */
    const char *image;             /* "<registry>/<repository>@sha256:<64 hex>": by digest only */
    const char *code_sha256;       /* 64 hex */
    const char *profile;           /* seccomp profile name (policies/seccomp/<profile>.json); NULL:
                                      the policy's */
    const char *const *env;        /* "NAME=value", NULL-terminated; NULL for none */
    unsigned memory_mb;            /* limits (and requests) */
    unsigned cpu_millis;           /* 1000 = one core */
    unsigned timeout_s;            /* timeoutSeconds, 1..600 */
    unsigned concurrency;          /* containerConcurrency, 0 (unlimited) .. 1000 */
    unsigned min_scale, max_scale; /* max_scale 0: unlimited */
    long long expires_at;          /* unix seconds */
} kube_function;

/* The namespace of fn's objects. */
static inline const char *kube_function_ns(const kube_function *fn)
{
    return fn->ns ? fn->ns : fn->project;
}

/* The labels every object of a function carries, and the selector that lists them. */
#define KUBE_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define KUBE_MANAGER          "hksd"
#define KUBE_LABEL_FUNCTION   "hks.io/function"
#define KUBE_LABEL_PROJECT    "hks.io/project"
#define KUBE_SELECTOR_MANAGED KUBE_LABEL_MANAGED_BY "=" KUBE_MANAGER

/* The objects of a function, ready to send (new references), or NULL with err (EINVAL) naming
 * the field of fn that cannot be rendered. */
json_t *kube_render_service_account(const kube_policy *p, const kube_function *fn, hks_error *err);
json_t *kube_render_network_policy(const kube_policy *p, const kube_function *fn, hks_error *err);
json_t *kube_render_kservice(const kube_policy *p, const kube_function *fn, hks_error *err);
/* A project namespace (builds false) or the build namespace (builds true) named name. */
json_t *kube_render_namespace(const kube_policy *p, const char *name, bool builds, hks_error *err);

typedef enum kube_readiness {
    KUBE_NOT_READY, /* still reconciling: the generation not observed yet, or Ready Unknown */
    KUBE_READY,     /* observedGeneration == generation and Ready=True; url is set */
    KUBE_FAILED,    /* observedGeneration == generation and Ready=False; why says so */
} kube_readiness;

/* Where a Knative Service stands. url gets status.address.url when ready; why (both optional)
 * the Ready condition's reason and message otherwise. A ready object without an address URL is
 * KUBE_NOT_READY. */
kube_readiness kube_kservice_readiness(const json_t *ksvc, char *url, size_t url_size, char *why,
                                       size_t why_size);

/* ---- function-level operations (function.c) ---- */

/* Render and create the function's ServiceAccount, NetworkPolicy and Knative Service, in that
 * order, in fn's namespace (fn->ns, else fn->project). An object already there is an error
 * (EEXIST): ids are new on every deploy, so it is a leftover, never overwritten. */
int kube_function_apply(kube_client *c, const kube_policy *p, const kube_function *fn,
                        hks_error *err);

/* Wait until the function's Knative Service is ready (get, then watch it, re-getting on 410
 * Gone); url gets status.address.url. ENOENT when there is no such Service (or it is deleted
 * meanwhile), ETIMEDOUT after timeout_ms, EIO when Knative reports Ready=False (its reason and
 * message in err). */
int kube_function_wait_ready(kube_client *c, const char *ns, const char *id, unsigned timeout_ms,
                             char *url, size_t url_size, hks_error *err);

/* Delete the function's Knative Service, NetworkPolicy and ServiceAccount with propagationPolicy
 * Background. Idempotent: objects already gone (404) count as deleted, so any node may run it.
 * *deleted (optional) is how many objects this call removed. */
int kube_function_delete(kube_client *c, const char *ns, const char *id, unsigned *deleted,
                         hks_error *err);

/* What the reaper needs to know about one deployed function, read from its Knative Service. */
typedef struct kube_function_info {
    char id[64];
    char ns[64];
    char project[64]; /* the hks.io/project label */
    char runtime[16]; /* the hks.io/runtime annotation */
    char owner[256];
    char code_sha256[65];
    long long expires_at; /* -1 when the annotation is missing or unreadable */
    kube_readiness readiness;
    char url[512];
} kube_function_info;

/* The functions hksd deployed (Knative Services labelled app.kubernetes.io/managed-by=hksd) in ns,
 * or in every namespace when ns is NULL. *out is malloc'd (free it), *count its length. Objects
 * without a usable hks.io/function label are skipped. */
int kube_function_list(kube_client *c, const char *ns, kube_function_info **out, size_t *count,
                       hks_error *err);

/* ---- pods (kube_api.c) ---- */

/* The log of container (NULL: the pod's only one) of pod in ns: *text (malloc'd, NUL-terminated,
 * *len bytes) holds at most limit_bytes (0: 1 MiB) from the log's start; tail_lines > 0 keeps
 * only the last that many lines (the API server's tailLines). */
int kube_pod_logs(kube_client *c, const char *ns, const char *pod, const char *container,
                  unsigned tail_lines, size_t limit_bytes, char **text, size_t *len,
                  hks_error *err);

/* ---- Kaniko builds (kaniko.c) ---- */

/* A ConfigMap holds at most 1 MiB of data: larger build contexts are refused. */
#define KUBE_KANIKO_CONTEXT_MAX (1u << 20)
/* The last upstream executor (v1.24.0; the project is archived, see knative-kaniko.md §3.1),
 * pinned by the digest of its image index. Set your own build or mirror in the options. */
#define KUBE_KANIKO_EXECUTOR_DEFAULT                                                               \
    "gcr.io/kaniko-project/executor:v1.24.0@sha256:"                                               \
    "4e7a52dd1f14872430652bb3b027405b8dfd17c4538751c620ac005741ef9698"
#define KUBE_BUILD_NAMESPACE_DEFAULT "hks-builds"

typedef struct kube_kaniko_options {
    const char *ns;              /* the build namespace; NULL: hks-builds */
    const char *executor_image;  /* by digest; NULL: KUBE_KANIKO_EXECUTOR_DEFAULT */
    const char *registry_secret; /* a kubernetes.io/dockerconfigjson Secret in ns, mounted at
                                    /kaniko/.docker; NULL: push without credentials */
    const char *dockerfile;      /* its path in the context; NULL: Dockerfile */
    const char *function_id;     /* labels the build's objects hks.io/function (optional) */
    unsigned deadline_s;         /* the Pod's activeDeadlineSeconds; 0: 600, at most 3600 */
    unsigned wait_ms;            /* how long hksd waits; 0: deadline_s + 60 s */
    unsigned cpu_millis;         /* requests = limits; 0: 1000 */
    unsigned memory_mb;          /* 0: 2048 */
    unsigned ephemeral_mb;       /* ephemeral-storage (the unpacked base image); 0: 4096 */
    bool insecure_registry;      /* --insecure: push over plain HTTP */
} kube_kaniko_options;

/* Build the Dockerfile of context (a gzip tar of at most KUBE_KANIKO_CONTEXT_MAX bytes, as
 * bld_context_build makes) with Kaniko on the cluster and push it to destination
 * (registry/repository[:tag]); digest gets the pushed manifest's "sha256:<64 hex>".
 *
 * Checked before anything is created: the options, the context's size (EFBIG) and form
 * (EINVAL), the destination (EINVAL), and the build namespace: created from p's
 * namespace-builds.yaml when missing (p NULL: it must exist), refused (EACCES) unless it
 * enforces Pod Security "baseline". Then a ConfigMap hks-build-<20 hex> with the context and a
 * Pod of that name run the executor, and the Pod is watched until the executor ends. Failures:
 * the executor's exit code and the end of its log (EIO), the Pod's deadline passed or no result
 * within wait_ms (ETIMEDOUT, with the Pod's last state), the Pod deleted meanwhile (EIO).
 * The Pod and the ConfigMap are deleted on every path; if that fails the call fails too (err
 * says what is left; after a successful build digest is still set). */
int kube_kaniko_build(kube_client *c, const kube_policy *p, const kube_kaniko_options *opt,
                      const void *context, size_t context_len, const char *destination,
                      char digest[72], hks_error *err);

/* Delete the build Pods and ConfigMaps (labelled hks.io/role=build by hksd) in ns (NULL: every
 * namespace) created more than older_than_s seconds ago: those of builds whose hksd stopped.
 * *deleted (optional): how many objects went. */
int kube_kaniko_reap(kube_client *c, const char *ns, long long older_than_s, unsigned *deleted,
                     hks_error *err);

/* ---- CronJobs (cronjob.c, cronjob_runs.c) ---- */

/* The invoker of a function target: curl 8.11.1 (--fail-with-body, %output{} in --write-out),
 * pinned by digest. */
#define KUBE_CURL_IMAGE_DEFAULT                                                                    \
    "curlimages/curl:8.11.1@sha256:"                                                               \
    "c1fe1679c34d9784c1b0d1e5f62ac0a79fca01fb6377cdd33e90473c6f9f9a69"
#define KUBE_LABEL_CRONJOB "hks.io/cronjob"

typedef struct kube_cronjob {
    const char *id;                /* "cj-<20 hex>": the object's name in namespace project */
    const char *project;           /* the namespace */
    const char *owner;             /* the token's sub (an annotation) */
    const json_t *definition;      /* as daemon/cronjob_spec.c makes it: every default filled */
    const char *curl_image;        /* a function target's invoker, by digest; NULL: the default */
    unsigned ttl_after_finished_s; /* a Job's ttlSecondsAfterFinished; 0: 7 days */
    const char *project_name;      /* hksd's project (annotation hks.io/project); NULL: project */
    const char *updated_at;        /* RFC 3339 (annotation hks.io/updated-at); NULL: none */
} kube_cronjob;

/* The definition rides on the CronJob as the annotation hks.io/definition (compact JSON), so every
 * hksd reads the same one from the cluster; Kubernetes caps a object's annotations at 256 KiB. */
#define KUBE_CRONJOB_DEFINITION_MAX (128u << 10)

/* The batch/v1 CronJob of cj (a new reference), or NULL with err (EINVAL naming the field).
 * template_ksvc is the Knative Service of the target function as stored: a task's container
 * (image, env, resources, service account) comes from it, a function target's URL
 * (status.address.url) and timeout too. */
json_t *kube_render_cronjob(const kube_policy *p, const kube_cronjob *cj,
                            const json_t *template_ksvc, hks_error *err);
/* A task's NetworkPolicy: its pods (hks.io/cronjob=<id>) get no ingress and no egress. */
json_t *kube_render_cronjob_network_policy(const kube_policy *p, const kube_cronjob *cj,
                                           hks_error *err);

/* Create or replace cj's CronJob (and for a task its NetworkPolicy), reading the target
 * function's Knative Service first (ENOENT when it does not exist). Suspend and resume are
 * updates of the definition's suspend. */
int kube_cronjob_apply(kube_client *c, const kube_policy *p, const kube_cronjob *cj,
                       hks_error *err);

/* Delete the CronJob (its Jobs and Pods go with it, propagation Background) and its
 * NetworkPolicy. Idempotent: 404 counts as done; *deleted (optional) how many objects went. */
int kube_cronjob_delete(kube_client *c, const char *ns, const char *id, unsigned *deleted,
                        hks_error *err);

/* A manual run: a Job "<id>-m<10 hex>" from the CronJob's jobTemplate with the annotation
 * cronjob.kubernetes.io/instantiate: manual and the CronJob as its controlling owner. The
 * concurrency policy applies as on the local backend: Forbid refuses while a run is going
 * (EBUSY), Replace deletes the runs going first. Returns the run's record, or NULL with err
 * (ENOENT: no such CronJob). */
json_t *kube_cronjob_trigger(kube_client *c, const char *ns, const char *id, hks_error *err);

/* The runs of CronJob id: the Jobs it owns, newest first, each as a record of the local
 * backend's shape with the last log_bytes of its Pod's log (logs, logs_cut; log_bytes and
 * log_truncated when finished). NULL with err (ENOENT: no such CronJob). */
json_t *kube_cronjob_runs(kube_client *c, const char *ns, const char *id, size_t log_bytes,
                          hks_error *err);

#endif
