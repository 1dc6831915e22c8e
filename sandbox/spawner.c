/* The spawner: a single-threaded process, forked by hksd before it starts threads, that creates
 * every sandbox (fork after threads is unsafe with libraries that allocate, such as libseccomp
 * and libcap), watches them all from one epoll loop and sends back their results. */
#include "internal.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
    sbx_request req;
    sbx_run *run;
    bool reported; /* the result went out; only the sandbox's teardown is left */
    int reply_fd;  /* where this run's result goes (given with "arm"), -1: the main socket */
} job;

typedef struct janitor {
    pid_t pid;
    int pidfd;
} janitor;

#define MAX_JANITORS 256
#define JANITOR_TAG  (UINT32_MAX - 1)

typedef struct spawner_state {
    bool running; /* false once shutting down */
    janitor janitors[MAX_JANITORS];
    size_t n_janitors;
    int sock;
    int epfd;
    named_profile profiles[MAX_PROFILES];
    size_t n_profiles;
    job *jobs[MAX_JOBS];
} spawner_state;

static void reply_error_to(int sock, json_int_t id, const char *message)
{
    json_t *msg = json_pack("{s:s, s:I, s:s}", "op", "error", "id", id, "message", message);
    hks_error err;
    (void)sbx_msg_send(sock, msg, NULL, 0, &err);
    json_decref(msg);
}

static void reply_error(spawner_state *s, json_int_t id, const char *message)
{
    reply_error_to(s->sock, id, message);
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
    if (j->reply_fd >= 0)
        close(j->reply_fd);
    sbx_request_release(&j->req);
    free(j);
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
    j->reply_fd = -1;
    j->req.json = json_incref(msg);
    memcpy(j->req.fds, fds, n_fds * sizeof(int));
    j->req.n_fds = n_fds;
    hks_error err = {0};
    int slot = free_slot(s);
    if (slot < 0) {
        reply_error(s, id, "too many sandboxes at once");
        job_free(j);
        return;
    }
    const char *profile_name = json_string_value(json_object_get(msg, "profile"));
    named_profile *p = profile_name ? find_profile(s, profile_name) : NULL;
    if (!p) {
        hks_fail(&err, 0, "unknown profile '%s' (load_profile first)",
                 profile_name ? profile_name : "");
    }
    if (!p || sbx_request_decode(&j->req, p->plain, p->inet, &err) < 0 ||
        sbx_run_start(&j->req.cfg, &j->run, &err) < 0) {
        reply_error(s, id, err.msg);
        job_free(j);
        return;
    }
    /* the sandbox has its own copies now */
    sbx_request_close_fds(&j->req);
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

/* The program is done: send its result now, before the namespaces' teardown finishes. */
static void report_job(spawner_state *s, job *j)
{
    sbx_result result;
    sbx_run_result(j->run, &result);
    j->reported = true;
    json_t *record = sbx_result_to_json(&result);
    json_object_del(record, "stdout");
    json_object_del(record, "stderr");
    json_object_set_new(record, "stdout_bytes", json_integer((json_int_t)result.stdout_len));
    json_object_set_new(record, "stderr_bytes", json_integer((json_int_t)result.stderr_len));
    int fds[2] = {output_memfd("hks-stdout", result.stdout_data, result.stdout_len),
                  output_memfd("hks-stderr", result.stderr_data, result.stderr_len)};
    json_t *msg = json_pack("{s:s, s:I, s:o}", "op", "result", "id", j->id, "result", record);
    hks_error err;
    int to = j->reply_fd >= 0 ? j->reply_fd : s->sock;
    if (fds[0] >= 0 && fds[1] >= 0)
        (void)sbx_msg_send(to, msg, fds, 2, &err);
    else
        reply_error_to(to, j->id, "could not hand over the output");
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    json_decref(msg);
    sbx_result_release(&result);
}

/* Processes removing cgroups in the background: reaped when they end, waited for at shutdown. */
static void watch_janitor(spawner_state *s, pid_t pid)
{
    if (pid <= 0)
        return;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = JANITOR_TAG};
    if (fd < 0 || s->n_janitors >= MAX_JANITORS || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (fd >= 0)
            close(fd);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return;
    }
    s->janitors[s->n_janitors++] = (janitor){.pid = pid, .pidfd = fd};
}

