/* The audit log writer: the hash chain's head, recovered at open; one write(2) and fdatasync per
 * record under the log's lock; rotation by size, between two records. */
#include "audit_log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct hksd_audit_log {
    char path[PATH_MAX];
    int fd;
    uint64_t size; /* of the current file */
    uint64_t rotate_bytes;
    unsigned keep;
    uint64_t seq;                   /* of the last record, 0: none yet */
    char prev[HKSD_AUDIT_HASH_LEN]; /* its hash */
    pthread_mutex_t lock;
};

/* A warning as one of hksd's JSON log lines on stderr. */
static void warn(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(const char *path, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_t *line = json_pack("{s:s,s:s,s:s,s:s}", "level", "warn", "msg", "audit log", "path", path,
                             "detail", detail);
    cleanup_free char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    fprintf(stderr, "%s\n", text ? text : detail);
}

/* ---- recovering the head ----------------------------------------------------------------------
 */

/* The offset just after the last '\n' in [0, end) (0 when there is none). */
static int line_start_before(int fd, uint64_t end, uint64_t *out, const char *path, hks_error *err)
{
    char buf[4096];
    while (end > 0) {
        size_t n = end < sizeof(buf) ? (size_t)end : sizeof(buf);
        ssize_t got = pread(fd, buf, n, (off_t)(end - n));
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)n)
            return hks_fail(err, got < 0 ? errno : EIO, "read %s", path);
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                *out = end - n + i;
                return 0;
            }
        }
        end -= n;
    }
    *out = 0;
    return 0;
}

typedef struct tail {
    bool any;         /* the file has a complete line */
    bool chained;     /* the last one is a chained record */
    bool has_chained; /* some line is (when the last is not) */
    uint64_t seq;     /* of the last chained record */
    char hash[HKSD_AUDIT_HASH_LEN];
} tail;

/* The seq of the last chained record among the complete lines in [0, end) (a slow path: only
 * when the last line is not one). */
static int last_chained_seq(int fd, uint64_t end, tail *t, const char *path, hks_error *err)
{
    hksd_audit_reader r;
    if (hksd_audit_reader_init(&r, fd, err) < 0)
        return -1;
    uint64_t offset = 0;
    const char *line;
    size_t len;
    int flags, rc = 0;
    if (lseek(fd, 0, SEEK_SET) < 0) {
        hksd_audit_reader_free(&r);
        return hks_fail(err, errno, "seek %s", path);
    }
    while (offset < end && (rc = hksd_audit_reader_next(&r, &line, &len, &flags, err)) == 1) {
        offset += len + 1;
        hksd_audit_record rec;
        char why[256];
        if (flags == 0 && hksd_audit_record_parse(line, len, &rec, why, sizeof(why)) == 0) {
            t->has_chained = true;
            t->seq = rec.seq;
            json_decref(rec.json);
        }
    }
    hksd_audit_reader_free(&r);
    return rc < 0 ? hks_wrap(err, "%s", path) : 0;
}

/* The last complete line in [0, end) of the file: its hash, and its seq when it is a record. */
static int read_tail(int fd, uint64_t end, tail *t, const char *path, hks_error *err)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->hash, sizeof(t->hash), "%s", HKSD_AUDIT_GENESIS);
    if (end == 0)
        return 0;
    uint64_t start = 0;
    if (line_start_before(fd, end - 1, &start, path, err) < 0)
        return -1;
    t->any = true;
    size_t len = (size_t)(end - 1 - start);
    if (len <= HKSD_AUDIT_MAX_RECORD) {
        cleanup_free char *line = malloc(len + 1);
        if (!line)
            return hks_fail(err, ENOMEM, "read %s", path);
        errno = 0;
        if (pread(fd, line, len, (off_t)start) != (ssize_t)len)
            return hks_fail(err, errno ? errno : EIO, "read %s", path);
        hksd_audit_hash(line, len, t->hash);
        hksd_audit_record rec;
        char why[256];
        if (hksd_audit_record_parse(line, len, &rec, why, sizeof(why)) == 0) {
            t->chained = t->has_chained = true;
            t->seq = rec.seq;
            json_decref(rec.json);
            return 0;
        }
    }
    /* not a record (damaged, or written before the chain): the chain goes on from it, with the
     * seq after the last record before it; `hksd audit verify` reports the line */
    return last_chained_seq(fd, start, t, path, err);
}

