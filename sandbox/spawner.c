/* The spawner: a single-threaded process, forked by hksd before it starts threads, that creates
 * every sandbox (fork after threads is unsafe with libraries that allocate, such as libseccomp
 * and libcap), watches them all from one epoll loop and sends back their results. */
#include "internal.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAX_PROFILES 16
#define MAX_JOBS     1024
#define MAX_ARGS     256
#define MAX_MOUNTS   32

typedef struct named_profile {
    char name[64];
    sbx_profile *plain; /* AF_UNIX sockets only */
    sbx_profile *inet;  /* network enabled */
} named_profile;

typedef struct job {
    json_int_t id;
    json_t *request; /* owns the strings the config points to */
    char *argv[MAX_ARGS + 1];
    char *env[MAX_ARGS + 1];
    sbx_mount mounts[MAX_MOUNTS];
    sbx_config cfg;
    int fds[SBX_MSG_MAX_FDS];
    size_t n_fds;
    sbx_run *run;
} job;

typedef struct spawner_state {
    int sock;
    int epfd;
    named_profile profiles[MAX_PROFILES];
    size_t n_profiles;
    job *jobs[MAX_JOBS];
} spawner_state;

static void reply_error(spawner_state *s, json_int_t id, const char *message)
{
    json_t *msg = json_pack("{s:s, s:I, s:s}", "op", "error", "id", id, "message", message);
    hks_error err;
    (void)sbx_msg_send(s->sock, msg, NULL, 0, &err);
    json_decref(msg);
}

static named_profile *find_profile(spawner_state *s, const char *name)
{
    for (size_t i = 0; i < s->n_profiles; i++) {
        if (strcmp(s->profiles[i].name, name) == 0)
            return &s->profiles[i];
    }
    return NULL;
}

static void load_profile(spawner_state *s, json_int_t id, json_t *msg)
{
    const char *name = json_string_value(json_object_get(msg, "name"));
    const char *path = json_string_value(json_object_get(msg, "path"));
    if (!name || !path || !name[0] || strlen(name) >= sizeof(s->profiles[0].name)) {
        reply_error(s, id, "load_profile needs a name (1-63 characters) and a path");
        return;
    }
    hks_error err = {0};
    sbx_profile *plain = NULL, *inet = NULL;
    if (sbx_profile_load(path, false, &plain, &err) < 0 ||
        sbx_profile_load(path, true, &inet, &err) < 0) {
        sbx_profile_free(plain);
        reply_error(s, id, err.msg);
        return;
    }
    named_profile *p = find_profile(s, name);
    if (!p) {
        if (s->n_profiles >= MAX_PROFILES) {
            sbx_profile_free(plain);
            sbx_profile_free(inet);
            reply_error(s, id, "too many profiles");
            return;
        }
        p = &s->profiles[s->n_profiles++];
        snprintf(p->name, sizeof(p->name), "%s", name);
    }
    /* Runs in progress keep the program they were given: it was copied into their process. */
    sbx_profile_free(p->plain);
    sbx_profile_free(p->inet);
    p->plain = plain;
    p->inet = inet;
    json_t *reply = json_pack("{s:s, s:I, s:I}", "op", "loaded", "id", id, "insns",
                              (json_int_t)sbx_profile_insns(plain));
    (void)sbx_msg_send(s->sock, reply, NULL, 0, &err);
    json_decref(reply);
}

static void job_free(job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n_fds; i++)
        close(j->fds[i]);
    json_decref(j->request);
    free(j);
}

static int string_array(json_t *array, char **out, const char *field, hks_error *err)
{
    if (!array || json_is_null(array)) {
        out[0] = NULL;
        return 0;
    }
    if (!json_is_array(array) || json_array_size(array) > MAX_ARGS)
        return hks_fail(err, 0, "%s must be an array of at most %d strings", field, MAX_ARGS);
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return hks_fail(err, 0, "%s[%zu] must be a string without NUL bytes", field, i);
        out[i] = (char *)json_string_value(v);
    }
    out[json_array_size(array)] = NULL;
    return 0;
}

