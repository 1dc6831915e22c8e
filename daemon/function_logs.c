/* Function logs: each instance's stdout and stderr are pipes read by one log thread, cut into
 * lines and appended to the function's logs.ndjson as {"ts","stream","instance","line"}. A full
 * log becomes logs.ndjson.1 (one generation kept), so a function that floods its output costs a
 * bounded amount of disk; a reader that falls behind slows only the writer of the pipe, the
 * function itself. Followers of a log are woken when it grows. */
#include "functions.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#define LINE_MAX_BYTES (16 * 1024) /* a longer line is cut into pieces of this size */
#define PIPE_BYTES     (256 * 1024)

typedef struct log_source {
    function *fn;
    unsigned instance;
    const char *stream;
    int fd;
    size_t len;
    char buf[LINE_MAX_BYTES];
} log_source;

int fn_log_open(function *fn, hks_error *err)
{
    if (fn->log_fd >= 0)
        close(fn->log_fd);
    fn->log_fd = open(fn->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fn->log_fd < 0)
        return hks_fail(err, errno, "open the function log %s", fn->log_path);
    struct stat st;
    fn->log_bytes = fstat(fn->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void rotate(function *fn)
{
    char old[sizeof(fn->log_path) + 4];
    snprintf(old, sizeof(old), "%s.1", fn->log_path);
    hks_error err = {0};
    if (rename(fn->log_path, old) < 0 || fn_log_open(fn, &err) < 0)
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"rotate function log\",\"path\":\"%s\"}\n",
                fn->log_path);
}

/* text as the inside of a JSON string: quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 replaced by U+FFFD (jansson would refuse the line otherwise).
 * Written by hand: this runs for every line a busy function prints. */
static size_t json_escape(const char *text, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static bool ascii(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] >= 0x80)
            return false;
    }
    return true;
}

void fn_log_line(function *fn, const char *stream, unsigned instance, const char *text, size_t len)
{
    char *clean = NULL;
    if (!ascii(text, len)) {
        clean = hks_utf8_copy(text, len, &len);
        if (!clean)
            return;
        text = clean;
    }
    char *out = malloc(len * 6 + 128);
    if (!out) {
        free(clean);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, 64, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, 96,
                          ".%03ldZ\",\"stream\":\"%s\",\"instance\":\"i-%u\",\"line\":\"",
                          now.tv_nsec / 1000000, stream, instance);
    n += json_escape(text, len, out + n);
    memcpy(out + n, "\"}\n", 3);
    n += 3;
    free(clean);
    pthread_mutex_lock(&fn->log_lock);
    if (fn->log_fd >= 0) {
        if (fn->log_bytes + n > FN_LOG_MAX_BYTES)
            rotate(fn);
        if (fn->log_fd >= 0 && hks_write_all(fn->log_fd, out, n) == 0)
            fn->log_bytes += n;
    }
    pthread_mutex_unlock(&fn->log_lock);
    free(out);
}

void fn_log_system(function *fn, unsigned instance, const char *text)
{
    fn_log_line(fn, "system", instance, text, strlen(text));
}

/* ---- the log thread ---- */

static void flush_lines(log_source *src, bool all)
{
    size_t start = 0;
    for (size_t i = 0; i < src->len; i++) {
        if (src->buf[i] != '\n')
            continue;
        size_t end = i > start && src->buf[i - 1] == '\r' ? i - 1 : i;
        fn_log_line(src->fn, src->stream, src->instance, src->buf + start, end - start);
        start = i + 1;
    }
    if ((all || start == 0) && src->len - start > 0 && (all || src->len == sizeof(src->buf))) {
        /* the rest at EOF, or a line longer than the buffer: written as it is */
        fn_log_line(src->fn, src->stream, src->instance, src->buf + start, src->len - start);
        start = src->len;
    }
    memmove(src->buf, src->buf + start, src->len - start);
    src->len -= start;
}

