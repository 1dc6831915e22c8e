/* Deploy, delete and read functions on the kubernetes backend. A deploy: the code written and
 * checked as on the local backend, the image built with the layer strategy (the runtime's base
 * image plus one layer) and pushed to the configured registry, or, when the function brings
 * dependencies to install, built from its Dockerfile by Kaniko on the cluster (which pushes it
 * to the same place), the project's namespace made if
 * missing, the function's objects applied (ServiceAccount, NetworkPolicy, Knative Service by
 * digest), then a wait until Knative says Ready. Each step is journalled first, so a failure, or a
 * crash, leaves nothing: a failed deploy deletes what it created before answering. */
#include "iso_time.h"
#include "kube_backend.h"

#include "functions.h"

#include "../builder/builder.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* What a failed cluster request means for the caller. */
static int cluster_failure(const hks_error *err)
{
    switch (err->errnum) {
    case EAGAIN:
        return HKSD_FAIL_BUSY;
    case ETIMEDOUT:
        return HKSD_FAIL_TIMEOUT;
    default:
        return HKSD_FAIL_START;
    }
}

/* ---- the public view, from the Knative Service ---- */

static unsigned annotation_uint(const json_t *annotations, const char *key)
{
    unsigned long long n = 0;
    const char *text = str_at(annotations, key);
    return text && hks_parse_uint(text, 0, 1000000, &n) == 0 ? (unsigned)n : 0;
}

json_t *kb_view(const json_t *ksvc, const char *project)
{
    const json_t *meta = json_object_get(ksvc, "metadata");
    const json_t *labels = json_object_get(meta, "labels");
    const json_t *ann = json_object_get(meta, "annotations");
    const char *managed = str_at(labels, KUBE_LABEL_MANAGED_BY);
    const char *id = str_at(labels, KUBE_LABEL_FUNCTION);
    const char *owner_project = str_at(labels, KUBE_LABEL_PROJECT);
    if (!managed || strcmp(managed, KUBE_MANAGER) != 0 || !id || !hksd_function_id_valid(id) ||
        !owner_project || (project && strcmp(owner_project, project) != 0))
        return NULL;
    const json_t *tmpl = json_object_get(json_object_get(ksvc, "spec"), "template");
    const json_t *tspec = json_object_get(tmpl, "spec");
    const json_t *tann = json_object_get(json_object_get(tmpl, "metadata"), "annotations");
    const json_t *container = json_array_get(json_object_get(tspec, "containers"), 0);
    char url[512] = "", why[512] = "";
    kube_readiness readiness = kube_kservice_readiness(ksvc, url, sizeof(url), why, sizeof(why));
    long long created = hksd_iso8601_parse(str_at(meta, "creationTimestamp"));
    long long expires = hksd_iso8601_parse(str_at(ann, "hks.io/expires-at"));
    const char *status = json_object_get(meta, "deletionTimestamp")         ? "deleting"
                         : readiness == KUBE_FAILED                         ? "failed"
                         : readiness != KUBE_READY                          ? "deploying"
                         : expires >= 0 && expires <= (long long)time(NULL) ? "expired"
                                                                            : "ready";
    json_t *env = json_object();
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(container, "env"), i, entry)
    {
        const char *name = str_at(entry, "name"), *value = str_at(entry, "value");
        if (name && value)
            json_object_set_new(env, name, json_string(value));
    }
    const json_t *limits = json_object_get(json_object_get(container, "resources"), "limits");
    unsigned long long memory_mb = 0, cpu_millis = 0;
    const char *memory = str_at(limits, "memory"), *cpu = str_at(limits, "cpu");
    char number[32];
    if (memory && sscanf(memory, "%30[0-9]Mi", number) == 1)
        hks_parse_uint(number, 0, 1ULL << 30, &memory_mb);
    if (cpu && sscanf(cpu, "%30[0-9]m", number) == 1)
        hks_parse_uint(number, 0, 1ULL << 30, &cpu_millis);
    json_t *timeout = json_object_get(tspec, "timeoutSeconds");
    json_t *concurrency = json_object_get(tspec, "containerConcurrency");
    char created_text[32] = "", expires_text[32] = "";
    hksd_iso8601(created, created_text);
    hksd_iso8601(expires, expires_text);
    json_t *view = json_pack(
        "{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s, s:s?, s:s?, s:I, s:s?, s:o, s:o,"
        " s:I, s:I, s:I, s:{s:I, s:f, s:I}}",
        "id", id, "name", str_at(ann, "hks.io/name"), "project", owner_project, "owner",
        str_at(ann, "hks.io/owner"), "runtime", str_at(ann, "hks.io/runtime"), "code_sha256",
        str_at(ann, "hks.io/code-sha256"), "backend", "kubernetes", "namespace",
        str_at(meta, "namespace"), "status", status, "created_at",
        created_text[0] ? created_text : NULL, "expires_at", expires_text[0] ? expires_text : NULL,
        "ttl_seconds", (json_int_t)(created >= 0 && expires >= created ? expires - created : 0),
        "image", str_at(container, "image"), "knative_url", url[0] ? json_string(url) : json_null(),
        "env", env, "min_scale",
        (json_int_t)annotation_uint(tann, "autoscaling.knative.dev/min-scale"), "max_scale",
        (json_int_t)annotation_uint(tann, "autoscaling.knative.dev/max-scale"), "concurrency",
        json_is_integer(concurrency) ? json_integer_value(concurrency) : 0, "limits", "memory_mb",
        (json_int_t)memory_mb, "cpus", (double)cpu_millis / 1000.0, "wall_ms",
        json_is_integer(timeout) ? json_integer_value(timeout) * 1000 : 0);
    if (view && readiness != KUBE_READY && why[0])
        json_object_set_new(view, "reason", json_string(why));
    return view;
}

