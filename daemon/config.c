/* hksd's configuration and the limits policy: both are outside input (an admin's files, a
 * ConfigMap, the environment, API callers' "limits"), so every key is known, every value typed and
 * bounded, and every error names the file (or variable) and the field. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define MIB     (1024ULL * 1024ULL)
#define WEEK_MS (7ULL * 24 * 3600 * 1000)

/* ---- reading a JSON file ---- */

json_t *hksd_json_file_load(const char *path, size_t max_bytes, bool follow_symlinks,
                            hks_error *err)
{
    cleanup_fd int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow_symlinks ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        hks_fail(err, errno, "open %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        hks_fail(err, errno, "stat %s", path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        hks_fail(err, 0, "%s: not a regular file", path);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        hks_fail(err, 0, "%s: larger than %zu bytes", path, max_bytes);
        return NULL;
    }
    /* the file may change under us: read at most one byte more than the cap */
    size_t cap = (size_t)st.st_size + 1;
    cleanup_free char *buf = malloc(cap);
    if (!buf) {
        hks_fail(err, ENOMEM, "read %s", path);
        return NULL;
    }
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) {
                hks_fail(err, 0, "%s: larger than %zu bytes", path, max_bytes);
                return NULL;
            }
            size_t bigger = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            char *grown = realloc(buf, bigger);
            if (!grown) {
                hks_fail(err, ENOMEM, "read %s", path);
                return NULL;
            }
            buf = grown;
            cap = bigger;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            hks_fail(err, errno, "read %s", path);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    json_error_t jerr;
    json_t *json = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json)
        hks_fail(err, 0, "%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
    return json;
}

/* A key of an object is usable as a C string (jansson allows NUL bytes in keys). */
static bool key_is_plain(const char *key, size_t key_len)
{
    return strlen(key) == key_len;
}

/* A member of a policy object: 1 for one to interpret, 0 for a "_comment" (a string), -1 with err
 * naming ctx for a key that is not a C string or a comment that is not a string. */
static int policy_member(const char *ctx, const char *key, size_t key_len, json_t *value,
                         hks_error *err)
{
    if (!key_is_plain(key, key_len))
        return hks_fail(err, 0, "%s: a key holds a NUL byte", ctx);
    if (strcmp(key, "_comment") != 0)
        return 1;
    if (!json_is_string(value))
        return hks_fail(err, 0, "%s: _comment: must be a string", ctx);
    return 0;
}

/* ---- the limits policy ---- */

typedef struct limit_field {
    const char *name;
    size_t offset;  /* of a uint64_t in sbx_limits */
    uint64_t scale; /* sbx_limits units per policy unit */
    uint64_t cap;   /* hard cap in policy units: what the spawner accepts, too */
    bool cores;     /* a number of cores (fractions allowed), stored as millicores */
} limit_field;

static const limit_field limit_fields[] = {
    {"memory_mb", offsetof(sbx_limits, memory_bytes), MIB, 1ULL << 20, false},
    {"pids", offsetof(sbx_limits, pids), 1, 1ULL << 22, false},
    {"cpus", offsetof(sbx_limits, cpu_millis), 1000, 1024, true},
    {"wall_ms", offsetof(sbx_limits, wall_ms), 1, WEEK_MS, false},
    {"cpu_ms", offsetof(sbx_limits, cpu_ms), 1, WEEK_MS, false},
    {"tmpfs_mb", offsetof(sbx_limits, tmpfs_bytes), MIB, 1ULL << 20, false},
    {"fsize_mb", offsetof(sbx_limits, fsize_bytes), MIB, 1ULL << 20, false},
    {"nofile", offsetof(sbx_limits, nofile), 1, 1ULL << 20, false},
    {"output_bytes", offsetof(sbx_limits, stdout_max), 1, 1ULL << 30, false}, /* + stderr_max */
};

#define LIMIT_NAMES                                                                                \
    "memory_mb, pids, cpus, wall_ms, cpu_ms, tmpfs_mb, fsize_mb, nofile, output_bytes"

static const limit_field *limit_field_named(const char *name)
{
    for (size_t i = 0; i < HKS_ARRAY_LEN(limit_fields); i++) {
        if (strcmp(limit_fields[i].name, name) == 0)
            return &limit_fields[i];
    }
    return NULL;
}

static uint64_t limit_get(const sbx_limits *l, const limit_field *f)
{
    uint64_t v;
    memcpy(&v, (const char *)l + f->offset, sizeof(v));
    return v;
}

static void limit_set(sbx_limits *l, const limit_field *f, uint64_t v)
{
    memcpy((char *)l + f->offset, &v, sizeof(v));
    if (f->offset == offsetof(sbx_limits, stdout_max))
        l->stderr_max = v;
}

/* value (sbx_limits units) in the policy's unit, for messages */
static const char *limit_format(const limit_field *f, uint64_t value, char *buf, size_t size)
{
    if (f->cores)
        snprintf(buf, size, "%g", (double)value / 1000.0);
    else
        snprintf(buf, size, "%llu", (unsigned long long)(value / f->scale));
    return buf;
}

/* The JSON value v of field f in sbx_limits units, positive and at most max (sbx_limits units,
 * called bound in messages); ctx.name prefixes every message. */
