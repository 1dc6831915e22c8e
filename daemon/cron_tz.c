/* Time zones for CronJobs: TZif files (RFC 8536) and their POSIX TZ footer, read without tzset or
 * localtime so that no process-wide state is touched (see cron.h). */
#include "cron.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#ifndef HKSD_ZONEINFO_DIR
#define HKSD_ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

/* Real zones are a few KiB with a few hundred transitions; the caps only bound hostile input. */
#define TZIF_MAX_BYTES  (512 * 1024)
#define TZIF_MAX_TIMES  50000
#define TZIF_MAX_FOOTER 256
/* Transition times beyond +-2^60 s are refused so that adding an offset never overflows; zic's
 * earliest time ("the big bang") is -2^59. */
#define TZIF_TIME_LIMIT (INT64_C(1) << 60)

/* ---- civil time ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Howard Hinnant's days_from_civil / civil_from_days: exact for every int64 year in range. */
int64_t hksd_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void hksd_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned hksd_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[(m - 1) % 12];
}

unsigned hksd_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday */
    return (unsigned)(days - floor_div(days + 4, 7) * 7 + 4);
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    unsigned m, d;
    hksd_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ strings (the TZif footer, RFC 8536 section 3.3) ---- */

typedef struct tz_date {
    char kind;       /* 'J': day 1-365 without Feb 29, 'D': day 0-365 with it, 'M': Mm.w.d */
    int day;         /* J, D */
    int month, week; /* M: month 1-12, week 1-5 (5 = the last) */
    int wday;        /* M: 0 = Sunday */
    int32_t time;    /* seconds after local midnight, -167h..167h (RFC 8536 extension) */
} tz_date;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool dst;                 /* false: std_off all year */
    tz_date start, end;       /* DST starts (in standard time), ends (in daylight time) */
} tz_rule;

struct hksd_tz {
    int32_t initial; /* offset before the first transition: time type 0 */
    bool has_rule;   /* a footer: it governs from the last transition on (all time if none) */
    tz_rule rule;
    size_t n;
    struct tz_transition {
        int64_t at;
        int32_t off;
    } tr[];
};

static const char *tz_abbr(const char *s)
{
    const char *begin;
    if (*s == '<') {
        begin = ++s;
        while (isalnum((unsigned char)*s) || *s == '+' || *s == '-')
            s++;
        return *s == '>' && s - begin >= 3 ? s + 1 : NULL;
    }
    begin = s;
    while (isalpha((unsigned char)*s))
        s++;
    return s - begin >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours. */
static const char *tz_hms(const char *s, int max_hours, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        int digits = 0;
        while (isdigit((unsigned char)*s) && digits < 3) {
            parts[i] = parts[i] * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || isdigit((unsigned char)*s) || (i > 0 && (digits > 2 || parts[i] > 59)))
            return NULL;
    }
    if (parts[0] > max_hours)
        return NULL;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return s;
}

static const char *tz_number(const char *s, int min, int max, int *out)
{
    if (!isdigit((unsigned char)*s))
        return NULL;
    int v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s++ - '0');
        if (v > max)
            return NULL;
    }
    *out = v;
    return v >= min ? s : NULL;
}

static const char *tz_rule_date(const char *s, tz_date *d)
{
    if (*s == 'J') {
        d->kind = 'J';
        s = tz_number(s + 1, 1, 365, &d->day);
    } else if (*s == 'M') {
        d->kind = 'M';
        s = tz_number(s + 1, 1, 12, &d->month);
        if (s && *s == '.')
            s = tz_number(s + 1, 1, 5, &d->week);
        else
            s = NULL;
        if (s && *s == '.')
            s = tz_number(s + 1, 0, 6, &d->wday);
        else
            s = NULL;
    } else {
        d->kind = 'D';
        s = tz_number(s, 0, 365, &d->day);
    }
    d->time = 2 * 3600;
    if (s && *s == '/')
        s = tz_hms(s + 1, 167, &d->time);
    return s;
}

