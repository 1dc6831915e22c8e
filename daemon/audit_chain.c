/* The audit log's hash chain: parsing records, reading files line by line in constant memory,
 * listing the rotated files, and verification (used by `hksd audit`, the tests and the fuzzer). */
#include "audit_log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

void hksd_audit_hash(const char *data, size_t len, char out[HKSD_AUDIT_HASH_LEN])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    if (EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        /* cannot happen with the default provider; an all-'x' hash never matches a record */
        memset(out + 7, 'x', 64);
        out[71] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[digest[i] >> 4];
        out[8 + 2 * i] = hex[digest[i] & 15];
    }
    out[71] = '\0';
}

static bool valid_hash(const char *s)
{
    if (strlen(s) != HKSD_AUDIT_HASH_LEN - 1 || strncmp(s, "sha256:", 7) != 0)
        return false;
    for (const char *p = s + 7; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    }
    return true;
}

int hksd_audit_record_parse(const char *line, size_t len, hksd_audit_record *out, char *why,
                            size_t why_size)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *json = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json) {
        snprintf(why, why_size, "not valid JSON (%s at column %d)", jerr.text, jerr.column);
        return -1;
    }
    if (!json_is_object(json)) {
        json_decref(json);
        snprintf(why, why_size, "not a JSON object");
        return -1;
    }
    json_t *seq = json_object_get(json, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
        json_decref(json);
        snprintf(why, why_size, "no \"seq\" (an integer from 1): not a chained record");
        return -1;
    }
    const char *prev = json_string_value(json_object_get(json, "prev"));
    if (!prev || !valid_hash(prev)) {
        json_decref(json);
        snprintf(why, why_size, "\"prev\" is not \"sha256:\" and 64 hex digits");
        return -1;
    }
    out->json = json;
    out->seq = (uint64_t)json_integer_value(seq);
    memcpy(out->prev, prev, HKSD_AUDIT_HASH_LEN);
    return 0;
}

/* ---- reading lines ----------------------------------------------------------------------------
 */

#define READ_CHUNK   (64 * 1024)
#define SETTLE_WAITS 25 /* of 20 ms */

int hksd_audit_reader_init(hksd_audit_reader *r, int fd, hks_error *err)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->cap = HKSD_AUDIT_MAX_RECORD + READ_CHUNK + 1;
    r->buf = malloc(r->cap);
    if (!r->buf)
        return hks_fail(err, ENOMEM, "audit log reader");
    return 0;
}

void hksd_audit_reader_free(hksd_audit_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* More bytes after the unread ones; returns 0 (r->eof set at the end) or -1. */
static int fill(hksd_audit_reader *r, hks_error *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    while (r->end < r->cap) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hks_fail(err, errno, "read the audit log");
        if (n == 0)
            r->eof = true;
        r->end += (size_t)n;
        return 0;
    }
    return 0;
}

int hksd_audit_reader_next(hksd_audit_reader *r, const char **line, size_t *len, int *flags,
                           hks_error *err)
{
    *flags = 0;
    /* the rest of a line too long to return */
    while (r->skipping) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            r->start = (size_t)(nl - r->buf) + 1;
            r->skipping = false;
        } else if (r->eof) {
            r->start = r->end;
            r->skipping = false;
        } else {
            r->start = r->end;
            if (fill(r, err) < 0)
                return -1;
        }
    }
    for (;;) {
        size_t avail = r->end - r->start;
        char *nl = memchr(r->buf + r->start, '\n', avail);
        size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : avail;
        if (!nl && r->eof && avail > 0 && avail <= HKSD_AUDIT_MAX_RECORD && r->settle &&
            r->settle_waits < SETTLE_WAITS) {
            /* perhaps a write in progress: look again */
            r->settle_waits++;
            nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
            r->eof = false;
            if (fill(r, err) < 0)
                return -1;
            continue;
        }
        if (nl || n > HKSD_AUDIT_MAX_RECORD || (r->eof && avail > 0)) {
            *line = r->buf + r->start;
            *len = n;
            if (n > HKSD_AUDIT_MAX_RECORD)
                *flags = HKSD_AUDIT_LINE_LONG;
            else if (!nl)
                *flags = HKSD_AUDIT_LINE_TORN;
            r->start = nl ? (size_t)(nl - r->buf) + 1 : r->end;
            r->skipping = !nl && !r->eof; /* the rest of a long line is dropped */
            r->line_no++;
            return 1;
        }
        if (r->eof)
            return 0;
        if (fill(r, err) < 0)
            return -1;
    }
}

