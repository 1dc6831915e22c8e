/* A function's instances: started on demand or kept warm by min_scale, each serving up to
 * `concurrency` requests at once, scaled out to max_scale while requests wait, stopped when idle
 * and replaced when a request timed out on them. Requests that find no room wait in a bounded
 * queue; the launch of a sandbox (a message to the spawner) happens on the manager thread, never
 * under the manager lock. */
#include "functions.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

unsigned fn_live_instances(const function *fn)
{
    unsigned n = 0;
    for (const fn_instance *i = fn->instances; i; i = i->next)
        n += !i->ended && i->state != INST_STOPPING;
    return n;
}

static void owe(fn_callback **owed, hksd_lease_cb cb, void *ctx, int failure,
                const hksd_lease *lease, const char *message)
{
    fn_callback *c = calloc(1, sizeof(*c));
    if (!c) {
        /* cannot queue it: say it now (the callback must not block, and takes no lock of ours) */
        hksd_lease none = {0};
        cb(ctx, HKSD_FAIL_INTERNAL, &none, "out of memory");
        return;
    }
    c->cb = cb;
    c->ctx = ctx;
    c->failure = failure;
    if (lease)
        c->lease = *lease;
    snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
    c->next = *owed;
    *owed = c;
}

void fn_callbacks_run(fn_callback *owed)
{
    /* in the order they were owed (the list is newest first) */
    fn_callback *ordered = NULL;
    while (owed) {
        fn_callback *next = owed->next;
        owed->next = ordered;
        ordered = owed;
        owed = next;
    }
    while (ordered) {
        fn_callback *next = ordered->next;
        ordered->cb(ordered->ctx, ordered->failure, &ordered->lease, ordered->message);
        free(ordered);
        ordered = next;
    }
}

static void lease_of(fn_instance *inst, bool cold, uint64_t since_us, hksd_lease *lease)
{
    memset(lease, 0, sizeof(*lease));
    snprintf(lease->socket_path, sizeof(lease->socket_path), "%s", inst->socket_path);
    lease->timeout_ms = inst->fn->limits.wall_ms;
    lease->cold = cold;
    lease->waited_us = hks_now_us() - since_us;
    lease->instance = inst;
    inst->in_flight++;
    inst->last_used_us = hks_now_us();
    inst->fn->refs++; /* the lease keeps the function (and, by in_flight, the instance) */
}

/* The ready instance with room that is busiest: load packs onto few instances, so the others go
 * idle and stop. */
static fn_instance *instance_with_room(function *fn)
{
    fn_instance *best = NULL;
    for (fn_instance *i = fn->instances; i; i = i->next) {
        if (i->ended || i->state != INST_READY || i->in_flight >= fn->concurrency)
            continue;
        if (!best || i->in_flight > best->in_flight)
            best = i;
    }
    return best;
}

static unsigned starting_room(const function *fn)
{
    unsigned room = 0;
    for (const fn_instance *i = fn->instances; i; i = i->next)
        room += (!i->ended && i->state == INST_STARTING) ? fn->concurrency : 0;
    return room;
}

void fn_serve_waiters(function *fn, fn_callback **owed)
{
    while (fn->waiters) {
        fn_instance *inst = instance_with_room(fn);
        if (!inst)
            break;
        fn_waiter *w = fn->waiters;
        fn->waiters = w->next;
        fn->n_waiters--;
        bool cold = inst->cold_unclaimed;
        inst->cold_unclaimed = false;
        hksd_lease lease;
        lease_of(inst, cold, w->since_us, &lease);
        owe(owed, w->cb, w->ctx, 0, &lease, NULL);
        free(w);
    }
    /* scale out while the waiters outnumber the room being started */
    fn_manager *fm = fn->fm;
    while (fn->n_waiters > starting_room(fn) && fn_live_instances(fn) < fn->max_scale &&
           fm->n_instances < fm->cfg->max_instances && !fn->removed && !fm->stopping) {
        hks_error err = {0};
        if (fn_instance_start(fn, true, &err) < 0) {
            char message[300];
            snprintf(message, sizeof(message), "could not start an instance: %.200s", err.msg);
            fn_fail_waiters(fn, HKSD_FAIL_START, message, owed);
            break;
        }
    }
}

