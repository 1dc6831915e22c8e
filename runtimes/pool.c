/* Warm pools: per runtime, sandboxes whose launcher has already started and now blocks on its
 * control socket. An execution claims one, writes the files into its /code (a host directory
 * bound read-only inside), gives it its real limits and a fresh clock (spawner "arm"), hands it
 * stdin and says "go"; the sandbox runs that one program and ends. A dispatcher thread reads
 * the spawner's messages and the launchers' "ready", and starts replacements in the
 * background. */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define ATTEMPTS      3
#define READY_TIMEOUT 30000 /* ms a cold start may take before the execution gives up */

const rt_runtime rt_runtimes[RT_N_RUNTIMES] = {
    {.name = "python", .interpreter = "/usr/bin/python3", .launcher = "launcher.py"},
    {.name = "node", .interpreter = "/usr/bin/node", .launcher = "launcher.js"},
};

const rt_runtime *rt_runtime_find(const char *name)
{
    for (size_t i = 0; i < RT_N_RUNTIMES; i++) {
        if (name && strcmp(rt_runtimes[i].name, name) == 0)
            return &rt_runtimes[i];
    }
    return NULL;
}

void rt_pool_config_init(rt_pool_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->root = ".";
    cfg->work_dir = "./var/pool";
    cfg->profile_path = "policies/seccomp/function.json";
    for (size_t i = 0; i < RT_N_RUNTIMES; i++)
        cfg->warm[i] = 2;
    sbx_limits_default(&cfg->limits);
    cfg->idle_ms = 10 * 60 * 1000;
}

/* ---- slots (pool->lock held) ---- */

static slot *find_slot(rt_pool *pool, json_int_t id)
{
    for (slot *s = pool->slots; s; s = s->next) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

void rt_slot_unlink(rt_pool *pool, slot *target)
{
    for (slot **p = &pool->slots; *p; p = &(*p)->next) {
        if (*p == target) {
            *p = target->next;
            return;
        }
    }
}

void rt_slot_free(slot *s)
{
    if (s->control >= 0)
        close(s->control);
    if (s->stdin_w >= 0)
        close(s->stdin_w);
    hks_error ignored;
    if (!s->serve.on_end)
        rt_remove_tree(s->code_dir, &ignored);
    sbx_result_release(&s->result);
    free(s);
}

json_t *rt_limits_json(const sbx_limits *l)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "memory_bytes",
                     (json_int_t)l->memory_bytes, "pids", (json_int_t)l->pids, "cpu_millis",
                     (json_int_t)l->cpu_millis, "wall_ms", (json_int_t)l->wall_ms, "cpu_ms",
                     (json_int_t)l->cpu_ms, "tmpfs_bytes", (json_int_t)l->tmpfs_bytes, "shm_bytes",
                     (json_int_t)l->shm_bytes, "fsize_bytes", (json_int_t)l->fsize_bytes, "nofile",
                     (json_int_t)l->nofile, "stdout_max", (json_int_t)l->stdout_max, "stderr_max",
                     (json_int_t)l->stderr_max);
}

/* Ask the spawner for a sandbox running the launcher in one-shot mode. */
/* Ask the spawner for a sandbox running the launcher in one-shot mode. Called without the lock:
 * a send to the spawner may block while it is busy, and the dispatcher must keep reading. */
