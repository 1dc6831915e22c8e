/* hksd's core: starts the pools, probes the runtimes, runs executions with audit and metrics. */
#include "daemon.h"

#include "audit_log.h"
#include "cronjobs.h"
#include "functions.h"
#include "kube_backend.h"
#include "node_seccomp.h"
#include "recent.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DURATION_BUCKETS 12
static const double duration_bounds_s[DURATION_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10,  30};

typedef struct status_counts {
    atomic_ulong by_status[SBX_STATUS_INTERNAL_ERROR + 1];
    atomic_ulong warm, cold;
    atomic_ulong duration_buckets[DURATION_BUCKETS];
    atomic_ulong duration_count;
    _Atomic double duration_sum_s;
} status_counts;

#define MAX_ROUTE_COUNTERS 64

typedef struct route_counter {
    char route[64];
    int status;
    atomic_ulong count;
} route_counter;

struct hksd {
    hksd_config cfg;
    pthread_rwlock_t policy_lock;
    hksd_policy_limits policy;
    rt_pool *pool;
    json_t *runtimes;
    hksd_audit_log *audit;
    atomic_ulong audit_failures; /* records that could not be written (disk full, I/O error) */
    status_counts executions[RT_MAX_RUNTIMES];
    pthread_mutex_t routes_lock;
    route_counter routes[MAX_ROUTE_COUNTERS];
    size_t n_routes;
    fn_manager functions;
    bool functions_started;
    cj_manager cronjobs;
    bool cronjobs_started;
    recent_executions executions_seen; /* the last executions, for GET /internal/v1/executions */
    bool kubernetes; /* the backend of deployed functions: the cluster (kube_backend.c) */
    kb_backend kube;
};

static int make_private_dir(const char *path, hks_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return hks_fail(err, errno, "create %s", buf);
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", buf);
    return 0;
}

/* Run runtimes/<name>/manifest.* in a sandbox and keep what it prints (before any thread). */
static json_t *probe_manifest(const hksd_config *cfg, const sbx_profile *profile, const char *name,
                              const char *interpreter, const char *script)
{
    char dir[PATH_MAX + 32], path[64];
    snprintf(dir, sizeof(dir), "%s/runtimes/%s", cfg->root, name);
    snprintf(path, sizeof(path), "/hks/runtime/%s", script);
    sbx_mount mounts[] = {{.source = dir, .target = "/hks/runtime"}};
    char *argv[] = {(char *)interpreter, path, NULL};
    sbx_config sc;
    sbx_config_init(&sc);
    sc.argv = argv;
    sc.profile = profile;
    sc.mounts = mounts;
    sc.n_mounts = 1;
    sc.output = SBX_OUTPUT_CAPTURE;
    sc.limits.wall_ms = 20000;
    sbx_result r;
    hks_error err = {0};
    json_t *manifest = NULL;
    if (sbx_run_once(&sc, &r, &err) == 0) {
        if (r.status == SBX_STATUS_OK)
            manifest = json_loadb(r.stdout_data, r.stdout_len, 0, NULL);
        sbx_result_release(&r);
    }
    if (!manifest)
        manifest = json_pack("{s:s,s:s}", "name", name, "error", "manifest probe failed");
    return manifest;
}

static json_t *probe_runtimes(const hksd_config *cfg, hks_error *err)
{
    char profile_path[PATH_MAX + 32];
    snprintf(profile_path, sizeof(profile_path), "%s/seccomp/function.json", cfg->policies_dir);
    sbx_profile *profile = NULL;
    if (sbx_profile_load(profile_path, false, &profile, err) < 0)
        return NULL;
    json_t *list = json_array();
    json_array_append_new(
        list, probe_manifest(cfg, profile, "python", "/usr/bin/python3", "manifest.py"));
    json_array_append_new(list,
                          probe_manifest(cfg, profile, "node", "/usr/bin/node", "manifest.js"));
    sbx_profile_free(profile);
    return list;
}

