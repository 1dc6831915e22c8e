#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <time.h>

int hks_fail(hks_error *err, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (errnum && n >= 0 && (size_t)n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(errnum));
    err->errnum = errnum;
    return -1;
}

int hks_wrap(hks_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    size_t cap = sizeof(err->msg);
    if (plen + 2 >= cap)
        plen = cap - 3;
    /* shift the old message right and put "prefix: " in front */
    size_t old_len = strnlen(err->msg, cap - 1);
    if (plen + 2 + old_len >= cap)
        old_len = cap - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, old_len);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + old_len] = '\0';
    return -1;
}

static int parse_scaled(const char *text, const char *const *units, const double *scales,
                        size_t n_units, double default_scale, unsigned long long *out)
{
    if (!text || !*text)
        return -1;
    const char *p = text;
    if (!isdigit((unsigned char)*p))
        return -1;
    char *end = NULL;
    errno = 0;
    double value = strtod(p, &end);
    if (errno || end == p || value < 0 || !isfinite(value))
        return -1;
    double scale = -1;
    if (*end == '\0') {
        scale = default_scale;
    } else {
        for (size_t i = 0; i < n_units; i++) {
            if (strcasecmp(end, units[i]) == 0) {
                scale = scales[i];
                break;
            }
        }
    }
    if (scale < 0)
        return -1;
    double total = value * scale;
    if (total >= 18446744073709551615.0)
        return -1;
    *out = (unsigned long long)total;
    return 0;
}

int hks_parse_size(const char *text, unsigned long long *out)
{
    static const char *const units[] = {"b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib"};
    static const double scales[] = {1,         1024.0,    1024.0,     1024.0,     1048576.0,
                                    1048576.0, 1048576.0, 1073741824, 1073741824, 1073741824};
    return parse_scaled(text, units, scales, HKS_ARRAY_LEN(units), 1, out);
}

int hks_parse_duration_ms(const char *text, unsigned long long *out)
{
    static const char *const units[] = {"ms", "s", "m", "h"};
    static const double scales[] = {1, 1000, 60000, 3600000};
    return parse_scaled(text, units, scales, HKS_ARRAY_LEN(units), 1000, out);
}

int hks_parse_uint(const char *text, unsigned long long min, unsigned long long max,
                   unsigned long long *out)
{
    if (!text || !isdigit((unsigned char)*text))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int hks_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hks_write_file(const char *path, const char *content, hks_error *err)
{
    cleanup_fd int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hks_fail(err, errno, "open %s", path);
    if (hks_write_all(fd, content, strlen(content)) < 0)
        return hks_fail(err, errno, "write '%s' to %s", content, path);
    return 0;
}

ssize_t hks_read_file(const char *path, char *buf, size_t size, hks_error *err)
{
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hks_fail(err, errno, "open %s", path);
    size_t total = 0;
    while (total + 1 < size) {
        ssize_t n = read(fd, buf + total, size - 1 - total);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return hks_fail(err, errno, "read %s", path);
        }
        if (n == 0)
            break;
        total += (size_t)n;
    }
    buf[total] = '\0';
    return (ssize_t)total;
}

unsigned long long hks_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

int hks_base64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

char *hks_utf8_copy(const char *data, size_t len, size_t *out_len)
{
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t need = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
        bool ok = need > 0 && i + need <= len;
        for (size_t k = 1; ok && k < need; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && need == 2 && c < 0xC2)
            ok = false; /* overlong */
        if (ok && need == 3) {
            unsigned cp = (c & 0x0Fu) << 12 | (p[i + 1] & 0x3Fu) << 6 | (p[i + 2] & 0x3Fu);
            ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok && need == 4) {
            unsigned cp = (c & 0x07u) << 18 | (p[i + 1] & 0x3Fu) << 12 | (p[i + 2] & 0x3Fu) << 6 |
                          (p[i + 3] & 0x3Fu);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (!ok) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
            continue;
        }
        memcpy(out + o, p + i, need);
        o += need;
        i += need;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

int hks_remove_below(int dir_fd, hks_error *err)
{
    DIR *d = fdopendir(dir_fd);
    if (!d) {
        close(dir_fd);
        return hks_fail(err, errno, "fdopendir");
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* unlinkat never follows a symlink: it removes the link */
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            rc = hks_fail(err, errno, "remove %s", e->d_name);
            continue;
        }
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || hks_remove_below(sub, err) < 0 ||
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
            rc = hks_fail(err, errno, "remove directory %s", e->d_name);
    }
    closedir(d);
    return rc;
}
