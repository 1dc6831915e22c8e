/* CronJob schedules: parsing (robfig/cron v3 ParseStandard, as Kubernetes validates them, with
 * errors that name the field) and the next run time in a time zone. */
#include "cron.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

/* ---- parsing ---- */

typedef struct field_def {
    const char *name;
    const char *names; /* three-letter names, in value order from min, or NULL */
    const char *kind;  /* "month", "day": for "'FOO' is not a month name" */
    unsigned min, max; /* values that may be written */
    unsigned star_max; /* where '*' and "a/n" end: 6 for the day of week, whose 7 is an alias */
    bool question;     /* '?' allowed */
} field_def;

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const field_def fields[F_COUNT] = {
    {"minute", NULL, NULL, 0, 59, 59, false},
    {"hour", NULL, NULL, 0, 23, 23, false},
    {"day of month", NULL, NULL, 1, 31, 31, true},
    {"month", "janfebmaraprmayjunjulaugsepoctnovdec", "month", 1, 12, 12, false},
    {"day of week", "sunmontuewedthufrisat", "day", 0, 7, 6, true},
};

/* user text for a message: printable ASCII as is, other bytes as \xHH, long text cut */
static const char *show(char *buf, size_t size, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch > 0x20 && ch < 0x7f)
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return n > 0;
}

/* A decimal number, saturated at 1e9 (larger ones are refused by a bound anyway). */
static unsigned long decimal(const char *s, size_t n)
{
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 1000000000UL)
            return 1000000000UL;
    }
    return v;
}

/* One value: a number within the field's bounds or a name. */
static int parse_value(const field_def *f, const char *s, size_t n, unsigned *out, hks_error *err)
{
    char b[200];
    if (all_digits(s, n)) {
        unsigned long v = decimal(s, n);
        if (v > f->max)
            return hks_fail(err, 0, "%s: %s is above the maximum %u", f->name,
                            show(b, sizeof(b), s, n), f->max);
        if (v < f->min)
            return hks_fail(err, 0, "%s: %s is below the minimum %u", f->name,
                            show(b, sizeof(b), s, n), f->min);
        *out = (unsigned)v;
        return 0;
    }
    if (f->names && isalpha((unsigned char)s[0])) {
        for (unsigned i = 0; n == 3 && f->names[3 * i]; i++) {
            if (strncasecmp(s, f->names + 3 * i, 3) == 0) {
                *out = f->min + i;
                return 0;
            }
        }
        return hks_fail(err, 0, "%s: '%s' is not a %s name", f->name, show(b, sizeof(b), s, n),
                        f->kind);
    }
    return hks_fail(err, 0, "%s: '%s' is not a number", f->name, show(b, sizeof(b), s, n));
}

typedef struct field_bits {
    uint64_t bits;
    bool star;  /* robfig's star bit */
    bool seven; /* a day of week 7 was written */
} field_bits;

