/* libFuzzer target: the body of POST /internal/v1/operations/deploy-function, decoded and checked
 * against a limits policy. Whatever is accepted must be a function hksd can store and run. */
#include "tests/fuzz/fuzz_policy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 63 || name[0] < 'a' || name[0] > 'z' || name[len - 1] == '-')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static hksd_policy_limits policy;
    static bool ready;
    if (!ready) {
        fuzz_policy(&policy);
        ready = true;
    }
    json_error_t jerr;
    json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!in || !json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    deploy_input *out = calloc(1, sizeof(*out));
    decode_error e = {{0}, {0}};
    if (out && api_decode_deploy(in, &policy, out, &e) == 0) {
        const hksd_fn_spec *s = &out->spec;
        if (!rt_runtime_find(s->runtime) || !valid_name(s->name) || !s->limits_json)
            __builtin_trap();
        if ((s->archive != NULL) == (s->n_files > 0))
            __builtin_trap(); /* code or files, or an archive: exactly one */
        for (size_t i = 0; i < s->n_files; i++) {
            if (!rt_safe_name(s->files[i].name) || s->files[i].len > policy.max_file_bytes)
                __builtin_trap();
        }
        if (s->ttl_s < 1 || s->ttl_s > policy.ttl_max_s || s->max_scale < 1 ||
            s->max_scale > DEPLOY_MAX_SCALE || s->min_scale > s->max_scale || s->concurrency < 1 ||
            s->concurrency > DEPLOY_MAX_CONCURRENCY ||
            s->limits.memory_bytes > policy.maxima.memory_bytes ||
            s->limits.wall_ms > policy.maxima.wall_ms)
            __builtin_trap();
        const char *key;
        json_t *value;
        json_object_foreach(s->env, key, value)
        {
            if (!json_is_string(value) || strchr(key, '=') || strncmp(key, "HKS_", 4) == 0)
                __builtin_trap();
        }
    } else if (out && (!e.field[0] || !e.message[0])) {
        __builtin_trap(); /* every refusal names a field and says why */
    }
    if (out)
        api_deploy_input_release(out);
    free(out);
    json_decref(in);
    return 0;
}
