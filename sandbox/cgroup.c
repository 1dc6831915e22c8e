/* One cgroup per sandbox: v2 (memory.max, memory.swap.max, pids.max, cpu.max, memory.peak,
 * memory.events, cgroup.kill) where the unified hierarchy has the memory controller, else the v1
 * memory, pids, cpu and cpuacct controllers. */
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_NAME_PREFIX "hks-"

typedef struct cgroup_layout {
    int version;
    char v2_root[PATH_MAX];     /* mount point of the unified hierarchy */
    char v1_mount[4][PATH_MAX]; /* memory, pids, cpu, cpuacct */
} cgroup_layout;

enum { V1_MEMORY, V1_PIDS, V1_CPU, V1_CPUACCT };
static const char *const v1_names[] = {"memory", "pids", "cpu", "cpuacct"};

static bool has_controller(const char *options, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = options; (p = strstr(p, name)); p += len) {
        bool start = p == options || p[-1] == ',' || p[-1] == ' ';
        bool end = p[len] == '\0' || p[len] == ',' || p[len] == ' ' || p[len] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

/* Find where each hierarchy is mounted from /proc/self/mountinfo. Controller lists are
 * comma-separated in mount options and space-separated in cgroup.controllers. */
static int detect_layout(cgroup_layout *layout, hks_error *err)
{
    memset(layout, 0, sizeof(*layout));
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return hks_fail(err, errno, "open /proc/self/mountinfo");
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
        char mountpoint[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mountpoint) != 1)
            continue;
        const char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[64], source[256], superopts[1024];
        if (sscanf(sep + 3, "%63s %255s %1023s", fstype, source, superopts) != 3)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !layout->v2_root[0])
            snprintf(layout->v2_root, sizeof(layout->v2_root), "%s", mountpoint);
        if (strcmp(fstype, "cgroup") == 0) {
            for (int i = 0; i < 4; i++) {
                if (!layout->v1_mount[i][0] && has_controller(superopts, v1_names[i]))
                    snprintf(layout->v1_mount[i], PATH_MAX, "%s", mountpoint);
            }
        }
    }
    /* v2 when the unified hierarchy has the memory controller (a pure v2 host). */
    if (layout->v2_root[0]) {
        char path[PATH_MAX + 32], controllers[512];
        snprintf(path, sizeof(path), "%s/cgroup.controllers", layout->v2_root);
        if (hks_read_file(path, controllers, sizeof(controllers), NULL) >= 0) {
            if (has_controller(controllers, "memory")) {
                layout->version = 2;
                return 0;
            }
        }
    }
    if (layout->v1_mount[V1_MEMORY][0] && layout->v1_mount[V1_PIDS][0] &&
        layout->v1_mount[V1_CPU][0]) {
        layout->version = 1;
        return 0;
    }
    return hks_fail(err, 0,
                    "no usable cgroup hierarchy: need cgroup v2 with the memory controller, or "
                    "the v1 memory, pids and cpu controllers");
}

/* The caller's own cgroup in a hierarchy, from /proc/self/cgroup ("0::/x" for v2). */
static int own_cgroup(int version, const char *controller, char *out, size_t size, hks_error *err)
{
    cleanup_file FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return hks_fail(err, errno, "open /proc/self/cgroup");
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *first = strchr(line, ':');
        char *second = first ? strchr(first + 1, ':') : NULL;
        if (!second)
            continue;
        *second = '\0';
        const char *controllers = first + 1;
        bool match = version == 2 ? (strcmp(line, "0") == 0 && controllers[0] == '\0')
                                  : has_controller(controllers, controller);
        if (match) {
            char *path = second + 1;
            /* a process forked after hksd moved itself into its supervisor leaf (v2) must use
             * the cgroup hksd prepared, not the leaf */
            size_t len = strlen(path), leaf = strlen("/" CGROUP_NAME_PREFIX "supervisor");
            if (version == 2 && len >= leaf &&
                strcmp(path + len - leaf, "/" CGROUP_NAME_PREFIX "supervisor") == 0)
                path[len - leaf] = '\0';
            snprintf(out, size, "%s", strcmp(path, "/") == 0 ? "" : path);
            return 0;
        }
    }
    return hks_fail(err, 0, "no %s cgroup in /proc/self/cgroup", version == 2 ? "v2" : controller);
}

