/* libFuzzer target: hksd's config file, the limits policy (both an admin's files, or a ConfigMap)
 * and a request's "limits" (API callers). Every input is loaded as each of the three; whatever is
 * accepted must hold the invariants the daemon relies on. */
#include "daemon/config.h"

#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int file_fd = -1;
static char file_path[64];
static hksd_policy_limits fixed_policy;

static const char fixed_policy_text[] =
    "{\"defaults\":{\"memory_mb\":256,\"pids\":64,\"cpus\":1,\"wall_ms\":10000,\"cpu_ms\":10000,"
    "\"tmpfs_mb\":64,\"fsize_mb\":64,\"nofile\":256,\"output_bytes\":1048576},"
    "\"maxima\":{\"memory_mb\":2048,\"pids\":512,\"cpus\":2,\"wall_ms\":300000,\"cpu_ms\":300000,"
    "\"tmpfs_mb\":512,\"fsize_mb\":256,\"nofile\":4096,\"output_bytes\":16777216},"
    "\"ttl_seconds\":{\"default\":3600,\"maximum\":86400},\"execute\":{\"max_files\":256,"
    "\"max_file_bytes\":8388608,\"max_total_bytes\":16777216,\"max_stdin_bytes\":1048576}}";

/* the memfd holds exactly data */
static void set_file(const void *data, size_t size)
{
    if (ftruncate(file_fd, 0) < 0 || (size && pwrite(file_fd, data, size, 0) != (ssize_t)size))
        __builtin_trap();
}

static void setup(void)
{
    file_fd = memfd_create("hks-fuzz-config", MFD_CLOEXEC);
    if (file_fd < 0)
        __builtin_trap();
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    hks_error err = {0};
    set_file(fixed_policy_text, strlen(fixed_policy_text));
    if (hksd_policy_limits_load(file_path, &fixed_policy, &err) < 0)
        __builtin_trap();
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_config(const hksd_config *cfg)
{
    if (cfg->listen_port < 1 || cfg->listen_port > 65535 ||
        cfg->per_ip_connections > cfg->max_connections || cfg->threads < 1 ||
        cfg->jwt_max_lifetime_s < 1 || !terminated(cfg->listen_host, sizeof(cfg->listen_host)) ||
        !terminated(cfg->jwt_issuer, sizeof(cfg->jwt_issuer)) || !cfg->state_dir[0] ||
        !cfg->keys_dir[0] || !cfg->policies_dir[0] || !cfg->jwt_issuer[0])
        __builtin_trap();
}

static void fuzz_config_file(const unsigned char *data, size_t size)
{
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hks_error err = {0};
    set_file(data, size);
    if (hksd_config_load_file(&cfg, file_path, &err) < 0)
        return;
    check_config(&cfg);
    /* what was accepted prints, and the printed config loads back to the same settings */
    json_t *json = hksd_config_to_json(&cfg);
    if (!json)
        __builtin_trap();
    char *text = json_dumps(json, 0);
    json_decref(json);
    if (!text)
        __builtin_trap();
    set_file(text, strlen(text));
    free(text);
    hksd_config back;
    hksd_config_defaults(&back, "/elsewhere");
    if (hksd_config_load_file(&back, file_path, &err) < 0 ||
        strcmp(back.listen_host, cfg.listen_host) != 0 || back.listen_port != cfg.listen_port ||
        strcmp(back.state_dir, cfg.state_dir) != 0 || strcmp(back.keys_dir, cfg.keys_dir) != 0 ||
        strcmp(back.root, cfg.root) != 0 || strcmp(back.policies_dir, cfg.policies_dir) != 0 ||
        back.max_body_bytes != cfg.max_body_bytes ||
        back.jwt_max_lifetime_s != cfg.jwt_max_lifetime_s)
        __builtin_trap();
}

static void check_limits(const sbx_limits *l, const sbx_limits *max)
{
    const uint64_t *v = (const uint64_t *)l, *m = (const uint64_t *)max;
    for (size_t i = 0; i < sizeof(*l) / sizeof(uint64_t); i++) {
        if (v[i] == 0 || v[i] > m[i])
            __builtin_trap();
    }
    if (l->stdout_max != l->stderr_max)
        __builtin_trap();
}

static void fuzz_policy(const unsigned char *data, size_t size)
{
    hksd_policy_limits policy;
    hks_error err = {0};
    set_file(data, size);
    if (hksd_policy_limits_load(file_path, &policy, &err) < 0)
        return;
    check_limits(&policy.defaults, &policy.maxima);
    if (policy.ttl_default_s < 1 || policy.ttl_default_s > policy.ttl_max_s ||
        policy.max_files < 1 || policy.max_file_bytes > policy.max_total_bytes ||
        policy.max_stdin_bytes < 1)
        __builtin_trap();
    sbx_limits out;
    if (hksd_policy_limits_resolve(&policy, NULL, &out, &err) < 0 ||
        memcmp(&out, &policy.defaults, sizeof(out)) != 0)
        __builtin_trap();
}

static void fuzz_request_limits(const unsigned char *data, size_t size)
{
    json_error_t jerr;
    json_t *json =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!json)
        return;
    /* a request's "limits" member, or the whole input */
    json_t *limits = json_is_object(json) && json_object_get(json, "limits")
                         ? json_object_get(json, "limits")
                         : json;
    sbx_limits out;
    hks_error err = {0};
    if (hksd_policy_limits_resolve(&fixed_policy, limits, &out, &err) == 0)
        check_limits(&out, &fixed_policy.maxima);
    json_decref(json);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (file_fd < 0)
        setup();
    if (size > HKSD_CONFIG_FILE_MAX + 1)
        return 0;
    fuzz_config_file(data, size);
    fuzz_policy(data, size);
    fuzz_request_limits(data, size);
    return 0;
}
