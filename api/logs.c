/* GET /internal/v1/functions/{id}/logs: the function's log as NDJSON, filtered by `since` and
 * `tail`; with `follow` the response stays open and new lines follow as they are written. A
 * follower that has read everything suspends its connection until the daemon says the log grew
 * or the function went away (MHD's documented pattern for a content reader with nothing to send:
 * suspend, return 0, be resumed). */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TAIL_MAX    100000
#define CHUNK_BYTES (64 * 1024)

typedef struct log_follow {
    struct log_follow *next;
    unsigned long key; /* what the daemon's wake-up names: no pointer crosses threads */
    request *req;
    hksd *daemon;
    char fn_id[64];
    char path[PATH_MAX];
    int fd;
    ino_t ino;
    off_t offset;
    char *initial; /* the filtered past */
    size_t initial_len, initial_off;
    bool suspended;
} log_follow;

static pthread_mutex_t follows_lock = PTHREAD_MUTEX_INITIALIZER;
static log_follow *follows;
static unsigned long next_key;
static bool follows_stopping;

/* ---- the past: both generations of the log, filtered ---- */

/* since as the log's own timestamp format, so that lines compare as strings */
static int parse_since(const char *text, char *out, size_t size)
{
    unsigned long long secs;
    if (hks_parse_uint(text, 0, 1ULL << 40, &secs) == 0) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, size, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    unsigned ms = 0;
    if (*rest == '.') {
        rest++;
        unsigned digits = 0;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 3)
                ms = ms * 10 + (unsigned)(*rest - '0');
            digits++;
            rest++;
        }
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03uZ", base, ms);
    return 0;
}

/* The lines kept: all of them, or with a tail only the last `tail` (a ring of that size, so a
 * tail of the newest lines never holds the whole log). */
typedef struct line_ring {
    char **lines;
    size_t cap, count, start; /* cap 0: no tail, lines appended to all */
    char *all;
    size_t all_len, all_cap;
    bool failed;
} line_ring;

static void ring_push(line_ring *r, const char *line, size_t len)
{
    if (r->cap == 0) {
        if (r->all_len + len + 1 > r->all_cap) {
            size_t cap = r->all_cap ? r->all_cap : 64 * 1024;
            while (cap < r->all_len + len + 1)
                cap *= 2;
            char *grown = realloc(r->all, cap);
            if (!grown) {
                r->failed = true;
                return;
            }
            r->all = grown;
            r->all_cap = cap;
        }
        memcpy(r->all + r->all_len, line, len);
        r->all_len += len;
        r->all[r->all_len] = '\0';
        return;
    }
    char *copy = strndup(line, len);
    if (!copy) {
        r->failed = true;
        return;
    }
    if (r->count < r->cap) {
        r->lines[(r->start + r->count++) % r->cap] = copy;
        return;
    }
    free(r->lines[r->start]);
    r->lines[r->start] = copy;
    r->start = (r->start + 1) % r->cap;
}

static void scan_file(const char *path, const char *since, line_ring *ring, off_t *end, ino_t *ino)
{
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return;
    if (end) {
        *end = st.st_size;
        *ino = st.st_ino;
    }
    char *data = malloc((size_t)st.st_size + 1);
    if (!data) {
        ring->failed = true;
        return;
    }
    ssize_t n = pread(fd, data, (size_t)st.st_size, 0);
    for (size_t i = 0, start = 0; n > 0 && i < (size_t)n; i++) {
        if (data[i] != '\n')
            continue;
        /* {"ts":"..." is how every line starts: compare the stamp without parsing JSON */
        const char *ts = data + start + 7;
        bool keep = !since || (i - start > 7 + 24 && strncmp(ts, since, 24) >= 0);
        if (keep)
            ring_push(ring, data + start, i - start + 1);
        start = i + 1;
    }
    free(data);
}

/* Both generations of the log (each at most FN_LOG_MAX_BYTES), filtered; NULL when out of
 * memory. */
