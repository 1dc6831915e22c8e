/* hksd's configuration: the daemon's settings (defaults, one JSON file, environment overrides) and
 * the limits policy (policies/limits.json) that every request's limits are resolved against. */
#ifndef HKSD_CONFIG_H
#define HKSD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../common/common.h"
#include "../sandbox/sandbox.h"

/* ---- JSON files ---- */

/* The file at path parsed (duplicate keys refused), or NULL with err naming path; err->errnum is
 * that of the failed system call (ENOENT, ELOOP for a symlink when !follow_symlinks), 0 when the
 * file is not regular, is larger than max_bytes or is not JSON. */
json_t *hksd_json_file_load(const char *path, size_t max_bytes, bool follow_symlinks,
                            hks_error *err);

/* ---- the limits policy ---- */

/* Upper bound of the size of limits.json and of a config file. */
#define HKSD_CONFIG_FILE_MAX (1024 * 1024)

typedef struct hksd_policy_limits {
    sbx_limits defaults, maxima; /* in sbx_limits units (bytes, ms, millicores) */
    uint64_t ttl_default_s, ttl_max_s;
    size_t max_files, max_file_bytes, max_total_bytes, max_stdin_bytes;
} hksd_policy_limits;

/* Load and validate limits.json:
 * {"defaults":{..},"maxima":{..},"ttl_seconds":{"default","maximum"},
 * "execute":{"max_files","max_file_bytes","max_total_bytes","max_stdin_bytes"}}, "_comment" strings
 * allowed in every object. Duplicate, unknown and missing keys are refused; every value is a
 * positive integer (cpus: a number of cores, fractions down to 0.001 allowed) within a hard cap the
 * spawner also accepts; every default <= its maximum, max_file_bytes <= max_total_bytes. err names
 * the file and the field ("/x/limits.json: maxima.memory_mb: ..."). Fields of sbx_limits that are
 * not in the policy (shm_bytes) are those of sbx_limits_default. */
int hksd_policy_limits_load(const char *path, hksd_policy_limits *out, hks_error *err);

/* Resolve a request's "limits" object (NULL or JSON null: all defaults) against the policy: keys as
 * in limits.json (memory_mb, pids, cpus, wall_ms, cpu_ms, tmpfs_mb, fsize_mb, nofile,
 * output_bytes), each optional; missing -> default; above the maximum, <= 0, wrong type or unknown
 * key -> -1 with err naming the field and the bound ("limits.memory_mb: 4096 is above the maximum
 * 2048"). output_bytes sets stdout_max and stderr_max. *out is written only on success. */
int hksd_policy_limits_resolve(const hksd_policy_limits *policy, json_t *request_limits,
                               sbx_limits *out, hks_error *err);

/* ---- the daemon's settings ---- */

typedef struct hksd_config {
    char listen_host[256];           /* 127.0.0.1; without brackets for IPv6 */
    int listen_port;                 /* 8080 */
    char state_dir[PATH_MAX];        /* <root>/var/hksd, or /var/lib/hksd when root is under /usr */
    char root[PATH_MAX];             /* checkout/installation holding policies/ and runtimes/ */
    char policies_dir[PATH_MAX];     /* <root>/policies */
    char keys_dir[PATH_MAX];         /* <state_dir>/keys */
    char backend[16];                /* "local" or "kubernetes" */
    unsigned pool_python, pool_node; /* warm sandboxes: 2, 2 */
    char jwt_issuer[128], jwt_audience[128]; /* "hksd", "hks-internal" */
    long jwt_leeway_s, jwt_max_lifetime_s;   /* 30, 3600 */
    size_t max_body_bytes;                   /* 32 MiB */
    unsigned threads, max_connections, per_ip_connections,
        connection_timeout_s; /* cores<=4,256,64,120 */
    char log_level[16];       /* "debug", "info" (default), "warn" or "error" */
    /* deployed functions: an instance idle this long stops (scale to zero, down to min_scale);
     * at most max_functions deployed and max_instances running on this host */
    unsigned function_idle_s, max_functions, max_instances; /* 60, 256, 32 */
    /* the audit log is rotated at this size, keeping this many rotated files */
    size_t audit_rotate_bytes; /* 64 MiB; 0: never */
    unsigned audit_keep;       /* 10 */
    /* CronJobs: at most max_cronjobs defined and max_active_runs going on this host */
    unsigned cron_max_cronjobs, cron_max_active_runs; /* 100, 8 */
    /* node role (a Kubernetes node): write policies/seccomp/ into the kubelet's seccomp directory
     * at start (daemon/node_seccomp.h); off unless configured */
    bool node_install_seccomp;       /* false */
    char node_seccomp_dir[PATH_MAX]; /* /var/lib/kubelet/seccomp/hks */
    /* the kubernetes backend (backend "kubernetes"; daemon/kube_backend.c): where the cluster is,
     * where function images go and what they are built on. "" means unset. */
    char kube_kubeconfig[PATH_MAX]; /* "": $KUBECONFIG, else in-cluster, else ~/.kube/config */
    char kube_context[128];         /* "": the kubeconfig's current context */
    bool kube_in_cluster;           /* false: true forces the in-cluster configuration */
    /* the namespace of a project's functions: "{project}" is replaced by the project */
    char kube_namespace[64];           /* "{project}" */
    char kube_registry[256];           /* "": host[:port] function images are pushed to */
    char kube_repository[200];         /* "hks/functions": images are <prefix>/<project> */
    bool kube_registry_insecure;       /* false: plain HTTP to the registry refused */
    char kube_registry_ca[PATH_MAX];   /* "": the system's CAs */
    char kube_docker_config[PATH_MAX]; /* "": $DOCKER_CONFIG/config.json, ~/.docker/... */
    char kube_base_python[PATH_MAX];   /* the runtimes' base images, OCI image layouts */
    char kube_base_node[PATH_MAX];     /* "": that runtime cannot be deployed */
    unsigned kube_ready_timeout_s;     /* 120: a deploy not Ready by then fails */
    unsigned kube_reap_interval_s;     /* 10: how often the reaper lists the cluster */
    unsigned kube_request_timeout_s;   /* 30: each API request's total time */
    /* Kaniko builds on the cluster, for functions with dependencies to install */
    char kube_kaniko_namespace[64]; /* "hks-builds": where build Pods run (Pod Security baseline) */
    char kube_kaniko_executor[512]; /* "": the driver's pinned executor; else an image by digest */
    char kube_kaniko_secret[254];   /* "": push without credentials; else a dockerconfigjson
                                       Secret in the build namespace */
    unsigned kube_kaniko_deadline_s; /* 600: a build Pod's activeDeadlineSeconds */
} hksd_config;

