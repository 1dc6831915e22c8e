/* The runs of a CronJob on the kubernetes backend: its Jobs. A manual run is a Job made from the
 * CronJob's jobTemplate as `kubectl create job --from=cronjob/...` makes it (the annotation
 * cronjob.kubernetes.io/instantiate: manual, the CronJob as controlling owner), so the controller
 * counts it in the history limits. A run's record has the local backend's shape (see
 * daemon/cronjob_runs.c), read from the Job's status and its Pod: the container's exit code, the
 * "HTTP <status>" a function target's curl leaves as termination message, and the Pod's log. */
#include "kube_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RUN_LOG_MAX (256u << 10) /* as the local backend keeps of a run */

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *time_or_null(long long t)
{
    char text[32];
    return t > 0 && kube_time_format(t, text) == 0 ? json_string(text) : json_null();
}

/* The condition of type in a status's conditions with status "True", or NULL. */
static const json_t *true_condition(const json_t *status, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *t = string_at(c, "type"), *s = string_at(c, "status");
        if (t && s && strcmp(t, type) == 0 && strcmp(s, "True") == 0)
            return c;
    }
    return NULL;
}

/* The terminated state of pod's first container, or NULL. */
static const json_t *terminated_state(const json_t *pod)
{
    const json_t *list = json_object_get(json_object_get(pod, "status"), "containerStatuses");
    const json_t *state = json_object_get(json_array_get(list, 0), "state");
    const json_t *t = json_object_get(state, "terminated");
    return json_is_object(t) ? t : NULL;
}

/* "HTTP 204" -> 204; 0 for anything else. */
static int http_status_of(const char *message)
{
    if (!message || strncmp(message, "HTTP ", 5) != 0)
        return 0;
    char *end = NULL;
    long code = strtol(message + 5, &end, 10);
    return end != message + 5 && (*end == '\0' || *end == '\n') && code >= 100 && code <= 999
               ? (int)code
               : 0;
}

json_t *kube_job_run_record(const json_t *job, const json_t *pod, const char *cronjob_id,
                            bool function_target)
{
    const json_t *meta = json_object_get(job, "metadata");
    const json_t *status = json_object_get(job, "status");
    const char *name = string_at(meta, "name");
    if (!name || !kube_dns_label(name) || !cronjob_id)
        return NULL;
    const char *instantiate =
        string_at(json_object_get(meta, "annotations"), "cronjob.kubernetes.io/instantiate");
    long long created = kube_time_parse(string_at(meta, "creationTimestamp"));
    long long scheduled = kube_time_parse(string_at(
        json_object_get(meta, "annotations"), "batch.kubernetes.io/cronjob-scheduled-timestamp"));
    long long started = kube_time_parse(string_at(status, "startTime"));
    const json_t *complete = true_condition(status, "Complete");
    const json_t *failed = true_condition(status, "Failed");
    bool manual = instantiate && strcmp(instantiate, "manual") == 0;
    json_t *rec = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:o}", "id", name, "number",
                            (json_int_t)(created > 0 ? created : 0), "cronjob_id", cronjob_id,
                            "trigger", manual ? "manual" : "schedule", "status",
                            complete ? "succeeded"
                            : failed ? "failed"
                                     : "running",
                            "scheduled_at", time_or_null(scheduled > 0 ? scheduled : created),
                            "started_at", time_or_null(started > 0 ? started : created));
    if (!rec || (!complete && !failed))
        return rec;

    const json_t *terminated = terminated_state(pod);
    const json_t *code = json_object_get(terminated, "exitCode");
    int exit_code = json_is_integer(code) ? (int)json_integer_value(code) : -1;
    int http = function_target ? http_status_of(string_at(terminated, "message")) : 0;
    const char *why = string_at(failed, "reason");
    long long finished = kube_time_parse(complete ? string_at(status, "completionTime")
                                                  : string_at(failed, "lastTransitionTime"));
    const json_t *deadline = json_object_get(json_object_get(job, "spec"), "activeDeadlineSeconds");
    const char *pod_reason = string_at(terminated, "reason");
    char reason[512];
    if (function_target && http)
        snprintf(reason, sizeof(reason), "HTTP %d", http);
    else if (complete || (exit_code > 0 && !(why && strcmp(why, "DeadlineExceeded") == 0)))
        snprintf(reason, sizeof(reason), "%s%d",
                 pod_reason && strcmp(pod_reason, "OOMKilled") == 0
                     ? "killed: out of memory, exit code "
                 : function_target ? "the request failed: curl exit code "
                                   : "exit code ",
                 exit_code < 0 ? 0 : exit_code);
    else if (why && strcmp(why, "DeadlineExceeded") == 0 && json_is_integer(deadline))
        snprintf(reason, sizeof(reason), "timed out after %lld s",
                 (long long)json_integer_value(deadline));
    else {
        const char *message = string_at(failed, "message");
        snprintf(reason, sizeof(reason), "%.64s: %.400s", why ? why : "Failed",
                 message ? message : "the Job failed");
    }
    kube_copy_printable(reason, sizeof(reason), reason, strlen(reason));
    long long begun = started > 0 ? started : created;
    json_object_set_new(rec, "reason", json_string(reason));
    json_object_set_new(rec, "finished_at", time_or_null(finished));
    json_object_set_new(rec, "duration_ms",
                        finished >= begun && begun > 0 ? json_integer((finished - begun) * 1000)
                                                       : json_null());
    json_object_set_new(rec, "exit_code", exit_code >= 0 ? json_integer(exit_code) : json_null());
    json_object_set_new(rec, "signal", json_null());
    json_object_set_new(rec, "http_status", http ? json_integer(http) : json_null());
    /* the kubelet keeps no peak memory or CPU time of a finished container */
    json_object_set_new(rec, "peak_memory_bytes", json_null());
    json_object_set_new(rec, "cpu_ms", json_null());
    return rec;
}