static void reap_janitors(spawner_state *s, bool wait_all)
{
    for (size_t i = 0; i < s->n_janitors;) {
        janitor *jn = &s->janitors[i];
        pid_t done;
        do {
            done = waitpid(jn->pid, NULL, wait_all ? 0 : WNOHANG);
        } while (done < 0 && errno == EINTR);
        if (done == jn->pid || (done < 0 && errno == ECHILD)) {
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, jn->pidfd, NULL);
            close(jn->pidfd);
            s->janitors[i] = s->janitors[--s->n_janitors];
            continue;
        }
        i++;
    }
}

static void free_job(spawner_state *s, int slot)
{
    job *j = s->jobs[slot];
    s->jobs[slot] = NULL;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, sbx_run_fd(j->run), NULL);
    if (s->running) {
        watch_janitor(s, sbx_run_dispose(j->run));
    } else {
        /* shutting down: nothing may be left once the spawner has exited */
        hks_error err = {0};
        if (sbx_run_free(j->run, &err) < 0)
            fprintf(stderr, "hks-spawner: %s\n", err.msg);
    }
    job_free(j);
}

static job *find_job(spawner_state *s, json_int_t id)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        if (s->jobs[i] && s->jobs[i]->id == id)
            return s->jobs[i];
    }
    return NULL;
}

/* A sandbox started ahead of time gets its real limits and a fresh clock. */
/* A sandbox started ahead of time gets its real limits and a fresh clock. With "reply":true the
 * first fd attached receives this run's "armed", errors and result from now on (the caller
 * waits on it directly, with no dispatcher in between). With "send" the string is written to the
 * next fd attached once armed, then that fd is closed: the launcher's "go" leaves only after the
 * limits are in place, without a round trip. */
