/* CronJobs on the local backend: the definitions and their status on disk, the scheduler thread
 * that starts runs when they are due, and the calls the edge makes (create, update, delete, get,
 * list, runs, trigger).
 *
 * Scheduling follows the Kubernetes CronJob controller, so that a CronJob behaves the same on both
 * backends: when a schedule time (or several) passed since the last one dealt with, only the latest
 * is run, and only if it is not older than starting_deadline_seconds; Forbid skips a run while
 * another is going, Replace cancels the one going; a suspended CronJob starts nothing, and its
 * missed times are dealt with, by the same rules, when it is resumed. */
#include "iso_time.h"
#include "cronjobs.h"

#include "functions.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define TICK_MS         200
#define RECORD_MAX      (512 * 1024)
#define CATCH_UP_WINDOW (7LL * 86400) /* missed times older than this are not looked at */
#define CATCH_UP_MAX    20000         /* schedule times looked at in one catch-up */
#define DELETED_CANCEL  "cancelled: the CronJob was deleted"
#define REPLACED_CANCEL "cancelled: replaced by a newer run (concurrency_policy Replace)"
#define STOPPING_CANCEL "cancelled: hksd stopped"

static void log_event(const char *level, const char *msg, const char *id, const char *detail)
{
    json_t *line = json_pack("{s:s,s:s,s:s,s:s}", "level", level, "msg", msg, "cronjob",
                             id ? id : "", "detail", detail ? detail : "");
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

long long cj_now(const cj_manager *m)
{
    if (m->clock_rate <= 0)
        return (long long)time(NULL);
    double elapsed_s = (double)(hks_now_us() - m->clock_origin_us) / 1e6;
    return m->clock_start + (long long)floor(elapsed_s * m->clock_rate);
}

/* ---- on disk ---- */

int cj_write_atomic(const char *dir, const char *name, const char *text, size_t len, hks_error *err)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    unlink(tmp);
    cleanup_fd int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hks_fail(err, errno, "create %s", tmp);
    if (hks_write_all(fd, text, len) < 0 || hks_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        hks_fail(err, errno, "write %s", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        hks_fail(err, errno, "rename %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    cleanup_fd int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        return hks_fail(err, errno, "fsync directory %s", dir);
    return 0;
}

int cj_save(cj_manager *m, cronjob *cj, hks_error *err)
{
    (void)m;
    json_t *record = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:O}", "id", cj->id,
                               "project", cj->project, "owner", cj->owner, "created_at",
                               (json_int_t)cj->created_at, "updated_at", (json_int_t)cj->updated_at,
                               "last_schedule_at", (json_int_t)cj->last_schedule_at, "last_run_at",
                               (json_int_t)cj->last_run_at, "last_result", cj->last_result,
                               "missed", (json_int_t)cj->missed, "skipped", (json_int_t)cj->skipped,
                               "next_run_no", (json_int_t)cj->next_run_no, "spec", cj->spec.json);
    cleanup_free char *text = record ? json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(record);
    if (!text)
        return hks_fail(err, ENOMEM, "serialize CronJob %s", cj->id);
    return cj_write_atomic(cj->dir, "cronjob.json", text, strlen(text), err);
}

static bool cronjob_id_valid(const char *id)
{
    if (!id || strlen(id) != CJ_ID_LEN || strncmp(id, "cj-", 3) != 0)
        return false;
    for (const char *c = id + 3; *c; c++) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    }
    return true;
}