static slot *start_slot(rt_pool *pool, size_t runtime, bool pooled, const sbx_limits *created,
                        hks_error *err)
{
    const rt_runtime *rt = &rt_runtimes[runtime];
    slot *s = calloc(1, sizeof(*s));
    if (!s) {
        hks_fail(err, ENOMEM, "pool slot");
        return NULL;
    }
    s->id = atomic_fetch_add(&pool->next_id, 1) + 1;
    s->runtime = runtime;
    s->pooled = pooled;
    s->control = s->stdin_w = -1;
    int control[2] = {-1, -1}, in[2] = {-1, -1};
    int len = snprintf(s->code_dir, sizeof(s->code_dir), "%.4000s/%lld", pool->work_dir,
                       (long long)s->id);
    if (len < 0 || (size_t)len >= sizeof(s->code_dir) || mkdir(s->code_dir, 0755) < 0 ||
        chmod(s->code_dir, 0755) < 0) {
        hks_fail(err, errno, "create %s", s->code_dir);
        free(s);
        return NULL;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) < 0 ||
        pipe2(in, O_CLOEXEC) < 0) {
        hks_fail(err, errno, "control socket and stdin pipe");
        goto fail;
    }
    /* stdin is written whole before "go": room for all of it (root may exceed pipe-max-size;
     * when the size cannot be raised, give_stdin writes from a thread instead) */
    (void)fcntl(in[1], F_SETPIPE_SZ, (int)RT_MAX_STDIN_BYTES);

    char launcher_host[PATH_MAX + 64], launcher_inside[128];
    snprintf(launcher_host, sizeof(launcher_host), "%s/runtimes/%s", pool->root, rt->name);
    snprintf(launcher_inside, sizeof(launcher_inside), LAUNCHER_DIR "/%s", rt->launcher);
    sbx_limits limits = *created;
    limits.wall_ms = pool->cfg.idle_ms; /* until armed: how long it may wait */
    json_t *req = json_pack(
        "{s:s,s:I,s:s,s:[s,s,s],s:[s,s,s],s:s,s:[{s:s,s:s},{s:s,s:s}],s:o,s:b,s:i}", "op", "run",
        "id", s->id, "profile", PROFILE_NAME, "argv", rt->interpreter, launcher_inside, "oneshot",
        "env", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "cwd", "/code",
        "mounts", "source", launcher_host, "target", LAUNCHER_DIR, "source", s->code_dir, "target",
        "/code", "limits", rt_limits_json(&limits), "stdin", 1, "pass_fds", 1);
    if (!req) {
        hks_fail(err, ENOMEM, "request");
        goto fail;
    }
    /* known to the dispatcher before the spawner can answer about it */
    s->control = control[0];
    s->stdin_w = in[1];
    pthread_mutex_lock(&pool->lock);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)s->id};
    epoll_ctl(pool->epfd, EPOLL_CTL_ADD, s->control, &ev);
    s->next = pool->slots;
    pool->slots = s;
    if (pooled)
        pool->pooled[runtime]++;
    pthread_mutex_unlock(&pool->lock);
    int fds[2] = {in[0], control[1]};
    int rc = sbx_msg_send(pool->sock, req, fds, 2, err);
    json_decref(req);
    close(in[0]);
    close(control[1]);
    if (rc < 0) {
        pthread_mutex_lock(&pool->lock);
        epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
        rt_slot_unlink(pool, s);
        if (pooled)
            pool->pooled[runtime]--;
        pthread_mutex_unlock(&pool->lock);
        rt_slot_free(s);
        return NULL;
    }
    return s;

fail:
    for (int i = 0; i < 2; i++) {
        if (control[i] >= 0)
            close(control[i]);
        if (in[i] >= 0)
            close(in[i]);
    }
    hks_error ignored;
    rt_remove_tree(s->code_dir, &ignored);
    free(s);
    return NULL;
}

/* The refiller thread keeps every runtime at its warm count. It is not the dispatcher: starting a
 * sandbox sends to the spawner, which may block, and the dispatcher must never stop reading. */
