/* Compiled seccomp programs kept on disk, so a one-shot `hks-sandbox` does not pay libseccomp's
 * compilation (about 3 ms for the default profile) on every run, the way crun caches its BPF.
 * A cache entry is as trusted as the directory it is in: only one owned by the caller and not
 * writable by anyone else is used. An entry holds the whole profile text it was compiled from and
 * is used only when that text matches byte for byte, so the file name is a plain hash and the
 * one-shot path needs no cryptographic library (OpenSSL's start-up alone costs more than the
 * compilation it would save). */
#include "internal.h"

#include <fcntl.h>
#include <seccomp.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_MAGIC "HKSBPF03"

/* followed by the profile text, the build description and the program */
typedef struct cache_header {
    char magic[8];
    uint32_t flags;
    uint32_t n_insns;
    uint32_t text_len;
    uint32_t build_len;
    uint64_t program_hash; /* FNV-1a of the program: a damaged entry is recompiled */
} cache_header;

/* What else the program depends on: the network variant, libseccomp and the architecture. */
static int describe_build(bool allow_inet, char *out, size_t size)
{
    const struct scmp_version *v = seccomp_version();
    return snprintf(out, size, "inet=%d libseccomp=%u.%u.%u arch=%u", allow_inet, v ? v->major : 0,
                    v ? v->minor : 0, v ? v->micro : 0, seccomp_arch_native());
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

/* FNV-1a, 64 bits: names entries and detects damage; it proves nothing against someone who can
 * write the cache, and needs not to, since only the caller can. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool trusted(const struct stat *st)
{
    return st->st_uid == geteuid() && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* mkdir -p with 0700, then open it if it can be trusted. */
static int open_cache_dir(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path) || path[0] != '/')
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !trusted(&st))) {
        close(fd);
        return -1;
    }
    return fd;
}

static sbx_profile *read_entry(int dir_fd, const char *name, const char *text, size_t text_len,
                               const char *build, size_t build_len)
{
    cleanup_fd int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    cache_header h;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !trusted(&st) ||
        pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        memcmp(h.magic, CACHE_MAGIC, sizeof(h.magic)) != 0 || h.n_insns == 0 ||
        h.n_insns > BPF_MAXINSNS || h.text_len != text_len || h.build_len != build_len ||
        st.st_size !=
            (off_t)(sizeof(h) + text_len + build_len + h.n_insns * sizeof(struct sock_filter)))
        return NULL;
    cleanup_free char *stored = malloc(text_len + build_len + 1);
    if (!stored ||
        pread(fd, stored, text_len + build_len, sizeof(h)) != (ssize_t)(text_len + build_len) ||
        memcmp(stored, text, text_len) != 0 || memcmp(stored + text_len, build, build_len) != 0)
        return NULL;
    sbx_profile *p = calloc(1, sizeof(*p));
    size_t bytes = h.n_insns * sizeof(struct sock_filter);
    off_t at = (off_t)(sizeof(h) + text_len + build_len);
    if (!p || !(p->insns = malloc(bytes)) || pread(fd, p->insns, bytes, at) != (ssize_t)bytes) {
        sbx_profile_free(p);
        return NULL;
    }
    p->n_insns = h.n_insns;
    p->flags = h.flags;
    if (fnv1a(FNV_OFFSET, p->insns, bytes) != h.program_hash) {
        sbx_profile_free(p);
        return NULL;
    }
    return p;
}

/* Write to a private temporary name, then rename: readers see a whole entry or none. */
static void write_entry(int dir_fd, const char *name, const char *text, size_t text_len,
                        const char *build, size_t build_len, const sbx_profile *p)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", name, (int)getpid());
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    cache_header h = {.flags = p->flags,
                      .n_insns = (uint32_t)p->n_insns,
                      .text_len = (uint32_t)text_len,
                      .build_len = (uint32_t)build_len,
                      .program_hash =
                          fnv1a(FNV_OFFSET, p->insns, p->n_insns * sizeof(struct sock_filter))};
    memcpy(h.magic, CACHE_MAGIC, sizeof(h.magic));
    bool ok = hks_write_all(fd, &h, sizeof(h)) == 0 && hks_write_all(fd, text, text_len) == 0 &&
              hks_write_all(fd, build, build_len) == 0 &&
              hks_write_all(fd, p->insns, p->n_insns * sizeof(struct sock_filter)) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(dir_fd, tmp, dir_fd, name) < 0)
        unlinkat(dir_fd, tmp, 0);
}

int sbx_profile_load_cached(const char *path, bool allow_inet, const char *cache_dir,
                            sbx_profile **out, hks_error *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (sbx_profile_read_file(path, &text, &len, err) < 0)
        return -1;
    char build[128], name[64];
    size_t build_len = (size_t)describe_build(allow_inet, build, sizeof(build));
    uint64_t hash = fnv1a(fnv1a(FNV_OFFSET, text, len), build, build_len);
    snprintf(name, sizeof(name), "%016llx.bpf", (unsigned long long)hash);
    cleanup_fd int dir_fd = cache_dir ? open_cache_dir(cache_dir) : -1;
    if (dir_fd >= 0 && (*out = read_entry(dir_fd, name, text, len, build, build_len)))
        return 0;
    if (sbx_profile_load_text(text, len, path, allow_inet, out, err) < 0)
        return -1;
    if (dir_fd >= 0)
        write_entry(dir_fd, name, text, len, build, build_len, *out);
    return 0;
}
