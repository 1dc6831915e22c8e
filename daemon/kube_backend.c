/* The kubernetes backend's life: connecting to the cluster, the reconciliation of this node's
 * journal at start (a deploy a crash interrupted is undone), the reaper (every node lists the
 * functions on the cluster and deletes the expired ones; a 404 means another node was first), the
 * leftovers of deploys interrupted on nodes that never came back, and the leases of invocations:
 * the function's Knative address, cached for a few seconds. */
#include "iso_time.h"
#include "kube_backend.h"

#include "functions.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A ServiceAccount of a function without its Knative Service, older than the longest a deploy
 * takes from creating one to the other (each create may take the client's 30 s, retried), is
 * what a deploy interrupted on some node left. */
#define KB_ORPHAN_MARGIN_S 180

void kb_log(const char *level, const char *msg, const char *fn_id, const char *detail)
{
    json_t *line =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "level", level, "msg", msg, "backend", "kubernetes",
                  "function", fn_id ? fn_id : "", "detail", detail ? detail : "");
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

void kb_audit(kb_backend *kb, const hksd_caller *caller, const char *action, const char *project,
              const char *id, const char *runtime, const char *code_sha256, const char *result)
{
    json_t *record =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "request_id",
                  caller && caller->request_id ? caller->request_id : "", "sub",
                  caller && caller->sub ? caller->sub : "hksd", "project", project, "action",
                  action, "function_id", id, "runtime", runtime ? runtime : "", "code_sha256",
                  code_sha256 ? code_sha256 : "", "backend", "kubernetes", "result", result);
    hks_error err = {0};
    if (record && hksd_audit(kb->d, record, &err) < 0)
        kb_log("error", "audit", id, err.msg);
    json_decref(record);
}

int kb_namespace(const kb_backend *kb, const char *project, char out[64], hks_error *err)
{
    if (hksd_kube_namespace(kb->cfg->kube_namespace, project, out, 64) < 0)
        return hks_fail(err, EINVAL,
                        "project '%.100s' gives no valid namespace under kubernetes.namespace "
                        "'%s' (a DNS label of at most 63 lower-case letters, digits and '-')",
                        project, kb->cfg->kube_namespace);
    return 0;
}

/* ---- the URL cache ---- */

void kb_url_put(kb_backend *kb, const char *id, const char *project, const char *url,
                uint64_t timeout_ms, long long expires_at)
{
    pthread_mutex_lock(&kb->lock);
    kb_url *u = kb->urls;
    while (u && strcmp(u->id, id) != 0)
        u = u->next;
    if (!u && (u = calloc(1, sizeof(*u)))) {
        u->next = kb->urls;
        kb->urls = u;
    }
    if (u) {
        snprintf(u->id, sizeof(u->id), "%s", id);
        snprintf(u->project, sizeof(u->project), "%s", project);
        snprintf(u->url, sizeof(u->url), "%s", url);
        size_t len = strlen(u->url);
        while (len > 0 && u->url[len - 1] == '/')
            u->url[--len] = '\0';
        u->timeout_ms = timeout_ms;
        u->expires_at = expires_at;
        u->fetched_us = hks_now_us();
    }
    pthread_mutex_unlock(&kb->lock);
}

void kb_url_drop(kb_backend *kb, const char *id)
{
    pthread_mutex_lock(&kb->lock);
    for (kb_url **p = &kb->urls; *p; p = &(*p)->next) {
        if (strcmp((*p)->id, id) == 0) {
            kb_url *gone = *p;
            *p = gone->next;
            free(gone);
            break;
        }
    }
    pthread_mutex_unlock(&kb->lock);
}

/* The reaper saw the function on the cluster just now: its cached URL (if any) stays fresh. */
static void url_seen(kb_backend *kb, const kube_function_info *info)
{
    pthread_mutex_lock(&kb->lock);
    for (kb_url *u = kb->urls; u; u = u->next) {
        if (strcmp(u->id, info->id) == 0 && info->readiness == KUBE_READY &&
            strcmp(u->project, info->project) == 0) {
            snprintf(u->url, sizeof(u->url), "%s", info->url);
            size_t len = strlen(u->url);
            while (len > 0 && u->url[len - 1] == '/')
                u->url[--len] = '\0';
            u->fetched_us = hks_now_us();
        }
    }
    pthread_mutex_unlock(&kb->lock);
}