static int limit_value(const limit_field *f, json_t *v, uint64_t max, const char *bound,
                       const char *ctx, uint64_t *out, hks_error *err)
{
    char shown[64];
    if (f->cores) {
        if (!json_is_number(v))
            return hks_fail(err, 0, "%s.%s: must be a number of cores", ctx, f->name);
        double cores = json_number_value(v);
        if (!(cores > 0))
            return hks_fail(err, 0, "%s.%s: %g is not positive", ctx, f->name, cores);
        if (cores * 1000.0 > (double)max)
            return hks_fail(err, 0, "%s.%s: %g is above %s %s", ctx, f->name, cores, bound,
                            limit_format(f, max, shown, sizeof(shown)));
        uint64_t millis = (uint64_t)(cores * 1000.0 + 0.5); /* rounded; no libm */
        if (millis == 0)
            return hks_fail(err, 0, "%s.%s: %g is below the minimum 0.001", ctx, f->name, cores);
        *out = millis;
        return 0;
    }
    if (!json_is_integer(v))
        return hks_fail(err, 0, "%s.%s: must be a positive integer", ctx, f->name);
    long long n = json_integer_value(v);
    if (n <= 0)
        return hks_fail(err, 0, "%s.%s: %lld is not positive", ctx, f->name, n);
    if ((unsigned long long)n > max / f->scale)
        return hks_fail(err, 0, "%s.%s: %lld is above %s %s", ctx, f->name, n, bound,
                        limit_format(f, max, shown, sizeof(shown)));
    *out = (uint64_t)n * f->scale;
    return 0;
}

/* A section of limits.json in sbx_limits units: every field present, nothing else. */
static int limits_section(const char *path, json_t *section, const char *name, sbx_limits *out,
                          hks_error *err)
{
    char ctx[PATH_MAX + 64];
    snprintf(ctx, sizeof(ctx), "%s: %s", path, name);
    if (!json_is_object(section))
        return hks_fail(err, 0, "%s: must be an object", ctx);
    bool seen[HKS_ARRAY_LEN(limit_fields)] = {false};
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(section, key, key_len, v)
    {
        int member = policy_member(ctx, key, key_len, v, err);
        if (member <= 0) {
            if (member < 0)
                return -1;
            continue;
        }
        const limit_field *f = limit_field_named(key);
        if (!f)
            return hks_fail(err, 0, "%s.%.64s: unknown key (known: " LIMIT_NAMES ")", ctx, key);
        uint64_t value = 0;
        if (limit_value(f, v, f->cap * f->scale, "the hard cap", ctx, &value, err) < 0)
            return -1;
        limit_set(out, f, value);
        seen[f - limit_fields] = true;
    }
    for (size_t i = 0; i < HKS_ARRAY_LEN(limit_fields); i++) {
        if (!seen[i])
            return hks_fail(err, 0, "%s.%s: missing", ctx, limit_fields[i].name);
    }
    return 0;
}

typedef struct count_field {
    const char *name;
    uint64_t cap;
    uint64_t value;
} count_field;

/* A section of positive integers: every field present, nothing else. */
static int counts_section(const char *path, json_t *section, const char *name, count_field *fields,
                          size_t n_fields, hks_error *err)
{
    char ctx[PATH_MAX + 64];
    snprintf(ctx, sizeof(ctx), "%s: %s", path, name);
    if (!json_is_object(section))
        return hks_fail(err, 0, "%s: must be an object", ctx);
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(section, key, key_len, v)
    {
        int member = policy_member(ctx, key, key_len, v, err);
        if (member <= 0) {
            if (member < 0)
                return -1;
            continue;
        }
        count_field *f = NULL;
        for (size_t i = 0; i < n_fields && !f; i++) {
            if (strcmp(fields[i].name, key) == 0)
                f = &fields[i];
        }
        if (!f)
            return hks_fail(err, 0, "%s.%.64s: unknown key", ctx, key);
        if (!json_is_integer(v))
            return hks_fail(err, 0, "%s.%s: must be a positive integer", ctx, f->name);
        long long n = json_integer_value(v);
        if (n <= 0)
            return hks_fail(err, 0, "%s.%s: %lld is not positive", ctx, f->name, n);
        if ((unsigned long long)n > f->cap)
            return hks_fail(err, 0, "%s.%s: %lld is above the hard cap %llu", ctx, f->name, n,
                            (unsigned long long)f->cap);
        f->value = (uint64_t)n;
    }
    for (size_t i = 0; i < n_fields; i++) {
        if (fields[i].value == 0)
            return hks_fail(err, 0, "%s.%s: missing", ctx, fields[i].name);
    }
    return 0;
}