/* The node role: the kubelet finds the functions' seccomp profiles where Knative Services name
 * them before any function of this node can start (daemon/node_seccomp.h). */
static int install_node_profiles(const hksd_config *cfg, hks_error *err)
{
    char profiles[PATH_MAX + 16];
    snprintf(profiles, sizeof(profiles), "%s/seccomp", cfg->policies_dir);
    if (hksd_node_seccomp_install(profiles, cfg->node_seccomp_dir, NULL, err) < 0)
        return hks_wrap(err, "node role: install the seccomp profiles of %s into %s", profiles,
                        cfg->node_seccomp_dir);
    return 0;
}

int hksd_start(const hksd_config *cfg, hksd **out, hks_error *err)
{
    hksd *d = calloc(1, sizeof(*d));
    if (!d)
        return hks_fail(err, ENOMEM, "hksd");
    d->cfg = *cfg;
    pthread_mutex_init(&d->routes_lock, NULL);
    pthread_rwlock_init(&d->policy_lock, NULL);
    recent_executions_init(&d->executions_seen);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/limits.json", cfg->policies_dir);
    if (hksd_policy_limits_load(path, &d->policy, err) < 0 ||
        make_private_dir(cfg->state_dir, err) < 0)
        goto fail;
    if (cfg->node_install_seccomp && install_node_profiles(cfg, err) < 0)
        goto fail;
    char audit_path[PATH_MAX + 16];
    snprintf(audit_path, sizeof(audit_path), "%s/audit.log", cfg->state_dir);
    if (hksd_audit_log_open(audit_path, cfg->audit_rotate_bytes, cfg->audit_keep, &d->audit, err) <
        0)
        goto fail;
    d->runtimes = probe_runtimes(cfg, err);
    if (!d->runtimes)
        goto fail;

    rt_pool_config pc;
    rt_pool_config_init(&pc);
    char work[PATH_MAX + 16], profile[PATH_MAX + 32];
    snprintf(work, sizeof(work), "%s/pool", cfg->state_dir);
    snprintf(profile, sizeof(profile), "%s/seccomp/function.json", cfg->policies_dir);
    pc.root = cfg->root;
    pc.work_dir = work;
    pc.profile_path = profile;
    pc.warm[0] = cfg->pool_python;
    pc.warm[1] = cfg->pool_node;
    pc.limits = d->policy.defaults;
    pc.spawner_exe = "/proc/self/exe"; /* a spawner that dies is replaced: `hksd spawner` */
    if (rt_pool_start(&pc, &d->pool, err) < 0)
        goto fail;
    d->functions_started = true; /* its stop and free are safe after a failed start */
    if (fn_manager_start(&d->functions, d, d->pool, &d->cfg, err) < 0)
        goto fail;
    d->kubernetes = strcmp(cfg->backend, "kubernetes") == 0;
    if (d->kubernetes && kb_start(&d->kube, d, &d->cfg, err) < 0)
        goto fail;
    d->cronjobs_started = true;
    if (cj_manager_start(&d->cronjobs, d, d->pool, &d->functions, d->kubernetes ? &d->kube : NULL,
                         &d->cfg, err) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    hksd_stop(d);
    return -1;
}

void hksd_stop(hksd *d)
{
    if (!d)
        return;
    if (d->cronjobs_started)
        cj_manager_stop(&d->cronjobs);
    kb_stop(&d->kube);
    if (d->functions_started)
        fn_manager_stop(&d->functions);
    rt_pool_stop(d->pool);
    if (d->functions_started)
        fn_manager_free(&d->functions);
    json_decref(d->runtimes);
    hksd_audit_log_close(d->audit);
    recent_executions_destroy(&d->executions_seen);
    pthread_mutex_destroy(&d->routes_lock);
    pthread_rwlock_destroy(&d->policy_lock);
    free(d);
}

int hksd_storage_failure(const hks_error *err, int otherwise)
{
    return err->errnum == ENOSPC || err->errnum == EDQUOT ? HKSD_FAIL_NO_SPACE : otherwise;
}

const hksd_config *hksd_config_of(const hksd *d)
{
    return &d->cfg;
}

void hksd_policy_snapshot(hksd *d, hksd_policy_limits *out)
{
    pthread_rwlock_rdlock(&d->policy_lock);
    *out = d->policy;
    pthread_rwlock_unlock(&d->policy_lock);
}

int hksd_reload_policy(hksd *d, hks_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/limits.json", d->cfg.policies_dir);
    hksd_policy_limits fresh;
    if (hksd_policy_limits_load(path, &fresh, err) < 0)
        return -1;
    pthread_rwlock_wrlock(&d->policy_lock);
    d->policy = fresh;
    pthread_rwlock_unlock(&d->policy_lock);
    return d->pool ? rt_pool_reload_profile(d->pool, err) : 0;
}

json_t *hksd_runtimes(hksd *d)
{
    hksd_policy_limits p;
    hksd_policy_snapshot(d, &p);
    json_t *limits = json_pack("{s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I}}", "defaults", "memory_mb",
                               (json_int_t)(p.defaults.memory_bytes >> 20), "wall_ms",
                               (json_int_t)p.defaults.wall_ms, "cpu_ms",
                               (json_int_t)p.defaults.cpu_ms, "pids", (json_int_t)p.defaults.pids,
                               "maxima", "memory_mb", (json_int_t)(p.maxima.memory_bytes >> 20),
                               "wall_ms", (json_int_t)p.maxima.wall_ms, "cpu_ms",
                               (json_int_t)p.maxima.cpu_ms, "pids", (json_int_t)p.maxima.pids);
    return json_pack("{s:O,s:o}", "runtimes", d->runtimes, "limits", limits);
}

bool hksd_ready(const hksd *d)
{
    return d->pool != NULL && rt_pool_healthy(d->pool);
}

int hksd_audit(hksd *d, json_t *record, hks_error *err)
{
    int rc = hksd_audit_log_append(d->audit, record, err);
    if (rc < 0)
        atomic_fetch_add(&d->audit_failures, 1);
    return rc;
}

void hksd_code_digest(const rt_file *files, size_t n_files, char hex[65])
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n_files; i++) {
        /* name, NUL, length, content: no two file sets hash the same way by accident */
        uint64_t size = files[i].len;
        EVP_DigestUpdate(ctx, files[i].name, strlen(files[i].name) + 1);
        EVP_DigestUpdate(ctx, &size, sizeof(size));
        EVP_DigestUpdate(ctx, files[i].data, files[i].len);
    }
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static void count_execution(hksd *d, size_t runtime, const rt_exec_result *r)
{
    status_counts *c = &d->executions[runtime];
    atomic_fetch_add(&c->by_status[r->sandbox.status], 1);
    atomic_fetch_add(r->warm ? &c->warm : &c->cold, 1);
    double s = (double)r->sandbox.wall_us / 1e6;
    for (int i = 0; i < DURATION_BUCKETS; i++) {
        if (s <= duration_bounds_s[i])
            atomic_fetch_add(&c->duration_buckets[i], 1);
    }
    atomic_fetch_add(&c->duration_count, 1);
    double old = atomic_load(&c->duration_sum_s);
    while (!atomic_compare_exchange_weak(&c->duration_sum_s, &old, old + s))
        ;
}

