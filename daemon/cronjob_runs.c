/* One run of a CronJob, on a thread of its own: a task runs its command in a one-shot sandbox over
 * its template function's code; a function target is invoked through the edge's invoker. The run's
 * output goes to runs/<no>.log (capped), its record to runs/<no>.json, written when it starts
 * (so that a restart knows it was interrupted) and when it ends; then the CronJob's status and
 * history are updated and the history trimmed to its limits. */
#include "iso_time.h"
#include "cronjobs.h"

#include "functions.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define POLL_MS         200
#define DRAIN_AFTER_END 1000 /* ms of output still read once the sandbox has ended */

typedef struct run_log {
    int fd;
    uint64_t bytes;
    bool truncated;
} run_log;

typedef struct run_outcome {
    cj_run_state state;
    char reason[512];
    int exit_code, signal, http_status; /* -1, 0, 0 when not applicable */
    uint64_t peak_memory_bytes, cpu_ms;
} run_outcome;

static void log_append(run_log *log, const void *data, size_t len)
{
    if (log->fd < 0 || log->truncated)
        return;
    if (log->bytes + len > CJ_LOG_MAX) {
        len = (size_t)(CJ_LOG_MAX - log->bytes);
        log->truncated = true;
    }
    if (len && hks_write_all(log->fd, data, len) == 0)
        log->bytes += len;
    if (log->truncated) {
        static const char note[] = "\n[hksd] output truncated at 256 KiB\n";
        (void)hks_write_all(log->fd, note, sizeof(note) - 1);
    }
}

static void log_text(run_log *log, const char *text)
{
    log_append(log, text, strlen(text));
}

static void fail(run_outcome *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(run_outcome *out, const char *fmt, ...)
{
    out->state = CJ_RUN_FAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

/* ---- the record ---- */

static json_t *run_record(const cronjob *cj, const cj_run *run)
{
    char id[CJ_ID_LEN + 16];
    snprintf(id, sizeof(id), "%s-%u", cj->id, run->no);
    return json_pack("{s:s,s:I,s:s,s:s,s:s,s:o,s:o}", "id", id, "number", (json_int_t)run->no,
                     "cronjob_id", cj->id, "trigger", run->manual ? "manual" : "schedule", "status",
                     "running", "scheduled_at", hksd_iso8601_or_null(run->scheduled_at),
                     "started_at", hksd_iso8601_or_null(run->started_at));
}

json_t *cj_active_views(const cronjob *cj)
{
    json_t *list = json_array();
    for (const cj_run *r = cj->active; r; r = r->next)
        json_array_append_new(list, run_record(cj, r));
    return list;
}

static const char *state_name(cj_run_state state)
{
    return state == CJ_RUN_SUCCEEDED ? "succeeded" : state == CJ_RUN_FAILED ? "failed" : "running";
}

static void save_run(const char *dir, unsigned no, json_t *record)
{
    char runs[PATH_MAX + 8], name[32];
    snprintf(runs, sizeof(runs), "%s/runs", dir);
    snprintf(name, sizeof(name), "%u.json", no);
    cleanup_free char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    hks_error err = {0};
    /* ENOENT: the CronJob was deleted meanwhile, its directory with it */
    if (text && cj_write_atomic(runs, name, text, strlen(text), &err) < 0 && err.errnum != ENOENT)
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"CronJob run record\",\"detail\":\"%s\"}\n",
                err.msg);
}

/* ---- a task ---- */

typedef struct task_end {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ended;
    sbx_result result;
} task_end;

static void on_task_end(void *ctx, long long id, const sbx_result *result)
{
    (void)id;
    task_end *end = ctx;
    pthread_mutex_lock(&end->lock);
    end->result = *result;
    end->result.stdout_data = end->result.stderr_data = NULL; /* direct output: none */
    end->ended = true;
    pthread_cond_broadcast(&end->cond);
    pthread_mutex_unlock(&end->lock);
}

static void free_strings(char ***list)
{
    for (char **s = *list; s && *s; s++)
        free(*s);
    free(*list);
}

/* command + args, NULL-terminated */
static char **task_argv(json_t *task)
{
    json_t *command = json_object_get(task, "command"), *args = json_object_get(task, "args");
    size_t n = json_array_size(command) + json_array_size(args);
    char **argv = calloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; argv && i < json_array_size(command); i++)
        argv[k++] = strdup(json_string_value(json_array_get(command, i)));
    for (size_t i = 0; argv && i < json_array_size(args); i++)
        argv[k++] = strdup(json_string_value(json_array_get(args, i)));
    for (size_t i = 0; argv && i < k; i++) {
        if (!argv[i]) {
            free_strings(&argv);
            return NULL;
        }
    }
    return argv;
}