int hksd_policy_limits_load(const char *path, hksd_policy_limits *out, hks_error *err)
{
    json_t *root = hksd_json_file_load(path, HKSD_CONFIG_FILE_MAX, true, err);
    if (!root)
        return -1;
    hksd_policy_limits p;
    memset(&p, 0, sizeof(p));
    sbx_limits_default(&p.defaults);
    sbx_limits_default(&p.maxima);
    count_field ttl[] = {{"default", 30ULL * 24 * 3600, 0}, {"maximum", 30ULL * 24 * 3600, 0}};
    count_field exec[] = {
        {"max_files", 65536, 0},
        {"max_file_bytes", 1ULL << 30, 0},
        {"max_total_bytes", 1ULL << 30, 0},
        {"max_stdin_bytes", 1ULL << 30, 0},
    };
    int rc = -1;
    if (!json_is_object(root)) {
        hks_fail(err, 0, "%s: must be a JSON object", path);
        goto out;
    }
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(root, key, key_len, v)
    {
        if (policy_member(path, key, key_len, v, err) < 0)
            goto out;
        if (strcmp(key, "_comment") != 0 && strcmp(key, "defaults") != 0 &&
            strcmp(key, "maxima") != 0 && strcmp(key, "ttl_seconds") != 0 &&
            strcmp(key, "execute") != 0) {
            hks_fail(err, 0,
                     "%s: %.64s: unknown key (known: defaults, maxima, ttl_seconds, execute)", path,
                     key);
            goto out;
        }
    }
    static const char *const sections[] = {"defaults", "maxima", "ttl_seconds", "execute"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(sections); i++) {
        if (!json_object_get(root, sections[i])) {
            hks_fail(err, 0, "%s: %s: missing", path, sections[i]);
            goto out;
        }
    }
    if (limits_section(path, json_object_get(root, "defaults"), "defaults", &p.defaults, err) < 0 ||
        limits_section(path, json_object_get(root, "maxima"), "maxima", &p.maxima, err) < 0 ||
        counts_section(path, json_object_get(root, "ttl_seconds"), "ttl_seconds", ttl,
                       HKS_ARRAY_LEN(ttl), err) < 0 ||
        counts_section(path, json_object_get(root, "execute"), "execute", exec, HKS_ARRAY_LEN(exec),
                       err) < 0)
        goto out;
    for (size_t i = 0; i < HKS_ARRAY_LEN(limit_fields); i++) {
        const limit_field *f = &limit_fields[i];
        uint64_t d = limit_get(&p.defaults, f), m = limit_get(&p.maxima, f);
        if (d > m) {
            char ds[64], ms[64];
            hks_fail(err, 0, "%s: defaults.%s: %s is above maxima.%s %s", path, f->name,
                     limit_format(f, d, ds, sizeof(ds)), f->name,
                     limit_format(f, m, ms, sizeof(ms)));
            goto out;
        }
    }
    if (ttl[0].value > ttl[1].value) {
        hks_fail(err, 0, "%s: ttl_seconds.default: %llu is above ttl_seconds.maximum %llu", path,
                 (unsigned long long)ttl[0].value, (unsigned long long)ttl[1].value);
        goto out;
    }
    if (exec[1].value > exec[2].value) {
        hks_fail(err, 0, "%s: execute.max_file_bytes: %llu is above execute.max_total_bytes %llu",
                 path, (unsigned long long)exec[1].value, (unsigned long long)exec[2].value);
        goto out;
    }
    p.ttl_default_s = ttl[0].value;
    p.ttl_max_s = ttl[1].value;
    p.max_files = (size_t)exec[0].value;
    p.max_file_bytes = (size_t)exec[1].value;
    p.max_total_bytes = (size_t)exec[2].value;
    p.max_stdin_bytes = (size_t)exec[3].value;
    *out = p;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int hksd_policy_limits_resolve(const hksd_policy_limits *policy, json_t *request_limits,
                               sbx_limits *out, hks_error *err)
{
    sbx_limits l = policy->defaults;
    if (request_limits && !json_is_null(request_limits)) {
        if (!json_is_object(request_limits))
            return hks_fail(err, 0, "limits: must be an object");
        const char *key;
        size_t key_len;
        json_t *v;
        json_object_keylen_foreach(request_limits, key, key_len, v)
        {
            if (!key_is_plain(key, key_len))
                return hks_fail(err, 0, "limits: a key holds a NUL byte");
            const limit_field *f = limit_field_named(key);
            if (!f)
                return hks_fail(err, 0, "limits.%.64s: unknown limit (known: " LIMIT_NAMES ")",
                                key);
            uint64_t value = 0;
            if (limit_value(f, v, limit_get(&policy->maxima, f), "the maximum", "limits", &value,
                            err) < 0)
                return -1;
            limit_set(&l, f, value);
        }
    }
    *out = l;
    return 0;
}

/* ---- the daemon's settings ---- */

typedef enum opt_type {
    OPT_LISTEN,  /* "host:port" into listen_host and listen_port */
    OPT_PATH,    /* a non-empty path */
    OPT_TEXT,    /* a non-empty string without control characters */
    OPT_CHOICE,  /* one of choices */
    OPT_COUNT,   /* an integer */
    OPT_SIZE,    /* bytes: an integer or a size ("32M") */
    OPT_SECONDS, /* seconds: an integer or a duration ("1h"), whole seconds */
    OPT_BOOL,    /* true or false (JSON); "true"/"false"/"1"/"0" (environment) */
} opt_type;

typedef enum opt_store {
    STORE_CHARS,
    STORE_UNSIGNED,
    STORE_LONG,
    STORE_SIZE,
    STORE_BOOL,
} opt_store;

typedef struct config_opt {
    const char *section; /* NULL: top level */
    const char *key;
    const char *env; /* the variable that overrides it, or NULL */
    opt_type type;
    opt_store store;
    size_t offset, size; /* of the field in hksd_config */
    unsigned long long min, max;
    const char *const *choices; /* NULL-terminated */
} config_opt;

static const char *const backends[] = {"local", "kubernetes", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define FIELD(f) offsetof(hksd_config, f), sizeof(((hksd_config *)NULL)->f)

static const config_opt config_opts[] = {
    {NULL, "listen", "HKSD_LISTEN", OPT_LISTEN, STORE_CHARS, FIELD(listen_host), 0, 0, NULL},
    {NULL, "state_dir", "HKSD_STATE_DIR", OPT_PATH, STORE_CHARS, FIELD(state_dir), 0, 0, NULL},
    {NULL, "root", NULL, OPT_PATH, STORE_CHARS, FIELD(root), 0, 0, NULL},
    {NULL, "policies_dir", NULL, OPT_PATH, STORE_CHARS, FIELD(policies_dir), 0, 0, NULL},
    {NULL, "keys_dir", NULL, OPT_PATH, STORE_CHARS, FIELD(keys_dir), 0, 0, NULL},
    {NULL, "backend", "HKSD_BACKEND", OPT_CHOICE, STORE_CHARS, FIELD(backend), 0, 0, backends},
    {"pool", "python", "HKSD_POOL_PYTHON", OPT_COUNT, STORE_UNSIGNED, FIELD(pool_python), 0, 64,
     NULL},
    {"pool", "node", "HKSD_POOL_NODE", OPT_COUNT, STORE_UNSIGNED, FIELD(pool_node), 0, 64, NULL},
    {"jwt", "issuer", "HKSD_JWT_ISSUER", OPT_TEXT, STORE_CHARS, FIELD(jwt_issuer), 0, 0, NULL},
    {"jwt", "audience", "HKSD_JWT_AUDIENCE", OPT_TEXT, STORE_CHARS, FIELD(jwt_audience), 0, 0,
     NULL},
    {"jwt", "leeway_s", NULL, OPT_SECONDS, STORE_LONG, FIELD(jwt_leeway_s), 0, 300, NULL},
    {"jwt", "max_lifetime_s", "HKSD_JWT_MAX_LIFETIME", OPT_SECONDS, STORE_LONG,
     FIELD(jwt_max_lifetime_s), 1, 86400, NULL},
    {"http", "max_body_bytes", NULL, OPT_SIZE, STORE_SIZE, FIELD(max_body_bytes), 1024, 1ULL << 30,
     NULL},
    {"http", "threads", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(threads), 1, 256, NULL},
    {"http", "max_connections", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(max_connections), 1, 65536,
     NULL},
    {"http", "per_ip_connections", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(per_ip_connections), 1,
     65536, NULL},
    {"http", "connection_timeout_s", NULL, OPT_SECONDS, STORE_UNSIGNED, FIELD(connection_timeout_s),
     1, 3600, NULL},
    {"functions", "idle_s", "HKSD_FUNCTION_IDLE", OPT_SECONDS, STORE_UNSIGNED,
     FIELD(function_idle_s), 1, 86400, NULL},
    {"functions", "max_functions", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(max_functions), 1, 100000,
     NULL},
    {"functions", "max_instances", "HKSD_MAX_INSTANCES", OPT_COUNT, STORE_UNSIGNED,
     FIELD(max_instances), 1, 4096, NULL},
    {"audit", "rotate_bytes", NULL, OPT_SIZE, STORE_SIZE, FIELD(audit_rotate_bytes), 0, 1ULL << 40,
     NULL},
    {"audit", "keep", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(audit_keep), 1, 1000, NULL},
    {"cron", "max_cronjobs", NULL, OPT_COUNT, STORE_UNSIGNED, FIELD(cron_max_cronjobs), 1, 100000,
     NULL},
    {"cron", "max_active_runs", "HKSD_CRON_MAX_ACTIVE_RUNS", OPT_COUNT, STORE_UNSIGNED,
     FIELD(cron_max_active_runs), 1, 1024, NULL},
    {"node", "install_seccomp", "HKSD_NODE_INSTALL_SECCOMP", OPT_BOOL, STORE_BOOL,
     FIELD(node_install_seccomp), 0, 0, NULL},
    {"node", "seccomp_dir", "HKSD_NODE_SECCOMP_DIR", OPT_PATH, STORE_CHARS, FIELD(node_seccomp_dir),
     0, 0, NULL},
    {"kubernetes", "kubeconfig", "HKSD_KUBECONFIG", OPT_PATH, STORE_CHARS, FIELD(kube_kubeconfig),
     0, 0, NULL},
    {"kubernetes", "context", NULL, OPT_TEXT, STORE_CHARS, FIELD(kube_context), 0, 0, NULL},
    {"kubernetes", "in_cluster", NULL, OPT_BOOL, STORE_BOOL, FIELD(kube_in_cluster), 0, 0, NULL},
    {"kubernetes", "namespace", "HKSD_KUBE_NAMESPACE", OPT_TEXT, STORE_CHARS, FIELD(kube_namespace),
     0, 0, NULL},
    {"kubernetes", "registry", "HKSD_KUBE_REGISTRY", OPT_TEXT, STORE_CHARS, FIELD(kube_registry), 0,
     0, NULL},
    {"kubernetes", "repository_prefix", NULL, OPT_TEXT, STORE_CHARS, FIELD(kube_repository), 0, 0,
     NULL},
    {"kubernetes", "registry_insecure", NULL, OPT_BOOL, STORE_BOOL, FIELD(kube_registry_insecure),
     0, 0, NULL},
    {"kubernetes", "registry_ca_file", NULL, OPT_PATH, STORE_CHARS, FIELD(kube_registry_ca), 0, 0,
     NULL},
    {"kubernetes", "docker_config", NULL, OPT_PATH, STORE_CHARS, FIELD(kube_docker_config), 0, 0,
     NULL},
    {"kubernetes", "base_layout_python", NULL, OPT_PATH, STORE_CHARS, FIELD(kube_base_python), 0, 0,
     NULL},
    {"kubernetes", "base_layout_node", NULL, OPT_PATH, STORE_CHARS, FIELD(kube_base_node), 0, 0,
     NULL},
    {"kubernetes", "ready_timeout_s", NULL, OPT_SECONDS, STORE_UNSIGNED,
     FIELD(kube_ready_timeout_s), 1, 3600, NULL},
    {"kubernetes", "reap_interval_s", "HKSD_KUBE_REAP_INTERVAL", OPT_SECONDS, STORE_UNSIGNED,
     FIELD(kube_reap_interval_s), 1, 3600, NULL},
    {"kubernetes", "request_timeout_s", NULL, OPT_SECONDS, STORE_UNSIGNED,
     FIELD(kube_request_timeout_s), 1, 600, NULL},
    {"kubernetes", "kaniko_namespace", "HKSD_KUBE_KANIKO_NAMESPACE", OPT_TEXT, STORE_CHARS,
     FIELD(kube_kaniko_namespace), 0, 0, NULL},
    {"kubernetes", "kaniko_executor", "HKSD_KUBE_KANIKO_EXECUTOR", OPT_TEXT, STORE_CHARS,
     FIELD(kube_kaniko_executor), 0, 0, NULL},
    {"kubernetes", "kaniko_registry_secret", "HKSD_KUBE_KANIKO_REGISTRY_SECRET", OPT_TEXT,
     STORE_CHARS, FIELD(kube_kaniko_secret), 0, 0, NULL},
    {"kubernetes", "kaniko_deadline_s", NULL, OPT_SECONDS, STORE_UNSIGNED,
     FIELD(kube_kaniko_deadline_s), 1, 3600, NULL},
    {NULL, "log_level", "HKSD_LOG_LEVEL", OPT_CHOICE, STORE_CHARS, FIELD(log_level), 0, 0,
     log_levels},
};

static bool is_section(const char *key)
{
    return strcmp(key, "pool") == 0 || strcmp(key, "jwt") == 0 || strcmp(key, "http") == 0 ||
           strcmp(key, "functions") == 0 || strcmp(key, "audit") == 0 || strcmp(key, "cron") == 0 ||
           strcmp(key, "node") == 0 || strcmp(key, "kubernetes") == 0;
}

static const config_opt *config_opt_named(const char *section, const char *key)
{
    for (size_t i = 0; i < HKS_ARRAY_LEN(config_opts); i++) {
        const config_opt *o = &config_opts[i];
        if (strcmp(o->key, key) == 0 &&
            (section ? o->section && strcmp(o->section, section) == 0 : !o->section))
            return o;
    }
    return NULL;
}

/* dir/name into out (size PATH_MAX); -1 when it does not fit */
static int path_join(char *out, const char *dir, const char *name)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    const char *sep = len == 1 && dir[0] == '/' ? "" : "/";
    int n = snprintf(out, PATH_MAX, "%.*s%s%s", (int)len, dir, sep, name);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* Where state goes by default for root: not under /usr, which belongs to the package manager. */
static int default_state_dir(char *out, const char *root)
{
    if (strcmp(root, "/usr") == 0 || strncmp(root, "/usr/", 5) == 0) {
        snprintf(out, PATH_MAX, "%s", "/var/lib/hksd");
        return 0;
    }
    return path_join(out, root, "var/hksd");
}

void hksd_config_defaults(hksd_config *cfg, const char *root)
{
    memset(cfg, 0, sizeof(*cfg));
    if (!root || !*root)
        root = ".";
    snprintf(cfg->root, sizeof(cfg->root), "%s", root);
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "%s", "127.0.0.1");
    cfg->listen_port = 8080;
    /* a root too long for its subdirectories leaves them empty: loading policies then fails */
    if (default_state_dir(cfg->state_dir, cfg->root) < 0 ||
        path_join(cfg->keys_dir, cfg->state_dir, "keys") < 0)
        cfg->state_dir[0] = cfg->keys_dir[0] = '\0';
    if (path_join(cfg->policies_dir, cfg->root, "policies") < 0)
        cfg->policies_dir[0] = '\0';
    snprintf(cfg->backend, sizeof(cfg->backend), "%s", "local");
    cfg->pool_python = 2;
    cfg->pool_node = 2;
    snprintf(cfg->jwt_issuer, sizeof(cfg->jwt_issuer), "%s", "hksd");
    snprintf(cfg->jwt_audience, sizeof(cfg->jwt_audience), "%s", "hks-internal");
    cfg->jwt_leeway_s = 30;
    cfg->jwt_max_lifetime_s = 3600;
    cfg->max_body_bytes = 32 * MIB;
    /* libmicrohttpd's threads: one per core, up to 4 (more only add context switches: slow
     * requests are suspended, not waited on) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores < 1 ? 1 : cores > 4 ? 4 : (unsigned)cores;
    cfg->max_connections = 256;
    cfg->per_ip_connections = 64;
    cfg->connection_timeout_s = 120;
    cfg->function_idle_s = 60;
    cfg->max_functions = 256;
    cfg->max_instances = 32;
    cfg->audit_rotate_bytes = 64 * MIB;
    cfg->audit_keep = 10;
    cfg->cron_max_cronjobs = 100;
    cfg->cron_max_active_runs = 8;
    cfg->node_install_seccomp = false;
    snprintf(cfg->node_seccomp_dir, sizeof(cfg->node_seccomp_dir), "%s",
             "/var/lib/kubelet/seccomp/hks");
    snprintf(cfg->kube_namespace, sizeof(cfg->kube_namespace), "%s", "{project}");
    snprintf(cfg->kube_repository, sizeof(cfg->kube_repository), "%s", "hks/functions");
    cfg->kube_ready_timeout_s = 120;
    cfg->kube_reap_interval_s = 10;
    cfg->kube_request_timeout_s = 30;
    snprintf(cfg->kube_kaniko_namespace, sizeof(cfg->kube_kaniko_namespace), "%s", "hks-builds");
    cfg->kube_kaniko_deadline_s = 600;
    snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", "info");
}

static bool valid_host_name(const char *host, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return false;
    }
    return true;
}

int hksd_parse_listen(const char *text, char *host, size_t host_size, int *port, hks_error *err)
{
    if (!text || !*text)
        return hks_fail(err, 0, "listen address is empty (expected host:port)");
    const char *name, *colon;
    size_t name_len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return hks_fail(err, 0, "listen address '%.200s': no ']' after the IPv6 address", text);
        name = text + 1;
        name_len = (size_t)(close - name);
        char addr[INET6_ADDRSTRLEN];
        struct in6_addr in6;
        if (name_len == 0 || name_len >= sizeof(addr))
            return hks_fail(err, 0, "listen address '%.200s': not an IPv6 address", text);
        memcpy(addr, name, name_len);
        addr[name_len] = '\0';
        if (inet_pton(AF_INET6, addr, &in6) != 1)
            return hks_fail(err, 0, "listen address '%.200s': not an IPv6 address", text);
        if (close[1] != ':')
            return hks_fail(err, 0, "listen address '%.200s': no :port after ']'", text);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return hks_fail(err, 0, "listen address '%.200s': no :port (expected host:port)", text);
        name = text;
        name_len = (size_t)(colon - text);
        if (memchr(name, ':', name_len))
            return hks_fail(err, 0,
                            "listen address '%.200s': an IPv6 address goes in brackets "
                            "([::1]:8080)",
                            text);
        if (!valid_host_name(name, name_len))
            return hks_fail(err, 0, "listen address '%.200s': not a host name or address", text);
    }
    unsigned long long p;
    if (hks_parse_uint(colon + 1, 1, 65535, &p) < 0)
        return hks_fail(err, 0, "listen address '%.200s': the port must be from 1 to 65535", text);
    if (name_len == 0) {
        name = "0.0.0.0";
        name_len = strlen(name);
    }
    if (name_len >= host_size)
        return hks_fail(err, 0, "listen address '%.200s': host longer than %zu bytes", text,
                        host_size - 1);
    memcpy(host, name, name_len);
    host[name_len] = '\0';
    *port = (int)p;
    return 0;
}

/* What an option takes, for messages. */
static const char *opt_expected(const config_opt *o, char *buf, size_t size)
{
    switch (o->type) {
    case OPT_LISTEN:
        return "a string host:port";
    case OPT_PATH:
        snprintf(buf, size, "a non-empty path shorter than %zu bytes", o->size);
        return buf;
    case OPT_TEXT:
        snprintf(buf, size, "a non-empty string of at most %zu printable characters", o->size - 1);
        return buf;
    case OPT_CHOICE: {
        size_t len = (size_t)snprintf(buf, size, "one of");
        for (size_t i = 0; o->choices[i] && len < size; i++)
            len += (size_t)snprintf(buf + len, size - len, "%s %s", i ? "," : "", o->choices[i]);
        return buf;
    }
    case OPT_COUNT:
        snprintf(buf, size, "an integer from %llu to %llu", o->min, o->max);
        return buf;
    case OPT_SIZE:
        snprintf(buf, size, "a size from %llu to %llu bytes (an integer or like \"32M\")", o->min,
                 o->max);
        return buf;
    case OPT_SECONDS:
        snprintf(buf, size, "whole seconds from %llu to %llu (an integer or like \"1h\")", o->min,
                 o->max);
        return buf;
    case OPT_BOOL:
        return "true or false";
    }
    return "?";
}

static int opt_bad(const config_opt *o, const char *ctx, hks_error *err)
{
    char buf[256];
    return hks_fail(err, 0, "%s: must be %s", ctx, opt_expected(o, buf, sizeof(buf)));
}

static void *opt_field(hksd_config *cfg, const config_opt *o)
{
    return (char *)cfg + o->offset;
}

static int set_number(hksd_config *cfg, const config_opt *o, unsigned long long n, const char *ctx,
                      hks_error *err)
{
    if (n < o->min || n > o->max)
        return opt_bad(o, ctx, err);
    switch (o->store) {
    case STORE_UNSIGNED: {
        unsigned v = (unsigned)n;
        memcpy(opt_field(cfg, o), &v, sizeof(v));
        return 0;
    }
    case STORE_LONG: {
        long v = (long)n;
        memcpy(opt_field(cfg, o), &v, sizeof(v));
        return 0;
    }
    case STORE_SIZE: {
        size_t v = (size_t)n;
        memcpy(opt_field(cfg, o), &v, sizeof(v));
        return 0;
    }
    case STORE_CHARS:
    case STORE_BOOL:
        break;
    }
    return opt_bad(o, ctx, err);
}

static void set_bool(hksd_config *cfg, const config_opt *o, bool value)
{
    memcpy(opt_field(cfg, o), &value, sizeof(value));
}

/* Keep derived directories with what they derive from: keys_dir in state_dir, policies_dir (and a
 * default state_dir) in root, unless they were set apart. */
static int set_path(hksd_config *cfg, const config_opt *o, const char *text, const char *ctx,
                    hks_error *err)
{
    char old_derived[PATH_MAX], new_derived[PATH_MAX];
    if (o->offset == offsetof(hksd_config, state_dir)) {
        bool follow = path_join(old_derived, cfg->state_dir, "keys") == 0 &&
                      strcmp(old_derived, cfg->keys_dir) == 0;
        if (follow && path_join(new_derived, text, "keys") < 0)
            return hks_fail(err, 0, "%s: too long for keys_dir inside it", ctx);
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", text);
        if (follow)
            memcpy(cfg->keys_dir, new_derived, sizeof(cfg->keys_dir));
        return 0;
    }
    if (o->offset == offsetof(hksd_config, root)) {
        bool follow_policies = path_join(old_derived, cfg->root, "policies") == 0 &&
                               strcmp(old_derived, cfg->policies_dir) == 0;
        bool follow_state = default_state_dir(old_derived, cfg->root) == 0 &&
                            strcmp(old_derived, cfg->state_dir) == 0;
        if (follow_policies) {
            if (path_join(new_derived, text, "policies") < 0)
                return hks_fail(err, 0, "%s: too long for policies_dir inside it", ctx);
            memcpy(cfg->policies_dir, new_derived, sizeof(cfg->policies_dir));
        }
        if (follow_state) {
            if (default_state_dir(new_derived, text) < 0)
                return hks_fail(err, 0, "%s: too long for state_dir inside it", ctx);
            const config_opt *state = config_opt_named(NULL, "state_dir");
            if (set_path(cfg, state, new_derived, ctx, err) < 0)
                return -1;
        }
        snprintf(cfg->root, sizeof(cfg->root), "%s", text);
        return 0;
    }
    snprintf((char *)opt_field(cfg, o), o->size, "%s", text);
    return 0;
}

/* Set o from text (a JSON string's value, or an environment variable). */
static int set_text(hksd_config *cfg, const config_opt *o, const char *text, const char *ctx,
                    hks_error *err)
{
    size_t len = strlen(text);
    unsigned long long n;
    switch (o->type) {
    case OPT_LISTEN:
        if (hksd_parse_listen(text, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port,
                              err) < 0)
            return hks_wrap(err, "%s", ctx);
        return 0;
    case OPT_PATH:
        if (len == 0 || len >= o->size)
            return opt_bad(o, ctx, err);
        return set_path(cfg, o, text, ctx, err);
    case OPT_TEXT:
        if (len == 0 || len >= o->size)
            return opt_bad(o, ctx, err);
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
                return opt_bad(o, ctx, err);
        }
        snprintf((char *)opt_field(cfg, o), o->size, "%s", text);
        return 0;
    case OPT_CHOICE:
        for (size_t i = 0; o->choices[i]; i++) {
            if (strcmp(o->choices[i], text) == 0) {
                snprintf((char *)opt_field(cfg, o), o->size, "%s", text);
                return 0;
            }
        }
        return opt_bad(o, ctx, err);
    case OPT_COUNT:
        if (hks_parse_uint(text, 0, ULLONG_MAX, &n) < 0)
            return opt_bad(o, ctx, err);
        return set_number(cfg, o, n, ctx, err);
    case OPT_SIZE:
        if (hks_parse_size(text, &n) < 0)
            return opt_bad(o, ctx, err);
        return set_number(cfg, o, n, ctx, err);
    case OPT_SECONDS:
        if (hks_parse_duration_ms(text, &n) < 0 || n % 1000 != 0)
            return opt_bad(o, ctx, err);
        return set_number(cfg, o, n / 1000, ctx, err);
    case OPT_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
            set_bool(cfg, o, true);
            return 0;
        }
        if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) {
            set_bool(cfg, o, false);
            return 0;
        }
        return opt_bad(o, ctx, err);
    }
    return opt_bad(o, ctx, err);
}