/* ---- reading ---- */

typedef struct cronjob_ref {
    char uid[128];
    bool function_target;
    const char *policy; /* concurrencyPolicy */
    json_t *obj;
} cronjob_ref;

static int get_cronjob(kube_client *c, const char *ns, const char *id, cronjob_ref *ref,
                       hks_error *err)
{
    memset(ref, 0, sizeof(*ref));
    if (kube_get(c, KUBE_CRON_JOB, ns, id, &ref->obj, err) < 0)
        return -1;
    const json_t *meta = json_object_get(ref->obj, "metadata");
    const char *uid = string_at(meta, "uid");
    const char *kind = string_at(json_object_get(meta, "annotations"), "hks.io/target-kind");
    if (!uid || strlen(uid) >= sizeof(ref->uid) ||
        !json_is_object(json_object_get(json_object_get(ref->obj, "spec"), "jobTemplate"))) {
        json_decref(ref->obj);
        ref->obj = NULL;
        return kube_fail(err, EIO, "CronJob %s in namespace %s: no uid or jobTemplate", id, ns);
    }
    snprintf(ref->uid, sizeof(ref->uid), "%s", uid);
    ref->function_target = kind && strcmp(kind, "function") == 0;
    ref->policy = string_at(json_object_get(ref->obj, "spec"), "concurrencyPolicy");
    return 0;
}

static bool owned_by(const json_t *obj, const char *uid)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, r)
    {
        const char *u = string_at(r, "uid");
        if (u && strcmp(u, uid) == 0)
            return true;
    }
    return false;
}

static int newest_first(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    const json_t *mx = json_object_get(x, "metadata"), *my = json_object_get(y, "metadata");
    long long tx = kube_time_parse(string_at(mx, "creationTimestamp"));
    long long ty = kube_time_parse(string_at(my, "creationTimestamp"));
    if (tx != ty)
        return tx > ty ? -1 : 1;
    const char *nx = string_at(mx, "name"), *ny = string_at(my, "name");
    return -strcmp(nx ? nx : "", ny ? ny : "");
}

/* The CronJob's Jobs (new references), newest first, in *jobs (malloc'd) and *n. */
static int list_jobs(kube_client *c, const char *ns, const char *id, const char *uid,
                     json_t ***jobs, size_t *n, hks_error *err)
{
    char selector[128];
    snprintf(selector, sizeof(selector), "%s=%s", KUBE_LABEL_CRONJOB, id);
    json_t *items = NULL;
    if (kube_list(c, KUBE_JOB, ns, selector, NULL, &items, NULL, 0, err) < 0)
        return -1;
    *jobs = calloc(json_array_size(items) + 1, sizeof(json_t *));
    *n = 0;
    if (!*jobs) {
        json_decref(items);
        return hks_fail(err, ENOMEM, "list the Jobs of CronJob %s", id);
    }
    size_t i;
    json_t *job;
    json_array_foreach(items, i, job)
    {
        if (owned_by(job, uid))
            (*jobs)[(*n)++] = json_incref(job);
    }
    json_decref(items);
    qsort(*jobs, *n, sizeof(json_t *), newest_first);
    return 0;
}