void fn_fail_waiters(function *fn, int failure, const char *message, fn_callback **owed)
{
    while (fn->waiters) {
        fn_waiter *w = fn->waiters;
        fn->waiters = w->next;
        owe(owed, w->cb, w->ctx, failure, NULL, message);
        free(w);
    }
    fn->n_waiters = 0;
}

/* ---- starting and stopping ---- */

static int listen_socket(fn_manager *fm, char *path, size_t size, hks_error *err)
{
    int n = snprintf(path, size, "%s/%lu.sock", fm->sock_root, ++fm->next_socket);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(addr.sun_path))
        return hks_fail(err, ENAMETOOLONG,
                        "instance socket under %s (the state directory's path "
                        "is too long for a Unix socket)",
                        fm->sock_root);
    memcpy(addr.sun_path, path, (size_t)n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hks_fail(err, errno, "socket for %s", path);
    (void)unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 256) < 0) {
        int saved = errno;
        close(fd);
        return hks_fail(err, saved, "listen on %s", path);
    }
    return fd;
}

typedef struct fn_launch {
    struct fn_launch *next;
    fn_instance *inst;
    int listen_fd, out_w, err_w;
} launch;

int fn_instance_start(function *fn, bool for_waiter, hks_error *err)
{
    fn_manager *fm = fn->fm;
    fn_instance *inst = calloc(1, sizeof(*inst));
    launch *l = calloc(1, sizeof(*l));
    if (!inst || !l) {
        free(inst);
        free(l);
        return hks_fail(err, ENOMEM, "instance");
    }
    inst->fn = fn;
    inst->no = ++fn->next_instance_no;
    inst->state = INST_STARTING;
    inst->cold_unclaimed = for_waiter;
    inst->started_us = inst->last_used_us = hks_now_us();
    l->inst = inst;
    l->out_w = l->err_w = -1;
    l->listen_fd = listen_socket(fm, inst->socket_path, sizeof(inst->socket_path), err);
    if (l->listen_fd < 0 || fn_log_attach(fn, inst->no, &l->out_w, &l->err_w, err) < 0) {
        if (l->listen_fd >= 0) {
            close(l->listen_fd);
            unlink(inst->socket_path);
        }
        free(inst);
        free(l);
        fn->last_start_failure_us = hks_now_us();
        return -1;
    }
    inst->next = fn->instances;
    fn->instances = inst;
    fn->refs++; /* until the instance is freed */
    fn->instance_starts++;
    fm->n_instances++;
    if (for_waiter) {
        fn->cold_starts++;
        atomic_fetch_add(&fm->instance_starts_cold, 1);
    } else {
        atomic_fetch_add(&fm->instance_starts_warm, 1);
    }
    l->next = fm->launches;
    fm->launches = l;
    pthread_cond_broadcast(&fm->changed);
    return 0;
}

static void free_instance(fn_instance *inst)
{
    function *fn = inst->fn;
    for (fn_instance **p = &fn->instances; *p; p = &(*p)->next) {
        if (*p == inst) {
            *p = inst->next;
            break;
        }
    }
    unlink(inst->socket_path);
    fn->fm->n_instances--;
    free(inst);
    fn_unref(fn);
}

void fn_instance_stop(fn_instance *inst, bool graceful)
{
    if (inst->ended)
        return;
    if (inst->state != INST_STOPPING) {
        inst->state = INST_STOPPING;
        inst->stop_deadline_us = hks_now_us() + (uint64_t)FN_STOP_GRACE_MS * 1000;
    }
    /* a launch not sent yet: the manager thread sees STOPPING and does not send it */
    if (inst->sbx_id)
        rt_serve_stop(inst->fn->fm->pool, inst->sbx_id, graceful && inst->in_flight == 0);
}

/* ---- events from the pool's dispatcher (no pool lock held) ---- */