/* Set o from a JSON value: numbers as integers, the rest (and sizes, durations) as strings. */
static int set_json(hksd_config *cfg, const config_opt *o, json_t *v, const char *ctx,
                    hks_error *err)
{
    if (o->type == OPT_BOOL) {
        if (!json_is_boolean(v))
            return opt_bad(o, ctx, err);
        set_bool(cfg, o, json_is_true(v));
        return 0;
    }
    bool numeric = o->type == OPT_COUNT || o->type == OPT_SIZE || o->type == OPT_SECONDS;
    if (json_is_integer(v) && numeric) {
        long long n = json_integer_value(v);
        if (n < 0)
            return opt_bad(o, ctx, err);
        return set_number(cfg, o, (unsigned long long)n, ctx, err);
    }
    if (json_is_string(v) && o->type != OPT_COUNT) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return hks_fail(err, 0, "%s: holds a NUL byte", ctx);
        return set_text(cfg, o, json_string_value(v), ctx, err);
    }
    return opt_bad(o, ctx, err);
}

/* A DNS label (RFC 1123), as namespaces and Secrets are named. */
static bool dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* name[:tag]@sha256:<64 lower-case hex>: the executor is pinned, never a moving tag. */
static bool image_by_digest(const char *image)
{
    const char *at = strstr(image, "@sha256:");
    if (!at || at == image || strchr(image, ' ') || strlen(at + 8) != 64)
        return false;
    for (const char *h = at + 8; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
            return false;
    return true;
}

/* Settings that depend on each other; label names where they came from. */
static int config_check(const hksd_config *cfg, const char *label, hks_error *err)
{
    if (cfg->per_ip_connections > cfg->max_connections)
        return hks_fail(err, 0, "%s: http.per_ip_connections: %u is above http.max_connections %u",
                        label, cfg->per_ip_connections, cfg->max_connections);
    if (!hksd_kube_namespace_rule_valid(cfg->kube_namespace))
        return hks_fail(err, 0,
                        "%s: kubernetes.namespace: '%s' must be lower-case letters, digits, '-' "
                        "and {project}, not starting with '-'",
                        label, cfg->kube_namespace);
    if (!dns_label(cfg->kube_kaniko_namespace))
        return hks_fail(err, 0, "%s: kubernetes.kaniko_namespace: '%s' is not a namespace name",
                        label, cfg->kube_kaniko_namespace);
    if (cfg->kube_kaniko_secret[0] && !dns_label(cfg->kube_kaniko_secret))
        return hks_fail(err, 0,
                        "%s: kubernetes.kaniko_registry_secret: '%s' is not a Secret's name", label,
                        cfg->kube_kaniko_secret);
    if (cfg->kube_kaniko_executor[0] && !image_by_digest(cfg->kube_kaniko_executor))
        return hks_fail(err, 0,
                        "%s: kubernetes.kaniko_executor: '%s' is not an image by digest "
                        "(name[:tag]@sha256:<64 hex>)",
                        label, cfg->kube_kaniko_executor);
    return 0;
}

bool hksd_kube_namespace_rule_valid(const char *rule)
{
    static const char token[] = "{project}";
    if (!rule[0] || rule[0] == '-')
        return false;
    for (const char *c = rule; *c;) {
        if (strncmp(c, token, sizeof(token) - 1) == 0) {
            c += sizeof(token) - 1;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-') {
            c++;
        } else {
            return false;
        }
    }
    return true;
}

int hksd_kube_namespace(const char *rule, const char *project, char *out, size_t size)
{
    static const char token[] = "{project}";
    size_t n = 0;
    for (const char *c = rule; *c;) {
        const char *piece = c;
        size_t len = 1;
        if (strncmp(c, token, sizeof(token) - 1) == 0) {
            piece = project;
            len = strlen(project);
            c += sizeof(token) - 1;
        } else {
            c++;
        }
        if (n + len >= size)
            return -1;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    /* a DNS-1123 label: what a namespace name must be */
    if (n == 0 || n > 63 || out[0] == '-' || out[n - 1] == '-')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= '0' && out[i] <= '9') ||
              out[i] == '-'))
            return -1;
    }
    return 0;
}

