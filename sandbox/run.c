/* The supervisor side of one sandbox: create the cgroup, clone the child into new namespaces,
 * write its id maps, then watch it (output, exit, wall and CPU deadlines) from an epoll set that
 * callers can poll among others, and account for everything at the end. */
#include "internal.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

typedef enum kill_reason {
    KILL_NONE,
    KILL_WALL,
    KILL_CPU,
    KILL_OUTPUT,
    KILL_REQUEST,
} kill_reason;

typedef struct output_stream {
    int fd; /* read end, non-blocking; -1 at EOF */
    char *data;
    size_t len, cap;
    uint64_t max;
    bool truncated;
    int sink; /* forward mode: where the bytes go */
} output_stream;

struct sbx_run {
    sbx_output_mode output_mode;
    sbx_limits limits;
    sbx_cgroup cg;
    pid_t pid;
    int pidfd;
    int epfd;
    int timerfd;
    int report_fd;
    int go_fd;      /* sync socket to the child: 'm' sent, 'c' once it is in its cgroup */
    pid_t attacher; /* v1: the process moving the child into its cgroup */
    int attacher_pidfd;
    int attacher_msg; /* read end: why the attacher failed */
    output_stream out, err;
    uint64_t start_us, end_us;
    uint64_t wall_deadline_us;
    uint64_t next_cpu_check_us;
    uint64_t cpu_base_us; /* CPU used before the last arm: not the program's */
    unsigned cpus;        /* how many cores the sandbox can use at once */
    kill_reason killed;
    bool sink_closed;  /* forward mode: the reader of our output went away */
    bool result_taken; /* sbx_run_result was called: only the teardown is left */
    bool exited;
    bool reaped;
    struct rusage rusage;
    bool have_program_status;
    int program_status;
    char setup_error[sizeof(((sbx_report *)0)->text)];
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int make_pipe(int fds[2], hks_error *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return hks_fail(err, errno, "pipe");
    return 0;
}

/* Direct output: the program writes straight into the caller's fds; nothing is read here. */
static int direct_output(const sbx_config *cfg, int out_pipe[2], int err_pipe[2], hks_error *err)
{
    out_pipe[1] = fcntl(cfg->stdout_sink, F_DUPFD_CLOEXEC, 3);
    if (out_pipe[1] < 0)
        return hks_fail(err, errno, "duplicate the stdout sink %d", cfg->stdout_sink);
    err_pipe[1] = fcntl(cfg->stderr_sink, F_DUPFD_CLOEXEC, 3);
    if (err_pipe[1] < 0)
        return hks_fail(err, errno, "duplicate the stderr sink %d", cfg->stderr_sink);
    return 0;
}

/* A socket rather than a pipe: telling a child that already died is EPIPE, not SIGPIPE. */
static int make_sync_socket(int fds[2], hks_error *err)
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return hks_fail(err, errno, "socketpair");
    return 0;
}

static void arm_timer(sbx_run *run)
{
    uint64_t next = run->wall_deadline_us;
    if (run->next_cpu_check_us && run->next_cpu_check_us < next)
        next = run->next_cpu_check_us;
    struct itimerspec its = {0};
    uint64_t now = hks_now_us();
    uint64_t delay = next > now ? next - now : 1;
    its.it_value.tv_sec = (time_t)(delay / 1000000);
    its.it_value.tv_nsec = (long)(delay % 1000000) * 1000;
    timerfd_settime(run->timerfd, 0, &its, NULL);
}

/* The earliest moment the sandbox could reach its CPU limit, given how much it used so far:
 * checking then (not on a fixed tick) costs nothing for short runs and stays exact. */
static void schedule_cpu_check(sbx_run *run, uint64_t used_us)
{
    uint64_t limit_us = run->limits.cpu_ms * 1000;
    uint64_t left = limit_us > used_us ? limit_us - used_us : 0;
    uint64_t step = left / run->cpus;
    if (step < 2000)
        step = 2000;
    run->next_cpu_check_us = hks_now_us() + step;
}