static void on_ready(void *ctx, long long instance_id)
{
    (void)instance_id;
    fn_instance *inst = ctx;
    function *fn = inst->fn;
    fn_manager *fm = fn->fm;
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    if (inst->state == INST_STARTING) {
        inst->state = INST_READY;
        inst->last_used_us = hks_now_us();
        char text[96];
        snprintf(text, sizeof(text), "instance ready in %.1f ms",
                 (double)(hks_now_us() - inst->started_us) / 1000.0);
        fn_log_system(fn, inst->no, text);
        fn_serve_waiters(fn, &owed);
    }
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
    fn_log_wake_watchers(fm, fn->id);
}

static void instance_ended(fn_instance *inst, const sbx_result *result, fn_callback **owed)
{
    function *fn = inst->fn;
    bool never_ready = inst->state == INST_STARTING;
    inst->ended = true;
    inst->state = INST_STOPPING;
    if (result->peak_memory_bytes > fn->peak_memory_bytes)
        fn->peak_memory_bytes = result->peak_memory_bytes;
    fn->cpu_ms_ended += result->cpu_us / 1000;
    char text[1200];
    if (result->status == SBX_STATUS_INTERNAL_ERROR && result->message[0])
        snprintf(text, sizeof(text), "instance ended: internal_error: %s", result->message);
    else if (result->exited)
        snprintf(text, sizeof(text), "instance ended: %s, exit code %d",
                 sbx_status_name(result->status), result->exit_code);
    else
        snprintf(text, sizeof(text), "instance ended: %s, signal %d",
                 sbx_status_name(result->status), result->signal);
    fn_log_system(fn, inst->no, text);
    if (never_ready) {
        atomic_fetch_add(&fn->fm->instance_failures, 1);
        fn->last_start_failure_us = hks_now_us();
        /* the waiters it was started for get the reason, unless another instance is coming */
        if (starting_room(fn) == 0 && !instance_with_room(fn)) {
            char message[256];
            snprintf(message, sizeof(message),
                     "the function's instance did not start (%s); its logs say why",
                     sbx_status_name(result->status));
            fn_fail_waiters(fn, HKSD_FAIL_START, message, owed);
        }
    }
    if (inst->in_flight == 0 && !inst->launching)
        free_instance(inst);
}

static void on_end(void *ctx, long long instance_id, const sbx_result *result)
{
    (void)instance_id;
    fn_instance *inst = ctx;
    function *fn = inst->fn;
    fn_manager *fm = fn->fm;
    char fn_id[sizeof(fn->id)];
    snprintf(fn_id, sizeof(fn_id), "%s", fn->id);
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    instance_ended(inst, result, &owed);
    pthread_cond_broadcast(&fm->changed);
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
    fn_log_wake_watchers(fm, fn_id);
}

/* fm->lock held on entry and exit, released around each send. */
void fn_launch_pending(fn_manager *fm)
{
    while (fm->launches) {
        launch *l = fm->launches;
        fm->launches = l->next;
        fn_instance *inst = l->inst;
        function *fn = inst->fn;
        int rc = 0;
        hks_error err = {0};
        long long id = 0;
        if (inst->state == INST_STARTING && !fn->removed && !fm->stopping) {
            rt_serve_request req = {
                .runtime = fn->runtime,
                .code_dir = fn->code_dir,
                .env = fn->env,
                .limits = &(sbx_limits){0},
                .listen_fd = l->listen_fd,
                .stdout_fd = l->out_w,
                .stderr_fd = l->err_w,
                .events = {.on_ready = on_ready, .on_end = on_end, .ctx = inst}};
            sbx_limits limits = fn->limits;
            /* the instance lives until stopped: the per-request timeout is the proxy's, and
             * CPU is bounded by its bandwidth (cpus), not by a total */
            limits.wall_ms = 7ULL * 24 * 3600 * 1000;
            limits.cpu_ms = 7ULL * 24 * 3600 * 1000;
            req.limits = &limits;
            inst->launching = true; /* its events may come before the send returns */
            pthread_mutex_unlock(&fm->lock);
            rc = rt_serve_start(fm->pool, &req, &id, &err);
            pthread_mutex_lock(&fm->lock);
            inst->launching = false;
        } else {
            rc = hks_fail(&err, 0, "stopped before it started");
        }
        close(l->listen_fd);
        close(l->out_w);
        close(l->err_w);
        free(l);
        if (rc == 0) {
            inst->sbx_id = id;
            if (inst->ended) {
                if (inst->in_flight == 0)
                    free_instance(inst);
            } else if (inst->state == INST_STOPPING) {
                rt_serve_stop(fm->pool, id, false);
            }
            continue;
        }
        /* no sandbox: no event will come; end it here */
        sbx_result failed = {.status = SBX_STATUS_INTERNAL_ERROR};
        snprintf(failed.message, sizeof(failed.message), "%s", err.msg);
        fn_callback *owed = NULL;
        instance_ended(inst, &failed, &owed);
        pthread_mutex_unlock(&fm->lock);
        fn_callbacks_run(owed);
        pthread_mutex_lock(&fm->lock);
    }
}

