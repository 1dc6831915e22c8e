/* Serve-mode instances: a deployed function's launcher serving HTTP in its own sandbox, started
 * through the pool's spawner and watched by the pool's dispatcher. The owner learns that an
 * instance is ready or has ended through callbacks made without pool locks held. */
#include "internal.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_SERVE_ENV 160

/* Start a sandbox for a serve slot or a task: argv with /code bound read-only from code_dir, the
 * runtime's launcher directory bound too, fds handed in as 1, 2 and (serve) 3 and 4. The slot is
 * known to the dispatcher before the spawner can answer about it. */
static int start_slot(rt_pool *pool, const rt_runtime *rt, const char *code_dir, json_t *argv,
                      json_t *env, const sbx_limits *limits, const int *fds, size_t n_fds,
                      bool with_control, rt_serve_events events, long long *instance_id,
                      hks_error *err)
{
    json_auto_t *argv_owned = argv;
    json_auto_t *env_owned = env;
    slot *s = calloc(1, sizeof(*s));
    if (!s)
        return hks_fail(err, ENOMEM, "serve instance");
    s->id = atomic_fetch_add(&pool->next_id, 1) + 1;
    s->runtime = (size_t)(rt - rt_runtimes);
    s->control = s->stdin_w = -1;
    s->serve = events;
    snprintf(s->code_dir, sizeof(s->code_dir), "%s", code_dir);

    int control[2] = {-1, -1};
    if (with_control && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) < 0) {
        free(s);
        return hks_fail(err, errno, "control socket of a serve instance");
    }
    char launcher_host[PATH_MAX + 64];
    snprintf(launcher_host, sizeof(launcher_host), "%s/runtimes/%s", pool->root, rt->name);
    /* the extra fds become 3, 4, ... inside, after 0 (/dev/null), 1 and 2 */
    size_t n_pass = n_fds - 2 + (with_control ? 1 : 0);
    json_t *msg = json_pack("{s:s,s:I,s:s,s:O,s:O,s:s,s:[{s:s,s:s},{s:s,s:s}],s:o,s:s,s:i}", "op",
                            "run", "id", (json_int_t)s->id, "profile", PROFILE_NAME, "argv", argv,
                            "env", env, "cwd", "/code", "mounts", "source", launcher_host, "target",
                            LAUNCHER_DIR, "source", code_dir, "target", "/code", "limits",
                            rt_limits_json(limits), "output", "direct", "pass_fds", (int)n_pass);
    if (!msg) {
        if (with_control) {
            close(control[0]);
            close(control[1]);
        }
        free(s);
        return hks_fail(err, ENOMEM, "serve request");
    }
    s->control = control[0];
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || pool->spawner_gone) {
        const char *why = rt_pool_down_reason(pool);
        pthread_mutex_unlock(&pool->lock);
        json_decref(msg);
        if (with_control) {
            close(control[0]);
            close(control[1]);
        }
        free(s);
        return hks_fail(err, 0, "%s", why);
    }
    if (s->control >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)s->id};
        epoll_ctl(pool->epfd, EPOLL_CTL_ADD, s->control, &ev);
    }
    s->next = pool->slots;
    pool->slots = s;
    pthread_mutex_unlock(&pool->lock);
    *instance_id = s->id;

    int all_fds[8];
    size_t n_all = 0;
    for (size_t i = 0; i < n_fds && n_all < 7; i++)
        all_fds[n_all++] = fds[i];
    if (with_control)
        all_fds[n_all++] = control[1];
    int rc = sbx_msg_send(pool->sock, msg, all_fds, n_all, err);
    json_decref(msg);
    if (with_control)
        close(control[1]);
    if (rc < 0) {
        pthread_mutex_lock(&pool->lock);
        if (s->control >= 0)
            epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
        rt_slot_unlink(pool, s);
        pthread_mutex_unlock(&pool->lock);
        rt_slot_free(s);
        return -1;
    }
    return 0;
}

