#include "cli/util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

cli_term cli_tty;

int cli_output_parse(const char *text, cli_output *out)
{
    if (strcmp(text, "table") == 0)
        *out = CLI_OUT_TABLE;
    else if (strcmp(text, "json") == 0)
        *out = CLI_OUT_JSON;
    else if (strcmp(text, "name") == 0)
        *out = CLI_OUT_NAME;
    else
        return -1;
    return 0;
}

static void vfill(cli_error *err, int errnum, const char *fmt, va_list ap)
{
    int n = vsnprintf(err->e.msg, sizeof(err->e.msg), fmt, ap);
    if (errnum && n >= 0 && (size_t)n < sizeof(err->e.msg))
        snprintf(err->e.msg + n, sizeof(err->e.msg) - (size_t)n, ": %s", strerror(errnum));
    err->e.errnum = errnum;
    err->hint[0] = '\0';
    err->field[0] = '\0';
}

int cli_fail(cli_error *err, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfill(err, errnum, fmt, ap);
    va_end(ap);
    err->exit_code = CLI_EXIT_FAILED;
    return -1;
}

int cli_fail_usage(cli_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfill(err, 0, fmt, ap);
    va_end(ap);
    err->exit_code = CLI_EXIT_USAGE;
    return -1;
}

void cli_hint(cli_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

int cli_wrap(cli_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    return hks_wrap(&err->e, "%s", prefix);
}

/* Print text with control characters (newlines included) shown as spaces: one line, always. */
static void put_one_line(FILE *f, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
}

int cli_report(const cli_error *err)
{
    fputs("hks-func: ", stderr);
    cli_fputs_color(stderr, CLI_RED, "error:");
    fputc(' ', stderr);
    put_one_line(stderr, err->e.msg[0] ? err->e.msg : "failed");
    if (err->hint[0]) {
        fputs("; ", stderr);
        cli_fputs_color(stderr, CLI_DIM, "hint:");
        fputc(' ', stderr);
        put_one_line(stderr, err->hint);
    }
    fputc('\n', stderr);
    return err->exit_code ? err->exit_code : CLI_EXIT_FAILED;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "hks-func%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    cli_fputs_color(stderr, CLI_RED, "usage error:");
    fputc(' ', stderr);
    put_one_line(stderr, msg);
    fputs("; ", stderr);
    cli_fputs_color(stderr, CLI_DIM, "hint:");
    fprintf(stderr, " see hks-func %s%s--help\n", cmd ? cmd : "", cmd ? " " : "");
    return CLI_EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fputs("hks-func: ", stderr);
    cli_fputs_color(stderr, CLI_YELLOW, "warning:");
    fputc(' ', stderr);
    put_one_line(stderr, msg);
    fputc('\n', stderr);
}

void cli_term_init(bool no_color)
{
    cli_tty.tty_in = isatty(STDIN_FILENO) == 1;
    cli_tty.tty_out = isatty(STDOUT_FILENO) == 1;
    cli_tty.tty_err = isatty(STDERR_FILENO) == 1;
    const char *nc = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    bool allowed = !no_color && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
    cli_tty.color_out = allowed && cli_tty.tty_out;
    cli_tty.color_err = allowed && cli_tty.tty_err;
}

void cli_fputs_color(FILE *f, const char *code, const char *text)
{
    bool color = f == stdout ? cli_tty.color_out : f == stderr ? cli_tty.color_err : false;
    if (color)
        fprintf(f, "\033[%sm%s\033[0m", code, text);
    else
        fputs(text, f);
}

int cli_buf_append(cli_buf *b, const void *data, size_t len)
{
    if (len > SIZE_MAX / 2 - b->len - 1)
        return -1;
    if (!b->data || b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int cli_buf_printf(cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return -1;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = cli_buf_append(b, tmp, (size_t)n);
    free(tmp);
    return rc;
}

void cli_buf_free(cli_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int cli_read_file(const char *path, size_t max, cli_buf *out, cli_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    cleanup_fd int fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(err, errno, "open %s", is_stdin ? "stdin" : path);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_fail(err, EISDIR, "read %s", path);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cli_fail(err, errno, "read %s", is_stdin ? "stdin" : path);
        if (n == 0)
            break;
        if (out->len + (size_t)n > max)
            return cli_fail(err, 0, "%s is larger than %zu bytes", is_stdin ? "stdin" : path, max);
        if (cli_buf_append(out, chunk, (size_t)n) < 0)
            return cli_fail(err, ENOMEM, "read %s", path);
    }
    if (!out->data && cli_buf_append(out, "", 0) < 0)
        return cli_fail(err, ENOMEM, "read %s", path);
    return 0;
}

int cli_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          cli_error *err)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp))
        return cli_fail(err, ENAMETOOLONG, "write %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return cli_fail(err, errno, "create %s", tmp);
    if (fchmod(fd, mode) < 0 || hks_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        return cli_fail(err, saved, "write %s", tmp);
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int saved = errno;
        unlink(tmp);
        return cli_fail(err, saved, "replace %s", path);
    }
    return 0;
}

