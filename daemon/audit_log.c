/* The audit log writer. */
#include "audit_log.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct hksd_audit_log {
    char path[PATH_MAX];
    int fd;
    uint64_t rotate_bytes;
    unsigned keep;
    pthread_mutex_t lock;
};

int hksd_audit_log_open(const char *path, uint64_t rotate_bytes, unsigned keep,
                        hksd_audit_log **out, hks_error *err)
{
    hksd_audit_log *log = calloc(1, sizeof(*log));
    if (!log)
        return hks_fail(err, ENOMEM, "audit log");
    snprintf(log->path, sizeof(log->path), "%s", path);
    log->rotate_bytes = rotate_bytes;
    log->keep = keep;
    pthread_mutex_init(&log->lock, NULL);
    log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log->fd < 0) {
        int saved = errno;
        pthread_mutex_destroy(&log->lock);
        free(log);
        return hks_fail(err, saved, "open the audit log %s", path);
    }
    *out = log;
    return 0;
}

static void iso_time(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

int hksd_audit_log_append(hksd_audit_log *log, json_t *record, hks_error *err)
{
    char ts[40];
    iso_time(ts, sizeof(ts));
    json_object_set_new(record, "ts", json_string(ts));
    cleanup_free char *line = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (!line)
        return hks_fail(err, ENOMEM, "audit record");
    size_t len = strlen(line);
    line[len] = '\n';
    pthread_mutex_lock(&log->lock);
    /* one write per record (O_APPEND), then fsync: a record is whole or absent after a crash */
    int rc = hks_write_all(log->fd, line, len + 1) == 0 && fdatasync(log->fd) == 0
                 ? 0
                 : hks_fail(err, errno, "write the audit log %s", log->path);
    pthread_mutex_unlock(&log->lock);
    return rc;
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