int cj_new_id(char out[CJ_ID_LEN + 1], hks_error *err)
{
    unsigned char raw[10];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return hks_fail(err, errno, "getrandom for a CronJob id");
    snprintf(out, 4, "cj-");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* ---- in memory ---- */

static void cronjob_free(cronjob *cj)
{
    cj_spec_release(&cj->spec);
    json_decref(cj->history);
    free(cj);
}

void cj_unref(cj_manager *m, cronjob *cj)
{
    if (--cj->refs > 0)
        return;
    /* A deleted CronJob's files go with its last reference: no run thread writes there any more
     * (removing them while a cancelled run was still saving its record could leave them). */
    hks_error err = {0};
    if (cj->removed && rt_remove_tree(cj->dir, &err) < 0)
        log_event("error", "remove CronJob directory", cj->id, err.msg);
    (void)m;
    cronjob_free(cj);
}

static cronjob *find_cronjob(cj_manager *m, const char *project, const char *ref)
{
    for (cronjob *cj = m->cronjobs; cj; cj = cj->next) {
        if (strcmp(cj->project, project) == 0 &&
            (strcmp(cj->id, ref) == 0 || strcmp(cj->name, ref) == 0))
            return cj;
    }
    return NULL;
}

/* The next schedule time after t, or HKSD_CRON_NEVER. */
static long long next_after(const cronjob *cj, long long t)
{
    hks_error err = {0};
    const char *tz = json_string_value(json_object_get(cj->spec.json, "timezone"));
    int64_t next = hksd_cron_next(&cj->spec.schedule, tz, t, &err);
    if (next == HKSD_CRON_ERROR) {
        log_event("error", "CronJob schedule", cj->id, err.msg);
        return HKSD_CRON_NEVER;
    }
    return next;
}

/* The public view (m->lock held). */
static json_t *view(const cronjob *cj)
{
    json_t *v = json_deep_copy(cj->spec.json);
    json_t *active = json_array();
    char run_id[CJ_ID_LEN + 16];
    for (const cj_run *r = cj->active; r; r = r->next) {
        snprintf(run_id, sizeof(run_id), "%s-%u", cj->id, r->no);
        json_array_append_new(active, json_string(run_id));
    }
    bool scheduled = !cj->spec.suspend && cj->next_run_at != HKSD_CRON_NEVER;
    json_object_update(
        v,
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:I}", "id", cj->id,
                  "project", cj->project, "owner", cj->owner, "backend", "local", "created_at",
                  hksd_iso8601_or_null(cj->created_at), "updated_at",
                  hksd_iso8601_or_null(cj->updated_at), "next_run_at",
                  scheduled ? hksd_iso8601_or_null(cj->next_run_at) : json_null(),
                  "last_schedule_at", hksd_iso8601_or_null(cj->last_schedule_at), "last_run_at",
                  hksd_iso8601_or_null(cj->last_run_at), "last_result",
                  cj->last_result[0] ? json_string(cj->last_result) : json_null(), "active_runs",
                  active, "missed_runs", (json_int_t)cj->missed, "skipped_runs",
                  (json_int_t)cj->skipped, "runs_kept", (json_int_t)json_array_size(cj->history)));
    return v;
}

static void audit(cj_manager *m, const hksd_caller *caller, const char *project, const char *action,
                  const char *id, const char *name, const char *result)
{
    json_t *record =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "request_id",
                  caller && caller->request_id ? caller->request_id : "", "sub",
                  caller && caller->sub ? caller->sub : "hksd", "project", project, "action",
                  action, "cronjob_id", id, "cronjob_name", name, "result", result);
    hks_error err = {0};
    if (record && hksd_audit(m->d, record, &err) < 0)
        log_event("error", "audit", id, err.msg);
    json_decref(record);
}

/* ---- the scheduler ---- */

/* Start a run under the concurrency policy (m->lock held); false when it was not started. */
static bool start_under_policy(cj_manager *m, cronjob *cj, long long scheduled_at, bool manual,
                               hks_error *err)
{
    if (cj->active && cj->spec.policy == CJ_FORBID) {
        hks_fail(err, 0, "a run of %s is still going and its concurrency_policy is Forbid",
                 cj->name);
        return false;
    }
    if (cj->spec.policy == CJ_REPLACE) {
        for (cj_run *r = cj->active; r; r = r->next)
            cj_run_cancel(m, r, REPLACED_CANCEL);
    }
    if (m->n_active >= m->cfg->cron_max_active_runs) {
        hks_fail(err, 0,
                 "%u CronJob runs are going on this host, the most allowed "
                 "(cron.max_active_runs)",
                 m->n_active);
        return false;
    }
    return cj_run_start(m, cj, scheduled_at, manual, err) != NULL;
}

