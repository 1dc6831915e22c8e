/* Deterministic tar.gz archives of directories, for build contexts and image layers.
 *
 * Determinism comes from what is left out as much as from what is written: entries are made
 * here, not by archive_read_disk (which would bring owners, times, xattrs and ACLs); the order is
 * a byte-wise sort of the names, not readdir's; modes are normalised so that the umask and the
 * way files were created do not matter; the gzip header gets neither a name nor a timestamp
 * (libarchive writes time(NULL) unless told not to) and the compression level is pinned.
 *
 * One pass gives both digests an OCI layer needs: the tar writer's output is hashed (the
 * diff_id), then fed to a second libarchive writer that only gzips it ("raw" format), whose
 * output is hashed again (the layer digest) and written out. Nothing is held whole in memory
 * unless the caller asks for the gzip in memory.
 *
 * Files are opened by walking from a descriptor of their root with O_NOFOLLOW on every
 * component: a directory swapped for a symlink during a build cannot make us archive something
 * outside the tree. */
#include "build_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ENTRIES    100000
#define MAX_FILE_BYTES (1ULL << 30)
#define MAX_DEPTH      256
#define GZIP_LEVEL     "6"
#define READ_CHUNK     65536

/* ---- digests ---- */

static void format_digest(const unsigned char md[32], char out[72])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[BLD_DIGEST_LEN] = '\0';
}

static void md_freep(EVP_MD_CTX **ctx)
{
    EVP_MD_CTX_free(*ctx);
}

static EVP_MD_CTX *md_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int md_final(EVP_MD_CTX *ctx, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
        return -1;
    format_digest(md, out);
    return 0;
}

int bld_sha256(const void *data, size_t len, char out[72], hks_error *err)
{
    __attribute__((cleanup(md_freep))) EVP_MD_CTX *ctx = md_new();
    if (!ctx || EVP_DigestUpdate(ctx, data, len) != 1 || md_final(ctx, out) < 0)
        return hks_fail(err, 0, "sha256: OpenSSL failed");
    return 0;
}

bool bld_digest_parse(const char *digest, char hex[65])
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != BLD_DIGEST_LEN)
        return false;
    for (size_t i = 7; i < BLD_DIGEST_LEN; i++) {
        char c = digest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    memcpy(hex, digest + 7, 65);
    return true;
}

int bld_read_file_at(int dir, const char *name, int flags, size_t cap, char **data, size_t *len)
{
    cleanup_fd int fd = openat(dir, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    if ((uint64_t)st.st_size > cap) {
        errno = EFBIG;
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return -1;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO; /* EIO: it shrank while read */
            free(buf);
            errno = saved;
            return -1;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

/* ---- entries ---- */

void bld_entries_free(bld_entries *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].rel);
        free(l->v[i].target);
        free(l->v[i].data);
    }
    for (size_t i = 0; i < l->nroots; i++)
        free(l->roots[i]);
    free(l->v);
    free(l->roots);
    *l = (bld_entries){0};
}

static bld_entry *entry_new(bld_entries *l, char kind, const char *name, const char *origin,
                            hks_error *err)
{
    if (l->n >= MAX_ENTRIES) {
        hks_fail(err, 0, "%s: more than %d files and directories", origin, MAX_ENTRIES);
        return NULL;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        bld_entry *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            hks_fail(err, ENOMEM, "%s: list the files", origin);
            return NULL;
        }
        l->v = v;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        hks_fail(err, ENOMEM, "%s: list the files", origin);
        return NULL;
    }
    bld_entry *e = &l->v[l->n++];
    *e = (bld_entry){.name = copy, .kind = kind, .origin = origin, .root = -1};
    return e;
}

int bld_entries_add_dir(bld_entries *l, const char *name, const char *origin, hks_error *err)
{
    char *path = strdup(name);
    if (!path)
        return hks_fail(err, ENOMEM, "%s: list the files", origin);
    /* parents first: "hks", then "hks/runtime" */
    int rc = 0;
    for (char *slash = path; rc == 0 && (slash = strchr(slash, '/')); slash++) {
        *slash = '\0';
        rc = entry_new(l, 'd', path, origin, err) ? 0 : -1;
        *slash = '/';
    }
    if (rc == 0 && !entry_new(l, 'd', path, origin, err))
        rc = -1;
    free(path);
    return rc;
}