static int config_object(hksd_config *cfg, json_t *object, const char *path, const char *section,
                         hks_error *err)
{
    char ctx[PATH_MAX + 128];
    if (!json_is_object(object)) {
        if (section)
            return hks_fail(err, 0, "%s: %s: must be an object", path, section);
        return hks_fail(err, 0, "%s: must be a JSON object", path);
    }
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(object, key, key_len, v)
    {
        snprintf(ctx, sizeof(ctx), "%s: %s%s%.64s", path, section ? section : "",
                 section ? "." : "", key);
        if (!key_is_plain(key, key_len))
            return hks_fail(err, 0, "%s: a key holds a NUL byte", ctx);
        if (strcmp(key, "_comment") == 0) {
            if (!json_is_string(v))
                return hks_fail(err, 0, "%s: must be a string", ctx);
            continue;
        }
        if (!section && is_section(key)) {
            if (config_object(cfg, v, path, key, err) < 0)
                return -1;
            continue;
        }
        const config_opt *o = config_opt_named(section, key);
        if (!o)
            return hks_fail(err, 0, "%s: unknown key", ctx);
        if (set_json(cfg, o, v, ctx, err) < 0)
            return -1;
    }
    return 0;
}

int hksd_config_load_file(hksd_config *cfg, const char *path, hks_error *err)
{
    json_t *root = hksd_json_file_load(path, HKSD_CONFIG_FILE_MAX, true, err);
    if (!root)
        return -1;
    hksd_config next = *cfg;
    int rc = config_object(&next, root, path, NULL, err);
    json_decref(root);
    if (rc < 0 || config_check(&next, path, err) < 0)
        return -1;
    *cfg = next;
    return 0;
}