/* One list element: "*", "?", "a", "a-b", each optionally followed by "/step". */
static int parse_element(const field_def *f, const char *s, size_t n, field_bits *fb,
                         hks_error *err)
{
    char b[200];
    const char *slash = memchr(s, '/', n);
    size_t range_len = slash ? (size_t)(slash - s) : n;
    unsigned long step = 1;
    if (slash) {
        const char *st = slash + 1;
        size_t st_len = n - range_len - 1;
        if (memchr(st, '/', st_len))
            return hks_fail(err, 0, "%s: '%s' has more than one '/'", f->name,
                            show(b, sizeof(b), s, n));
        if (st_len == 0)
            return hks_fail(err, 0, "%s: '%s' has no step after '/'", f->name,
                            show(b, sizeof(b), s, n));
        if (!all_digits(st, st_len))
            return hks_fail(err, 0, "%s: step '%s' is not a number", f->name,
                            show(b, sizeof(b), st, st_len));
        step = decimal(st, st_len);
        if (step == 0)
            return hks_fail(err, 0, "%s: step 0 is not allowed", f->name);
        /* any step past the range means "the first value only"; a huge one would not even
         * parse in Kubernetes (strconv.Atoi overflows), and the text is passed on to it */
        if (step >= 1000000000UL)
            return hks_fail(err, 0, "%s: step %s is too large", f->name,
                            show(b, sizeof(b), st, st_len));
        if (range_len == 0)
            return hks_fail(err, 0, "%s: '%s' has nothing before '/'", f->name,
                            show(b, sizeof(b), s, n));
    }
    unsigned lo = 0, hi = 0;
    if (range_len == 1 && (s[0] == '*' || s[0] == '?')) {
        if (s[0] == '?' && !f->question)
            return hks_fail(err, 0, "%s: '?' is only allowed in day of month and day of week",
                            f->name);
        lo = f->min;
        hi = f->star_max;
        /* robfig: a '*' with a step above 1 no longer counts as '*' for the day rule */
        fb->star |= step == 1;
    } else {
        const char *dash = memchr(s, '-', range_len);
        size_t lo_len = dash ? (size_t)(dash - s) : range_len;
        if (dash && memchr(dash + 1, '-', range_len - lo_len - 1))
            return hks_fail(err, 0, "%s: '%s' has more than one '-'", f->name,
                            show(b, sizeof(b), s, range_len));
        bool star_lo = lo_len == 1 && (s[0] == '*' || s[0] == '?');
        bool star_hi = dash && range_len - lo_len == 2 && (dash[1] == '*' || dash[1] == '?');
        if (star_lo || star_hi)
            return hks_fail(err, 0, "%s: range '%s' cannot use '%c'", f->name,
                            show(b, sizeof(b), s, range_len), star_lo ? s[0] : dash[1]);
        if (lo_len == 0)
            return hks_fail(err, 0, "%s: range '%s' has no start", f->name,
                            show(b, sizeof(b), s, range_len));
        if (dash && lo_len + 1 == range_len)
            return hks_fail(err, 0, "%s: range '%s' has no end", f->name,
                            show(b, sizeof(b), s, range_len));
        if (parse_value(f, s, lo_len, &lo, err) < 0)
            return -1;
        if (dash) {
            if (parse_value(f, dash + 1, range_len - lo_len - 1, &hi, err) < 0)
                return -1;
            if (lo > hi)
                return hks_fail(err, 0, "%s: range %s is backwards", f->name,
                                show(b, sizeof(b), s, range_len));
        } else if (slash) {
            /* "a/n" means "a-max/n" */
            hi = f->star_max;
            if (lo > hi)
                return hks_fail(err, 0, "%s: '%s' starts above the maximum %u", f->name,
                                show(b, sizeof(b), s, n), hi);
        } else {
            hi = lo;
        }
    }
    /* a step beyond the range keeps only the first value, as robfig does ("*\/61" = "0") */
    for (unsigned long v = lo; v <= hi; v += step) {
        fb->seven |= v == 7;
        fb->bits |= UINT64_C(1) << (v == 7 && f->star_max == 6 ? 0 : v);
    }
    return 0;
}

/* A field: a comma-separated list of elements. */
static int parse_field(const field_def *f, const char *s, size_t n, field_bits *fb, hks_error *err)
{
    char b[200];
    memset(fb, 0, sizeof(*fb));
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (i == start)
            return hks_fail(err, 0, "%s: '%s' has an empty list element", f->name,
                            show(b, sizeof(b), s, n));
        if (parse_element(f, s + start, i - start, fb, err) < 0)
            return -1;
        start = i + 1;
    }
    return 0;
}

/* "1-3,5": the set bits of a day of week mask, for a field that had a 7 written in it */
static void dow_text(uint8_t dow, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned d = 0; d < 7; d++) {
        if (!(dow & (1u << d)))
            continue;
        unsigned e = d;
        while (e + 1 < 7 && (dow & (1u << (e + 1))))
            e++;
        int w = e == d ? snprintf(out + o, size - o, "%s%u", o ? "," : "", d)
                       : snprintf(out + o, size - o, "%s%u-%u", o ? "," : "", d, e);
        o += (size_t)w;
        d = e;
    }
}

#define SPACES " \t\n\r\v\f"