static void kill_sandbox(sbx_run *run, kill_reason reason)
{
    if (run->killed == KILL_NONE)
        run->killed = reason;
    /* SIGKILL to the namespace's init takes every process of the namespace with it. */
    if (!run->exited && run->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
}

static void read_stream(sbx_run *run, output_stream *s)
{
    char buf[65536];
    while (s->fd >= 0) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                close_fd(&s->fd);
            return;
        }
        if (n == 0) {
            epoll_ctl(run->epfd, EPOLL_CTL_DEL, s->fd, NULL);
            close_fd(&s->fd);
            return;
        }
        size_t keep = (size_t)n;
        if (s->len + keep > s->max) {
            keep = s->max > s->len ? (size_t)(s->max - s->len) : 0;
            s->truncated = true;
        }
        if (keep > 0 && run->output_mode == SBX_OUTPUT_FORWARD) {
            /* nobody reads the output any more (`... | head -1`): the run has no purpose left */
            if (s->sink >= 0 && hks_write_all(s->sink, buf, keep) < 0) {
                s->sink = -1;
                run->sink_closed = true;
                kill_sandbox(run, KILL_REQUEST);
            }
            s->len += keep;
        } else if (keep > 0) {
            if (!s->data || s->len + keep + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 4096;
                while (cap < s->len + keep + 1)
                    cap *= 2;
                char *grown = realloc(s->data, cap);
                if (!grown) {
                    s->truncated = true;
                    kill_sandbox(run, KILL_OUTPUT);
                    return;
                }
                s->data = grown;
                s->cap = cap;
            }
            memcpy(s->data + s->len, buf, keep);
            s->len += keep;
        }
        if (s->truncated) {
            kill_sandbox(run, KILL_OUTPUT);
            /* keep draining so nothing blocks; the bytes are dropped */
        }
    }
}

static void read_reports(sbx_run *run)
{
    while (run->report_fd >= 0) {
        sbx_report r;
        ssize_t n = read(run->report_fd, &r, sizeof(r));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n != (ssize_t)sizeof(r)) {
            epoll_ctl(run->epfd, EPOLL_CTL_DEL, run->report_fd, NULL);
            close_fd(&run->report_fd);
            return;
        }
        r.text[sizeof(r.text) - 1] = '\0';
        if (r.kind == 'E' && !run->setup_error[0])
            snprintf(run->setup_error, sizeof(run->setup_error), "%s", r.text);
        else if (r.kind == 'X') {
            run->have_program_status = true;
            run->program_status = r.wait_status;
        }
    }
}

static void check_deadlines(sbx_run *run)
{
    if (run->have_program_status)
        return; /* the program has ended: whatever is left is the teardown */
    uint64_t now = hks_now_us();
    if (now >= run->wall_deadline_us) {
        kill_sandbox(run, KILL_WALL);
        return;
    }
    if (run->next_cpu_check_us && now >= run->next_cpu_check_us) {
        uint64_t used = 0;
        if (sbx_cgroup_cpu_usage_us(&run->cg, &used) == 0) {
            used = used > run->cpu_base_us ? used - run->cpu_base_us : 0;
            if (used >= run->limits.cpu_ms * 1000) {
                kill_sandbox(run, KILL_CPU);
                return;
            }
            schedule_cpu_check(run, used);
        } else {
            run->next_cpu_check_us = 0; /* no cgroup: RLIMIT_CPU alone */
        }
    }
    arm_timer(run);
}

static void reap(sbx_run *run)
{
    if (run->reaped)
        return;
    int status;
    pid_t pid;
    do {
        pid = wait4(run->pid, &status, __WALL, &run->rusage);
    } while (pid < 0 && errno == EINTR);
    run->reaped = true;
    run->exited = true;
    if (!run->end_us)
        run->end_us = hks_now_us();
}

/* Everything about the program is known once init has reported its status (init then exits and
 * the kernel kills the rest) and its output has ended, or once init is gone. The namespaces'
 * teardown can take milliseconds more (an RCU grace period for the mounts): the result does not
 * wait for it. */
static bool result_ready(const sbx_run *run)
{
    return (run->exited || run->have_program_status) && run->out.fd < 0 && run->err.fd < 0;
}

