/* Safe extraction of uploaded archives into a fresh directory.
 *
 * libarchive's archive_write_disk is not used to write, although its ARCHIVE_EXTRACT_SECURE_*
 * flags are the usual advice: it resolves entry names against the process's working directory
 * (absolute names would defeat SECURE_NOABSOLUTEPATHS), so hksd would have to chdir, which is
 * process-wide in a threaded daemon, and its symlink check is an lstat walk followed by an open by
 * path. Instead every entry is checked here against the same rules and more (types, modes, link
 * targets, caps), then written with fd-relative calls from a dirfd of dest_dir that never follow
 * a symlink (O_NOFOLLOW on every component, O_EXCL when creating): even a rule missed here cannot
 * make the kernel write outside the tree.
 *
 * Reading uses two libarchive readers: the first only decompresses (gzip or nothing, raw format),
 * the second parses tar from it through pull(), which counts the decompressed bytes. Data the tar
 * reader skips without handing it over (pax headers, bodies of entries that are not files) would
 * escape the caps on written bytes; the cap on that stream bounds the work a gzip bomb causes. */
#include "build_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <search.h>
#include <string.h>
#include <sys/stat.h>

#define NAME_MAX_BYTES 4095 /* PATH_MAX - 1: longer names could not be opened anyway */
#define COMPONENT_MAX  255
/* Removal recurses once per directory level, holding a descriptor each: bound the depth. */
#define DEPTH_LIMIT 256
/* Decompressed bytes allowed beyond max_total_bytes: tar headers, padding, pax records. */
#define STREAM_SLACK_PER_ENTRY 4096u
#define STREAM_SLACK           (1024u * 1024u)
#define SHOWN_MAX              160

void bld_extract_limits_default(bld_extract_limits *l)
{
    *l = (bld_extract_limits){.max_entries = 10000,
                              .max_total_bytes = 64ULL << 20,
                              .max_entry_bytes = 16ULL << 20,
                              .max_depth = 32};
}

/* What was extracted earlier, by normalised path: regular files (the only hardlink targets) and
 * symlinks (which no later entry may pass through). Directories need no record: an entry naming
 * one again is harmless, and the kernel refuses to replace one (O_EXCL, EEXIST). */
typedef struct known {
    char kind; /* 'f' regular file, 'l' symlink */
    const char *path;
} known;

static int known_cmp(const void *a, const void *b)
{
    return strcmp(((const known *)a)->path, ((const known *)b)->path);
}

typedef struct extract {
    bld_extract_limits limits;
    hks_error *err;
    struct archive *gz;  /* decompression only */
    struct archive *tar; /* tar, reading from gz through pull() */
    uint64_t stream_bytes, stream_cap;
    char pull_msg[256]; /* why pull() failed: libarchive may replace its own error string */
    int root;           /* dest_dir */
    void *known;        /* tsearch tree of known */
    size_t entries;
    bld_extract_stats stats;
    char name[NAME_MAX_BYTES + 1]; /* the current entry, normalised: "a/b/c" */
    unsigned depth;                /* its components, 0 for the tree itself */
    char shown[SHOWN_MAX];         /* the current entry as given, printable, for messages */
} extract;

static void extract_release(extract *x)
{
    if (x->tar)
        archive_read_free(x->tar);
    if (x->gz)
        archive_read_free(x->gz);
    if (x->known)
        tdestroy(x->known, free);
}

static bool is_control(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates), or
 * 0 when there is none. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t len = 0;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong form */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogate */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* no overlong form */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

/* Names come from the uploader and end up in logs and JSON errors: messages get them bounded,
 * with '?' for control characters and bytes that are not UTF-8. */
