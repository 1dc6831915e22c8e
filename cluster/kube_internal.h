/* The cluster module's insides, private to cluster/. The parsers of everything the API server and
 * a kubeconfig hand over are declared here rather than in cluster.h so that the unit tests and the
 * fuzz target reach them without making them part of the module's API. Each parser bounds its
 * input and answers garbage with an error, never a crash. */
#ifndef HKS_CLUSTER_KUBE_INTERNAL_H
#define HKS_CLUSTER_KUBE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "cluster.h"

#define KUBE_DOC_MAX       (4u << 20)  /* a kubeconfig, a policy file */
#define KUBE_BODY_MAX      (64u << 20) /* one API reply (lists can be long) */
#define KUBE_EVENT_MAX     (8u << 20)  /* one watch event line */
#define KUBE_YAML_DEPTH    64
#define KUBE_SA_DIR        "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_NAME_MAX      253
#define KUBE_SERVER_MAX    512
#define KUBE_NAMESPACE_MAX 64

/* err = the formatted message (no strerror appended: the message says it all) with errnum set,
 * so callers can branch on the kind of failure. Returns -1. */
int kube_fail(hks_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- YAML (yaml_json.c) ---- */

/* A YAML document (or JSON, a subset) as a JSON tree: mappings with scalar keys, sequences, and
 * scalars typed by the YAML 1.2 core schema for plain scalars (true/false, null/~/empty, decimal
 * integers; everything else, and every quoted scalar, a string). Refused, with "line N: why":
 * anchors and aliases (no expansion bombs), duplicate keys, non-scalar keys, more than one
 * document, nesting deeper than KUBE_YAML_DEPTH, input above KUBE_DOC_MAX. */
json_t *kube_yaml_parse(const char *text, size_t len, hks_error *err);

/* ---- configuration (kube_config.c) ---- */

/* How to reach and authenticate to one API server. PEM blobs are malloc'd and owned. */
typedef struct kube_conn {
    char server[KUBE_SERVER_MAX]; /* https://host:port (no trailing slash) */
    char ns[KUBE_NAMESPACE_MAX];
    char source[PATH_MAX + 128]; /* "in-cluster" or "kubeconfig PATH, context NAME" */
    char *token;                 /* a bearer token given inline */
    char token_file[PATH_MAX];   /* a bearer token read (again) from this file */
    char *ca_pem;                /* certificate-authority-data, decoded */
    size_t ca_len;
    char ca_file[PATH_MAX];
    char *cert_pem, *key_pem; /* client-certificate-data / client-key-data, decoded */
    size_t cert_len, key_len;
    char cert_file[PATH_MAX], key_file[PATH_MAX];
    bool insecure; /* insecure-skip-tls-verify */
} kube_conn;

void kube_conn_free(kube_conn *conn);

/* A kubeconfig (YAML or JSON, len bytes) into *out: the context named context (NULL: the
 * current-context), its cluster and its user. Relative file paths are resolved against base_dir
 * (the kubeconfig's directory). Reads no file. Refused with a message naming the entry: exec and
 * auth-provider plugins, basic auth, a missing or ambiguous context/cluster/user, a server that
 * is not an http(s) URL, malformed base64, over-long values, control bytes. */
int kube_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                 const char *context, kube_conn *out, hks_error *err);

/* The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT (host, port given here so tests
 * need not touch the environment) and sa_dir's token, ca.crt and namespace. ENOENT when host or
 * port is missing ("not in a cluster"). Reads the namespace file; the token and CA stay files. */
int kube_config_in_cluster(const char *host, const char *port, const char *sa_dir, kube_conn *out,
                           hks_error *err);

/* Resolve opt into a connection (which source is used is described in cluster.h). */
int kube_config_load(const kube_options *opt, kube_conn *out, hks_error *err);

/* ---- replies (kube_parse.c) ---- */

/* A Kubernetes Status (or any failed reply) made into one line: "HTTP 404 NotFound: services
 * \"x\" not found"; a body that is not a Status gives its first printable bytes. Control bytes
 * are replaced. out has size bytes (> 0). */
void kube_status_summary(long http_status, const char *body, size_t len, char *out, size_t size);

/* The errno a failed reply stands for (see cluster.h): from the Status reason when there is one
 * (AlreadyExists vs Conflict share 409), else from the HTTP status. */
int kube_status_errno(long http_status, const char *body, size_t len);

/* A reply body that must be a JSON object of the expected kind (NULL: any kind). */
json_t *kube_parse_object(const char *body, size_t len, const char *expect_kind, hks_error *err);

/* A list reply: its items (a new reference to the array, every item an object) and
 * metadata.resourceVersion copied into rv (rv_size > 0; "" when absent). */
json_t *kube_parse_list(const char *body, size_t len, char *rv, size_t rv_size, hks_error *err);

/* One watch event line. Returns 0 with type ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") and
 * *object (a new reference) and rv the object's resourceVersion (may be ""); -1 with err for
 * garbage; an ERROR event is -1 with errno of its Status (ESTALE for 410 Gone/Expired). */
int kube_parse_watch_event(const char *line, size_t len, char type[16], json_t **object, char *rv,
                           size_t rv_size, hks_error *err);

/* text (len bytes) into out (size > 0) with control bytes replaced by spaces, cut at size. */
void kube_copy_printable(char *out, size_t size, const char *text, size_t len);

/* "2024-05-01T10:00:00Z" (the form the API server writes) as unix seconds, -1 for anything else;
 * and back (-1 when t cannot be written). */