/* ---- the periodic look at a function (manager thread, fm->lock held) ---- */

void fn_instances_tick(function *fn, uint64_t now_us, fn_callback **owed)
{
    fn_manager *fm = fn->fm;
    uint64_t idle_us = (uint64_t)fm->cfg->function_idle_s * 1000000;
    unsigned ready = 0;
    for (fn_instance *i = fn->instances; i; i = i->next)
        ready += !i->ended && i->state == INST_READY;
    for (fn_instance *i = fn->instances; i; i = i->next) {
        if (i->ended)
            continue;
        if (i->state == INST_STARTING &&
            now_us - i->started_us > (uint64_t)FN_START_TIMEOUT_MS * 1000) {
            fn_log_system(fn, i->no, "instance not ready in time: killed");
            fn_instance_stop(i, false);
        } else if (i->state == INST_READY && i->in_flight == 0 && ready > fn->min_scale &&
                   now_us - i->last_used_us > idle_us) {
            fn_log_system(fn, i->no, "instance idle: stopping");
            fn_instance_stop(i, true);
            ready--;
        } else if (i->state == INST_STOPPING && now_us > i->stop_deadline_us) {
            fn_instance_stop(i, false);
            i->stop_deadline_us = now_us + (uint64_t)FN_STOP_GRACE_MS * 1000;
        }
    }
    /* waiters that waited too long */
    for (fn_waiter **p = &fn->waiters; *p;) {
        fn_waiter *w = *p;
        if (now_us < w->deadline_us) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        fn->n_waiters--;
        owe(owed, w->cb, w->ctx, HKSD_FAIL_TIMEOUT, NULL,
            "no instance of the function had room within its timeout");
        free(w);
    }
    /* min_scale, without hammering a function that does not start (one try per 5 s) */
    bool backoff = fn->last_start_failure_us && now_us - fn->last_start_failure_us < 5000000;
    while (!fn->removed && !backoff && fn_live_instances(fn) < fn->min_scale &&
           fm->n_instances < fm->cfg->max_instances) {
        hks_error err = {0};
        if (fn_instance_start(fn, false, &err) < 0) {
            fprintf(stderr,
                    "{\"level\":\"error\",\"msg\":\"min_scale instance\",\"function\":"
                    "\"%s\",\"error\":\"%s\"}\n",
                    fn->id, err.msg);
            break;
        }
    }
}

/* ---- leases ---- */

/* The function's counters and the metrics for one answered (or failed) request; fm->lock held. */
static void count_outcome(fn_manager *fm, fn_instance *inst, const hksd_fn_outcome *o)
{
    function *fn = inst->fn;
    fn->invocations++;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    fn->last_invocation_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    fn->errors += o->timed_out || o->failed || o->http_status >= 500;
    fn->timeouts += o->timed_out;
    fn_count_invocation(fm, o);
    if (o->timed_out && !inst->ended) {
        /* the handler may be stuck in a loop that would wedge every later request */
        fn_log_system(fn, inst->no, "request timed out: instance replaced");
        fn_instance_stop(inst, false);
    }
}