static bool finished(const sbx_run *run)
{
    return run->exited && run->out.fd < 0 && run->err.fd < 0 && run->report_fd < 0 &&
           run->attacher_pidfd < 0;
}

/* The v1 move is done (or failed): tell the child to go on, or give up on the sandbox. */
static void attacher_done(sbx_run *run)
{
    int status = 0;
    while (waitpid(run->attacher, &status, 0) < 0 && errno == EINTR)
        ;
    epoll_ctl(run->epfd, EPOLL_CTL_DEL, run->attacher_pidfd, NULL);
    close_fd(&run->attacher_pidfd);
    run->attacher = 0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
    if (code == 0) {
        (void)send(run->go_fd, "c", 1, MSG_NOSIGNAL);
    } else if (!run->exited) {
        char why[sizeof(run->setup_error)] = "";
        ssize_t n = read(run->attacher_msg, why, sizeof(why) - 1);
        why[n > 0 ? n : 0] = '\0';
        snprintf(run->setup_error, sizeof(run->setup_error), "%s",
                 why[0] ? why : "the cgroup attacher died");
        kill_sandbox(run, KILL_REQUEST);
    }
    close_fd(&run->attacher_msg);
    close_fd(&run->go_fd);
}

/* Creating a v1 memory cgroup and moving a task into a v1 cgroup each can take milliseconds
 * (the move waits for an RCU grace period). A process of its own does both, so that the caller
 * (the spawner, serving many sandboxes) never blocks on them and the child builds its root
 * meanwhile. Returns 0 or -1 with err. */
static int start_attacher(sbx_run *run, const sbx_limits *limits, hks_error *err)
{
    int msg[2];
    if (pipe2(msg, O_CLOEXEC) < 0)
        return hks_fail(err, errno, "pipe for the cgroup attacher");
    pid_t pid = fork();
    if (pid < 0) {
        close(msg[0]);
        close(msg[1]);
        return hks_fail(err, errno, "fork the cgroup attacher");
    }
    if (pid == 0) {
        /* only the message pipe: nothing of the caller's (other sandboxes' fds) */
        if (dup2(msg[1], 3) < 0)
            _exit(EIO);
        close_range(4, ~0U, 0);
        hks_error child_err = {0};
        int rc = sbx_cgroup_make(&run->cg, limits, &child_err);
        if (rc == 0)
            rc = sbx_cgroup_attach(&run->cg, run->pid, &child_err);
        if (rc < 0)
            (void)hks_write_all(3, child_err.msg, strlen(child_err.msg));
        _exit(rc == 0 ? 0 : (child_err.errnum ? child_err.errnum : EIO));
    }
    close(msg[1]);
    run->attacher_msg = msg[0];
    run->attacher = pid;
    run->attacher_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (run->attacher_pidfd < 0) {
        int saved = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        run->attacher = 0;
        return hks_fail(err, saved, "pidfd_open of the cgroup attacher");
    }
    return 0;
}

int sbx_run_step(sbx_run *run, int timeout_ms)
{
    if (finished(run))
        return 1;
    struct epoll_event events[8];
    int n = epoll_wait(run->epfd, events, 8, timeout_ms);
    if (n < 0 && errno != EINTR)
        n = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == run->out.fd)
            read_stream(run, &run->out);
        else if (fd == run->err.fd)
            read_stream(run, &run->err);
        else if (fd == run->report_fd)
            read_reports(run);
        else if (fd == run->timerfd) {
            uint64_t ticks;
            (void)!read(run->timerfd, &ticks, sizeof(ticks));
            if (!run->exited)
                check_deadlines(run);
        } else if (fd == run->pidfd) {
            epoll_ctl(run->epfd, EPOLL_CTL_DEL, run->pidfd, NULL);
            reap(run);
        } else if (fd == run->attacher_pidfd) {
            attacher_done(run);
        }
    }
    if (run->exited && !finished(run)) {
        /* Every process of the namespace is gone once init is: what is left in the pipes is
         * all there will be. */
        read_stream(run, &run->out);
        read_stream(run, &run->err);
        read_reports(run);
    }
    if (run->have_program_status && !run->end_us)
        run->end_us = hks_now_us();
    return run->result_taken ? (finished(run) ? 1 : 0) : (result_ready(run) ? 1 : 0);
}

