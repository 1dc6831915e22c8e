/* Defaults, names and the JSON form of results. */
#include "internal.h"

#include <string.h>

void sbx_limits_default(sbx_limits *l)
{
    *l = (sbx_limits){
        .memory_bytes = 256ULL << 20,
        .pids = 64,
        .cpu_millis = 1000,
        .wall_ms = 10000,
        .cpu_ms = 10000,
        .tmpfs_bytes = 64ULL << 20,
        .shm_bytes = 16ULL << 20,
        .fsize_bytes = 64ULL << 20,
        .nofile = 256,
        .stdout_max = 1ULL << 20,
        .stderr_max = 1ULL << 20,
    };
}

void sbx_config_init(sbx_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    sbx_limits_default(&cfg->limits);
    cfg->hostname = "sandbox";
    cfg->use_cgroup = true;
    cfg->host_uid = SBX_DEFAULT_HOST_UID;
    cfg->host_gid = SBX_DEFAULT_HOST_GID;
    cfg->stdin_fd = -1;
    cfg->stdout_sink = STDOUT_FILENO;
    cfg->stderr_sink = STDERR_FILENO;
}

const char *sbx_status_name(sbx_status status)
{
    switch (status) {
    case SBX_STATUS_OK:
        return "ok";
    case SBX_STATUS_ERROR:
        return "error";
    case SBX_STATUS_TIMEOUT:
        return "timeout";
    case SBX_STATUS_OOM:
        return "oom";
    case SBX_STATUS_OUTPUT_LIMIT:
        return "output_limit";
    case SBX_STATUS_KILLED:
        return "killed";
    case SBX_STATUS_INTERNAL_ERROR:
        return "internal_error";
    }
    return "internal_error";
}

const char *sbx_timeout_reason_name(sbx_timeout_reason reason)
{
    return reason == SBX_TIMEOUT_WALL ? "wall" : reason == SBX_TIMEOUT_CPU ? "cpu" : NULL;
}

void sbx_result_release(sbx_result *result)
{
    free(result->stdout_data);
    free(result->stderr_data);
    result->stdout_data = result->stderr_data = NULL;
}

int sbx_result_exit_status(const sbx_result *r)
{
    if (r->status == SBX_STATUS_INTERNAL_ERROR)
        return SBX_SETUP_FAILED;
    if (r->exited)
        return r->exit_code;
    return 128 + (r->signal ? r->signal : 9);
}

static json_t *output_json(const char *data, size_t len)
{
    size_t text_len = 0;
    char *text = hks_utf8_copy(data ? data : "", data ? len : 0, &text_len);
    if (!text)
        return json_null();
    json_t *value = json_stringn(text, text_len);
    free(text);
    return value;
}

json_t *sbx_result_to_json(const sbx_result *r)
{
    const char *reason = sbx_timeout_reason_name(r->timeout_reason);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(sbx_status_name(r->status)));
    json_object_set_new(o, "exit_code", r->exited ? json_integer(r->exit_code) : json_null());
    json_object_set_new(o, "signal", r->signal ? json_integer(r->signal) : json_null());
    json_object_set_new(o, "timeout_reason", reason ? json_string(reason) : json_null());
    json_object_set_new(o, "wall_ms", json_real((double)r->wall_us / 1000.0));
    json_object_set_new(o, "cpu_ms", json_real((double)r->cpu_us / 1000.0));
    json_object_set_new(o, "peak_memory_bytes", json_integer((json_int_t)r->peak_memory_bytes));
    json_object_set_new(o, "oom_killed", json_boolean(r->oom_killed));
    json_object_set_new(o, "stdout", output_json(r->stdout_data, r->stdout_len));
    json_object_set_new(o, "stderr", output_json(r->stderr_data, r->stderr_len));
    json_object_set_new(o, "stdout_truncated", json_boolean(r->stdout_truncated));
    json_object_set_new(o, "stderr_truncated", json_boolean(r->stderr_truncated));
    json_object_set_new(o, "message",
                        r->message[0] ? output_json(r->message, strlen(r->message)) : json_null());
    json_object_set_new(o, "cgroup", json_string(r->cgroup_version ? r->cgroup_version : "none"));
    return o;
}

static bool status_from_name(const char *name, sbx_status *out)
{
    for (int s = SBX_STATUS_OK; s <= SBX_STATUS_INTERNAL_ERROR; s++) {
        if (name && strcmp(name, sbx_status_name((sbx_status)s)) == 0) {
            *out = (sbx_status)s;
            return true;
        }
    }
    return false;
}

static uint64_t ms_to_us(json_t *v)
{
    double ms = json_number_value(v);
    return ms > 0 ? (uint64_t)(ms * 1000.0 + 0.5) : 0;
}

int sbx_result_from_json(json_t *record, sbx_result *r)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(record) ||
        !status_from_name(json_string_value(json_object_get(record, "status")), &r->status))
        return -1;
    json_t *code = json_object_get(record, "exit_code");
    r->exited = json_is_integer(code);
    r->exit_code = r->exited ? (int)json_integer_value(code) : 0;
    r->signal = (int)json_integer_value(json_object_get(record, "signal"));
    const char *reason = json_string_value(json_object_get(record, "timeout_reason"));
    r->timeout_reason = !reason                       ? SBX_TIMEOUT_NONE
                        : strcmp(reason, "wall") == 0 ? SBX_TIMEOUT_WALL
                                                      : SBX_TIMEOUT_CPU;
    r->wall_us = ms_to_us(json_object_get(record, "wall_ms"));
    r->cpu_us = ms_to_us(json_object_get(record, "cpu_ms"));
    r->peak_memory_bytes =
        (uint64_t)json_integer_value(json_object_get(record, "peak_memory_bytes"));
    r->oom_killed = json_is_true(json_object_get(record, "oom_killed"));
    r->stdout_truncated = json_is_true(json_object_get(record, "stdout_truncated"));
    r->stderr_truncated = json_is_true(json_object_get(record, "stderr_truncated"));
    const char *version = json_string_value(json_object_get(record, "cgroup"));
    r->cgroup_version = version && strcmp(version, "v2") == 0   ? "v2"
                        : version && strcmp(version, "v1") == 0 ? "v1"
                                                                : "none";
    const char *message = json_string_value(json_object_get(record, "message"));
    if (message)
        snprintf(r->message, sizeof(r->message), "%s", message);
    return 0;
}
