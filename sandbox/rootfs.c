/* The sandbox's root file system, built inside the child's new mount namespace:
 *   private propagation -> clone every bind source (before anything can cover it, and with the
 *   creator's access to host paths, before it becomes the sandbox user) -> a tmpfs root ->
 * read-only runtime binds, /code and extra binds -> fresh /proc, minimal /dev, size-limited /tmp
 * and /dev/shm, generated /etc files -> the root made read-only -> pivot_root, old root detached.
 * Nothing of the host is visible afterwards but the binds. */
#include "internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Where the new root is assembled: an existing directory of every host; what it covered in our
 * private mount namespace does not matter because sources are cloned before. */
#define STAGING "/tmp"
void sbx_rootfs_release(sbx_rootfs *list)
{
    for (size_t i = 0; i < list->n; i++) {
        if (list->items[i].tree_fd >= 0)
            close(list->items[i].tree_fd);
    }
}

static int clone_source(sbx_rootfs *list, const char *source, const char *target, unsigned attr,
                        bool follow_runtime_symlink, hks_error *err)
{
    if (list->n >= SBX_MAX_BINDS)
        return hks_fail(err, 0, "more than %d binds", SBX_MAX_BINDS);
    if (target[0] != '/' || strstr(target, "..") || strlen(target) >= PATH_MAX - 16)
        return hks_fail(err, 0, "bind target %s must be an absolute path without '..'", target);
    sbx_rootfs_bind *b = &list->items[list->n];
    memset(b, 0, sizeof(*b));
    b->tree_fd = -1;
    b->target = target;
    struct stat st;
    if (lstat(source, &st) < 0)
        return hks_fail(err, errno, "bind source %s", source);
    if (S_ISLNK(st.st_mode) && follow_runtime_symlink) {
        ssize_t n = readlink(source, b->symlink, sizeof(b->symlink) - 1);
        if (n < 0)
            return hks_fail(err, errno, "readlink %s", source);
        if ((size_t)n >= sizeof(b->symlink) - 1)
            return hks_fail(err, ENAMETOOLONG, "readlink %s", source);
        b->symlink[n] = '\0';
        list->n++;
        return 0;
    }
    int fd = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return hks_fail(err, errno, "clone mount of %s", source);
    b->tree_fd = fd;
    list->n++;
    struct mount_attr ma = {.attr_set = attr};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof(ma)) < 0)
        return hks_fail(err, errno, "make the bind of %s read-only/nosuid", source);
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "stat %s", source);
    b->is_dir = S_ISDIR(st.st_mode);
    return 0;
}

/* mkdir -p below the staging root; we created everything there, so no component is a link of
 * the sandbox's making. The last component is a file when make_file. */
static int make_path(const char *inside, bool make_file, hks_error *err)
{
    char path[PATH_MAX + sizeof(STAGING)];
    int n = snprintf(path, sizeof(path), STAGING "%s", inside);
    if (n < 0 || (size_t)n >= sizeof(path))
        return hks_fail(err, ENAMETOOLONG, "path %s", inside);
    for (char *p = path + strlen(STAGING) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return hks_fail(err, errno, "create %s", path + strlen(STAGING));
        *p = '/';
    }
    if (make_file) {
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return hks_fail(err, errno, "create %s", inside);
        close(fd);
    } else if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        return hks_fail(err, errno, "create %s", inside);
    }
    return 0;
}

static int attach_binds(sbx_rootfs *list, hks_error *err)
{
    for (size_t i = 0; i < list->n; i++) {
        sbx_rootfs_bind *b = &list->items[i];
        char path[PATH_MAX + sizeof(STAGING)];
        snprintf(path, sizeof(path), STAGING "%s", b->target);
        if (b->symlink[0]) {
            if (symlink(b->symlink, path) < 0)
                return hks_fail(err, errno, "symlink %s -> %s", b->target, b->symlink);
            continue;
        }
        if (make_path(b->target, !b->is_dir, err) < 0)
            return -1;
        if (move_mount(b->tree_fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return hks_fail(err, errno, "attach the bind at %s", b->target);
        close(b->tree_fd);
        b->tree_fd = -1;
    }
    return 0;
}

static int mount_fs(const char *type, const char *inside, unsigned long flags, const char *options,
                    hks_error *err)
{
    char path[PATH_MAX + sizeof(STAGING)];
    snprintf(path, sizeof(path), STAGING "%s", inside);
    if (make_path(inside, false, err) < 0)
        return -1;
    if (mount(type, path, type, flags, options) < 0)
        return hks_fail(err, errno, "mount %s on %s (%s)", type, inside, options ? options : "");
    return 0;
}

static int write_inside(const char *inside, const char *content, hks_error *err)
{
    char path[PATH_MAX + sizeof(STAGING)];
    snprintf(path, sizeof(path), STAGING "%s", inside);
    cleanup_fd int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || hks_write_all(fd, content, strlen(content)) < 0)
        return hks_fail(err, errno, "write %s", inside);
    return 0;
}

static int make_dev(const sbx_config *cfg, hks_error *err)
{
    char options[64];
    if (mount_fs("tmpfs", "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64", err) <
        0)
        return -1;
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(links); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), STAGING "%s", links[i][1]);
        if (symlink(links[i][0], path) < 0)
            return hks_fail(err, errno, "symlink %s", links[i][1]);
    }
    snprintf(options, sizeof(options), "mode=1777,size=%llu,nr_inodes=1024",
             (unsigned long long)cfg->limits.shm_bytes);
    return mount_fs("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, options, err);
}