static void show(const char *raw, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)(raw ? raw : "");
    size_t n = 0;
    while (*p) {
        size_t len = *p >= 0x80 ? utf8_len(p) : 1;
        if (n + (len ? len : 1) + 4 > size)
            break;
        if (len > 1) {
            memcpy(out + n, p, len);
            n += len;
            p += len;
        } else {
            out[n++] = len == 0 || is_control((char)*p) ? '?' : (char)*p;
            p++;
        }
    }
    if (*p) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static int refuse(extract *x, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(extract *x, int errnum, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return hks_fail(x->err, errnum, "archive entry '%s': %s", x->shown, why);
}

/* A failure of libarchive itself (format, truncation, decompression, the stream cap). */
static int archive_failure(extract *x, struct archive *a)
{
    const char *msg = x->pull_msg[0] ? x->pull_msg : archive_error_string(a);
    if (!msg)
        msg = "unreadable archive";
    if (!x->entries)
        return hks_fail(x->err, 0, "archive: %s", msg);
    return hks_fail(x->err, 0, "archive entry after '%s': %s", x->shown, msg);
}

static la_ssize_t pull(struct archive *tar, void *opaque, const void **buf)
{
    extract *x = opaque;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(x->gz, buf, &size, &offset);
    if (r == ARCHIVE_EOF)
        return 0;
    if (r != ARCHIVE_OK) {
        const char *msg = archive_error_string(x->gz);
        snprintf(x->pull_msg, sizeof(x->pull_msg), "decompression failed: %s",
                 msg ? msg : "unknown error");
    } else if (size > x->stream_cap - x->stream_bytes) {
        snprintf(x->pull_msg, sizeof(x->pull_msg),
                 "expands past %llu bytes, more than the caps allow",
                 (unsigned long long)x->stream_cap);
    } else {
        x->stream_bytes += size;
        return (la_ssize_t)size;
    }
    archive_set_error(tar, EIO, "%s", x->pull_msg);
    return -1;
}

static uint64_t stream_cap(const bld_extract_limits *l)
{
    uint64_t slack = 0, cap = 0;
    if (__builtin_mul_overflow((uint64_t)l->max_entries, STREAM_SLACK_PER_ENTRY, &slack) ||
        __builtin_add_overflow(slack, (uint64_t)STREAM_SLACK, &slack) ||
        __builtin_add_overflow(slack, l->max_total_bytes, &cap))
        return UINT64_MAX;
    return cap;
}

/* "./a//b/" -> "a/b" into out (NAME_MAX_BYTES + 1), *depth its components. Returns NULL, or why
 * the name is refused. Any "..", even one that would stay inside, is refused: libarchive's
 * SECURE_NODOTDOT rule, and a tree that never needs one is simpler to reason about. */
static const char *normalise(const char *raw, char *out, unsigned *depth)
{
    if (!raw || !*raw)
        return "empty name";
    if (raw[0] == '/')
        return "absolute path";
    if (strlen(raw) > NAME_MAX_BYTES)
        return "name longer than 4095 bytes";
    size_t n = 0;
    unsigned d = 0;
    int level = 0; /* lexical, only to say whether a ".." leaves the tree or not */
    bool dotdot = false, leaves = false;
    for (const char *p = raw; *p;) {
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        for (size_t i = 0; i < len; i++) {
            if (is_control(p[i]))
                return "name contains a control character";
        }
        if (len > COMPONENT_MAX)
            return "a path component is longer than 255 bytes";
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            dotdot = true;
            if (--level < 0)
                leaves = true;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
            d++;
            level++;
        }
        p = *end ? end + 1 : end;
    }
    if (dotdot)
        return leaves ? "path leaves the tree" : "path has a '..' component";
    out[n] = '\0';
    *depth = d;
    return NULL;
}

/* A symlink's target stays inside when it is relative and climbs ("..") only at its start, by at
 * most the depth of the link's own directory. The kernel resolves a target from the directory the
 * link really is in, and no entry is written through a symlink, so that directory is the one the
 * entry names and climbing from it is exact; the names after the climb only descend (any of them
 * a symlink checked the same way). A ".." after a name is refused even when it looks inside:
 * "u/.." climbs from wherever u points, and u may be a symlink extracted later. */
