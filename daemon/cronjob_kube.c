/* CronJobs on the kubernetes backend: each is a batch/v1 CronJob in the project's namespace that
 * the cluster's CronJob controller runs (cluster/cronjob.c renders and applies it). Nothing is kept
 * on this host: the definition is read back from the object's annotation hks.io/definition, so
 * every hksd pointed at the cluster shows, changes and triggers the same CronJobs.
 *
 * The view differs from the local backend's where the controller keeps no such figure: next_run_at
 * is computed here from the schedule (Kubernetes' DST rules), last_run_at is the controller's
 * lastScheduleTime, last_result is "succeeded" when lastSuccessfulTime is not older than it (null
 * otherwise: running or failed, runs tells), and missed_runs, skipped_runs and runs_kept are null.
 */
#include "iso_time.h"
#include "cronjobs.h"

#include "kube_backend.h"

#include <string.h>
#include <time.h>

static const char *annotation(const json_t *obj, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "metadata"), "annotations"), key));
}

static const char *status_text(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "status"), key));
}

static json_t *text_or_null(const char *text)
{
    return text ? json_string(text) : json_null();
}

/* The definition of a CronJob object of project (a new reference); NULL when the object is not
 * hksd's or not project's. */
static json_t *definition_of(const json_t *obj, const char *project)
{
    const char *owner_project = annotation(obj, "hks.io/project");
    const char *text = annotation(obj, "hks.io/definition");
    if (!owner_project || !text || strcmp(owner_project, project) != 0)
        return NULL;
    json_t *def = json_loads(text, 0, NULL);
    if (!json_is_object(def)) {
        json_decref(def);
        return NULL;
    }
    return def;
}

static json_t *view_of(cj_manager *m, const json_t *obj, const char *project)
{
    json_t *v = definition_of(obj, project);
    if (!v)
        return NULL;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *created = json_string_value(json_object_get(meta, "creationTimestamp"));
    const char *updated = annotation(obj, "hks.io/updated-at");
    const char *last_schedule = status_text(obj, "lastScheduleTime");
    const char *last_success = status_text(obj, "lastSuccessfulTime");
    bool succeeded = last_success && (!last_schedule || hksd_iso8601_parse(last_success) >=
                                                            hksd_iso8601_parse(last_schedule));
    json_t *next = json_null();
    hksd_cron schedule;
    hks_error err = {0};
    const char *tz = json_string_value(json_object_get(v, "timezone"));
    if (!json_is_true(json_object_get(v, "suspend")) &&
        hksd_cron_parse(json_string_value(json_object_get(v, "schedule")), &schedule, &err) == 0) {
        int64_t at = hksd_cron_next_kubernetes(&schedule, tz, cj_now(m), &err);
        char text[32];
        if (at >= 0) {
            hksd_iso8601(at, text);
            json_decref(next);
            next = json_string(text);
        }
    }
    json_t *active = json_array();
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "active"), i, ref)
    {
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (name)
            json_array_append_new(active, json_string(name));
    }
    json_object_update(
        v, json_pack("{s:o,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:n,s:n,s:n}", "id",
                     text_or_null(json_string_value(json_object_get(meta, "name"))), "project",
                     project, "owner", text_or_null(annotation(obj, "hks.io/owner")), "backend",
                     "kubernetes", "created_at", text_or_null(created), "updated_at",
                     text_or_null(updated ? updated : created), "next_run_at", next,
                     "last_schedule_at", text_or_null(last_schedule), "last_run_at",
                     text_or_null(last_schedule), "last_successful_at", text_or_null(last_success),
                     "last_result", succeeded ? json_string("succeeded") : json_null(),
                     "active_runs", active, "missed_runs", "skipped_runs", "runs_kept"));
    return v;
}

static int failure_of(const hks_error *err)
{
    switch (err->errnum) {
    case ENOENT:
        return HKSD_FAIL_NOT_FOUND;
    case EINVAL:
        return HKSD_FAIL_INVALID;
    case EBUSY:
        return HKSD_FAIL_CONFLICT;
    case EAGAIN:
        return HKSD_FAIL_BUSY;
    default:
        return HKSD_FAIL_UNAVAILABLE; /* the cluster did not answer as it should */
    }
}

static void audit(cj_manager *m, const hksd_caller *caller, const char *action, const char *id,
                  const char *name, const char *result)
{
    json_t *record = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "request_id",
                               caller->request_id ? caller->request_id : "", "sub",
                               caller->sub ? caller->sub : "hksd", "project", caller->project,
                               "action", action, "cronjob_id", id, "cronjob_name", name, "backend",
                               "kubernetes", "result", result);
    hks_error err = {0};
    if (record && hksd_audit(m->d, record, &err) < 0)
        kb_log("error", "audit a CronJob", id, err.msg);
    json_decref(record);
}

/* hksd's CronJobs of project in ns (a new array; NULL with err). */
static json_t *list_objects(cj_manager *m, const char *ns, hks_error *err)
{
    json_t *items = NULL;
    if (kube_list(m->kube->client, KUBE_CRON_JOB, ns, KUBE_SELECTOR_MANAGED, NULL, &items, NULL, 0,
                  err) < 0)
        return NULL;
    return items;
}