json_t *kb_get(kb_backend *kb, const char *project, const char *id)
{
    char ns[64];
    hks_error err = {0};
    json_t *ksvc = NULL;
    if (kb_namespace(kb, project, ns, &err) < 0)
        return NULL;
    if (kube_get(kb->client, KUBE_KSERVICE, ns, id, &ksvc, &err) < 0) {
        if (err.errnum != ENOENT)
            kb_log("error", "get a function from the cluster", id, err.msg);
        return NULL;
    }
    json_t *view = kb_view(ksvc, project);
    json_decref(ksvc);
    return view;
}

json_t *kb_list(kb_backend *kb, const char *project)
{
    json_t *list = json_array();
    char ns[64], selector[256];
    hks_error err = {0};
    json_t *items = NULL;
    snprintf(selector, sizeof(selector), "%s,%s=%.100s", KUBE_SELECTOR_MANAGED, KUBE_LABEL_PROJECT,
             project);
    if (kb_namespace(kb, project, ns, &err) == 0 &&
        kube_list(kb->client, KUBE_KSERVICE, ns, selector, NULL, &items, NULL, 0, &err) < 0)
        kb_log("error", "list functions on the cluster", "", err.msg);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *view = kb_view(item, project);
        if (view)
            json_array_append_new(list, view);
    }
    json_decref(items);
    return json_pack("{s:o}", "functions", list);
}

/* ---- undoing a deploy ---- */

void kb_undo_deploy(kb_backend *kb, const char *ns, const char *id)
{
    unsigned deleted = 0;
    hks_error err = {0};
    int rc = kube_function_delete(kb->client, ns, id, &deleted, &err);
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/%s", kb->build_root, id);
    hks_error ignored = {0};
    struct stat st;
    if (lstat(dir, &st) == 0)
        rt_remove_tree(dir, &ignored);
    kb_url_drop(kb, id);
    if (rc == 0) {
        hksd_function_store_remove(&kb->journal, id, &ignored);
        return;
    }
    /* kept, marked, for the reaper to try again */
    kb_log("error", "remove the objects of a failed deploy (retried by the reaper)", id, err.msg);
    json_t *record = hksd_function_store_get(&kb->journal, id, &ignored);
    if (record && json_object_set_new(record, "state", json_string("failed")) == 0)
        hksd_function_store_put(&kb->journal, record, &ignored);
    json_decref(record);
}

/* ---- deploy ---- */