int bld_entries_add_data(bld_entries *l, const char *name, const void *data, size_t len,
                         mode_t perm, const char *origin, hks_error *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return hks_fail(err, ENOMEM, "%s: %s", origin, name);
    memcpy(copy, data, len);
    bld_entry *e = entry_new(l, 'm', name, origin, err);
    if (!e) {
        free(copy);
        return -1;
    }
    e->data = copy;
    e->len = len;
    e->perm = perm & 0111 ? 0755 : 0644;
    return 0;
}

typedef struct walker {
    bld_entries *l;
    const char *dir; /* the tree's root, for messages */
    const char *prefix;
    bool (*skip)(const char *rel, bool is_dir);
    const char *origin;
    int root; /* index in l->roots */
    hks_error *err;
} walker;

static char *join(const char *a, const char *b)
{
    char *out = NULL;
    if (asprintf(&out, "%s%s%s", a, *a && *b ? "/" : "", b) < 0)
        return NULL;
    return out;
}

static bool has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

static int walk(walker *w, int fd, const char *rel, unsigned depth);

static int walk_one(walker *w, int dirfd, const char *name, const char *rel, unsigned depth)
{
    cleanup_free char *child = join(rel, name);
    cleanup_free char *archived = child ? join(w->prefix, child) : NULL;
    if (!archived)
        return hks_fail(w->err, ENOMEM, "%s: list the files", w->origin);
    if (has_control(name)) /* not shown: it would garble the one-line message */
        return hks_fail(w->err, 0, "%s '%s/%s': a name in this directory has a control character",
                        w->origin, w->dir, rel);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return hks_fail(w->err, errno, "%s '%s/%s': stat", w->origin, w->dir, child);
    bool is_dir = S_ISDIR(st.st_mode);
    if (w->skip && w->skip(child, is_dir))
        return 0;
    if (is_dir) {
        if (depth + 1 > MAX_DEPTH)
            return hks_fail(w->err, 0, "%s '%s/%s': deeper than %d directories", w->origin, w->dir,
                            child, MAX_DEPTH);
        if (!entry_new(w->l, 'd', archived, w->origin, w->err))
            return -1;
        int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return hks_fail(w->err, errno, "%s '%s/%s': open", w->origin, w->dir, child);
        return walk(w, sub, child, depth + 1);
    }
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > MAX_FILE_BYTES - w->l->bytes)
            return hks_fail(w->err, EFBIG, "%s '%s': the files total more than %llu bytes",
                            w->origin, w->dir, (unsigned long long)MAX_FILE_BYTES);
        w->l->bytes += (uint64_t)st.st_size;
        bld_entry *e = entry_new(w->l, 'f', archived, w->origin, w->err);
        if (!e)
            return -1;
        e->root = w->root;
        e->rel = steal_pointer(&child);
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
        if (n < 0)
            return hks_fail(w->err, errno, "%s '%s/%s': readlink", w->origin, w->dir, child);
        target[n] = '\0';
        const char *why = bld_symlink_target_problem(target, depth + 1);
        if (why)
            return hks_fail(w->err, 0, "%s '%s/%s': %s", w->origin, w->dir, child, why);
        bld_entry *e = entry_new(w->l, 'l', archived, w->origin, w->err);
        if (!e)
            return -1;
        e->target = strdup(target);
        if (!e->target)
            return hks_fail(w->err, ENOMEM, "%s: list the files", w->origin);
        return 0;
    }
    return hks_fail(w->err, 0,
                    "%s '%s/%s': only files, directories and symlinks can be archived "
                    "(mode %06o)",
                    w->origin, w->dir, child, (unsigned)st.st_mode);
}

/* fd is consumed. */
static int walk(walker *w, int fd, const char *rel, unsigned depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int saved = errno;
        close(fd);
        return hks_fail(w->err, saved, "%s '%s/%s': opendir", w->origin, w->dir, rel);
    }
    __attribute__((cleanup(hks_closedirp))) DIR *dir = d;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (!e) {
            if (errno)
                return hks_fail(w->err, errno, "%s '%s/%s': readdir", w->origin, w->dir, rel);
            return 0;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (walk_one(w, dirfd(dir), e->d_name, rel, depth) < 0)
            return -1;
    }
}

