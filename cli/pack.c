#include "cli/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

typedef struct packer {
    struct archive *a;
    cli_pack_stats *stats;
    cli_error *err;
} packer;

bool cli_pack_skipped_name(const char *name)
{
    static const char *const skipped[] = {".git", "node_modules", "__pycache__", ".venv", ".hks"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(skipped); i++)
        if (strcmp(name, skipped[i]) == 0)
            return true;
    return false;
}

static la_ssize_t on_write(struct archive *a, void *arg, const void *data, size_t len)
{
    if (cli_buf_append(arg, data, len) < 0) {
        archive_set_error(a, ENOMEM, "out of memory");
        return -1;
    }
    return (la_ssize_t)len;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The sorted names of a directory (fd consumed). */
static int list_dir(int fd, const char *rel, char ***out, size_t *count, cli_error *err)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return cli_fail(err, errno, "read %s", rel);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool oom = false;
    for (struct dirent *e; !oom && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, grown_cap * sizeof(char *));
            if (!grown) {
                oom = true;
                break;
            }
            names = grown;
            cap = grown_cap;
        }
        if (!(names[n] = strdup(e->d_name)))
            oom = true;
        else
            n++;
    }
    closedir(d);
    if (oom) {
        free_names(names, n);
        return cli_fail(err, ENOMEM, "read %s", rel);
    }
    if (n)
        qsort(names, n, sizeof(char *), compare_names);
    *out = names;
    *count = n;
    return 0;
}

static int add_entry(packer *pk, const char *path, const struct stat *st, const char *target,
                     int fd)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return cli_fail(pk->err, ENOMEM, "pack %s", path);
    archive_entry_set_pathname(e, path);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (S_ISDIR(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
    } else if (S_ISLNK(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, 0777);
        archive_entry_set_symlink(e, target);
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, (st->st_mode & 0111) ? 0755 : 0644);
        archive_entry_set_size(e, st->st_size);
    }
    int rc = archive_write_header(pk->a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
        return cli_fail(pk->err, 0, "pack %s: %s", path, archive_error_string(pk->a));
    if (fd < 0)
        return 0;
    char buf[65536];
    long long left = (long long)st->st_size;
    while (left > 0) {
        ssize_t n = read(fd, buf, sizeof(buf) < (size_t)left ? sizeof(buf) : (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cli_fail(pk->err, n < 0 ? errno : 0, "read %s%s", path,
                            n == 0 ? ": the file shrank while being packed" : "");
        if (archive_write_data(pk->a, buf, (size_t)n) != n)
            return cli_fail(pk->err, 0, "pack %s: %s", path, archive_error_string(pk->a));
        left -= n;
    }
    return 0;
}

static int pack_tree(packer *pk, int dir_fd, const char *rel, int depth)
{
    if (depth >= CLI_PACK_MAX_DEPTH) {
        cli_fail(pk->err, 0, "%s is nested deeper than %d directories", rel, CLI_PACK_MAX_DEPTH);
        cli_hint(pk->err, "hksd refuses deeper trees; flatten it or leave it out");
        return -1;
    }
    int fd_copy = dup(dir_fd);
    if (fd_copy < 0)
        return cli_fail(pk->err, errno, "read %s", rel);
    char **names = NULL;
    size_t n = 0;
    if (list_dir(fd_copy, rel[0] ? rel : ".", &names, &n, pk->err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = names[i];
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", name) >=
            sizeof(path)) {
            rc = cli_fail(pk->err, ENAMETOOLONG, "pack %s/%s", rel, name);
            break;
        }
        struct stat st;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = cli_fail(pk->err, errno, "stat %s", path);
            break;
        }
        if (S_ISDIR(st.st_mode) && cli_pack_skipped_name(name)) {
            pk->stats->skipped++;
            continue;
        }
        size_t entries = pk->stats->files + pk->stats->dirs + pk->stats->links;
        if (entries >= CLI_PACK_MAX_ENTRIES) {
            rc = cli_fail(pk->err, 0, "the project has more than %d entries", CLI_PACK_MAX_ENTRIES);
            cli_hint(pk->err, "hksd refuses larger projects; leave out generated files");
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = cli_fail(pk->err, errno, "open %s", path);
                break;
            }
            pk->stats->dirs++;
            rc = add_entry(pk, path, &st, NULL, -1);
            if (rc == 0)
                rc = pack_tree(pk, sub, path, depth + 1);
            close(sub);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t len = readlinkat(dir_fd, name, target, sizeof(target) - 1);
            if (len < 0) {
                rc = cli_fail(pk->err, errno, "read the link %s", path);
                break;
            }
            target[len] = '\0';
            pk->stats->links++;
            rc = add_entry(pk, path, &st, target, -1);
        } else if (S_ISREG(st.st_mode)) {
            pk->stats->bytes += (unsigned long long)st.st_size;
            if (pk->stats->bytes > CLI_PACK_MAX_BYTES) {
                char total[32];
                cli_format_bytes(CLI_PACK_MAX_BYTES, total, sizeof(total));
                rc = cli_fail(pk->err, 0, "the project's files total more than %s (at %s)", total,
                              path);
                cli_hint(pk->err, "hksd refuses larger projects; leave out data and build output");
                break;
            }
            cleanup_fd int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = cli_fail(pk->err, errno, "open %s", path);
                break;
            }
            pk->stats->files++;
            rc = add_entry(pk, path, &st, NULL, fd);
        } else {
            pk->stats->skipped++;
            cli_warn("left out %s: not a regular file, directory or symlink", path);
        }
    }
    free_names(names, n);
    return rc;
}

int cli_pack_dir(const char *dir, cli_buf *out, cli_pack_stats *stats, cli_error *err)
{
    *stats = (cli_pack_stats){0};
    cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(err, errno, "open %s", dir);
    struct archive *a = archive_write_new();
    if (!a)
        return cli_fail(err, ENOMEM, "pack %s", dir);
    packer pk = {.a = a, .stats = stats, .err = err};
    int rc = 0;
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_options(a, "gzip:!timestamp") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, out, NULL, on_write, NULL) != ARCHIVE_OK) {
        rc = cli_fail(err, 0, "pack %s: %s", dir, archive_error_string(a));
    } else {
        rc = pack_tree(&pk, fd, "", 0);
        if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
            rc = cli_fail(err, 0, "pack %s: %s", dir, archive_error_string(a));
    }
    archive_write_free(a);
    return rc;
}
