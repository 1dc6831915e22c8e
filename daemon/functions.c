/* Deployed functions: deploy, delete, the public view, the reaper of expired functions and the
 * reconciliation of the state directory when hksd starts (after a crash too). A function is a
 * record in the store (the truth that survives restarts), a directory <state_dir>/fn/<id> with
 * its code and logs, and, while it is invoked, instances (instances.c). */
#include "iso_time.h"
#include "functions.h"

#include "../builder/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TICK_MS 250

static const double inv_bounds_s[12] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   10};

static void log_event(const char *level, const char *msg, const char *fn_id, const char *detail)
{
    json_t *line = json_pack("{s:s,s:s,s:s,s:s}", "level", level, "msg", msg, "function",
                             fn_id ? fn_id : "", "detail", detail ? detail : "");
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

static long long unix_now(void)
{
    return (long long)time(NULL);
}

/* ---- the sandbox limits in a record ---- */

static const struct {
    const char *name;
    size_t offset;
} limit_fields[] = {
    {"memory_bytes", offsetof(sbx_limits, memory_bytes)},
    {"pids", offsetof(sbx_limits, pids)},
    {"cpu_millis", offsetof(sbx_limits, cpu_millis)},
    {"wall_ms", offsetof(sbx_limits, wall_ms)},
    {"cpu_ms", offsetof(sbx_limits, cpu_ms)},
    {"tmpfs_bytes", offsetof(sbx_limits, tmpfs_bytes)},
    {"shm_bytes", offsetof(sbx_limits, shm_bytes)},
    {"fsize_bytes", offsetof(sbx_limits, fsize_bytes)},
    {"nofile", offsetof(sbx_limits, nofile)},
    {"stdout_max", offsetof(sbx_limits, stdout_max)},
    {"stderr_max", offsetof(sbx_limits, stderr_max)},
};

static json_t *sandbox_limits_json(const sbx_limits *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < HKS_ARRAY_LEN(limit_fields); i++) {
        uint64_t v;
        memcpy(&v, (const char *)l + limit_fields[i].offset, sizeof(v));
        json_object_set_new(o, limit_fields[i].name, json_integer((json_int_t)v));
    }
    return o;
}

static int sandbox_limits_from(json_t *o, sbx_limits *l, hks_error *err)
{
    sbx_limits_default(l);
    for (size_t i = 0; i < HKS_ARRAY_LEN(limit_fields); i++) {
        json_t *v = json_object_get(o, limit_fields[i].name);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return hks_fail(err, EINVAL, "sandbox_limits.%s is missing or not positive",
                            limit_fields[i].name);
        uint64_t value = (uint64_t)json_integer_value(v);
        memcpy((char *)l + limit_fields[i].offset, &value, sizeof(value));
    }
    return 0;
}

/* ---- functions in memory ---- */

static void function_free(function *fn)
{
    if (fn->env) {
        for (char **e = fn->env; *e; e++)
            free(*e);
        free(fn->env);
    }
    json_decref(fn->record);
    fn_recent_free(fn->recent);
    if (fn->log_fd >= 0)
        close(fn->log_fd);
    pthread_mutex_destroy(&fn->log_lock);
    free(fn);
}

void fn_unref(function *fn)
{
    if (--fn->refs == 0)
        function_free(fn);
}

