/* A CronJob on the kubernetes backend: the definition the local backend runs (see
 * daemon/cronjob_spec.c) rendered as a batch/v1 CronJob in the project's namespace. A task's Job
 * runs the template function's container as its Knative Service has it (image by digest, env,
 * resources, service account), with the command and args overridden, the policy's restricted
 * securityContext, a size-limited /tmp, and a NetworkPolicy denying all traffic, as the local
 * backend's task sandbox has no network. A function target's Job runs a pinned curl against the
 * function's cluster-local URL. Jobs run once (backoffLimit 0, restartPolicy Never), like a local
 * run; the controller keeps the history limits, ttlSecondsAfterFinished is a backstop. */
#include "kube_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TTL_DEFAULT     (7u * 86400u)
#define CURL_MARGIN_S   5
#define DEADLINE_MARGIN 30
#define TIMEOUT_DEF_S   300

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int append_literal(json_t *list, const char *s)
{
    json_t *j = s ? kube_literal(s) : NULL;
    return j ? json_array_append_new(list, j) : -1;
}

static int append_all(json_t *list, const json_t *strings)
{
    size_t i;
    const json_t *s;
    json_array_foreach(strings, i, s)
    {
        if (append_literal(list, json_string_value(s)) < 0)
            return -1;
    }
    return 0;
}

static json_t *cronjob_labels(const kube_cronjob *cj)
{
    return json_pack("{s:s, s:s, s:s}", KUBE_LABEL_MANAGED_BY, KUBE_MANAGER, KUBE_LABEL_CRONJOB,
                     cj->id, KUBE_LABEL_PROJECT, cj->project);
}

static int invalid(hks_error *err, const kube_cronjob *cj, const char *what)
{
    return kube_fail(err, EINVAL, "CronJob %.40s: invalid %s", cj->id ? cj->id : "?", what);
}

/* The identity and the fields the renderer reads from the definition, type-checked: the daemon
 * hands a checked definition, but nothing here trusts that. */
static int check_cronjob(const kube_cronjob *cj, hks_error *err)
{
    const json_t *d = cj->definition;
    if (!cj->id || !kube_dns_label(cj->id) || strlen(cj->id) > 52)
        return invalid(err, cj, "id (a DNS label of at most 52 characters)");
    if (!kube_dns_label(cj->project))
        return invalid(err, cj, "project (a namespace name)");
    if (!json_is_object(d))
        return invalid(err, cj, "definition (an object)");
    const char *schedule = string_at(d, "schedule"), *tz = string_at(d, "timezone");
    const char *policy = string_at(d, "concurrency_policy");
    if (!string_at(d, "name") || !schedule || !*schedule || strlen(schedule) > 256)
        return invalid(err, cj, "definition: name and schedule");
    if (!tz || !*tz || strlen(tz) > 128 || strcmp(tz, "Local") == 0)
        return invalid(err, cj, "definition: timezone (an IANA name)");
    if (!policy || (strcmp(policy, "Allow") != 0 && strcmp(policy, "Forbid") != 0 &&
                    strcmp(policy, "Replace") != 0))
        return invalid(err, cj, "definition: concurrency_policy");
    if (!json_is_boolean(json_object_get(d, "suspend")))
        return invalid(err, cj, "definition: suspend");
    const json_t *deadline = json_object_get(d, "starting_deadline_seconds");
    if (deadline && !json_is_null(deadline) &&
        (!json_is_integer(deadline) || json_integer_value(deadline) < 0))
        return invalid(err, cj, "definition: starting_deadline_seconds");
    const char *limits[] = {"successful_jobs_history_limit", "failed_jobs_history_limit"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(limits); i++) {
        const json_t *v = json_object_get(d, limits[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)
            return invalid(err, cj, "definition: history limits");
    }
    const json_t *target = json_object_get(d, "target");
    const json_t *task = json_object_get(target, "task");
    const json_t *fn = json_object_get(target, "function");
    if (json_is_object(task) == json_is_object(fn))
        return invalid(err, cj, "definition: target (a function or a task)");
    if (task) {
        const json_t *command = json_object_get(task, "command"),
                     *args = json_object_get(task, "args");
        const json_t *timeout = json_object_get(task, "timeout_seconds");
        bool ok = kube_dns_label(string_at(task, "template")) && json_array_size(command) > 0 &&
                  (!args || json_is_array(args)) &&
                  (!json_object_get(task, "env") || json_is_object(json_object_get(task, "env"))) &&
                  (!timeout || (json_is_integer(timeout) && json_integer_value(timeout) > 0));
        size_t i;
        const json_t *s;
        json_array_foreach(command, i, s) ok = ok && json_is_string(s);
        json_array_foreach(args, i, s) ok = ok && json_is_string(s);
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)json_object_get(task, "env"), key, value) ok =
            ok && json_is_string(value);
        if (!ok)
            return invalid(err, cj, "definition: target.task");
    } else {
        const char *path = string_at(fn, "path");
        bool ok =
            kube_dns_label(string_at(fn, "id")) && string_at(fn, "method") && path &&
            path[0] == '/' &&
            (!json_object_get(fn, "headers") || json_is_object(json_object_get(fn, "headers"))) &&
            (!json_object_get(fn, "body") || json_is_string(json_object_get(fn, "body")));
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)json_object_get(fn, "headers"), key, value) ok =
            ok && json_is_string(value);
        if (!ok)
            return invalid(err, cj, "definition: target.function");
    }
    if (cj->curl_image && (strlen(cj->curl_image) > 512 || !strstr(cj->curl_image, "@sha256:")))
        return invalid(err, cj, "curl_image (an image by digest)");
    return 0;
}