/* The defaults, for a checkout or installation at root (NULL: "."). */
void hksd_config_defaults(hksd_config *cfg, const char *root);

/* Apply one JSON config file (at most HKSD_CONFIG_FILE_MAX bytes; symlinks followed, as for a
 * Kubernetes ConfigMap). Every key is optional; the format is what hksd_config_to_json prints:
 *   {"listen":"127.0.0.1:8080","state_dir":S,"root":S,"policies_dir":S,"keys_dir":S,
 *    "backend":"local","pool":{"python":2,"node":2},
 *    "jwt":{"issuer":S,"audience":S,"leeway_s":30,"max_lifetime_s":3600},
 *    "http":{"max_body_bytes":33554432,"threads":4,"max_connections":256,
 *            "per_ip_connections":64,"connection_timeout_s":120},
 *    "functions":{"idle_s":60,"max_functions":256,"max_instances":32},
 *    "audit":{"rotate_bytes":67108864,"keep":10},
 *    "cron":{"max_cronjobs":100,"max_active_runs":8},
 *    "node":{"install_seccomp":false,"seccomp_dir":"/var/lib/kubelet/seccomp/hks"},
 *    "kubernetes":{"kubeconfig":S,"context":S,"in_cluster":false,"namespace":"{project}",
 *                  "registry":S,"repository_prefix":"hks/functions","registry_insecure":false,
 *                  "registry_ca_file":S,"docker_config":S,"base_layout_python":S,
 *                  "base_layout_node":S,"ready_timeout_s":120,"reap_interval_s":10,
 *                  "request_timeout_s":30},
 *    "log_level":"info","_comment":S}
 * max_body_bytes also takes a size ("32M"), *_s a duration ("1h", whole seconds). Duplicate and
 * unknown keys are refused, types and ranges checked; err names the file and the field. Changing
 * state_dir (root) moves keys_dir (policies_dir, and state_dir) along unless they were set apart.
 * On error cfg is left as it was. */
int hksd_config_load_file(hksd_config *cfg, const char *path, hks_error *err);

/* Environment overrides, from envp ("K=V", NULL-terminated): HKSD_LISTEN (host:port),
 * HKSD_STATE_DIR, HKSD_BACKEND, HKSD_POOL_PYTHON, HKSD_POOL_NODE, HKSD_JWT_ISSUER,
 * HKSD_JWT_AUDIENCE, HKSD_JWT_MAX_LIFETIME (seconds or a duration like 1h), HKSD_LOG_LEVEL,
 * HKSD_FUNCTION_IDLE (seconds or a duration), HKSD_MAX_INSTANCES, HKSD_CRON_MAX_ACTIVE_RUNS,
 * HKSD_NODE_INSTALL_SECCOMP (true/false, 1/0), HKSD_NODE_SECCOMP_DIR, HKSD_KUBECONFIG,
 * HKSD_KUBE_NAMESPACE, HKSD_KUBE_REGISTRY, HKSD_KUBE_REAP_INTERVAL. Other
 * variables are ignored. Checked as the file's fields; err names the variable. On error cfg is
 * left as it was. */
int hksd_config_apply_env(hksd_config *cfg, char *const *envp, hks_error *err);

/* kubernetes.namespace: lower-case letters, digits, '-' and "{project}". */
bool hksd_kube_namespace_rule_valid(const char *rule);
/* The namespace of project's functions under rule, or -1 when that is not a DNS-1123 label (at
 * most 63 characters). */
int hksd_kube_namespace(const char *rule, const char *project, char *out, size_t size);

/* "host:port", "[::1]:8080", ":8080" (every IPv4 address: host "0.0.0.0") -> host/port; port
 * 1-65535. */
int hksd_parse_listen(const char *text, char *host, size_t host_size, int *port, hks_error *err);

/* The effective configuration as JSON, in the config file's format (for `hksd --print-config` and
 * logs; it holds no secret). NULL when out of memory or when a path (a root given to
 * hksd_config_defaults) is not UTF-8. */
json_t *hksd_config_to_json(const hksd_config *cfg);

#endif