static unsigned record_uint(json_t *record, const char *key, unsigned fallback)
{
    json_t *v = json_object_get(record, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (unsigned)json_integer_value(v)
                                                            : fallback;
}

/* A function from its record (steals nothing: the record is kept with a new reference). */
static function *function_from_record(fn_manager *fm, json_t *record, hks_error *err)
{
    function *fn = calloc(1, sizeof(*fn));
    if (!fn) {
        hks_fail(err, ENOMEM, "function");
        return NULL;
    }
    fn->fm = fm;
    fn->log_fd = -1;
    pthread_mutex_init(&fn->log_lock, NULL);
    fn->record = json_incref(record);
    snprintf(fn->id, sizeof(fn->id), "%s", json_string_value(json_object_get(record, "id")));
    snprintf(fn->project, sizeof(fn->project), "%s",
             json_string_value(json_object_get(record, "project")));
    snprintf(fn->runtime, sizeof(fn->runtime), "%s",
             json_string_value(json_object_get(record, "runtime")));
    const char *owner = json_string_value(json_object_get(record, "owner"));
    const char *name = json_string_value(json_object_get(record, "name"));
    const char *sha = json_string_value(json_object_get(record, "code_sha256"));
    snprintf(fn->owner, sizeof(fn->owner), "%s", owner ? owner : "");
    snprintf(fn->name, sizeof(fn->name), "%s", name ? name : "fn");
    snprintf(fn->code_sha256, sizeof(fn->code_sha256), "%s", sha ? sha : "");
    fn->created_at = json_integer_value(json_object_get(record, "created_at"));
    fn->expires_at = json_integer_value(json_object_get(record, "expires_at"));
    fn->min_scale = record_uint(record, "min_scale", 0);
    fn->max_scale = record_uint(record, "max_scale", 1);
    fn->concurrency = record_uint(record, "concurrency", 1);
    if (fn->max_scale == 0)
        fn->max_scale = 1;
    if (fn->concurrency == 0)
        fn->concurrency = 1;
    snprintf(fn->dir, sizeof(fn->dir), "%.4000s/%s", fm->fn_root, fn->id);
    snprintf(fn->code_dir, sizeof(fn->code_dir), "%s/code", fn->dir);
    snprintf(fn->log_path, sizeof(fn->log_path), "%s/logs.ndjson", fn->dir);
    json_t *env = json_object_get(record, "env");
    fn->env = calloc(json_object_size(env) + 1, sizeof(char *));
    fn->recent = fn_recent_new();
    if (!fn->env || !fn->recent || !rt_runtime_find(fn->runtime) ||
        sandbox_limits_from(json_object_get(record, "sandbox_limits"), &fn->limits, err) < 0) {
        if (!err->msg[0])
            hks_fail(err, EINVAL, "function %s: unknown runtime or out of memory", fn->id);
        function_free(fn);
        return NULL;
    }
    const char *key;
    json_t *value;
    size_t n = 0;
    json_object_foreach(env, key, value)
    {
        if (json_is_string(value) &&
            asprintf(&fn->env[n], "%s=%s", key, json_string_value(value)) >= 0)
            n++;
    }
    fn->refs = 1; /* the list's */
    return fn;
}

static function *find_function(fn_manager *fm, const char *project, const char *id)
{
    for (function *f = fm->functions; f; f = f->next) {
        if (strcmp(f->id, id) == 0 && (!project || strcmp(f->project, project) == 0) && !f->removed)
            return f;
    }
    return NULL;
}

/* The public view (fm->lock held). */
static json_t *public_view(const function *fn)
{
    json_t *v = json_deep_copy(fn->record);
    json_object_del(v, "sandbox_limits");
    char created[32], expires[32], last[40] = "";
    hksd_iso8601(fn->created_at, created);
    hksd_iso8601(fn->expires_at, expires);
    if (fn->last_invocation_ms) {
        hksd_iso8601(fn->last_invocation_ms / 1000, last);
        snprintf(last + 19, sizeof(last) - 19, ".%03lldZ", fn->last_invocation_ms % 1000);
    }
    unsigned running = 0, ready = 0, busy = 0, starting = 0;
    for (const fn_instance *i = fn->instances; i; i = i->next) {
        if (i->ended)
            continue;
        running++;
        ready += i->state == INST_READY;
        starting += i->state == INST_STARTING;
        busy += i->in_flight > 0;
    }
    json_object_set_new(v, "status", json_string(fn->removed ? "deleting" : "ready"));
    json_object_set_new(v, "created_at", json_string(created));
    json_object_set_new(v, "expires_at", json_string(expires));
    json_object_set_new(v, "instances",
                        json_pack("{s:I,s:I,s:I,s:I}", "running", (json_int_t)running, "ready",
                                  (json_int_t)ready, "starting", (json_int_t)starting, "busy",
                                  (json_int_t)busy));
    json_object_set_new(v, "invocations", json_integer((json_int_t)fn->invocations));
    json_object_set_new(v, "errors", json_integer((json_int_t)fn->errors));
    json_object_set_new(v, "timeouts", json_integer((json_int_t)fn->timeouts));
    json_object_set_new(v, "cold_starts", json_integer((json_int_t)fn->cold_starts));
    json_object_set_new(v, "waiting", json_integer((json_int_t)fn->n_waiters));
    json_object_set_new(v, "last_invocation_at", last[0] ? json_string(last) : json_null());
    json_object_set_new(v, "duration_ms", fn_recent_durations(fn->recent));
    json_object_set_new(v, "resources",
                        json_pack("{s:I,s:I}", "peak_memory_bytes",
                                  (json_int_t)fn->peak_memory_bytes, "cpu_ms_ended_instances",
                                  (json_int_t)fn->cpu_ms_ended));
    return v;
}

int fn_template_get(fn_manager *fm, const char *project, const char *id, fn_template *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&fm->lock);
    const function *fn = find_function(fm, project, id);
    size_t n_env = 0;
    for (char **e = fn ? fn->env : NULL; e && *e; e++)
        n_env++;
    out->env = fn ? calloc(n_env + 1, sizeof(char *)) : NULL;
    bool copied = out->env != NULL;
    for (size_t i = 0; copied && i < n_env; i++)
        copied = (out->env[i] = strdup(fn->env[i])) != NULL;
    if (copied) {
        snprintf(out->runtime, sizeof(out->runtime), "%s", fn->runtime);
        snprintf(out->code_dir, sizeof(out->code_dir), "%s", fn->code_dir);
        out->limits = fn->limits;
    }
    pthread_mutex_unlock(&fm->lock);
    if (!copied) {
        fn_template_release(out);
        return -1;
    }
    return 0;
}

