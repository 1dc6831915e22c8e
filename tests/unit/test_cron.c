#include "tests/unit/helpers.h"

#include <pthread.h>
#include <time.h>

#include "daemon/cron.h"

/* "2026-03-08 07:00[:ss]" (UTC) as unix seconds */
static int64_t utc(const char *s)
{
    int y, mo, d, h, mi, sec = 0;
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec);
    assert_true(n >= 5);
    return hksd_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
}

static hksd_cron parsed(const char *schedule)
{
    hksd_cron c;
    hks_error err = {0};
    if (hksd_cron_parse(schedule, &c, &err) < 0)
        fail_msg("'%s' refused: %s", schedule, err.msg);
    return c;
}

static bool same_cron(const hksd_cron *a, const hksd_cron *b)
{
    return a->minutes == b->minutes && a->hours == b->hours && a->dom == b->dom &&
           a->months == b->months && a->dow == b->dow && a->dom_star == b->dom_star &&
           a->dow_star == b->dow_star && a->minute_star == b->minute_star &&
           a->hour_star == b->hour_star && strcmp(a->text, b->text) == 0;
}

static uint64_t bits(const int *values, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= UINT64_C(1) << values[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

/* ---- syntax ---- */

static void every_field_star(void **state)
{
    (void)state;
    hksd_cron c = parsed("* * * * *");
    assert_true(c.minutes == (UINT64_C(1) << 60) - 1);
    assert_int_equal(c.hours, (1u << 24) - 1);
    assert_int_equal(c.dom, 0xfffffffeu); /* 1-31 */
    assert_int_equal(c.months, 0x1ffe);   /* 1-12 */
    assert_int_equal(c.dow, 0x7f);
    assert_true(c.dom_star && c.dow_star && c.minute_star && c.hour_star);
    assert_string_equal(c.text, "* * * * *");
}

static void values_ranges_steps_lists(void **state)
{
    (void)state;
    hksd_cron c = parsed("  0\t12  1  JAN  mon  ");
    assert_true(c.minutes == 1);
    assert_int_equal(c.hours, 1u << 12);
    assert_int_equal(c.dom, 1u << 1);
    assert_int_equal(c.months, 1u << 1);
    assert_int_equal(c.dow, 1u << 1);
    assert_false(c.dom_star || c.dow_star || c.minute_star || c.hour_star);
    assert_string_equal(c.text, "0 12 1 JAN mon"); /* one space between fields */

    assert_true(parsed("*/15 * * * *").minutes == BITS(0, 15, 30, 45));
    assert_true(parsed("5-55/10 * * * *").minutes == BITS(5, 15, 25, 35, 45, 55));
    assert_true(parsed("1,3-5,10 * * * *").minutes == BITS(1, 3, 4, 5, 10));
    assert_true(parsed("3/20 * * * *").minutes == BITS(3, 23, 43)); /* a/n = a-max/n */
    assert_true(parsed("*/61 * * * *").minutes == BITS(0)); /* a step past the range: once */
    assert_true(parsed("07 * * * *").minutes == BITS(7));   /* leading zeros */
    assert_int_equal(parsed("0 9-17/4 * * *").hours, BITS(9, 13, 17));
    assert_int_equal(parsed("0 0 1,15,31 * *").dom, BITS(1, 15, 31));
    assert_int_equal(parsed("0 0 * */2 *").months, BITS(1, 3, 5, 7, 9, 11));
    assert_true(parsed("1,* * * * *").minutes == (UINT64_C(1) << 60) - 1);
}

static void names_case_insensitive(void **state)
{
    (void)state;
    hksd_cron c = parsed("0 0 * jan-MAR,Dec sun,Sat");
    assert_int_equal(c.months, BITS(1, 2, 3, 12));
    assert_int_equal(c.dow, BITS(0, 6));
    assert_int_equal(parsed("0 0 * * MON-FRI").dow, BITS(1, 2, 3, 4, 5));
    assert_int_equal(parsed("0 0 * * mon-fri/2").dow, BITS(1, 3, 5));
    assert_int_equal(parsed("0 0 * FeB/3 *").months, BITS(2, 5, 8, 11));
    assert_string_equal(parsed("0 0 * jan-MAR,Dec sun,Sat").text, "0 0 * jan-MAR,Dec sun,Sat");
}

static void sunday_is_zero_or_seven(void **state)
{
    (void)state;
    /* Kubernetes refuses 7, so the normalized text says 0 */
    hksd_cron c = parsed("0 0 * * 7");
    assert_int_equal(c.dow, BITS(0));
    assert_string_equal(c.text, "0 0 * * 0");
    c = parsed("0 0 * * 5-7");
    assert_int_equal(c.dow, BITS(0, 5, 6));
    assert_string_equal(c.text, "0 0 * * 0,5-6");
    c = parsed("0 0 * * 1-7/2");
    assert_int_equal(c.dow, BITS(0, 1, 3, 5));
    assert_string_equal(c.text, "0 0 * * 0-1,3,5");
    /* a star element keeps the field '*' for the day rule (found by fuzz_cron) */
    c = parsed("0 0 13 * ?,7");
    assert_true(c.dow_star);
    assert_string_equal(c.text, "0 0 13 * *");
    /* '*' and a/n stop at 6, as robfig's do */
    assert_int_equal(parsed("0 0 * * */2").dow, BITS(0, 2, 4, 6));
    assert_int_equal(parsed("0 0 * * 1/2").dow, BITS(1, 3, 5));
    assert_string_equal(parsed("0 0 * * 0").text, "0 0 * * 0");
}

static void question_mark_and_star_bits(void **state)
{
    (void)state;
    hksd_cron c = parsed("0 0 ? * ?");
    assert_true(c.dom_star && c.dow_star);
    assert_int_equal(c.dom, 0xfffffffeu);
    /* robfig's star bit: '*' or '?' without a step above 1 */
    assert_true(parsed("0 0 */1 * 5").dom_star);
    assert_false(parsed("0 0 */2 * 5").dom_star);
    assert_false(parsed("0 0 1-31 * 5").dom_star);
    assert_true(parsed("0 0 1,* * 5").dom_star);
    c = parsed("0 0 13 * 5");
    assert_false(c.dom_star || c.dow_star);
}

static void presets_and_macros(void **state)
{
    (void)state;
    static const struct {
        const char *in, *text, *same_as;
    } cases[] = {
        {"hourly", "@hourly", "0 * * * *"},     {"@hourly", "@hourly", "0 * * * *"},
        {"daily", "@daily", "0 0 * * *"},       {"DAILY", "@daily", "0 0 * * *"},
        {"@daily", "@daily", "0 0 * * *"},      {"@midnight", "@midnight", "0 0 * * *"},
        {"weekly", "@weekly", "0 0 * * 0"},     {"@Weekly", "@weekly", "0 0 * * 0"},
        {"monthly", "@monthly", "0 0 1 * *"},   {"@monthly", "@monthly", "0 0 1 * *"},
        {"yearly", "@yearly", "0 0 1 1 *"},     {"@yearly", "@yearly", "0 0 1 1 *"},
        {"annually", "@annually", "0 0 1 1 *"}, {"@annually", "@annually", "0 0 1 1 *"},
        {"  @daily\n", "@daily", "0 0 * * *"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(cases); i++) {
        hksd_cron c = parsed(cases[i].in), want = parsed(cases[i].same_as);
        assert_string_equal(c.text, cases[i].text);
        memcpy(want.text, c.text, sizeof(c.text));
        if (!same_cron(&c, &want))
            fail_msg("'%s' differs from '%s'", cases[i].in, cases[i].same_as);
    }
}

/* ---- refused schedules, each with its message ---- */

static void invalid_schedules_say_why(void **state)
{
    (void)state;
    static const char fields[] = " (minute hour day-of-month month day-of-week)";
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"", "schedule: empty"},
        {" \t ", "schedule: empty"},
        {"* * * *", "schedule: 4 fields given, 5 expected"},
        {"0 * * * * *", "schedule: 6 fields given, 5 expected"},
        {"minutely", "schedule: 1 field given, 5 expected"},
        {"midnight", "schedule: 1 field given, 5 expected"},
        {"daily 0", "schedule: 2 fields given, 5 expected"},
        {"0 0 1 1 1 # comment", "schedule: 7 fields given, 5 expected"},
        {"61 * * * *", "minute: 61 is above the maximum 59"},
        {"99999999999 * * * *", "minute: 99999999999 is above the maximum 59"},
        {"* 24 * * *", "hour: 24 is above the maximum 23"},
        {"* x * * *", "hour: 'x' is not a number"},
        {"* * 0 * *", "day of month: 0 is below the minimum 1"},
        {"* * 32 * *", "day of month: 32 is above the maximum 31"},
        {"0 0 L * *", "day of month: 'L' is not a number"},
        {"* * * 13 *", "month: 13 is above the maximum 12"},
        {"* * * 0 *", "month: 0 is below the minimum 1"},
        {"* * * FOO *", "month: 'FOO' is not a month name"},
        {"* * * JAN-FOO *", "month: 'FOO' is not a month name"},
        {"* * * DEC-JAN *", "month: range DEC-JAN is backwards"},
        {"* * * * 8", "day of week: 8 is above the maximum 7"},
        {"* * * * FRIDAY", "day of week: 'FRIDAY' is not a day name"},
        {"* * * * 5-2", "day of week: range 5-2 is backwards"},
        {"* * * * 7/2", "day of week: '7/2' starts above the maximum 6"},
        {"0 0 * * 1,*/0", "day of week: step 0 is not allowed"},
        {"*/0 * * * *", "minute: step 0 is not allowed"},
        {"*/x * * * *", "minute: step 'x' is not a number"},
        {"*/99999999999999999999 * * * *", "minute: step 99999999999999999999 is too large"},
        {"*/5-10 * * * *", "minute: step '5-10' is not a number"},
        {"5/ * * * *", "minute: '5/' has no step after '/'"},
        {"/5 * * * *", "minute: '/5' has nothing before '/'"},
        {"1/2/3 * * * *", "minute: '1/2/3' has more than one '/'"},
        {"1-2-3 * * * *", "minute: '1-2-3' has more than one '-'"},
        {"1,,2 * * * *", "minute: '1,,2' has an empty list element"},
        {", * * * *", "minute: ',' has an empty list element"},
        {"-5 * * * *", "minute: range '-5' has no start"},
        {"5- * * * *", "minute: range '5-' has no end"},
        {"*-5 * * * *", "minute: range '*-5' cannot use '*'"},
        {"? * * * *", "minute: '?' is only allowed in day of month and day of week"},
        {"+5 * * * *", "minute: '+5' is not a number"},
        {"1x * * * *", "minute: '1x' is not a number"},
        {"\xff * * * *", "minute: '\\xff' is not a number"},
        {"@every 5m", "schedule: @every is not supported (Kubernetes does not support it), use 5 "
                      "fields such as '*/5 * * * *'"},
        {"@reboot", "schedule: @reboot is not supported: a CronJob has no boot to run at"},
        {"@fortnightly", "schedule: unknown macro '@fortnightly' (use @yearly, @annually, "
                         "@monthly, @weekly, @daily, @midnight or @hourly)"},
        {"@daily 5", "schedule: @daily must be the whole schedule, found '5' after it"},
        {"TZ=UTC 0 0 * * *", "schedule: TZ= is not allowed in the schedule, set timezone instead"},
        {"CRON_TZ=Europe/Berlin 0 0 * * *",
         "schedule: CRON_TZ= is not allowed in the schedule, set timezone instead"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(cases); i++) {
        hksd_cron c;
        memset(&c, 0x5a, sizeof(c));
        hks_error err = {0};
        char want[300];
        snprintf(want, sizeof(want), "%s%s", cases[i].msg,
                 strstr(cases[i].msg, "expected") ? fields : "");
        if (hksd_cron_parse(cases[i].in, &c, &err) != -1)
            fail_msg("'%s' accepted", cases[i].in);
        if (strcmp(err.msg, want) != 0)
            fail_msg("'%s': \"%s\", expected \"%s\"", cases[i].in, err.msg, want);
        assert_int_equal(((unsigned char *)&c)[0], 0x5a); /* out untouched */
    }
    hks_error err = {0};
    hksd_cron c;
    assert_int_equal(hksd_cron_parse(NULL, &c, &err), -1);
    assert_string_equal(err.msg, "schedule: missing");
    char long_text[HKSD_CRON_INPUT_MAX + 2];
    memset(long_text, ' ', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_int_equal(hksd_cron_parse(long_text, &c, &err), -1);
    assert_string_equal(err.msg, "schedule: longer than 1024 characters");
    /* valid, but too long to keep as the normalized text */
    char many[600] = "";
    for (int f = 0; f < 3; f++) {
        for (int v = 1; v <= (f == 0 ? 59 : f == 1 ? 23 : 31); v++)
            snprintf(many + strlen(many), sizeof(many) - strlen(many), "%d%s", v,
                     v == (f == 0   ? 59
                           : f == 1 ? 23
                                    : 31)
                         ? " "
                         : ",");
    }
    snprintf(many + strlen(many), sizeof(many) - strlen(many), "* *");
    assert_int_equal(hksd_cron_parse(many, &c, &err), -1);
    assert_string_equal(err.msg, "schedule: 315 characters without extra spaces, at most 255 "
                                 "allowed");
}

/* ---- time zones ---- */

static void timezones_are_checked(void **state)
{
    (void)state;
    const char *good[] = {"UTC",
                          "Europe/Berlin",
                          "America/New_York",
                          "Etc/GMT+5",
                          "America/Argentina/Buenos_Aires",
                          "Asia/Kolkata"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(good); i++) {
        hks_error err = {0};
        if (!hksd_cron_timezone_valid(good[i], &err))
            fail_msg("%s refused: %s", good[i], err.msg);
    }
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "timezone: empty, name an IANA zone such as Europe/Berlin"},
        {"Local", "timezone: 'Local' is not allowed, name an IANA zone such as Europe/Berlin"},
        {"local", "timezone: 'Local' is not allowed, name an IANA zone such as Europe/Berlin"},
        {"../etc/passwd", "timezone: '../etc/passwd' is not a time zone name (components of 1-14 "
                          "letters, digits, '.', '-', '_' or '+')"},
        {"Europe/../../etc/passwd", NULL},
        {"/etc/passwd", NULL},
        {"Europe/Berlin/", NULL},
        {"Europe//Berlin", NULL},
        {"-Berlin", NULL},
        {"America/Very_long_city_name", NULL},
        {"Europe/Berlin ", NULL},
        {"Mars/Olympus", "timezone: unknown time zone Mars/Olympus (no "
                         "/usr/share/zoneinfo/Mars/Olympus)"},
        {"Europe", "timezone: Europe is not a time zone (/usr/share/zoneinfo/Europe is a "
                   "directory)"},
        {"zone.tab", "timezone zone.tab: /usr/share/zoneinfo/zone.tab: not a TZif file"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        hks_error err = {0};
        if (hksd_cron_timezone_valid(bad[i].in, &err))
            fail_msg("'%s' accepted", bad[i].in);
        if (bad[i].msg && strcmp(err.msg, bad[i].msg) != 0)
            fail_msg("'%s': \"%s\", expected \"%s\"", bad[i].in, err.msg, bad[i].msg);
        if (!bad[i].msg && !strstr(err.msg, "is not a time zone name"))
            fail_msg("'%s': \"%s\"", bad[i].in, err.msg);
    }
    hks_error err = {0};
    assert_false(hksd_cron_timezone_valid(NULL, &err));
    assert_string_equal(err.msg, "timezone: empty, name an IANA zone such as Europe/Berlin");
}

/* The zone code against glibc's, for every zone installed (glibc's localtime uses process-wide
 * state, which is fine in a test and is what the daemon must not rely on). */
static void offsets_agree_with_glibc(void **state)
{
    (void)state;
    const char *saved = getenv("TZ");
    char *saved_copy = saved ? strdup(saved) : NULL;
    FILE *list = popen("cd /usr/share/zoneinfo && find . -type f | sed 's|^./||' | "
                       "grep -vE '^(right|posix)/|[.]|leapseconds|posixrules|SECURITY' | sort",
                       "r");
    assert_non_null(list);
    char name[256];
    int zones = 0;
    while (fgets(name, sizeof(name), list)) {
        name[strcspn(name, "\n")] = '\0';
        hks_error err = {0};
        hksd_tz *tz = NULL;
        if (hksd_tz_load(name, &tz, &err) < 0)
            continue; /* a name Kubernetes would not allow either */
        setenv("TZ", name, 1);
        tzset();
        /* 1900-2100 in steps that land on every hour of the day, and each side of the
         * transitions of 2026 */
        int64_t t = utc("2026-01-01 00:00");
        for (int i = 0; i < 4; i++) {
            t = hksd_tz_next_transition(tz, t);
            if (t == INT64_MAX || t > utc("2027-01-01 00:00"))
                break;
            for (int64_t probe = t - 1; probe <= t; probe++) {
                time_t tt = (time_t)probe;
                struct tm tm;
                localtime_r(&tt, &tm);
                if (tm.tm_gmtoff != hksd_tz_offset(tz, probe))
                    fail_msg("%s at %lld: %d, glibc %ld", name, (long long)probe,
                             hksd_tz_offset(tz, probe), tm.tm_gmtoff);
            }
        }
        for (int64_t probe = utc("1900-01-01 00:00"); probe < utc("2100-01-01 00:00");
             probe += 86400 * 37 + 3600 * 5 + 61) {
            time_t tt = (time_t)probe;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (tm.tm_gmtoff != hksd_tz_offset(tz, probe))
                fail_msg("%s at %lld: %d, glibc %ld", name, (long long)probe,
                         hksd_tz_offset(tz, probe), tm.tm_gmtoff);
        }
        hksd_tz_free(tz);
        zones++;
    }
    pclose(list);
    if (saved_copy)
        setenv("TZ", saved_copy, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved_copy);
    assert_true(zones > 300);
}

static void transitions_of_2026(void **state)
{
    (void)state;
    cleanup_tz hksd_tz *ny = NULL;
    cleanup_tz hksd_tz *berlin = NULL;
    hks_error err = {0};
    assert_int_equal(hksd_tz_load("America/New_York", &ny, &err), 0);
    assert_int_equal(hksd_tz_load("Europe/Berlin", &berlin, &err), 0);
    int64_t t = utc("2026-01-01 00:00");
    assert_int_equal(hksd_tz_next_transition(ny, t), utc("2026-03-08 07:00"));
    assert_int_equal(hksd_tz_next_transition(ny, utc("2026-03-08 07:00")), utc("2026-11-01 06:00"));
    assert_int_equal(hksd_tz_next_transition(berlin, t), utc("2026-03-29 01:00"));
    assert_int_equal(hksd_tz_next_transition(berlin, utc("2026-03-29 01:00")),
                     utc("2026-10-25 01:00"));
    assert_int_equal(hksd_tz_offset(ny, utc("2026-03-08 06:59:59")), -5 * 3600);
    assert_int_equal(hksd_tz_offset(ny, utc("2026-03-08 07:00")), -4 * 3600);
    assert_int_equal(hksd_tz_offset(berlin, utc("2026-10-25 00:59:59")), 2 * 3600);
    assert_int_equal(hksd_tz_offset(berlin, utc("2026-10-25 01:00")), 1 * 3600);
    /* far past the table: the footer's rule */
    assert_int_equal(hksd_tz_offset(berlin, utc("2300-07-01 00:00")), 2 * 3600);
    cleanup_tz hksd_tz *u = NULL;
    assert_int_equal(hksd_tz_load("UTC", &u, &err), 0);
    assert_int_equal(hksd_tz_offset(u, 0), 0);
    assert_true(hksd_tz_next_transition(u, 0) == INT64_MAX);
}

/* ---- TZif files built here ---- */

typedef struct tzif {
    unsigned char b[4096];
    size_t n;
} tzif;

static void put(tzif *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof(f->b));
    if (n == 0)
        return;
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put_be(tzif *f, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(f, &c, 1);
    }
}

static void put_header(tzif *f, char version, const uint32_t counts[6])
{
    put(f, "TZif", 4);
    put(f, &version, 1);
    put(f, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
    for (int i = 0; i < 6; i++)
        put_be(f, counts[i], 4);
}

/* A TZif file: version '2' (or 0 for version 1), transitions at[i] to type idx[i], types with
 * offsets offs, the footer (version 2), and leap second records. */
static tzif make_tzif(char version, const int64_t *at, const unsigned char *idx, uint32_t n,
                      const int32_t *offs, uint32_t types, const char *footer, uint32_t leaps)
{
    tzif f = {.n = 0};
    int tsize = version ? 8 : 4;
    const uint32_t counts[6] = {0, 0, leaps, n, types, 4};
    if (version) {
        const uint32_t empty[6] = {0, 0, 0, 0, 0, 0};
        put_header(&f, version, empty);
    }
    put_header(&f, version, counts);
    for (uint32_t i = 0; i < n; i++)
        put_be(&f, (uint64_t)at[i], tsize);
    put(&f, idx, n);
    for (uint32_t i = 0; i < types; i++) {
        put_be(&f, (uint32_t)offs[i], 4);
        put(&f, "\0\0", 2);
    }
    put(&f, "ABC", 4);
    for (uint32_t i = 0; i < leaps; i++)
        put(&f, "\0\0\0\0\0\0\0\0\0\0\0", (size_t)tsize + 4);
    if (version) {
        put(&f, "\n", 1);
        put(&f, footer, strlen(footer));
        put(&f, "\n", 1);
    }
    return f;
}

static void tzif_files_parse(void **state)
{
    (void)state;
    hks_error err = {0};
    hksd_tz *tz = NULL;
    /* version 1: two transitions, offsets before, between and after */
    const int64_t at[] = {1000, 5000};
    const unsigned char idx[] = {1, 0};
    const int32_t offs[] = {3600, -7200};
    tzif f = make_tzif(0, at, idx, 2, offs, 2, "", 0);
    assert_int_equal(hksd_tz_parse(f.b, f.n, &tz, &err), 0);
    assert_int_equal(hksd_tz_offset(tz, 999), 3600); /* type 0 before the first */
    assert_int_equal(hksd_tz_offset(tz, 1000), -7200);
    assert_int_equal(hksd_tz_offset(tz, 4999), -7200);
    assert_int_equal(hksd_tz_offset(tz, 5000), 3600);
    assert_int_equal(hksd_tz_next_transition(tz, 0), 1000);
    assert_int_equal(hksd_tz_next_transition(tz, 1000), 5000);
    assert_true(hksd_tz_next_transition(tz, 5000) == INT64_MAX);
    hksd_tz_free(tz);
    /* version 2 with a footer that takes over after the last transition */
    f = make_tzif('2', at, idx, 2, offs, 2, "<+0530>-5:30", 0);
    assert_int_equal(hksd_tz_parse(f.b, f.n, &tz, &err), 0);
    assert_int_equal(hksd_tz_offset(tz, 5000), 5 * 3600 + 1800);
    hksd_tz_free(tz);
    /* an empty footer: the last type stays */
    f = make_tzif('2', at, idx, 2, offs, 2, "", 0);
    assert_int_equal(hksd_tz_parse(f.b, f.n, &tz, &err), 0);
    assert_int_equal(hksd_tz_offset(tz, INT64_C(1) << 40), 3600);
    hksd_tz_free(tz);

    /* why, message, footer, first transition time, bytes cut off the end, type 0's offset, leap
     * records, version, first transition's type */
    static const struct {
        const char *why, *msg, *footer;
        int64_t at0;
        size_t cut;
        int32_t off0;
        uint32_t leaps;
        char version;
        unsigned char idx0;
    } bad[] = {
        {"leap seconds", "has leap second records, use the zone without \"right/\"", "UTC0", 1000,
         0, 0, 1, '2', 1},
        {"type index", "transition 0 is invalid (out of order or out of range)", "UTC0", 1000, 0, 0,
         0, '2', 2},
        {"out of order", "transition 1 is invalid (out of order or out of range)", "UTC0", 6000, 0,
         0, 0, '2', 1},
        {"huge time", "transition 0 is invalid (out of order or out of range)", "UTC0",
         INT64_MIN + 5, 0, 0, 0, '2', 1},
        {"offset", "local time type 0 is invalid (offset 100000)", "UTC0", 1000, 0, 100000, 0, '2',
         1},
        {"footer", "footer 'not a rule' is not a POSIX TZ string", "not a rule", 1000, 0, 0, 0, '2',
         1},
        {"footer rule", "footer 'EST5EDT,M13.1.0,M11.1.0' is not a POSIX TZ string",
         "EST5EDT,M13.1.0,M11.1.0", 1000, 0, 0, 0, '2', 1},
        {"no footer", "TZif file without a footer line", "UTC0", 1000, 6, 0, 0, '2', 1},
        {"truncated", "truncated TZif file (version 2 data)", "UTC0", 1000, 40, 0, 0, '2', 1},
        {"version", "TZif version byte 0x31 is unknown", "UTC0", 1000, 0, 0, 0, '1', 1},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        const int64_t bat[] = {bad[i].at0, 5000};
        const unsigned char bidx[] = {bad[i].idx0, 0};
        const int32_t boffs[] = {bad[i].off0, 0};
        f = make_tzif(bad[i].version, bat, bidx, 2, boffs, 2, bad[i].footer, bad[i].leaps);
        err.msg[0] = '\0';
        tz = NULL;
        if (hksd_tz_parse(f.b, f.n - bad[i].cut, &tz, &err) == 0)
            fail_msg("%s: accepted", bad[i].why);
        if (strcmp(err.msg, bad[i].msg) != 0)
            fail_msg("%s: \"%s\", expected \"%s\"", bad[i].why, err.msg, bad[i].msg);
        assert_null(tz);
    }
    assert_int_equal(hksd_tz_parse("TZif", 4, &tz, &err), -1);
    assert_string_equal(err.msg, "not a TZif file");
}

/* POSIX TZ rules (the footer) against glibc, which reads the same strings from TZ. */
static void footer_rules_agree_with_glibc(void **state)
{
    (void)state;
    const char *rules[] = {
        "EST5EDT,M3.2.0,M11.1.0",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",         /* southern hemisphere */
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", /* half-hour DST */
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",     /* negative transition times */
        "IST-2IDT,M3.4.4/26,M10.5.0",           /* past 24 h */
        "XXX3YYY,J60/1:30,300/4:15:30",         /* Julian days without and with Feb 29 */
        "<+13>-13",
        "WET0WEST,M3.5.0/1,M10.5.0",
        "NZST-12NZDT-13,M9.5.0,M4.1.0/3",
    };
    const char *saved = getenv("TZ");
    char *saved_copy = saved ? strdup(saved) : NULL;
    for (size_t i = 0; i < HKS_ARRAY_LEN(rules); i++) {
        tzif f = make_tzif('2', NULL, NULL, 0, (const int32_t[]){0}, 1, rules[i], 0);
        hks_error err = {0};
        hksd_tz *tz = NULL;
        if (hksd_tz_parse(f.b, f.n, &tz, &err) < 0)
            fail_msg("%s: %s", rules[i], err.msg);
        setenv("TZ", rules[i], 1);
        tzset();
        for (int64_t t = utc("2023-12-25 00:00"); t < utc("2029-01-05 00:00"); t += 1800 + 7) {
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (tm.tm_gmtoff != hksd_tz_offset(tz, t))
                fail_msg("%s at %lld: %d, glibc %ld", rules[i], (long long)t, hksd_tz_offset(tz, t),
                         tm.tm_gmtoff);
        }
        hksd_tz_free(tz);
    }
    if (saved_copy)
        setenv("TZ", saved_copy, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved_copy);
    /* RFC 8536 3.3.1: DST all year. glibc gets the turn of the year wrong (it takes the year of
     * the UTC time), so this one is checked by hand. */
    tzif f = make_tzif('2', NULL, NULL, 0, (const int32_t[]){0}, 1, "EST5EDT,0/0,J365/25", 0);
    hks_error err = {0};
    cleanup_tz hksd_tz *tz = NULL;
    assert_int_equal(hksd_tz_parse(f.b, f.n, &tz, &err), 0);
    for (int64_t t = utc("2023-12-30 00:00"); t < utc("2025-01-03 00:00"); t += 3600 - 1)
        assert_int_equal(hksd_tz_offset(tz, t), -4 * 3600);
}

/* ---- next run times ---- */

typedef struct next_case {
    const char *tz, *schedule, *after, *want; /* want NULL: none within five years */
} next_case;

static void check_next(const next_case *cases, size_t n, hksd_cron_dst dst)
{
    for (size_t i = 0; i < n; i++) {
        hksd_cron c = parsed(cases[i].schedule);
        hks_error err = {0};
        int64_t got = dst == HKSD_CRON_DST_CRON
                          ? hksd_cron_next(&c, cases[i].tz, utc(cases[i].after), &err)
                          : hksd_cron_next_kubernetes(&c, cases[i].tz, utc(cases[i].after), &err);
        int64_t want = cases[i].want ? utc(cases[i].want) : HKSD_CRON_NEVER;
        if (got != want) {
            time_t g = (time_t)got;
            struct tm tm;
            char shown[64] = "none";
            if (got >= 0)
                strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M:%S", gmtime_r(&g, &tm));
            fail_msg("%s '%s' after %s: %s UTC, expected %s (%s)", cases[i].tz, cases[i].schedule,
                     cases[i].after, shown, cases[i].want ? cases[i].want : "none", err.msg);
        }
    }
}

static void next_in_utc(void **state)
{
    (void)state;
    static const next_case cases[] = {
        {"UTC", "* * * * *", "2026-01-01 00:00", "2026-01-01 00:01"},
        {"UTC", "* * * * *", "2026-01-01 00:00:59", "2026-01-01 00:01"},
        {"UTC", "*/15 * * * *", "2026-01-01 00:00", "2026-01-01 00:15"},
        {"UTC", "*/15 * * * *", "2026-01-01 00:14:59", "2026-01-01 00:15"},
        {"UTC", "*/15 * * * *", "2026-01-01 23:45", "2026-01-02 00:00"},
        {"UTC", "5-55/10 * * * *", "2026-01-01 00:00", "2026-01-01 00:05"},
        {"UTC", "5-55/10 * * * *", "2026-01-01 00:55", "2026-01-01 01:05"},
        {"UTC", "1,3-5,10 * * * *", "2026-01-01 00:01", "2026-01-01 00:03"},
        {"UTC", "1,3-5,10 * * * *", "2026-01-01 00:05", "2026-01-01 00:10"},
        {"UTC", "1,3-5,10 * * * *", "2026-01-01 00:10", "2026-01-01 01:01"},
        {"UTC", "0 9 * * MON-FRI", "2026-01-02 09:00", "2026-01-05 09:00"}, /* Fri -> Mon */
        {"UTC", "0 0 * * 7", "2026-01-01 00:00", "2026-01-04 00:00"},       /* a Sunday */
        {"UTC", "0 12 ? JUN ?", "2026-01-01 00:00", "2026-06-01 12:00"},
        {"UTC", "@yearly", "2026-06-01 00:00", "2027-01-01 00:00"},
        {"UTC", "@yearly", "2026-12-31 23:59:59", "2027-01-01 00:00"},
        {"UTC", "@monthly", "2026-01-31 10:00", "2026-02-01 00:00"},
        {"UTC", "@weekly", "2026-01-01 00:00", "2026-01-04 00:00"},
        {"UTC", "@daily", "2026-01-01 00:00", "2026-01-02 00:00"},
        {"UTC", "hourly", "2026-01-01 00:30", "2026-01-01 01:00"},
        {"UTC", "0 0 31 * *", "2026-02-01 00:00", "2026-03-31 00:00"},
        /* leap days, 2100 is not a leap year, and the five-year window */
        {"UTC", "0 0 29 2 *", "2026-01-01 00:00", "2028-02-29 00:00"},
        {"UTC", "0 0 29 2 *", "2028-02-29 00:00", "2032-02-29 00:00"},
        {"UTC", "0 0 29 2 *", "2099-01-01 00:00", "2104-02-29 00:00"},
        {"UTC", "0 0 29 2 *", "2097-01-01 00:00", NULL},
        {"UTC", "0 0 30 2 *", "2026-01-01 00:00", NULL},
        {"UTC", "0 0 31 4,6,9,11 *", "2026-01-01 00:00", NULL},
        {NULL, "0 0 1 1 *", "2026-01-01 00:00", "2027-01-01 00:00"}, /* NULL is UTC */
        /* before 1970 (negative times), the first years and a far future */
        {"UTC", "30 1 * * *", "1957-11-01 03:00", "1957-11-02 01:30"},
        {"UTC", "0 0 29 2 *", "1899-01-01 00:00", "1904-02-29 00:00"},
        {"UTC", "0 0 29 2 *", "1897-01-01 00:00", NULL}, /* 1900 is no leap year */
        {"UTC", "0 0 29 2 *", "0001-01-01 00:00", "0004-02-29 00:00"},
        {"UTC", "59 23 31 12 *", "9999-12-31 23:58", "9999-12-31 23:59"},
    };
    check_next(cases, HKS_ARRAY_LEN(cases), HKSD_CRON_DST_CRON);
    check_next(cases, HKS_ARRAY_LEN(cases), HKSD_CRON_DST_KUBERNETES);
}

static void day_of_month_or_day_of_week(void **state)
{
    (void)state;
    /* January 2026: the 13th is a Tuesday, Fridays are the 2nd, 9th, 16th, 23rd and 30th */
    static const char *const or_days[] = {"2026-01-02", "2026-01-09", "2026-01-13",
                                          "2026-01-16", "2026-01-23", "2026-01-30",
                                          "2026-02-06", "2026-02-13", "2026-02-20"};
    hksd_cron c = parsed("0 0 13 * 5");
    hks_error err = {0};
    int64_t t = utc("2026-01-01 00:00");
    for (size_t i = 0; i < HKS_ARRAY_LEN(or_days); i++) {
        char want[32];
        snprintf(want, sizeof(want), "%s 00:00", or_days[i]);
        t = hksd_cron_next(&c, "UTC", t, &err);
        assert_int_equal(t, utc(want));
    }
    /* one day field '*' or '?': only the other restricts */
    static const next_case cases2[] = {
        {"UTC", "0 0 13 * *", "2026-01-01 00:00", "2026-01-13 00:00"},
        {"UTC", "0 0 * * 5", "2026-01-03 00:00", "2026-01-09 00:00"},
        {"UTC", "0 0 13 * ?", "2026-01-01 00:00", "2026-01-13 00:00"},
        {"UTC", "0 0 ? * 5", "2026-01-03 00:00", "2026-01-09 00:00"},
        {"UTC", "0 0 13 * */1", "2026-01-01 00:00", "2026-01-13 00:00"},
        /* Jan 1 2026 is a Thursday (4): "*\/2" = Sun, Tue, Thu, Sat, OR the 13th */
        {"UTC", "0 0 13 * */2", "2026-01-01 00:00", "2026-01-03 00:00"},
        {"UTC", "0 0 1,15 * MON", "2026-01-01 00:00", "2026-01-05 00:00"},
        {"UTC", "0 0 1,15 * MON", "2026-01-12 00:00", "2026-01-15 00:00"},
    };
    check_next(cases2, HKS_ARRAY_LEN(cases2), HKSD_CRON_DST_CRON);
}

/* 2026: New York springs forward on March 8 at 02:00 EST (07:00 UTC) and falls back on November 1
 * at 02:00 EDT (06:00 UTC); Berlin on March 29 and October 25, both at 01:00 UTC. */
static void next_across_dst_hksd(void **state)
{
    (void)state;
    static const next_case cases[] = {
        /* a day before: 02:30 EST exists */
        {"America/New_York", "30 2 * * *", "2026-03-07 05:00", "2026-03-07 07:30"},
        /* 02:30 does not exist on March 8: run as the clock jumps to 03:00 EDT (ISC cron) */
        {"America/New_York", "30 2 * * *", "2026-03-08 05:00", "2026-03-08 07:00"},
        {"America/New_York", "30 2 * * *", "2026-03-08 07:00", "2026-03-09 06:30"},
        {"America/New_York", "0 3 * * *", "2026-03-08 05:00", "2026-03-08 07:00"},
        /* interval jobs do not catch up on the hour that did not happen */
        {"America/New_York", "0 * * * *", "2026-03-08 06:00", "2026-03-08 07:00"},
        {"America/New_York", "*/15 * * * *", "2026-03-08 06:45", "2026-03-08 07:00"},
        {"America/New_York", "*/15 2 * * *", "2026-03-08 05:00", "2026-03-09 06:00"},
        /* 01:30 happens twice on November 1: a fixed-time job runs the first time only */
        {"America/New_York", "30 1 * * *", "2026-11-01 04:00", "2026-11-01 05:30"},
        {"America/New_York", "30 1 * * *", "2026-11-01 05:30", "2026-11-02 06:30"},
        {"America/New_York", "30 1 * * *", "2026-11-01 06:10", "2026-11-02 06:30"},
        {"America/New_York", "0 2 * * *", "2026-11-01 04:00", "2026-11-01 07:00"},
        /* interval jobs keep running through the repeated hour */
        {"America/New_York", "0 * * * *", "2026-11-01 05:00", "2026-11-01 06:00"},
        {"America/New_York", "0 * * * *", "2026-11-01 06:00", "2026-11-01 07:00"},
        {"America/New_York", "*/30 1 * * *", "2026-11-01 05:30", "2026-11-01 06:00"},
        /* wall-clock schedules keep their local time across the change */
        {"America/New_York", "0 0 1 * *", "2026-02-15 00:00", "2026-03-01 05:00"},
        {"America/New_York", "0 0 1 * *", "2026-03-01 05:00", "2026-04-01 04:00"},
        {"America/New_York", "0 9 * * MON-FRI", "2026-03-06 14:00", "2026-03-09 13:00"},
        /* 1960: before 1970, from the transition table */
        {"America/New_York", "30 2 * * *", "1960-04-24 05:00", "1960-04-24 07:00"},
        {"America/New_York", "30 1 * * *", "1960-10-30 05:30", "1960-10-31 06:30"},
        /* Berlin */
        {"Europe/Berlin", "30 2 * * *", "2026-03-28 23:00", "2026-03-29 01:00"},
        {"Europe/Berlin", "30 2 * * *", "2026-03-29 01:00", "2026-03-30 00:30"},
        {"Europe/Berlin", "15 2,3 * * *", "2026-03-28 23:00", "2026-03-29 01:00"},
        {"Europe/Berlin", "15 2,3 * * *", "2026-03-29 01:00", "2026-03-29 01:15"},
        {"Europe/Berlin", "0 3 * * *", "2026-03-28 23:00", "2026-03-29 01:00"},
        {"Europe/Berlin", "30 2 * * *", "2026-10-24 22:00", "2026-10-25 00:30"},
        {"Europe/Berlin", "30 2 * * *", "2026-10-25 00:30", "2026-10-26 01:30"},
        {"Europe/Berlin", "0 3 * * *", "2026-10-24 22:00", "2026-10-25 02:00"},
        {"Europe/Berlin", "*/20 2 * * *", "2026-10-25 00:40", "2026-10-25 01:00"},
        {"Europe/Berlin", "@daily", "2026-10-24 22:00", "2026-10-25 23:00"},
        /* Lord Howe moves by half an hour: 02:00-02:29 do not exist on October 4 */
        {"Australia/Lord_Howe", "15 2 * * *", "2026-10-03 12:00", "2026-10-03 15:30"},
        {"Australia/Lord_Howe", "30 2 * * *", "2026-10-03 12:00", "2026-10-03 15:30"},
    };
    check_next(cases, HKS_ARRAY_LEN(cases), HKSD_CRON_DST_CRON);
}

/* What the Kubernetes CronJob controller does (robfig/cron v3 spec_test.go): a skipped time does
 * not run, a repeated one runs twice. */
static void next_across_dst_kubernetes(void **state)
{
    (void)state;
    static const next_case cases[] = {
        {"America/New_York", "30 2 * * *", "2026-03-08 05:00", "2026-03-09 06:30"},
        {"America/New_York", "0 3 * * *", "2026-03-08 05:00", "2026-03-08 07:00"},
        {"America/New_York", "0 * * * *", "2026-03-08 06:00", "2026-03-08 07:00"},
        {"America/New_York", "30 1 * * *", "2026-11-01 04:00", "2026-11-01 05:30"},
        {"America/New_York", "30 1 * * *", "2026-11-01 05:30", "2026-11-01 06:30"},
        {"America/New_York", "30 1 * * *", "2026-11-01 06:30", "2026-11-02 06:30"},
        {"America/New_York", "0 * * * *", "2026-11-01 05:00", "2026-11-01 06:00"},
        {"Europe/Berlin", "30 2 * * *", "2026-03-28 23:00", "2026-03-30 00:30"},
        {"Europe/Berlin", "30 2 * * *", "2026-10-24 22:00", "2026-10-25 00:30"},
        {"Europe/Berlin", "30 2 * * *", "2026-10-25 00:30", "2026-10-25 01:30"},
        {"Australia/Lord_Howe", "15 2 * * *", "2026-10-03 12:00", "2026-10-04 15:15"},
    };
    check_next(cases, HKS_ARRAY_LEN(cases), HKSD_CRON_DST_KUBERNETES);
}

static void next_errors(void **state)
{
    (void)state;
    hksd_cron c = parsed("0 0 30 2 *");
    hks_error err = {0};
    assert_int_equal(hksd_cron_next(&c, "UTC", utc("2026-01-01 00:00"), &err), HKSD_CRON_NEVER);
    assert_string_equal(err.msg, "schedule '0 0 30 2 *': no run time before 2032-01-01");
    c = parsed("@daily");
    assert_int_equal(hksd_cron_next(&c, "Mars/Olympus", 0, &err), HKSD_CRON_ERROR);
    assert_string_equal(
        err.msg, "timezone: unknown time zone Mars/Olympus (no /usr/share/zoneinfo/Mars/Olympus)");
    assert_int_equal(hksd_cron_next(&c, "UTC", HKSD_CRON_TIME_MAX + 1, &err), HKSD_CRON_ERROR);
    assert_string_equal(err.msg, "next run: time 253402300800 is outside years 1-9999");
    assert_int_equal(hksd_cron_next(&c, "UTC", INT64_MIN, &err), HKSD_CRON_ERROR);
    /* before 1970 works too */
    assert_int_equal(hksd_cron_next(&c, "UTC", utc("1969-12-31 12:00"), &err), 0);
}

static void civil_calendar(void **state)
{
    (void)state;
    for (int64_t day = -800000; day < 3000000; day += 97) {
        int64_t y;
        unsigned m, d;
        hksd_civil_from_days(day, &y, &m, &d);
        assert_int_equal(hksd_days_from_civil(y, m, d), day);
        assert_true(d >= 1 && d <= hksd_days_in_month(y, m));
        struct tm tm = {.tm_year = (int)(y - 1900), .tm_mon = (int)m - 1, .tm_mday = (int)d};
        assert_int_equal((int64_t)timegm(&tm), day * 86400);
        assert_int_equal((unsigned)tm.tm_wday, hksd_weekday(day));
    }
    assert_int_equal(hksd_days_in_month(2100, 2), 28);
    assert_int_equal(hksd_days_in_month(2000, 2), 29);
    assert_int_equal(hksd_days_in_month(2028, 2), 29);
}

/* Zones are immutable and nothing touches TZ: threads computing in different zones at once get
 * the answers one thread gets. */
typedef struct thread_job {
    const char *tz;
    int64_t results[200];
} thread_job;

static void run_job(thread_job *job)
{
    hksd_cron c = parsed("*/7 1-3 * * *");
    hks_error err = {0};
    int64_t t = utc("2026-03-01 00:00");
    for (size_t i = 0; i < HKS_ARRAY_LEN(job->results); i++)
        job->results[i] = t = hksd_cron_next(&c, job->tz, t, &err);
}

static void *thread_main(void *arg)
{
    run_job(arg);
    return NULL;
}

static void threads_share_nothing(void **state)
{
    (void)state;
    const char *saved = getenv("TZ");
    static thread_job jobs[8], alone[8];
    const char *zones[] = {"America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC"};
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) {
        jobs[i].tz = alone[i].tz = zones[i % 4];
        run_job(&alone[i]);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 8; i++)
        assert_memory_equal(jobs[i].results, alone[i].results, sizeof(jobs[i].results));
    assert_ptr_equal(getenv("TZ"), saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_star),
        cmocka_unit_test(values_ranges_steps_lists),
        cmocka_unit_test(names_case_insensitive),
        cmocka_unit_test(sunday_is_zero_or_seven),
        cmocka_unit_test(question_mark_and_star_bits),
        cmocka_unit_test(presets_and_macros),
        cmocka_unit_test(invalid_schedules_say_why),
        cmocka_unit_test(timezones_are_checked),
        cmocka_unit_test(offsets_agree_with_glibc),
        cmocka_unit_test(transitions_of_2026),
        cmocka_unit_test(tzif_files_parse),
        cmocka_unit_test(footer_rules_agree_with_glibc),
        cmocka_unit_test(next_in_utc),
        cmocka_unit_test(day_of_month_or_day_of_week),
        cmocka_unit_test(next_across_dst_hksd),
        cmocka_unit_test(next_across_dst_kubernetes),
        cmocka_unit_test(next_errors),
        cmocka_unit_test(civil_calendar),
        cmocka_unit_test(threads_share_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