const char *bld_symlink_target_problem(const char *target, unsigned link_depth)
{
    if (!target || !*target)
        return "symlink without a target";
    if (target[0] == '/')
        return "symlink target is absolute";
    if (strlen(target) > NAME_MAX_BYTES)
        return "symlink target longer than 4095 bytes";
    unsigned up = 0;
    bool descended = false;
    for (const char *p = target; *p;) {
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        for (size_t i = 0; i < len; i++) {
            if (is_control(p[i]))
                return "symlink target contains a control character";
        }
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (descended)
                return "symlink target has '..' after a name";
            if (++up > link_depth - 1)
                return "symlink target resolves outside the tree";
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            descended = true;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

/* Open the directory holding path's last component, walking from the root without following any
 * symlink (O_NOFOLLOW on each component); with create, missing directories are made 0755. Returns
 * an fd and sets *base, or -1 after refuse(). */
static int open_parent(extract *x, const char *path, bool create, const char **base)
{
    int dir = fcntl(x->root, F_DUPFD_CLOEXEC, 0);
    if (dir < 0)
        return refuse(x, errno, "dup");
    const char *p = path;
    for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
        char part[COMPONENT_MAX + 1];
        int upto = (int)(slash - path);
        snprintf(part, sizeof(part), "%.*s", (int)(slash - p), p);
        bool made = create && mkdirat(dir, part, 0755) == 0;
        if (create && !made && errno != EEXIST) {
            int saved = errno;
            close(dir);
            return refuse(x, saved, "create directory '%.*s'", upto, path);
        }
        int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(dir);
        if (next < 0)
            return refuse(x, saved, "open directory '%.*s'", upto, path);
        /* made under the caller's umask: the mode must not depend on it */
        if (made && fchmod(next, 0755) < 0) {
            saved = errno;
            close(next);
            return refuse(x, saved, "chmod directory '%.*s'", upto, path);
        }
        dir = next;
    }
    *base = p;
    return dir;
}

static int record(extract *x, char kind)
{
    size_t len = strlen(x->name);
    known *k = malloc(sizeof(*k) + len + 1);
    if (!k)
        return refuse(x, ENOMEM, "remember the entry");
    k->kind = kind;
    k->path = memcpy((char *)(k + 1), x->name, len + 1);
    known **slot = tsearch(k, &x->known, known_cmp);
    if (!slot || *slot != k) {
        free(k);
        return slot ? 0 : refuse(x, ENOMEM, "remember the entry");
    }
    return 0;
}

/* No entry may replace, or pass through, a file or symlink extracted earlier. The kernel would
 * refuse as well (O_EXCL, O_NOFOLLOW, ENOTDIR); checking first gives the reason. */
static int check_known(extract *x)
{
    char prefix[NAME_MAX_BYTES + 1];
    memcpy(prefix, x->name, strlen(x->name) + 1);
    for (char *p = prefix;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        known key = {.path = prefix};
        known **k = tfind(&key, &x->known, known_cmp);
        if (k) {
            char shown[SHOWN_MAX];
            show(prefix, shown, sizeof(shown));
            if (!slash)
                return refuse(x, 0, "already in the archive");
            if ((*k)->kind == 'l')
                return refuse(x, 0, "path goes through the symlink '%s' extracted earlier", shown);
            return refuse(x, 0, "path goes through the file '%s'", shown);
        }
        if (!slash)
            return 0;
        *slash = '/';
        p = slash + 1;
    }
}

static int put_dir(extract *x)
{
    const char *base = NULL;
    cleanup_fd int parent = open_parent(x, x->name, true, &base);
    if (parent < 0 || !base)
        return -1;
    if (mkdirat(parent, base, 0755) < 0 && errno != EEXIST)
        return refuse(x, errno, "create directory");
    cleanup_fd int fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return refuse(x, errno, "open directory");
    if (fchmod(fd, 0755) < 0)
        return refuse(x, errno, "chmod directory");
    x->stats.dirs++;
    return 0;
}

/* The bytes counted are those libarchive hands over and that are written, not the header's
 * claim (checked as well, before anything is written). */
static int put_file(extract *x, mode_t mode)
{
    const char *base = NULL;
    cleanup_fd int parent = open_parent(x, x->name, true, &base);
    if (parent < 0 || !base)
        return -1;
    cleanup_fd int fd =
        openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return refuse(x, errno, errno == EEXIST ? "already in the archive" : "create file");
    uint64_t written = 0;
    for (;;) {
        const void *buf = NULL;
        size_t size = 0;
        la_int64_t offset = 0;
        int r = archive_read_data_block(x->tar, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            const char *msg = x->pull_msg[0] ? x->pull_msg : archive_error_string(x->tar);
            return refuse(x, 0, "%s", msg ? msg : "unreadable data");
        }
        if (offset < 0 || (uint64_t)offset != written)
            return refuse(x, 0, "sparse file (data at offset %lld)", (long long)offset);
        if (size > x->limits.max_entry_bytes - written)
            return refuse(x, 0, "file has more than %llu bytes",
                          (unsigned long long)x->limits.max_entry_bytes);
        if (size > x->limits.max_total_bytes - x->stats.bytes)
            return refuse(x, 0, "the files total more than %llu bytes",
                          (unsigned long long)x->limits.max_total_bytes);
        if (hks_write_all(fd, buf, size) < 0)
            return refuse(x, errno, "write");
        written += size;
        x->stats.bytes += size;
    }
    if (fchmod(fd, mode & 0111 ? 0755 : 0644) < 0)
        return refuse(x, errno, "chmod");
    x->stats.files++;
    return record(x, 'f');
}

static int put_symlink(extract *x, const char *target)
{
    const char *why = bld_symlink_target_problem(target, x->depth);
    char shown[SHOWN_MAX];
    show(target, shown, sizeof(shown));
    if (why)
        return refuse(x, 0, "%s: '%s'", why, shown);
    const char *base = NULL;
    cleanup_fd int parent = open_parent(x, x->name, true, &base);
    if (parent < 0 || !base)
        return -1;
    if (symlinkat(target, parent, base) < 0)
        return refuse(x, errno, errno == EEXIST ? "already in the archive" : "create symlink");
    x->stats.links++;
    return record(x, 'l');
}

static int put_hardlink(extract *x, const char *raw_target)
{
    char target[NAME_MAX_BYTES + 1];
    char shown[SHOWN_MAX];
    unsigned depth = 0;
    show(raw_target, shown, sizeof(shown));
    const char *why = normalise(raw_target, target, &depth);
    if (why)
        return refuse(x, 0, "hardlink target '%s': %s", shown, why);
    known key = {.path = target};
    known **k = tfind(&key, &x->known, known_cmp);
    if (!k || (*k)->kind != 'f')
        return refuse(x, 0, "hardlink target '%s' is not a regular file extracted earlier", shown);
    const char *target_base = NULL, *base = NULL;
    cleanup_fd int target_parent = open_parent(x, target, false, &target_base);
    if (target_parent < 0 || !target_base)
        return -1;
    cleanup_fd int parent = open_parent(x, x->name, true, &base);
    if (parent < 0 || !base)
        return -1;
    /* flags 0: a symlink at target_base would be linked itself, never followed */
    if (linkat(target_parent, target_base, parent, base, 0) < 0)
        return refuse(x, errno, errno == EEXIST ? "already in the archive" : "create hardlink");
    x->stats.links++;
    return record(x, 'f');
}

static const char *type_name(mode_t type)
{
    switch (type) {
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "FIFO";
    case AE_IFSOCK:
        return "socket";
    default:
        return "entry of an unknown type";
    }
}

static int put_entry(extract *x, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    show(raw, x->shown, sizeof(x->shown));
    if (++x->entries > x->limits.max_entries)
        return refuse(x, 0, "more than %zu entries", x->limits.max_entries);
    if (!raw)
        return refuse(x, 0, "name cannot be read");
    const char *why = normalise(raw, x->name, &x->depth);
    if (why)
        return refuse(x, 0, "%s", why);
    if (x->depth > x->limits.max_depth)
        return refuse(x, 0, "path has %u components, more than %u", x->depth, x->limits.max_depth);
    mode_t mode = archive_entry_mode(e);
    if (mode & (S_ISUID | S_ISGID | S_ISVTX))
        return refuse(x, 0, "%s bit set (mode %04o)",
                      mode & S_ISUID   ? "setuid"
                      : mode & S_ISGID ? "setgid"
                                       : "sticky",
                      (unsigned)(mode & 07777));
    la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0 || (uint64_t)size > x->limits.max_entry_bytes)
        return refuse(x, 0, "claims %lld bytes, more than %llu", (long long)size,
                      (unsigned long long)x->limits.max_entry_bytes);
    if (archive_entry_sparse_count(e) > 0)
        return refuse(x, 0, "sparse file");
    const char *hardlink = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return refuse(x, 0, "%s refused", type_name(type));
    if (x->depth == 0) {
        /* "./", as `tar -C dir .` writes first: dest_dir itself, which exists */
        if (!hardlink && type == AE_IFDIR)
            return 0;
        return refuse(x, 0, "names the tree itself");
    }
    if (check_known(x) < 0)
        return -1;
    if (hardlink)
        return put_hardlink(x, hardlink);
    if (type == AE_IFDIR)
        return put_dir(x);
    if (type == AE_IFLNK)
        return put_symlink(x, archive_entry_symlink(e));
    return put_file(x, mode);
}