static char *past_lines(const char *path, const char *since, size_t tail, size_t *len, off_t *end,
                        ino_t *ino)
{
    line_ring ring = {.cap = tail};
    if (tail && !(ring.lines = calloc(tail, sizeof(char *))))
        return NULL;
    char old[PATH_MAX + 4];
    snprintf(old, sizeof(old), "%s.1", path);
    scan_file(old, since, &ring, NULL, NULL);
    scan_file(path, since, &ring, end, ino);
    if (!tail) {
        *len = ring.all_len;
        if (ring.failed) {
            free(ring.all);
            return NULL;
        }
        return ring.all ? ring.all : strdup("");
    }
    size_t total = 0;
    for (size_t i = 0; i < ring.count; i++)
        total += strlen(ring.lines[(ring.start + i) % ring.cap]);
    char *out = ring.failed ? NULL : malloc(total + 1);
    size_t o = 0;
    for (size_t i = 0; i < ring.count; i++) {
        char *line = ring.lines[(ring.start + i) % ring.cap];
        size_t n = strlen(line);
        if (out)
            memcpy(out + o, line, n);
        o += n;
        free(line);
    }
    free(ring.lines);
    if (out)
        out[o] = '\0';
    *len = out ? o : 0;
    return out;
}

/* ---- following ---- */

static void wake(void *ctx)
{
    unsigned long key = (unsigned long)(uintptr_t)ctx;
    pthread_mutex_lock(&follows_lock);
    for (log_follow *f = follows; f; f = f->next) {
        if (f->key == key && f->suspended) {
            f->suspended = false;
            MHD_resume_connection(f->req->conn);
        }
    }
    pthread_mutex_unlock(&follows_lock);
}

/* New whole lines of the log from the follower's offset; a rotated log is finished first, then
 * followed under its name again. */
static ssize_t read_new(log_follow *f, char *buf, size_t max)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        ssize_t n = f->fd >= 0 ? pread(f->fd, buf, max, f->offset) : 0;
        if (n > 0) {
            size_t whole = (size_t)n;
            while (whole > 0 && buf[whole - 1] != '\n')
                whole--;
            if (whole == 0 && (size_t)n < max)
                return 0; /* half a line: the rest is being written */
            if (whole == 0)
                whole = (size_t)n; /* a line longer than the buffer */
            f->offset += (off_t)whole;
            return (ssize_t)whole;
        }
        struct stat st;
        if (stat(f->path, &st) < 0 || st.st_ino == f->ino)
            return 0;
        if (f->fd >= 0)
            close(f->fd);
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        f->ino = st.st_ino;
        f->offset = 0;
    }
    return 0;
}

static ssize_t follow_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    log_follow *f = cls;
    if (f->initial_off < f->initial_len) {
        size_t n = f->initial_len - f->initial_off;
        n = n < max ? n : max;
        memcpy(buf, f->initial + f->initial_off, n);
        f->initial_off += n;
        return (ssize_t)n;
    }
    pthread_mutex_lock(&follows_lock);
    bool stopping = follows_stopping;
    pthread_mutex_unlock(&follows_lock);
    if (stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    ssize_t n = read_new(f, buf, max);
    if (n > 0)
        return n;
    char path[PATH_MAX];
    if (!hksd_fn_log_path(f->daemon, f->req->claims.project, f->fn_id, path, sizeof(path)))
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* nothing new: sleep until the log grows (suspend first, so no wake-up is lost) */
    pthread_mutex_lock(&follows_lock);
    f->suspended = true;
    MHD_suspend_connection(f->req->conn);
    pthread_mutex_unlock(&follows_lock);
    f->req->log_watch = hksd_fn_log_watch(f->daemon, f->fn_id, wake, (void *)(uintptr_t)f->key);
    return 0;
}