/* The CronJob object ref (an id or a name) names in project (a new reference), or NULL with err
 * (ENOENT: none). */
static json_t *find_object(cj_manager *m, const char *project, const char *ns, const char *ref,
                           hks_error *err)
{
    json_t *found = NULL;
    if (strncmp(ref, "cj-", 3) == 0 && strlen(ref) == CJ_ID_LEN) {
        if (kube_get(m->kube->client, KUBE_CRON_JOB, ns, ref, &found, err) < 0)
            return NULL;
    } else {
        json_t *items = list_objects(m, ns, err);
        if (!items)
            return NULL;
        size_t i;
        json_t *obj;
        json_array_foreach(items, i, obj)
        {
            if (!found && json_string_value(json_object_get(obj, "kind")) &&
                annotation(obj, "hks.io/name") && strcmp(annotation(obj, "hks.io/name"), ref) == 0)
                found = json_incref(obj);
        }
        json_decref(items);
    }
    json_t *def = found ? definition_of(found, project) : NULL;
    if (!def) {
        json_decref(found);
        hks_fail(err, ENOENT, "no such CronJob");
        return NULL;
    }
    json_decref(def);
    return found;
}

static int target_exists(cj_manager *m, const char *project, const cj_spec *spec, char field[64],
                         hks_error *err)
{
    json_t *fn = kb_get(m->kube, project, spec->target_function);
    if (fn) {
        json_decref(fn);
        return 0;
    }
    snprintf(field, 64, "%s", spec->is_task ? "target.task.template" : "target.function.id");
    return hks_fail(err, 0, "%s: no function %s in this project on the cluster", field,
                    spec->target_function);
}

/* Apply the CronJob id of spec and read it back as a view. */
static int apply(cj_manager *m, const hksd_caller *caller, const char *ns, const char *id,
                 const char *owner, const cj_spec *spec, json_t **out, char field[64],
                 hks_error *err)
{
    char now[32];
    hksd_iso8601(cj_now(m), now);
    kube_cronjob cj = {.id = id,
                       .project = ns,
                       .owner = owner,
                       .definition = spec->json,
                       .project_name = caller->project,
                       .updated_at = now};
    if (kube_cronjob_apply(m->kube->client, m->kube->policy, &cj, err) < 0) {
        int failure = failure_of(err);
        if (failure == HKSD_FAIL_NOT_FOUND) /* the target went in between */
            failure = HKSD_FAIL_INVALID;
        if (failure == HKSD_FAIL_INVALID && !field[0])
            snprintf(field, 64, "%s", spec->is_task ? "target.task" : "target.function");
        return failure;
    }
    json_t *obj = NULL;
    if (kube_get(m->kube->client, KUBE_CRON_JOB, ns, id, &obj, err) < 0)
        return failure_of(err);
    *out = view_of(m, obj, caller->project);
    json_decref(obj);
    if (!*out)
        return hks_fail(err, EIO, "CronJob %s: the stored object has no definition", id),
               HKSD_FAIL_INTERNAL;
    return 0;
}

int cjk_create(cj_manager *m, const hksd_caller *caller, json_t *body, json_t **out, char field[64],
               hks_error *err)
{
    char ns[64], id[CJ_ID_LEN + 1];
    if (kb_namespace(m->kube, caller->project, ns, err) < 0)
        return HKSD_FAIL_INVALID;
    cj_spec spec;
    if (cj_spec_parse(body, NULL, cj_timeout_max_s(m->d), &spec, field, err) < 0)
        return HKSD_FAIL_INVALID;
    const char *name = json_string_value(json_object_get(spec.json, "name"));
    int failure = 0;
    json_t *same = NULL;
    if (target_exists(m, caller->project, &spec, field, err) < 0) {
        failure = HKSD_FAIL_INVALID;
    } else if ((same = find_object(m, caller->project, ns, name, err))) {
        snprintf(field, 64, "name");
        hks_fail(err, 0, "a CronJob named %s already exists in this project", name);
        failure = HKSD_FAIL_CONFLICT;
    } else if (err->errnum != ENOENT) {
        failure = failure_of(err);
    } else if (cj_new_id(id, err) < 0) {
        failure = HKSD_FAIL_INTERNAL;
    } else {
        memset(err, 0, sizeof(*err));
        failure = apply(m, caller, ns, id, caller->sub ? caller->sub : "", &spec, out, field, err);
        audit(m, caller, "cronjob.create", id, name, failure ? "failed" : "ok");
    }
    json_decref(same);
    cj_spec_release(&spec);
    return failure;
}