static int ensure_namespace(kb_backend *kb, const char *ns, hks_error *err)
{
    json_t *obj = NULL;
    if (kube_get(kb->client, KUBE_NAMESPACE, NULL, ns, &obj, err) == 0) {
        json_decref(obj);
        return 0;
    }
    if (err->errnum != ENOENT)
        return -1;
    memset(err, 0, sizeof(*err));
    json_t *rendered = kube_render_namespace(kb->policy, ns, false, err);
    if (!rendered)
        return -1;
    int rc = kube_create(kb->client, KUBE_NAMESPACE, NULL, rendered, NULL, err);
    json_decref(rendered);
    if (rc < 0 && err->errnum == EEXIST) { /* another node made it meanwhile */
        memset(err, 0, sizeof(*err));
        rc = 0;
    }
    return rc;
}

/* Build the image into dir/image and push it: image gets registry/prefix/project@sha256:... */
static int build_and_push(kb_backend *kb, const char *dir, const char *id, const char *project,
                          const char *runtime, char *image, size_t size, hks_error *err)
{
    const hksd_config *cfg = kb->cfg;
    char code_dir[PATH_MAX + 40], layout[PATH_MAX + 40], runtimes[PATH_MAX + 16];
    snprintf(code_dir, sizeof(code_dir), "%s/code", dir);
    snprintf(layout, sizeof(layout), "%s/image", dir);
    snprintf(runtimes, sizeof(runtimes), "%s/runtimes", cfg->root);
    bld_image_input in = {
        .runtime = runtime,
        .code_dir = code_dir,
        .runtimes_dir = runtimes,
        .base_layout = strcmp(runtime, "python") == 0 ? cfg->kube_base_python : cfg->kube_base_node,
        .ref_name = id,
    };
    bld_image_result built;
    if (bld_image_build(&in, layout, &built, err) < 0) {
        hks_wrap(err, "build the image of %s", id);
        return HKSD_FAIL_INTERNAL;
    }
    char ref_text[700];
    snprintf(ref_text, sizeof(ref_text), "%s/%s/%s:%s", cfg->kube_registry, cfg->kube_repository,
             project, id);
    bld_image_ref dest;
    if (bld_image_ref_parse(ref_text, &dest, err) < 0) {
        hks_wrap(err, "the image reference from kubernetes.registry and repository_prefix");
        return HKSD_FAIL_INTERNAL;
    }
    bld_registry_options opt = {
        .docker_config = cfg->kube_docker_config[0] ? cfg->kube_docker_config : NULL,
        .ca_file = cfg->kube_registry_ca[0] ? cfg->kube_registry_ca : NULL,
        .insecure = cfg->kube_registry_insecure,
    };
    char digest[72];
    bld_push_stats stats;
    if (bld_registry_push(&opt, layout, id, &dest, digest, &stats, err) < 0) {
        hks_wrap(err, "push the image of %s", id);
        return HKSD_FAIL_START;
    }
    snprintf(image, size, "%s/%s@%s", dest.registry, dest.repository, digest);
    return 0;
}

/* What a failed Kaniko build means for the caller: the function's own fault (its context too
 * large, files the context cannot hold) is the caller's to fix; the rest is the cluster's. */
static int kaniko_failure(const hks_error *err)
{
    switch (err->errnum) {
    case EFBIG:
    case EINVAL:
        return HKSD_FAIL_INVALID;
    default:
        return cluster_failure(err);
    }
}

/* Functions with dependencies to install: their Dockerfile built and pushed by Kaniko on the
 * cluster (the layer strategy has no RUN step); image gets registry/prefix/project@sha256:... */