static int run(extract *x, const void *data, size_t len)
{
    x->gz = archive_read_new();
    x->tar = archive_read_new();
    if (!x->gz || !x->tar)
        return hks_fail(x->err, ENOMEM, "archive: create a reader");
    /* tar, gzip-compressed or not, and nothing else: the smallest parser surface */
    if (archive_read_support_filter_gzip(x->gz) != ARCHIVE_OK ||
        archive_read_support_format_raw(x->gz) != ARCHIVE_OK ||
        archive_read_support_format_tar(x->tar) != ARCHIVE_OK)
        return hks_fail(x->err, 0, "archive: set up the reader: %s",
                        archive_error_string(x->gz) ? archive_error_string(x->gz) : "?");
    struct archive_entry *e = NULL;
    if (archive_read_open_memory(x->gz, data, len) != ARCHIVE_OK ||
        archive_read_next_header(x->gz, &e) != ARCHIVE_OK)
        return archive_failure(x, x->gz);
    if (archive_read_open(x->tar, x, NULL, pull, NULL) != ARCHIVE_OK)
        return archive_failure(x, x->tar);
    for (;;) {
        int r = archive_read_next_header(x->tar, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        /* ARCHIVE_WARN too: a damaged header or an unconvertible name is not worth guessing */
        if (r != ARCHIVE_OK)
            return archive_failure(x, x->tar);
        if (put_entry(x, e) < 0)
            return -1;
    }
}

/* 1 when empty, 0 when not, -1 on error (errno set). */
static int is_empty(int root)
{
    int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    }
    closedir(d);
    return empty;
}

