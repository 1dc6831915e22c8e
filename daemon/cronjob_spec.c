/* A CronJob's definition as a client sends it, checked field by field into its canonical form:
 * every default filled in, the schedule normalized. The same rules as a Kubernetes CronJob where
 * both have the field (name length, history limits, starting deadline, concurrency policy), so a
 * definition moves between the backends unchanged. */
#include "cronjobs.h"

#include "function_store.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#define MAX_HEADERS       32
#define MAX_HEADER_VALUE  4096
#define MAX_PATH          2048
#define MAX_ARGS          256
#define MAX_ARG_BYTES     4096
#define MAX_ENV           128
#define MAX_ENV_VALUE     (32u << 10)
#define MAX_DEADLINE_S    (366LL * 86400)
#define DEFAULT_SUCCEEDED 3
#define DEFAULT_FAILED    1

static int invalid(char field[64], hks_error *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int invalid(char field[64], hks_error *err, const char *name, const char *fmt, ...)
{
    snprintf(field, 64, "%s", name);
    char message[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    return hks_fail(err, 0, "%s: %s", name, message);
}

/* The first key of o not in known, or NULL. */
static const char *unknown_key(json_t *o, const char *const *known, size_t n)
{
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value)
    {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(key, known[i]) == 0;
        if (!found)
            return key;
    }
    return NULL;
}

static int refuse_unknown(json_t *o, const char *const *known, size_t n, const char *prefix,
                          char field[64], hks_error *err)
{
    const char *key = unknown_key(o, known, n);
    if (!key)
        return 0;
    char name[64];
    snprintf(name, sizeof(name), "%s%.40s", prefix, key[0] ? key : "\"\"");
    return invalid(field, err, name, "unknown field");
}

/* A string of 1..max bytes without NUL (JSON can carry "\u0000"). */
static const char *plain_string(json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    if (!s || !*s || json_string_length(v) != strlen(s) || strlen(s) > max)
        return NULL;
    return s;
}

static bool dns_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !islower((unsigned char)s[0]) || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
    }
    return true;
}

static bool env_name(const char *s)
{
    if (!s[0] || strlen(s) > 128 || isdigit((unsigned char)s[0]))
        return false;
    for (const char *c = s; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_')
            return false;
    }
    return true;
}

/* An HTTP token (RFC 9110 tchar), as a header name must be. */
static bool http_token(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (const char *c = s; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("!#$%&'*+-.^_`|~", *c))
            return false;
    }
    return true;
}

/* Headers that describe the connection or the framing: hksd sets those itself. */
static bool reserved_header(const char *name)
{
    static const char *const reserved[] = {"host",       "content-length", "transfer-encoding",
                                           "connection", "keep-alive",     "upgrade",
                                           "te",         "trailer",        "expect"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(reserved); i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    }
    return strncasecmp(name, "proxy-", 6) == 0;
}

static int check_int(json_t *v, long long min, long long max, const char *name, char field[64],
                     hks_error *err, long long *out)
{
    if (!json_is_integer(v))
        return invalid(field, err, name, "must be an integer");
    long long value = json_integer_value(v);
    if (value < min)
        return invalid(field, err, name, "%lld is below the minimum %lld", value, min);
    if (value > max)
        return invalid(field, err, name, "%lld is above the maximum %lld", value, max);
    *out = value;
    return 0;
}

static int check_strings(json_t *v, size_t min_n, const char *name, char field[64], hks_error *err)
{
    if (!json_is_array(v))
        return invalid(field, err, name, "must be an array of strings");
    if (json_array_size(v) < min_n || json_array_size(v) > MAX_ARGS)
        return invalid(field, err, name, "must hold %zu to %d strings", min_n, MAX_ARGS);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!plain_string(s, MAX_ARG_BYTES)) {
            char item[64];
            snprintf(item, sizeof(item), "%s[%zu]", name, i);
            return invalid(field, err, item,
                           "must be a non-empty string of at most %d bytes "
                           "without NUL",
                           MAX_ARG_BYTES);
        }
    }
    return 0;
}