static void *refill_main(void *arg)
{
    rt_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while ((!pool->refill_pending || pool->spawner_gone) && !pool->stopping)
            pthread_cond_wait(&pool->refill_wanted, &pool->lock);
        if (pool->stopping)
            break;
        pool->refill_pending = false;
        for (size_t r = 0; r < RT_N_RUNTIMES; r++) {
            while (pool->pooled[r] < pool->cfg.warm[r] && !pool->stopping && !pool->spawner_gone) {
                pthread_mutex_unlock(&pool->lock);
                hks_error err = {0};
                slot *started = start_slot(pool, r, true, &pool->cfg.limits, &err);
                if (!started)
                    fprintf(stderr, "hks-pool: starting a %s sandbox: %s\n", rt_runtimes[r].name,
                            err.msg);
                pthread_mutex_lock(&pool->lock);
                if (!started)
                    break; /* retried at the next wake-up */
            }
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void wake_refiller(rt_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->refill_pending = true;
    pthread_cond_signal(&pool->refill_wanted);
    pthread_mutex_unlock(&pool->lock);
}

static void wake_dispatcher(rt_pool *pool)
{
    uint64_t one = 1;
    (void)!write(pool->wake, &one, sizeof(one));
}

/* ---- the dispatcher thread ---- */

static void read_output(int fd, char **data, size_t *len)
{
    struct stat st;
    *data = NULL;
    *len = 0;
    if (fd < 0 || fstat(fd, &st) < 0)
        return;
    *data = malloc((size_t)st.st_size + 1);
    if (!*data)
        return;
    ssize_t n = pread(fd, *data, (size_t)st.st_size, 0);
    *len = n > 0 ? (size_t)n : 0;
    (*data)[*len] = '\0';
}

/* A slot's sandbox ended. Pooled slots nobody claimed are simply replaced. */
static void on_result(rt_pool *pool, slot *s, json_t *msg, int *fds, size_t n_fds)
{
    if (s->serve.on_end) {
        if (sbx_result_from_json(json_object_get(msg, "result"), &s->result) < 0)
            s->result.status = SBX_STATUS_INTERNAL_ERROR;
        rt_serve_on_result(pool, s);
        return;
    }
    if (s->pooled && s->state != SLOT_CLAIMED) {
        pool->pooled[s->runtime]--;
        if (s->control >= 0)
            epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
        rt_slot_unlink(pool, s);
        rt_slot_free(s);
        return;
    }
    if (sbx_result_from_json(json_object_get(msg, "result"), &s->result) < 0) {
        s->result.status = SBX_STATUS_INTERNAL_ERROR;
        snprintf(s->result.message, sizeof(s->result.message), "malformed result from the spawner");
    }
    read_output(n_fds > 0 ? fds[0] : -1, &s->result.stdout_data, &s->result.stdout_len);
    read_output(n_fds > 1 ? fds[1] : -1, &s->result.stderr_data, &s->result.stderr_len);
    s->ended = true;
}

static void on_spawner_message(rt_pool *pool)
{
    json_t *msg = NULL;
    int fds[SBX_MSG_MAX_FDS];
    size_t n_fds = 0;
    hks_error err = {0};
    int rc = sbx_msg_recv(pool->sock, &msg, fds, &n_fds, &err);
    pthread_mutex_lock(&pool->lock);
    if (rc < 0 || !msg) {
        if (rc == 0 || err.errnum == ECONNRESET) {
            /* the spawner is gone: every sandbox with it */
            pool->spawner_gone = true;
            for (slot *s = pool->slots; s; s = s->next) {
                s->failed = s->dead = true;
                snprintf(s->error, sizeof(s->error), "the sandbox spawner exited");
                if (s->serve.on_end && !s->serve_end_due) {
                    s->result.status = SBX_STATUS_INTERNAL_ERROR;
                    snprintf(s->result.message, sizeof(s->result.message), "%s", s->error);
                    rt_serve_on_result(pool, s);
                }
            }
        }
    } else {
        const char *op = json_string_value(json_object_get(msg, "op"));
        json_int_t id = json_integer_value(json_object_get(msg, "id"));
        slot *s = id ? find_slot(pool, id) : NULL;
        if (id == 0 && op && (strcmp(op, "loaded") == 0 || strcmp(op, "error") == 0)) {
            /* the answer to a profile reload (id 0): sandboxes started from now on use it */
            const char *why = json_string_value(json_object_get(msg, "message"));
            fprintf(stderr, "{\"level\":\"%s\",\"msg\":\"seccomp profile %s\"}\n",
                    why ? "error" : "info", why ? "not reloaded" : "reloaded");
        }
        if (s && op && strcmp(op, "result") == 0) {
            on_result(pool, s, msg, fds, n_fds);
        } else if (s && op && strcmp(op, "armed") == 0) {
            s->armed = true;
        } else if (s && op && strcmp(op, "error") == 0) {
            s->failed = true;
            snprintf(s->error, sizeof(s->error), "%s",
                     json_string_value(json_object_get(msg, "message")));
            /* refused while starting: the sandbox does not exist (once its launcher said
             * ready it does, and a refusal concerns a later request such as "arm") */
            s->dead = s->state == SLOT_STARTING;
            if (s->dead && s->serve.on_end) {
                s->result.status = SBX_STATUS_INTERNAL_ERROR;
                snprintf(s->result.message, sizeof(s->result.message), "%s", s->error);
                rt_serve_on_result(pool, s);
            } else if (s->dead && s->pooled) {
                pool->pooled[s->runtime]--;
                epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
                rt_slot_unlink(pool, s);
                fprintf(stderr, "hks-pool: %s sandbox: %s\n", rt_runtimes[s->runtime].name,
                        s->error);
                rt_slot_free(s);
            }
        }
    }
    pthread_cond_broadcast(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < n_fds; i++)
        close(fds[i]);
    json_decref(msg);
}

static void on_control(rt_pool *pool, json_int_t id)
{
    pthread_mutex_lock(&pool->lock);
    slot *s = find_slot(pool, id);
    if (s && s->control >= 0) {
        char buf[1024];
        ssize_t n = recv(s->control, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
        json_t *msg = n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
        const char *op = json_string_value(json_object_get(msg, "op"));
        if (s->state == SLOT_STARTING && op && strcmp(op, "ready") == 0) {
            s->state = SLOT_READY;
            if (s->serve.on_end)
                rt_serve_on_ready(pool, s);
        }
        /* anything else: the launcher died or misbehaved; its result will retire the slot */
        json_decref(msg);
        pthread_cond_broadcast(&pool->changed);
    }
    pthread_mutex_unlock(&pool->lock);
}

static int load_profile(rt_pool *pool, hks_error *err);

/* Wait ms, or less when the pool is being stopped (its eventfd). */
static void pause_unless_stopped(rt_pool *pool, unsigned ms)
{
    struct pollfd wake = {.fd = pool->wake, .events = POLLIN};
    (void)poll(&wake, 1, (int)ms);
}

/* The spawner died (killed, crashed): its sandboxes died with it (parent-death signal), and their
 * owners were told. Warm sandboxes nobody claimed are forgotten, a new spawner is started by
 * executing cfg.spawner_exe (retried with a growing pause while that fails), the profile loaded
 * into it, and the pools refilled. Meanwhile executions and instance starts are refused (503). */
static void restart_spawner(rt_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    for (slot **p = &pool->slots; *p;) {
        slot *s = *p;
        if (s->pooled && s->state != SLOT_CLAIMED && !s->serve.on_end) {
            *p = s->next;
            pool->pooled[s->runtime]--;
            if (s->control >= 0)
                epoll_ctl(pool->epfd, EPOLL_CTL_DEL, s->control, NULL);
            rt_slot_free(s);
        } else {
            p = &s->next;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    epoll_ctl(pool->epfd, EPOLL_CTL_DEL, pool->sock, NULL);
    unsigned pause_ms = 100;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        bool stopping = pool->stopping;
        pthread_mutex_unlock(&pool->lock);
        if (stopping)
            return;
        hks_error err = {0};
        if (sbx_spawner_respawn(pool->spawner, pool->cfg.spawner_exe, &err) == 0 &&
            load_profile(pool, &err) == 0)
            break;
        fprintf(stderr,
                "{\"level\":\"error\",\"msg\":\"sandbox spawner restart failed\","
                "\"error\":\"%s\",\"retry_ms\":%u}\n",
                err.msg, pause_ms);
        pause_unless_stopped(pool, pause_ms);
        pause_ms = pause_ms < 5000 ? pause_ms * 2 : 10000;
    }
    struct epoll_event sock_ev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(pool->epfd, EPOLL_CTL_ADD, pool->sock, &sock_ev);
    pthread_mutex_lock(&pool->lock);
    pool->spawner_gone = false;
    atomic_fetch_add(&pool->spawner_restarts, 1);
    pool->refill_pending = true;
    pthread_cond_signal(&pool->refill_wanted);
    pthread_cond_broadcast(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
    fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"sandbox spawner restarted\",\"pid\":%d}\n",
            (int)sbx_spawner_pid(pool->spawner));
}

static void *dispatch(void *arg)
{
    rt_pool *pool = arg;
    for (;;) {
        struct epoll_event events[32];
        int n = epoll_wait(pool->epfd, events, 32, -1);
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == 0) {
                on_spawner_message(pool);
            } else if (tag == UINT64_MAX) {
                uint64_t count;
                (void)!read(pool->wake, &count, sizeof(count));
            } else {
                on_control(pool, (json_int_t)tag);
            }
        }
        rt_serve_deliver(pool);
        pthread_mutex_lock(&pool->lock);
        bool restart = pool->spawner_gone && !pool->stopping && pool->cfg.spawner_exe;
        pthread_mutex_unlock(&pool->lock);
        if (restart)
            restart_spawner(pool);
        pthread_mutex_lock(&pool->lock);
        bool stop = pool->stopping || pool->spawner_gone;
        bool short_of_warm = false;
        for (size_t r = 0; r < RT_N_RUNTIMES; r++)
            short_of_warm = short_of_warm || pool->pooled[r] < pool->cfg.warm[r];
        if (short_of_warm && !stop) {
            pool->refill_pending = true;
            pthread_cond_signal(&pool->refill_wanted);
        }
        if (stop)
            pthread_cond_broadcast(&pool->refill_wanted);
        pthread_mutex_unlock(&pool->lock);
        if (stop)
            return NULL;
    }
}

/* ---- lifecycle ---- */

static int load_profile(rt_pool *pool, hks_error *err)
{
    json_t *req = json_pack("{s:s,s:i,s:s,s:s}", "op", "load_profile", "id", 0, "name",
                            PROFILE_NAME, "path", pool->cfg.profile_path);
    int rc = sbx_msg_send(pool->sock, req, NULL, 0, err);
    json_decref(req);
    if (rc < 0)
        return -1;
    json_t *reply = NULL;
    for (;;) {
        int fds[SBX_MSG_MAX_FDS];
        size_t n_fds = 0;
        if (sbx_msg_recv(pool->sock, &reply, fds, &n_fds, err) < 0)
            return -1;
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
        if (!reply)
            return hks_fail(err, 0, "the spawner closed its socket");
        if (json_integer_value(json_object_get(reply, "id")) == 0)
            break;
        json_decref(reply); /* about a request that raced the restart: its slot is gone */
    }
    const char *op = json_string_value(json_object_get(reply, "op"));
    rc = op && strcmp(op, "loaded") == 0
             ? 0
             : hks_fail(err, 0, "%s", json_string_value(json_object_get(reply, "message")));
    json_decref(reply);
    return rc;
}

static int make_dirs(const char *path, hks_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return hks_fail(err, errno, "create %s", buf);
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", buf);
    return 0;
}

int rt_pool_start(const rt_pool_config *cfg, rt_pool **out, hks_error *err)
{
    rt_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return hks_fail(err, ENOMEM, "pool");
    pool->cfg = *cfg;
    pool->sock = pool->epfd = pool->wake = -1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->changed, NULL);
    pthread_cond_init(&pool->refill_wanted, NULL);
    /* the configuration's strings belong to the caller: keep copies */
    snprintf(pool->profile_path, sizeof(pool->profile_path), "%s", cfg->profile_path);
    pool->cfg.profile_path = pool->profile_path;
    pool->cfg.root = pool->root;
    if (cfg->spawner_exe) {
        snprintf(pool->spawner_exe, sizeof(pool->spawner_exe), "%s", cfg->spawner_exe);
        pool->cfg.spawner_exe = pool->spawner_exe;
    }
    pool->cfg.work_dir = pool->work_dir;
    if (!realpath(cfg->root, pool->root)) {
        hks_fail(err, errno, "runtime root %s", cfg->root);
        goto fail;
    }
    if (make_dirs(cfg->work_dir, err) < 0 || !realpath(cfg->work_dir, pool->work_dir)) {
        if (!err->msg[0])
            hks_fail(err, errno, "work directory %s", cfg->work_dir);
        goto fail;
    }
    /* directories of an earlier pool that did not stop cleanly */
    rt_remove_tree(pool->work_dir, err);
    if (make_dirs(pool->work_dir, err) < 0)
        goto fail;
    if (sbx_spawner_start(&pool->spawner, err) < 0)
        goto fail;
    pool->sock = sbx_spawner_fd(pool->spawner);
    if (load_profile(pool, err) < 0)
        goto fail;
    pool->epfd = epoll_create1(EPOLL_CLOEXEC);
    pool->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->epfd < 0 || pool->wake < 0) {
        hks_fail(err, errno, "epoll/eventfd");
        goto fail;
    }
    struct epoll_event sock_ev = {.events = EPOLLIN, .data.u64 = 0};
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(pool->epfd, EPOLL_CTL_ADD, pool->sock, &sock_ev);
    epoll_ctl(pool->epfd, EPOLL_CTL_ADD, pool->wake, &wake_ev);
    if (pthread_create(&pool->dispatcher, NULL, dispatch, pool) != 0) {
        hks_fail(err, errno, "start the pool dispatcher");
        goto fail;
    }
    pool->dispatcher_running = true;
    if (pthread_create(&pool->refiller, NULL, refill_main, pool) != 0) {
        hks_fail(err, errno, "start the pool refiller");
        goto fail;
    }
    pool->refiller_running = true;
    wake_refiller(pool);
    *out = pool;
    return 0;
fail:
    rt_pool_stop(pool);
    return -1;
}