static unsigned usable_cpus(const sbx_limits *l)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned by_quota = (unsigned)((l->cpu_millis + 999) / 1000);
    unsigned n = online > 0 ? (unsigned)online : 1;
    if (by_quota && by_quota < n)
        n = by_quota;
    return n ? n : 1;
}

static int write_id_maps(pid_t pid, const sbx_config *cfg, hks_error *err)
{
    char path[64], map[64];
    bool root = geteuid() == 0;
    uid_t host_uid = root ? cfg->host_uid : geteuid();
    gid_t host_gid = root ? cfg->host_gid : getegid();
    if (!root) {
        /* an unprivileged writer may map only its own ids, and only with setgroups denied */
        snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
        if (hks_write_file(path, "deny", err) < 0)
            return -1;
    }
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    snprintf(map, sizeof(map), "%d %u 1\n", SBX_INNER_UID, (unsigned)host_uid);
    if (hks_write_file(path, map, err) < 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    snprintf(map, sizeof(map), "%d %u 1\n", SBX_INNER_GID, (unsigned)host_gid);
    return hks_write_file(path, map, err);
}

static int watch(sbx_run *run, int fd, hks_error *err)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(run->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return hks_fail(err, errno, "epoll_ctl");
    return 0;
}

static int validate(const sbx_config *cfg, hks_error *err)
{
    if (!cfg->argv || !cfg->argv[0] || !cfg->argv[0][0])
        return hks_fail(err, 0, "no program to run");
    if (!cfg->profile)
        return hks_fail(err, 0, "no seccomp profile");
    const sbx_limits *l = &cfg->limits;
    if (!l->memory_bytes || !l->pids || !l->cpu_millis || !l->wall_ms || !l->cpu_ms ||
        !l->tmpfs_bytes || !l->shm_bytes || !l->nofile)
        return hks_fail(err, 0, "every limit must be above zero");
    if (l->nofile < 3 + cfg->n_pass_fds + 2)
        return hks_fail(err, 0, "nofile %llu is too small for the fds handed over",
                        (unsigned long long)l->nofile);
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        if (!cfg->mounts[i].source || !cfg->mounts[i].target || cfg->mounts[i].target[0] != '/')
            return hks_fail(err, 0, "mount %zu needs a source and an absolute target", i);
    }
    return 0;
}

static void run_free(sbx_run *run)
{
    if (run->attacher > 0) {
        kill(run->attacher, SIGKILL);
        waitpid(run->attacher, NULL, 0);
    }
    close_fd(&run->attacher_pidfd);
    close_fd(&run->attacher_msg);
    close_fd(&run->go_fd);
    close_fd(&run->pidfd);
    close_fd(&run->epfd);
    close_fd(&run->timerfd);
    close_fd(&run->report_fd);
    close_fd(&run->out.fd);
    close_fd(&run->err.fd);
    free(run->out.data);
    free(run->err.data);
    free(run);
}

/* Abort a half-started run: the child (if any) dies with its namespace, then the cgroup goes. */
static int abandon(sbx_run *run)
{
    /* the attacher first: it could create the v1 cgroup again after its removal */
    if (run->attacher > 0) {
        kill(run->attacher, SIGKILL);
        waitpid(run->attacher, NULL, 0);
        run->attacher = 0;
    }
    if (run->pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
        reap(run);
    }
    hks_error ignored;
    sbx_cgroup_destroy(&run->cg, &ignored);
    run_free(run);
    return -1;
}