static int check_env(json_t *v, const char *name, char field[64], hks_error *err)
{
    if (!json_is_object(v))
        return invalid(field, err, name, "must be an object of strings");
    if (json_object_size(v) > MAX_ENV)
        return invalid(field, err, name, "more than %d variables", MAX_ENV);
    const char *key;
    json_t *value;
    json_object_foreach(v, key, value)
    {
        char item[64];
        snprintf(item, sizeof(item), "%s.%.40s", name, key);
        if (!env_name(key))
            return invalid(field, err, item, "not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
        const char *s = json_string_value(value);
        if (!s || json_string_length(value) != strlen(s) || strlen(s) > MAX_ENV_VALUE)
            return invalid(field, err, item, "must be a string of at most %u bytes without NUL",
                           MAX_ENV_VALUE);
    }
    return 0;
}

/* target.function: a scheduled invocation; defaults filled into t. */
static int check_function_target(json_t *t, char field[64], hks_error *err)
{
    static const char *const known[] = {"id", "method", "path", "headers", "body"};
    if (!json_is_object(t))
        return invalid(field, err, "target.function", "must be an object");
    if (refuse_unknown(t, known, HKS_ARRAY_LEN(known), "target.function.", field, err) < 0)
        return -1;
    if (!hksd_function_id_valid(json_string_value(json_object_get(t, "id"))))
        return invalid(field, err, "target.function.id", "must be a function id (fn-...)");

    json_t *method = json_object_get(t, "method");
    static const char *const methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                          "DELETE", "HEAD", "OPTIONS"};
    if (!method) {
        json_object_set_new(t, "method", json_string("POST"));
    } else {
        bool known_method = false;
        for (size_t i = 0; i < HKS_ARRAY_LEN(methods) && json_is_string(method); i++)
            known_method = known_method || strcmp(json_string_value(method), methods[i]) == 0;
        if (!known_method)
            return invalid(field, err, "target.function.method",
                           "must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    }

    json_t *path = json_object_get(t, "path");
    if (!path) {
        json_object_set_new(t, "path", json_string("/"));
    } else {
        const char *p = plain_string(path, MAX_PATH);
        bool ok = p && p[0] == '/';
        for (const char *c = p; ok && *c; c++)
            ok = *c > 0x20 && *c < 0x7f;
        if (!ok)
            return invalid(field, err, "target.function.path",
                           "must start with '/' and hold at most %d printable ASCII characters "
                           "without spaces",
                           MAX_PATH);
    }

    json_t *headers = json_object_get(t, "headers");
    if (!headers) {
        json_object_set_new(t, "headers", json_object());
    } else {
        if (!json_is_object(headers) || json_object_size(headers) > MAX_HEADERS)
            return invalid(field, err, "target.function.headers",
                           "must be an object of at most %d strings", MAX_HEADERS);
        const char *key;
        json_t *value;
        json_object_foreach(headers, key, value)
        {
            char item[64];
            snprintf(item, sizeof(item), "target.function.headers.%.32s", key);
            if (!http_token(key))
                return invalid(field, err, item, "not a header name");
            if (reserved_header(key))
                return invalid(field, err, item, "set by hksd, not by a CronJob");
            const char *s = json_string_value(value);
            bool ok = s && json_string_length(value) == strlen(s) && strlen(s) <= MAX_HEADER_VALUE;
            for (const char *c = s; ok && *c; c++)
                ok = (unsigned char)*c >= 0x20 || *c == '\t';
            if (!ok)
                return invalid(field, err, item,
                               "must be a string of at most %d bytes without control characters",
                               MAX_HEADER_VALUE);
        }
    }

    json_t *body = json_object_get(t, "body");
    if (!body)
        json_object_set_new(t, "body", json_string(""));
    else if (!json_is_string(body) || json_string_length(body) > CJ_BODY_MAX)
        return invalid(field, err, "target.function.body", "must be a string of at most %u bytes",
                       CJ_BODY_MAX);
    return 0;
}

/* target.task: a command over a function's code; defaults filled into t. */
static int check_task_target(json_t *t, unsigned timeout_max_s, char field[64], hks_error *err)
{
    static const char *const known[] = {"template", "command", "args", "env", "timeout_seconds"};
    if (!json_is_object(t))
        return invalid(field, err, "target.task", "must be an object");
    if (refuse_unknown(t, known, HKS_ARRAY_LEN(known), "target.task.", field, err) < 0)
        return -1;
    if (!hksd_function_id_valid(json_string_value(json_object_get(t, "template"))))
        return invalid(field, err, "target.task.template",
                       "must be the id of a deployed function (fn-...) whose code, runtime, env "
                       "and limits the task uses");
    if (!json_object_get(t, "command"))
        return invalid(field, err, "target.task.command",
                       "is required: the program to run and its first arguments");
    if (check_strings(json_object_get(t, "command"), 1, "target.task.command", field, err) < 0)
        return -1;
    if (!json_object_get(t, "args"))
        json_object_set_new(t, "args", json_array());
    else if (check_strings(json_object_get(t, "args"), 0, "target.task.args", field, err) < 0)
        return -1;
    if (json_array_size(json_object_get(t, "command")) +
            json_array_size(json_object_get(t, "args")) >
        MAX_ARGS)
        return invalid(field, err, "target.task.args", "command and args hold more than %d strings",
                       MAX_ARGS);
    if (!json_object_get(t, "env"))
        json_object_set_new(t, "env", json_object());
    else if (check_env(json_object_get(t, "env"), "target.task.env", field, err) < 0)
        return -1;
    long long timeout = CJ_TASK_TIMEOUT_DEF < timeout_max_s ? CJ_TASK_TIMEOUT_DEF : timeout_max_s;
    json_t *given = json_object_get(t, "timeout_seconds");
    if (given &&
        check_int(given, 1, timeout_max_s, "target.task.timeout_seconds", field, err, &timeout) < 0)
        return -1;
    json_object_set_new(t, "timeout_seconds", json_integer(timeout));
    return 0;
}

static int check_target(json_t *target, unsigned timeout_max_s, cj_spec *out, char field[64],
                        hks_error *err)
{
    if (!json_is_object(target) || json_object_size(target) != 1 ||
        (!json_object_get(target, "function") && !json_object_get(target, "task")))
        return invalid(field, err, "target",
                       "must be {\"function\": {...}} (a scheduled invocation) or "
                       "{\"task\": {...}} (a command over a function's code)");
    json_t *fn = json_object_get(target, "function");
    if (fn) {
        if (check_function_target(fn, field, err) < 0)
            return -1;
        out->target_function = json_string_value(json_object_get(fn, "id"));
        return 0;
    }
    json_t *task = json_object_get(target, "task");
    if (check_task_target(task, timeout_max_s, field, err) < 0)
        return -1;
    out->is_task = true;
    out->target_function = json_string_value(json_object_get(task, "template"));
    return 0;
}

static int check_definition(json_t *d, unsigned timeout_max_s, cj_spec *out, char field[64],
                            hks_error *err)
{
    static const char *const known[] = {"name",
                                        "schedule",
                                        "timezone",
                                        "concurrency_policy",
                                        "suspend",
                                        "starting_deadline_seconds",
                                        "successful_jobs_history_limit",
                                        "failed_jobs_history_limit",
                                        "target"};
    if (refuse_unknown(d, known, HKS_ARRAY_LEN(known), "", field, err) < 0)
        return -1;

    const char *name = json_string_value(json_object_get(d, "name"));
    if (!name)
        return invalid(field, err, "name", "is required");
    if (!dns_label(name, CJ_NAME_MAX))
        return invalid(field, err, "name",
                       "must be 1 to %d characters of a-z, 0-9 and '-', starting with a letter "
                       "and not ending with '-'",
                       CJ_NAME_MAX);

    json_t *schedule = json_object_get(d, "schedule");
    if (!schedule)
        return invalid(field, err, "schedule", "is required (\"*/5 * * * *\", \"@daily\", ...)");
    if (!json_is_string(schedule) ||
        json_string_length(schedule) != strlen(json_string_value(schedule)))
        return invalid(field, err, "schedule", "must be a string");
    hks_error why = {0};
    if (hksd_cron_parse(json_string_value(schedule), &out->schedule, &why) < 0) {
        /* the parser's messages about the whole schedule already start with "schedule: " */
        const char *text = strncmp(why.msg, "schedule: ", 10) == 0 ? why.msg + 10 : why.msg;
        return invalid(field, err, "schedule", "%s", text);
    }
    json_object_set_new(d, "schedule", json_string(out->schedule.text));

    json_t *tz = json_object_get(d, "timezone");
    if (!tz) {
        json_object_set_new(d, "timezone", json_string("UTC"));
    } else {
        why = (hks_error){0};
        if (!json_is_string(tz) || !hksd_cron_timezone_valid(json_string_value(tz), &why))
            return invalid(field, err, "timezone", "%s",
                           why.msg[0] ? why.msg : "must be an IANA time zone name");
    }

    json_t *policy = json_object_get(d, "concurrency_policy");
    const char *p = policy ? json_string_value(policy) : "Allow";
    if (p && strcmp(p, "Allow") == 0)
        out->policy = CJ_ALLOW;
    else if (p && strcmp(p, "Forbid") == 0)
        out->policy = CJ_FORBID;
    else if (p && strcmp(p, "Replace") == 0)
        out->policy = CJ_REPLACE;
    else
        return invalid(field, err, "concurrency_policy", "must be Allow, Forbid or Replace");
    json_object_set_new(d, "concurrency_policy", json_string(p));

    json_t *suspend = json_object_get(d, "suspend");
    if (suspend && !json_is_boolean(suspend))
        return invalid(field, err, "suspend", "must be true or false");
    out->suspend = json_is_true(suspend);
    json_object_set_new(d, "suspend", json_boolean(out->suspend));

    json_t *deadline = json_object_get(d, "starting_deadline_seconds");
    out->deadline_s = -1;
    if (deadline && !json_is_null(deadline) &&
        check_int(deadline, 0, MAX_DEADLINE_S, "starting_deadline_seconds", field, err,
                  &out->deadline_s) < 0)
        return -1;
    json_object_set_new(d, "starting_deadline_seconds",
                        out->deadline_s < 0 ? json_null() : json_integer(out->deadline_s));

    long long keep = DEFAULT_SUCCEEDED;
    json_t *v = json_object_get(d, "successful_jobs_history_limit");
    if (v &&
        check_int(v, 0, CJ_HISTORY_MAX, "successful_jobs_history_limit", field, err, &keep) < 0)
        return -1;
    out->keep_succeeded = (unsigned)keep;
    json_object_set_new(d, "successful_jobs_history_limit", json_integer(keep));
    keep = DEFAULT_FAILED;
    v = json_object_get(d, "failed_jobs_history_limit");
    if (v && check_int(v, 0, CJ_HISTORY_MAX, "failed_jobs_history_limit", field, err, &keep) < 0)
        return -1;
    out->keep_failed = (unsigned)keep;
    json_object_set_new(d, "failed_jobs_history_limit", json_integer(keep));

    json_t *target = json_object_get(d, "target");
    if (!target)
        return invalid(field, err, "target", "is required");
    return check_target(target, timeout_max_s, out, field, err);
}

int cj_spec_parse(json_t *in, json_t *base, unsigned timeout_max_s, cj_spec *out, char field[64],
                  hks_error *err)
{
    field[0] = '\0';
    if (!json_is_object(in))
        return invalid(field, err, "body", "must be a JSON object");
    json_t *d = base ? json_deep_copy(base) : json_deep_copy(in);
    if (!d)
        return hks_fail(err, ENOMEM, "CronJob definition");
    if (base) {
        const char *key;
        json_t *value;
        json_object_foreach(in, key, value)
        {
            if (strcmp(key, "name") == 0 && !json_equal(value, json_object_get(base, "name"))) {
                json_decref(d);
                return invalid(field, err, "name", "cannot be changed (delete and create again)");
            }
            json_object_set_new(d, key, json_deep_copy(value));
        }
    }
    cj_spec spec = {.json = d};
    if (check_definition(d, timeout_max_s, &spec, field, err) < 0) {
        json_decref(d);
        return -1;
    }
    *out = spec;
    return 0;
}

void cj_spec_release(cj_spec *spec)
{
    json_decref(spec->json);
    spec->json = NULL;
    spec->target_function = NULL;
}
