/* What the API server answers, read defensively: Status errors into one clear line and an errno,
 * objects, lists, watch events and a Knative Service's readiness. Nothing here trusts a type or a
 * length it did not check. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int kube_fail(hks_error *err, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->errnum = errnum;
    return -1;
}

bool kube_dns_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

long long kube_time_parse(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (long long)t;
}

int kube_time_format(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0 || !gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -1;
    return 0;
}

void kube_copy_printable(char *out, size_t size, const char *text, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[o] = '\0';
}

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The body as a Status object, or NULL. */
static json_t *parse_status(const char *body, size_t len)
{
    if (!body || len == 0 || len > KUBE_BODY_MAX)
        return NULL;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *kind = string_at(j, "kind");
    if (!kind || strcmp(kind, "Status") != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void kube_status_summary(long http_status, const char *body, size_t len, char *out, size_t size)
{
    json_t *status = parse_status(body, len);
    const char *reason = string_at(status, "reason");
    const char *message = string_at(status, "message");
    char detail[600] = "";
    if (status) {
        char r[64], m[512];
        kube_copy_printable(r, sizeof(r), reason ? reason : "", reason ? strlen(reason) : 0);
        kube_copy_printable(m, sizeof(m), message ? message : "", message ? strlen(message) : 0);
        snprintf(detail, sizeof(detail), "%s%s%s", r, r[0] && m[0] ? ": " : "", m);
    } else if (body && len) {
        size_t shown = len < 200 ? len : 200;
        kube_copy_printable(detail, sizeof(detail), body, shown);
    }
    json_decref(status);
    if (detail[0])
        snprintf(out, size, "HTTP %ld %s", http_status, detail);
    else
        snprintf(out, size, "HTTP %ld", http_status);
}

int kube_status_errno(long http_status, const char *body, size_t len)
{
    json_t *status = parse_status(body, len);
    const char *reason = string_at(status, "reason");
    int e = 0;
    if (reason) {
        static const struct {
            const char *reason;
            int errnum;
        } reasons[] = {
            {"NotFound", ENOENT},   {"AlreadyExists", EEXIST},
            {"Conflict", EBUSY},    {"Gone", ESTALE},
            {"Expired", ESTALE},    {"Invalid", EINVAL},
            {"BadRequest", EINVAL}, {"Unauthorized", EACCES},
            {"Forbidden", EACCES},  {"TooManyRequests", EAGAIN},
            {"Timeout", ETIMEDOUT}, {"ServerTimeout", ETIMEDOUT},
        };
        for (size_t i = 0; i < HKS_ARRAY_LEN(reasons) && !e; i++)
            if (strcmp(reason, reasons[i].reason) == 0)
                e = reasons[i].errnum;
    }
    json_decref(status);
    if (e)
        return e;
    switch (http_status) {
    case 404:
        return ENOENT;
    case 409:
        return EBUSY;
    case 410:
        return ESTALE;
    case 400:
    case 422:
        return EINVAL;
    case 401:
    case 403:
        return EACCES;
    case 429:
        return EAGAIN;
    case 504:
        return ETIMEDOUT;
    default:
        return EIO;
    }
}

json_t *kube_parse_object(const char *body, size_t len, const char *expect_kind, hks_error *err)
{
    if (!body || len == 0) {
        kube_fail(err, EIO, "an empty reply where an object was expected");
        return NULL;
    }
    if (len > KUBE_BODY_MAX) {
        kube_fail(err, EIO, "a reply of %zu bytes (at most %u)", len, KUBE_BODY_MAX);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        kube_fail(err, EIO, "a reply that is not JSON (line %d: %.200s)", jerr.line, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        kube_fail(err, EIO, "a reply that is not a JSON object");
        return NULL;
    }
    const char *kind = string_at(j, "kind");
    if (expect_kind && (!kind || strcmp(kind, expect_kind) != 0)) {
        char shown[64];
        kube_copy_printable(shown, sizeof(shown), kind ? kind : "none", kind ? strlen(kind) : 4);
        json_decref(j);
        kube_fail(err, EIO, "a reply of kind %s where %s was expected", shown, expect_kind);
        return NULL;
    }
    json_t *meta = json_object_get(j, "metadata");
    if (meta && !json_is_object(meta)) {
        json_decref(j);
        kube_fail(err, EIO, "a reply whose metadata is not an object");
        return NULL;
    }
    return j;
}

/* metadata.resourceVersion of obj into rv ("" when absent); -1 when it is not a sane string. */
static int copy_resource_version(const json_t *obj, char *rv, size_t rv_size)
{
    rv[0] = '\0';
    const json_t *meta = json_object_get(obj, "metadata");
    if (!meta)
        return 0;
    if (!json_is_object(meta))
        return -1;
    const json_t *v = json_object_get(meta, "resourceVersion");
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= rv_size || n > 64)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '&' || ch == '#' || ch == '%' || ch == '?')
            return -1;
    }
    memcpy(rv, s, n + 1);
    return 0;
}

