/* libFuzzer target: CronJob schedules (an API caller's text) and TZif files (the zone data next
 * run times are computed with).
 *
 * An input that starts with "TZif" is a zone file. Any other input is a schedule on its first
 * line, optionally followed by a line with the unix time to start from. Whatever is accepted must
 * hold what the scheduler relies on: the normalized text means the same schedule, the next run
 * is after the start, falls on a matching minute (checked here against gmtime_r and glibc's
 * localtime_r, independent of the code under test) and no matching minute comes before it. */
#include "daemon/cron.h"

#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static hksd_tz *utc, *new_york;

static void setup(void)
{
    hks_error err = {0};
    if (hksd_tz_load("UTC", &utc, &err) < 0 || hksd_tz_load("America/New_York", &new_york, &err))
        __builtin_trap();
    /* glibc's localtime_r is the oracle for New York (one thread here, so TZ may be set) */
    setenv("TZ", "America/New_York", 1);
    tzset();
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool matches(const hksd_cron *c, const struct tm *tm)
{
    if (!(c->minutes >> tm->tm_min & 1) || !(c->hours >> tm->tm_hour & 1) ||
        !(c->months >> (tm->tm_mon + 1) & 1))
        return false;
    bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

static bool matches_utc(const hksd_cron *c, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    return gmtime_r(&tt, &tm) && matches(c, &tm);
}

static void check_utc(const hksd_cron *c, int64_t after)
{
    hks_error err = {0};
    int64_t next = hksd_cron_next_in(c, utc, after, HKSD_CRON_DST_CRON, &err);
    /* without DST both behaviours agree */
    if (next != hksd_cron_next_in(c, utc, after, HKSD_CRON_DST_KUBERNETES, &err))
        __builtin_trap();
    int64_t first = floor_div(after, 60) * 60 + 60; /* the first whole minute after */
    if (next == HKSD_CRON_NEVER) {
        /* no matching minute in the window: the rest of after's day minute by minute, then
         * every later day at its first hour and minute */
        time_t tt = (time_t)after;
        struct tm tm;
        if (!gmtime_r(&tt, &tm))
            __builtin_trap();
        int64_t end = hksd_days_from_civil(tm.tm_year + 1900 + 6, 1, 1) * 86400;
        int64_t day = floor_div(after, 86400) + 1;
        for (int64_t t = first; t < day * 86400; t += 60) {
            if (matches_utc(c, t))
                __builtin_trap();
        }
        int64_t hm = __builtin_ctz(c->hours) * 3600 + __builtin_ctzll(c->minutes) * 60;
        for (; day * 86400 < end; day++) {
            if (matches_utc(c, day * 86400 + hm))
                __builtin_trap();
        }
        return;
    }
    if (next <= after || next % 60 != 0 || !matches_utc(c, next))
        __builtin_trap();
    if (next - after <= 2 * 86400) {
        for (int64_t t = first; t < next; t += 60) {
            if (matches_utc(c, t))
                __builtin_trap();
        }
    }
}

/* New York: Kubernetes' behaviour runs exactly at matching wall-clock minutes; hksd's runs there
 * too, or at the instant a DST change jumps over a matching minute. */
static void check_new_york(const hksd_cron *c, int64_t after)
{
    hks_error err = {0};
    if (after < 0 || after > 4102444800LL) /* glibc's oracle: 1970-2100 */
        return;
    for (int mode = 0; mode < 2; mode++) {
        hksd_cron_dst dst = mode ? HKSD_CRON_DST_KUBERNETES : HKSD_CRON_DST_CRON;
        int64_t next = hksd_cron_next_in(c, new_york, after, dst, &err);
        if (next == HKSD_CRON_NEVER)
            continue;
        if (next <= after)
            __builtin_trap();
        time_t tt = (time_t)next;
        struct tm tm;
        if (!localtime_r(&tt, &tm))
            __builtin_trap();
        bool jump = hksd_tz_next_transition(new_york, next - 1) == next &&
                    hksd_tz_offset(new_york, next) > hksd_tz_offset(new_york, next - 1);
        if (!(tm.tm_sec == 0 && matches(c, &tm)) && !(dst == HKSD_CRON_DST_CRON && jump))
            __builtin_trap();
    }
}

static void fuzz_schedule(const unsigned char *data, size_t size)
{
    char text[HKSD_CRON_INPUT_MAX + 64];
    const unsigned char *nl = memchr(data, '\n', size);
    size_t len = nl ? (size_t)(nl - data) : size;
    if (len >= sizeof(text))
        return;
    memcpy(text, data, len);
    text[len] = '\0';
    int64_t after = 1767225600; /* 2026-01-01 */
    if (nl) {
        char num[32];
        size_t n = size - len - 1 < sizeof(num) - 1 ? size - len - 1 : sizeof(num) - 1;
        memcpy(num, nl + 1, n);
        num[n] = '\0';
        long long v = strtoll(num, NULL, 10);
        /* folded into the years next accepts */
        const long long span = HKSD_CRON_TIME_MAX - HKSD_CRON_TIME_MIN + 1;
        after = v >= HKSD_CRON_TIME_MIN && v <= HKSD_CRON_TIME_MAX
                    ? v
                    : HKSD_CRON_TIME_MIN + ((v % span) + span) % span;
    }
    hksd_cron c;
    hks_error err = {0};
    if (hksd_cron_parse(text, &c, &err) < 0) {
        if (!err.msg[0] || strlen(err.msg) >= sizeof(err.msg))
            __builtin_trap();
        return;
    }
    if (!c.minutes || !c.hours || !c.dom || !c.months || !c.dow || c.minutes >> 60 ||
        c.hours >> 24 || c.dom & 1 || c.dom == 1 || c.months & 0xe001 || c.dow & 0x80)
        __builtin_trap();
    /* the normalized text is the same schedule, and stays as it is */
    hksd_cron again;
    if (hksd_cron_parse(c.text, &again, &err) < 0 || again.minutes != c.minutes ||
        again.hours != c.hours || again.dom != c.dom || again.months != c.months ||
        again.dow != c.dow || again.dom_star != c.dom_star || again.dow_star != c.dow_star ||
        again.minute_star != c.minute_star || again.hour_star != c.hour_star ||
        strcmp(again.text, c.text) != 0 || strstr(c.text, "TZ"))
        __builtin_trap();
    check_utc(&c, after);
    check_new_york(&c, after);
}

/* Any zone that loads gives offsets within bounds, transitions that move forward, and next run
 * times after the start. */
static void fuzz_tzif(const unsigned char *data, size_t size)
{
    hksd_tz *tz = NULL;
    hks_error err = {0};
    if (hksd_tz_parse(data, size, &tz, &err) < 0) {
        if (tz || !err.msg[0])
            __builtin_trap();
        return;
    }
    int64_t t = -2208988800LL; /* 1900 */
    for (int i = 0; i < 64; i++) {
        int32_t off = hksd_tz_offset(tz, t);
        if (off < -26 * 3600 || off > 26 * 3600)
            __builtin_trap();
        int64_t next = hksd_tz_next_transition(tz, t);
        if (next <= t)
            __builtin_trap();
        if (next == INT64_MAX)
            break;
        t = next;
    }
    static const char *const schedules[] = {"30 2 * * *", "*/7 1-3 * * *", "0 0 29 2 *"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(schedules); i++) {
        hksd_cron c;
        if (hksd_cron_parse(schedules[i], &c, &err) < 0)
            __builtin_trap();
        for (int mode = 0; mode < 2; mode++) {
            int64_t after = 1767225600 + (int64_t)i * 86400 * 100;
            int64_t next = hksd_cron_next_in(
                &c, tz, after, mode ? HKSD_CRON_DST_KUBERNETES : HKSD_CRON_DST_CRON, &err);
            if (next != HKSD_CRON_NEVER && next <= after)
                __builtin_trap();
        }
    }
    hksd_tz_free(tz);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!utc)
        setup();
    if (size >= 4 && memcmp(data, "TZif", 4) == 0)
        fuzz_tzif(data, size);
    else
        fuzz_schedule(data, size);
    return 0;
}
