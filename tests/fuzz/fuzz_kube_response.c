/* libFuzzer target: what cluster/ parses from outside. The first byte picks the parser (a
 * kubeconfig, a failed reply's Status, an object reply, a list, a watch event line, a Knative
 * Service's readiness, a YAML document, a Kaniko build Pod's outcome, a CronJob run read from a
 * Job and its Pod), the rest is its input. Whatever is accepted must be
 * bounded and safe to put into a URL or an error line. */
#include "cluster/kube_internal.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            __builtin_trap();
}

static void fuzz_kubeconfig(const char *in, size_t len)
{
    kube_conn conn;
    hks_error err = {0};
    if (kube_config_parse_kubeconfig(in, len, "/base", (len & 1) ? "ctx" : NULL, &conn, &err) ==
        0) {
        if (strncmp(conn.server, "http", 4) != 0 || !kube_dns_label(conn.ns))
            __builtin_trap();
        check_clean(conn.server, sizeof(conn.server));
        if (conn.token)
            check_clean(conn.token, 16384);
        if ((conn.cert_pem || conn.cert_file[0]) != (conn.key_pem || conn.key_file[0]))
            __builtin_trap();
        kube_conn_free(&conn);
    } else if (!err.msg[0] || conn.token || conn.ca_pem) {
        __builtin_trap();
    }
}

static void fuzz_status(const char *in, size_t len)
{
    char out[300];
    kube_status_summary(409, in, len, out, sizeof(out));
    check_clean(out, sizeof(out));
    if (kube_status_errno(409, in, len) == 0)
        __builtin_trap();
}

static void fuzz_object(const char *in, size_t len)
{
    hks_error err = {0};
    json_t *obj = kube_parse_object(in, len, (len & 1) ? "Service" : NULL, &err);
    if (obj && !json_is_object(obj))
        __builtin_trap();
    if (!obj && err.errnum == 0)
        __builtin_trap();
    json_decref(obj);
}

static void fuzz_list(const char *in, size_t len)
{
    hks_error err = {0};
    char rv[72];
    json_t *items = kube_parse_list(in, len, rv, sizeof(rv), &err);
    if (items) {
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) if (!json_is_object(item)) __builtin_trap();
        if (strpbrk(rv, "&?#% "))
            __builtin_trap();
    } else if (!err.msg[0]) {
        __builtin_trap();
    }
    json_decref(items);
}

static void fuzz_event(const char *in, size_t len)
{
    hks_error err = {0};
    char type[16], rv[72];
    json_t *obj = NULL;
    if (kube_parse_watch_event(in, len, type, &obj, rv, sizeof(rv), &err) == 0) {
        if (!json_is_object(obj) || !type[0])
            __builtin_trap();
        check_clean(rv, sizeof(rv));
    } else if (obj || !err.msg[0]) {
        __builtin_trap();
    }
    json_decref(obj);
}

static void fuzz_readiness(const char *in, size_t len)
{
    json_t *j = json_loadb(in, len, 0, NULL);
    char url[128], why[128];
    kube_readiness r = kube_kservice_readiness(j, url, sizeof(url), why, sizeof(why));
    if (r == KUBE_READY && strncmp(url, "http", 4) != 0)
        __builtin_trap();
    check_clean(url, sizeof(url));
    check_clean(why, sizeof(why));
    json_decref(j);
}

static void fuzz_yaml(const char *in, size_t len)
{
    hks_error err = {0};
    json_t *j = kube_yaml_parse(in, len, &err);
    if (!j && !err.msg[0])
        __builtin_trap();
    json_decref(j);
}

static void fuzz_build_pod(const char *in, size_t len)
{
    json_t *j = json_loadb(in, len, 0, NULL);
    kube_build_outcome o;
    kube_kaniko_outcome(j, &o);
    check_clean(o.why, sizeof(o.why));
    if (o.state == KUBE_BUILD_SUCCEEDED &&
        (strlen(o.digest) != 71 || strncmp(o.digest, "sha256:", 7) != 0 ||
         strspn(o.digest + 7, "0123456789abcdef") != 64))
        __builtin_trap();
    if (o.state == KUBE_BUILD_FAILED && o.errnum != EIO && o.errnum != ETIMEDOUT)
        __builtin_trap();
    json_decref(j);
}

/* {"job": ..., "pod": ...}: a run record, whose every field must have the type the API says */
static void fuzz_run_record(const char *in, size_t len)
{
    json_t *j = json_loadb(in, len, 0, NULL);
    json_t *rec =
        kube_job_run_record(json_object_get(j, "job"), json_object_get(j, "pod"), "cj-1", len & 1);
    if (rec) {
        const char *strings[] = {"id", "cronjob_id", "trigger", "status"};
        for (size_t i = 0; i < HKS_ARRAY_LEN(strings); i++)
            if (!json_is_string(json_object_get(rec, strings[i])))
                __builtin_trap();
        if (!kube_dns_label(json_string_value(json_object_get(rec, "id"))))
            __builtin_trap();
        const json_t *reason = json_object_get(rec, "reason");
        if (reason)
            check_clean(json_string_value(reason), 1024);
        const json_t *http = json_object_get(rec, "http_status");
        if (http && !json_is_null(http) &&
            (json_integer_value(http) < 100 || json_integer_value(http) > 999))
            __builtin_trap();
    }
    json_decref(rec);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    void (*const parsers[])(const char *, size_t) = {
        fuzz_kubeconfig, fuzz_status, fuzz_object,    fuzz_list,      fuzz_event,
        fuzz_readiness,  fuzz_yaml,   fuzz_build_pod, fuzz_run_record};
    /* a NUL-terminated copy, so that nothing can read past the input by relying on one */
    char *in = malloc(size);
    if (!in)
        return 0;
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    parsers[data[0] % HKS_ARRAY_LEN(parsers)](in, size - 1);
    free(in);
    return 0;
}