long long kube_time_parse(const char *s);
/* s with every '$' doubled, as a JSON string: the kubelet expands $(VAR) in command, args and env
 * values, and "$$" is its escape, so what hksd was given is what runs (as on the local backend). */
json_t *kube_literal(const char *s);
int kube_time_format(long long t, char out[32]);

/* true when s is a DNS-1123 label (lower-case alphanumerics and '-', starting and ending with an
 * alphanumeric, at most 63 bytes). */
bool kube_dns_label(const char *s);

/* ---- the client (kube_client.c) ---- */

typedef struct kube_kind_info {
    const char *kind, *api_version, *plural, *prefix; /* prefix: "/api/v1", "/apis/batch/v1" */
    bool namespaced;
} kube_kind_info;

const kube_kind_info *kube_kind_get(kube_kind kind);

typedef struct kube_request {
    const char *method;
    const char *path; /* below the server, with its query */
    const char *content_type;
    const char *accept; /* NULL: application/json */
    const char *body;
    size_t body_len;
    const char *what; /* "create ServiceAccount fn-1 in namespace p", for errors */
    /* streaming (watch): each complete line of the reply goes to on_line; a non-zero return
     * stops the transfer and becomes the request's result */
    int (*on_line)(void *ctx, const char *line, size_t len, hks_error *err);
    void *line_ctx;
    unsigned timeout_ms; /* 0: the client's */
} kube_request;

typedef struct kube_response {
    long status;
    char *body; /* NUL-terminated; not kept for streamed replies */
    size_t body_len;
} kube_response;

void kube_response_free(kube_response *rs);

/* Send rq: a 401 makes the client read its token file again and retry once. Returns 0 when the
 * request got an HTTP reply (any status; rs filled), -1 with err for a transport failure or a
 * timeout, or the on_line callback's result when it stopped the stream. */
int kube_send(kube_client *c, const kube_request *rq, kube_response *rs, hks_error *err);

/* err from a reply that is not a success: "<what>: HTTP <status> <reason>: <message>". */
int kube_fail_reply(hks_error *err, const char *what, const kube_response *rs);

/* ---- the policy, for renderers outside render.c ---- */

/* A new copy of the policy's container securityContext, its Localhost seccomp profile
 * localhost_profile when that is "<the policy's directory>/<name>.json", else the policy's. */
json_t *kube_policy_security_context(const kube_policy *p, const char *localhost_profile,
                                     hks_error *err);
/* The size-limited emptyDir every container gets, the root filesystem being read-only. */
const char *kube_policy_tmp_path(const kube_policy *p);
const char *kube_policy_tmp_size(const kube_policy *p);
/* function-networkpolicy.yaml as loaded (borrowed). */
const json_t *kube_policy_network_policy(const kube_policy *p);

/* ---- Kaniko builds (kaniko.c) ---- */

/* kube_kaniko_options with every default filled in. */
typedef struct kube_kaniko_settings {
    const char *ns, *image, *secret, *dockerfile, *function_id;
    unsigned deadline_s, wait_ms, cpu_millis, memory_mb, ephemeral_mb;
    bool insecure;
} kube_kaniko_settings;

/* opt (NULL: every default) checked and completed; EINVAL naming the field otherwise. */
int kube_kaniko_resolve(const kube_kaniko_options *opt, kube_kaniko_settings *s, hks_error *err);

/* The build's ConfigMap (the context as binaryData, immutable) and Pod, both named name in
 * s->ns. */
json_t *kube_render_kaniko_context(const kube_kaniko_settings *s, const char *name,
                                   const void *context, size_t len, hks_error *err);
json_t *kube_render_kaniko_pod(const kube_kaniko_settings *s, const char *name,
                               const char *destination, hks_error *err);

typedef enum kube_build_state {
    KUBE_BUILD_RUNNING,
    KUBE_BUILD_SUCCEEDED, /* digest set */
    KUBE_BUILD_FAILED,    /* why says so, errnum ETIMEDOUT (the Pod's deadline) or EIO */
} kube_build_state;

typedef struct kube_build_outcome {
    kube_build_state state;
    int errnum;
    char digest[72]; /* "sha256:<64 hex>" */
    char why[1024];  /* printable; a long termination message keeps its end */
} kube_build_outcome;

/* Where a build Pod (any JSON) stands: the executor's container terminated with exit code 0 and
 * a termination message that is exactly a sha256 digest (trailing whitespace aside) is success;
 * a non-zero exit, a Pod past its deadline, a Pod ended without the executor's status, or a wait
 * that cannot heal (InvalidImageName, CreateContainerConfigError, ...) is failure. */
void kube_kaniko_outcome(const json_t *pod, kube_build_outcome *out);

/* ---- CronJob runs (cronjob_runs.c) ---- */

/* A run record in the local backend's shape (daemon/cronjob_runs.c) from a Job (any JSON) and
 * its Pod (NULL when there is none): id (the Job's name), number (its creation time, unix
 * seconds), cronjob_id, trigger, status (running, succeeded, failed from its Complete/Failed
 * conditions), scheduled_at, started_at, and once finished reason, finished_at, duration_ms,
 * exit_code, signal, http_status (a function target's "HTTP <code>" termination message),
 * peak_memory_bytes, cpu_ms (null: not kept by the kubelet). NULL when the Job has no usable
 * name. */
json_t *kube_job_run_record(const json_t *job, const json_t *pod, const char *cronjob_id,
                            bool function_target);

/* A Job as `kubectl create job NAME --from=cronjob/...` makes it from a stored CronJob. */
json_t *kube_render_manual_job(const json_t *cronjob, const char *name, hks_error *err);

#endif