void fn_release(fn_manager *fm, hksd_lease *lease, const hksd_fn_outcome *o)
{
    fn_instance *inst = lease->instance;
    if (!inst)
        return;
    lease->instance = NULL;
    function *fn = inst->fn;
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    inst->in_flight--;
    inst->last_used_us = hks_now_us();
    if ((o->failed || o->not_sent) && !inst->ended && inst->state != INST_STOPPING) {
        /* no HTTP answer at all: the instance is gone or broken; do not send it more */
        fn_log_system(fn, inst->no, "instance did not answer: replaced");
        fn_instance_stop(inst, false);
    }
    if (!o->not_sent) {
        count_outcome(fm, inst, o);
        recent_invocation call = {
            .ts_ms = recent_now_ms(),
            .http_status = o->http_status,
            .timed_out = o->timed_out,
            .failed = o->failed,
            .cold = lease->cold,
            .duration_us = o->duration_us > UINT32_MAX ? UINT32_MAX : (uint32_t)o->duration_us};
        fn_recent_add_call(fn->recent, &call);
    }
    if (inst->ended && inst->in_flight == 0)
        free_instance(inst);
    fn_serve_waiters(fn, &owed);
    fn_unref(fn);
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
}

void fn_acquire(fn_manager *fm, const char *project, const char *id, hksd_lease_cb cb, void *ctx)
{
    fn_callback *owed = NULL;
    pthread_mutex_lock(&fm->lock);
    function *fn = NULL;
    for (function *f = fm->functions; f && !fn; f = f->next) {
        if (strcmp(f->id, id) == 0 && strcmp(f->project, project) == 0 && !f->removed)
            fn = f;
    }
    if (!fn) {
        owe(&owed, cb, ctx, HKSD_FAIL_NOT_FOUND, NULL, "no such function");
    } else if (fm->stopping) {
        owe(&owed, cb, ctx, HKSD_FAIL_UNAVAILABLE, NULL, "hksd is stopping");
    } else if (fn->n_waiters == 0 && instance_with_room(fn)) {
        fn_instance *inst = instance_with_room(fn);
        bool cold = inst->cold_unclaimed;
        inst->cold_unclaimed = false;
        hksd_lease lease;
        lease_of(inst, cold, hks_now_us(), &lease);
        owe(&owed, cb, ctx, 0, &lease, NULL);
    } else if (fn->n_waiters >= FN_MAX_WAITERS) {
        owe(&owed, cb, ctx, HKSD_FAIL_BUSY, NULL,
            "every instance of the function is busy and its queue is full");
    } else {
        fn_waiter *w = calloc(1, sizeof(*w));
        if (!w) {
            owe(&owed, cb, ctx, HKSD_FAIL_INTERNAL, NULL, "out of memory");
        } else {
            w->cb = cb;
            w->ctx = ctx;
            w->since_us = hks_now_us();
            /* room for a cold start on top of the request's own timeout */
            w->deadline_us = w->since_us + (fn->limits.wall_ms + FN_START_TIMEOUT_MS) * 1000;
            fn_waiter **tail = &fn->waiters;
            while (*tail)
                tail = &(*tail)->next;
            *tail = w;
            fn->n_waiters++;
            fn_serve_waiters(fn, &owed);
            if (fn->n_waiters > 0 && fn_live_instances(fn) == 0 && starting_room(fn) == 0 &&
                fm->n_instances >= fm->cfg->max_instances) {
                /* nothing will make room: the host is at its instance cap */
                fn_waiter **p = &fn->waiters;
                while (*p && *p != w)
                    p = &(*p)->next;
                if (*p) {
                    *p = w->next;
                    fn->n_waiters--;
                    owe(&owed, cb, ctx, HKSD_FAIL_BUSY, NULL,
                        "this host runs as many instances as it may; retry shortly");
                    free(w);
                }
            }
        }
    }
    pthread_mutex_unlock(&fm->lock);
    fn_callbacks_run(owed);
}