int bld_entries_add_tree(bld_entries *l, const char *dir, const char *prefix,
                         bool (*skip)(const char *rel, bool is_dir), const char *origin,
                         hks_error *err)
{
    char **roots = realloc(l->roots, (l->nroots + 1) * sizeof(*roots));
    if (!roots)
        return hks_fail(err, ENOMEM, "%s: list the files", origin);
    l->roots = roots;
    if (!(roots[l->nroots] = strdup(dir)))
        return hks_fail(err, ENOMEM, "%s: list the files", origin);
    walker w = {.l = l,
                .dir = dir,
                .prefix = prefix,
                .skip = skip,
                .origin = origin,
                .root = (int)l->nroots++,
                .err = err};
    if (*prefix && bld_entries_add_dir(l, prefix, origin, err) < 0)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return hks_fail(err, errno, "%s: open directory %s", origin, dir);
    return walk(&w, fd, "", 0);
}

/* ---- the writer ---- */

typedef struct writer {
    struct archive *tar; /* pax restricted -> tar_out */
    struct archive *gz;  /* raw format, gzip filter -> gz_out */
    EVP_MD_CTX *tar_md, *gz_md;
    uint64_t tar_size, gz_size;
    int fd;
    unsigned char *mem;
    size_t mem_len, mem_cap;
    int *root_fds;
    char **root_names;
    size_t nroots;
    unsigned char *buf; /* READ_CHUNK bytes, files are read through it */
    char why[256];      /* a failure inside a callback, which libarchive may reword */
    hks_error *err;
} writer;

static void writer_release(writer *w)
{
    if (w->tar)
        archive_write_free(w->tar);
    if (w->gz)
        archive_write_free(w->gz);
    EVP_MD_CTX_free(w->tar_md);
    EVP_MD_CTX_free(w->gz_md);
    free(w->mem);
    free(w->buf);
    for (size_t i = 0; w->root_fds && i < w->nroots; i++) {
        if (w->root_fds[i] >= 0)
            close(w->root_fds[i]);
    }
    free(w->root_fds);
}

static la_ssize_t gz_out(struct archive *a, void *opaque, const void *buf, size_t n)
{
    writer *w = opaque;
    if (EVP_DigestUpdate(w->gz_md, buf, n) != 1) {
        snprintf(w->why, sizeof(w->why), "sha256 of the gzip: OpenSSL failed");
    } else if (w->fd >= 0) {
        if (hks_write_all(w->fd, buf, n) == 0) {
            w->gz_size += n;
            return (la_ssize_t)n;
        }
        snprintf(w->why, sizeof(w->why), "write: %s", strerror(errno));
    } else {
        if (n > w->mem_cap - w->mem_len) {
            size_t cap = (w->mem_len + n) * 2;
            unsigned char *mem = realloc(w->mem, cap);
            if (!mem) {
                snprintf(w->why, sizeof(w->why), "out of memory");
                archive_set_error(a, ENOMEM, "%s", w->why);
                return -1;
            }
            w->mem = mem;
            w->mem_cap = cap;
        }
        memcpy(w->mem + w->mem_len, buf, n);
        w->mem_len += n;
        w->gz_size += n;
        return (la_ssize_t)n;
    }
    archive_set_error(a, EIO, "%s", w->why);
    return -1;
}

static la_ssize_t tar_out(struct archive *a, void *opaque, const void *buf, size_t n)
{
    writer *w = opaque;
    if (EVP_DigestUpdate(w->tar_md, buf, n) != 1) {
        snprintf(w->why, sizeof(w->why), "sha256 of the tar: OpenSSL failed");
    } else if (archive_write_data(w->gz, buf, n) == (la_ssize_t)n) {
        w->tar_size += n;
        return (la_ssize_t)n;
    } else if (!w->why[0]) {
        const char *msg = archive_error_string(w->gz);
        snprintf(w->why, sizeof(w->why), "gzip: %s", msg ? msg : "failed");
    }
    archive_set_error(a, EIO, "%s", w->why);
    return -1;
}

static int archive_failure(writer *w, struct archive *a, const char *what)
{
    const char *msg = w->why[0] ? w->why : archive_error_string(a);
    return hks_fail(w->err, 0, "%s: %s", what, msg ? msg : "libarchive failed");
}