int sbx_run_start(const sbx_config *cfg, sbx_run **out, hks_error *err)
{
    if (validate(cfg, err) < 0)
        return -1;
    sbx_run *run = calloc(1, sizeof(*run));
    if (!run)
        return hks_fail(err, ENOMEM, "sandbox run");
    run->pidfd = run->epfd = run->timerfd = run->report_fd = run->out.fd = run->err.fd = -1;
    run->go_fd = run->attacher_pidfd = run->attacher_msg = -1;
    run->output_mode = cfg->output;
    run->limits = cfg->limits;
    run->out.max = cfg->limits.stdout_max;
    run->err.max = cfg->limits.stderr_max;
    run->out.sink = cfg->stdout_sink;
    run->err.sink = cfg->stderr_sink;
    run->cpus = usable_cpus(&cfg->limits);

    /* v2: the cgroup must exist before the clone places the child in it. v1: the attacher
     * creates it (a memory cgroup's mkdir and rmdir can take milliseconds) */
    if (cfg->use_cgroup && sbx_cgroup_plan(&run->cg, cfg->cgroup_parent, err) < 0)
        return abandon(run);
    if (run->cg.version == 2 && sbx_cgroup_make(&run->cg, &cfg->limits, err) < 0)
        return abandon(run);

    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, report_pipe[2] = {-1, -1},
        sync_sock[2] = {-1, -1};
    if ((cfg->output == SBX_OUTPUT_DIRECT
             ? direct_output(cfg, out_pipe, err_pipe, err)
             : (make_pipe(out_pipe, err) < 0 ? -1 : make_pipe(err_pipe, err))) < 0 ||
        make_pipe(report_pipe, err) < 0 || make_sync_socket(sync_sock, err) < 0) {
        int *all[] = {out_pipe, err_pipe, report_pipe, sync_sock};
        for (size_t i = 0; i < HKS_ARRAY_LEN(all); i++) {
            close_fd(&all[i][0]);
            close_fd(&all[i][1]);
        }
        return abandon(run);
    }
    run->out.fd = out_pipe[0];
    run->err.fd = err_pipe[0];
    run->report_fd = report_pipe[0];

    cleanup_fd int cgroup_fd = sbx_cgroup_open_fd(&run->cg, err);
    if (run->cg.version == 2 && cgroup_fd < 0) {
        int child_ends[] = {out_pipe[1], err_pipe[1], report_pipe[1], sync_sock[0], sync_sock[1]};
        for (size_t i = 0; i < HKS_ARRAY_LEN(child_ends); i++)
            close(child_ends[i]);
        return abandon(run);
    }

    uint64_t flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
                     CLONE_PIDFD | (cfg->network ? 0 : CLONE_NEWNET) |
                     (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    int pidfd = -1;
    struct clone_args args = {
        .flags = flags,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
        .cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0,
    };
    run->start_us = hks_now_us();
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) {
        sbx_child_args child = {
            .cfg = cfg,
            .sync_fd = sync_sock[0],
            .report_fd = report_pipe[1],
            .stdin_fd = cfg->stdin_fd,
            .stdout_fd = out_pipe[1],
            .stderr_fd = err_pipe[1],
        };
        sbx_child_main(&child);
    }
    int clone_errno = errno;
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(report_pipe[1]);
    close(sync_sock[0]);
    run->go_fd = sync_sock[1];
    if (pid < 0) {
        hks_fail(err, clone_errno, "clone the sandbox (user, pid, mount, ipc, uts%s namespaces)",
                 cfg->network ? "" : ", net");
        return abandon(run);
    }
    run->pid = (pid_t)pid;
    run->pidfd = pidfd;

    if (write_id_maps(run->pid, cfg, err) < 0)
        return abandon(run);
    /* A child that failed its setup already said why on the report pipe: the run goes on so
     * that sbx_run_finish reports that, instead of an error about the go signal. v2 placed the
     * child in its cgroup with CLONE_INTO_CGROUP already. */
    if (send(run->go_fd, "m", 1, MSG_NOSIGNAL) == 1) {
        if (run->cg.version == 1) {
            if (start_attacher(run, &cfg->limits, err) < 0)
                return abandon(run);
        } else {
            (void)send(run->go_fd, "c", 1, MSG_NOSIGNAL);
        }
    }
    if (run->attacher <= 0)
        close_fd(&run->go_fd);

    run->epfd = epoll_create1(EPOLL_CLOEXEC);
    run->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (run->epfd < 0 || run->timerfd < 0) {
        hks_fail(err, errno, "epoll/timerfd");
        return abandon(run);
    }
    int nonblocking[] = {run->out.fd, run->err.fd, run->report_fd};
    for (size_t i = 0; i < HKS_ARRAY_LEN(nonblocking); i++) {
        if (nonblocking[i] >= 0)
            fcntl(nonblocking[i], F_SETFL, O_NONBLOCK);
    }
    if ((run->out.fd >= 0 && watch(run, run->out.fd, err) < 0) ||
        (run->err.fd >= 0 && watch(run, run->err.fd, err) < 0) ||
        watch(run, run->report_fd, err) < 0 || watch(run, run->pidfd, err) < 0 ||
        watch(run, run->timerfd, err) < 0 ||
        (run->attacher_pidfd >= 0 && watch(run, run->attacher_pidfd, err) < 0))
        return abandon(run);
    run->wall_deadline_us = run->start_us + cfg->limits.wall_ms * 1000;
    if (run->cg.version)
        schedule_cpu_check(run, 0);
    arm_timer(run);
    *out = run;
    return 0;
}

