/* Shared by the cmocka unit tests. */
#ifndef HKS_TEST_HELPERS_H
#define HKS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
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

/* Entries of dir whose name starts with prefix ("" counts every entry but . and ..). */
static inline int count_entries_with_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* Sandbox cgroups named hks-<pid>-... (pids is a v1 hierarchy here, unified the v2 one). */
static inline int sandbox_cgroups_of(int creator)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "hks-%d-", creator);
    return count_entries_with_prefix("/sys/fs/cgroup/pids", prefix) +
           count_entries_with_prefix("/sys/fs/cgroup/unified", prefix) +
           count_entries_with_prefix("/sys/fs/cgroup", prefix);
}

/* Poll until creator's sandbox cgroups number expected (the spawner removes them in the
 * background), for at most about two seconds; returns the last count. */
static inline int wait_for_sandbox_cgroups(int creator, int expected)
{
    int n = sandbox_cgroups_of(creator);
    for (int i = 0; i < 200 && n != expected; i++) {
        usleep(10000);
        n = sandbox_cgroups_of(creator);
    }
    return n;
}

#endif