static int limit_field(json_t *limits, const char *name, uint64_t max, uint64_t *value,
                       hks_error *err)
{
    json_t *v = json_object_get(limits, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || (uint64_t)json_integer_value(v) > max)
        return hks_fail(err, 0, "limits.%s must be an integer from 1 to %llu", name,
                        (unsigned long long)max);
    *value = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_limits(json_t *limits, sbx_limits *l, hks_error *err)
{
    if (!limits)
        return 0;
    if (!json_is_object(limits))
        return hks_fail(err, 0, "limits must be an object");
    const uint64_t tb = 1ULL << 40;
    return limit_field(limits, "memory_bytes", tb, &l->memory_bytes, err) < 0 ||
                   limit_field(limits, "pids", 1 << 22, &l->pids, err) < 0 ||
                   limit_field(limits, "cpu_millis", 1 << 20, &l->cpu_millis, err) < 0 ||
                   limit_field(limits, "wall_ms", 7ULL * 24 * 3600 * 1000, &l->wall_ms, err) < 0 ||
                   limit_field(limits, "cpu_ms", 7ULL * 24 * 3600 * 1000, &l->cpu_ms, err) < 0 ||
                   limit_field(limits, "tmpfs_bytes", tb, &l->tmpfs_bytes, err) < 0 ||
                   limit_field(limits, "shm_bytes", tb, &l->shm_bytes, err) < 0 ||
                   limit_field(limits, "fsize_bytes", tb, &l->fsize_bytes, err) < 0 ||
                   limit_field(limits, "nofile", 1 << 20, &l->nofile, err) < 0 ||
                   limit_field(limits, "stdout_max", 1ULL << 30, &l->stdout_max, err) < 0 ||
                   limit_field(limits, "stderr_max", 1ULL << 30, &l->stderr_max, err) < 0
               ? -1
               : 0;
}

static int parse_mounts(json_t *mounts, job *j, hks_error *err)
{
    if (!mounts)
        return 0;
    if (!json_is_array(mounts) || json_array_size(mounts) > MAX_MOUNTS)
        return hks_fail(err, 0, "mounts must be an array of at most %d objects", MAX_MOUNTS);
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *source = json_string_value(json_object_get(m, "source"));
        const char *target = json_string_value(json_object_get(m, "target"));
        if (!source || !target || target[0] != '/')
            return hks_fail(err, 0, "mounts[%zu] needs a source and an absolute target", i);
        j->mounts[i] = (sbx_mount){.source = source,
                                   .target = target,
                                   .writable = json_is_true(json_object_get(m, "writable"))};
    }
    j->cfg.mounts = j->mounts;
    j->cfg.n_mounts = json_array_size(mounts);
    return 0;
}

/* Turn a run request into a config whose strings live in the request. */
static int decode_run(spawner_state *s, job *j, hks_error *err)
{
    json_t *r = j->request;
    sbx_config_init(&j->cfg);
    const char *profile_name = json_string_value(json_object_get(r, "profile"));
    named_profile *p = profile_name ? find_profile(s, profile_name) : NULL;
    if (!p)
        return hks_fail(err, 0, "unknown profile '%s' (load_profile first)",
                        profile_name ? profile_name : "");
    j->cfg.network = json_is_true(json_object_get(r, "network"));
    j->cfg.profile = j->cfg.network ? p->inet : p->plain;
    if (string_array(json_object_get(r, "argv"), j->argv, "argv", err) < 0 ||
        string_array(json_object_get(r, "env"), j->env, "env", err) < 0)
        return -1;
    if (!j->argv[0])
        return hks_fail(err, 0, "argv must not be empty");
    j->cfg.argv = j->argv;
    j->cfg.env = json_object_get(r, "env") ? j->env : NULL;
    j->cfg.cwd = json_string_value(json_object_get(r, "cwd"));
    const char *hostname = json_string_value(json_object_get(r, "hostname"));
    if (hostname)
        j->cfg.hostname = hostname;
    if (parse_mounts(json_object_get(r, "mounts"), j, err) < 0 ||
        parse_limits(json_object_get(r, "limits"), &j->cfg.limits, err) < 0)
        return -1;
    const char *cgroup_parent = json_string_value(json_object_get(r, "cgroup_parent"));
    if (cgroup_parent)
        j->cfg.cgroup_parent = cgroup_parent;

    size_t next = 0;
    if (json_is_true(json_object_get(r, "stdin"))) {
        if (j->n_fds < 1)
            return hks_fail(err, 0, "stdin requested but no fd attached");
        j->cfg.stdin_fd = j->fds[next++];
    }
    json_t *pass = json_object_get(r, "pass_fds");
    size_t n_pass = json_is_integer(pass) ? (size_t)json_integer_value(pass) : 0;
    if (pass &&
        (!json_is_integer(pass) || json_integer_value(pass) < 0 || next + n_pass != j->n_fds))
        return hks_fail(err, 0, "pass_fds must count the fds attached after stdin");
    if (!pass && next != j->n_fds)
        return hks_fail(err, 0, "%zu fds attached but none expected", j->n_fds);
    j->cfg.pass_fds = j->fds + next;
    j->cfg.n_pass_fds = n_pass;
    j->cfg.output = SBX_OUTPUT_CAPTURE;
    return 0;
}