int sbx_run_fd(const sbx_run *run)
{
    return run->epfd;
}

pid_t sbx_run_pid(const sbx_run *run)
{
    return run->pid;
}

int sbx_run_rearm(sbx_run *run, const sbx_limits *limits, hks_error *err)
{
    if (run->exited)
        return hks_fail(err, ESRCH, "the sandbox has already ended");
    if (run->cg.version && sbx_cgroup_change_limits(&run->cg, &run->limits, limits, err) < 0)
        return hks_wrap(err, "new limits for the sandbox");
    run->limits.memory_bytes = limits->memory_bytes;
    run->limits.pids = limits->pids;
    run->limits.cpu_millis = limits->cpu_millis;
    run->limits.wall_ms = limits->wall_ms;
    run->limits.cpu_ms = limits->cpu_ms;
    run->out.max = limits->stdout_max;
    run->err.max = limits->stderr_max;
    run->cpus = usable_cpus(&run->limits);
    uint64_t used = 0;
    if (sbx_cgroup_cpu_usage_us(&run->cg, &used) == 0)
        run->cpu_base_us = used;
    run->start_us = hks_now_us();
    run->wall_deadline_us = run->start_us + limits->wall_ms * 1000;
    if (run->cg.version)
        schedule_cpu_check(run, 0);
    arm_timer(run);
    return 0;
}

void sbx_run_kill(sbx_run *run)
{
    kill_sandbox(run, KILL_REQUEST);
}

static void take_output(output_stream *s, char **data, size_t *len)
{
    if (!s->data)
        s->data = calloc(1, 1);
    else
        s->data[s->len] = '\0';
    *data = s->data;
    *len = s->data ? s->len : 0;
    s->data = NULL;
}

static void classify(const sbx_run *run, sbx_result *r)
{
    int st = run->program_status;
    if (run->have_program_status) {
        r->exited = WIFEXITED(st);
        r->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
        r->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    } else {
        r->signal = SIGKILL; /* the sandbox was killed before the program could be reaped */
    }
    if (run->setup_error[0]) {
        r->status = SBX_STATUS_INTERNAL_ERROR;
        snprintf(r->message, sizeof(r->message), "%s", run->setup_error);
        return;
    }
    switch (run->killed) {
    case KILL_OUTPUT:
        r->status = SBX_STATUS_OUTPUT_LIMIT;
        return;
    case KILL_WALL:
        r->status = SBX_STATUS_TIMEOUT;
        r->timeout_reason = SBX_TIMEOUT_WALL;
        return;
    case KILL_CPU:
        r->status = SBX_STATUS_TIMEOUT;
        r->timeout_reason = SBX_TIMEOUT_CPU;
        return;
    case KILL_REQUEST:
        r->status = SBX_STATUS_KILLED;
        if (run->sink_closed)
            snprintf(r->message, sizeof(r->message),
                     "the reader of the program's output went away");
        return;
    case KILL_NONE:
        break;
    }
    if (r->oom_killed && !(r->exited && r->exit_code == 0)) {
        r->status = SBX_STATUS_OOM;
        return;
    }
    if (!run->have_program_status) {
        r->status = SBX_STATUS_INTERNAL_ERROR;
        snprintf(r->message, sizeof(r->message), "the sandbox's init died unexpectedly");
        return;
    }
    if (r->signal == SIGXCPU || (r->signal == SIGKILL && r->cpu_us >= run->limits.cpu_ms * 1000)) {
        r->status = SBX_STATUS_TIMEOUT;
        r->timeout_reason = SBX_TIMEOUT_CPU;
        return;
    }
    r->status = r->exited && r->exit_code == 0 ? SBX_STATUS_OK : SBX_STATUS_ERROR;
}