void rt_pool_stop(rt_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->refill_wanted);
    pthread_mutex_unlock(&pool->lock);
    if (pool->refiller_running)
        pthread_join(pool->refiller, NULL);
    if (pool->dispatcher_running) {
        wake_dispatcher(pool);
        pthread_join(pool->dispatcher, NULL);
    }
    /* closing the spawner's socket kills every sandbox and removes their cgroups */
    if (pool->spawner)
        sbx_spawner_stop(pool->spawner);
    while (pool->slots) {
        slot *s = pool->slots;
        pool->slots = s->next;
        rt_slot_free(s);
    }
    if (pool->epfd >= 0)
        close(pool->epfd);
    if (pool->wake >= 0)
        close(pool->wake);
    if (pool->work_dir[0])
        rmdir(pool->work_dir);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->refill_wanted);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

int rt_pool_reload_profile(rt_pool *pool, hks_error *err)
{
    json_t *req = json_pack("{s:s,s:i,s:s,s:s}", "op", "load_profile", "id", 0, "name",
                            PROFILE_NAME, "path", pool->profile_path);
    int rc = req ? sbx_msg_send(pool->sock, req, NULL, 0, err) : hks_fail(err, ENOMEM, "reload");
    json_decref(req);
    return rc;
}

const char *rt_pool_down_reason(const rt_pool *pool)
{
    if (pool->stopping)
        return "the sandbox pool is stopping";
    return pool->cfg.spawner_exe
               ? "the sandbox spawner exited and is being restarted; retry shortly"
               : "the sandbox spawner exited";
}