static void free_jobs(json_t **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(jobs[i]);
    free(jobs);
}

/* The newest Pod of a Job (a new reference), or NULL. */
static json_t *job_pod(kube_client *c, const char *ns, const char *job)
{
    char selector[128];
    snprintf(selector, sizeof(selector), "job-name=%s", job);
    json_t *items = NULL;
    hks_error ignored = {0};
    if (kube_list(c, KUBE_POD, ns, selector, NULL, &items, NULL, 0, &ignored) < 0)
        return NULL;
    size_t n = json_array_size(items);
    json_t **pods = calloc(n + 1, sizeof(json_t *));
    json_t *newest = NULL;
    if (pods && n) {
        for (size_t i = 0; i < n; i++)
            pods[i] = json_array_get(items, i);
        qsort(pods, n, sizeof(json_t *), newest_first);
        newest = json_incref(pods[0]);
    }
    free(pods);
    json_decref(items);
    return newest;
}

/* logs, log_bytes, log_truncated and logs_cut of a run, from its Pod's log: the last log_bytes
 * of at most RUN_LOG_MAX, valid UTF-8. */
static void attach_log(kube_client *c, const char *ns, const json_t *pod, json_t *rec,
                       size_t log_bytes)
{
    const char *name = string_at(json_object_get(pod, "metadata"), "name");
    char *text = NULL;
    size_t len = 0;
    hks_error ignored = {0};
    if (name && kube_pod_logs(c, ns, name, NULL, 0, RUN_LOG_MAX, &text, &len, &ignored) < 0)
        len = 0;
    size_t want = len < log_bytes ? len : log_bytes;
    size_t out_len = 0;
    char *utf8 = hks_utf8_copy(text ? text + (len - want) : "", want, &out_len);
    json_object_set_new(rec, "logs", json_stringn(utf8 ? utf8 : "", utf8 ? out_len : 0));
    json_object_set_new(rec, "logs_cut", json_boolean(want < len));
    if (json_object_get(rec, "finished_at")) {
        json_object_set_new(rec, "log_bytes", json_integer((json_int_t)len));
        json_object_set_new(rec, "log_truncated", json_boolean(len >= RUN_LOG_MAX));
    }
    free(utf8);
    free(text);
}

json_t *kube_cronjob_runs(kube_client *c, const char *ns, const char *id, size_t log_bytes,
                          hks_error *err)
{
    cronjob_ref ref;
    if (get_cronjob(c, ns, id, &ref, err) < 0) {
        hks_wrap(err, "runs of CronJob %s", id);
        return NULL;
    }
    json_t **jobs = NULL;
    size_t n = 0;
    json_t *runs = NULL;
    if (list_jobs(c, ns, id, ref.uid, &jobs, &n, err) == 0 && (runs = json_array())) {
        for (size_t i = 0; i < n; i++) {
            const char *job_name = string_at(json_object_get(jobs[i], "metadata"), "name");
            json_t *pod = job_name ? job_pod(c, ns, job_name) : NULL;
            json_t *rec = kube_job_run_record(jobs[i], pod, id, ref.function_target);
            if (rec && pod)
                attach_log(c, ns, pod, rec, log_bytes);
            else if (rec)
                json_object_set_new(rec, "logs", json_string(""));
            if (rec)
                json_array_append_new(runs, rec);
            json_decref(pod);
        }
    } else if (!runs && err->msg[0] == '\0') {
        hks_fail(err, ENOMEM, "runs of CronJob %s", id);
    }
    free_jobs(jobs, n);
    json_decref(ref.obj);
    return runs;
}

/* ---- a manual run ---- */

static bool job_finished(const json_t *job)
{
    const json_t *status = json_object_get(job, "status");
    return true_condition(status, "Complete") || true_condition(status, "Failed");
}

/* The concurrency policy, as the local backend applies it to a manual run: Forbid refuses it
 * while a run is going (EBUSY), Replace deletes the runs going first. */