char *cli_base64_encode(const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out)
        return NULL;
    const unsigned char *in = data;
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

int cli_base64_decode(const char *text, size_t len, bool url, cli_buf *out)
{
    while (len > 0 && text[len - 1] == '=')
        len--;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = hks_base64_value((unsigned char)text[i], url);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)(acc >> bits & 0xff);
            if (cli_buf_append(out, &c, 1) < 0)
                return -1;
        }
    }
    if (!out->data && cli_buf_append(out, "", 0) < 0)
        return -1;
    return 0;
}

bool cli_utf8_valid(const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static long long days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

int cli_parse_rfc3339(const char *text, time_t *out)
{
    int y, mo, d, h, mi, s, n = 0;
    if (sscanf(text, "%4d-%2d-%2d%*[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
        n == 0)
        return -1;
    const char *p = text + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k == 0)
            return -1;
        offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 1 + k;
    } else {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    long long days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = (time_t)(days * 86400 + h * 3600LL + mi * 60LL + s - offset);
    return 0;
}

int cli_json_time(const json_t *value, time_t *out)
{
    if (json_is_integer(value)) {
        *out = (time_t)json_integer_value(value);
        return 0;
    }
    if (json_is_string(value))
        return cli_parse_rfc3339(json_string_value(value), out);
    return -1;
}

void cli_format_relative(time_t t, time_t now, char *buf, size_t size)
{
    if (t == 0) {
        snprintf(buf, size, "-");
        return;
    }
    long long delta = (long long)t - (long long)now;
    bool future = delta > 0;
    unsigned long long a = (unsigned long long)(future ? delta : -delta);
    char amount[32];
    if (a < 5) {
        snprintf(buf, size, "now");
        return;
    } else if (a < 120) {
        snprintf(amount, sizeof(amount), "%llus", a);
    } else if (a < 7200) {
        snprintf(amount, sizeof(amount), "%llum", a / 60);
    } else if (a < 172800) {
        snprintf(amount, sizeof(amount), "%lluh%02llum", a / 3600, a % 3600 / 60);
    } else {
        snprintf(amount, sizeof(amount), "%llud", a / 86400);
    }
    snprintf(buf, size, future ? "in %s" : "%s ago", amount);
}

void cli_format_bytes(unsigned long long bytes, char *buf, size_t size)
{
    if (bytes < 1024)
        snprintf(buf, size, "%llu B", bytes);
    else if (bytes < 1024ULL * 1024)
        snprintf(buf, size, "%.1f KiB", (double)bytes / 1024.0);
    else
        snprintf(buf, size, "%.1f MiB", (double)bytes / 1048576.0);
}

bool cli_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 63 || name[0] < 'a' || name[0] > 'z' || name[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

int cli_print_json(const json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    puts(text);
    free(text);
    return 0;
}

int cli_table_init(cli_table *t, size_t ncols, const char *const *header)
{
    *t = (cli_table){.ncols = ncols};
    return cli_table_add(t, header);
}

int cli_table_add(cli_table *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (!grown)
            return -1;
        t->cells = grown;
        t->cap = cap;
    }
    char **cells = t->cells + t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        cells[c] = strdup(row[c] && *row[c] ? row[c] : "-");
        if (!cells[c]) {
            for (size_t k = 0; k < c; k++)
                free(cells[k]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t widths[16] = {0};
    size_t ncols = t->ncols < HKS_ARRAY_LEN(widths) ? t->ncols : HKS_ARRAY_LEN(widths);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            bool last = c + 1 == ncols;
            if (r == 0)
                cli_fputs_color(f, CLI_BOLD, cell);
            else
                fputs(cell, f);
            if (!last)
                fprintf(f, "%*s", (int)(widths[c] - strlen(cell) + 3), "");
        }
        fputc('\n', f);
    }
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    *t = (cli_table){0};
}