void api_log_follow_free(request *req)
{
    log_follow *f = req->follow;
    if (!f)
        return;
    if (req->log_watch)
        hksd_fn_log_unwatch(req->daemon, req->log_watch);
    pthread_mutex_lock(&follows_lock);
    for (log_follow **p = &follows; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    pthread_mutex_unlock(&follows_lock);
    if (f->fd >= 0)
        close(f->fd);
    free(f->initial);
    free(f);
    req->follow = NULL;
}

void api_log_follow_stop_all(api_server *s)
{
    (void)s;
    pthread_mutex_lock(&follows_lock);
    follows_stopping = true;
    for (log_follow *f = follows; f; f = f->next) {
        if (f->suspended) {
            f->suspended = false;
            MHD_resume_connection(f->req->conn);
        }
    }
    pthread_mutex_unlock(&follows_lock);
}

/* ---- the handler ---- */

static bool parse_bool(const char *text, bool *out)
{
    if (!text)
        return true;
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

void api_handle_function_logs(request *req)
{
    char path[PATH_MAX];
    if (!hksd_function_id_valid(req->fn_id) ||
        !hksd_fn_log_path(req->daemon, req->claims.project, req->fn_id, path, sizeof(path))) {
        json_t *function = hksd_function_id_valid(req->fn_id)
                               ? hksd_fn_get(req->daemon, req->claims.project, req->fn_id)
                               : NULL;
        if (function && strcmp(hksd_config_of(req->daemon)->backend, "kubernetes") == 0) {
            char message[400];
            snprintf(message, sizeof(message),
                     "the kubernetes backend does not serve function logs yet; read them from "
                     "the function's pods: kubectl logs -n %s -l serving.knative.dev/service=%s "
                     "-c function",
                     json_string_value(json_object_get(function, "namespace")), req->fn_id);
            api_error(req, 501, "not_implemented", message, NULL);
        } else {
            api_error(req, 404, "not_found", "no such function", NULL);
        }
        json_decref(function);
        return;
    }
    const char *follow_text =
        MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "follow");
    const char *since_text = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *tail_text = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "tail");
    bool follow = false;
    char since[40];
    unsigned long long tail = 0;
    if (!parse_bool(follow_text, &follow)) {
        api_error(req, 422, "invalid", "follow must be true or false",
                  json_pack("{s:s}", "field", "follow"));
        return;
    }
    if (since_text && parse_since(since_text, since, sizeof(since)) < 0) {
        api_error(req, 422, "invalid",
                  "since must be a time like 2026-11-29T07:00:00Z or unix seconds",
                  json_pack("{s:s}", "field", "since"));
        return;
    }
    if (tail_text && hks_parse_uint(tail_text, 0, TAIL_MAX, &tail) < 0) {
        api_error(req, 422, "invalid", "tail must be a number of lines from 0 to 100000",
                  json_pack("{s:s}", "field", "tail"));
        return;
    }
    size_t len = 0;
    off_t end = 0;
    ino_t ino = 0;
    char *past = (tail_text && tail == 0)
                     ? strdup("")
                     : past_lines(path, since_text ? since : NULL, (size_t)tail, &len, &end, &ino);
    if (tail_text && tail == 0) {
        struct stat st;
        if (stat(path, &st) == 0) {
            end = st.st_size;
            ino = st.st_ino;
        }
    }
    if (!past) {
        api_error(req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    if (!follow) {
        free(req->resp.body);
        req->resp = (response){
            .status = 200, .body = past, .len = len, .content_type = "application/x-ndjson"};
        req->answered = true;
        return;
    }
    log_follow *f = calloc(1, sizeof(*f));
    if (!f) {
        free(past);
        api_error(req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    f->req = req;
    f->daemon = req->daemon;
    snprintf(f->fn_id, sizeof(f->fn_id), "%s", req->fn_id);
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    f->ino = ino;
    f->offset = end;
    f->initial = past;
    f->initial_len = len;
    pthread_mutex_lock(&follows_lock);
    f->key = ++next_key;
    f->next = follows;
    follows = f;
    pthread_mutex_unlock(&follows_lock);
    req->follow = f;
    free(req->resp.body);
    req->resp = (response){.status = 200, .content_type = "application/x-ndjson"};
    /* no free callback: the request owns f (api_log_follow_free) */
    req->resp.stream =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, CHUNK_BYTES, follow_reader, f, NULL);
    req->answered = true;
}