/* The function container of a Knative Service (its only one), or NULL. */
static const json_t *ksvc_container(const json_t *ksvc)
{
    const json_t *spec =
        json_object_get(json_object_get(json_object_get(ksvc, "spec"), "template"), "spec");
    const json_t *containers = json_object_get(spec, "containers");
    return json_array_size(containers) >= 1 ? json_array_get(containers, 0) : NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* env for a task: its own (sorted by name, so the same definition renders the same), then the
 * template's entries it does not override. */
static json_t *task_env(const json_t *task, const json_t *template_env)
{
    const json_t *env = json_object_get(task, "env");
    json_t *list = json_array();
    size_t n = json_object_size(env), k = 0;
    const char **names = calloc(n + 1, sizeof(*names));
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)env, key, value) if (names) names[k++] = key;
    if (!list || !names) {
        free(names);
        json_decref(list);
        return NULL;
    }
    qsort(names, k, sizeof(*names), by_name);
    for (size_t i = 0; i < k; i++) {
        json_t *v = kube_literal(json_string_value(json_object_get(env, names[i])));
        if (!v || json_array_append_new(
                      list, json_pack("{s:s, s:o}", "name", names[i], "value", v)) < 0) {
            free(names);
            json_decref(list);
            return NULL;
        }
    }
    free(names);
    size_t i;
    const json_t *entry;
    json_array_foreach(template_env, i, entry)
    {
        const char *name = string_at(entry, "name");
        if (name && !json_object_get(env, name))
            json_array_append_new(list, json_deep_copy(entry));
    }
    return list;
}

static json_t *tmp_mount(const kube_policy *p)
{
    return json_pack("[{s:s, s:s}]", "name", "tmp", "mountPath", kube_policy_tmp_path(p));
}

/* A task: the template's container with the command overridden. */
static json_t *task_container(const kube_policy *p, const json_t *task, const json_t *tmpl,
                              hks_error *err)
{
    const json_t *container = ksvc_container(tmpl);
    const char *image = string_at(container, "image");
    if (!image || !strstr(image, "@sha256:")) {
        kube_fail(err, EINVAL,
                  "the template function's Knative Service has no container image "
                  "by digest");
        return NULL;
    }
    json_t *command = json_array(), *args = json_array();
    json_t *env = task_env(task, json_object_get(container, "env"));
    const json_t *seccomp =
        json_object_get(json_object_get(container, "securityContext"), "seccompProfile");
    json_t *sc = kube_policy_security_context(p, string_at(seccomp, "localhostProfile"), err);
    json_t *resources = json_deep_copy(json_object_get(container, "resources"));
    json_t *mounts = tmp_mount(p);
    json_t *out = NULL;
    if (command && args && env && sc && mounts &&
        append_all(command, json_object_get(task, "command")) == 0 &&
        append_all(args, json_object_get(task, "args")) == 0) {
        out = json_pack("{s:s, s:s, s:O, s:O, s:s, s:O, s:O, s:O}", "name", "task", "image", image,
                        "command", command, "args", args, "workingDir", "/code", "env", env,
                        "securityContext", sc, "volumeMounts", mounts);
        if (out && json_is_object(resources))
            json_object_set(out, "resources", resources);
    }
    if (!out && sc)
        hks_fail(err, ENOMEM, "render the task's container");
    json_decref(command);
    json_decref(args);
    json_decref(env);
    json_decref(sc);
    json_decref(resources);
    json_decref(mounts);
    return out;
}