/* Deal with the schedule times of cj that have passed (m->lock held). */
static void schedule_due(cj_manager *m, cronjob *cj, long long now)
{
    if (cj->spec.suspend || cj->next_run_at == HKSD_CRON_NEVER || cj->next_run_at > now)
        return;
    long long latest = cj->next_run_at, passed = 1;
    long long from = latest > now - CATCH_UP_WINDOW ? latest : now - CATCH_UP_WINDOW;
    long long next = next_after(cj, from);
    for (int i = 0; i < CATCH_UP_MAX && next != HKSD_CRON_NEVER && next <= now; i++) {
        latest = next;
        passed++;
        next = next_after(cj, next);
    }
    cj->last_schedule_at = latest;
    cj->next_run_at = next;
    cj->missed += (uint64_t)(passed - 1);
    atomic_fetch_add(&m->runs_missed, (unsigned long long)(passed - 1));
    hks_error err = {0};
    if (cj->spec.deadline_s >= 0 && now - latest > cj->spec.deadline_s) {
        cj->missed++;
        atomic_fetch_add(&m->runs_missed, 1);
        char why[128];
        snprintf(why, sizeof(why), "schedule time %lld is %llds old, past the starting deadline",
                 latest, now - latest);
        log_event("warn", "CronJob run missed", cj->id, why);
    } else if (!start_under_policy(m, cj, latest, false, &err)) {
        cj->skipped++;
        atomic_fetch_add(&m->runs_skipped, 1);
        log_event("warn", "CronJob run skipped", cj->id, err.msg);
    }
    err = (hks_error){0};
    if (cj_save(m, cj, &err) < 0)
        log_event("error", "CronJob status", cj->id, err.msg);
}

static void *scheduler_main(void *arg)
{
    cj_manager *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        long long now = cj_now(m);
        for (cronjob *cj = m->cronjobs; cj; cj = cj->next)
            schedule_due(m, cj, now);
        cj_runs_reap(m);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->changed, &m->lock, &until);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- start and stop ---- */

static int make_dir(const char *path, hks_error *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", path);
    return 0;
}

static void restore(cj_manager *m, const char *id)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%.4000s/%s", m->root, id);
    snprintf(path, sizeof(path), "%s/cronjob.json", dir);
    hks_error err = {0};
    json_auto_t *record = hksd_json_file_load(path, RECORD_MAX, false, &err);
    if (!record && err.errnum == ENOENT) {
        /* a delete interrupted after its definition was removed */
        log_event("warn", "CronJob directory without a definition removed", id, dir);
        hks_error rm_err = {0};
        if (rt_remove_tree(dir, &rm_err) < 0)
            log_event("error", "remove CronJob directory", id, rm_err.msg);
        return;
    }
    const char *rec_id = json_string_value(json_object_get(record, "id"));
    const char *project = json_string_value(json_object_get(record, "project"));
    const char *owner = json_string_value(json_object_get(record, "owner"));
    char field[64];
    cj_spec spec = {0};
    if (!record || !rec_id || strcmp(rec_id, id) != 0 || !project || !owner ||
        cj_spec_parse(json_object_get(record, "spec"), NULL, UINT_MAX, &spec, field, &err) < 0) {
        log_event("error", "CronJob not restored", id, err.msg[0] ? err.msg : "malformed record");
        return;
    }
    cronjob *cj = calloc(1, sizeof(*cj));
    if (!cj) {
        cj_spec_release(&spec);
        return;
    }
    snprintf(cj->id, sizeof(cj->id), "%s", id);
    snprintf(cj->name, sizeof(cj->name), "%s",
             json_string_value(json_object_get(spec.json, "name")));
    snprintf(cj->project, sizeof(cj->project), "%s", project);
    snprintf(cj->owner, sizeof(cj->owner), "%s", owner);
    snprintf(cj->dir, sizeof(cj->dir), "%s", dir);
    const char *last_result = json_string_value(json_object_get(record, "last_result"));
    snprintf(cj->last_result, sizeof(cj->last_result), "%s", last_result ? last_result : "");
    cj->spec = spec;
    cj->created_at = json_integer_value(json_object_get(record, "created_at"));
    cj->updated_at = json_integer_value(json_object_get(record, "updated_at"));
    cj->last_schedule_at = json_integer_value(json_object_get(record, "last_schedule_at"));
    cj->last_run_at = json_integer_value(json_object_get(record, "last_run_at"));
    cj->missed = (uint64_t)json_integer_value(json_object_get(record, "missed"));
    cj->skipped = (uint64_t)json_integer_value(json_object_get(record, "skipped"));
    cj->next_run_no = (unsigned)json_integer_value(json_object_get(record, "next_run_no"));
    if (cj->next_run_no == 0)
        cj->next_run_no = 1;
    cj->history = cj_history_load(cj, cj_now(m));
    cj->next_run_at = next_after(cj, cj->last_schedule_at);
    cj->refs = 1;
    cj->next = m->cronjobs;
    m->cronjobs = cj;
    m->n_cronjobs++;
    log_event("info", "CronJob restored", cj->id, cj->name);
}

