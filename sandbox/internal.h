/* Private to the sandbox module. */
#ifndef HKS_SANDBOX_INTERNAL_H
#define HKS_SANDBOX_INTERNAL_H

#include "sandbox.h"

#include <limits.h>
#include <linux/filter.h>
#include <sys/syscall.h>

/* uid and gid of the program inside every sandbox ("sandbox" in the generated /etc/passwd). */
#define SBX_INNER_UID 1000
#define SBX_INNER_GID 1000
/* Host ids the sandbox user maps to when hksd runs as root: not a user of the host. */
#define SBX_DEFAULT_HOST_UID 101000
#define SBX_DEFAULT_HOST_GID 101000
/* Exit status of a sandbox child whose setup failed (after it reported why). */
#define SBX_SETUP_FAILED 125

/* ---- profile.c, profile_cache.c ---- */
struct sbx_profile {
    struct sock_filter *insns;
    size_t n_insns;
    unsigned int flags; /* SECCOMP_FILTER_FLAG_* */
};

/* Read a profile file (bounded size) into a malloc'd buffer. */
int sbx_profile_read_file(const char *path, char **text, size_t *len, hks_error *err);
/* Install the compiled program on the calling thread (no_new_privs must be set). */
int sbx_profile_install(const sbx_profile *profile);

/* ---- cgroup.c ---- */
typedef struct sbx_cgroup {
    int version;           /* 0: none, 1, 2 */
    char v2[PATH_MAX];     /* v2: the sandbox's cgroup directory */
    char memory[PATH_MAX]; /* v1: one directory per controller */
    char pids[PATH_MAX];
    char cpu[PATH_MAX];
    char cpuacct[PATH_MAX];
} sbx_cgroup;

/* Choose the sandbox's cgroup below parent (NULL: below the caller's own): paths only. */
int sbx_cgroup_plan(sbx_cgroup *cg, const char *parent, hks_error *err);
/* Create the planned cgroup and apply the limits. */
int sbx_cgroup_make(const sbx_cgroup *cg, const sbx_limits *limits, hks_error *err);
/* Both in one go; on failure nothing is left. */
int sbx_cgroup_create(sbx_cgroup *cg, const char *parent, const sbx_limits *limits, hks_error *err);
/* Write memory (swap stays off), pids and CPU bandwidth limits; also on a running sandbox. */
int sbx_cgroup_set_limits(const sbx_cgroup *cg, const sbx_limits *limits, hks_error *err);
/* Only what differs from old: each cgroup write can take the kernel a while. */
int sbx_cgroup_change_limits(const sbx_cgroup *cg, const sbx_limits *old, const sbx_limits *limits,
                             hks_error *err);
/* An O_DIRECTORY fd of the v2 cgroup for CLONE_INTO_CGROUP, or -1 for v1. */
int sbx_cgroup_open_fd(const sbx_cgroup *cg, hks_error *err);
/* v1: move pid into every controller's directory (v2 uses CLONE_INTO_CGROUP). */
int sbx_cgroup_attach(const sbx_cgroup *cg, pid_t pid, hks_error *err);
int sbx_cgroup_cpu_usage_us(const sbx_cgroup *cg, uint64_t *usage_us);
uint64_t sbx_cgroup_memory_peak(const sbx_cgroup *cg);
uint64_t sbx_cgroup_oom_kills(const sbx_cgroup *cg);
/* Kill every process left in the cgroup and remove it. */
int sbx_cgroup_destroy(sbx_cgroup *cg, hks_error *err);
const char *sbx_cgroup_version_name(const sbx_cgroup *cg);

/* ---- child.c: runs in the cloned child, never returns ---- */
typedef struct sbx_child_args {
    const sbx_config *cfg;
    int sync_fd;   /* read end: one byte once maps and cgroup are in place */
    int report_fd; /* write end: setup errors and the program's wait status */
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
} sbx_child_args;

/* Messages from the sandbox's init to the supervisor; smaller than PIPE_BUF so each write is
 * atomic. */
typedef struct sbx_report {
    char kind; /* 'E': setup error (text), 'X': the program's wait status */
    int wait_status;
    char text[1000];
} sbx_report;

__attribute__((noreturn)) void sbx_child_main(const sbx_child_args *args);

/* ---- request.c: the spawner's "run" request ---- */
#define SBX_REQ_MAX_ARGS   256
#define SBX_REQ_MAX_MOUNTS 32

typedef struct sbx_request {
    json_t *json; /* owns every string the config points to */
    char *argv[SBX_REQ_MAX_ARGS + 1];
    char *env[SBX_REQ_MAX_ARGS + 1];
    sbx_mount mounts[SBX_REQ_MAX_MOUNTS];
    sbx_config cfg;
    int fds[SBX_MSG_MAX_FDS]; /* received with the request: [stdin] + handed-over fds */
    size_t n_fds;
} sbx_request;

/* Fill req->cfg from req->json and req->fds; plain/inet: the profile without and with network. */
int sbx_request_decode(sbx_request *req, const sbx_profile *plain, const sbx_profile *inet,
                       hks_error *err);
void sbx_request_close_fds(sbx_request *req);
/* Apply the fields present in the "limits" object over *l (each typed and bounded). */
int sbx_request_parse_limits(json_t *limits, sbx_limits *l, hks_error *err);
void sbx_request_release(sbx_request *req);

/* ---- rootfs.c: inside the child ---- */
#define SBX_MAX_BINDS 64

typedef struct sbx_rootfs_bind {
    int tree_fd; /* detached clone of the source (open_tree) */
    const char *target;
    bool is_dir;
    char symlink[256]; /* runtime dirs that are symlinks on the host (merged /usr) */
} sbx_rootfs_bind;

typedef struct sbx_rootfs {
    sbx_rootfs_bind items[SBX_MAX_BINDS];
    size_t n;
} sbx_rootfs;

/* Make mounts private and clone every bind source, with the creator's access to host paths. */
int sbx_rootfs_prepare(const sbx_config *cfg, sbx_rootfs *fs, hks_error *err);
/* As the sandbox user: build the new root from the clones and pivot into it. */
int sbx_rootfs_enter(const sbx_config *cfg, sbx_rootfs *fs, hks_error *err);
void sbx_rootfs_release(sbx_rootfs *fs);

#endif