static int kaniko_build_and_push(kb_backend *kb, const char *dir, const char *id,
                                 const char *project, const char *runtime, char *image, size_t size,
                                 hks_error *err)
{
    const hksd_config *cfg = kb->cfg;
    char code_dir[PATH_MAX + 40], runtimes[PATH_MAX + 16];
    snprintf(code_dir, sizeof(code_dir), "%s/code", dir);
    snprintf(runtimes, sizeof(runtimes), "%s/runtimes", cfg->root);
    bld_context_input in = {.runtime = runtime, .code_dir = code_dir, .runtimes_dir = runtimes};
    cleanup_free void *context = NULL;
    size_t context_len = 0;
    char context_digest[72];
    if (bld_context_build(&in, &context, &context_len, context_digest, err) < 0) {
        hks_wrap(err, "the build context of %s", id);
        return err->errnum ? HKSD_FAIL_INTERNAL : HKSD_FAIL_INVALID;
    }
    char ref_text[700];
    snprintf(ref_text, sizeof(ref_text), "%s/%s/%s:%s", cfg->kube_registry, cfg->kube_repository,
             project, id);
    bld_image_ref dest;
    if (bld_image_ref_parse(ref_text, &dest, err) < 0) {
        hks_wrap(err, "the image reference from kubernetes.registry and repository_prefix");
        return HKSD_FAIL_INTERNAL;
    }
    kube_kaniko_options opt = {
        .ns = cfg->kube_kaniko_namespace,
        .executor_image = cfg->kube_kaniko_executor[0] ? cfg->kube_kaniko_executor : NULL,
        .registry_secret = cfg->kube_kaniko_secret[0] ? cfg->kube_kaniko_secret : NULL,
        .function_id = id,
        .deadline_s = cfg->kube_kaniko_deadline_s,
        .insecure_registry = cfg->kube_registry_insecure,
    };
    char digest[72];
    kb_log("info", "build with Kaniko (dependencies to install)", id, context_digest);
    if (kube_kaniko_build(kb->client, kb->policy, &opt, context, context_len, ref_text, digest,
                          err) < 0) {
        hks_wrap(err, "build the image of %s with Kaniko in namespace %s", id, opt.ns);
        return kaniko_failure(err);
    }
    snprintf(image, size, "%s/%s@%s", dest.registry, dest.repository, digest);
    return 0;
}

/* Kaniko when the function brings dependencies to install, else the layer strategy. */
static int build_image(kb_backend *kb, const char *dir, const char *id, const char *project,
                       const char *runtime, char *image, size_t size, hks_error *err)
{
    char code_dir[PATH_MAX + 40];
    snprintf(code_dir, sizeof(code_dir), "%s/code", dir);
    bool needs_install = false;
    if (bld_code_needs_install(runtime, code_dir, &needs_install, err) < 0) {
        hks_wrap(err, "deploy %s", id);
        return err->errnum ? HKSD_FAIL_INTERNAL : HKSD_FAIL_INVALID;
    }
    return needs_install ? kaniko_build_and_push(kb, dir, id, project, runtime, image, size, err)
                         : build_and_push(kb, dir, id, project, runtime, image, size, err);
}

static char **env_list(json_t *env)
{
    char **list = calloc(json_object_size(env) + 1, sizeof(char *));
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(env, key, value)
    {
        if (list && json_is_string(value) &&
            asprintf(&list[n], "%s=%s", key, json_string_value(value)) >= 0)
            n++;
    }
    return list;
}

static void env_free(char **list)
{
    for (char **e = list; e && *e; e++)
        free(*e);
    free(list);
}

typedef struct deploy_job {
    const hksd_caller *caller;
    const hksd_fn_spec *spec;
    char id[HKSD_FUNCTION_ID_LEN + 1];
    char ns[64];
    char dir[PATH_MAX + 32];
    char sha[65];
    char image[600];
    char url[512];
    long long created_at, expires_at;
    json_t *record;
} deploy_job;

/* Image, objects, readiness; every failure leaves what was created for the caller to undo. */
static int deploy_steps(kb_backend *kb, deploy_job *job, hks_error *err)
{
    const hksd_fn_spec *spec = job->spec;
    int failure = build_image(kb, job->dir, job->id, job->caller->project, spec->runtime,
                              job->image, sizeof(job->image), err);
    if (failure)
        return failure;
    if (ensure_namespace(kb, job->ns, err) < 0) {
        hks_wrap(err, "deploy %s: the namespace %s", job->id, job->ns);
        return cluster_failure(err);
    }
    char **env = env_list(spec->env);
    kube_function fn = {
        .id = job->id,
        .name = spec->name,
        .project = job->caller->project,
        .ns = job->ns,
        .owner = job->caller->sub,
        .runtime = spec->runtime,
        .image = job->image,
        .code_sha256 = job->sha,
        .env = (const char *const *)env,
        .memory_mb = (unsigned)(spec->limits.memory_bytes >> 20),
        .cpu_millis = (unsigned)spec->limits.cpu_millis,
        .timeout_s = (unsigned)((spec->limits.wall_ms + 999) / 1000),
        .concurrency = spec->concurrency,
        .min_scale = spec->min_scale,
        .max_scale = spec->max_scale,
        .expires_at = job->expires_at,
    };
    int rc = env ? kube_function_apply(kb->client, kb->policy, &fn, err)
                 : hks_fail(err, ENOMEM, "environment");
    env_free(env);
    if (rc < 0)
        return err->errnum == EINVAL ? HKSD_FAIL_INVALID : cluster_failure(err);
    if (kube_function_wait_ready(kb->client, job->ns, job->id, kb->cfg->kube_ready_timeout_s * 1000,
                                 job->url, sizeof(job->url), err) < 0)
        return cluster_failure(err);
    return 0;
}