/* HKSD_CRON_CLOCK="<unix seconds>[x<rate>]": the scheduler's clock starts there and runs rate
 * times as fast as the real one. For tests: a minute's schedule in a second. */
static int clock_from_env(cj_manager *m, hks_error *err)
{
    const char *text = getenv("HKSD_CRON_CLOCK");
    if (!text || !*text)
        return 0;
    long long start = 0;
    double rate = 1;
    char extra = 0;
    int n = sscanf(text, "%lldx%lf%c", &start, &rate, &extra);
    if (n < 1 || n > 2 || start <= 0 || !(rate > 0 && rate <= 3600))
        return hks_fail(err, 0, "HKSD_CRON_CLOCK: '%.64s' is not <unix seconds>[x<rate 0-3600>]",
                        text);
    m->clock_start = start;
    m->clock_rate = rate;
    m->clock_origin_us = hks_now_us();
    log_event("warn", "CronJob clock is simulated (HKSD_CRON_CLOCK)", "", text);
    return 0;
}

int cj_manager_start(cj_manager *m, hksd *d, rt_pool *pool, struct fn_manager *functions,
                     struct kb_backend *kube, const hksd_config *cfg, hks_error *err)
{
    memset(m, 0, sizeof(*m));
    m->d = d;
    m->kube = kube;
    m->pool = pool;
    m->functions = functions;
    m->cfg = cfg;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->changed, NULL);
    pthread_mutex_init(&m->invoker_lock, NULL);
    pthread_cond_init(&m->invoker_idle, NULL);
    if (clock_from_env(m, err) < 0)
        return -1;
    snprintf(m->root, sizeof(m->root), "%.4000s/cronjobs", cfg->state_dir);
    if (make_dir(m->root, err) < 0)
        return -1;
    cleanup_dir DIR *dir = opendir(m->root);
    if (!dir)
        return hks_fail(err, errno, "open %s", m->root);
    for (struct dirent *e; (e = readdir(dir));) {
        /* the cluster's controller runs the kubernetes backend's; local ones stay on disk */
        if (cronjob_id_valid(e->d_name) && kube)
            log_event("warn", "CronJob of the local backend not restored (backend kubernetes)",
                      e->d_name, "");
        else if (cronjob_id_valid(e->d_name))
            restore(m, e->d_name);
    }
    int rc = pthread_create(&m->scheduler, NULL, scheduler_main, m);
    if (rc != 0)
        return hks_fail(err, rc, "start the CronJob scheduler");
    m->started = true;
    return 0;
}

void cj_manager_stop(cj_manager *m)
{
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    for (cronjob *cj = m->cronjobs; cj; cj = cj->next) {
        for (cj_run *r = cj->active; r; r = r->next)
            cj_run_cancel(m, r, STOPPING_CANCEL);
    }
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    if (m->started)
        pthread_join(m->scheduler, NULL);
    m->started = false;
    pthread_mutex_lock(&m->lock);
    while (m->n_active > 0)
        pthread_cond_wait(&m->changed, &m->lock);
    cj_runs_reap(m);
    while (m->cronjobs) {
        cronjob *cj = m->cronjobs;
        m->cronjobs = cj->next;
        cj_unref(m, cj);
    }
    pthread_mutex_unlock(&m->lock);
}

void cj_metrics(cj_manager *m, FILE *out)
{
    pthread_mutex_lock(&m->lock);
    unsigned n = m->n_cronjobs, active = m->n_active;
    pthread_mutex_unlock(&m->lock);
    fprintf(out,
            "# HELP hks_cronjobs CronJobs defined on this host.\n"
            "# TYPE hks_cronjobs gauge\nhks_cronjobs %u\n"
            "# HELP hks_cronjob_runs_active CronJob runs going.\n"
            "# TYPE hks_cronjob_runs_active gauge\nhks_cronjob_runs_active %u\n"
            "# HELP hks_cronjob_runs_total CronJob runs by result (missed: past the starting "
            "deadline; skipped: refused by the concurrency policy or the host limit).\n"
            "# TYPE hks_cronjob_runs_total counter\n"
            "hks_cronjob_runs_total{result=\"succeeded\"} %llu\n"
            "hks_cronjob_runs_total{result=\"failed\"} %llu\n"
            "hks_cronjob_runs_total{result=\"missed\"} %llu\n"
            "hks_cronjob_runs_total{result=\"skipped\"} %llu\n",
            n, active, atomic_load(&m->runs_succeeded), atomic_load(&m->runs_failed),
            atomic_load(&m->runs_missed), atomic_load(&m->runs_skipped));
}