/* The task's env first (it wins), then the template's variables it does not set. */
static char **task_env(json_t *task, char **template_env)
{
    json_t *env = json_object_get(task, "env");
    size_t n = json_object_size(env);
    for (char **e = template_env; e && *e; e++)
        n++;
    char **out = calloc(n + 1, sizeof(char *));
    size_t k = 0;
    const char *key;
    json_t *value;
    json_object_foreach(env, key, value)
    {
        if (out && asprintf(&out[k], "%s=%s", key, json_string_value(value)) >= 0)
            k++;
    }
    for (char **e = template_env; out && e && *e; e++) {
        size_t name_len = strcspn(*e, "=");
        char name[160];
        snprintf(name, sizeof(name), "%.*s", (int)name_len, *e);
        if (!json_object_get(env, name))
            out[k++] = strdup(*e);
    }
    return out;
}

static void describe_task_end(const sbx_result *r, const cj_run *run, long long timeout_s,
                              run_outcome *out)
{
    out->peak_memory_bytes = r->peak_memory_bytes;
    out->cpu_ms = r->cpu_us / 1000;
    if (r->exited)
        out->exit_code = r->exit_code;
    out->signal = r->signal;
    switch (r->status) {
    case SBX_STATUS_OK:
        out->state = CJ_RUN_SUCCEEDED;
        snprintf(out->reason, sizeof(out->reason), "exit code 0");
        return;
    case SBX_STATUS_TIMEOUT:
        if (r->timeout_reason == SBX_TIMEOUT_CPU)
            fail(out, "used its CPU time limit (%lld s)", timeout_s);
        else
            fail(out, "timed out after %lld s", timeout_s);
        return;
    case SBX_STATUS_OOM:
        fail(out, "killed: out of memory");
        return;
    case SBX_STATUS_OUTPUT_LIMIT:
        fail(out, "killed: output limit");
        return;
    case SBX_STATUS_KILLED:
        fail(out, "%s", run->cancel_reason[0] ? run->cancel_reason : "killed");
        return;
    case SBX_STATUS_INTERNAL_ERROR:
        fail(out, "the sandbox failed: %s", r->message);
        return;
    case SBX_STATUS_ERROR:
        break;
    }
    if (r->exited)
        fail(out, "exit code %d", r->exit_code);
    else
        fail(out, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
}

/* Read the task's stdout and stderr into the log until both end (or, once the sandbox has ended,
 * until they stay quiet); kill the task when the run is cancelled. */
static void pump_output(cj_manager *m, cj_run *run, long long task_id, int out_fd, int err_fd,
                        task_end *end, run_log *log)
{
    struct pollfd fds[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    bool killed = false;
    int quiet_after_end_ms = 0;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        if (!killed && atomic_load(&run->cancel)) {
            rt_serve_stop(m->pool, task_id, false);
            killed = true;
        }
        int n = poll(fds, 2, POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0) {
            pthread_mutex_lock(&end->lock);
            bool ended = end->ended;
            pthread_mutex_unlock(&end->lock);
            if (ended && (quiet_after_end_ms += POLL_MS) >= DRAIN_AFTER_END)
                break;
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[16384];
            ssize_t got = read(fds[i].fd, buf, sizeof(buf));
            if (got > 0)
                log_append(log, buf, (size_t)got);
            else if (got == 0 || (errno != EINTR && errno != EAGAIN))
                fds[i].fd = -1;
        }
    }
}

/* The command in its sandbox, its output into the log, until it ends. */
static void run_sandboxed(cj_manager *m, cj_run *run, const fn_template *tpl, char **argv,
                          char **env, long long timeout_s, run_log *log, run_outcome *out)
{
    sbx_limits limits = tpl->limits;
    limits.wall_ms = limits.cpu_ms = (uint64_t)timeout_s * 1000;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
        fail(out, "could not prepare the task: pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (out_pipe[i] >= 0)
                close(out_pipe[i]);
        }
        return;
    }
    task_end end = {.ended = false};
    pthread_mutex_init(&end.lock, NULL);
    pthread_cond_init(&end.cond, NULL);
    rt_task_request req = {.runtime = tpl->runtime,
                           .code_dir = tpl->code_dir,
                           .argv = argv,
                           .env = env,
                           .limits = &limits,
                           .stdout_fd = out_pipe[1],
                           .stderr_fd = err_pipe[1],
                           .events = {.on_end = on_task_end, .ctx = &end}};
    long long task_id = 0;
    hks_error err = {0};
    int rc = rt_task_start(m->pool, &req, &task_id, &err);
    close(out_pipe[1]); /* the sandbox has its own copies */
    close(err_pipe[1]);
    if (rc == 0) {
        pthread_mutex_lock(&m->lock);
        run->task_id = task_id;
        pthread_mutex_unlock(&m->lock);
        pump_output(m, run, task_id, out_pipe[0], err_pipe[0], &end, log);
        pthread_mutex_lock(&end.lock);
        while (!end.ended)
            pthread_cond_wait(&end.cond, &end.lock);
        pthread_mutex_unlock(&end.lock);
        pthread_mutex_lock(&m->lock);
        run->task_id = 0;
        pthread_mutex_unlock(&m->lock);
        describe_task_end(&end.result, run, timeout_s, out);
    } else {
        fail(out, "the task could not start: %s", err.msg);
    }
    close(out_pipe[0]);
    close(err_pipe[0]);
    pthread_mutex_destroy(&end.lock);
    pthread_cond_destroy(&end.cond);
}