int hksd_config_apply_env(hksd_config *cfg, char *const *envp, hks_error *err)
{
    if (!envp)
        return 0;
    hksd_config next = *cfg;
    for (size_t i = 0; i < HKS_ARRAY_LEN(config_opts); i++) {
        const config_opt *o = &config_opts[i];
        if (!o->env)
            continue;
        size_t name_len = strlen(o->env);
        /* the first definition counts, as for getenv */
        for (char *const *e = envp; *e; e++) {
            if (strncmp(*e, o->env, name_len) != 0 || (*e)[name_len] != '=')
                continue;
            const char *text = *e + name_len + 1;
            /* what the file could not hold either: the effective config prints as JSON */
            json_t *utf8 = json_string(text);
            if (!utf8)
                return hks_fail(err, 0, "%s: must be UTF-8", o->env);
            json_decref(utf8);
            if (set_text(&next, o, text, o->env, err) < 0)
                return -1;
            break;
        }
    }
    if (config_check(&next, "environment", err) < 0)
        return -1;
    *cfg = next;
    return 0;
}

json_t *hksd_config_to_json(const hksd_config *cfg)
{
    char listen[sizeof(cfg->listen_host) + 16];
    if (strchr(cfg->listen_host, ':'))
        snprintf(listen, sizeof(listen), "[%s]:%d", cfg->listen_host, cfg->listen_port);
    else
        snprintf(listen, sizeof(listen), "%s:%d", cfg->listen_host, cfg->listen_port);
    /* "o" steals each section, also when packing fails */
    json_t *pool = json_pack("{s:I, s:I}", "python", (json_int_t)cfg->pool_python, "node",
                             (json_int_t)cfg->pool_node);
    json_t *jwt = json_pack("{s:s, s:s, s:I, s:I}", "issuer", cfg->jwt_issuer, "audience",
                            cfg->jwt_audience, "leeway_s", (json_int_t)cfg->jwt_leeway_s,
                            "max_lifetime_s", (json_int_t)cfg->jwt_max_lifetime_s);
    json_t *http = json_pack("{s:I, s:I, s:I, s:I, s:I}", "max_body_bytes",
                             (json_int_t)cfg->max_body_bytes, "threads", (json_int_t)cfg->threads,
                             "max_connections", (json_int_t)cfg->max_connections,
                             "per_ip_connections", (json_int_t)cfg->per_ip_connections,
                             "connection_timeout_s", (json_int_t)cfg->connection_timeout_s);
    json_t *functions =
        json_pack("{s:I, s:I, s:I}", "idle_s", (json_int_t)cfg->function_idle_s, "max_functions",
                  (json_int_t)cfg->max_functions, "max_instances", (json_int_t)cfg->max_instances);
    json_t *audit = json_pack("{s:I, s:I}", "rotate_bytes", (json_int_t)cfg->audit_rotate_bytes,
                              "keep", (json_int_t)cfg->audit_keep);
    json_t *cron = json_pack("{s:I, s:I}", "max_cronjobs", (json_int_t)cfg->cron_max_cronjobs,
                             "max_active_runs", (json_int_t)cfg->cron_max_active_runs);
    json_t *node = json_pack("{s:b, s:s}", "install_seccomp", cfg->node_install_seccomp,
                             "seccomp_dir", cfg->node_seccomp_dir);
    /* unset ones are left out: "" is not a value the file takes */
#define UNSET_NULL(s) ((s)[0] ? (s) : NULL)
    json_t *kube = json_pack(
        "{s:s*, s:s*, s:b, s:s, s:s*, s:s, s:b, s:s*, s:s*, s:s*, s:s*, s:I, s:I, s:I, s:s, s:s*,"
        " s:s*, s:I}",
        "kubeconfig", UNSET_NULL(cfg->kube_kubeconfig), "context", UNSET_NULL(cfg->kube_context),
        "in_cluster", cfg->kube_in_cluster, "namespace", cfg->kube_namespace, "registry",
        UNSET_NULL(cfg->kube_registry), "repository_prefix", cfg->kube_repository,
        "registry_insecure", cfg->kube_registry_insecure, "registry_ca_file",
        UNSET_NULL(cfg->kube_registry_ca), "docker_config", UNSET_NULL(cfg->kube_docker_config),
        "base_layout_python", UNSET_NULL(cfg->kube_base_python), "base_layout_node",
        UNSET_NULL(cfg->kube_base_node), "ready_timeout_s", (json_int_t)cfg->kube_ready_timeout_s,
        "reap_interval_s", (json_int_t)cfg->kube_reap_interval_s, "request_timeout_s",
        (json_int_t)cfg->kube_request_timeout_s, "kaniko_namespace", cfg->kube_kaniko_namespace,
        "kaniko_executor", UNSET_NULL(cfg->kube_kaniko_executor), "kaniko_registry_secret",
        UNSET_NULL(cfg->kube_kaniko_secret), "kaniko_deadline_s",
        (json_int_t)cfg->kube_kaniko_deadline_s);
#undef UNSET_NULL
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
                     "listen", listen, "state_dir", cfg->state_dir, "root", cfg->root,
                     "policies_dir", cfg->policies_dir, "keys_dir", cfg->keys_dir, "backend",
                     cfg->backend, "pool", pool, "jwt", jwt, "http", http, "functions", functions,
                     "audit", audit, "cron", cron, "node", node, "kubernetes", kube, "log_level",
                     cfg->log_level);
}