static int write_control(const char *dir, const char *file, const char *value, bool optional,
                         hks_error *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    hks_error local;
    if (hks_write_file(path, value, &local) < 0) {
        if (optional && local.errnum == ENOENT)
            return 0;
        *err = local;
        return -1;
    }
    return 0;
}

static uint64_t read_u64(const char *dir, const char *file, const char *key)
{
    if (!dir[0])
        return 0;
    char path[PATH_MAX + 64], buf[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (hks_read_file(path, buf, sizeof(buf), NULL) < 0)
        return 0;
    if (!key)
        return strtoull(buf, NULL, 10);
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtoull(line + klen + 1, NULL, 10);
    }
    return 0;
}

static void unique_name(char *out, size_t size)
{
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(out, size, CGROUP_NAME_PREFIX "%d-%u-%lx", (int)getpid(),
             atomic_fetch_add(&counter, 1), (unsigned long)ts.tv_nsec);
}

/* On v2 a cgroup with processes cannot enable controllers for children ("no internal
 * processes"), so the caller first moves itself into a leaf of its own cgroup. */
static int v2_prepare_parent(const char *parent, hks_error *err)
{
    char procs[PATH_MAX + 32], subtree[PATH_MAX + 32], buf[4096];
    snprintf(subtree, sizeof(subtree), "%s/cgroup.subtree_control", parent);
    if (hks_read_file(subtree, buf, sizeof(buf), err) < 0)
        return -1;
    if (has_controller(buf, "memory") && has_controller(buf, "pids") && has_controller(buf, "cpu"))
        return 0;
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", parent);
    if (hks_read_file(procs, buf, sizeof(buf), err) < 0)
        return -1;
    if (buf[0]) {
        char leaf[PATH_MAX + 32];
        snprintf(leaf, sizeof(leaf), "%s/" CGROUP_NAME_PREFIX "supervisor", parent);
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
            return hks_fail(err, errno, "create %s", leaf);
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        if (write_control(leaf, "cgroup.procs", pid, false, err) < 0)
            return hks_wrap(err, "move the supervisor out of %s", parent);
    }
    if (write_control(parent, "cgroup.subtree_control", "+memory +pids +cpu", false, err) < 0)
        return hks_wrap(err, "enable the memory, pids and cpu controllers below %s", parent);
    return 0;
}

static int parent_dir(const cgroup_layout *layout, const char *mount, const char *controller,
                      const char *parent, char *out, size_t size, hks_error *err)
{
    char own[PATH_MAX] = "";
    if (parent) {
        snprintf(own, sizeof(own), "%s", parent);
    } else if (own_cgroup(layout->version, controller, own, sizeof(own), err) < 0) {
        return -1;
    }
    int n = snprintf(out, size, "%s%s%s", mount, own[0] == '/' || !own[0] ? "" : "/", own);
    if (n < 0 || (size_t)n >= size)
        return hks_fail(err, ENAMETOOLONG, "cgroup path below %s", mount);
    return 0;
}

static int join_path(char *out, size_t size, const char *parent, const char *name, hks_error *err)
{
    int n = snprintf(out, size, "%s/%s", parent, name);
    if (n < 0 || (size_t)n >= size)
        return hks_fail(err, ENAMETOOLONG, "cgroup path below %s", parent);
    return 0;
}

/* mkdir of a cgroup directory, and of its parent when a --cgroup-parent does not exist yet */
static int make_dir(const char *dir, hks_error *err)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    if (mkdir(parent, 0755) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create cgroup parent %s", parent);
    if (mkdir(dir, 0755) < 0)
        return hks_fail(err, errno, "create cgroup %s", dir);
    return 0;
}