int bld_extract_archive(const void *data, size_t len, const char *dest_dir,
                        const bld_extract_limits *limits, bld_extract_stats *stats, hks_error *err)
{
    if (stats)
        *stats = (bld_extract_stats){0};
    bld_extract_limits l;
    if (limits)
        l = *limits;
    else
        bld_extract_limits_default(&l);
    if (!l.max_entries || !l.max_total_bytes || !l.max_entry_bytes || !l.max_depth ||
        l.max_depth > DEPTH_LIMIT)
        return hks_fail(err, EINVAL, "extraction limits out of range");
    if (!data || len == 0)
        return hks_fail(err, 0, "archive: empty");
    cleanup_fd int root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0)
        return hks_fail(err, errno, "open %s", dest_dir);
    /* a failure removes everything below dest_dir: it must hold nothing of the caller's */
    int empty = is_empty(root);
    if (empty <= 0)
        return hks_fail(err, empty < 0 ? errno : ENOTEMPTY, "extract into %s", dest_dir);

    __attribute__((cleanup(extract_release)))
    extract x = {.limits = l, .err = err, .stream_cap = stream_cap(&l), .root = root};
    /* libarchive converts pax names (UTF-8 by the standard) to the locale's charset: under hksd's
     * "C" locale every non-ASCII name would fail. C.UTF-8 for this thread only, during the call. */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t saved_locale = utf8 ? uselocale(utf8) : (locale_t)0;
    int rc = run(&x, data, len);
    if (utf8) {
        uselocale(saved_locale);
        freelocale(utf8);
    }
    if (rc == 0) {
        if (stats)
            *stats = x.stats;
        return 0;
    }
    hks_error cleanup_err = {0};
    int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || hks_remove_below(fd, &cleanup_err) < 0) {
        size_t n = err ? strnlen(err->msg, sizeof(err->msg)) : 0;
        if (err && n + 1 < sizeof(err->msg))
            snprintf(err->msg + n, sizeof(err->msg) - n,
                     " (and removing what was extracted "
                     "failed: %.200s)",
                     fd < 0 ? strerror(errno) : cleanup_err.msg);
    }
    return -1;
}
