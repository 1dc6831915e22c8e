/* libFuzzer target: the body of POST /internal/v1/operations/execute, decoded and checked against
 * a limits policy. Whatever is accepted must be something a sandbox can be built from. */
#include "tests/fuzz/fuzz_policy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

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
    execute_input *out = calloc(1, sizeof(*out));
    const rt_runtime *rt = NULL;
    decode_error e = {{0}, {0}};
    if (out && api_decode_execute(in, &policy, &rt, out, &e) == 0) {
        size_t total = 0;
        bool entry_found = false;
        if (!rt || out->n_files == 0 || out->n_files > policy.max_files)
            __builtin_trap();
        for (size_t i = 0; i < out->n_files; i++) {
            if (!rt_safe_name(out->files[i].name) || out->files[i].len > policy.max_file_bytes)
                __builtin_trap();
            total += out->files[i].len;
            entry_found = entry_found || strcmp(out->files[i].name, out->entry) == 0;
        }
        if (!entry_found || total > policy.max_total_bytes ||
            out->limits.memory_bytes > policy.maxima.memory_bytes ||
            out->limits.wall_ms > policy.maxima.wall_ms)
            __builtin_trap();
    } else if (out && (!e.field[0] || !e.message[0])) {
        __builtin_trap(); /* every refusal names a field and says why */
    }
    if (out)
        api_execute_input_release(out);
    free(out);
    json_decref(in);
    return 0;
}
