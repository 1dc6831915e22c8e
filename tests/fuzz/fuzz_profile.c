/* libFuzzer target: OCI seccomp profiles (outside input: the security team's files, and
 * Kubernetes Localhost profiles). Any input must be refused cleanly or compile. */
#include "sandbox/sandbox.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    sbx_profile *profile = NULL;
    hks_error err = {0};
    if (sbx_profile_load_text((const char *)data, size, "fuzz", size % 2 == 0, &profile, &err) == 0)
        sbx_profile_free(profile);
    return 0;
}