static int check_deployable(kb_backend *kb, const hksd_caller *caller, const hksd_fn_spec *spec,
                            char ns[64], hks_error *err)
{
    const hksd_config *cfg = kb->cfg;
    if (kb_namespace(kb, caller->project, ns, err) < 0)
        return HKSD_FAIL_INVALID;
    const char *base =
        strcmp(spec->runtime, "python") == 0 ? cfg->kube_base_python : cfg->kube_base_node;
    if (!base[0]) {
        hks_fail(err, 0,
                 "this hksd cannot deploy %s functions: kubernetes.base_layout_%s (the runtime's "
                 "base image) is not configured",
                 spec->runtime, spec->runtime);
        return HKSD_FAIL_UNAVAILABLE;
    }
    if (!cfg->kube_registry[0]) {
        hks_fail(err, 0, "this hksd cannot deploy: kubernetes.registry is not configured");
        return HKSD_FAIL_UNAVAILABLE;
    }
    if (spec->limits.wall_ms > 600000) {
        hks_fail(err, 0,
                 "limits.wall_ms: %llu is above 600000, the longest request Knative serves "
                 "(max-revision-timeout-seconds)",
                 (unsigned long long)spec->limits.wall_ms);
        return HKSD_FAIL_INVALID;
    }
    pthread_mutex_lock(&kb->lock);
    bool stopping = kb->stopping;
    pthread_mutex_unlock(&kb->lock);
    if (stopping) {
        hks_fail(err, 0, "hksd is stopping");
        return HKSD_FAIL_UNAVAILABLE;
    }
    return 0;
}

/* The journal record, written before anything is created anywhere. */
static int journal_start(kb_backend *kb, deploy_job *job, hks_error *err)
{
    const hksd_fn_spec *spec = job->spec;
    job->record =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "id", job->id, "name", spec->name,
                  "project", job->caller->project, "namespace", job->ns, "owner", job->caller->sub,
                  "runtime", spec->runtime, "created_at", (json_int_t)job->created_at, "expires_at",
                  (json_int_t)job->expires_at, "code_sha256", job->sha, "state", "deploying");
    if (!job->record)
        return hks_fail(err, ENOMEM, "the deploy journal of %s", job->id);
    return hksd_function_store_put(&kb->journal, job->record, err);
}