void fn_template_release(fn_template *t)
{
    for (char **e = t->env; e && *e; e++)
        free(*e);
    free(t->env);
    t->env = NULL;
}

/* ---- removal (delete, reap) ---- */

/* Take fn out of service (fm->lock held): no more leases, its instances stopped, its waiters
 * told. Its files go in remove_files, without the lock. */
static void retire(fn_manager *fm, function *fn, fn_callback **owed)
{
    fn->removed = true;
    for (function **p = &fm->functions; *p; p = &(*p)->next) {
        if (*p == fn) {
            *p = fn->next;
            break;
        }
    }
    fm->n_functions--;
    fn_fail_waiters(fn, HKSD_FAIL_NOT_FOUND, "the function was deleted", owed);
    for (fn_instance *i = fn->instances; i; i = i->next)
        fn_instance_stop(i, false);
}

static void audit_removal(fn_manager *fm, const function *fn, const hksd_caller *caller,
                          const char *action, const char *reason)
{
    json_t *record = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "request_id",
                               caller && caller->request_id ? caller->request_id : "", "sub",
                               caller && caller->sub ? caller->sub : "hksd", "project", fn->project,
                               "action", action, "function_id", fn->id, "runtime", fn->runtime,
                               "code_sha256", fn->code_sha256, "result", reason);
    hks_error err = {0};
    if (record && hksd_audit(fm->d, record, &err) < 0)
        log_event("error", "audit", fn->id, err.msg);
    json_decref(record);
}

static void remove_files(fn_manager *fm, function *fn)
{
    hks_error err = {0};
    if (hksd_function_store_remove(&fm->store, fn->id, &err) < 0 && err.errnum != ENOENT)
        log_event("error", "remove function record", fn->id, err.msg);
    pthread_mutex_lock(&fn->log_lock);
    if (fn->log_fd >= 0)
        close(fn->log_fd);
    fn->log_fd = -1;
    pthread_mutex_unlock(&fn->log_lock);
    err = (hks_error){0};
    if (rt_remove_tree(fn->dir, &err) < 0)
        log_event("error", "remove function directory", fn->id, err.msg);
    fn_log_wake_watchers(fm, fn->id);
}

/* ---- the manager thread: launches, idle instances, waiters, the reaper ---- */

/* A usage sample every RECENT_SAMPLE_MS (fm->lock held). */
static void sample_usage(function *fn, long long now_ms)
{
    if (!fn_recent_sample_due(fn->recent, now_ms))
        return;
    recent_sample s = {.ts_ms = now_ms,
                       .waiting = fn->n_waiters,
                       .invocations = fn->invocations,
                       .errors = fn->errors,
                       .peak_memory_bytes = fn->peak_memory_bytes,
                       .cpu_ms = fn->cpu_ms_ended};
    for (const fn_instance *i = fn->instances; i; i = i->next) {
        if (i->ended)
            continue;
        s.running++;
        s.busy += i->in_flight > 0;
    }
    fn_recent_add_sample(fn->recent, &s);
}