json_t *kube_parse_list(const char *body, size_t len, char *rv, size_t rv_size, hks_error *err)
{
    rv[0] = '\0';
    json_t *list = kube_parse_object(body, len, NULL, err);
    if (!list)
        return NULL;
    json_t *items = json_object_get(list, "items");
    const char *kind = string_at(list, "kind");
    if (kind && (strlen(kind) < 4 || strcmp(kind + strlen(kind) - 4, "List") != 0)) {
        json_decref(list);
        kube_fail(err, EIO, "a reply that is not a list");
        return NULL;
    }
    if (items && !json_is_array(items) && !json_is_null(items)) {
        json_decref(list);
        kube_fail(err, EIO, "a list whose items are not an array");
        return NULL;
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item)) {
            json_decref(list);
            kube_fail(err, EIO, "a list whose item %zu is not an object", i);
            return NULL;
        }
    }
    if (copy_resource_version(list, rv, rv_size) < 0) {
        json_decref(list);
        kube_fail(err, EIO, "a list with a malformed resourceVersion");
        return NULL;
    }
    json_t *out = json_is_array(items) ? json_incref(items) : json_array();
    json_decref(list);
    if (!out)
        kube_fail(err, ENOMEM, "list items");
    return out;
}

int kube_parse_watch_event(const char *line, size_t len, char type[16], json_t **object, char *rv,
                           size_t rv_size, hks_error *err)
{
    *object = NULL;
    type[0] = '\0';
    rv[0] = '\0';
    if (len > KUBE_EVENT_MAX)
        return kube_fail(err, EIO, "a watch event of %zu bytes (at most %u)", len, KUBE_EVENT_MAX);
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return kube_fail(err, EIO, "a watch event that is not a JSON object");
    }
    const char *t = string_at(ev, "type");
    json_t *obj = json_object_get(ev, "object");
    if (!t || !json_is_object(obj)) {
        json_decref(ev);
        return kube_fail(err, EIO, "a watch event without a type or an object");
    }
    if (strcmp(t, "ERROR") == 0) {
        const json_t *code = json_object_get(obj, "code");
        long status = json_is_integer(code) ? (long)json_integer_value(code) : 500;
        char *dump = json_dumps(obj, JSON_COMPACT);
        char summary[700];
        kube_status_summary(status, dump, dump ? strlen(dump) : 0, summary, sizeof(summary));
        int e = kube_status_errno(status, dump, dump ? strlen(dump) : 0);
        free(dump);
        json_decref(ev);
        return kube_fail(err, e, "watch: %s", summary);
    }
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    bool known = false;
    for (size_t i = 0; i < HKS_ARRAY_LEN(types) && !known; i++)
        known = strcmp(t, types[i]) == 0;
    if (!known) {
        json_decref(ev);
        return kube_fail(err, EIO, "a watch event of an unknown type");
    }
    if (copy_resource_version(obj, rv, rv_size) < 0) {
        json_decref(ev);
        return kube_fail(err, EIO, "a watch event with a malformed resourceVersion");
    }
    snprintf(type, 16, "%s", t);
    *object = json_incref(obj);
    json_decref(ev);
    return 0;
}

static const json_t *ready_condition(const json_t *status)
{
    const json_t *conditions = json_object_get(status, "conditions");
    size_t i;
    const json_t *c;
    json_array_foreach(conditions, i, c)
    {
        const char *type = string_at(c, "type");
        if (type && strcmp(type, "Ready") == 0)
            return c;
    }
    return NULL;
}

kube_readiness kube_kservice_readiness(const json_t *ksvc, char *url, size_t url_size, char *why,
                                       size_t why_size)
{
    if (url && url_size)
        url[0] = '\0';
    if (why && why_size)
        snprintf(why, why_size, "not reconciled yet");
    const json_t *meta = json_object_get(ksvc, "metadata");
    const json_t *status = json_object_get(ksvc, "status");
    const json_t *gen = json_object_get(meta, "generation");
    const json_t *observed = json_object_get(status, "observedGeneration");
    if (!json_is_integer(gen) || !json_is_integer(observed) ||
        json_integer_value(gen) != json_integer_value(observed))
        return KUBE_NOT_READY;
    const json_t *ready = ready_condition(status);
    const char *value = string_at(ready, "status");
    if (!value)
        return KUBE_NOT_READY;
    const char *reason = string_at(ready, "reason");
    const char *message = string_at(ready, "message");
    if (why && why_size) {
        char r[64], m[400];
        kube_copy_printable(r, sizeof(r), reason ? reason : "", reason ? strlen(reason) : 0);
        kube_copy_printable(m, sizeof(m), message ? message : "", message ? strlen(message) : 0);
        snprintf(why, why_size, "Ready=%s%s%s%s%s",
                 strcmp(value, "True") == 0    ? "True"
                 : strcmp(value, "False") == 0 ? "False"
                                               : "Unknown",
                 r[0] ? " " : "", r, m[0] ? ": " : "", m);
    }
    if (strcmp(value, "False") == 0)
        return KUBE_FAILED;
    if (strcmp(value, "True") != 0)
        return KUBE_NOT_READY;
    const char *address = string_at(json_object_get(status, "address"), "url");
    if (!address || (strncmp(address, "http://", 7) != 0 && strncmp(address, "https://", 8) != 0))
        return KUBE_NOT_READY;
    for (const char *p = address; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return KUBE_NOT_READY;
    if (url && url_size) {
        if (strlen(address) >= url_size)
            return KUBE_NOT_READY;
        snprintf(url, url_size, "%s", address);
    }
    return KUBE_READY;
}