int kb_deploy(kb_backend *kb, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **view,
              hks_error *err)
{
    deploy_job job = {.caller = caller, .spec = spec};
    int failure = check_deployable(kb, caller, spec, job.ns, err);
    if (failure)
        return failure;
    if (hksd_function_id_new(job.id, err) < 0)
        return HKSD_FAIL_INTERNAL;
    snprintf(job.dir, sizeof(job.dir), "%.4000s/%s", kb->build_root, job.id);
    char code_dir[sizeof(job.dir) + 8];
    snprintf(code_dir, sizeof(code_dir), "%s/code", job.dir);
    if (mkdir(job.dir, 0700) < 0) {
        hks_fail(err, errno, "create %s", job.dir);
        return HKSD_FAIL_INTERNAL;
    }
    failure = fn_write_code(spec, code_dir, err);
    if (failure) {
        hks_error ignored = {0};
        rt_remove_tree(job.dir, &ignored);
        return failure < 0 ? HKSD_FAIL_INTERNAL : failure;
    }
    fn_code_digest(spec, job.sha);
    job.created_at = (long long)time(NULL);
    job.expires_at = job.created_at + (long long)spec->ttl_s;
    if (journal_start(kb, &job, err) < 0) {
        json_decref(job.record);
        hks_error ignored = {0};
        rt_remove_tree(job.dir, &ignored);
        return HKSD_FAIL_INTERNAL;
    }
    kb_log("info", "deploy", job.id, job.ns);
    failure = deploy_steps(kb, &job, err);
    if (failure) {
        atomic_fetch_add(&kb->deploy_failures_total, 1);
        kb_log("error", "deploy failed: its objects removed", job.id, err->msg);
        kb_undo_deploy(kb, job.ns, job.id);
        char result[300];
        snprintf(result, sizeof(result), "failed: %.280s", err->msg);
        kb_audit(kb, caller, "function.deploy", caller->project, job.id, spec->runtime, job.sha,
                 result);
        json_decref(job.record);
        return failure;
    }
    hks_error ignored = {0};
    rt_remove_tree(job.dir, &ignored);
    json_object_set_new(job.record, "state", json_string("ready"));
    json_object_set_new(job.record, "knative_url", json_string(job.url));
    json_object_set_new(job.record, "image", json_string(job.image));
    if (hksd_function_store_put(&kb->journal, job.record, &ignored) < 0)
        kb_log("error", "journal a deployed function", job.id, ignored.msg);
    kb_url_put(kb, job.id, caller->project, job.url, spec->limits.wall_ms, job.expires_at);
    atomic_fetch_add(&kb->deployed_total, 1);
    kb_log("info", "deployed", job.id, job.url);
    kb_audit(kb, caller, "function.deploy", caller->project, job.id, spec->runtime, job.sha, "ok");
    *view = kb_get(kb, caller->project, job.id);
    if (!*view) { /* the cluster answered a moment ago: say what the journal knows */
        *view = json_deep_copy(job.record);
        json_object_del(*view, "state");
        json_object_set_new(*view, "status", json_string("ready"));
    }
    json_decref(job.record);
    return 0;
}

/* ---- delete ---- */

int kb_delete(kb_backend *kb, const hksd_caller *caller, const char *id, hks_error *err)
{
    char ns[64];
    if (kb_namespace(kb, caller->project, ns, err) < 0) {
        hks_fail(err, 0, "no function %s in project %s", id, caller->project);
        return HKSD_FAIL_NOT_FOUND;
    }
    /* the Knative Service says whose it is; without one, the ServiceAccount (a deploy's or a
     * delete's leftovers) */
    json_t *obj = NULL;
    const kube_kind kinds[] = {KUBE_KSERVICE, KUBE_SERVICE_ACCOUNT};
    size_t k = 0;
    for (; k < HKS_ARRAY_LEN(kinds); k++) {
        memset(err, 0, sizeof(*err));
        if (kube_get(kb->client, kinds[k], ns, id, &obj, err) == 0)
            break;
        if (err->errnum != ENOENT) {
            hks_wrap(err, "delete function %s", id);
            return cluster_failure(err);
        }
    }
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    const char *owner_project = str_at(labels, KUBE_LABEL_PROJECT);
    const char *managed = str_at(labels, KUBE_LABEL_MANAGED_BY);
    bool ours = obj && owner_project && strcmp(owner_project, caller->project) == 0 && managed &&
                strcmp(managed, KUBE_MANAGER) == 0;
    const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    char runtime[16], sha[65];
    const char *runtime_text = str_at(ann, "hks.io/runtime");
    const char *sha_text = str_at(ann, "hks.io/code-sha256");
    snprintf(runtime, sizeof(runtime), "%s", runtime_text ? runtime_text : "");
    snprintf(sha, sizeof(sha), "%s", sha_text ? sha_text : "");
    json_decref(obj);
    unsigned deleted = 0;
    if (ours && kube_function_delete(kb->client, ns, id, &deleted, err) < 0)
        return cluster_failure(err);
    if (!ours || deleted == 0) {
        hks_fail(err, 0, "no function %s in project %s", id, caller->project);
        return HKSD_FAIL_NOT_FOUND;
    }
    hks_error ignored = {0};
    hksd_function_store_remove(&kb->journal, id, &ignored);
    kb_url_drop(kb, id);
    atomic_fetch_add(&kb->deleted_total, 1);
    kb_log("info", "function deleted", id, ns);
    kb_audit(kb, caller, "function.delete", caller->project, id, runtime, sha, "ok");
    return 0;
}