/* ---- the calls of the edge ---- */

/* The target's function exists in the project (a task's template, or the function invoked). */
static int check_target_exists(cj_manager *m, const char *project, const cj_spec *spec,
                               char field[64], hks_error *err)
{
    fn_template tpl;
    if (fn_template_get(m->functions, project, spec->target_function, &tpl) == 0) {
        fn_template_release(&tpl);
        return 0;
    }
    snprintf(field, 64, "%s", spec->is_task ? "target.task.template" : "target.function.id");
    return hks_fail(err, 0, "%s: no function %s in this project", field, spec->target_function);
}

unsigned cj_timeout_max_s(hksd *d)
{
    hksd_policy_limits policy;
    hksd_policy_snapshot(d, &policy);
    return (unsigned)(policy.maxima.wall_ms / 1000);
}

int cj_create(cj_manager *m, const hksd_caller *caller, json_t *body, json_t **out, char field[64],
              hks_error *err)
{
    if (m->kube)
        return cjk_create(m, caller, body, out, field, err);
    cj_spec spec;
    if (cj_spec_parse(body, NULL, cj_timeout_max_s(m->d), &spec, field, err) < 0)
        return HKSD_FAIL_INVALID;
    if (check_target_exists(m, caller->project, &spec, field, err) < 0) {
        cj_spec_release(&spec);
        return HKSD_FAIL_INVALID;
    }
    cronjob *cj = calloc(1, sizeof(*cj));
    if (!cj || cj_new_id(cj->id, err) < 0) {
        if (!cj)
            hks_fail(err, ENOMEM, "CronJob");
        free(cj);
        cj_spec_release(&spec);
        return HKSD_FAIL_INTERNAL;
    }
    cj->spec = spec;
    snprintf(cj->name, sizeof(cj->name), "%s",
             json_string_value(json_object_get(spec.json, "name")));
    snprintf(cj->project, sizeof(cj->project), "%s", caller->project);
    snprintf(cj->owner, sizeof(cj->owner), "%s", caller->sub ? caller->sub : "");
    snprintf(cj->dir, sizeof(cj->dir), "%.4000s/%s", m->root, cj->id);
    cj->history = json_array();
    cj->next_run_no = 1;
    cj->refs = 1;

    pthread_mutex_lock(&m->lock);
    int failure = 0;
    char runs[PATH_MAX + 8];
    snprintf(runs, sizeof(runs), "%s/runs", cj->dir);
    if (m->stopping) {
        failure = HKSD_FAIL_UNAVAILABLE;
        hks_fail(err, 0, "hksd is stopping");
    } else if (find_cronjob(m, cj->project, cj->name)) {
        failure = HKSD_FAIL_CONFLICT;
        snprintf(field, 64, "name");
        hks_fail(err, 0, "a CronJob named %s already exists in this project", cj->name);
    } else if (m->n_cronjobs >= m->cfg->cron_max_cronjobs) {
        failure = HKSD_FAIL_BUSY;
        hks_fail(err, 0, "this host has %u CronJobs, the most allowed (cron.max_cronjobs)",
                 m->n_cronjobs);
    } else if (make_dir(cj->dir, err) < 0 || make_dir(runs, err) < 0) {
        failure = hksd_storage_failure(err, HKSD_FAIL_INTERNAL);
    } else {
        cj->created_at = cj->updated_at = cj->last_schedule_at = cj_now(m);
        cj->next_run_at = next_after(cj, cj->last_schedule_at);
        if (cj_save(m, cj, err) < 0) {
            failure = hksd_storage_failure(err, HKSD_FAIL_INTERNAL);
            hks_error ignored;
            rt_remove_tree(cj->dir, &ignored);
        }
    }
    if (failure) {
        pthread_mutex_unlock(&m->lock);
        cronjob_free(cj);
        return failure;
    }
    cj->next = m->cronjobs;
    m->cronjobs = cj;
    m->n_cronjobs++;
    *out = view(cj);
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s", cj->id);
    snprintf(name, sizeof(name), "%s", cj->name);
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    audit(m, caller, caller->project, "cronjob.create", id, name, "ok");
    return 0;
}