/* ---- the file set -----------------------------------------------------------------------------
 */

typedef struct listed {
    unsigned long n; /* rotation number; 0: the log itself */
    char *name;
} listed;

static int by_age(const void *a, const void *b)
{
    const listed *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : 0; /* highest number (oldest) first */
}

static void free_listing(listed *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i].name);
    free(l);
}

/* "<base>" -> 0, "<base>.<N>" (N decimal from 1, no leading zero) -> N, else -1 */
static long rotation_number(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0)
        return -1;
    if (name[bl] == '\0')
        return 0;
    const char *d = name + bl + 1;
    if (name[bl] != '.' || *d < '1' || *d > '9' || strlen(d) > 9)
        return -1;
    for (const char *p = d; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
    }
    return strtol(d, NULL, 10);
}

static int list_log(const char *dir, const char *base, listed **out, size_t *n_out, hks_error *err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d && errno == ENOENT)
        return hks_fail(err, errno, "no audit log at %s/%s", dir, base);
    if (!d)
        return hks_fail(err, errno, "open the directory %s", dir);
    listed *l = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        long num = rotation_number(e->d_name, base);
        if (num < 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            listed *grown = realloc(l, cap * sizeof(*l));
            if (!grown) {
                free_listing(l, n);
                return hks_fail(err, ENOMEM, "list %s", dir);
            }
            l = grown;
        }
        l[n].n = (unsigned long)num;
        l[n].name = strdup(e->d_name);
        if (!l[n].name) {
            free_listing(l, n);
            return hks_fail(err, ENOMEM, "list %s", dir);
        }
        n++;
    }
    if (errno) {
        int saved = errno;
        free_listing(l, n);
        return hks_fail(err, saved, "read the directory %s", dir);
    }
    if (n)
        qsort(l, n, sizeof(*l), by_age);
    *out = l;
    *n_out = n;
    return 0;
}

void hksd_audit_files_close(hksd_audit_files *files)
{
    for (size_t i = 0; i < files->n; i++) {
        if (files->files[i].fd >= 0)
            close(files->files[i].fd);
        free(files->files[i].path);
    }
    free(files->files);
    files->files = NULL;
    files->n = 0;
}

static int add_file(hksd_audit_files *files, const char *path, bool base_name, hks_error *err)
{
    hksd_audit_file *grown = realloc(files->files, (files->n + 1) * sizeof(*grown));
    if (!grown) {
        hks_fail(err, ENOMEM, "audit files");
        return -1;
    }
    files->files = grown;
    hksd_audit_file *f = &files->files[files->n];
    f->path = strdup(path);
    if (!f->path) {
        hks_fail(err, ENOMEM, "audit files");
        return -1;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        hks_fail(err, errno, "open %s", path);
        free(f->path);
        return -1;
    }
    const char *slash = strrchr(f->path, '/');
    f->name = base_name && slash ? slash + 1 : f->path;
    files->n++;
    return 0;
}

/* Each name still refers to the file opened under it (no rotation since). */
static bool still_same(const hksd_audit_files *files)
{
    for (size_t i = 0; i < files->n; i++) {
        struct stat a, b;
        if (fstat(files->files[i].fd, &a) < 0 || stat(files->files[i].path, &b) < 0 ||
            a.st_ino != b.st_ino || a.st_dev != b.st_dev)
            return false;
    }
    return true;
}

int hksd_audit_files_open_log(const char *log_path, hksd_audit_files *out, hks_error *err)
{
    memset(out, 0, sizeof(*out));
    char dir[PATH_MAX];
    const char *slash = strrchr(log_path, '/');
    const char *base = slash ? slash + 1 : log_path;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == log_path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - log_path), log_path);
    if (!*base)
        return hks_fail(err, EINVAL, "audit log path %s names a directory", log_path);
    for (int attempt = 0; attempt < 50; attempt++) {
        listed *l = NULL;
        size_t n = 0;
        if (list_log(dir, base, &l, &n, err) < 0)
            return -1;
        bool retry = false;
        for (size_t i = 0; i < n && !retry; i++) {
            char path[PATH_MAX + NAME_MAX + 2];
            snprintf(path, sizeof(path), "%s/%s", dir, l[i].name);
            if (add_file(out, path, true, err) < 0) {
                retry = err->errnum == ENOENT; /* rotated away since the listing */
                if (!retry) {
                    free_listing(l, n);
                    hksd_audit_files_close(out);
                    return -1;
                }
            }
        }
        free_listing(l, n);
        if (!retry && still_same(out)) {
            if (out->n == 0)
                return hks_fail(err, ENOENT, "no audit log at %s", log_path);
            out->live = true;
            return 0;
        }
        hksd_audit_files_close(out);
    }
    return hks_fail(err, EAGAIN, "the audit log %s kept rotating while it was opened", log_path);
}