bool rt_pool_healthy(rt_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    bool up = !pool->spawner_gone && !pool->stopping;
    pthread_mutex_unlock(&pool->lock);
    return up;
}

unsigned long rt_pool_spawner_restarts(rt_pool *pool)
{
    return (unsigned long)atomic_load(&pool->spawner_restarts);
}

unsigned rt_pool_ready(rt_pool *pool, const char *name)
{
    const rt_runtime *rt = rt_runtime_find(name);
    unsigned n = 0;
    pthread_mutex_lock(&pool->lock);
    for (slot *s = pool->slots; rt && s; s = s->next) {
        if (s->pooled && s->state == SLOT_READY && &rt_runtimes[s->runtime] == rt)
            n++;
    }
    pthread_mutex_unlock(&pool->lock);
    return n;
}

int rt_pool_wait_full(rt_pool *pool, int timeout_ms)
{
    uint64_t deadline = hks_now_us() + (uint64_t)timeout_ms * 1000;
    for (;;) {
        bool full = true;
        for (size_t r = 0; r < RT_N_RUNTIMES; r++)
            full = full && rt_pool_ready(pool, rt_runtimes[r].name) >= pool->cfg.warm[r];
        if (full)
            return 0;
        if (hks_now_us() >= deadline)
            return -1;
        struct timespec ts = {.tv_nsec = 5L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- executions ---- */

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait for the slot's sandbox to end (killing it first when asked) and forget the slot. */
static void release_slot(rt_pool *pool, slot *s, bool kill_it, rt_exec_result *result)
{
    pthread_mutex_lock(&pool->lock);
    bool send_kill = kill_it && !s->ended && !s->dead;
    pthread_mutex_unlock(&pool->lock);
    if (send_kill) {
        json_t *msg = json_pack("{s:s,s:I}", "op", "kill", "id", s->id);
        hks_error ignored;
        sbx_msg_send(pool->sock, msg, NULL, 0, &ignored);
        json_decref(msg);
    }
    pthread_mutex_lock(&pool->lock);
    while (!s->ended && !s->dead)
        pthread_cond_wait(&pool->changed, &pool->lock);
    rt_slot_unlink(pool, s);
    pthread_mutex_unlock(&pool->lock);
    if (result && s->ended) {
        result->sandbox = s->result;
        memset(&s->result, 0, sizeof(s->result));
    }
    rt_slot_free(s);
}

/* Take a ready warm sandbox, or start a cold one and wait for its launcher. */
static slot *claim(rt_pool *pool, size_t runtime, bool allow_warm, const sbx_limits *limits,
                   bool *warm, hks_error *err)
{
    pthread_mutex_lock(&pool->lock);
    slot *chosen = NULL;
    for (slot *s = pool->slots; allow_warm && s; s = s->next) {
        if (s->pooled && s->runtime == runtime && s->state == SLOT_READY && !s->ended && !s->failed)
            chosen = s; /* the list is newest first: the last match has waited longest */
    }
    if (chosen) {
        chosen->state = SLOT_CLAIMED;
        chosen->pooled = false;
        pool->pooled[runtime]--;
        pthread_mutex_unlock(&pool->lock);
        *warm = true;
        return chosen;
    }
    *warm = false;
    if (pool->spawner_gone || pool->stopping) {
        const char *why = rt_pool_down_reason(pool);
        pthread_mutex_unlock(&pool->lock);
        hks_fail(err, 0, "%s", why);
        return NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    chosen = start_slot(pool, runtime, false, limits, err);
    if (!chosen)
        return NULL;
    pthread_mutex_lock(&pool->lock);
    struct timespec until;
    deadline_in(&until, READY_TIMEOUT);
    int rc = 0;
    while (chosen->state == SLOT_STARTING && !chosen->ended && !chosen->dead && rc == 0)
        rc = pthread_cond_timedwait(&pool->changed, &pool->lock, &until);
    bool ready = chosen->state == SLOT_READY && !chosen->ended && !chosen->failed;
    chosen->state = SLOT_CLAIMED;
    pthread_mutex_unlock(&pool->lock);
    if (ready)
        return chosen;
    hks_fail(err, 0, "the %s launcher did not start: %s", rt_runtimes[runtime].name,
             chosen->failed  ? chosen->error
             : chosen->ended ? chosen->result.message
                             : "timed out");
    release_slot(pool, chosen, true, NULL);
    return NULL;
}

typedef struct stdin_job {
    int fd;
    char *data;
    size_t len;
} stdin_job;

/* More stdin than the pipe holds (its size could not be raised): written as the program reads
 * it; the write ends with EPIPE if the sandbox goes away first. */
static void *write_stdin(void *arg)
{
    stdin_job *job = arg;
    (void)hks_write_all(job->fd, job->data, job->len);
    close(job->fd);
    free(job->data);
    free(job);
    return NULL;
}

static int give_stdin(slot *s, const rt_exec_request *req, hks_error *err)
{
    int fd = s->stdin_w;
    s->stdin_w = -1;
    int room = fcntl(fd, F_GETPIPE_SZ);
    if (req->stdin_len > 0 && room > 0 && req->stdin_len > (size_t)room) {
        stdin_job *job = calloc(1, sizeof(*job));
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (job && (job->data = malloc(req->stdin_len))) {
            memcpy(job->data, req->stdin_data, req->stdin_len);
            job->fd = fd;
            job->len = req->stdin_len;
            if (pthread_create(&thread, &attr, write_stdin, job) == 0) {
                pthread_attr_destroy(&attr);
                return 0;
            }
            free(job->data);
        }
        free(job);
        pthread_attr_destroy(&attr);
        close(fd);
        return hks_fail(err, ENOMEM, "a writer for %zu bytes of stdin", req->stdin_len);
    }
    int rc = 0;
    if (req->stdin_len > 0) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (hks_write_all(fd, req->stdin_data, req->stdin_len) < 0)
            rc = hks_fail(err, errno, "write %zu bytes of stdin", req->stdin_len);
    }
    close(fd);
    return rc;
}

/* The launcher's "go": entry, argv and environment. */
static char *go_message(const rt_exec_request *req)
{
    json_t *argv = json_array();
    json_t *env = json_object();
    for (char *const *a = req->argv; a && *a; a++)
        json_array_append_new(argv, json_string(*a));
    for (char *const *e = req->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - *e), *e);
        json_object_set_new(env, key, json_string(eq + 1));
    }
    json_t *go =
        json_pack("{s:s,s:s,s:o,s:o}", "op", "go", "entry", req->entry, "argv", argv, "env", env);
    char *text = go ? json_dumps(go, JSON_COMPACT) : NULL;
    json_decref(go);
    return text;
}

/* One message of this execution's own channel to the spawner (NULL at EOF). */
static json_t *receive(int fd, int *fds, size_t *n_fds)
{
    json_t *msg = NULL;
    hks_error ignored;
    if (sbx_msg_recv(fd, &msg, fds, n_fds, &ignored) < 0)
        return NULL;
    return msg;
}

static const char *op_of(json_t *msg)
{
    const char *op = json_string_value(json_object_get(msg, "op"));
    return op ? op : "";
}

/* Arm the claimed sandbox and start the program in one message to the spawner, which applies the
 * limits, then passes "go" to the launcher; the result comes back on a channel of this
 * execution's own. Returns 1 when result is filled, 0 when the sandbox had ended before it could
 * be used (try another), -1 on error. */
static int run_in(rt_pool *pool, slot *s, const rt_exec_request *req, const sbx_limits *limits,
                  rt_exec_result *result, hks_error *err)
{
    int channel[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel) < 0)
        return hks_fail(err, errno, "result channel");
    cleanup_free char *go = go_message(req);
    json_t *msg = go ? json_pack("{s:s,s:I,s:o,s:b,s:s}", "op", "arm", "id", s->id, "limits",
                                 rt_limits_json(limits), "reply", 1, "send", go)
                     : NULL;
    int fds[2] = {channel[1], s->control};
    int rc = msg ? sbx_msg_send(pool->sock, msg, fds, 2, err) : hks_fail(err, ENOMEM, "go");
    json_decref(msg);
    close(channel[1]);
    close(s->control); /* the spawner has its own copy, closed once "go" is sent */
    s->control = -1;
    cleanup_fd int reply = channel[0];
    if (rc < 0)
        return -1;

    int out[SBX_MSG_MAX_FDS];
    size_t n_out = 0;
    json_t *armed = receive(reply, out, &n_out);
    bool ok = armed && strcmp(op_of(armed), "armed") == 0;
    char why[512] = "";
    if (!ok) {
        const char *message = json_string_value(json_object_get(armed, "message"));
        snprintf(why, sizeof(why), "%s", message ? message : "no answer");
    }
    json_decref(armed);
    if (!ok) {
        /* the sandbox ended first (its idle time ran out): its result went the usual way */
        pthread_mutex_lock(&pool->lock);
        bool gone = s->ended || s->dead;
        pthread_mutex_unlock(&pool->lock);
        if (gone || strstr(why, "no such run"))
            return 0;
        json_t *kill_msg = json_pack("{s:s,s:I}", "op", "kill", "id", s->id);
        sbx_msg_send(pool->sock, kill_msg, NULL, 0, err);
        json_decref(kill_msg);
    }
    json_t *done = receive(reply, out, &n_out);
    if (!done || strcmp(op_of(done), "result") != 0 ||
        sbx_result_from_json(json_object_get(done, "result"), &result->sandbox) < 0) {
        json_decref(done);
        for (size_t i = 0; i < n_out; i++)
            close(out[i]);
        /* the channel closes without a result only when the spawner is gone */
        return hks_fail(err, 0,
                        "the sandbox was lost: the sandbox spawner exited before it "
                        "reported a result%s%s",
                        ok ? "" : "; ", why);
    }
    json_decref(done);
    read_output(n_out > 0 ? out[0] : -1, &result->sandbox.stdout_data, &result->sandbox.stdout_len);
    read_output(n_out > 1 ? out[1] : -1, &result->sandbox.stderr_data, &result->sandbox.stderr_len);
    for (size_t i = 0; i < n_out; i++)
        close(out[i]);
    if (!ok)
        return hks_fail(err, 0, "arm the sandbox: %s", why);
    return 1;
}

