/* The user's files, written by the host into a directory the sandbox sees read-only at /code.
 * Names come from API callers: every component is checked, every step is fd-relative and refuses
 * links, so no name can reach outside the directory. */
#include "runtimes.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_NAME_BYTES 1024
#define MAX_DEPTH      16

bool rt_safe_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MAX_NAME_BYTES || name[0] == '/')
        return false;
    int depth = 0;
    for (const char *p = name; *p;) {
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
            n > 255 || ++depth > MAX_DEPTH)
            return false;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return false; /* trailing slash: not a file */
    }
    return true;
}

/* Open (creating) the directory holding name's last component; returns an fd or -1. */
static int open_parent(int root, const char *name, const char **base, hks_error *err)
{
    int dir = dup(root);
    if (dir < 0)
        return hks_fail(err, errno, "dup");
    const char *p = name;
    for (const char *slash; (slash = strchr(p, '/'));) {
        char part[256];
        snprintf(part, sizeof(part), "%.*s", (int)(slash - p), p);
        if (mkdirat(dir, part, 0755) < 0 && errno != EEXIST) {
            int saved = errno;
            close(dir);
            return hks_fail(err, saved, "create directory for %s", name);
        }
        int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(dir);
        if (next < 0)
            return hks_fail(err, saved, "open directory for %s", name);
        dir = next;
        p = slash + 1;
    }
    *base = p;
    return dir;
}

int rt_write_files(const char *dir, const rt_file *files, size_t n_files, hks_error *err)
{
    if (n_files > RT_MAX_FILES)
        return hks_fail(err, 0, "%zu files: at most %u", n_files, RT_MAX_FILES);
    size_t total = 0;
    for (size_t i = 0; i < n_files; i++) {
        if (!rt_safe_name(files[i].name))
            return hks_fail(err, 0, "file name '%s' is not a relative path inside /code",
                            files[i].name ? files[i].name : "");
        if (files[i].len > RT_MAX_FILE_BYTES)
            return hks_fail(err, 0, "file %s has %zu bytes: at most %u", files[i].name,
                            files[i].len, RT_MAX_FILE_BYTES);
        total += files[i].len;
    }
    if (total > RT_MAX_TOTAL_BYTES)
        return hks_fail(err, 0, "files total %zu bytes: at most %u", total, RT_MAX_TOTAL_BYTES);

    cleanup_fd int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0)
        return hks_fail(err, errno, "open %s", dir);
    for (size_t i = 0; i < n_files; i++) {
        const char *base = NULL;
        cleanup_fd int parent = open_parent(root, files[i].name, &base, err);
        if (parent < 0 || !base)
            return -1;
        cleanup_fd int fd =
            openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return hks_fail(err, errno, errno == EEXIST ? "file %s given twice" : "create %s",
                            files[i].name);
        if (hks_write_all(fd, files[i].data, files[i].len) < 0)
            return hks_fail(err, errno, "write %s", files[i].name);
    }
    return 0;
}

int rt_remove_tree(const char *dir, hks_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : hks_fail(err, errno, "open %s", dir);
    if (hks_remove_below(fd, err) < 0)
        return hks_wrap(err, "empty %s", dir);
    if (rmdir(dir) < 0)
        return hks_fail(err, errno, "remove %s", dir);
    return 0;
}