static void remember_execution(hksd *d, const hksd_caller *caller, const char *runtime,
                               const rt_exec_result *r)
{
    recent_execution e = {.ts_ms = recent_now_ms(),
                          .exit_code = r->sandbox.exited ? r->sandbox.exit_code : -1,
                          .signal = r->sandbox.exited ? 0 : r->sandbox.signal,
                          .wall_ms = (double)r->sandbox.wall_us / 1000.0,
                          .cpu_ms = (double)r->sandbox.cpu_us / 1000.0,
                          .peak_memory_bytes = r->sandbox.peak_memory_bytes,
                          .warm = r->warm};
    /* the id the API gives the execution: "exe-" and the request's id */
    snprintf(e.id, sizeof(e.id), "exe-%.48s", caller->request_id ? caller->request_id : "");
    snprintf(e.project, sizeof(e.project), "%s", caller->project ? caller->project : "");
    snprintf(e.sub, sizeof(e.sub), "%s", caller->sub ? caller->sub : "");
    snprintf(e.runtime, sizeof(e.runtime), "%s", runtime);
    snprintf(e.status, sizeof(e.status), "%s", sbx_status_name(r->sandbox.status));
    recent_executions_add(&d->executions_seen, &e);
}

int hksd_execute(hksd *d, const hksd_caller *caller, const rt_exec_request *req,
                 rt_exec_result *result, hks_error *err)
{
    uint64_t start = hks_now_us();
    int rc = rt_pool_execute(d->pool, req, result, err);
    const rt_runtime *rt = rt_runtime_find(req->runtime);
    if (rc == 0 && rt) {
        count_execution(d, (size_t)(rt - rt_runtime_find("python")), result);
        remember_execution(d, caller, rt->name, result);
    }
    char digest[65];
    hksd_code_digest(req->files, req->n_files, digest);
    hksd_policy_limits policy;
    hksd_policy_snapshot(d, &policy);
    const sbx_limits *l = req->limits ? req->limits : &policy.defaults;
    json_t *record = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:I,s:I,s:I,s:I},s:s,s:b,s:f}", "request_id",
        caller->request_id ? caller->request_id : "", "sub", caller->sub ? caller->sub : "",
        "project", caller->project ? caller->project : "", "action", "execute", "runtime",
        req->runtime ? req->runtime : "", "code_sha256", digest, "limits", "memory_bytes",
        (json_int_t)l->memory_bytes, "wall_ms", (json_int_t)l->wall_ms, "cpu_ms",
        (json_int_t)l->cpu_ms, "pids", (json_int_t)l->pids, "result",
        rc == 0 ? sbx_status_name(result->sandbox.status) : "refused", "warm",
        rc == 0 && result->warm, "duration_ms", (double)(hks_now_us() - start) / 1000.0);
    if (rc < 0)
        json_object_set_new(record, "error", json_string(err->msg));
    hks_error audit_err = {0};
    if (record && hksd_audit(d, record, &audit_err) < 0) {
        json_t *line =
            json_pack("{s:s,s:s,s:s,s:s}", "level", "error", "msg", "audit", "request_id",
                      caller->request_id ? caller->request_id : "", "error", audit_err.msg);
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        if (text)
            fprintf(stderr, "%s\n", text);
        free(text);
        json_decref(line);
    }
    json_decref(record);
    return rc;
}