/* Forget a claimed slot. Its sandbox has ended (or is being torn down by the spawner). */
static void drop_slot(rt_pool *pool, slot *s)
{
    pthread_mutex_lock(&pool->lock);
    rt_slot_unlink(pool, s);
    pthread_mutex_unlock(&pool->lock);
    rt_slot_free(s);
}

static int validate(const rt_exec_request *req, size_t *runtime, hks_error *err)
{
    const rt_runtime *rt = rt_runtime_find(req->runtime);
    if (!rt)
        return hks_fail(err, 0, "unknown runtime '%s' (python, node)",
                        req->runtime ? req->runtime : "");
    *runtime = (size_t)(rt - rt_runtimes);
    if (!req->entry || !rt_safe_name(req->entry))
        return hks_fail(err, 0, "entry '%s' is not a relative path inside /code",
                        req->entry ? req->entry : "");
    bool found = false;
    for (size_t i = 0; i < req->n_files; i++)
        found = found || (req->files[i].name && strcmp(req->files[i].name, req->entry) == 0);
    if (!found)
        return hks_fail(err, 0, "entry '%s' is not one of the files", req->entry);
    if (req->stdin_len > RT_MAX_STDIN_BYTES)
        return hks_fail(err, 0, "stdin of %zu bytes: at most %u", req->stdin_len,
                        RT_MAX_STDIN_BYTES);
    return 0;
}