static void *manager_main(void *arg)
{
    fn_manager *fm = arg;
    pthread_mutex_lock(&fm->lock);
    while (!fm->stopping) {
        fn_launch_pending(fm);
        fn_callback *owed = NULL;
        function *expired = NULL;
        long long now = unix_now();
        uint64_t now_us = hks_now_us();
        for (function *fn = fm->functions, *next; fn; fn = next) {
            next = fn->next;
            if (fn->expires_at <= now) {
                retire(fm, fn, &owed);
                fn->next = expired;
                expired = fn;
                continue;
            }
            fn_instances_tick(fn, now_us, &owed);
            sample_usage(fn, recent_now_ms());
        }
        fn_launch_pending(fm);
        pthread_mutex_unlock(&fm->lock);
        fn_callbacks_run(owed);
        while (expired) {
            function *fn = expired;
            expired = fn->next;
            remove_files(fm, fn);
            audit_removal(fm, fn, NULL, "function.reap", "expired");
            log_event("info", "function reaped", fn->id, "expired");
            atomic_fetch_add(&fm->reaped_total, 1);
            pthread_mutex_lock(&fm->lock);
            fn_unref(fn);
            pthread_mutex_unlock(&fm->lock);
        }
        pthread_mutex_lock(&fm->lock);
        if (fm->launches || fm->stopping)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&fm->changed, &fm->lock, &until);
    }
    fn_launch_pending(fm); /* each one refused now: stopping */
    pthread_mutex_unlock(&fm->lock);
    return NULL;
}

/* ---- start: reconcile the state directory ---- */

static int make_dir(const char *path, mode_t mode, hks_error *err)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", path);
    return 0;
}

/* Directories under fn/ that no record claims: left by a crash between writing code and the
 * record, or between removing the record and the code. */
static void remove_orphans(fn_manager *fm, json_t *records)
{
    DIR *dir = opendir(fm->fn_root);
    if (!dir)
        return;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        bool claimed = false;
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r)
        {
            claimed =
                claimed || strcmp(json_string_value(json_object_get(r, "id")), e->d_name) == 0;
        }
        if (claimed)
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", fm->fn_root, e->d_name);
        hks_error err = {0};
        log_event("warn", "orphan function directory removed", e->d_name, path);
        rt_remove_tree(path, &err);
    }
    closedir(dir);
}

static void reconcile(fn_manager *fm, json_t *records)
{
    long long now = unix_now();
    size_t i;
    json_t *record;
    json_array_foreach(records, i, record)
    {
        hks_error err = {0};
        function *fn = function_from_record(fm, record, &err);
        if (!fn) {
            log_event("error", "function record not restored",
                      json_string_value(json_object_get(record, "id")), err.msg);
            continue;
        }
        struct stat st;
        const char *reason = fn->expires_at <= now         ? "expired while hksd was down"
                             : stat(fn->code_dir, &st) < 0 ? "its code directory is missing"
                                                           : NULL;
        if (reason) {
            fn->removed = true;
            remove_files(fm, fn);
            audit_removal(fm, fn, NULL, "function.reap", reason);
            log_event("info", "function reaped", fn->id, reason);
            atomic_fetch_add(&fm->reaped_total, 1);
            fn_unref(fn);
            continue;
        }
        if (fn_log_open(fn, &err) < 0)
            log_event("warn", "function log", fn->id, err.msg);
        fn_log_system(fn, 0, "restored after a restart of hksd");
        fn->next = fm->functions;
        fm->functions = fn;
        fm->n_functions++;
        atomic_fetch_add(&fm->restored_total, 1);
        log_event("info", "function restored", fn->id, fn->name);
    }
}