int cjk_update(cj_manager *m, const hksd_caller *caller, const char *ref, json_t *changes,
               json_t **out, char field[64], hks_error *err)
{
    char ns[64];
    if (kb_namespace(m->kube, caller->project, ns, err) < 0)
        return HKSD_FAIL_INVALID;
    json_t *obj = find_object(m, caller->project, ns, ref, err);
    if (!obj)
        return failure_of(err);
    json_t *base = definition_of(obj, caller->project);
    char id[CJ_ID_LEN + 1], owner[128];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
    snprintf(owner, sizeof(owner), "%s",
             annotation(obj, "hks.io/owner") ? annotation(obj, "hks.io/owner") : "");
    json_decref(obj);
    cj_spec spec;
    int rc = cj_spec_parse(changes, base, cj_timeout_max_s(m->d), &spec, field, err);
    json_decref(base);
    if (rc < 0)
        return HKSD_FAIL_INVALID;
    int failure = target_exists(m, caller->project, &spec, field, err) < 0
                      ? HKSD_FAIL_INVALID
                      : apply(m, caller, ns, id, owner, &spec, out, field, err);
    const json_t *suspend = json_object_get(changes, "suspend");
    const char *action = suspend && json_object_size(changes) == 1
                             ? (json_is_true(suspend) ? "cronjob.suspend" : "cronjob.resume")
                             : "cronjob.update";
    if (failure != HKSD_FAIL_INVALID)
        audit(m, caller, action, id, json_string_value(json_object_get(spec.json, "name")),
              failure ? "failed" : "ok");
    cj_spec_release(&spec);
    return failure;
}

int cjk_delete(cj_manager *m, const hksd_caller *caller, const char *ref, hks_error *err)
{
    char ns[64];
    if (kb_namespace(m->kube, caller->project, ns, err) < 0)
        return HKSD_FAIL_NOT_FOUND;
    json_t *obj = find_object(m, caller->project, ns, ref, err);
    if (!obj)
        return failure_of(err);
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
    snprintf(name, sizeof(name), "%s",
             annotation(obj, "hks.io/name") ? annotation(obj, "hks.io/name") : "");
    json_decref(obj);
    int failure = kube_cronjob_delete(m->kube->client, ns, id, NULL, err) < 0 ? failure_of(err) : 0;
    audit(m, caller, "cronjob.delete", id, name, failure ? "failed" : "ok");
    return failure;
}

json_t *cjk_get(cj_manager *m, const char *project, const char *ref)
{
    char ns[64];
    hks_error err = {0};
    if (kb_namespace(m->kube, project, ns, &err) < 0)
        return NULL;
    json_t *obj = find_object(m, project, ns, ref, &err);
    if (!obj && err.errnum != ENOENT)
        kb_log("error", "get a CronJob from the cluster", ref, err.msg);
    json_t *v = obj ? view_of(m, obj, project) : NULL;
    json_decref(obj);
    return v;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

json_t *cjk_list(cj_manager *m, const char *project)
{
    char ns[64];
    hks_error err = {0};
    json_t *items =
        kb_namespace(m->kube, project, ns, &err) == 0 ? list_objects(m, ns, &err) : NULL;
    if (!items && err.msg[0])
        kb_log("error", "list CronJobs on the cluster", "", err.msg);
    size_t n = json_array_size(items), k = 0;
    json_t **views = calloc(n + 1, sizeof(json_t *));
    size_t i;
    json_t *obj;
    json_array_foreach(items, i, obj)
    {
        json_t *v = views ? view_of(m, obj, project) : NULL;
        if (v && json_is_string(json_object_get(v, "name")))
            views[k++] = v;
        else
            json_decref(v);
    }
    json_decref(items);
    if (k)
        qsort(views, k, sizeof(json_t *), by_name);
    json_t *list = json_array();
    for (i = 0; i < k; i++)
        json_array_append_new(list, views[i]);
    free(views);
    return json_pack("{s:o}", "cronjobs", list);
}

json_t *cjk_runs(cj_manager *m, const char *project, const char *ref, size_t log_bytes)
{
    char ns[64];
    hks_error err = {0};
    if (kb_namespace(m->kube, project, ns, &err) < 0)
        return NULL;
    json_t *obj = find_object(m, project, ns, ref, &err);
    if (!obj)
        return NULL;
    char id[CJ_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
    json_decref(obj);
    json_t *runs = kube_cronjob_runs(m->kube->client, ns, id, log_bytes, &err);
    if (!runs) {
        kb_log("error", "read a CronJob's runs from the cluster", id, err.msg);
        return NULL;
    }
    return json_pack("{s:s,s:o}", "cronjob_id", id, "runs", runs);
}

int cjk_trigger(cj_manager *m, const hksd_caller *caller, const char *ref, json_t **run,
                hks_error *err)
{
    char ns[64];
    if (kb_namespace(m->kube, caller->project, ns, err) < 0)
        return HKSD_FAIL_NOT_FOUND;
    json_t *obj = find_object(m, caller->project, ns, ref, err);
    if (!obj)
        return failure_of(err);
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
    snprintf(name, sizeof(name), "%s",
             annotation(obj, "hks.io/name") ? annotation(obj, "hks.io/name") : "");
    json_decref(obj);
    *run = kube_cronjob_trigger(m->kube->client, ns, id, err);
    int failure = *run ? 0 : failure_of(err);
    audit(m, caller, "cronjob.trigger", id, name,
          !failure                        ? "ok"
          : failure == HKSD_FAIL_CONFLICT ? "forbidden"
                                          : "refused");
    return failure;
}