int hksd_audit_files_open_paths(char *const *paths, size_t n, hksd_audit_files *out, hks_error *err)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (add_file(out, paths[i], false, err) < 0) {
            hksd_audit_files_close(out);
            return -1;
        }
    }
    return 0;
}

/* ---- verification -----------------------------------------------------------------------------
 */

void hksd_audit_verifier_init(hksd_audit_verifier *v, hksd_audit_problem_fn *on_problem, void *ctx)
{
    memset(v, 0, sizeof(*v));
    v->on_problem = on_problem;
    v->ctx = ctx;
}

int hksd_audit_verifier_anchor(hksd_audit_verifier *v, uint64_t seq, const char *hash)
{
    if (seq == 0 || !valid_hash(hash))
        return -1;
    v->anchor_seq = seq;
    memcpy(v->anchor_hash, hash, HKSD_AUDIT_HASH_LEN);
    return 0;
}

static void problem(hksd_audit_verifier *v, const char *name, uint64_t line_no, uint64_t seq,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(hksd_audit_verifier *v, const char *name, uint64_t line_no, uint64_t seq,
                    const char *fmt, ...)
{
    char what[1024], msg[sizeof(v->report.first_problem)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (!name)
        snprintf(msg, sizeof(msg), "%s", what);
    else if (seq)
        snprintf(msg, sizeof(msg), "%s:%" PRIu64 ": seq %" PRIu64 ": %s", name, line_no, seq, what);
    else
        snprintf(msg, sizeof(msg), "%s:%" PRIu64 ": %s", name, line_no, what);
    if (v->report.problems++ == 0)
        memcpy(v->report.first_problem, msg, sizeof(msg));
    if (v->on_problem)
        v->on_problem(v->ctx, msg);
}

/* The line was not a record: the link from the next one cannot be checked. */
static void lose_track(hksd_audit_verifier *v)
{
    v->have_prev = false;
    v->unknown_prev = true;
}

static void check_link(hksd_audit_verifier *v, const char *name, uint64_t line_no,
                       const hksd_audit_record *rec)
{
    hksd_audit_report *r = &v->report;
    if (v->have_prev) {
        if (rec->seq > v->prev_seq + 1)
            problem(v, name, line_no, rec->seq,
                    "follows seq %" PRIu64 ": records %" PRIu64 "..%" PRIu64
                    " are missing (removed or moved)",
                    v->prev_seq, v->prev_seq + 1, rec->seq - 1);
        else if (rec->seq <= v->prev_seq)
            problem(v, name, line_no, rec->seq,
                    "follows seq %" PRIu64 ": out of order or duplicated", v->prev_seq);
        else if (strcmp(rec->prev, v->prev_hash) != 0)
            problem(v, name, line_no, rec->seq,
                    "prev does not match the record before it (edited or removed)");
        return;
    }
    if (v->unknown_prev)
        return; /* after a line that is not a record: its problem is already reported */
    /* the first record */
    if (rec->seq == 1 && strcmp(rec->prev, HKSD_AUDIT_GENESIS) != 0)
        problem(v, name, line_no, rec->seq,
                "the first record's prev is not the genesis value (records before it removed?)");
    else if (rec->seq > 1 && strcmp(rec->prev, HKSD_AUDIT_GENESIS) == 0)
        problem(v, name, line_no, rec->seq,
                "prev is the genesis value of a new chain, but seq is not 1");
    else if (rec->seq > 1)
        r->chain_truncated = true;
}

void hksd_audit_verifier_line(hksd_audit_verifier *v, const char *name, uint64_t line_no,
                              const char *line, size_t len, int flags)
{
    hksd_audit_report *r = &v->report;
    r->records++;
    if (flags & HKSD_AUDIT_LINE_LONG) {
        problem(v, name, line_no, 0, "a line longer than %d bytes: not a record",
                HKSD_AUDIT_MAX_RECORD);
        lose_track(v);
        return;
    }
    if (flags & HKSD_AUDIT_LINE_TORN) {
        problem(v, name, line_no, 0,
                "torn record: the file ends without a newline (an interrupted write)");
        lose_track(v);
        return;
    }
    if (len == 0) {
        problem(v, name, line_no, 0, "an empty line");
        lose_track(v);
        return;
    }
    hksd_audit_record rec;
    char why[256];
    if (hksd_audit_record_parse(line, len, &rec, why, sizeof(why)) < 0) {
        problem(v, name, line_no, 0, "%s", why);
        lose_track(v);
        return;
    }
    char hash[HKSD_AUDIT_HASH_LEN];
    hksd_audit_hash(line, len, hash);
    bool first = r->first_seq == 0;
    check_link(v, name, line_no, &rec);
    if (first)
        r->first_seq = rec.seq;
    if (v->anchor_seq && rec.seq == v->anchor_seq) {
        v->anchor_seen = true;
        if (strcmp(hash, v->anchor_hash) != 0)
            problem(v, name, line_no, rec.seq, "does not hash to the anchor %s (rewritten)",
                    v->anchor_hash);
    }
    r->last_seq = rec.seq;
    memcpy(r->head, hash, sizeof(hash));
    v->prev_seq = rec.seq;
    memcpy(v->prev_hash, hash, sizeof(hash));
    v->have_prev = true;
    v->unknown_prev = false;
    json_decref(rec.json);
}

const hksd_audit_report *hksd_audit_verifier_finish(hksd_audit_verifier *v)
{
    hksd_audit_report *r = &v->report;
    if (v->anchor_seq && !v->anchor_seen) {
        if (r->first_seq == 0 || v->anchor_seq > r->last_seq)
            problem(v, NULL, 0, 0,
                    "anchor: no record with seq %" PRIu64 ": the log ends at seq %" PRIu64
                    " (records removed from its end)",
                    v->anchor_seq, r->last_seq);
        else if (v->anchor_seq < r->first_seq)
            problem(v, NULL, 0, 0,
                    "anchor: no record with seq %" PRIu64 ": the chain starts at seq %" PRIu64
                    " (rotated out: use a newer anchor)",
                    v->anchor_seq, r->first_seq);
        else
            problem(v, NULL, 0, 0, "anchor: no record with seq %" PRIu64, v->anchor_seq);
    }
    return r;
}

int hksd_audit_verify_files(hksd_audit_verifier *v, const hksd_audit_files *files, hks_error *err)
{
    for (size_t i = 0; i < files->n; i++) {
        const hksd_audit_file *f = &files->files[i];
        hksd_audit_reader r;
        if (hksd_audit_reader_init(&r, f->fd, err) < 0)
            return -1;
        r.settle = files->live && i + 1 == files->n;
        const char *line;
        size_t len;
        int flags, rc;
        while ((rc = hksd_audit_reader_next(&r, &line, &len, &flags, err)) == 1)
            hksd_audit_verifier_line(v, f->name, r.line_no, line, len, flags);
        hksd_audit_reader_free(&r);
        if (rc < 0)
            return hks_wrap(err, "%s", f->path);
    }
    return 0;
}

int hksd_audit_verify_log(const char *log_path, hksd_audit_report *out, hks_error *err)
{
    hksd_audit_files files;
    if (hksd_audit_files_open_log(log_path, &files, err) < 0)
        return -1;
    hksd_audit_verifier v;
    hksd_audit_verifier_init(&v, NULL, NULL);
    int rc = hksd_audit_verify_files(&v, &files, err);
    hksd_audit_files_close(&files);
    if (rc == 0)
        *out = *hksd_audit_verifier_finish(&v);
    return rc;
}

void hksd_audit_verify_buffer(hksd_audit_verifier *v, const char *name, const char *data,
                              size_t len)
{
    uint64_t line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        int flags = n > HKSD_AUDIT_MAX_RECORD ? HKSD_AUDIT_LINE_LONG
                    : nl                      ? 0
                                              : HKSD_AUDIT_LINE_TORN;
        hksd_audit_verifier_line(v, name, ++line_no, data + pos, n, flags);
        pos += n + (nl ? 1 : 0);
    }
}