static int tz_parse_posix(const char *s, tz_rule *r, hks_error *err)
{
    const char *text = s;
    int32_t off;
    memset(r, 0, sizeof(*r));
    if (!(s = tz_abbr(s)) || !(s = tz_hms(s, 24, &off)))
        goto bad;
    r->std_off = r->dst_off = -off; /* POSIX counts west of UTC */
    if (*s == '\0')
        return 0;
    if (!(s = tz_abbr(s)))
        goto bad;
    r->dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = tz_hms(s, 24, &off)))
            goto bad;
        r->dst_off = -off;
    }
    if (*s ==
        '\0') /* no rule: POSIX leaves it to the implementation; glibc and Go use the US one */
        s = ",M3.2.0,M11.1.0";
    if (*s != ',' || !(s = tz_rule_date(s + 1, &r->start)) || *s != ',' ||
        !(s = tz_rule_date(s + 1, &r->end)) || *s != '\0')
        goto bad;
    return 0;
bad:
    return hks_fail(err, 0, "footer '%.64s' is not a POSIX TZ string", text);
}

/* Local time (seconds since the epoch, as if local time were UTC) at which date happens in year y.
 */
static int64_t tz_rule_time(const tz_date *d, int64_t y)
{
    int64_t day;
    if (d->kind == 'J') {
        day = hksd_days_from_civil(y, 1, 1) + d->day - 1 + (is_leap(y) && d->day >= 60);
    } else if (d->kind == 'D') {
        day = hksd_days_from_civil(y, 1, 1) + d->day;
    } else {
        int64_t first = hksd_days_from_civil(y, (unsigned)d->month, 1);
        int mday = (d->wday - (int)hksd_weekday(first) + 7) % 7 + (d->week - 1) * 7;
        while (mday >= (int)hksd_days_in_month(y, (unsigned)d->month))
            mday -= 7;
        day = first + mday;
    }
    return day * 86400 + d->time;
}

/* The rule's transitions in the years around t: DST starts at start[i], ends at end[i]. */
static void tz_rule_around(const tz_rule *r, int64_t t, int64_t start[4], int64_t end[4])
{
    /* two years back: a transition time may be up to 167 hours past its day */
    int64_t y = year_of(t + r->std_off) - 2;
    for (int i = 0; i < 4; i++) {
        start[i] = tz_rule_time(&r->start, y + i) - r->std_off;
        end[i] = tz_rule_time(&r->end, y + i) - r->dst_off;
    }
}

static int32_t tz_rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->dst)
        return r->std_off;
    int64_t start[4], end[4], last = INT64_MIN;
    bool dst = false;
    tz_rule_around(r, t, start, end);
    /* the latest transition at or before t wins; when DST ends and starts at the same instant
     * ("all year DST", e.g. ",0/0,J365/25") it is in effect */
    for (int i = 0; i < 4; i++) {
        if (end[i] <= t && end[i] > last)
            last = end[i], dst = false;
    }
    for (int i = 0; i < 4; i++) {
        if (start[i] <= t && start[i] >= last)
            last = start[i], dst = true;
    }
    return dst ? r->dst_off : r->std_off;
}

static int64_t tz_rule_next(const tz_rule *r, int64_t t)
{
    if (!r->dst)
        return INT64_MAX;
    int64_t start[4], end[4], next = INT64_MAX;
    tz_rule_around(r, t, start, end);
    for (int i = 0; i < 4; i++) {
        if (start[i] > t && start[i] < next)
            next = start[i];
        if (end[i] > t && end[i] < next)
            next = end[i];
    }
    return next;
}

/* ---- lookups ---- */

int32_t hksd_tz_offset(const hksd_tz *tz, int64_t t)
{
    if (tz->n == 0 || t >= tz->tr[tz->n - 1].at) {
        if (tz->has_rule)
            return tz_rule_offset(&tz->rule, t);
        return tz->n ? tz->tr[tz->n - 1].off : tz->initial;
    }
    if (t < tz->tr[0].at)
        return tz->initial;
    size_t lo = 0, hi = tz->n - 1; /* tr[lo].at <= t < tr[hi].at */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->tr[mid].at <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->tr[lo].off;
}