static void arm_job(spawner_state *s, json_int_t id, json_t *msg, int *fds, size_t n_fds)
{
    job *j = find_job(s, id);
    size_t next = 0;
    int reply = s->sock;
    if (json_is_true(json_object_get(msg, "reply")) && next < n_fds)
        reply = fds[next++];
    const char *send_text = json_string_value(json_object_get(msg, "send"));
    int send_fd = send_text && next < n_fds ? fds[next++] : -1;
    hks_error err = {0};
    sbx_limits limits;
    if (!j || j->reported) {
        hks_fail(&err, 0, "no such run");
    } else {
        limits = j->req.cfg.limits;
        if (sbx_request_parse_limits(json_object_get(msg, "limits"), &limits, &err) == 0 &&
            sbx_run_rearm(j->run, &limits, &err) == 0)
            j->req.cfg.limits = limits;
        else if (!err.msg[0])
            hks_fail(&err, 0, "arm failed");
    }
    if (!err.msg[0] && send_fd >= 0 &&
        send(send_fd, send_text, strlen(send_text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        hks_fail(&err, errno, "pass the message on");
    if (err.msg[0]) {
        reply_error_to(reply, id, err.msg);
    } else {
        json_t *armed = json_pack("{s:s, s:I}", "op", "armed", "id", id);
        (void)sbx_msg_send(reply, armed, NULL, 0, &err);
        json_decref(armed);
    }
    if (j && !j->reported && reply != s->sock) {
        if (j->reply_fd >= 0)
            close(j->reply_fd);
        j->reply_fd = reply; /* the job owns it now */
    } else if (reply != s->sock) {
        close(reply);
    }
    for (size_t i = next - (send_fd >= 0 ? 1 : 0); i < n_fds; i++) {
        if (fds[i] != reply)
            close(fds[i]);
    }
}

static void kill_job(spawner_state *s, json_int_t id)
{
    job *j = find_job(s, id);
    if (j && !j->reported)
        sbx_run_kill(j->run);
    else if (!j)
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
    bool takes_fds = op && (strcmp(op, "run") == 0 || strcmp(op, "arm") == 0);
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
    else if (strcmp(op, "arm") == 0)
        arm_job(s, id, msg, fds, n_fds);
    else
        reply_error(s, id, "unknown op");
    json_decref(msg);
    return true;
}

static void shutdown_all(spawner_state *s)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        if (s->jobs[i] && !s->jobs[i]->reported)
            sbx_run_kill(s->jobs[i]->run);
    }
    for (int i = 0; i < MAX_JOBS; i++) {
        if (s->jobs[i])
            free_job(s, i);
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
    /* hksd decides when the spawner ends (by closing the socket): a Ctrl-C or hang-up sent to
     * the whole process group is left to hksd, and SIGTERM ends it as cleanly as a close. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    int term_fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
    hks_error err = {0};
    if (sbx_cgroup_sweep(NULL, &err) < 0)
        fprintf(stderr, "hks-spawner: sweeping old cgroups: %s\n", err.msg);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sock, &ev);
    struct epoll_event term_ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (term_fd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, term_fd, &term_ev);
    s->running = true;
    while (s->running) {
        struct epoll_event events[64];
        int n = epoll_wait(s->epfd, events, 64, -1);
        for (int i = 0; i < n && s->running; i++) {
            uint32_t tag = events[i].data.u32;
            if (tag == 0) {
                s->running = handle_request(s);
                continue;
            }
            if (tag == UINT32_MAX) {
                s->running = false;
                continue;
            }
            if (tag == JANITOR_TAG) {
                reap_janitors(s, false);
                continue;
            }
            job *j = s->jobs[tag - 1];
            if (j && sbx_run_step(j->run, 0) == 1) {
                if (!j->reported)
                    report_job(s, j);
                if (j->reported && sbx_run_drained(j->run))
                    free_job(s, (int)tag - 1);
            }
        }
    }
    shutdown_all(s);
    reap_janitors(s, true);
    if (term_fd >= 0)
        close(term_fd);
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

pid_t sbx_spawner_pid(const sbx_spawner *spawner)
{
    return spawner->pid;
}

extern char **environ;

int sbx_spawner_respawn(sbx_spawner *spawner, const char *exe, hks_error *err)
{
    /* the old one is reaped first: the new spawner's sweep removes the cgroups of creators that
     * are gone, and a zombie still counts as there */
    if (spawner->pid > 0) {
        kill(spawner->pid, SIGKILL);
        while (waitpid(spawner->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        spawner->pid = -1;
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        return hks_fail(err, errno, "socketpair for the spawner");
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    /* fd 3 is the socket; nothing else of the caller's but stdio reaches the spawner */
    posix_spawn_file_actions_adddup2(&actions, pair[1], 3);
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {(char *)exe, "spawner", "--fd", "3", NULL};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe, &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(pair[1]);
    if (rc != 0) {
        close(pair[0]);
        return hks_fail(err, rc, "start the spawner: %s spawner --fd 3", exe);
    }
    /* the same fd number: threads that send on it reach the new spawner, never another file */
    if (dup3(pair[0], spawner->sock, O_CLOEXEC) < 0) {
        int saved = errno;
        close(pair[0]);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return hks_fail(err, saved, "install the new spawner's socket");
    }
    close(pair[0]);
    spawner->pid = pid;
    return 0;
}

int sbx_spawner_stop(sbx_spawner *spawner)
{
    close(spawner->sock);
    int status = 0;
    while (spawner->pid > 0 && waitpid(spawner->pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(spawner);
    return status;
}

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
    prctl(PR_SET_NAME, "hks-spawner");
    return sbx_spawner_serve((int)fd);
}