/* A function target: curl against the function's URL. The request's pieces are arguments (the
 * body an env variable, $(HKS_BODY)), never a shell line; "HTTP <status>" goes to the
 * termination message, where the runs read it. */
static json_t *invoke_container(const kube_policy *p, const kube_cronjob *cj, const json_t *fn,
                                const json_t *tmpl, unsigned *timeout_s, hks_error *err)
{
    char url[2048], max_time[16];
    if (kube_kservice_readiness(tmpl, url, sizeof(url), NULL, 0) != KUBE_READY) {
        kube_fail(err, EINVAL, "the function %s is not ready: no URL to invoke",
                  string_at(fn, "id"));
        return NULL;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    const char *path = string_at(fn, "path");
    if (n + strlen(path) >= sizeof(url)) {
        kube_fail(err, EINVAL, "target.function.path: too long");
        return NULL;
    }
    snprintf(url + n, sizeof(url) - n, "%s", path);
    const json_t *fn_timeout = json_object_get(
        json_object_get(json_object_get(json_object_get(tmpl, "spec"), "template"), "spec"),
        "timeoutSeconds");
    *timeout_s = (json_is_integer(fn_timeout) && json_integer_value(fn_timeout) > 0 &&
                  json_integer_value(fn_timeout) <= 3600)
                     ? (unsigned)json_integer_value(fn_timeout) + CURL_MARGIN_S
                     : TIMEOUT_DEF_S;
    snprintf(max_time, sizeof(max_time), "%u", *timeout_s);

    const char *method = string_at(fn, "method");
    const json_t *headers = json_object_get(fn, "headers");
    const char *body = string_at(fn, "body");
    json_t *args = json_pack("[s, s, s, s, s]", "--silent", "--show-error", "--fail-with-body",
                             "--max-time", max_time);
    json_t *env = json_array();
    bool ok = args && env;
    if (ok && strcmp(method, "HEAD") == 0)
        ok = json_array_append_new(args, json_string("--head")) == 0;
    else if (ok)
        ok = json_array_append_new(args, json_string("--request")) == 0 &&
             json_array_append_new(args, json_string(method)) == 0;
    bool content_type = false;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)headers, key, value)
    {
        char *line = NULL;
        content_type |= strcasecmp(key, "Content-Type") == 0;
        ok = ok && asprintf(&line, "%s: %s", key, json_string_value(value)) >= 0 &&
             json_array_append_new(args, json_string("--header")) == 0 &&
             append_literal(args, line) == 0;
        free(line);
    }
    if (ok && body && *body) {
        /* curl would call it a form otherwise */
        if (!content_type)
            ok = json_array_append_new(args, json_string("--header")) == 0 &&
                 json_array_append_new(args, json_string("Content-Type:")) == 0;
        ok = ok && json_array_append_new(args, json_string("--data-binary")) == 0 &&
             json_array_append_new(args, json_string("$(HKS_BODY)")) == 0 &&
             json_array_append_new(env,
                                   json_pack("{s:s, s:s}", "name", "HKS_BODY", "value", body)) == 0;
    }
    ok = ok && json_array_append_new(args, json_string("--write-out")) == 0 &&
         json_array_append_new(
             args, json_string("%output{/dev/termination-log}HTTP %{http_code}")) == 0 &&
         json_array_append_new(args, json_string("--url")) == 0 && append_literal(args, url) == 0;
    /* restricted like every container here; our own tool, so the runtime's default seccomp
     * profile rather than a function's */
    json_t *sc = ok ? kube_policy_security_context(p, NULL, err) : NULL;
    if (sc)
        json_object_set_new(sc, "seccompProfile", json_pack("{s:s}", "type", "RuntimeDefault"));
    json_t *mounts = tmp_mount(p);
    json_t *out = NULL;
    if (sc && mounts)
        out = json_pack("{s:s, s:s, s:[s], s:O, s:O, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:O, s:O}",
                        "name", "invoke", "image",
                        cj->curl_image ? cj->curl_image : KUBE_CURL_IMAGE_DEFAULT, "command",
                        "curl", "args", args, "env", env, "resources", "requests", "cpu", "50m",
                        "memory", "64Mi", "limits", "cpu", "50m", "memory", "64Mi",
                        "securityContext", sc, "volumeMounts", mounts);
    if (!out && (sc || ok))
        hks_fail(err, ENOMEM, "render the invoking container");
    json_decref(args);
    json_decref(env);
    json_decref(sc);
    json_decref(mounts);
    return out;
}

