/* CronJob schedules: the 5-field cron syntax a Kubernetes CronJob accepts (robfig/cron v3
 * ParseStandard, which the API server validates spec.schedule with), the next run time in an IANA
 * time zone, and the time zone reader behind it.
 *
 * Time zones are read from the TZif files under /usr/share/zoneinfo (RFC 8536: the 64-bit
 * transition table and the POSIX TZ footer for times past the table) into an immutable hksd_tz.
 * Nothing here calls tzset, localtime or setenv("TZ"): those share process-wide state, and the
 * daemon computes run times for CronJobs in many zones from several threads at once. */
#ifndef HKSD_CRON_H
#define HKSD_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

/* Longest schedule accepted, and the size of hksd_cron.text (the normalized schedule). */
#define HKSD_CRON_INPUT_MAX 1024
#define HKSD_CRON_TEXT_MAX  256

typedef struct hksd_cron {
    uint64_t minutes; /* bit m set: minute m runs (0-59) */
    uint32_t hours;   /* bit h: hour h (0-23) */
    uint32_t dom;     /* bit d: day of month d (1-31) */
    uint16_t months;  /* bit m: month m (1-12) */
    uint8_t dow;      /* bit d: day of week d (0-6, 0 = Sunday; a 7 in the schedule is 0) */
    /* robfig's "star bit": the field has an element '*' or '?' without a step above 1. When either
     * day field has it a day must match both fields, otherwise either ("0 0 13 * 5" runs on the
     * 13th and on every Friday; a '*' with a step above 1 restricts, as any list does). */
    bool dom_star, dow_star;
    /* The minute or hour field starts with '*': an interval job in ISC cron's sense, which keeps
     * its real-time cadence across DST changes (see hksd_cron_dst). */
    bool minute_star, hour_star;
    /* The schedule normalized: fields separated by one space, presets as their @ macro, a 7 in the
     * day of week rewritten as 0. Kubernetes accepts it as spec.schedule with the same meaning. */
    char text[HKSD_CRON_TEXT_MAX];
} hksd_cron;

/* Parse a schedule: 5 fields "minute hour day-of-month month day-of-week", each a list of
 * values, ranges "a-b", '*', with steps "a-b/n", "'*'/n" and "a/n" (= a-max/n); month names JAN-DEC
 * and day names SUN-SAT (case-insensitive), 0 or 7 for Sunday, '?' = '*' in the two day fields.
 * Presets hourly, daily, weekly, monthly, yearly, annually and the macros @hourly, @daily,
 * @midnight, @weekly, @monthly, @yearly, @annually. Refused, with the reason: @every, @reboot,
 * TZ= and CRON_TZ= (set the CronJob's time zone instead). Errors name the field and say why:
 * "minute: 61 is above the maximum 59". out is written only on success. */
int hksd_cron_parse(const char *schedule, hksd_cron *out, hks_error *err);

/* Whether name is a time zone a CronJob may use: "UTC", or an IANA name with a TZif file under
 * /usr/share/zoneinfo, spelled as Kubernetes allows (components of 1-14 characters from
 * A-Z a-z 0-9 . - _ +, none "." or ".." or starting with '-'); "Local" is refused as Kubernetes
 * does. err says why not. */
bool hksd_cron_timezone_valid(const char *name, hks_error *err);

/* How a wall-clock time that a DST change skips or repeats is run. */
typedef enum hksd_cron_dst {
    /* hksd's scheduler, as ISC (Vixie) cron does it: a job whose minute and hour fields are both
     * fixed runs a skipped time once, at the instant the clock jumps over it, and a repeated time
     * once, at its first occurrence; an interval job (minute or hour field starting with '*')
     * runs at every instant whose wall-clock time matches, so its repeated times run twice and
     * its skipped times not at all. */
    HKSD_CRON_DST_CRON,
    /* What the Kubernetes CronJob controller does (robfig/cron v3 SpecSchedule.Next, see its
     * spec_test.go "2am nightly job (skipped)", "1am nightly job (runs twice)"): every instant
     * whose wall-clock time matches, for every job. */
    HKSD_CRON_DST_KUBERNETES,
} hksd_cron_dst;

#define HKSD_CRON_NEVER (-1) /* no run time within five years (robfig's limit), e.g. Feb 30 */
#define HKSD_CRON_ERROR (-2) /* tz cannot be loaded, or after is out of range; err says which */

/* Times next accepts for after: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define HKSD_CRON_TIME_MIN (-62135596800LL)
#define HKSD_CRON_TIME_MAX 253402300799LL

/* The first run time strictly after `after` (unix seconds), in tz ("UTC", an IANA name, or NULL
 * for UTC), with hksd's DST rules (HKSD_CRON_DST_CRON). HKSD_CRON_NEVER when no run falls before
 * the end of the fifth calendar year after the one `after` is in, HKSD_CRON_ERROR on an error;
 * err is filled in both cases. Reads the zone's file on each call. */
int64_t hksd_cron_next(const hksd_cron *c, const char *tz, int64_t after, hks_error *err);
/* The same with Kubernetes' DST behaviour (HKSD_CRON_DST_KUBERNETES): when the kubernetes backend's
 * CronJob will next run. */
int64_t hksd_cron_next_kubernetes(const hksd_cron *c, const char *tz, int64_t after,
                                  hks_error *err);

/* ---- time zones ---- */

/* A loaded zone: immutable, so one can be shared by threads without locking. */
typedef struct hksd_tz hksd_tz;

/* Load a zone by name (NULL or "UTC": UTC, without a file); names as hksd_cron_timezone_valid. */
int hksd_tz_load(const char *name, hksd_tz **out, hks_error *err);
/* Parse the bytes of a TZif file (versions 1-4; no leap second records, as "right/" zones have). */
int hksd_tz_parse(const void *data, size_t len, hksd_tz **out, hks_error *err);
void hksd_tz_free(hksd_tz *tz);
static inline void hksd_tz_freep(hksd_tz **tz)
{
    hksd_tz_free(*tz);
}
#define cleanup_tz __attribute__((cleanup(hksd_tz_freep)))

/* The zone's UTC offset (seconds east of UTC) at instant t. */
int32_t hksd_tz_offset(const hksd_tz *tz, int64_t t);
/* The first instant after t at which the offset may change, INT64_MAX when it never does. */
int64_t hksd_tz_next_transition(const hksd_tz *tz, int64_t t);

/* The next run as hksd_cron_next, in a loaded zone, with the chosen DST behaviour. */
int64_t hksd_cron_next_in(const hksd_cron *c, const hksd_tz *tz, int64_t after, hksd_cron_dst dst,
                          hks_error *err);

/* ---- civil time (proleptic Gregorian calendar, no zone) ---- */

/* Days since 1970-01-01 of y-m-d (m 1-12, d 1-31), and back. */
int64_t hksd_days_from_civil(int64_t y, unsigned m, unsigned d);
void hksd_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* Number of days in month m of year y. */
unsigned hksd_days_in_month(int64_t y, unsigned m);
/* Day of the week (0 = Sunday) of the day `days` after 1970-01-01. */
unsigned hksd_weekday(int64_t days);

#endif