int cj_update(cj_manager *m, const hksd_caller *caller, const char *ref, json_t *changes,
              json_t **out, char field[64], hks_error *err)
{
    if (m->kube)
        return cjk_update(m, caller, ref, changes, out, field, err);
    pthread_mutex_lock(&m->lock);
    cronjob *cj = find_cronjob(m, caller->project, ref);
    json_t *base = cj ? json_deep_copy(cj->spec.json) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (!base)
        return hks_fail(err, 0, "no such CronJob"), HKSD_FAIL_NOT_FOUND;
    cj_spec spec;
    int rc = cj_spec_parse(changes, base, cj_timeout_max_s(m->d), &spec, field, err);
    json_decref(base);
    if (rc < 0)
        return HKSD_FAIL_INVALID;
    if (check_target_exists(m, caller->project, &spec, field, err) < 0) {
        cj_spec_release(&spec);
        return HKSD_FAIL_INVALID;
    }
    pthread_mutex_lock(&m->lock);
    cj = find_cronjob(m, caller->project, ref);
    if (!cj) {
        pthread_mutex_unlock(&m->lock);
        cj_spec_release(&spec);
        return hks_fail(err, 0, "no such CronJob"), HKSD_FAIL_NOT_FOUND;
    }
    bool when_changed = !json_equal(json_object_get(spec.json, "schedule"),
                                    json_object_get(cj->spec.json, "schedule")) ||
                        !json_equal(json_object_get(spec.json, "timezone"),
                                    json_object_get(cj->spec.json, "timezone"));
    cj_spec old = cj->spec;
    cj->spec = spec;
    cj->updated_at = cj_now(m);
    /* A new schedule starts from now: times of the old one are not caught up with. */
    if (when_changed)
        cj->last_schedule_at = cj->updated_at;
    cj->next_run_at = next_after(cj, cj->last_schedule_at);
    int failure = 0;
    if (cj_save(m, cj, err) < 0) {
        cj->spec = old;
        cj->next_run_at = next_after(cj, cj->last_schedule_at);
        old = spec;
        failure = HKSD_FAIL_INTERNAL;
    } else {
        *out = view(cj);
    }
    cj_spec_release(&old);
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s", cj->id);
    snprintf(name, sizeof(name), "%s", cj->name);
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    if (!failure)
        audit(m, caller, caller->project,
              json_object_get(changes, "suspend") && json_object_size(changes) == 1
                  ? (json_is_true(json_object_get(changes, "suspend")) ? "cronjob.suspend"
                                                                       : "cronjob.resume")
                  : "cronjob.update",
              id, name, "ok");
    return failure;
}

int cj_delete(cj_manager *m, const hksd_caller *caller, const char *ref, hks_error *err)
{
    if (m->kube)
        return cjk_delete(m, caller, ref, err);
    pthread_mutex_lock(&m->lock);
    cronjob *cj = find_cronjob(m, caller->project, ref);
    if (!cj) {
        pthread_mutex_unlock(&m->lock);
        return hks_fail(err, 0, "no such CronJob"), HKSD_FAIL_NOT_FOUND;
    }
    for (cronjob **p = &m->cronjobs; *p; p = &(*p)->next) {
        if (*p == cj) {
            *p = cj->next;
            break;
        }
    }
    m->n_cronjobs--;
    cj->removed = true;
    for (cj_run *r = cj->active; r; r = r->next)
        cj_run_cancel(m, r, DELETED_CANCEL);
    /* the definition goes first: a crash before the rest is removed leaves no CronJob to restore
     * (restore removes a directory without one) */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/cronjob.json", cj->dir);
    if (unlink(path) < 0 && errno != ENOENT)
        log_event("error", "remove CronJob definition", cj->id, strerror(errno));
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s", cj->id);
    snprintf(name, sizeof(name), "%s", cj->name);
    cj_unref(m, cj); /* the list's; runs going hold theirs, the last one removes the files */
    pthread_mutex_unlock(&m->lock);
    audit(m, caller, caller->project, "cronjob.delete", id, name, "ok");
    return 0;
}

