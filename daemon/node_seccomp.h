/* The node role: on a Kubernetes node hksd installs the seccomp profiles of policies/seccomp/ in
 * the kubelet's seccomp directory, where Knative Services name them as
 * seccompProfile {type: Localhost, localhostProfile: hks/<profile>.json}.
 *
 * The directory is hksd's own: its last path component is never followed as a symlink, it must
 * belong to hksd's user and be writable by nobody else. Every profile is written atomically
 * (temporary file in the directory, fsync, rename, fsync of the directory); a rename replaces a
 * planted symlink instead of writing through it. The names hksd wrote are kept in a manifest
 * (.hksd-profiles.json) in the same directory: a profile that left policies/seccomp/ is removed
 * only when the manifest lists it and it is a regular file owned by hksd's user, so files of
 * anyone else stay. Concurrent installers on one node (a rolling update with surge) take turns
 * through flock on the directory. */
#ifndef HKSD_NODE_SECCOMP_H
#define HKSD_NODE_SECCOMP_H

/* In policies/seccomp/ beside the profiles: their groups, for review; not a profile. */
#define HKSD_SECCOMP_GROUPS_FILE "groups.json"

#include <stddef.h>

#include "../common/common.h"

/* The manifest of the names hksd wrote, inside the target directory. */
#define HKSD_NODE_SECCOMP_MANIFEST ".hksd-profiles.json"

/* What one installation did. */
typedef struct hksd_node_seccomp_result {
    unsigned written; /* profiles written (replaced or new) */
    unsigned removed; /* stale profiles of hksd's removed */
    unsigned kept;    /* stale names left alone: not a regular file of hksd's user */
} hksd_node_seccomp_result;

/* A profile of policies/seccomp/ (text of len bytes; label names it in errors) in the form the
 * kubelet's container runtime reads (OCI runtime-spec seccomp, which is also a valid Docker
 * seccomp profile): only the OCI keys (defaultAction, defaultErrnoRet, architectures, flags,
 * syscalls[].{names,action,errnoRet,args[].{index,value,valueTwo,op}}), "comment" dropped, any
 * other key refused; and socket(AF_INET) and socket(AF_INET6) allowed, as for a local function
 * with network, because a function on Knative serves HTTP on $PORT. The result compiles with the
 * sandbox's own loader. A malloc'd NUL-terminated JSON text, or NULL with err. */
char *hksd_node_seccomp_convert(const char *text, size_t len, const char *label, size_t *out_len,
                                hks_error *err);

/* Install every <name>.json of profiles_dir into target_dir (an absolute path; created with mode
 * 0755 when missing, its parents too), then remove the stale ones the manifest lists. Progress is
 * logged as JSON lines on stderr. -1 with err naming the path and errno when anything fails. */
int hksd_node_seccomp_install(const char *profiles_dir, const char *target_dir,
                              hksd_node_seccomp_result *result, hks_error *err);

#endif
