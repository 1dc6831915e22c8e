/* Helpers shared by every module: scoped cleanup and errors with context. */
#ifndef HKS_COMMON_H
#define HKS_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* An error with a message that says what failed, on which path and why. It is a fixed buffer so
 * that code running in a freshly forked sandbox child can fill it without allocating. */
typedef struct hks_error {
    int errnum;     /* errno of the failure, 0 when not a system error */
    char msg[1024]; /* "what: why" */
} hks_error;

/* Fill err ("fmt: strerror(errnum)") and return -1, so callers can `return hks_fail(...)`. */
int hks_fail(hks_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with more context: "context: previous". Returns -1. */
int hks_wrap(hks_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void hks_freep(void *p)
{
    free(*(void **)p);
}
static inline void hks_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
static inline void hks_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void hks_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

#define cleanup_free __attribute__((cleanup(hks_freep)))
#define cleanup_fd   __attribute__((cleanup(hks_closep)))
#define cleanup_file __attribute__((cleanup(hks_fclosep)))
#define cleanup_dir  __attribute__((cleanup(hks_closedirp)))

/* Take ownership out of a cleanup variable. */
#define steal_pointer(pp)                                                                          \
    __extension__({                                                                                \
        __typeof__(*(pp)) steal_tmp_ = *(pp);                                                      \
        *(pp) = NULL;                                                                              \
        steal_tmp_;                                                                                \
    })
#define steal_fd(fdp)                                                                              \
    __extension__({                                                                                \
        int steal_fd_tmp_ = *(fdp);                                                                \
        *(fdp) = -1;                                                                               \
        steal_fd_tmp_;                                                                             \
    })

#define HKS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parse "512K", "64M", "1G", "1024" into bytes; rejects overflow, negatives and junk. */
int hks_parse_size(const char *text, unsigned long long *out);
/* Parse "500ms", "5s", "2m", "1h", "1.5s" (a bare number is seconds) into milliseconds. */
int hks_parse_duration_ms(const char *text, unsigned long long *out);
/* Parse a non-negative decimal integer within [min, max]. */
int hks_parse_uint(const char *text, unsigned long long min, unsigned long long max,
                   unsigned long long *out);

/* write() all of buf, retrying on EINTR and short writes. */
int hks_write_all(int fd, const void *buf, size_t len);
/* Write a whole small file (used for /proc and cgroup control files). */
int hks_write_file(const char *path, const char *content, hks_error *err);
/* Read a small file into buf (NUL-terminated); returns bytes read or -1. */
ssize_t hks_read_file(const char *path, char *buf, size_t size, hks_error *err);

/* The value of a base64 character (RFC 4648: url selects the '-' '_' alphabet of section 5 over
 * '+' '/'), or -1 for any other byte (padding included). */
int hks_base64_value(unsigned char c, bool url);

/* Monotonic clock in microseconds. */
unsigned long long hks_now_us(void);

/* Remove everything below the directory dir_fd (consumed: readdir moves its offset) without
 * following symlinks; the directory itself stays. */
int hks_remove_below(int dir_fd, hks_error *err);

/* A NUL-terminated copy of len bytes as valid UTF-8, each invalid sequence replaced by U+FFFD
 * (for output shown as JSON text); malloc'd, NULL when out of memory. */
char *hks_utf8_copy(const char *data, size_t len, size_t *out_len);

#endif