int fn_manager_start(fn_manager *fm, hksd *d, rt_pool *pool, const hksd_config *cfg, hks_error *err)
{
    memset(fm, 0, sizeof(*fm));
    fm->d = d;
    fm->pool = pool;
    fm->cfg = cfg;
    fm->log_epfd = fm->log_wake = -1;
    pthread_mutex_init(&fm->lock, NULL);
    pthread_cond_init(&fm->changed, NULL);
    pthread_mutex_init(&fm->watch_lock, NULL);
    snprintf(fm->fn_root, sizeof(fm->fn_root), "%.4000s/fn", cfg->state_dir);
    snprintf(fm->sock_root, sizeof(fm->sock_root), "%.4000s/sock", cfg->state_dir);
    if (hksd_function_store_open(&fm->store, cfg->state_dir, err) < 0 ||
        make_dir(fm->fn_root, 0700, err) < 0)
        return -1;
    /* sockets of instances from before are dead: their sandboxes went with the spawner */
    rt_remove_tree(fm->sock_root, err);
    if (make_dir(fm->sock_root, 0700, err) < 0)
        return -1;
    size_t quarantined = 0;
    json_t *records = hksd_function_store_list(&fm->store, &quarantined, err);
    if (!records)
        return -1;
    if (quarantined)
        log_event("warn", "function records quarantined (renamed *.json.corrupt)", "", "");
    remove_orphans(fm, records);
    reconcile(fm, records);
    json_decref(records);
    if (fn_logs_start(fm, err) < 0)
        return -1;
    if (pthread_create(&fm->manager_thread, NULL, manager_main, fm) != 0)
        return hks_fail(err, errno, "start the function manager");
    fm->manager_running = true;
    return 0;
}

void fn_manager_stop(fn_manager *fm)
{
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    fm->stopping = true;
    pthread_cond_broadcast(&fm->changed);
    pthread_mutex_unlock(&fm->lock);
    if (fm->manager_running)
        pthread_join(fm->manager_thread, NULL);
    fm->manager_running = false;
    pthread_mutex_lock(&fm->lock);
    for (function *fn = fm->functions; fn; fn = fn->next) {
        fn_fail_waiters(fn, HKSD_FAIL_UNAVAILABLE, "hksd is stopping", &owed);
        for (fn_instance *i = fn->instances; i; i = i->next)
            fn_instance_stop(i, true);
    }
    /* the functions' shutdown hooks get their grace; then what is left is killed */
    uint64_t kill_at = hks_now_us() + (uint64_t)FN_STOP_GRACE_MS * 1000;
    bool killed = false;
    while (fm->n_instances > 0) {
        if (!killed && hks_now_us() >= kill_at) {
            for (function *fn = fm->functions; fn; fn = fn->next) {
                for (fn_instance *i = fn->instances; i; i = i->next)
                    fn_instance_stop(i, false);
            }
            killed = true;
        } else if (killed && hks_now_us() >= kill_at + 5000000) {
            break; /* the pool's stop kills the rest */
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 50 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&fm->changed, &fm->lock, &until);
    }
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
}

void fn_manager_free(fn_manager *fm)
{
    fn_logs_stop(fm);
    pthread_mutex_lock(&fm->lock);
    while (fm->functions) {
        function *fn = fm->functions;
        fm->functions = fn->next;
        /* instances the pool killed without telling: forget them */
        while (fn->instances) {
            fn_instance *i = fn->instances;
            fn->instances = i->next;
            free(i);
            fn->refs--;
        }
        fn_unref(fn);
    }
    pthread_mutex_unlock(&fm->lock);
    while (fm->watches) {
        fn_watch *w = fm->watches;
        fm->watches = w->next;
        w->wake(w->ctx);
        free(w);
    }
    pthread_mutex_destroy(&fm->watch_lock);
    pthread_cond_destroy(&fm->changed);
    pthread_mutex_destroy(&fm->lock);
}

/* ---- deploy ---- */

static int check_layout(const char *code_dir, const char *runtime, hks_error *err)
{
    char path[PATH_MAX + 64];
    struct stat st;
    if (strcmp(runtime, "python") == 0) {
        snprintf(path, sizeof(path), "%s/function/func.py", code_dir);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            return hks_fail(err, 0,
                            "a python function needs function/func.py (the Knative "
                            "Functions layout); give \"code\" to have it written there");
        return 0;
    }
    snprintf(path, sizeof(path), "%s/index.js", code_dir);
    char manifest[PATH_MAX + 64];
    snprintf(manifest, sizeof(manifest), "%s/package.json", code_dir);
    if ((stat(path, &st) < 0 || !S_ISREG(st.st_mode)) && stat(manifest, &st) < 0)
        return hks_fail(err, 0,
                        "a node function needs index.js (or a package.json naming its "
                        "main file)");
    return 0;
}

void fn_code_digest(const hksd_fn_spec *spec, char hex[65])
{
    if (spec->archive) {
        rt_file whole = {.name = "archive.tar.gz", .data = spec->archive, .len = spec->archive_len};
        hksd_code_digest(&whole, 1, hex);
    } else {
        hksd_code_digest(spec->files, spec->n_files, hex);
    }
}