/* The five fields of schedule into c; text set by the caller. */
static int parse_fields(const char *const tok[F_COUNT], const size_t len[F_COUNT], hksd_cron *c,
                        hks_error *err)
{
    field_bits fb[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        if (parse_field(&fields[i], tok[i], len[i], &fb[i], err) < 0)
            return -1;
    }
    memset(c, 0, sizeof(*c));
    c->minutes = fb[F_MINUTE].bits;
    c->hours = (uint32_t)fb[F_HOUR].bits;
    c->dom = (uint32_t)fb[F_DOM].bits;
    c->months = (uint16_t)fb[F_MONTH].bits;
    c->dow = (uint8_t)fb[F_DOW].bits;
    c->dom_star = fb[F_DOM].star;
    c->dow_star = fb[F_DOW].star;
    c->minute_star = tok[F_MINUTE][0] == '*';
    c->hour_star = tok[F_HOUR][0] == '*';
    /* The normalized text; Kubernetes refuses a 7 for Sunday, so such a field is rewritten: as '*'
     * when it has the star bit (then it holds every day anyway, and "?,7" must keep meaning '*'
     * for the day rule), else as its days. */
    char dow[32] = "*";
    if (fb[F_DOW].seven && !fb[F_DOW].star)
        dow_text(c->dow, dow, sizeof(dow));
    int n =
        snprintf(c->text, sizeof(c->text), "%.*s %.*s %.*s %.*s %.*s", (int)len[0], tok[0],
                 (int)len[1], tok[1], (int)len[2], tok[2], (int)len[3], tok[3],
                 fb[F_DOW].seven ? (int)strlen(dow) : (int)len[4], fb[F_DOW].seven ? dow : tok[4]);
    if (n < 0 || (size_t)n >= sizeof(c->text))
        return hks_fail(err, 0, "schedule: %d characters without extra spaces, at most %zu allowed",
                        n, sizeof(c->text) - 1);
    return 0;
}

static const struct macro {
    const char *name, *fields;
} macros[] = {
    {"yearly", "0 0 1 1 *"}, {"annually", "0 0 1 1 *"}, {"monthly", "0 0 1 * *"},
    {"weekly", "0 0 * * 0"}, {"daily", "0 0 * * *"},    {"midnight", "0 0 * * *"},
    {"hourly", "0 * * * *"},
};

static int split(const char *s, const char *tok[F_COUNT], size_t len[F_COUNT])
{
    int count = 0;
    while (*(s += strspn(s, SPACES))) {
        size_t n = strcspn(s, SPACES);
        if (count < F_COUNT) {
            tok[count] = s;
            len[count] = n;
        }
        count++;
        s += n;
    }
    return count;
}

/* A macro ("@daily") or preset ("daily") by name: its fields, with its @ name as the text. */
static int parse_macro(const char *name, size_t n, bool at, hksd_cron *c, hks_error *err)
{
    char b[200];
    for (size_t i = 0; i < HKS_ARRAY_LEN(macros); i++) {
        /* presets are the names the issue lists; "midnight" alone is only a macro */
        if (strlen(macros[i].name) != n || strncasecmp(name, macros[i].name, n) != 0 ||
            (!at && strcmp(macros[i].name, "midnight") == 0))
            continue;
        const char *tok[F_COUNT];
        size_t len[F_COUNT];
        split(macros[i].fields, tok, len);
        if (parse_fields(tok, len, c, err) < 0)
            return -1;
        snprintf(c->text, sizeof(c->text), "@%s", macros[i].name);
        return 0;
    }
    if (!at)
        return 1;
    return hks_fail(err, 0,
                    "schedule: unknown macro '@%s' (use @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight or @hourly)",
                    show(b, sizeof(b), name, n));
}

