/* Decoding of the spawner's "run" requests into a sandbox configuration: every field typed and
 * bounded, every string borrowed from the request (which the caller keeps alive). */
#include "internal.h"

#include <string.h>

static int string_array(json_t *array, char **out, const char *field, hks_error *err)
{
    if (!array || json_is_null(array)) {
        out[0] = NULL;
        return 0;
    }
    if (!json_is_array(array) || json_array_size(array) > SBX_REQ_MAX_ARGS)
        return hks_fail(err, 0, "%s must be an array of at most %d strings", field,
                        SBX_REQ_MAX_ARGS);
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return hks_fail(err, 0, "%s[%zu] must be a string without NUL bytes", field, i);
        out[i] = (char *)json_string_value(v);
    }
    out[json_array_size(array)] = NULL;
    return 0;
}

static int limit_field(json_t *limits, const char *name, uint64_t max, uint64_t *value,
                       hks_error *err)
{
    json_t *v = json_object_get(limits, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || (uint64_t)json_integer_value(v) > max)
        return hks_fail(err, 0, "limits.%s must be an integer from 1 to %llu", name,
                        (unsigned long long)max);
    *value = (uint64_t)json_integer_value(v);
    return 0;
}

int sbx_request_parse_limits(json_t *limits, sbx_limits *l, hks_error *err)
{
    if (!limits)
        return 0;
    if (!json_is_object(limits))
        return hks_fail(err, 0, "limits must be an object");
    const uint64_t tb = 1ULL << 40;
    return limit_field(limits, "memory_bytes", tb, &l->memory_bytes, err) < 0 ||
                   limit_field(limits, "pids", 1 << 22, &l->pids, err) < 0 ||
                   limit_field(limits, "cpu_millis", 1 << 20, &l->cpu_millis, err) < 0 ||
                   limit_field(limits, "wall_ms", 7ULL * 24 * 3600 * 1000, &l->wall_ms, err) < 0 ||
                   limit_field(limits, "cpu_ms", 7ULL * 24 * 3600 * 1000, &l->cpu_ms, err) < 0 ||
                   limit_field(limits, "tmpfs_bytes", tb, &l->tmpfs_bytes, err) < 0 ||
                   limit_field(limits, "shm_bytes", tb, &l->shm_bytes, err) < 0 ||
                   limit_field(limits, "fsize_bytes", tb, &l->fsize_bytes, err) < 0 ||
                   limit_field(limits, "nofile", 1 << 20, &l->nofile, err) < 0 ||
                   limit_field(limits, "stdout_max", 1ULL << 30, &l->stdout_max, err) < 0 ||
                   limit_field(limits, "stderr_max", 1ULL << 30, &l->stderr_max, err) < 0
               ? -1
               : 0;
}

static int parse_mounts(json_t *mounts, sbx_request *req, hks_error *err)
{
    if (!mounts)
        return 0;
    if (!json_is_array(mounts) || json_array_size(mounts) > SBX_REQ_MAX_MOUNTS)
        return hks_fail(err, 0, "mounts must be an array of at most %d objects",
                        SBX_REQ_MAX_MOUNTS);
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *source = json_string_value(json_object_get(m, "source"));
        const char *target = json_string_value(json_object_get(m, "target"));
        if (!source || !target || target[0] != '/')
            return hks_fail(err, 0, "mounts[%zu] needs a source and an absolute target", i);
        req->mounts[i] = (sbx_mount){.source = source,
                                     .target = target,
                                     .writable = json_is_true(json_object_get(m, "writable"))};
    }
    req->cfg.mounts = req->mounts;
    req->cfg.n_mounts = json_array_size(mounts);
    return 0;
}

int sbx_request_decode(sbx_request *req, const sbx_profile *plain, const sbx_profile *inet,
                       hks_error *err)
{
    json_t *r = req->json;
    sbx_config_init(&req->cfg);
    if (!json_is_object(r))
        return hks_fail(err, 0, "a request must be a JSON object");
    req->cfg.network = json_is_true(json_object_get(r, "network"));
    req->cfg.profile = req->cfg.network ? inet : plain;
    if (string_array(json_object_get(r, "argv"), req->argv, "argv", err) < 0 ||
        string_array(json_object_get(r, "env"), req->env, "env", err) < 0)
        return -1;
    if (!req->argv[0])
        return hks_fail(err, 0, "argv must not be empty");
    req->cfg.argv = req->argv;
    req->cfg.env = json_object_get(r, "env") ? req->env : NULL;
    req->cfg.cwd = json_string_value(json_object_get(r, "cwd"));
    const char *hostname = json_string_value(json_object_get(r, "hostname"));
    if (hostname)
        req->cfg.hostname = hostname;
    if (parse_mounts(json_object_get(r, "mounts"), req, err) < 0 ||
        sbx_request_parse_limits(json_object_get(r, "limits"), &req->cfg.limits, err) < 0)
        return -1;
    const char *cgroup_parent = json_string_value(json_object_get(r, "cgroup_parent"));
    if (cgroup_parent)
        req->cfg.cgroup_parent = cgroup_parent;

    size_t next = 0;
    if (json_is_true(json_object_get(r, "stdin"))) {
        if (req->n_fds < 1)
            return hks_fail(err, 0, "stdin requested but no fd attached");
        req->cfg.stdin_fd = req->fds[next++];
    }
    json_t *output = json_object_get(r, "output");
    if (output && !(json_is_string(output) && strcmp(json_string_value(output), "direct") == 0))
        return hks_fail(err, 0, "output must be \"direct\" when given");
    req->cfg.output = output ? SBX_OUTPUT_DIRECT : SBX_OUTPUT_CAPTURE;
    if (output) {
        if (req->n_fds < next + 2)
            return hks_fail(err, 0, "direct output requested but no stdout/stderr fds attached");
        req->cfg.stdout_sink = req->fds[next++];
        req->cfg.stderr_sink = req->fds[next++];
    }
    json_t *pass = json_object_get(r, "pass_fds");
    size_t n_pass = json_is_integer(pass) ? (size_t)json_integer_value(pass) : 0;
    if (pass &&
        (!json_is_integer(pass) || json_integer_value(pass) < 0 || next + n_pass != req->n_fds))
        return hks_fail(err, 0, "pass_fds must count the fds attached after stdin");
    if (!pass && next != req->n_fds)
        return hks_fail(err, 0, "%zu fds attached but none expected", req->n_fds);
    req->cfg.pass_fds = req->fds + next;
    req->cfg.n_pass_fds = n_pass;
    return 0;
}

void sbx_request_close_fds(sbx_request *req)
{
    for (size_t i = 0; i < req->n_fds; i++)
        close(req->fds[i]);
    req->n_fds = 0;
}

void sbx_request_release(sbx_request *req)
{
    sbx_request_close_fds(req);
    json_decref(req->json);
    req->json = NULL;
}