int64_t hksd_tz_next_transition(const hksd_tz *tz, int64_t t)
{
    if (tz->n && t < tz->tr[tz->n - 1].at) {
        size_t lo = 0, hi = tz->n - 1; /* the first transition after t */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->tr[mid].at > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        return tz->tr[lo].at;
    }
    return tz->has_rule ? tz_rule_next(&tz->rule, t) : INT64_MAX;
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const unsigned char *p, size_t size)
{
    if (size == 4)
        return (int32_t)be32(p);
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

enum { ISUTCNT, ISSTDCNT, LEAPCNT, TIMECNT, TYPECNT, CHARCNT };

static uint64_t tzif_block_size(const uint32_t c[6], size_t tsize)
{
    return (uint64_t)c[TIMECNT] * (tsize + 1) + (uint64_t)c[TYPECNT] * 6 + c[CHARCNT] +
           (uint64_t)c[LEAPCNT] * (tsize + 4) + c[ISSTDCNT] + c[ISUTCNT];
}

static void tzif_counts(const unsigned char *header, uint32_t c[6])
{
    for (int i = 0; i < 6; i++)
        c[i] = be32(header + 20 + 4 * i);
}

/* The data block at p (time size tsize) into a new zone. */
static hksd_tz *tzif_block(const unsigned char *p, const uint32_t c[6], size_t tsize,
                           hks_error *err)
{
    if (c[TYPECNT] < 1 || c[TYPECNT] > 256) {
        hks_fail(err, 0, "%u local time types (1-256 expected)", c[TYPECNT]);
        return NULL;
    }
    if (c[TIMECNT] > TZIF_MAX_TIMES) {
        hks_fail(err, 0, "%u transitions, more than %d", c[TIMECNT], TZIF_MAX_TIMES);
        return NULL;
    }
    /* leap seconds ("right/" zones) count time differently from unix time */
    if (c[LEAPCNT] != 0) {
        hks_fail(err, 0, "has leap second records, use the zone without \"right/\"");
        return NULL;
    }
    if ((c[ISSTDCNT] != 0 && c[ISSTDCNT] != c[TYPECNT]) ||
        (c[ISUTCNT] != 0 && c[ISUTCNT] != c[TYPECNT])) {
        hks_fail(err, 0, "inconsistent counts of standard/UT indicators");
        return NULL;
    }
    const unsigned char *times = p, *idx = p + (size_t)c[TIMECNT] * tsize;
    const unsigned char *types = idx + c[TIMECNT];
    int32_t offs[256];
    for (uint32_t i = 0; i < c[TYPECNT]; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        /* RFC 8536 3.2: -2^31 is not allowed, [-89999, 93599] is what readers should expect */
        if (off < -89999 || off > 93599 || types[6 * i + 4] > 1) {
            hks_fail(err, 0, "local time type %u is invalid (offset %d)", i, off);
            return NULL;
        }
        offs[i] = off;
    }
    hksd_tz *tz = calloc(1, sizeof(*tz) + (size_t)c[TIMECNT] * sizeof(tz->tr[0]));
    if (!tz) {
        hks_fail(err, ENOMEM, "load zone");
        return NULL;
    }
    tz->initial = offs[0];
    tz->n = c[TIMECNT];
    for (size_t i = 0; i < tz->n; i++) {
        int64_t at = be_time(times + i * tsize, tsize);
        if (at <= -TZIF_TIME_LIMIT || at >= TZIF_TIME_LIMIT || idx[i] >= c[TYPECNT] ||
            (i > 0 && at <= tz->tr[i - 1].at)) {
            hks_fail(err, 0, "transition %zu is invalid (out of order or out of range)", i);
            free(tz);
            return NULL;
        }
        tz->tr[i].at = at;
        tz->tr[i].off = offs[idx[i]];
    }
    return tz;
}

int hksd_tz_parse(const void *data, size_t len, hksd_tz **out, hks_error *err)
{
    const unsigned char *p = data;
    uint32_t c[6];
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return hks_fail(err, 0, "not a TZif file");
    unsigned char version = p[4];
    if (version != 0 && version < '2')
        return hks_fail(err, 0, "TZif version byte 0x%02x is unknown", version);
    tzif_counts(p, c);
    uint64_t size = tzif_block_size(c, 4);
    if (size > len - 44)
        return hks_fail(err, 0, "truncated TZif file (version 1 data)");
    if (version == 0) {
        hksd_tz *tz = tzif_block(p + 44, c, 4, err);
        if (!tz)
            return -1;
        *out = tz;
        return 0;
    }
    /* version 2+: skip the 32-bit data, read the second header, 64-bit data and the footer */
    p += 44 + size;
    len -= 44 + size;
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return hks_fail(err, 0, "TZif file without its version 2 header");
    tzif_counts(p, c);
    size = tzif_block_size(c, 8);
    if (size > len - 44)
        return hks_fail(err, 0, "truncated TZif file (version 2 data)");
    const char *footer = (const char *)p + 44 + size;
    size_t rest = len - 44 - (size_t)size;
    const char *nl = rest > 1 && footer[0] == '\n' ? memchr(footer + 1, '\n', rest - 1) : NULL;
    if (!nl || (size_t)(nl - footer) > TZIF_MAX_FOOTER)
        return hks_fail(err, 0, "TZif file without a footer line");
    char text[TZIF_MAX_FOOTER + 1];
    size_t footer_len = (size_t)(nl - footer) - 1;
    memcpy(text, footer + 1, footer_len);
    text[footer_len] = '\0';
    if (strlen(text) != footer_len)
        return hks_fail(err, 0, "footer with a NUL byte");
    tz_rule rule;
    if (footer_len && tz_parse_posix(text, &rule, err) < 0)
        return -1;
    hksd_tz *tz = tzif_block(p + 44, c, 8, err);
    if (!tz)
        return -1;
    tz->has_rule = footer_len > 0;
    tz->rule = rule;
    *out = tz;
    return 0;
}

void hksd_tz_free(hksd_tz *tz)
{
    free(tz);
}

/* Kubernetes' validateTimeZone: each '/'-separated component 1-14 characters of A-Za-z0-9.-_+,
 * not "." or "..", not starting with '-'; and never "Local". */
static int tz_name_check(const char *name, hks_error *err)
{
    if (!name || !*name)
        return hks_fail(err, 0, "timezone: empty, name an IANA zone such as Europe/Berlin");
    if (strcasecmp(name, "Local") == 0)
        return hks_fail(err, 0,
                        "timezone: 'Local' is not allowed, name an IANA zone such as "
                        "Europe/Berlin");
    const char *s = name;
    while (true) {
        size_t n = strcspn(s, "/");
        bool dots = (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
        bool ok = n >= 1 && n <= 14 && s[0] != '-' && !dots && s - name < 200;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)s[i]) || strchr(".-_+", s[i]);
        if (!ok)
            return hks_fail(err, 0,
                            "timezone: '%.64s' is not a time zone name (components of 1-14 "
                            "letters, digits, '.', '-', '_' or '+')",
                            name);
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

int hksd_tz_load(const char *name, hksd_tz **out, hks_error *err)
{
    if (!name || strcmp(name, "UTC") == 0) {
        hksd_tz *tz = calloc(1, sizeof(*tz));
        if (!tz)
            return hks_fail(err, ENOMEM, "timezone UTC");
        *out = tz;
        return 0;
    }
    if (tz_name_check(name, err) < 0)
        return -1;
    char path[sizeof(HKSD_ZONEINFO_DIR) + 256];
    snprintf(path, sizeof(path), "%s/%s", HKSD_ZONEINFO_DIR, name);
    /* O_NONBLOCK: a FIFO planted in the zone directory must not hang the daemon */
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return hks_fail(err, 0, "timezone: unknown time zone %s (no %s)", name, path);
        return hks_fail(err, errno, "timezone %s: open %s", name, path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "timezone %s: stat %s", name, path);
    if (!S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_BYTES)
        return hks_fail(err, 0, "timezone: %s is not a time zone (%s is %s)", name, path,
                        S_ISDIR(st.st_mode) ? "a directory" : "not a zone file");
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "timezone %s", name);
    size_t got = 0;
    int rc = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                rc = hks_fail(err, errno, "timezone %s: read %s", name, path);
            break;
        }
        got += (size_t)n;
    }
    if (rc == 0 && hksd_tz_parse(buf, got, out, err) < 0)
        rc = hks_wrap(err, "timezone %s: %s", name, path);
    free(buf);
    return rc;
}

bool hksd_cron_timezone_valid(const char *name, hks_error *err)
{
    if (!name)
        return tz_name_check(name, err) == 0;
    hksd_tz *tz = NULL;
    if (hksd_tz_load(name, &tz, err) < 0)
        return false;
    hksd_tz_free(tz);
    return true;
}