/* ---- leases ---- */

/* Ask the cluster where id is: 0 with lease filled, or a hksd_failure with message. */
static int resolve(kb_backend *kb, const char *project, const char *id, hksd_lease *lease,
                   char *message, size_t size)
{
    char ns[64];
    hks_error err = {0};
    if (kb_namespace(kb, project, ns, &err) < 0) {
        snprintf(message, size, "no such function");
        return HKSD_FAIL_NOT_FOUND;
    }
    json_t *ksvc = NULL;
    if (kube_get(kb->client, KUBE_KSERVICE, ns, id, &ksvc, &err) < 0) {
        if (err.errnum == ENOENT) {
            snprintf(message, size, "no such function");
            return HKSD_FAIL_NOT_FOUND;
        }
        snprintf(message, size, "the cluster did not say where the function is: %.400s", err.msg);
        return err.errnum == EAGAIN ? HKSD_FAIL_BUSY : HKSD_FAIL_UNAVAILABLE;
    }
    json_t *view = kb_view(ksvc, project);
    char url[512] = "", why[512] = "";
    kube_readiness readiness = kube_kservice_readiness(ksvc, url, sizeof(url), why, sizeof(why));
    json_t *timeout = json_object_get(
        json_object_get(json_object_get(json_object_get(ksvc, "spec"), "template"), "spec"),
        "timeoutSeconds");
    uint64_t timeout_ms = json_is_integer(timeout) && json_integer_value(timeout) > 0
                              ? (uint64_t)json_integer_value(timeout) * 1000
                              : 300000;
    long long expires_at = hksd_iso8601_parse(json_string_value(json_object_get(
        json_object_get(json_object_get(ksvc, "metadata"), "annotations"), "hks.io/expires-at")));
    bool ours = view != NULL;
    json_decref(ksvc);
    json_decref(view);
    if (!ours || expires_at <= (long long)time(NULL)) {
        snprintf(message, size, "no such function");
        return HKSD_FAIL_NOT_FOUND;
    }
    if (readiness == KUBE_FAILED) {
        snprintf(message, size, "the function cannot serve: Knative reports %.400s", why);
        return HKSD_FAIL_START;
    }
    if (readiness != KUBE_READY) {
        snprintf(message, size, "the function is not ready yet (%.400s)", why);
        return HKSD_FAIL_UNAVAILABLE;
    }
    kb_url_put(kb, id, project, url, timeout_ms, expires_at);
    snprintf(lease->url, sizeof(lease->url), "%s", url);
    size_t len = strlen(lease->url);
    while (len > 0 && lease->url[len - 1] == '/')
        lease->url[--len] = '\0';
    lease->timeout_ms = timeout_ms;
    return 0;
}

void kb_acquire(kb_backend *kb, const char *project, const char *id, hksd_lease_cb cb, void *ctx)
{
    uint64_t since = hks_now_us();
    hksd_lease lease;
    memset(&lease, 0, sizeof(lease));
    bool found = false, stopping;
    pthread_mutex_lock(&kb->lock);
    stopping = kb->stopping;
    for (const kb_url *u = kb->urls; u && !stopping && !found; u = u->next) {
        if (strcmp(u->id, id) != 0 || strcmp(u->project, project) != 0)
            continue;
        if (since - u->fetched_us > KB_URL_FRESH_US || u->expires_at <= (long long)time(NULL))
            break;
        snprintf(lease.url, sizeof(lease.url), "%s", u->url);
        lease.timeout_ms = u->timeout_ms;
        found = true;
    }
    pthread_mutex_unlock(&kb->lock);
    if (stopping) {
        cb(ctx, HKSD_FAIL_UNAVAILABLE, &lease, "hksd is stopping");
        return;
    }
    char message[512] = "";
    int failure = found ? 0 : resolve(kb, project, id, &lease, message, sizeof(message));
    lease.waited_us = hks_now_us() - since;
    cb(ctx, failure, &lease, failure ? message : NULL);
}