int rt_pool_execute(rt_pool *pool, const rt_exec_request *req, rt_exec_result *result,
                    hks_error *err)
{
    memset(result, 0, sizeof(*result));
    size_t runtime = 0;
    if (validate(req, &runtime, err) < 0)
        return -1;
    sbx_limits limits = req->limits ? *req->limits : pool->cfg.limits;
    /* what is fixed when a sandbox is created (tmpfs sizes, rlimits) must match the warm ones';
     * otherwise the execution gets a cold sandbox made to measure */
    const sbx_limits *w = &pool->cfg.limits;
    /* RLIMIT_CPU too is set at creation: a warm sandbox can serve at most its CPU time */
    bool fits_warm = limits.tmpfs_bytes == w->tmpfs_bytes && limits.shm_bytes == w->shm_bytes &&
                     limits.fsize_bytes == w->fsize_bytes && limits.nofile == w->nofile &&
                     limits.cpu_ms <= w->cpu_ms;
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        /* a warm sandbox may end between being claimed and armed (its idle time ran out):
         * try another, and at the last attempt a cold one */
        bool warm = false;
        slot *s = claim(pool, runtime, attempt < ATTEMPTS - 1 && fits_warm, &limits, &warm, err);
        if (!s)
            return -1;
        if (rt_write_files(s->code_dir, req->files, req->n_files, err) < 0 ||
            give_stdin(s, req, err) < 0) {
            release_slot(pool, s, true, NULL);
            return -1;
        }
        int rc = run_in(pool, s, req, &limits, result, err);
        if (rc == 0) {
            release_slot(pool, s, false, NULL);
            continue;
        }
        drop_slot(pool, s);
        /* The replacement is started only now: creating a sandbox occupies the single-threaded
         * spawner for milliseconds and the new interpreter's start takes a core, and neither
         * should delay this execution. */
        if (warm)
            wake_refiller(pool);
        if (rc < 0) {
            rt_exec_result_release(result);
            return -1;
        }
        result->warm = warm;
        return 0;
    }
    return hks_fail(err, 0, "no sandbox could be used");
}

void rt_exec_result_release(rt_exec_result *result)
{
    sbx_result_release(&result->sandbox);
}