static int free_slot(spawner_state *s)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        if (!s->jobs[i])
            return i;
    }
    return -1;
}

static void start_run(spawner_state *s, json_int_t id, json_t *msg, int *fds, size_t n_fds)
{
    job *j = calloc(1, sizeof(*j));
    if (!j) {
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
        reply_error(s, id, "out of memory");
        return;
    }
    j->id = id;
    j->request = json_incref(msg);
    memcpy(j->fds, fds, n_fds * sizeof(int));
    j->n_fds = n_fds;
    hks_error err = {0};
    int slot = free_slot(s);
    if (slot < 0) {
        reply_error(s, id, "too many sandboxes at once");
        job_free(j);
        return;
    }
    if (decode_run(s, j, &err) < 0 || sbx_run_start(&j->cfg, &j->run, &err) < 0) {
        reply_error(s, id, err.msg);
        job_free(j);
        return;
    }
    /* the sandbox has its own copies now */
    for (size_t i = 0; i < j->n_fds; i++)
        close(j->fds[i]);
    j->n_fds = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)slot + 1};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sbx_run_fd(j->run), &ev);
    s->jobs[slot] = j;
    json_t *started =
        json_pack("{s:s, s:I, s:i}", "op", "started", "id", id, "pid", (int)sbx_run_pid(j->run));
    (void)sbx_msg_send(s->sock, started, NULL, 0, &err);
    json_decref(started);
}

static int output_memfd(const char *name, const char *data, size_t len)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (hks_write_all(fd, data, len) < 0) {
        close(fd);
        return -1;
    }
    lseek(fd, 0, SEEK_SET);
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

static void finish_job(spawner_state *s, int slot)
{
    job *j = s->jobs[slot];
    s->jobs[slot] = NULL;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, sbx_run_fd(j->run), NULL);
    sbx_result result;
    sbx_run_finish(j->run, &result);
    json_t *record = sbx_result_to_json(&result);
    json_object_del(record, "stdout");
    json_object_del(record, "stderr");
    json_object_set_new(record, "stdout_bytes", json_integer((json_int_t)result.stdout_len));
    json_object_set_new(record, "stderr_bytes", json_integer((json_int_t)result.stderr_len));
    int fds[2] = {output_memfd("hks-stdout", result.stdout_data, result.stdout_len),
                  output_memfd("hks-stderr", result.stderr_data, result.stderr_len)};
    json_t *msg = json_pack("{s:s, s:I, s:o}", "op", "result", "id", j->id, "result", record);
    hks_error err;
    if (fds[0] >= 0 && fds[1] >= 0)
        (void)sbx_msg_send(s->sock, msg, fds, 2, &err);
    else
        reply_error(s, j->id, "could not hand over the output");
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    json_decref(msg);
    sbx_result_release(&result);
    job_free(j);
}

static void kill_job(spawner_state *s, json_int_t id)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        if (s->jobs[i] && s->jobs[i]->id == id) {
            sbx_run_kill(s->jobs[i]->run);
            return;
        }
    }
    reply_error(s, id, "no such run");
}