/* ---- the reaper ---- */

static void reap(kb_backend *kb, const kube_function_info *info)
{
    unsigned deleted = 0;
    hks_error err = {0};
    if (kube_function_delete(kb->client, info->ns, info->id, &deleted, &err) < 0) {
        atomic_fetch_add(&kb->reap_errors_total, 1);
        kb_log("error", "reap an expired function", info->id, err.msg);
        return;
    }
    kb_url_drop(kb, info->id);
    hks_error ignored = {0};
    hksd_function_store_remove(&kb->journal, info->id, &ignored);
    if (deleted == 0)
        return; /* another node reaped it first */
    atomic_fetch_add(&kb->reaped_total, 1);
    kb_log("info", "function reaped", info->id, "expired");
    kb_audit(kb, NULL, "function.reap", info->project, info->id, info->runtime, info->code_sha256,
             "expired");
}

static bool listed(const kube_function_info *infos, size_t n, const char *ns, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(infos[i].id, id) == 0 && (!ns || strcmp(infos[i].ns, ns) == 0))
            return true;
    }
    return false;
}

/* ServiceAccounts of functions whose Knative Service is gone for longer than any deploy takes:
 * a deploy (or a delete) interrupted on a node that did not come back to finish it. */
static void remove_orphans(kb_backend *kb, const kube_function_info *infos, size_t n)
{
    json_t *items = NULL;
    hks_error err = {0};
    if (kube_list(kb->client, KUBE_SERVICE_ACCOUNT, NULL, KUBE_SELECTOR_MANAGED, NULL, &items, NULL,
                  0, &err) < 0) {
        kb_log("warn", "reaper: list the functions' service accounts", "", err.msg);
        return;
    }
    long long now = (long long)time(NULL);
    long long margin = (long long)kb->cfg->kube_ready_timeout_s + KB_ORPHAN_MARGIN_S;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *meta = json_object_get(item, "metadata");
        const char *id = json_string_value(
            json_object_get(json_object_get(meta, "labels"), KUBE_LABEL_FUNCTION));
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        long long created =
            hksd_iso8601_parse(json_string_value(json_object_get(meta, "creationTimestamp")));
        if (!id || !ns || !hksd_function_id_valid(id) || listed(infos, n, ns, id) || created < 0 ||
            created + margin > now)
            continue;
        unsigned deleted = 0;
        hks_error del_err = {0};
        if (kube_function_delete(kb->client, ns, id, &deleted, &del_err) < 0) {
            kb_log("error", "remove the leftovers of an interrupted deploy", id, del_err.msg);
            continue;
        }
        if (deleted) {
            atomic_fetch_add(&kb->orphans_removed_total, 1);
            kb_log("warn", "leftovers of an interrupted deploy removed", id, ns);
        }
    }
    json_decref(items);
}

/* This node's journal against the cluster: records of functions the cluster no longer has
 * (deleted or reaped by another node) go; deploys whose undo failed are undone again. records
 * was read before the cluster was listed, so a function it calls ready existed before the list. */
static void reconcile_journal(kb_backend *kb, json_t *records, const kube_function_info *infos,
                              size_t n)
{
    size_t i;
    json_t *record;
    json_array_foreach(records, i, record)
    {
        const char *id = json_string_value(json_object_get(record, "id"));
        const char *ns = json_string_value(json_object_get(record, "namespace"));
        const char *state = json_string_value(json_object_get(record, "state"));
        if (!id || !ns || !state)
            continue;
        if (strcmp(state, "ready") == 0 && !listed(infos, n, ns, id)) {
            hks_error ignored = {0};
            hksd_function_store_remove(&kb->journal, id, &ignored);
            kb_url_drop(kb, id);
        } else if (strcmp(state, "failed") == 0) {
            kb_undo_deploy(kb, ns, id);
        }
    }
}