int fn_write_code(const hksd_fn_spec *spec, const char *code_dir, hks_error *err)
{
    if (mkdir(code_dir, 0755) < 0 || chmod(code_dir, 0755) < 0)
        return hks_fail(err, errno, "create %s", code_dir);
    if (spec->archive) {
        bld_extract_limits limits;
        bld_extract_limits_default(&limits);
        bld_extract_stats stats;
        if (bld_extract_archive(spec->archive, spec->archive_len, code_dir, &limits, &stats, err) <
            0)
            return HKSD_FAIL_INVALID;
    } else if (rt_write_files(code_dir, spec->files, spec->n_files, err) < 0) {
        return HKSD_FAIL_INVALID;
    }
    return check_layout(code_dir, spec->runtime, err) < 0 ? HKSD_FAIL_INVALID : 0;
}

int fn_deploy(fn_manager *fm, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **view,
              hks_error *err)
{
    pthread_mutex_lock(&fm->lock);
    bool full = fm->n_functions >= fm->cfg->max_functions;
    bool stopping = fm->stopping;
    pthread_mutex_unlock(&fm->lock);
    if (stopping) {
        hks_fail(err, 0, "hksd is stopping");
        return HKSD_FAIL_UNAVAILABLE;
    }
    if (full) {
        hks_fail(err, 0, "this host holds as many functions as it may (%u); delete some or retry",
                 fm->cfg->max_functions);
        return HKSD_FAIL_BUSY;
    }
    char id[HKSD_FUNCTION_ID_LEN + 1];
    if (hksd_function_id_new(id, err) < 0)
        return HKSD_FAIL_INTERNAL;
    char dir[PATH_MAX + 32], code_dir[PATH_MAX + 40];
    snprintf(dir, sizeof(dir), "%.4000s/%s", fm->fn_root, id);
    snprintf(code_dir, sizeof(code_dir), "%s/code", dir);
    if (mkdir(dir, 0700) < 0) {
        hks_fail(err, errno, "create %s", dir);
        return hksd_storage_failure(err, HKSD_FAIL_INTERNAL);
    }
    int failure = fn_write_code(spec, code_dir, err);
    if (failure) {
        hks_error ignored;
        rt_remove_tree(dir, &ignored);
        return hksd_storage_failure(err, failure < 0 ? HKSD_FAIL_INTERNAL : failure);
    }
    char sha[65];
    fn_code_digest(spec, sha);
    long long now = unix_now();
    json_t *record = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:O,s:O,s:o,s:I,s:I,s:I}", "id", id, "name",
        spec->name, "project", caller->project, "owner", caller->sub, "runtime", spec->runtime,
        "created_at", (json_int_t)now, "expires_at", (json_int_t)(now + (long long)spec->ttl_s),
        "ttl_seconds", (json_int_t)spec->ttl_s, "code_sha256", sha, "env",
        spec->env ? spec->env : json_object(), "limits", spec->limits_json, "sandbox_limits",
        sandbox_limits_json(&spec->limits), "min_scale", (json_int_t)spec->min_scale, "max_scale",
        (json_int_t)spec->max_scale, "concurrency", (json_int_t)spec->concurrency);
    function *fn = record ? function_from_record(fm, record, err) : NULL;
    if (!fn || hksd_function_store_put(&fm->store, record, err) < 0 || fn_log_open(fn, err) < 0) {
        if (!record)
            hks_fail(err, ENOMEM, "function record");
        json_decref(record);
        hks_error ignored;
        hksd_function_store_remove(&fm->store, id, &ignored);
        rt_remove_tree(dir, &ignored);
        if (fn) {
            pthread_mutex_lock(&fm->lock);
            fn_unref(fn);
            pthread_mutex_unlock(&fm->lock);
        }
        return hksd_storage_failure(err, HKSD_FAIL_INTERNAL);
    }
    json_decref(record);
    fn_log_system(fn, 0, "deployed");
    pthread_mutex_lock(&fm->lock);
    fn->next = fm->functions;
    fm->functions = fn;
    fm->n_functions++;
    fn_callback *owed = NULL;
    fn_instances_tick(fn, hks_now_us(), &owed); /* min_scale instances start now */
    *view = public_view(fn);
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
    atomic_fetch_add(&fm->deployed_total, 1);

    json_t *audit =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:I,s:s}", "request_id", caller->request_id,
                  "sub", caller->sub, "project", caller->project, "action", "function.deploy",
                  "function_id", id, "runtime", spec->runtime, "code_sha256", sha, "limits",
                  spec->limits_json, "ttl_seconds", (json_int_t)spec->ttl_s, "result", "ok");
    hks_error audit_err = {0};
    if (audit && hksd_audit(fm->d, audit, &audit_err) < 0)
        log_event("error", "audit", id, audit_err.msg);
    json_decref(audit);
    return 0;
}