/* The definition, hksd's project and the time of the change, read back by any hksd. */
static int annotate_definition(json_t *obj, const kube_cronjob *cj, hks_error *err)
{
    json_t *annotations = json_object_get(json_object_get(obj, "metadata"), "annotations");
    char *text = json_dumps(cj->definition, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return hks_fail(err, ENOMEM, "CronJob %s: serialize the definition", cj->id);
    size_t len = strlen(text);
    int rc = json_object_set_new(annotations, "hks.io/definition", json_string(text));
    free(text);
    if (len > KUBE_CRONJOB_DEFINITION_MAX)
        return kube_fail(err, EINVAL,
                         "CronJob %s: the definition is %zu bytes, more than the %u a CronJob's "
                         "annotation holds here (a function target's body makes most of it)",
                         cj->id, len, KUBE_CRONJOB_DEFINITION_MAX);
    rc |= json_object_set_new(annotations, "hks.io/project",
                              json_string(cj->project_name ? cj->project_name : cj->project));
    if (cj->updated_at)
        rc |= json_object_set_new(annotations, "hks.io/updated-at", json_string(cj->updated_at));
    if (rc != 0)
        return kube_fail(err, EINVAL, "CronJob %s: a field is not valid UTF-8", cj->id);
    return 0;
}

json_t *kube_render_cronjob(const kube_policy *p, const kube_cronjob *cj,
                            const json_t *template_ksvc, hks_error *err)
{
    if (check_cronjob(cj, err) < 0)
        return NULL;
    const json_t *d = cj->definition;
    const json_t *target = json_object_get(d, "target");
    const json_t *task = json_object_get(target, "task");
    unsigned deadline = 0;
    json_t *container = NULL;
    const char *service_account = NULL;
    if (task) {
        container = task_container(p, task, template_ksvc, err);
        const json_t *t = json_object_get(task, "timeout_seconds");
        deadline = t ? (unsigned)json_integer_value(t) : TIMEOUT_DEF_S;
        service_account = string_at(
            json_object_get(json_object_get(json_object_get(template_ksvc, "spec"), "template"),
                            "spec"),
            "serviceAccountName");
    } else {
        container = invoke_container(p, cj, json_object_get(target, "function"), template_ksvc,
                                     &deadline, err);
        deadline += DEADLINE_MARGIN;
    }
    if (!container) {
        hks_wrap(err, "CronJob %s", cj->id);
        return NULL;
    }
    json_t *pod_spec = json_pack("{s:s, s:b, s:b, s:[o], s:[{s:s, s:{s:s}}]}", "restartPolicy",
                                 "Never", "automountServiceAccountToken", 0, "enableServiceLinks",
                                 0, "containers", container, "volumes", "name", "tmp", "emptyDir",
                                 "sizeLimit", kube_policy_tmp_size(p));
    if (pod_spec && service_account && kube_dns_label(service_account))
        json_object_set_new(pod_spec, "serviceAccountName", json_string(service_account));
    json_t *labels = cronjob_labels(cj), *job_labels = cronjob_labels(cj),
           *pod_labels = cronjob_labels(cj);
    const char *target_id =
        task ? string_at(task, "template") : string_at(json_object_get(target, "function"), "id");
    json_t *obj = NULL;
    if (pod_spec && labels && job_labels && pod_labels)
        obj = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s}},"
            " s:{s:s, s:s, s:s, s:b, s:O, s:O,"
            "    s:{s:{s:o}, s:{s:i, s:I, s:I, s:{s:{s:o}, s:o}}}}}",
            "apiVersion", "batch/v1", "kind", "CronJob", "metadata", "name", cj->id, "namespace",
            cj->project, "labels", labels, "annotations", "hks.io/name", string_at(d, "name"),
            "hks.io/owner", cj->owner ? cj->owner : "", "hks.io/target", target_id,
            "hks.io/target-kind", task ? "task" : "function", "spec", "schedule",
            string_at(d, "schedule"), "timeZone", string_at(d, "timezone"), "concurrencyPolicy",
            string_at(d, "concurrency_policy"), "suspend",
            json_is_true(json_object_get(d, "suspend")), "successfulJobsHistoryLimit",
            json_object_get(d, "successful_jobs_history_limit"), "failedJobsHistoryLimit",
            json_object_get(d, "failed_jobs_history_limit"), "jobTemplate", "metadata", "labels",
            job_labels, "spec", "backoffLimit", 0, "activeDeadlineSeconds", (json_int_t)deadline,
            "ttlSecondsAfterFinished",
            (json_int_t)(cj->ttl_after_finished_s ? cj->ttl_after_finished_s : TTL_DEFAULT),
            "template", "metadata", "labels", pod_labels, "spec", pod_spec);
    else {
        json_decref(pod_spec);
        json_decref(labels);
        json_decref(job_labels);
        json_decref(pod_labels);
    }
    if (!obj) {
        kube_fail(err, EINVAL, "CronJob %s: a field is not valid UTF-8", cj->id);
        return NULL;
    }
    if (annotate_definition(obj, cj, err) < 0) {
        json_decref(obj);
        return NULL;
    }
    const json_t *deadline_s = json_object_get(d, "starting_deadline_seconds");
    if (json_is_integer(deadline_s))
        json_object_set(json_object_get(obj, "spec"), "startingDeadlineSeconds",
                        (json_t *)deadline_s);
    return obj;
}