static void reap_pass(kb_backend *kb)
{
    hks_error err = {0};
    size_t quarantined = 0;
    json_t *records = hksd_function_store_list(&kb->journal, &quarantined, &err);
    kube_function_info *infos = NULL;
    size_t n = 0;
    if (kube_function_list(kb->client, NULL, &infos, &n, &err) < 0) {
        atomic_fetch_add(&kb->reap_errors_total, 1);
        kb_log("warn", "reaper: list the functions on the cluster", "", err.msg);
        json_decref(records);
        return;
    }
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < n; i++) {
        if (infos[i].expires_at >= 0 && infos[i].expires_at <= now)
            reap(kb, &infos[i]);
        else
            url_seen(kb, &infos[i]);
    }
    remove_orphans(kb, infos, n);
    if (records)
        reconcile_journal(kb, records, infos, n);
    json_decref(records);
    free(infos);
    /* build Pods and ConfigMaps of a build whose hksd stopped midway: past any build's deadline
     * and our wait for it, nobody will delete them otherwise */
    unsigned builds = 0;
    err = (hks_error){0};
    if (kube_kaniko_reap(kb->client, kb->cfg->kube_kaniko_namespace,
                         (long long)kb->cfg->kube_kaniko_deadline_s + 120, &builds, &err) < 0 &&
        err.errnum != ENOENT)
        kb_log("warn", "reaper: leftover Kaniko builds", "", err.msg);
    else if (builds)
        kb_log("info", "reaper: leftover Kaniko build objects deleted", "", "");
}

