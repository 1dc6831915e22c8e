/* The limits policy the request-decoder fuzz targets check against (shared by them). */
#ifndef HKS_FUZZ_POLICY_H
#define HKS_FUZZ_POLICY_H

#include "api/internal.h"

static inline void fuzz_policy(hksd_policy_limits *policy)
{
    sbx_limits_default(&policy->defaults);
    policy->maxima = policy->defaults;
    policy->maxima.memory_bytes *= 8;
    policy->maxima.wall_ms *= 30;
    policy->max_files = 256;
    policy->max_file_bytes = 1 << 20;
    policy->max_total_bytes = 4 << 20;
    policy->max_stdin_bytes = 1 << 20;
    policy->ttl_default_s = 3600;
    policy->ttl_max_s = 86400;
}

#endif