static int writer_open(writer *w)
{
    w->tar_md = md_new();
    w->gz_md = md_new();
    w->gz = archive_write_new();
    w->tar = archive_write_new();
    if (!w->tar_md || !w->gz_md || !w->gz || !w->tar)
        return hks_fail(w->err, ENOMEM, "archive: set up the writer");
    /* the gzip stream: no timestamp, no name (libarchive never writes one), a pinned level,
     * no padding of the last block */
    if (archive_write_set_format_raw(w->gz) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(w->gz) != ARCHIVE_OK ||
        archive_write_set_filter_option(w->gz, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_set_filter_option(w->gz, "gzip", "compression-level", GZIP_LEVEL) !=
            ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->gz, 1) != ARCHIVE_OK ||
        archive_write_open(w->gz, w, NULL, gz_out, NULL) != ARCHIVE_OK)
        return archive_failure(w, w->gz, "archive: set up gzip");
    struct archive_entry *raw = archive_entry_new();
    if (!raw)
        return hks_fail(w->err, ENOMEM, "archive: set up gzip");
    archive_entry_set_pathname(raw, "tar");
    archive_entry_set_filetype(raw, AE_IFREG);
    int r = archive_write_header(w->gz, raw);
    archive_entry_free(raw);
    if (r != ARCHIVE_OK)
        return archive_failure(w, w->gz, "archive: set up gzip");
    /* pax restricted: plain ustar unless a name needs more; its extended headers are named
     * without the pid (libarchive leaves getpid() out on purpose), so still reproducible */
    if (archive_write_set_format_pax_restricted(w->tar) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->tar, 1) != ARCHIVE_OK ||
        archive_write_open(w->tar, w, NULL, tar_out, NULL) != ARCHIVE_OK)
        return archive_failure(w, w->tar, "archive: set up tar");
    return 0;
}

/* Open rel below root, never following a symlink on the way. */
static int open_below(int root, const char *rel)
{
    int dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
    const char *p = rel;
    for (const char *slash; dir >= 0 && (slash = strchr(p, '/')); p = slash + 1) {
        char part[NAME_MAX + 1];
        if ((size_t)(slash - p) > NAME_MAX) {
            close(dir);
            errno = ENAMETOOLONG;
            return -1;
        }
        snprintf(part, sizeof(part), "%.*s", (int)(slash - p), p);
        int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(dir);
        errno = saved;
        dir = next;
    }
    if (dir < 0)
        return -1;
    /* O_NONBLOCK: a FIFO put in a file's place must not hang the build */
    int fd = openat(dir, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int saved = errno;
    close(dir);
    errno = saved;
    return fd;
}

static int write_header(writer *w, const bld_entry *e, mode_t type, mode_t perm, int64_t size)
{
    struct archive_entry *ae = archive_entry_new();
    if (!ae)
        return hks_fail(w->err, ENOMEM, "archive entry '%s'", e->name);
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_filetype(ae, type);
    archive_entry_set_perm(ae, perm);
    archive_entry_set_size(ae, size);
    archive_entry_set_mtime(ae, 0, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    if (e->target)
        archive_entry_set_symlink(ae, e->target);
    int r = archive_write_header(w->tar, ae);
    archive_entry_free(ae);
    /* ARCHIVE_WARN is a name that is not UTF-8 (written raw): not reproducible elsewhere */
    if (r == ARCHIVE_WARN)
        return hks_fail(w->err, 0, "%s '%s': the name is not valid UTF-8", e->origin, e->name);
    if (r != ARCHIVE_OK) {
        char what[512];
        snprintf(what, sizeof(what), "archive entry '%s'", e->name);
        return archive_failure(w, w->tar, what);
    }
    return 0;
}

static int write_data(writer *w, const bld_entry *e, const void *buf, size_t n)
{
    if (n && archive_write_data(w->tar, buf, n) != (la_ssize_t)n) {
        char what[512];
        snprintf(what, sizeof(what), "archive entry '%s'", e->name);
        return archive_failure(w, w->tar, what);
    }
    return 0;
}

static int write_file(writer *w, const bld_entry *e)
{
    const char *root = w->root_names[e->root];
    cleanup_fd int fd = open_below(w->root_fds[e->root], e->rel);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return hks_fail(w->err, errno, "%s '%s/%s': open", e->origin, root, e->rel);
    if (!S_ISREG(st.st_mode))
        return hks_fail(w->err, 0, "%s '%s/%s': no longer a regular file", e->origin, root, e->rel);
    if (write_header(w, e, AE_IFREG, st.st_mode & 0111 ? 0755 : 0644, st.st_size) < 0)
        return -1;
    unsigned char *buf = w->buf;
    off_t left = st.st_size;
    while (left > 0) {
        size_t want = (uint64_t)left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hks_fail(w->err, errno, "%s '%s/%s': read", e->origin, root, e->rel);
        if (n == 0)
            return hks_fail(w->err, 0, "%s '%s/%s': shrank while it was archived", e->origin, root,
                            e->rel);
        if (write_data(w, e, buf, (size_t)n) < 0)
            return -1;
        left -= n;
    }
    char extra;
    if (read(fd, &extra, 1) > 0)
        return hks_fail(w->err, 0, "%s '%s/%s': grew while it was archived", e->origin, root,
                        e->rel);
    return 0;
}

static int write_entry(writer *w, const bld_entry *e)
{
    switch (e->kind) {
    case 'd':
        return write_header(w, e, AE_IFDIR, 0755, 0);
    case 'l':
        return write_header(w, e, AE_IFLNK, 0777, 0);
    case 'm':
        if (write_header(w, e, AE_IFREG, e->perm, (int64_t)e->len) < 0)
            return -1;
        return write_data(w, e, e->data, e->len);
    default:
        return write_file(w, e);
    }
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const bld_entry *)a)->name, ((const bld_entry *)b)->name);
}

