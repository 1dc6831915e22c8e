/* The deploy-function request's body: every field typed, bounded and checked against the limits
 * policy before anything is written. A pure function of the JSON, fuzzed with execute's. */
#include "internal.h"

#include <string.h>

void api_deploy_input_release(deploy_input *in)
{
    api_execute_input_release(&in->code);
    free(in->archive);
    json_decref(in->spec.limits_json);
    in->archive = NULL;
    in->spec.limits_json = NULL;
}

/* A DNS-1123 label: it names the function in URLs and, on Kubernetes, objects. */
static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 63 || !(name[0] >= 'a' && name[0] <= 'z') || name[len - 1] == '-')
        return false;
    for (const char *c = name; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return false;
    }
    return true;
}

static int count_field(decode_error *e, json_t *in, const char *field, json_int_t min,
                       json_int_t max, json_int_t fallback, json_int_t *out)
{
    json_t *v = json_object_get(in, field);
    if (!v) {
        *out = fallback;
        return 0;
    }
    if (!json_is_integer(v))
        return api_invalid(e, field, "%s must be an integer", field);
    if (json_integer_value(v) < min || json_integer_value(v) > max)
        return api_invalid(e, field, "%s: %lld is outside %lld..%lld", field,
                           (long long)json_integer_value(v), (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

/* The limits in force, in the policy's units, for the record and the audit log. */
static json_t *limits_in_policy_units(const sbx_limits *l)
{
    return json_pack("{s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "memory_mb",
                     (json_int_t)(l->memory_bytes >> 20), "pids", (json_int_t)l->pids, "cpus",
                     (double)l->cpu_millis / 1000.0, "wall_ms", (json_int_t)l->wall_ms, "cpu_ms",
                     (json_int_t)l->cpu_ms, "tmpfs_mb", (json_int_t)(l->tmpfs_bytes >> 20),
                     "fsize_mb", (json_int_t)(l->fsize_bytes >> 20), "nofile",
                     (json_int_t)l->nofile, "output_bytes", (json_int_t)l->stdout_max);
}

static int decode_code(json_t *in, const hksd_policy_limits *policy, deploy_input *out,
                       decode_error *e)
{
    json_t *archive = json_object_get(in, "archive");
    int given = (json_object_get(in, "code") != NULL) + (json_object_get(in, "files") != NULL) +
                (archive != NULL);
    if (given != 1)
        return api_invalid(e, "code",
                           "give exactly one of \"code\" (one string), \"files\" or \"archive\"");
    if (!archive) {
        const char *code_name =
            strcmp(out->spec.runtime, "node") == 0 ? "index.js" : "function/func.py";
        if (api_decode_files(e, in, code_name, policy, &out->code) < 0)
            return -1;
        out->spec.files = out->code.files;
        out->spec.n_files = out->code.n_files;
        return 0;
    }
    if (!json_is_string(archive) || json_string_length(archive) == 0)
        return api_invalid(e, "archive", "archive must be a base64 string of a .tar.gz");
    out->archive = api_base64_decode(json_string_value(archive), json_string_length(archive),
                                     &out->archive_len);
    if (!out->archive)
        return api_invalid(e, "archive", "archive is not valid base64");
    out->spec.archive = out->archive;
    out->spec.archive_len = out->archive_len;
    return 0;
}

int api_decode_deploy(json_t *in, const hksd_policy_limits *policy, deploy_input *out,
                      decode_error *e)
{
    static const char *const known[] = {"name",      "runtime",   "code",       "files",
                                        "archive",   "env",       "limits",     "ttl_seconds",
                                        "min_scale", "max_scale", "concurrency"};
    const char *unknown = api_unknown_field(in, known, HKS_ARRAY_LEN(known));
    if (unknown)
        return api_invalid(e, unknown, "unknown field '%s'", unknown);
    const char *key;
    json_t *value;
    json_t *name = json_object_get(in, "name");
    if (name && (!json_is_string(name) || !valid_name(json_string_value(name))))
        return api_invalid(e, "name",
                           "name must be 1-63 characters of a-z, 0-9 and '-', starting with a "
                           "letter and not ending with '-'");
    out->spec.name = name ? json_string_value(name) : "fn";
    const char *runtime = json_string_value(json_object_get(in, "runtime"));
    if (!runtime)
        return api_invalid(e, "runtime", "runtime is required (python or node)");
    if (!rt_runtime_find(runtime))
        return api_invalid(e, "runtime", "unknown runtime '%s' (python or node)", runtime);
    out->spec.runtime = runtime;
    if (decode_code(in, policy, out, e) < 0)
        return -1;

    json_t *env = json_object_get(in, "env");
    if (env && (!json_is_object(env) || json_object_size(env) > MAX_ENV))
        return api_invalid(e, "env", "env must be an object of at most %d strings", MAX_ENV);
    json_object_foreach(env, key, value)
    {
        if (!api_safe_env_name(key) || strncmp(key, "HKS_", 4) == 0)
            return api_invalid(e, "env", "'%s' is not a variable name a function may set", key);
        if (!json_is_string(value) || strlen(json_string_value(value)) != json_string_length(value))
            return api_invalid(e, "env", "env.%s must be a string without NUL bytes", key);
    }
    out->spec.env = env;

    hks_error err = {0};
    if (hksd_policy_limits_resolve(policy, json_object_get(in, "limits"), &out->spec.limits, &err) <
        0)
        return api_invalid(e, "limits", "%s", err.msg);
    out->spec.limits_json = limits_in_policy_units(&out->spec.limits);

    json_int_t ttl = 0, max_scale = 0, min_scale = 0, concurrency = 0;
    if (count_field(e, in, "ttl_seconds", 1, (json_int_t)policy->ttl_max_s,
                    (json_int_t)policy->ttl_default_s, &ttl) < 0 ||
        count_field(e, in, "max_scale", 1, DEPLOY_MAX_SCALE, 2, &max_scale) < 0 ||
        count_field(e, in, "min_scale", 0, max_scale, 0, &min_scale) < 0 ||
        count_field(e, in, "concurrency", 1, DEPLOY_MAX_CONCURRENCY, 10, &concurrency) < 0)
        return -1;
    out->spec.ttl_s = (uint64_t)ttl;
    out->spec.max_scale = (unsigned)max_scale;
    out->spec.min_scale = (unsigned)min_scale;
    out->spec.concurrency = (unsigned)concurrency;
    return 0;
}