void sbx_run_result(sbx_run *run, sbx_result *r)
{
    memset(r, 0, sizeof(*r));
    while (!result_ready(run))
        sbx_run_step(run, -1);
    run->result_taken = true;
    if (!run->end_us)
        run->end_us = hks_now_us();
    r->wall_us = run->end_us - run->start_us;
    uint64_t cpu = 0;
    if (sbx_cgroup_cpu_usage_us(&run->cg, &cpu) == 0) {
        r->cpu_us = cpu > run->cpu_base_us ? cpu - run->cpu_base_us : 0;
    } else {
        r->cpu_us = (uint64_t)run->rusage.ru_utime.tv_sec * 1000000 +
                    (uint64_t)run->rusage.ru_utime.tv_usec +
                    (uint64_t)run->rusage.ru_stime.tv_sec * 1000000 +
                    (uint64_t)run->rusage.ru_stime.tv_usec;
    }
    r->peak_memory_bytes = sbx_cgroup_memory_peak(&run->cg);
    if (!r->peak_memory_bytes)
        r->peak_memory_bytes = (uint64_t)run->rusage.ru_maxrss * 1024;
    r->oom_killed = sbx_cgroup_oom_kills(&run->cg) > 0;
    r->cgroup_version = sbx_cgroup_version_name(&run->cg);
    r->stdout_truncated = run->out.truncated;
    r->stderr_truncated = run->err.truncated;
    if (run->output_mode == SBX_OUTPUT_CAPTURE) {
        take_output(&run->out, &r->stdout_data, &r->stdout_len);
        take_output(&run->err, &r->stderr_data, &r->stderr_len);
    }
    classify(run, r);
}

bool sbx_run_drained(const sbx_run *run)
{
    return finished(run);
}

int sbx_run_free(sbx_run *run, hks_error *err)
{
    while (!finished(run))
        sbx_run_step(run, -1);
    int rc = sbx_cgroup_destroy(&run->cg, err);
    run_free(run);
    return rc;
}

/* A child removes the cgroup: the caller does not wait for a v1 memory cgroup's slow rmdir. */
static pid_t destroy_cgroup_in_background(sbx_cgroup *cg)
{
    pid_t pid = fork();
    if (pid == 0) {
        close_range(3, ~0U, 0);
        hks_error err = {0};
        if (sbx_cgroup_destroy(cg, &err) < 0) {
            fprintf(stderr, "hks-sandbox: %s\n", err.msg);
            _exit(1);
        }
        _exit(0);
    }
    if (pid < 0) {
        hks_error err = {0};
        if (sbx_cgroup_destroy(cg, &err) < 0)
            fprintf(stderr, "hks-sandbox: %s\n", err.msg);
        return 0;
    }
    return pid;
}

pid_t sbx_run_dispose(sbx_run *run)
{
    while (!finished(run))
        sbx_run_step(run, -1);
    pid_t janitor = run->cg.version ? destroy_cgroup_in_background(&run->cg) : 0;
    run_free(run);
    return janitor;
}

void sbx_run_finish(sbx_run *run, sbx_result *r)
{
    sbx_run_result(run, r);
    hks_error cg_err;
    if (sbx_run_free(run, &cg_err) < 0 && r->status != SBX_STATUS_INTERNAL_ERROR) {
        /* the run itself is over; a cgroup that will not go is worth saying, not hiding */
        snprintf(r->message, sizeof(r->message), "%s", cg_err.msg);
    }
}

int sbx_run_once(const sbx_config *cfg, sbx_result *result, hks_error *err)
{
    sbx_run *run = NULL;
    if (sbx_run_start(cfg, &run, err) < 0 || !run)
        return -1;
    sbx_run_finish(run, result);
    return 0;
}
