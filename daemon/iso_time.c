#include "iso_time.h"

#include <string.h>
#include <time.h>

#define FORMAT "%Y-%m-%dT%H:%M:%SZ"

void hksd_iso8601(long long t, char out[HKSD_ISO8601_SIZE])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, HKSD_ISO8601_SIZE, FORMAT, &tm) == 0)
        out[0] = '\0';
}

json_t *hksd_iso8601_or_null(long long t)
{
    if (t <= 0)
        return json_null();
    char text[HKSD_ISO8601_SIZE];
    hksd_iso8601(t, text);
    return json_string(text);
}

long long hksd_iso8601_parse(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = text ? strptime(text, FORMAT, &tm) : NULL;
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (long long)t;
}
