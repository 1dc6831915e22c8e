/* UTC timestamps as the API shows them and Kubernetes writes them: "2026-11-29T12:00:00Z". */
#ifndef HKSD_ISO_TIME_H
#define HKSD_ISO_TIME_H

#include <jansson.h>

#define HKSD_ISO8601_SIZE 32

/* t (unix seconds) into out; "" when t cannot be shown. */
void hksd_iso8601(long long t, char out[HKSD_ISO8601_SIZE]);
/* t as a JSON string, or null when t <= 0 (never happened). */
json_t *hksd_iso8601_or_null(long long t);
/* The unix seconds of text, or -1 when it is not exactly that form. */
long long hksd_iso8601_parse(const char *text);

#endif