json_t *cj_get(cj_manager *m, const char *project, const char *ref)
{
    if (m->kube)
        return cjk_get(m, project, ref);
    pthread_mutex_lock(&m->lock);
    cronjob *cj = find_cronjob(m, project, ref);
    json_t *v = cj ? view(cj) : NULL;
    pthread_mutex_unlock(&m->lock);
    return v;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

json_t *cj_list(cj_manager *m, const char *project)
{
    if (m->kube)
        return cjk_list(m, project);
    pthread_mutex_lock(&m->lock);
    size_t n = 0;
    for (cronjob *cj = m->cronjobs; cj; cj = cj->next)
        n += strcmp(cj->project, project) == 0;
    json_t **views = calloc(n + 1, sizeof(json_t *));
    size_t k = 0;
    for (cronjob *cj = m->cronjobs; views && cj; cj = cj->next) {
        if (strcmp(cj->project, project) == 0)
            views[k++] = view(cj);
    }
    pthread_mutex_unlock(&m->lock);
    if (k)
        qsort(views, k, sizeof(json_t *), by_name);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(list, views[i]);
    free(views);
    return json_pack("{s:o}", "cronjobs", list);
}

json_t *cj_runs(cj_manager *m, const char *project, const char *ref, size_t log_bytes)
{
    if (m->kube)
        return cjk_runs(m, project, ref, log_bytes);
    pthread_mutex_lock(&m->lock);
    cronjob *cj = find_cronjob(m, project, ref);
    if (!cj) {
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    json_t *runs = cj_active_views(cj); /* newest first already */
    for (size_t i = json_array_size(cj->history); i > 0; i--)
        json_array_append_new(runs, json_deep_copy(json_array_get(cj->history, i - 1)));
    char dir[PATH_MAX], id[CJ_ID_LEN + 1];
    snprintf(dir, sizeof(dir), "%s", cj->dir);
    snprintf(id, sizeof(id), "%s", cj->id);
    pthread_mutex_unlock(&m->lock);
    cj_attach_logs(dir, runs, log_bytes);
    return json_pack("{s:s,s:o}", "cronjob_id", id, "runs", runs);
}

int cj_trigger(cj_manager *m, const hksd_caller *caller, const char *ref, json_t **run,
               hks_error *err)
{
    if (m->kube)
        return cjk_trigger(m, caller, ref, run, err);
    pthread_mutex_lock(&m->lock);
    cronjob *cj = find_cronjob(m, caller->project, ref);
    if (!cj) {
        pthread_mutex_unlock(&m->lock);
        return hks_fail(err, 0, "no such CronJob"), HKSD_FAIL_NOT_FOUND;
    }
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        return hks_fail(err, 0, "hksd is stopping"), HKSD_FAIL_UNAVAILABLE;
    }
    long long now = cj_now(m);
    bool forbidden = cj->active && cj->spec.policy == CJ_FORBID;
    bool started = !forbidden && start_under_policy(m, cj, now, true, err);
    if (forbidden)
        hks_fail(err, 0, "a run of %s is still going and its concurrency_policy is Forbid",
                 cj->name);
    json_t *views = started ? cj_active_views(cj) : NULL;
    *run = views ? json_incref(json_array_get(views, 0)) : NULL;
    json_decref(views);
    char id[CJ_ID_LEN + 1], name[CJ_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s", cj->id);
    snprintf(name, sizeof(name), "%s", cj->name);
    pthread_mutex_unlock(&m->lock);
    audit(m, caller, caller->project, "cronjob.trigger", id, name,
          started     ? "ok"
          : forbidden ? "forbidden"
                      : "refused");
    if (!started)
        return forbidden ? HKSD_FAIL_CONFLICT : HKSD_FAIL_BUSY;
    return 0;
}

void cj_set_invoker(cj_manager *m, hksd_invoker invoker, void *ctx)
{
    pthread_mutex_lock(&m->invoker_lock);
    if (!invoker) {
        m->invoker = NULL; /* no new call from now on */
        while (m->invoker_calls > 0)
            pthread_cond_wait(&m->invoker_idle, &m->invoker_lock);
    }
    m->invoker = invoker;
    m->invoker_ctx = ctx;
    pthread_mutex_unlock(&m->invoker_lock);
}