int hksd_cron_parse(const char *schedule, hksd_cron *out, hks_error *err)
{
    char b[200];
    if (!schedule)
        return hks_fail(err, 0, "schedule: missing");
    size_t total = strnlen(schedule, HKSD_CRON_INPUT_MAX + 1);
    if (total > HKSD_CRON_INPUT_MAX)
        return hks_fail(err, 0, "schedule: longer than %d characters", HKSD_CRON_INPUT_MAX);
    const char *tok[F_COUNT];
    size_t len[F_COUNT];
    int count = split(schedule, tok, len);
    if (count == 0)
        return hks_fail(err, 0, "schedule: empty");
    /* Kubernetes refuses TZ= and CRON_TZ= (robfig's per-schedule zone) on create since 1.29 */
    if (strncasecmp(tok[0], "TZ=", 3) == 0 || strncasecmp(tok[0], "CRON_TZ=", 8) == 0)
        return hks_fail(err, 0,
                        "schedule: %.*s is not allowed in the schedule, set timezone instead",
                        tolower((unsigned char)tok[0][0]) == 't' ? 3 : 8, tok[0]);
    hksd_cron c;
    if (tok[0][0] == '@') {
        const char *name = tok[0] + 1;
        size_t n = len[0] - 1;
        if (n == 5 && strncasecmp(name, "every", 5) == 0)
            return hks_fail(err, 0,
                            "schedule: @every is not supported (Kubernetes does not support it), "
                            "use 5 fields such as '*/5 * * * *'");
        if (n == 6 && strncasecmp(name, "reboot", 6) == 0)
            return hks_fail(err, 0,
                            "schedule: @reboot is not supported: a CronJob has no boot "
                            "to run at");
        if (count > 1)
            return hks_fail(err, 0, "schedule: %s must be the whole schedule, found '%s' after it",
                            show(b, sizeof(b), tok[0], len[0]),
                            show(b + 100, sizeof(b) - 100, tok[1], len[1]));
        if (parse_macro(name, n, true, &c, err) < 0)
            return -1;
        *out = c;
        return 0;
    }
    if (count == 1) {
        int r = parse_macro(tok[0], len[0], false, &c, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            *out = c;
            return 0;
        }
    }
    if (count != F_COUNT)
        return hks_fail(err, 0,
                        "schedule: %d field%s given, 5 expected (minute hour day-of-month month "
                        "day-of-week)",
                        count, count == 1 ? "" : "s");
    if (parse_fields(tok, len, &c, err) < 0)
        return -1;
    *out = c;
    return 0;
}

/* ---- next run time ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t ceil_minute(int64_t t)
{
    return floor_div(t + 59, 60) * 60;
}

/* The lowest set bit of mask at or above from, -1 if none. */
static int next_bit(uint64_t mask, unsigned from)
{
    uint64_t rest = mask >> from;
    return rest ? (int)from + __builtin_ctzll(rest) : -1;
}

