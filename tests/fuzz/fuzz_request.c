/* libFuzzer target: the spawner's run requests (JSON from hksd, whose fields come from API
 * callers). Decoding must bound everything and never crash. */
#include "sandbox/internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static sbx_profile *profile;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    hks_error err = {0};
    if (!profile) {
        const char *text = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":"
                           "[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}";
        if (sbx_profile_load_text(text, strlen(text), "fuzz", false, &profile, &err) < 0)
            return 0;
    }
    json_error_t jerr;
    json_t *json = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!json)
        return 0;
    sbx_request req = {.json = json};
    if (sbx_request_decode(&req, profile, profile, &err) == 0) {
        /* what decoding accepted is what a sandbox would be built from */
        if (!req.cfg.argv || !req.cfg.argv[0])
            __builtin_trap();
        for (size_t i = 0; i < req.cfg.n_mounts; i++) {
            if (req.cfg.mounts[i].target[0] != '/')
                __builtin_trap();
        }
    }
    sbx_request_release(&req);
    return 0;
}