static int plan_v2(sbx_cgroup *cg, const cgroup_layout *layout, const char *parent,
                   const char *name, hks_error *err)
{
    char base[PATH_MAX];
    if (parent_dir(layout, layout->v2_root, "", parent, base, sizeof(base), err) < 0)
        return -1;
    if (mkdir(base, 0755) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create cgroup parent %s", base);
    if (v2_prepare_parent(base, err) < 0)
        return -1;
    cg->version = 2;
    return join_path(cg->v2, sizeof(cg->v2), base, name, err);
}

static int plan_v1(sbx_cgroup *cg, const cgroup_layout *layout, const char *parent,
                   const char *name, hks_error *err)
{
    char *dirs[4] = {cg->memory, cg->pids, cg->cpu, cg->cpuacct};
    cg->version = 1;
    for (int i = 0; i < 4; i++) {
        if (!layout->v1_mount[i][0])
            continue;
        /* cpu and cpuacct are often one hierarchy ("cpu,cpuacct") */
        if (i == V1_CPUACCT &&
            strcmp(layout->v1_mount[V1_CPU], layout->v1_mount[V1_CPUACCT]) == 0) {
            snprintf(cg->cpuacct, sizeof(cg->cpuacct), "%s", cg->cpu);
            continue;
        }
        char base[PATH_MAX];
        if (parent_dir(layout, layout->v1_mount[i], v1_names[i], parent, base, sizeof(base), err) <
                0 ||
            join_path(dirs[i], PATH_MAX, base, name, err) < 0)
            return -1;
    }
    return 0;
}

/* v1 wants memory.memsw.limit_in_bytes >= memory.limit_in_bytes at every moment: raise memsw
 * first when the limit grows, lower the limit first when it shrinks. memsw exists only with
 * swap accounting; swappiness 0 covers the rest. */
static int set_v1_memory(const sbx_cgroup *cg, uint64_t bytes, hks_error *err)
{
    char value[32];
    snprintf(value, sizeof(value), "%llu", (unsigned long long)bytes);
    bool growing = bytes > read_u64(cg->memory, "memory.limit_in_bytes", NULL);
    if (growing && write_control(cg->memory, "memory.memsw.limit_in_bytes", value, true, err) < 0)
        return -1;
    if (write_control(cg->memory, "memory.limit_in_bytes", value, false, err) < 0)
        return -1;
    if (!growing && write_control(cg->memory, "memory.memsw.limit_in_bytes", value, true, err) < 0)
        return -1;
    return 0;
}

int sbx_cgroup_change_limits(const sbx_cgroup *cg, const sbx_limits *old, const sbx_limits *l,
                             hks_error *err)
{
    char memory[32], pids[32], quota[48];
    snprintf(memory, sizeof(memory), "%llu", (unsigned long long)l->memory_bytes);
    snprintf(pids, sizeof(pids), "%llu", (unsigned long long)l->pids);
    bool all = !old;
    bool new_memory = all || old->memory_bytes != l->memory_bytes;
    bool new_pids = all || old->pids != l->pids;
    bool new_cpu = all || old->cpu_millis != l->cpu_millis;
    if (cg->version == 2) {
        snprintf(quota, sizeof(quota), "%llu 100000", (unsigned long long)l->cpu_millis * 100ULL);
        if ((new_memory && write_control(cg->v2, "memory.max", memory, false, err) < 0) ||
            (new_pids && write_control(cg->v2, "pids.max", pids, false, err) < 0) ||
            (new_cpu && write_control(cg->v2, "cpu.max", quota, false, err) < 0))
            return -1;
        return 0;
    }
    if (cg->version == 1) {
        snprintf(quota, sizeof(quota), "%llu", (unsigned long long)l->cpu_millis * 100ULL);
        if ((new_memory && set_v1_memory(cg, l->memory_bytes, err) < 0) ||
            (new_pids && write_control(cg->pids, "pids.max", pids, false, err) < 0) ||
            (new_cpu && write_control(cg->cpu, "cpu.cfs_quota_us", quota, false, err) < 0))
            return -1;
    }
    return 0;
}

int sbx_cgroup_set_limits(const sbx_cgroup *cg, const sbx_limits *l, hks_error *err)
{
    return sbx_cgroup_change_limits(cg, NULL, l, err);
}

int sbx_cgroup_make(const sbx_cgroup *cg, const sbx_limits *l, hks_error *err)
{
    if (cg->version == 2) {
        if (make_dir(cg->v2, err) < 0 ||
            write_control(cg->v2, "memory.swap.max", "0", true, err) < 0 ||
            write_control(cg->v2, "memory.oom.group", "1", true, err) < 0)
            return -1;
        return sbx_cgroup_set_limits(cg, l, err);
    }
    const char *dirs[4] = {cg->memory, cg->pids, cg->cpu, cg->cpuacct};
    for (int i = 0; i < 4; i++) {
        if (dirs[i][0] && (i != V1_CPUACCT || strcmp(cg->cpuacct, cg->cpu) != 0) &&
            make_dir(dirs[i], err) < 0)
            return -1;
    }
    if (write_control(cg->memory, "memory.swappiness", "0", true, err) < 0 ||
        write_control(cg->cpu, "cpu.cfs_period_us", "100000", false, err) < 0)
        return -1;
    return sbx_cgroup_set_limits(cg, l, err);
}

int sbx_cgroup_plan(sbx_cgroup *cg, const char *parent, hks_error *err)
{
    memset(cg, 0, sizeof(*cg));
    static cgroup_layout layout;
    static bool detected;
    if (!detected) {
        if (detect_layout(&layout, err) < 0)
            return -1;
        detected = true;
    }
    char name[96];
    unique_name(name, sizeof(name));
    return layout.version == 2 ? plan_v2(cg, &layout, parent, name, err)
                               : plan_v1(cg, &layout, parent, name, err);
}

int sbx_cgroup_create(sbx_cgroup *cg, const char *parent, const sbx_limits *limits, hks_error *err)
{
    if (sbx_cgroup_plan(cg, parent, err) < 0 || sbx_cgroup_make(cg, limits, err) < 0) {
        hks_error ignored;
        sbx_cgroup_destroy(cg, &ignored);
        return -1;
    }
    return 0;
}

int sbx_cgroup_open_fd(const sbx_cgroup *cg, hks_error *err)
{
    if (cg->version != 2)
        return -1;
    int fd = open(cg->v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return hks_fail(err, errno, "open cgroup %s", cg->v2);
    return fd;
}

int sbx_cgroup_attach(const sbx_cgroup *cg, pid_t pid, hks_error *err)
{
    char value[32];
    snprintf(value, sizeof(value), "%d", (int)pid);
    const char *dirs[] = {cg->memory, cg->pids, cg->cpu, cg->cpuacct};
    for (size_t i = 0; i < HKS_ARRAY_LEN(dirs); i++) {
        if (dirs[i][0] && (i != V1_CPUACCT || strcmp(dirs[i], cg->cpu) != 0) &&
            write_control(dirs[i], "cgroup.procs", value, false, err) < 0)
            return -1;
    }
    return 0;
}

int sbx_cgroup_cpu_usage_us(const sbx_cgroup *cg, uint64_t *usage_us)
{
    if (cg->version == 2) {
        *usage_us = read_u64(cg->v2, "cpu.stat", "usage_usec");
        return 0;
    }
    if (cg->version == 1 && cg->cpuacct[0]) {
        *usage_us = read_u64(cg->cpuacct, "cpuacct.usage", NULL) / 1000;
        return 0;
    }
    return -1;
}

uint64_t sbx_cgroup_memory_peak(const sbx_cgroup *cg)
{
    if (cg->version == 2)
        return read_u64(cg->v2, "memory.peak", NULL);
    if (cg->version == 1)
        return read_u64(cg->memory, "memory.max_usage_in_bytes", NULL);
    return 0;
}

uint64_t sbx_cgroup_oom_kills(const sbx_cgroup *cg)
{
    if (cg->version == 2)
        return read_u64(cg->v2, "memory.events", "oom_kill");
    if (cg->version == 1)
        return read_u64(cg->memory, "memory.oom_control", "oom_kill");
    return 0;
}

const char *sbx_cgroup_version_name(const sbx_cgroup *cg)
{
    return cg->version == 2 ? "v2" : cg->version == 1 ? "v1" : "none";
}

static void kill_procs(const char *dir)
{
    char path[PATH_MAX + 32], buf[8192];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if (hks_read_file(path, buf, sizeof(buf), NULL) <= 0)
        return;
    for (char *p = buf; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
        p = end + (*end == '\n');
    }
}

/* rmdir fails with EBUSY while killed tasks are still exiting; retry for a bounded time. */
static int remove_dir(const char *dir, hks_error *err)
{
    if (!dir[0])
        return 0;
    for (int attempt = 0; attempt < 200; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return hks_fail(err, errno, "remove cgroup %s", dir);
        kill_procs(dir);
        struct timespec ts = {.tv_nsec = 5L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return hks_fail(err, EBUSY, "remove cgroup %s", dir);
}

int sbx_cgroup_destroy(sbx_cgroup *cg, hks_error *err)
{
    int rc = 0;
    if (cg->version == 2 && cg->v2[0]) {
        hks_error ignored;
        if (write_control(cg->v2, "cgroup.kill", "1", true, &ignored) < 0)
            kill_procs(cg->v2);
        rc = remove_dir(cg->v2, err);
    } else if (cg->version == 1) {
        char *dirs[] = {cg->memory, cg->pids, cg->cpu, cg->cpuacct};
        for (size_t i = 0; i < HKS_ARRAY_LEN(dirs); i++) {
            if (i == V1_CPUACCT && strcmp(cg->cpuacct, cg->cpu) == 0)
                continue;
            kill_procs(dirs[i]);
            if (remove_dir(dirs[i], err) < 0)
                rc = -1;
        }
    }
    memset(cg, 0, sizeof(*cg));
    return rc;
}

/* Remove hks-<pid>-* cgroups whose creating process is gone. */
static int sweep_dir(const char *base, int *removed, hks_error *err)
{
    cleanup_dir DIR *d = opendir(base);
    if (!d)
        return errno == ENOENT ? 0 : hks_fail(err, errno, "open %s", base);
    struct dirent *e;
    while ((e = readdir(d))) {
        int owner = 0;
        if (strncmp(e->d_name, CGROUP_NAME_PREFIX, strlen(CGROUP_NAME_PREFIX)) != 0 ||
            sscanf(e->d_name + strlen(CGROUP_NAME_PREFIX), "%d-", &owner) != 1 || owner <= 0)
            continue;
        if (kill(owner, 0) == 0 || errno != ESRCH)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        kill_procs(path);
        if (remove_dir(path, err) == 0)
            (*removed)++;
    }
    return 0;
}

int sbx_cgroup_sweep(const char *cgroup_parent, hks_error *err)
{
    cgroup_layout layout;
    if (detect_layout(&layout, err) < 0)
        return -1;
    int removed = 0;
    char base[PATH_MAX];
    if (layout.version == 2) {
        if (parent_dir(&layout, layout.v2_root, "", cgroup_parent, base, sizeof(base), err) < 0 ||
            sweep_dir(base, &removed, err) < 0)
            return -1;
        return removed;
    }
    for (int i = 0; i < 4; i++) {
        if (!layout.v1_mount[i][0])
            continue;
        if (parent_dir(&layout, layout.v1_mount[i], v1_names[i], cgroup_parent, base, sizeof(base),
                       err) < 0 ||
            sweep_dir(base, &removed, err) < 0)
            return -1;
    }
    return removed;
}