static void run_task(cj_manager *m, cj_run *run, const char *project, json_t *task, run_log *log,
                     run_outcome *out)
{
    const char *template_id = json_string_value(json_object_get(task, "template"));
    fn_template tpl;
    if (fn_template_get(m->functions, project, template_id, &tpl) < 0) {
        fail(out, "the template function %s does not exist (deleted or expired)", template_id);
        return;
    }
    char **argv = task_argv(task);
    char **env = task_env(task, tpl.env);
    if (argv && env)
        run_sandboxed(m, run, &tpl, argv, env,
                      json_integer_value(json_object_get(task, "timeout_seconds")), log, out);
    else
        fail(out, "could not prepare the task: out of memory");
    free_strings(&argv);
    free_strings(&env);
    fn_template_release(&tpl);
}

/* ---- a function target ---- */

static void run_invocation(cj_manager *m, cj_run *run, const char *project, json_t *target,
                           run_log *log, run_outcome *out)
{
    const char *body = json_string_value(json_object_get(target, "body"));
    hksd_invocation inv = {.project = project,
                           .function_id = json_string_value(json_object_get(target, "id")),
                           .method = json_string_value(json_object_get(target, "method")),
                           .path = json_string_value(json_object_get(target, "path")),
                           .headers = json_object_get(target, "headers"),
                           .body = body,
                           .body_len = json_string_length(json_object_get(target, "body")),
                           .cancel = &run->cancel};
    pthread_mutex_lock(&m->invoker_lock);
    hksd_invoker invoker = m->invoker;
    void *ctx = m->invoker_ctx;
    if (invoker)
        m->invoker_calls++;
    pthread_mutex_unlock(&m->invoker_lock);
    if (!invoker) {
        fail(out, "hksd's API server is not running: the function cannot be invoked");
        return;
    }
    hksd_invocation_result res = {0};
    invoker(ctx, &inv, CJ_LOG_MAX, &res);
    pthread_mutex_lock(&m->invoker_lock);
    if (--m->invoker_calls == 0)
        pthread_cond_broadcast(&m->invoker_idle);
    pthread_mutex_unlock(&m->invoker_lock);

    if (res.failure) {
        if (atomic_load(&run->cancel) && run->cancel_reason[0])
            fail(out, "%s", run->cancel_reason);
        else
            fail(out, "%s", res.message[0] ? res.message : "the function gave no answer");
        log_text(log, out->reason);
        log_text(log, "\n");
    } else {
        out->http_status = res.http_status;
        char line[64];
        snprintf(line, sizeof(line), "HTTP %d\n", res.http_status);
        log_text(log, line);
        log_append(log, res.body, res.body_len);
        if (res.body_truncated)
            log->truncated = true;
        if (res.http_status >= 200 && res.http_status < 400) {
            out->state = CJ_RUN_SUCCEEDED;
            snprintf(out->reason, sizeof(out->reason), "HTTP %d", res.http_status);
        } else {
            fail(out, "HTTP %d", res.http_status);
        }
    }
    free(res.body);
}

/* ---- the run's thread ---- */

static void unlink_run(cj_run **list, cj_run *run)
{
    for (cj_run **p = list; *p; p = &(*p)->next) {
        if (*p == run) {
            *p = run->next;
            return;
        }
    }
}

static void remove_run_files(const char *dir, json_int_t no)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/runs/%lld.json", dir, (long long)no);
    unlink(path);
    snprintf(path, sizeof(path), "%s/runs/%lld.log", dir, (long long)no);
    unlink(path);
}