void hksd_count_request(hksd *d, const char *route, int status)
{
    pthread_mutex_lock(&d->routes_lock);
    route_counter *slot = NULL;
    for (size_t i = 0; i < d->n_routes && !slot; i++) {
        if (d->routes[i].status == status && strcmp(d->routes[i].route, route) == 0)
            slot = &d->routes[i];
    }
    if (!slot && d->n_routes < MAX_ROUTE_COUNTERS) {
        slot = &d->routes[d->n_routes++];
        snprintf(slot->route, sizeof(slot->route), "%s", route);
        slot->status = status;
    }
    if (slot)
        atomic_fetch_add(&slot->count, 1);
    pthread_mutex_unlock(&d->routes_lock);
}

char *hksd_metrics_text(hksd *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("# HELP hks_executions_total Executions by runtime and result status.\n"
          "# TYPE hks_executions_total counter\n",
          f);
    const char *names[] = {"python", "node"};
    for (size_t r = 0; r < 2; r++) {
        for (int s = SBX_STATUS_OK; s <= SBX_STATUS_INTERNAL_ERROR; s++)
            fprintf(f, "hks_executions_total{runtime=\"%s\",status=\"%s\"} %lu\n", names[r],
                    sbx_status_name((sbx_status)s), atomic_load(&d->executions[r].by_status[s]));
    }
    fputs("# HELP hks_execution_starts_total Executions served by a warm or a cold sandbox.\n"
          "# TYPE hks_execution_starts_total counter\n",
          f);
    for (size_t r = 0; r < 2; r++) {
        fprintf(f, "hks_execution_starts_total{runtime=\"%s\",start=\"warm\"} %lu\n", names[r],
                atomic_load(&d->executions[r].warm));
        fprintf(f, "hks_execution_starts_total{runtime=\"%s\",start=\"cold\"} %lu\n", names[r],
                atomic_load(&d->executions[r].cold));
    }
    fputs("# HELP hks_execution_duration_seconds Wall time of executions in their sandbox.\n"
          "# TYPE hks_execution_duration_seconds histogram\n",
          f);
    for (size_t r = 0; r < 2; r++) {
        status_counts *c = &d->executions[r];
        for (int i = 0; i < DURATION_BUCKETS; i++)
            fprintf(f, "hks_execution_duration_seconds_bucket{runtime=\"%s\",le=\"%g\"} %lu\n",
                    names[r], duration_bounds_s[i], atomic_load(&c->duration_buckets[i]));
        fprintf(f, "hks_execution_duration_seconds_bucket{runtime=\"%s\",le=\"+Inf\"} %lu\n",
                names[r], atomic_load(&c->duration_count));
        fprintf(f, "hks_execution_duration_seconds_sum{runtime=\"%s\"} %.6f\n", names[r],
                atomic_load(&c->duration_sum_s));
        fprintf(f, "hks_execution_duration_seconds_count{runtime=\"%s\"} %lu\n", names[r],
                atomic_load(&c->duration_count));
    }
    fputs("# HELP hks_pool_ready Warm sandboxes ready now.\n# TYPE hks_pool_ready gauge\n", f);
    for (size_t r = 0; r < 2; r++)
        fprintf(f, "hks_pool_ready{runtime=\"%s\"} %u\n", names[r],
                d->pool ? rt_pool_ready(d->pool, names[r]) : 0);
    fputs("# HELP hks_audit_write_failures_total Audit records that could not be written.\n"
          "# TYPE hks_audit_write_failures_total counter\n",
          f);
    fprintf(f, "hks_audit_write_failures_total %lu\n", atomic_load(&d->audit_failures));
    fputs("# HELP hks_spawner_restarts_total Sandbox spawners that died and were replaced.\n"
          "# TYPE hks_spawner_restarts_total counter\n",
          f);
    fprintf(f, "hks_spawner_restarts_total %lu\n", d->pool ? rt_pool_spawner_restarts(d->pool) : 0);
    fputs("# HELP hks_http_requests_total HTTP requests by route and status code.\n"
          "# TYPE hks_http_requests_total counter\n",
          f);
    pthread_mutex_lock(&d->routes_lock);
    for (size_t i = 0; i < d->n_routes; i++)
        fprintf(f, "hks_http_requests_total{route=\"%s\",code=\"%d\"} %lu\n", d->routes[i].route,
                d->routes[i].status, atomic_load(&d->routes[i].count));
    pthread_mutex_unlock(&d->routes_lock);
    fn_metrics(&d->functions, f);
    if (d->kubernetes)
        kb_metrics(&d->kube, f);
    cj_metrics(&d->cronjobs, f);
    fclose(f);
    return text;
}