/* The head from path.1 when the current file is empty. */
static int read_rotated_tail(const char *path, tail *t, hks_error *err)
{
    char rotated[PATH_MAX + 8];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    memset(t, 0, sizeof(*t));
    snprintf(t->hash, sizeof(t->hash), "%s", HKSD_AUDIT_GENESIS);
    cleanup_fd int fd = open(rotated, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : hks_fail(err, errno, "open %s", rotated);
    struct stat st;
    uint64_t end = 0;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "stat %s", rotated);
    /* a torn end there is left as it is (verify reports it); the chain goes on from before it */
    if (line_start_before(fd, (uint64_t)st.st_size, &end, rotated, err) < 0 ||
        read_tail(fd, end, t, rotated, err) < 0)
        return -1;
    if (t->any && !t->chained)
        warn(rotated, "its last line is not a chained record: the chain goes on from it");
    return 0;
}

static int sync_dir_of(const char *path, hks_error *err)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return hks_fail(err, errno, "sync the directory %s", dir);
    return 0;
}

static int open_current(const char *path, uint64_t *size, hks_error *err)
{
    *size = 0;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hks_fail(err, errno, "open the audit log %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int saved = errno;
        close(fd);
        return hks_fail(err, saved, "stat the audit log %s", path);
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* Recover the head; the current file is open as log->fd. */
static int recover(hksd_audit_log *log, hks_error *err)
{
    uint64_t complete = 0;
    if (line_start_before(log->fd, log->size, &complete, log->path, err) < 0)
        return -1;
    if (complete < log->size) {
        warn(log->path,
             "removed a torn last record: %" PRIu64 " bytes without a newline at offset %" PRIu64
             " (a write was interrupted)",
             log->size - complete, complete);
        if (ftruncate(log->fd, (off_t)complete) < 0 || fsync(log->fd) < 0)
            return hks_fail(err, errno, "truncate the torn end of %s", log->path);
        log->size = complete;
    }
    tail t;
    if (read_tail(log->fd, log->size, &t, log->path, err) < 0)
        return -1;
    if (t.any && !t.chained && !t.has_chained) {
        /* no record of this file is chained: written before the chain existed (an older hksd),
         * unless path.1 has records: then this is damage, left in place for verify to see */
        tail rotated;
        if (read_rotated_tail(log->path, &rotated, err) < 0)
            return -1;
        if (!rotated.any) {
            char aside[PATH_MAX + 40];
            snprintf(aside, sizeof(aside), "%s.unchained-%lld", log->path, (long long)time(NULL));
            if (rename(log->path, aside) < 0)
                return hks_fail(err, errno, "move %s to %s", log->path, aside);
            warn(log->path, "it had no chained record (an older hksd wrote it): moved to %s",
                 aside);
            close(log->fd);
            log->fd = open_current(log->path, &log->size, err);
            if (log->fd < 0 || sync_dir_of(log->path, err) < 0)
                return -1;
            return 0; /* a new chain */
        }
        t.seq = rotated.seq;
    }
    if (t.any && !t.chained)
        warn(log->path, "its last line is not a chained record (damaged?): the chain goes on "
                        "from it, and `hksd audit verify` reports it");
    if (!t.any && read_rotated_tail(log->path, &t, err) < 0)
        return -1;
    log->seq = t.seq;
    memcpy(log->prev, t.hash, sizeof(t.hash));
    return 0;
}

int hksd_audit_log_open(const char *path, uint64_t rotate_bytes, unsigned keep,
                        hksd_audit_log **out, hks_error *err)
{
    hksd_audit_log *log = calloc(1, sizeof(*log));
    if (!log)
        return hks_fail(err, ENOMEM, "audit log");
    if (snprintf(log->path, sizeof(log->path), "%s", path) >= (int)sizeof(log->path)) {
        free(log);
        return hks_fail(err, ENAMETOOLONG, "audit log path %s", path);
    }
    log->rotate_bytes = rotate_bytes;
    log->keep = keep;
    snprintf(log->prev, sizeof(log->prev), "%s", HKSD_AUDIT_GENESIS);
    pthread_mutex_init(&log->lock, NULL);
    log->fd = open_current(path, &log->size, err);
    if (log->fd < 0 || recover(log, err) < 0) {
        hksd_audit_log_close(log);
        return -1;
    }
    *out = log;
    return 0;
}

/* ---- rotation ---------------------------------------------------------------------------------
 */

static void numbered(char *out, size_t size, const char *path, unsigned n)
{
    snprintf(out, size, "%s.%u", path, n);
}

/* path -> path.1, path.N -> path.N+1, path.<keep> and beyond removed; a new, empty path. Called
 * with the lock held, between two records. */
static int rotate(hksd_audit_log *log, hks_error *err)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    if (fsync(log->fd) < 0)
        return hks_fail(err, errno, "sync %s", log->path);
    /* the oldest kept one, and any beyond (keep lowered since) */
    for (unsigned n = log->keep ? log->keep : 1;; n++) {
        numbered(from, sizeof(from), log->path, n);
        if (unlink(from) < 0) {
            if (errno != ENOENT)
                return hks_fail(err, errno, "remove %s", from);
            if (n > log->keep)
                break;
        }
    }
    for (unsigned n = log->keep; n > 1; n--) {
        numbered(from, sizeof(from), log->path, n - 1);
        numbered(to, sizeof(to), log->path, n);
        if (rename(from, to) < 0 && errno != ENOENT)
            return hks_fail(err, errno, "rename %s to %s", from, to);
    }
    numbered(to, sizeof(to), log->path, 1);
    if (log->keep == 0 ? unlink(log->path) < 0 && errno != ENOENT
                       : rename(log->path, to) < 0 && errno != ENOENT)
        return hks_fail(err, errno, "rotate %s", log->path);
    /* until the new file exists, records go on into the renamed one: still in chain order */
    uint64_t size = 0;
    int fd = open_current(log->path, &size, err);
    if (fd < 0)
        return -1;
    close(log->fd);
    log->fd = fd;
    log->size = size;
    return sync_dir_of(log->path, err);
}

/* ---- appending --------------------------------------------------------------------------------
 */

static void iso_time(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static int append_locked(hksd_audit_log *log, json_t *record, hks_error *err)
{
    char ts[40];
    iso_time(ts, sizeof(ts));
    uint64_t seq = log->seq + 1;
    if (json_object_set_new(record, "ts", json_string(ts)) < 0 ||
        json_object_set_new(record, "seq", json_integer((json_int_t)seq)) < 0 ||
        json_object_set_new(record, "prev", json_string(log->prev)) < 0)
        return hks_fail(err, ENOMEM, "audit record");
    cleanup_free char *line = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (!line)
        return hks_fail(err, ENOMEM, "audit record");
    size_t len = strlen(line);
    if (len > HKSD_AUDIT_MAX_RECORD)
        return hks_fail(err, EMSGSIZE, "audit record of %zu bytes (at most %d)", len,
                        HKSD_AUDIT_MAX_RECORD);
    char hash[HKSD_AUDIT_HASH_LEN];
    hksd_audit_hash(line, len, hash);
    line[len] = '\n'; /* over the NUL: the record and its newline in one write */

    if (log->rotate_bytes && log->size > 0 && log->size + len + 1 > log->rotate_bytes) {
        hks_error rerr = {0};
        if (rotate(log, &rerr) < 0) /* the record matters more than the size */
            warn(log->path, "rotation failed, the record goes on in the current file: %s",
                 rerr.msg);
    }
    /* one write (O_APPEND), then fdatasync: a record is whole or absent after a crash */
    if (hks_write_all(log->fd, line, len + 1) < 0) {
        int saved = errno;
        /* a short write (ENOSPC) must not leave half a record for the next one to follow */
        if (ftruncate(log->fd, (off_t)log->size) < 0)
            warn(log->path, "could not remove a partial record: %s", strerror(errno));
        return hks_fail(err, saved, "write the audit log %s", log->path);
    }
    /* the bytes are in the file: the chain goes on from them even if the sync fails */
    log->seq = seq;
    log->size += len + 1;
    memcpy(log->prev, hash, sizeof(hash));
    if (fdatasync(log->fd) < 0)
        return hks_fail(err, errno, "sync the audit log %s", log->path);
    return 0;
}

int hksd_audit_log_append(hksd_audit_log *log, json_t *record, hks_error *err)
{
    pthread_mutex_lock(&log->lock);
    int rc = append_locked(log, record, err);
    pthread_mutex_unlock(&log->lock);
    return rc;
}

void hksd_audit_log_head(hksd_audit_log *log, uint64_t *seq, char hash[HKSD_AUDIT_HASH_LEN])
{
    pthread_mutex_lock(&log->lock);
    *seq = log->seq;
    memcpy(hash, log->prev, HKSD_AUDIT_HASH_LEN);
    pthread_mutex_unlock(&log->lock);
}

void hksd_audit_log_close(hksd_audit_log *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log);
}