/* Keep the newest keep_succeeded succeeded and keep_failed failed runs (m->lock held). */
static void trim_history(cronjob *cj)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *status = pass == 0 ? "succeeded" : "failed";
        size_t keep = pass == 0 ? cj->spec.keep_succeeded : cj->spec.keep_failed;
        size_t count = 0;
        size_t i;
        json_t *r;
        json_array_foreach(cj->history, i, r)
        {
            count += strcmp(json_string_value(json_object_get(r, "status")), status) == 0;
        }
        for (i = 0; i < json_array_size(cj->history) && count > keep;) {
            r = json_array_get(cj->history, i);
            if (strcmp(json_string_value(json_object_get(r, "status")), status) != 0) {
                i++;
                continue;
            }
            remove_run_files(cj->dir, json_integer_value(json_object_get(r, "number")));
            json_array_remove(cj->history, i);
            count--;
        }
    }
}

typedef struct run_job {
    cj_manager *m;
    cj_run *run;
    char dir[PATH_MAX];
    char project[128];
    json_t *target; /* a copy of the definition's */
    json_t *record;
} run_job;

static void publish(run_job *job, run_outcome *out, const run_log *log)
{
    cj_manager *m = job->m;
    cj_run *run = job->run;
    long long finished = cj_now(m);
    json_t *rec = job->record;
    json_object_set_new(rec, "status", json_string(state_name(out->state)));
    json_object_set_new(rec, "reason", json_string(out->reason));
    json_object_set_new(rec, "finished_at", hksd_iso8601_or_null(finished));
    json_object_set_new(rec, "duration_ms",
                        json_integer((json_int_t)((hks_now_us() - run->started_us) / 1000)));
    json_object_set_new(rec, "exit_code",
                        out->exit_code >= 0 ? json_integer(out->exit_code) : json_null());
    json_object_set_new(rec, "signal", out->signal ? json_integer(out->signal) : json_null());
    json_object_set_new(rec, "http_status",
                        out->http_status ? json_integer(out->http_status) : json_null());
    json_object_set_new(rec, "peak_memory_bytes", json_integer((json_int_t)out->peak_memory_bytes));
    json_object_set_new(rec, "cpu_ms", json_integer((json_int_t)out->cpu_ms));
    json_object_set_new(rec, "log_bytes", json_integer((json_int_t)log->bytes));
    json_object_set_new(rec, "log_truncated", json_boolean(log->truncated));
    save_run(job->dir, run->no, rec);

    pthread_mutex_lock(&m->lock);
    cronjob *cj = run->cj;
    unlink_run(&cj->active, run);
    m->n_active--;
    if (!cj->removed) {
        cj->last_run_at = run->started_at;
        snprintf(cj->last_result, sizeof(cj->last_result), "%s", state_name(out->state));
        json_array_append(cj->history, rec);
        trim_history(cj);
        hks_error err = {0};
        if (cj_save(m, cj, &err) < 0)
            fprintf(stderr, "{\"level\":\"error\",\"msg\":\"CronJob status\",\"detail\":\"%s\"}\n",
                    err.msg);
    }
    atomic_fetch_add(out->state == CJ_RUN_SUCCEEDED ? &m->runs_succeeded : &m->runs_failed, 1);
    run->cj = NULL;
    cj_unref(m, cj);
    run->next = m->finished;
    m->finished = run;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
}

static void *run_main(void *arg)
{
    run_job *job = arg;
    cj_manager *m = job->m;
    cj_run *run = job->run;
    save_run(job->dir, run->no, job->record);

    run_log log = {.fd = -1};
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/runs/%u.log", job->dir, run->no);
    log.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

    run_outcome out = {.state = CJ_RUN_FAILED, .exit_code = -1};
    json_t *task = json_object_get(job->target, "task");
    if (atomic_load(&run->cancel))
        fail(&out, "%s", run->cancel_reason);
    else if (task)
        run_task(m, run, job->project, task, &log, &out);
    else
        run_invocation(m, run, job->project, json_object_get(job->target, "function"), &log, &out);
    publish(job, &out, &log);
    if (log.fd >= 0)
        close(log.fd);
    json_decref(job->target);
    json_decref(job->record);
    free(job);
    return NULL;
}

