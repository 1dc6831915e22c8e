/* libFuzzer target: uploaded archives (deploy-function's "archive"), extracted into a fresh
 * directory each time. Whatever is accepted must hold the invariants the daemon relies on: only
 * files, directories and symlinks, normalised modes, caps kept, nothing outside the directory and
 * no symlink resolving outside it; whatever is refused must leave the directory empty. */
#include "builder/builder.h"

#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char top[64];   /* the fuzzer's own directory: only dest may appear in it */
static char dest[128]; /* top/dest, made and removed for every input */
static char real_dest[PATH_MAX];
static bld_extract_limits limits;
static uint64_t file_bytes;

static void remove_dirs(void)
{
    rmdir(dest);
    rmdir(top);
}

static void setup(void)
{
    snprintf(top, sizeof(top), "/tmp/hks-fuzz-extract-XXXXXX");
    if (!mkdtemp(top))
        __builtin_trap();
    snprintf(dest, sizeof(dest), "%s/dest", top);
    if (mkdir(dest, 0700) < 0 || !realpath(dest, real_dest))
        __builtin_trap();
    atexit(remove_dirs);
    /* small caps: fast runs, and the caps themselves get exercised */
    bld_extract_limits_default(&limits);
    limits.max_entries = 64;
    limits.max_total_bytes = 1 << 20;
    limits.max_entry_bytes = 256 << 10;
    limits.max_depth = 8;
}

static int entries_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        __builtin_trap();
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static bool inside(const char *resolved)
{
    size_t n = strlen(real_dest);
    return strncmp(resolved, real_dest, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/');
}

static int check_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    if (ftw->level == 0)
        return 0;
    mode_t perm = st->st_mode & 07777;
    if (S_ISREG(st->st_mode)) {
        if ((perm != 0644 && perm != 0755) || (uint64_t)st->st_size > limits.max_entry_bytes)
            __builtin_trap();
        file_bytes += (uint64_t)st->st_size;
    } else if (S_ISDIR(st->st_mode)) {
        if (perm != 0755)
            __builtin_trap();
    } else if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0 || target[0] == '/')
            __builtin_trap();
        /* wherever it leads, when it leads somewhere, is inside */
        char resolved[PATH_MAX];
        if (realpath(path, resolved) && !inside(resolved))
            __builtin_trap();
    } else {
        __builtin_trap();
    }
    if ((unsigned)ftw->level > limits.max_depth)
        __builtin_trap();
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    return ftw->level == 0 ? 0 : remove(path);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!top[0])
        setup();
    hks_error err = {0};
    bld_extract_stats stats;
    int rc = bld_extract_archive(data, size, dest, &limits, &stats, &err);
    if (entries_in(top) != 1)
        __builtin_trap();
    if (rc < 0) {
        if (entries_in(dest) != 0 || !err.msg[0] || stats.files || stats.bytes)
            __builtin_trap();
        return 0;
    }
    if (stats.bytes > limits.max_total_bytes ||
        stats.files + stats.dirs + stats.links > limits.max_entries)
        __builtin_trap();
    file_bytes = 0;
    if (nftw(dest, check_one, 16, FTW_PHYS) != 0)
        __builtin_trap();
    /* hardlinks count once in stats.bytes but once per name here */
    if (stats.links == 0 && file_bytes != stats.bytes)
        __builtin_trap();
    if (nftw(dest, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 || entries_in(dest) != 0)
        __builtin_trap();
    return 0;
}