/* ---- deployed functions: the edge's entry points, to the backend configured ---- */

int hksd_fn_deploy(hksd *d, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **record,
                   hks_error *err)
{
    if (d->kubernetes)
        return kb_deploy(&d->kube, caller, spec, record, err);
    return fn_deploy(&d->functions, caller, spec, record, err);
}

int hksd_fn_delete(hksd *d, const hksd_caller *caller, const char *id, hks_error *err)
{
    if (d->kubernetes)
        return kb_delete(&d->kube, caller, id, err);
    return fn_delete(&d->functions, caller, id, err);
}

json_t *hksd_fn_get(hksd *d, const char *project, const char *id)
{
    if (d->kubernetes)
        return kb_get(&d->kube, project, id);
    return fn_get(&d->functions, project, id);
}

json_t *hksd_fn_list(hksd *d, const char *project)
{
    if (d->kubernetes)
        return kb_list(&d->kube, project);
    return fn_list(&d->functions, project);
}

json_t *hksd_fn_invocations(hksd *d, const char *project, const char *id, size_t limit)
{
    return fn_invocations(&d->functions, project, id, limit);
}

json_t *hksd_fn_usage(hksd *d, const char *project, const char *id)
{
    return fn_usage(&d->functions, project, id);
}

json_t *hksd_executions(hksd *d, const char *project, size_t limit)
{
    return recent_executions_json(&d->executions_seen, project, limit);
}