/* Returns false once the pipe is at EOF (every writer gone). */
static bool drain(log_source *src)
{
    for (;;) {
        ssize_t n = read(src->fd, src->buf + src->len, sizeof(src->buf) - src->len);
        if (n > 0) {
            src->len += (size_t)n;
            flush_lines(src, false);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        flush_lines(src, true);
        return false;
    }
}

static void *log_main(void *arg)
{
    fn_manager *fm = arg;
    for (;;) {
        struct epoll_event events[32];
        int n = epoll_wait(fm->log_epfd, events, 32, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            log_source *src = events[i].data.ptr;
            if (!src) {
                uint64_t count;
                (void)!read(fm->log_wake, &count, sizeof(count));
                continue;
            }
            bool open = drain(src);
            fn_log_wake_watchers(fm, src->fn->id);
            if (open)
                continue;
            epoll_ctl(fm->log_epfd, EPOLL_CTL_DEL, src->fd, NULL);
            close(src->fd);
            pthread_mutex_lock(&fm->lock);
            fn_unref(src->fn);
            fm->log_sources--;
            pthread_mutex_unlock(&fm->lock);
            free(src);
        }
        pthread_mutex_lock(&fm->lock);
        bool stop = fm->stopping && fm->log_sources == 0;
        pthread_mutex_unlock(&fm->lock);
        if (stop)
            return NULL;
    }
    return NULL;
}

int fn_log_attach(function *fn, unsigned instance, int *out_w, int *err_w, hks_error *err)
{
    fn_manager *fm = fn->fm;
    int pipes[2][2] = {{-1, -1}, {-1, -1}};
    log_source *srcs[2] = {calloc(1, sizeof(log_source)), calloc(1, sizeof(log_source))};
    const char *streams[2] = {"stdout", "stderr"};
    if (!srcs[0] || !srcs[1]) {
        free(srcs[0]);
        free(srcs[1]);
        return hks_fail(err, ENOMEM, "log sources");
    }
    for (int s = 0; s < 2; s++) {
        if (pipe2(pipes[s], O_CLOEXEC) < 0) {
            int saved = errno;
            for (int j = 0; j < 2; j++) {
                if (pipes[j][0] >= 0)
                    close(pipes[j][0]);
                if (pipes[j][1] >= 0)
                    close(pipes[j][1]);
                free(srcs[j]);
            }
            return hks_fail(err, saved, "pipes for an instance's output");
        }
        (void)fcntl(pipes[s][1], F_SETPIPE_SZ, PIPE_BYTES);
        fcntl(pipes[s][0], F_SETFL, O_NONBLOCK);
    }
    for (int s = 0; s < 2; s++) {
        *srcs[s] = (log_source){.fn = fn, .instance = instance, .stream = streams[s]};
        srcs[s]->fd = pipes[s][0];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = srcs[s]};
        if (epoll_ctl(fm->log_epfd, EPOLL_CTL_ADD, srcs[s]->fd, &ev) < 0) {
            /* not read: the instance's output on this stream is dropped, not blocked on */
            close(srcs[s]->fd);
            free(srcs[s]);
            continue;
        }
        fn->refs++;
        fm->log_sources++;
    }
    /* the epoll set owns each source until its EOF (log_main frees it) */
    *out_w = pipes[0][1]; // NOLINT(clang-analyzer-unix.Malloc)
    *err_w = pipes[1][1];
    return 0;
}

int fn_logs_start(fn_manager *fm, hks_error *err)
{
    fm->log_epfd = epoll_create1(EPOLL_CLOEXEC);
    fm->log_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fm->log_epfd < 0 || fm->log_wake < 0)
        return hks_fail(err, errno, "epoll/eventfd for function logs");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(fm->log_epfd, EPOLL_CTL_ADD, fm->log_wake, &ev);
    if (pthread_create(&fm->log_thread, NULL, log_main, fm) != 0)
        return hks_fail(err, errno, "start the log thread");
    fm->log_running = true;
    return 0;
}

/* After every sandbox has ended (the pool stopped): every pipe reaches EOF, the thread drains
 * them and ends. */
void fn_logs_stop(fn_manager *fm)
{
    if (fm->log_running) {
        uint64_t one = 1;
        (void)!write(fm->log_wake, &one, sizeof(one));
        pthread_join(fm->log_thread, NULL);
        fm->log_running = false;
    }
    if (fm->log_epfd >= 0)
        close(fm->log_epfd);
    if (fm->log_wake >= 0)
        close(fm->log_wake);
    fm->log_epfd = fm->log_wake = -1;
}

/* ---- watchers ---- */

void fn_log_wake_watchers(fn_manager *fm, const char *fn_id)
{
    for (;;) {
        pthread_mutex_lock(&fm->watch_lock);
        fn_watch *hit = NULL;
        for (fn_watch **p = &fm->watches; *p; p = &(*p)->next) {
            if (strcmp((*p)->fn_id, fn_id) == 0) {
                hit = *p;
                *p = hit->next;
                break;
            }
        }
        pthread_mutex_unlock(&fm->watch_lock);
        if (!hit)
            return;
        hit->wake(hit->ctx);
        free(hit);
    }
}