static int write_etc(hks_error *err)
{
    if (make_path("/etc", false, err) < 0)
        return -1;
    return write_inside("/etc/passwd",
                        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                        "sandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                        err) < 0 ||
                   write_inside("/etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n",
                                err) < 0 ||
                   write_inside("/etc/hosts",
                                "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n",
                                err) < 0
               ? -1
               : 0;
}

static int pivot_into_staging(hks_error *err)
{
    /* The root tmpfs is finished: nothing in it may change from now on. */
    if (mount(NULL, STAGING, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
        0)
        return hks_fail(err, errno, "make the new root read-only");
    if (chdir(STAGING) < 0)
        return hks_fail(err, errno, "chdir to the new root");
    /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
     * the new root, without a directory to hold the old one. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return hks_fail(err, errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return hks_fail(err, errno, "detach the old root");
    if (chdir("/") < 0)
        return hks_fail(err, errno, "chdir /");
    return 0;
}

static int clone_all_sources(const sbx_config *cfg, sbx_rootfs *binds, hks_error *err)
{
    static const char *const runtime[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                          "/lib64", "/lib32", "/libx32"};
    const unsigned ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    for (size_t i = 0; i < HKS_ARRAY_LEN(runtime); i++) {
        if (access(runtime[i], F_OK) < 0 && errno == ENOENT)
            continue;
        if (clone_source(binds, runtime[i], runtime[i], ro, true, err) < 0)
            return -1;
    }
    /* Debian's alternatives links (awk, which, ...) and the loader's cache live under /etc. */
    static const char *const runtime_etc[] = {"/etc/alternatives", "/etc/ld.so.cache"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(runtime_etc); i++) {
        if (access(runtime_etc[i], F_OK) == 0 &&
            clone_source(binds, runtime_etc[i], runtime_etc[i], ro, false, err) < 0)
            return -1;
    }
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(devices); i++) {
        if (clone_source(binds, devices[i], devices[i], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                         false, err) < 0)
            return -1;
    }
    if (cfg->network) {
        static const char *const net_files[] = {"/etc/resolv.conf", "/etc/ssl",
                                                "/etc/nsswitch.conf"};
        for (size_t i = 0; i < HKS_ARRAY_LEN(net_files); i++) {
            if (access(net_files[i], F_OK) == 0 &&
                clone_source(binds, net_files[i], net_files[i], ro, false, err) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const sbx_mount *m = &cfg->mounts[i];
        unsigned attr =
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m->writable ? 0 : MOUNT_ATTR_RDONLY);
        if (clone_source(binds, m->source, m->target, attr, false, err) < 0)
            return -1;
    }
    return 0;
}

int sbx_rootfs_prepare(const sbx_config *cfg, sbx_rootfs *fs, hks_error *err)
{
    fs->n = 0; /* the items are filled as they are used: no need to touch all of them */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return hks_fail(err, errno, "make mounts private");
    return clone_all_sources(cfg, fs, err);
}

int sbx_rootfs_enter(const sbx_config *cfg, sbx_rootfs *fs, hks_error *err)
{
    int rc = 0;
    if (mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=256") <
        0)
        rc = hks_fail(err, errno, "mount the root tmpfs");
    /* file systems that binds may land in come first */
    if (rc == 0)
        rc = make_dev(cfg, err);
    char options[128];
    snprintf(options, sizeof(options), "mode=1777,size=%llu,nr_inodes=%llu",
             (unsigned long long)cfg->limits.tmpfs_bytes,
             (unsigned long long)cfg->limits.tmpfs_bytes / 4096ULL + 64ULL);
    if (rc == 0)
        rc = mount_fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, options, err);
    if (rc == 0)
        rc = attach_binds(fs, err);
    sbx_rootfs_release(fs);
    if (rc < 0)
        return -1;

    if (mount_fs("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible,subset=pid",
                 err) < 0)
        return -1;
    if (write_etc(err) < 0)
        return -1;
    return pivot_into_staging(err);
}