bool hksd_fn_log_path(hksd *d, const char *project, const char *id, char *path, size_t size)
{
    /* the kubernetes backend's functions log in their pods, not here (docs/api.md) */
    if (d->kubernetes)
        return false;
    return fn_log_path_of(&d->functions, project, id, path, size);
}

unsigned long hksd_fn_log_watch(hksd *d, const char *id, void (*wake)(void *ctx), void *ctx)
{
    return fn_log_watch(&d->functions, id, wake, ctx);
}

void hksd_fn_log_unwatch(hksd *d, unsigned long watch)
{
    fn_log_unwatch(&d->functions, watch);
}

void hksd_fn_acquire(hksd *d, const char *project, const char *id, hksd_lease_cb cb, void *ctx)
{
    if (d->kubernetes)
        kb_acquire(&d->kube, project, id, cb, ctx);
    else
        fn_acquire(&d->functions, project, id, cb, ctx);
}

void hksd_fn_release(hksd *d, hksd_lease *lease, const hksd_fn_outcome *outcome)
{
    if (lease->url[0]) { /* no instance here: Knative scales the function */
        if (!outcome->not_sent)
            fn_count_invocation(&d->functions, outcome);
        lease->url[0] = '\0';
        return;
    }
    fn_release(&d->functions, lease, outcome);
}

/* ---- CronJobs ---- */

int hksd_cronjob_create(hksd *d, const hksd_caller *caller, json_t *body, json_t **view,
                        char field[64], hks_error *err)
{
    return cj_create(&d->cronjobs, caller, body, view, field, err);
}

int hksd_cronjob_update(hksd *d, const hksd_caller *caller, const char *ref, json_t *changes,
                        json_t **view, char field[64], hks_error *err)
{
    return cj_update(&d->cronjobs, caller, ref, changes, view, field, err);
}

int hksd_cronjob_delete(hksd *d, const hksd_caller *caller, const char *ref, hks_error *err)
{
    return cj_delete(&d->cronjobs, caller, ref, err);
}

json_t *hksd_cronjob_get(hksd *d, const char *project, const char *ref)
{
    return cj_get(&d->cronjobs, project, ref);
}

json_t *hksd_cronjob_list(hksd *d, const char *project)
{
    return cj_list(&d->cronjobs, project);
}

json_t *hksd_cronjob_runs(hksd *d, const char *project, const char *ref, size_t log_bytes)
{
    return cj_runs(&d->cronjobs, project, ref, log_bytes);
}

int hksd_cronjob_trigger(hksd *d, const hksd_caller *caller, const char *ref, json_t **run,
                         hks_error *err)
{
    return cj_trigger(&d->cronjobs, caller, ref, run, err);
}

void hksd_set_invoker(hksd *d, hksd_invoker invoker, void *ctx)
{
    cj_set_invoker(&d->cronjobs, invoker, ctx);
}