static json_t *base_env(void)
{
    return json_pack("[s,s,s]", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8");
}

static void append_env(json_t *env, char *const *extra)
{
    size_t n = 0;
    for (char *const *e = extra; e && *e && n < MAX_SERVE_ENV; e++, n++)
        json_array_append_new(env, json_string(*e));
}

int rt_serve_start(rt_pool *pool, const rt_serve_request *req, long long *instance_id,
                   hks_error *err)
{
    const rt_runtime *rt = rt_runtime_find(req->runtime);
    if (!rt)
        return hks_fail(err, 0, "unknown runtime '%s'", req->runtime ? req->runtime : "");
    if (!req->events.on_end)
        return hks_fail(err, EINVAL, "a serve instance needs an on_end event");
    char launcher_inside[128];
    snprintf(launcher_inside, sizeof(launcher_inside), LAUNCHER_DIR "/%s", rt->launcher);
    json_t *env = base_env();
    json_array_append_new(env, json_string("HKS_LISTEN_FD=3"));
    json_array_append_new(env, json_string("HKS_CONTROL_FD=4"));
    json_array_append_new(env, json_string("NODE_ENV=production"));
    append_env(env, req->env);
    int fds[3] = {req->stdout_fd, req->stderr_fd, req->listen_fd};
    return start_slot(pool, rt, req->code_dir,
                      json_pack("[s,s,s]", rt->interpreter, launcher_inside, "serve"), env,
                      req->limits, fds, 3, true, req->events, instance_id, err);
}

int rt_task_start(rt_pool *pool, const rt_task_request *req, long long *task_id, hks_error *err)
{
    const rt_runtime *rt = rt_runtime_find(req->runtime);
    if (!rt)
        return hks_fail(err, 0, "unknown runtime '%s'", req->runtime ? req->runtime : "");
    if (!req->events.on_end)
        return hks_fail(err, EINVAL, "a task needs an on_end event");
    if (!req->argv || !req->argv[0] || !req->argv[0][0])
        return hks_fail(err, EINVAL, "a task needs a command");
    json_t *argv = json_array();
    for (char *const *a = req->argv; *a; a++)
        json_array_append_new(argv, json_string(*a));
    json_t *env = base_env();
    json_array_append_new(env, json_string("NODE_ENV=production"));
    append_env(env, req->env);
    int fds[2] = {req->stdout_fd, req->stderr_fd};
    rt_serve_events events = {.on_end = req->events.on_end, .ctx = req->events.ctx};
    return start_slot(pool, rt, req->code_dir, argv, env, req->limits, fds, 2, false, events,
                      task_id, err);
}

void rt_serve_stop(rt_pool *pool, long long instance_id, bool graceful)
{
    pthread_mutex_lock(&pool->lock);
    slot *s = NULL;
    for (slot *it = pool->slots; it; it = it->next) {
        if (it->id == instance_id && it->serve.on_end)
            s = it;
    }
    bool sent = false;
    if (s && graceful && s->control >= 0 && s->state == SLOT_READY) {
        static const char stop[] = "{\"op\":\"stop\"}";
        sent = send(s->control, stop, sizeof(stop) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0;
    }
    bool kill_it = s && !sent && !s->serve_end_due;
    pthread_mutex_unlock(&pool->lock);
    if (kill_it) {
        json_t *msg = json_pack("{s:s,s:I}", "op", "kill", "id", (json_int_t)instance_id);
        hks_error ignored;
        (void)sbx_msg_send(pool->sock, msg, NULL, 0, &ignored);
        json_decref(msg);
    }
}

void rt_serve_on_result(rt_pool *pool, slot *s)
{
    if (s->control >= 0)
        epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
    s->serve_end_due = true;
    s->ended = true;
}

void rt_serve_on_ready(rt_pool *pool, slot *s)
{
    (void)pool;
    s->serve_ready_due = true;
}

void rt_serve_deliver(rt_pool *pool)
{
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        slot *due = NULL;
        for (slot *s = pool->slots; s && !due; s = s->next) {
            if (s->serve.on_end && (s->serve_ready_due || s->serve_end_due))
                due = s;
        }
        if (!due) {
            pthread_mutex_unlock(&pool->lock);
            return;
        }
        bool ready = due->serve_ready_due;
        bool ended = due->serve_end_due;
        due->serve_ready_due = false;
        if (ended)
            rt_slot_unlink(pool, due); /* from now on only this thread holds it */
        pthread_mutex_unlock(&pool->lock);
        if (ready && due->serve.on_ready)
            due->serve.on_ready(due->serve.ctx, due->id);
        if (ended) {
            due->serve.on_end(due->serve.ctx, due->id, &due->result);
            rt_slot_free(due);
        }
    }
}