static int apply_policy(kube_client *c, const char *ns, const char *id, const cronjob_ref *ref,
                        hks_error *err)
{
    bool forbid = ref->policy && strcmp(ref->policy, "Forbid") == 0;
    bool replace = ref->policy && strcmp(ref->policy, "Replace") == 0;
    if (!forbid && !replace)
        return 0;
    json_t **jobs = NULL;
    size_t n = 0;
    if (list_jobs(c, ns, id, ref->uid, &jobs, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (job_finished(jobs[i]))
            continue;
        const char *name = string_at(json_object_get(jobs[i], "metadata"), "name");
        if (forbid)
            rc = kube_fail(err, EBUSY,
                           "a run of %s (%s) is still going and its concurrency_policy is Forbid",
                           id, name ? name : "?");
        else if (name && kube_delete(c, KUBE_JOB, ns, name, KUBE_PROPAGATE_BACKGROUND, err) < 0 &&
                 err->errnum != ENOENT)
            rc = -1;
    }
    free_jobs(jobs, n);
    return rc;
}

json_t *kube_render_manual_job(const json_t *cronjob, const char *name, hks_error *err)
{
    const json_t *meta = json_object_get(cronjob, "metadata");
    const json_t *tmpl = json_object_get(json_object_get(cronjob, "spec"), "jobTemplate");
    const char *cj_name = string_at(meta, "name"), *uid = string_at(meta, "uid");
    const char *ns = string_at(meta, "namespace");
    const json_t *spec = json_object_get(tmpl, "spec");
    if (!cj_name || !uid || !ns || !json_is_object(spec)) {
        kube_fail(err, EINVAL, "a manual Job needs a stored CronJob (name, uid, jobTemplate)");
        return NULL;
    }
    const json_t *tmeta = json_object_get(tmpl, "metadata");
    json_t *labels = json_deep_copy(json_object_get(tmeta, "labels"));
    json_t *annotations = json_deep_copy(json_object_get(tmeta, "annotations"));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    if (!json_is_object(annotations)) {
        json_decref(annotations);
        annotations = json_object();
    }
    if (annotations)
        json_object_set_new(annotations, "cronjob.kubernetes.io/instantiate",
                            json_string("manual"));
    json_t *job = labels && annotations
                      ? json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:o, s:[{s:s, s:s, s:s, s:s, "
                                  "s:b}]}, s:O}",
                                  "apiVersion", "batch/v1", "kind", "Job", "metadata", "name", name,
                                  "namespace", ns, "labels", labels, "annotations", annotations,
                                  "ownerReferences", "apiVersion", "batch/v1", "kind", "CronJob",
                                  "name", cj_name, "uid", uid, "controller", 1, "spec", spec)
                      : NULL;
    if (!job) {
        if (!labels || !annotations) {
            json_decref(labels);
            json_decref(annotations);
        }
        hks_fail(err, ENOMEM, "render a manual Job of %s", cj_name);
    }
    return job;
}

json_t *kube_cronjob_trigger(kube_client *c, const char *ns, const char *id, hks_error *err)
{
    cronjob_ref ref;
    if (get_cronjob(c, ns, id, &ref, err) < 0) {
        hks_wrap(err, "trigger CronJob %s", id);
        return NULL;
    }
    json_t *run = NULL;
    if (apply_policy(c, ns, id, &ref, err) == 0) {
        /* "<id>-m<10 hex>", within the 63 characters of the job-name label its Pods get */
        unsigned char raw[5];
        char name[80];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            hks_fail(err, errno, "trigger CronJob %s: getrandom", id);
        } else {
            snprintf(name, sizeof(name), "%.50s-m%02x%02x%02x%02x%02x", id, raw[0], raw[1], raw[2],
                     raw[3], raw[4]);
            json_t *job = kube_render_manual_job(ref.obj, name, err), *created = NULL;
            if (job && kube_create(c, KUBE_JOB, ns, job, &created, err) == 0)
                run = kube_job_run_record(created, NULL, id, ref.function_target);
            if (job && !run && created)
                hks_fail(err, EIO, "trigger CronJob %s: the created Job is unreadable", id);
            json_decref(job);
            json_decref(created);
        }
    }
    if (!run)
        hks_wrap(err, "trigger CronJob %s", id);
    json_decref(ref.obj);
    return run;
}