static int write_all(writer *w, bld_entries *l)
{
    w->buf = malloc(READ_CHUNK);
    w->root_fds = calloc(l->nroots ? l->nroots : 1, sizeof(int));
    if (!w->buf || !w->root_fds)
        return hks_fail(w->err, ENOMEM, "archive: open the sources");
    for (size_t i = 0; i < l->nroots; i++)
        w->root_fds[i] = -1;
    w->nroots = l->nroots;
    w->root_names = l->roots;
    for (size_t i = 0; i < l->nroots; i++) {
        w->root_fds[i] = open(l->roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->root_fds[i] < 0)
            return hks_fail(w->err, errno, "open directory %s", l->roots[i]);
    }
    if (writer_open(w) < 0)
        return -1;
    qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
    const bld_entry *prev = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const bld_entry *e = &l->v[i];
        if (prev && strcmp(prev->name, e->name) == 0) {
            if (prev->kind == 'd' && e->kind == 'd')
                continue;
            return hks_fail(w->err, 0, "'%s' comes from both the %s and the %s", e->name,
                            prev->origin, e->origin);
        }
        if (write_entry(w, e) < 0)
            return -1;
        prev = e;
    }
    if (archive_write_close(w->tar) != ARCHIVE_OK)
        return archive_failure(w, w->tar, "archive: finish the tar");
    if (archive_write_close(w->gz) != ARCHIVE_OK)
        return archive_failure(w, w->gz, "archive: finish the gzip");
    return 0;
}

static int finish(writer *w, void **mem, size_t *mem_len, bld_tar_result *res)
{
    *res = (bld_tar_result){.tar_size = w->tar_size, .gz_size = w->gz_size};
    if (md_final(w->tar_md, res->diff_id) < 0 || md_final(w->gz_md, res->digest) < 0)
        return hks_fail(w->err, 0, "sha256: OpenSSL failed");
    if (w->fd < 0) {
        *mem = w->mem ? w->mem : malloc(1);
        if (!*mem)
            return hks_fail(w->err, ENOMEM, "archive");
        w->mem = NULL;
        *mem_len = w->mem_len;
    }
    return 0;
}

int bld_tar_write(bld_entries *l, int fd, void **mem, size_t *mem_len, bld_tar_result *res,
                  hks_error *err)
{
    writer w = {.fd = fd, .err = err};
    /* libarchive converts names from the locale's charset to UTF-8 for pax: under hksd's "C"
     * locale any non-ASCII name would fail. C.UTF-8 for this thread, during the call. */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t saved = utf8 ? uselocale(utf8) : (locale_t)0;
    int rc = write_all(&w, l);
    if (utf8) {
        uselocale(saved);
        freelocale(utf8);
    }
    if (rc == 0)
        rc = finish(&w, mem, mem_len, res);
    writer_release(&w);
    return rc;
}

int bld_sha256_fd(int fd, int out, char digest[72], uint64_t *size)
{
    EVP_MD_CTX *ctx = md_new();
    unsigned char *buf = malloc(READ_CHUNK);
    int rc = ctx && buf ? 0 : -1, saved = ENOMEM;
    *size = 0;
    while (rc == 0) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            saved = errno;
            break;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = -1;
            saved = EIO;
        } else if (out >= 0 && hks_write_all(out, buf, (size_t)n) < 0) {
            rc = -1;
            saved = errno;
        }
        *size += (uint64_t)n;
    }
    if (rc == 0 && md_final(ctx, digest) < 0) {
        rc = -1;
        saved = EIO;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    errno = rc < 0 ? saved : errno;
    return rc;
}