/* Returns false when the peer has gone. */
static bool handle_request(spawner_state *s)
{
    json_t *msg = NULL;
    int fds[SBX_MSG_MAX_FDS];
    size_t n_fds = 0;
    hks_error err = {0};
    if (sbx_msg_recv(s->sock, &msg, fds, &n_fds, &err) < 0) {
        if (err.errnum == ECONNRESET || err.errnum == EBADF)
            return false;
        reply_error(s, 0, err.msg);
        return true;
    }
    if (!msg) {
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
        return false;
    }
    const char *op = json_string_value(json_object_get(msg, "op"));
    json_t *id_json = json_object_get(msg, "id");
    json_int_t id = json_is_integer(id_json) ? json_integer_value(id_json) : 0;
    bool takes_fds = op && strcmp(op, "run") == 0;
    if (!takes_fds) {
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
    }
    if (!op || !json_is_integer(id_json))
        reply_error(s, id, "a message needs \"op\" and an integer \"id\"");
    else if (strcmp(op, "run") == 0)
        start_run(s, id, msg, fds, n_fds);
    else if (strcmp(op, "load_profile") == 0)
        load_profile(s, id, msg);
    else if (strcmp(op, "kill") == 0)
        kill_job(s, id);
    else
        reply_error(s, id, "unknown op");
    json_decref(msg);
    return true;
}

static void shutdown_all(spawner_state *s)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        if (s->jobs[i])
            sbx_run_kill(s->jobs[i]->run);
    }
    for (int i = 0; i < MAX_JOBS; i++) {
        if (!s->jobs[i])
            continue;
        sbx_result result;
        sbx_run_finish(s->jobs[i]->run, &result);
        sbx_result_release(&result);
        job_free(s->jobs[i]);
        s->jobs[i] = NULL;
    }
    for (size_t i = 0; i < s->n_profiles; i++) {
        sbx_profile_free(s->profiles[i].plain);
        sbx_profile_free(s->profiles[i].inet);
    }
}

int sbx_spawner_serve(int sock)
{
    spawner_state *s = calloc(1, sizeof(*s));
    if (!s)
        return 1;
    s->sock = sock;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);
    hks_error err = {0};
    if (sbx_cgroup_sweep(NULL, &err) < 0)
        fprintf(stderr, "hks-spawner: sweeping old cgroups: %s\n", err.msg);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sock, &ev);
    bool running = true;
    while (running) {
        struct epoll_event events[64];
        int n = epoll_wait(s->epfd, events, 64, -1);
        for (int i = 0; i < n && running; i++) {
            uint32_t tag = events[i].data.u32;
            if (tag == 0) {
                running = handle_request(s);
                continue;
            }
            job *j = s->jobs[tag - 1];
            if (j && sbx_run_step(j->run, 0) == 1)
                finish_job(s, (int)tag - 1);
        }
    }
    shutdown_all(s);
    close(s->epfd);
    free(s);
    return 0;
}

struct sbx_spawner {
    int sock;
    pid_t pid;
};

int sbx_spawner_start(sbx_spawner **out, hks_error *err)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        return hks_fail(err, errno, "socketpair for the spawner");
    sbx_spawner *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        close(pair[0]);
        close(pair[1]);
        return hks_fail(err, ENOMEM, "spawner");
    }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(pair[0]);
        close(pair[1]);
        free(sp);
        return hks_fail(err, saved, "fork the spawner");
    }
    if (pid == 0) {
        close(pair[0]);
        prctl(PR_SET_NAME, "hks-spawner");
        _exit(sbx_spawner_serve(pair[1]));
    }
    close(pair[1]);
    sp->sock = pair[0];
    sp->pid = pid;
    *out = sp;
    return 0;
}

int sbx_spawner_fd(const sbx_spawner *spawner)
{
    return spawner->sock;
}

int sbx_spawner_stop(sbx_spawner *spawner)
{
    close(spawner->sock);
    int status = 0;
    while (waitpid(spawner->pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(spawner);
    return status;
}

int sbx_spawner_cli(int argc, char **argv);
int sbx_spawner_cli(int argc, char **argv)
{
    static const struct option opts[] = {{"fd", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    unsigned long long fd = 0;
    bool have_fd = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'f' || hks_parse_uint(optarg, 0, 65535, &fd) < 0) {
            fputs("usage: hks-sandbox spawner --fd N   (N: a SOCK_SEQPACKET socket)\n", stderr);
            return 2;
        }
        have_fd = true;
    }
    if (!have_fd) {
        fputs("usage: hks-sandbox spawner --fd N   (N: a SOCK_SEQPACKET socket)\n", stderr);
        return 2;
    }
    return sbx_spawner_serve((int)fd);
}