cj_run *cj_run_start(cj_manager *m, cronjob *cj, long long scheduled_at, bool manual,
                     hks_error *err)
{
    cj_run *run = calloc(1, sizeof(*run));
    run_job *job = calloc(1, sizeof(*job));
    if (!run || !job) {
        free(run);
        free(job);
        hks_fail(err, ENOMEM, "CronJob run");
        return NULL;
    }
    run->cj = cj;
    run->no = cj->next_run_no;
    run->manual = manual;
    run->scheduled_at = scheduled_at;
    run->started_at = cj_now(m);
    run->started_us = hks_now_us();
    atomic_init(&run->cancel, false);
    job->m = m;
    job->run = run;
    snprintf(job->dir, sizeof(job->dir), "%s", cj->dir);
    snprintf(job->project, sizeof(job->project), "%s", cj->project);
    job->target = json_deep_copy(json_object_get(cj->spec.json, "target"));
    job->record = run_record(cj, run);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc =
        job->target && job->record ? pthread_create(&run->thread, &attr, run_main, job) : ENOMEM;
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        json_decref(job->target);
        json_decref(job->record);
        free(job);
        free(run);
        hks_fail(err, rc, "start a thread for a run of CronJob %s", cj->id);
        return NULL;
    }
    cj->next_run_no++;
    cj->refs++;
    run->next = cj->active;
    cj->active = run;
    m->n_active++;
    return run;
}

void cj_run_cancel(cj_manager *m, cj_run *run, const char *reason)
{
    if (atomic_load(&run->cancel))
        return;
    snprintf(run->cancel_reason, sizeof(run->cancel_reason), "%s", reason);
    atomic_store(&run->cancel, true);
    if (run->task_id)
        rt_serve_stop(m->pool, run->task_id, false);
}

void cj_runs_reap(cj_manager *m)
{
    while (m->finished) {
        cj_run *run = m->finished;
        m->finished = run->next;
        pthread_join(run->thread, NULL);
        free(run);
    }
}

/* ---- history on disk ---- */

static int by_number(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "number"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "number"));
    return x < y ? -1 : x > y;
}

json_t *cj_history_load(cronjob *cj, long long now)
{
    json_t *history = json_array();
    char dir_path[PATH_MAX + 8];
    snprintf(dir_path, sizeof(dir_path), "%s/runs", cj->dir);
    cleanup_dir DIR *dir = opendir(dir_path);
    size_t n = 0, cap = 0;
    json_t **records = NULL;
    for (struct dirent *e; dir && (e = readdir(dir));) {
        unsigned long long no = 0;
        char suffix[8] = "";
        if (sscanf(e->d_name, "%llu.%7s", &no, suffix) != 2 || strcmp(suffix, "json") != 0)
            continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%llu.json", dir_path, no);
        hks_error err = {0};
        json_t *r = hksd_json_file_load(path, 1 << 20, false, &err);
        if (!json_is_object(r) || !json_is_integer(json_object_get(r, "number")) ||
            !json_is_string(json_object_get(r, "status"))) {
            json_decref(r);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            json_t **grown = realloc(records, cap * sizeof(json_t *));
            if (!grown) {
                json_decref(r);
                break;
            }
            records = grown;
        }
        records[n++] = r;
    }
    if (n)
        qsort(records, n, sizeof(json_t *), by_number);
    for (size_t i = 0; i < n; i++) {
        json_t *r = records[i];
        json_int_t no = json_integer_value(json_object_get(r, "number"));
        if ((unsigned)no >= cj->next_run_no)
            cj->next_run_no = (unsigned)no + 1;
        if (strcmp(json_string_value(json_object_get(r, "status")), "running") == 0) {
            json_object_set_new(r, "status", json_string("failed"));
            json_object_set_new(r, "reason", json_string("hksd stopped while the run was going"));
            json_object_set_new(r, "finished_at", hksd_iso8601_or_null(now));
            save_run(cj->dir, (unsigned)no, r);
        }
        json_array_append_new(history, r);
    }
    free(records);
    return history;
}

void cj_attach_logs(const char *dir, json_t *runs, size_t log_bytes)
{
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/runs/%lld.log", dir,
                 (long long)json_integer_value(json_object_get(r, "number")));
        cleanup_fd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            json_object_set_new(r, "logs", json_string(""));
            continue;
        }
        size_t size = (size_t)st.st_size;
        size_t want = size < log_bytes ? size : log_bytes;
        cleanup_free char *buf = malloc(want + 1);
        ssize_t got = buf ? pread(fd, buf, want, (off_t)(size - want)) : -1;
        size_t len = 0;
        cleanup_free char *text = got >= 0 ? hks_utf8_copy(buf, (size_t)got, &len) : NULL;
        json_object_set_new(r, "logs", json_stringn(text ? text : "", text ? len : 0));
        json_object_set_new(r, "logs_cut", json_boolean(want < size));
    }
}