json_t *kube_render_cronjob_network_policy(const kube_policy *p, const kube_cronjob *cj,
                                           hks_error *err)
{
    if (check_cronjob(cj, err) < 0)
        return NULL;
    json_t *np = json_deep_copy(kube_policy_network_policy(p));
    json_t *meta = json_pack("{s:s, s:s, s:o}", "name", cj->id, "namespace", cj->project, "labels",
                             cronjob_labels(cj));
    json_t *spec = json_object_get(np, "spec");
    /* a task, like the local one, talks to nothing and nothing talks to it */
    if (!np || !meta || !json_is_object(spec) || json_object_set_new(np, "metadata", meta) < 0 ||
        json_object_set_new(spec, "podSelector",
                            json_pack("{s:{s:s}}", "matchLabels", KUBE_LABEL_CRONJOB, cj->id)) <
            0 ||
        json_object_set_new(spec, "ingress", json_array()) < 0 ||
        json_object_set_new(spec, "egress", json_array()) < 0) {
        json_decref(np);
        hks_fail(err, ENOMEM, "render NetworkPolicy %s", cj->id);
        return NULL;
    }
    return np;
}

int kube_cronjob_apply(kube_client *c, const kube_policy *p, const kube_cronjob *cj, hks_error *err)
{
    if (check_cronjob(cj, err) < 0)
        return -1;
    const json_t *target = json_object_get(cj->definition, "target");
    const json_t *task = json_object_get(target, "task");
    const char *template_id =
        task ? string_at(task, "template") : string_at(json_object_get(target, "function"), "id");
    json_t *ksvc = NULL;
    if (kube_get(c, KUBE_KSERVICE, cj->project, template_id, &ksvc, err) < 0)
        return hks_wrap(err, "CronJob %s: %s %s", cj->id,
                        task ? "target.task.template" : "target.function.id", template_id);
    json_t *obj = kube_render_cronjob(p, cj, ksvc, err);
    json_decref(ksvc);
    json_t *np = obj && task ? kube_render_cronjob_network_policy(p, cj, err) : NULL;
    int rc = obj && (!task || np) ? 0 : -1;
    /* the NetworkPolicy depends on the id alone: one already there is the same (and hksd is not
     * granted update on NetworkPolicies) */
    if (rc == 0 && np && kube_create(c, KUBE_NETWORK_POLICY, cj->project, np, NULL, err) < 0 &&
        err->errnum != EEXIST)
        rc = hks_wrap(err, "CronJob %s", cj->id);
    if (rc == 0 && kube_apply(c, KUBE_CRON_JOB, cj->project, obj, NULL, err) < 0)
        rc = hks_wrap(err, "CronJob %s", cj->id);
    /* a function target has no NetworkPolicy: one left by an earlier task target goes */
    hks_error ignored = {0};
    if (rc == 0 && !task)
        kube_delete(c, KUBE_NETWORK_POLICY, cj->project, cj->id, KUBE_PROPAGATE_BACKGROUND,
                    &ignored);
    json_decref(obj);
    json_decref(np);
    return rc;
}

int kube_cronjob_delete(kube_client *c, const char *ns, const char *id, unsigned *deleted,
                        hks_error *err)
{
    const kube_kind kinds[] = {KUBE_CRON_JOB, KUBE_NETWORK_POLICY};
    unsigned count = 0;
    for (size_t i = 0; i < HKS_ARRAY_LEN(kinds); i++) {
        /* Background: the Jobs and their Pods go with the CronJob (their owner) */
        if (kube_delete(c, kinds[i], ns, id, KUBE_PROPAGATE_BACKGROUND, err) == 0)
            count++;
        else if (err->errnum != ENOENT)
            return hks_wrap(err, "delete CronJob %s", id);
    }
    if (deleted)
        *deleted = count;
    memset(err, 0, sizeof(*err));
    return 0;
}