/* robfig's dayMatches: both day fields must match when either has the star bit, else either. */
static bool day_matches(const hksd_cron *c, unsigned mday, unsigned wday)
{
    bool dom = c->dom & (UINT32_C(1) << mday), dow = c->dow & (1u << wday);
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* The first wall-clock minute in [from, limit) that c matches, as local seconds (seconds since
 * 1970-01-01T00:00 of the wall clock, as if it were UTC; negative before 1970) into *out; false if
 * there is none. from is a whole minute. Pure calendar arithmetic: time zones are the caller's
 * business. */
static bool civil_next(const hksd_cron *c, int64_t from, int64_t limit, int64_t *out)
{
    int64_t day = floor_div(from, 86400), y;
    unsigned sec = (unsigned)(from - day * 86400), m, d;
    unsigned hour = sec / 3600, minute = sec % 3600 / 60;
    hksd_civil_from_days(day, &y, &m, &d);
    while (day * 86400 < limit) {
        bool month_ok = c->months & (1u << m);
        if (month_ok && day_matches(c, d, hksd_weekday(day))) {
            /* every field has at least one value, so an hour found has a minute from 0 on */
            for (int h = next_bit(c->hours, hour); h >= 0;
                 h = next_bit(c->hours, (unsigned)h + 1)) {
                int mi = next_bit(c->minutes, (unsigned)h == hour ? minute : 0);
                if (mi >= 0) {
                    *out = day * 86400 + h * 3600 + mi * 60;
                    return *out < limit;
                }
            }
        }
        /* the next day, or the first of the next month when this month is not in the schedule */
        unsigned skip = month_ok ? 1 : hksd_days_in_month(y, m) - d + 1;
        day += skip;
        d += skip;
        if (d > hksd_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
        hour = minute = 0;
    }
    return false;
}

/* The earliest instant whose wall-clock time is w, or INT64_MIN if w does not exist (a DST gap).
 * UTC offsets are within +-26 h, so only instants within that distance of w are looked at. */
static int64_t first_instant(const hksd_tz *tz, int64_t w)
{
    int64_t s = w - 26 * 3600;
    while (s <= w + 26 * 3600) {
        int32_t off = hksd_tz_offset(tz, s);
        int64_t e = hksd_tz_next_transition(tz, s);
        if (w - off >= s && w - off < e)
            return w - off;
        if (e == INT64_MAX)
            break;
        s = e;
    }
    return INT64_MIN;
}

int64_t hksd_cron_next_in(const hksd_cron *c, const hksd_tz *tz, int64_t after, hksd_cron_dst dst,
                          hks_error *err)
{
    if (after < HKSD_CRON_TIME_MIN || after > HKSD_CRON_TIME_MAX) {
        hks_fail(err, 0, "next run: time %" PRId64 " is outside years 1-9999", after);
        return HKSD_CRON_ERROR;
    }
    bool fixed = dst == HKSD_CRON_DST_CRON && !c->minute_star && !c->hour_star;
    /* Walk the zone's stretches of constant UTC offset from `after` on. Within one, wall-clock
     * time is UTC plus the offset, so a matching wall-clock minute is found by calendar
     * arithmetic alone. The search ends with the calendar year five years after the one `after`
     * is in, as robfig's does. */
    int64_t lo = after + 1; /* the earliest instant of this stretch that may run */
    int32_t off = hksd_tz_offset(tz, lo);
    int64_t y0;
    unsigned m0, d0;
    hksd_civil_from_days(floor_div(lo + off, 86400), &y0, &m0, &d0);
    int64_t limit = hksd_days_from_civil(y0 + 6, 1, 1) * 86400;
    while (true) {
        int64_t end = hksd_tz_next_transition(tz, lo);
        int64_t end_local = end == INT64_MAX || end + off > limit ? limit : end + off;
        int64_t w;
        for (int64_t from = ceil_minute(lo + off); from < end_local;) {
            if (!civil_next(c, from, end_local, &w))
                break;
            /* a fixed-time job runs a repeated wall-clock time once, the first time round */
            if (!fixed || first_instant(tz, w) >= w - off)
                return w - off;
            from = w + 60;
        }
        if (end == INT64_MAX)
            break;
        int32_t before = off;
        lo = end;
        off = hksd_tz_offset(tz, lo);
        if (lo + off >= limit && lo + before >= limit)
            break;
        /* The clock jumps from end+before to end+off: a fixed-time job due in between runs now,
         * as ISC cron runs it "immediately" after the change. */
        if (fixed && off > before &&
            civil_next(c, ceil_minute(lo + before), lo + off < limit ? lo + off : limit, &w))
            return lo;
    }
    hks_fail(err, 0, "schedule '%s': no run time before %" PRId64 "-01-01", c->text, y0 + 6);
    return HKSD_CRON_NEVER;
}

static int64_t next_named(const hksd_cron *c, const char *tz_name, int64_t after, hksd_cron_dst dst,
                          hks_error *err)
{
    cleanup_tz hksd_tz *tz = NULL;
    if (hksd_tz_load(tz_name, &tz, err) < 0)
        return HKSD_CRON_ERROR;
    return hksd_cron_next_in(c, tz, after, dst, err);
}

int64_t hksd_cron_next(const hksd_cron *c, const char *tz, int64_t after, hks_error *err)
{
    return next_named(c, tz, after, HKSD_CRON_DST_CRON, err);
}

int64_t hksd_cron_next_kubernetes(const hksd_cron *c, const char *tz, int64_t after, hks_error *err)
{
    return next_named(c, tz, after, HKSD_CRON_DST_KUBERNETES, err);
}