int fn_delete(fn_manager *fm, const hksd_caller *caller, const char *id, hks_error *err)
{
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    function *fn = find_function(fm, caller->project, id);
    if (fn)
        retire(fm, fn, &owed);
    pthread_mutex_unlock(&fm->lock);
    if (!fn) {
        hks_fail(err, 0, "no function %s in project %s", id, caller->project);
        return HKSD_FAIL_NOT_FOUND;
    }
    fn_callbacks_run(owed);
    remove_files(fm, fn);
    audit_removal(fm, fn, caller, "function.delete", "ok");
    atomic_fetch_add(&fm->deleted_total, 1);
    pthread_mutex_lock(&fm->lock);
    fn_unref(fn);
    pthread_mutex_unlock(&fm->lock);
    return 0;
}

json_t *fn_get(fn_manager *fm, const char *project, const char *id)
{
    pthread_mutex_lock(&fm->lock);
    function *fn = find_function(fm, project, id);
    json_t *view = fn ? public_view(fn) : NULL;
    pthread_mutex_unlock(&fm->lock);
    return view;
}

json_t *fn_list(fn_manager *fm, const char *project)
{
    json_t *list = json_array();
    pthread_mutex_lock(&fm->lock);
    for (function *fn = fm->functions; fn; fn = fn->next) {
        if (strcmp(fn->project, project) == 0 && !fn->removed)
            json_array_append_new(list, public_view(fn));
    }
    pthread_mutex_unlock(&fm->lock);
    return json_pack("{s:o}", "functions", list);
}

json_t *fn_invocations(fn_manager *fm, const char *project, const char *id, size_t limit)
{
    pthread_mutex_lock(&fm->lock);
    const function *fn = find_function(fm, project, id);
    json_t *out = fn ? json_pack("{s:s,s:o,s:o}", "function_id", fn->id, "duration_ms",
                                 fn_recent_durations(fn->recent), "invocations",
                                 fn_recent_calls_json(fn->recent, limit))
                     : NULL;
    pthread_mutex_unlock(&fm->lock);
    return out;
}

json_t *fn_usage(fn_manager *fm, const char *project, const char *id)
{
    pthread_mutex_lock(&fm->lock);
    const function *fn = find_function(fm, project, id);
    json_t *out = fn ? json_pack("{s:s,s:i,s:o}", "function_id", fn->id, "interval_ms",
                                 RECENT_SAMPLE_MS, "samples", fn_recent_samples_json(fn->recent))
                     : NULL;
    pthread_mutex_unlock(&fm->lock);
    return out;
}

bool fn_log_path_of(fn_manager *fm, const char *project, const char *id, char *path, size_t size)
{
    pthread_mutex_lock(&fm->lock);
    function *fn = find_function(fm, project, id);
    if (fn)
        snprintf(path, size, "%s", fn->log_path);
    pthread_mutex_unlock(&fm->lock);
    return fn != NULL;
}

unsigned long fn_log_watch(fn_manager *fm, const char *id, void (*wake)(void *), void *ctx)
{
    fn_watch *w = calloc(1, sizeof(*w));
    pthread_mutex_lock(&fm->lock);
    bool alive = find_function(fm, NULL, id) != NULL;
    pthread_mutex_unlock(&fm->lock);
    if (!w || !alive) {
        free(w);
        wake(ctx);
        return 0;
    }
    snprintf(w->fn_id, sizeof(w->fn_id), "%s", id);
    w->wake = wake;
    w->ctx = ctx;
    pthread_mutex_lock(&fm->watch_lock);
    w->id = ++fm->next_watch;
    w->next = fm->watches;
    fm->watches = w;
    unsigned long watch_id = w->id;
    pthread_mutex_unlock(&fm->watch_lock);
    return watch_id;
}

