/* Shared by the cmocka unit tests. */
#ifndef HKS_TEST_HELPERS_H
#define HKS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The checkout (for the shipped policies); `make` sets HKS_ROOT. */
static inline const char *test_root(void)
{
    const char *root = getenv("HKS_ROOT");
    return root ? root : ".";
}

static inline void test_path(char *out, size_t size, const char *relative)
{
    snprintf(out, size, "%s/%s", test_root(), relative);
}

/* Sandboxes need root (or user namespaces and a delegated cgroup): tests that create them skip
 * elsewhere instead of passing vacuously. */
static inline int skip_unless_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: needs root to create sandboxes with cgroups\n");
        return 1;
    }
    return 0;
}

#endif