static void *reaper_main(void *arg)
{
    kb_backend *kb = arg;
    pthread_mutex_lock(&kb->lock);
    while (!kb->stopping) {
        pthread_mutex_unlock(&kb->lock);
        reap_pass(kb);
        pthread_mutex_lock(&kb->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)kb->cfg->kube_reap_interval_s;
        while (!kb->stopping && pthread_cond_timedwait(&kb->wake, &kb->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&kb->lock);
    return NULL;
}

/* ---- start: what a crash left ---- */

/* Deploys this node had going when it stopped (state "deploying"): undone, on the cluster and on
 * disk; build directories without a deploy going (none is, yet) removed. */
static void reconcile_at_start(kb_backend *kb)
{
    hks_error err = {0};
    size_t quarantined = 0;
    json_t *records = hksd_function_store_list(&kb->journal, &quarantined, &err);
    if (!records)
        kb_log("error", "read the deploy journal", "", err.msg);
    size_t i;
    json_t *record;
    json_array_foreach(records, i, record)
    {
        const char *id = json_string_value(json_object_get(record, "id"));
        const char *ns = json_string_value(json_object_get(record, "namespace"));
        const char *state = json_string_value(json_object_get(record, "state"));
        if (!id || !ns || (state && strcmp(state, "ready") == 0))
            continue;
        kb_log("warn", "a deploy interrupted by a restart: undone", id, ns);
        kb_undo_deploy(kb, ns, id);
    }
    json_decref(records);
    DIR *dir = opendir(kb->build_root);
    for (struct dirent *e; dir && (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", kb->build_root, e->d_name);
        hks_error ignored = {0};
        rt_remove_tree(path, &ignored);
    }
    if (dir)
        closedir(dir);
}

static int make_dir(const char *path, hks_error *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", path);
    return 0;
}

int kb_start(kb_backend *kb, hksd *d, const hksd_config *cfg, hks_error *err)
{
    kb->d = d;
    kb->cfg = cfg;
    pthread_mutex_init(&kb->lock, NULL);
    pthread_cond_init(&kb->wake, NULL);
    kube_options opt = {
        .kubeconfig = cfg->kube_kubeconfig[0] ? cfg->kube_kubeconfig : NULL,
        .context = cfg->kube_context[0] ? cfg->kube_context : NULL,
        .in_cluster = cfg->kube_in_cluster,
        .timeout_ms = cfg->kube_request_timeout_s * 1000,
    };
    if (kube_client_new(&opt, &kb->client, err) < 0)
        return hks_wrap(err, "kubernetes backend: the cluster");
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/kubernetes", cfg->policies_dir);
    if (kube_policy_load(dir, &kb->policy, err) < 0)
        return hks_wrap(err, "kubernetes backend");
    char kube_dir[PATH_MAX];
    if ((size_t)snprintf(kube_dir, sizeof(kube_dir), "%s/kube", cfg->state_dir) >=
            sizeof(kube_dir) ||
        (size_t)snprintf(kb->build_root, sizeof(kb->build_root), "%s/build", kube_dir) >=
            sizeof(kb->build_root))
        return hks_fail(err, ENAMETOOLONG, "kubernetes backend: state under %s", cfg->state_dir);
    if (make_dir(kube_dir, err) < 0 || make_dir(kb->build_root, err) < 0 ||
        hksd_function_store_open(&kb->journal, kube_dir, err) < 0)
        return hks_wrap(err, "kubernetes backend");
    char where[600];
    snprintf(where, sizeof(where), "%s (%s)", kube_client_server(kb->client),
             kube_client_source(kb->client));
    kb_log("info", "kubernetes backend", "", where);
    reconcile_at_start(kb);
    if (pthread_create(&kb->reaper, NULL, reaper_main, kb) != 0)
        return hks_fail(err, errno, "kubernetes backend: start the reaper");
    kb->reaper_running = true;
    return 0;
}

void kb_stop(kb_backend *kb)
{
    if (!kb->d)
        return;
    pthread_mutex_lock(&kb->lock);
    kb->stopping = true;
    pthread_cond_broadcast(&kb->wake);
    pthread_mutex_unlock(&kb->lock);
    if (kb->reaper_running)
        pthread_join(kb->reaper, NULL);
    kb->reaper_running = false;
    while (kb->urls) {
        kb_url *u = kb->urls;
        kb->urls = u->next;
        free(u);
    }
    kube_policy_free(kb->policy);
    kube_client_free(kb->client);
    kb->policy = NULL;
    kb->client = NULL;
    pthread_cond_destroy(&kb->wake);
    pthread_mutex_destroy(&kb->lock);
    kb->d = NULL;
}

void kb_metrics(kb_backend *kb, FILE *f)
{
    fprintf(f,
            "# HELP hks_kube_functions_deployed_total Functions deployed on the cluster by this "
            "hksd.\n# TYPE hks_kube_functions_deployed_total counter\n"
            "hks_kube_functions_deployed_total %lu\n"
            "# HELP hks_kube_deploy_failures_total Deploys that failed (their objects removed).\n"
            "# TYPE hks_kube_deploy_failures_total counter\nhks_kube_deploy_failures_total %lu\n"
            "# HELP hks_kube_functions_deleted_total Functions deleted by request.\n"
            "# TYPE hks_kube_functions_deleted_total counter\n"
            "hks_kube_functions_deleted_total %lu\n"
            "# HELP hks_kube_functions_reaped_total Expired functions this hksd deleted.\n"
            "# TYPE hks_kube_functions_reaped_total counter\nhks_kube_functions_reaped_total %lu\n"
            "# HELP hks_kube_orphans_removed_total Objects of interrupted deploys removed.\n"
            "# TYPE hks_kube_orphans_removed_total counter\nhks_kube_orphans_removed_total %lu\n"
            "# HELP hks_kube_reap_errors_total Reaper passes or deletes the cluster refused.\n"
            "# TYPE hks_kube_reap_errors_total counter\nhks_kube_reap_errors_total %lu\n",
            atomic_load(&kb->deployed_total), atomic_load(&kb->deploy_failures_total),
            atomic_load(&kb->deleted_total), atomic_load(&kb->reaped_total),
            atomic_load(&kb->orphans_removed_total), atomic_load(&kb->reap_errors_total));
}