void fn_log_unwatch(fn_manager *fm, unsigned long watch)
{
    pthread_mutex_lock(&fm->watch_lock);
    for (fn_watch **p = &fm->watches; *p; p = &(*p)->next) {
        if ((*p)->id == watch) {
            fn_watch *w = *p;
            *p = w->next;
            free(w);
            break;
        }
    }
    pthread_mutex_unlock(&fm->watch_lock);
}

void fn_count_invocation(fn_manager *fm, const hksd_fn_outcome *o)
{
    int cls = o->timed_out                                    ? 1
              : o->http_status >= 200 && o->http_status < 600 ? o->http_status / 100
                                                              : 0;
    atomic_fetch_add(&fm->invocations_by_class[cls], 1);
    double s = (double)o->duration_us / 1e6;
    for (size_t i = 0; i < HKS_ARRAY_LEN(inv_bounds_s); i++) {
        if (s <= inv_bounds_s[i])
            atomic_fetch_add(&fm->inv_buckets[i], 1);
    }
    atomic_fetch_add(&fm->inv_count, 1);
    double old = atomic_load(&fm->inv_sum_s);
    while (!atomic_compare_exchange_weak(&fm->inv_sum_s, &old, old + s))
        ;
}

void fn_metrics(fn_manager *fm, FILE *f)
{
    pthread_mutex_lock(&fm->lock);
    unsigned functions = fm->n_functions, instances = fm->n_instances;
    pthread_mutex_unlock(&fm->lock);
    fprintf(f,
            "# HELP hks_functions Functions deployed now.\n# TYPE hks_functions gauge\n"
            "hks_functions %u\n"
            "# HELP hks_functions_deployed_total Functions deployed.\n"
            "# TYPE hks_functions_deployed_total counter\nhks_functions_deployed_total %lu\n"
            "# HELP hks_functions_deleted_total Functions deleted by request.\n"
            "# TYPE hks_functions_deleted_total counter\nhks_functions_deleted_total %lu\n"
            "# HELP hks_functions_reaped_total Functions deleted at their expiry.\n"
            "# TYPE hks_functions_reaped_total counter\nhks_functions_reaped_total %lu\n"
            "# HELP hks_function_instances Function instances running now.\n"
            "# TYPE hks_function_instances gauge\nhks_function_instances %u\n"
            "# HELP hks_function_instance_starts_total Instances started for a waiting request "
            "(cold) or ahead of time (warm, min_scale).\n"
            "# TYPE hks_function_instance_starts_total counter\n"
            "hks_function_instance_starts_total{start=\"cold\"} %lu\n"
            "hks_function_instance_starts_total{start=\"warm\"} %lu\n"
            "# HELP hks_function_instance_failures_total Instances that ended before ready.\n"
            "# TYPE hks_function_instance_failures_total counter\n"
            "hks_function_instance_failures_total %lu\n",
            functions, atomic_load(&fm->deployed_total), atomic_load(&fm->deleted_total),
            atomic_load(&fm->reaped_total), instances, atomic_load(&fm->instance_starts_cold),
            atomic_load(&fm->instance_starts_warm), atomic_load(&fm->instance_failures));
    static const char *const classes[6] = {"none", "timeout", "2xx", "3xx", "4xx", "5xx"};
    fputs("# HELP hks_invocations_total Function invocations by the class of their answer.\n"
          "# TYPE hks_invocations_total counter\n",
          f);
    for (int c = 0; c < 6; c++)
        fprintf(f, "hks_invocations_total{status=\"%s\"} %lu\n", classes[c],
                atomic_load(&fm->invocations_by_class[c]));
    fputs("# HELP hks_invocation_duration_seconds Time from the request reaching hksd to the "
          "function's answer.\n# TYPE hks_invocation_duration_seconds histogram\n",
          f);
    for (size_t i = 0; i < HKS_ARRAY_LEN(inv_bounds_s); i++)
        fprintf(f, "hks_invocation_duration_seconds_bucket{le=\"%g\"} %lu\n", inv_bounds_s[i],
                atomic_load(&fm->inv_buckets[i]));
    fprintf(f, "hks_invocation_duration_seconds_bucket{le=\"+Inf\"} %lu\n",
            atomic_load(&fm->inv_count));
    fprintf(f, "hks_invocation_duration_seconds_sum %.6f\n", atomic_load(&fm->inv_sum_s));
    fprintf(f, "hks_invocation_duration_seconds_count %lu\n", atomic_load(&fm->inv_count));
}
