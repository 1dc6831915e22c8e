/* The two processes inside a sandbox.
 *
 * init (pid 1 of the new pid namespace) arranges its fds, waits until the supervisor has written
 * the id maps and placed it in its cgroup, becomes the sandbox user, builds the root file system
 * and pivots into it, then forks the program and reaps every process until the program exits.
 * When init exits the kernel kills whatever is left in the namespace.
 *
 * The program's process then closes every other fd, starts a new session, sets rlimits, drops
 * every capability, sets no_new_privs, loads seccomp last and calls execve. */
#include "internal.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int report_fd = -1;

static void send_report(char kind, int wait_status, const char *text)
{
    sbx_report r = {.kind = kind, .wait_status = wait_status};
    if (text)
        snprintf(r.text, sizeof(r.text), "%s", text);
    (void)hks_write_all(report_fd, &r, sizeof(r));
}

__attribute__((noreturn)) static void fail_setup(const hks_error *err)
{
    send_report('E', 0, err->msg);
    _exit(SBX_SETUP_FAILED);
}

/* Lay out fds as the program will get them: 0 stdin, 1 stdout, 2 stderr, 3.. the handed-over
 * fds, then the report pipe and the sync pipe (both close-on-exec); close everything else. */
static int arrange_fds(const sbx_child_args *a, int *sync_fd, hks_error *err)
{
    const sbx_config *cfg = a->cfg;
    size_t n = 3 + cfg->n_pass_fds + 2;
    int sources[3 + 64 + 2];
    if (cfg->n_pass_fds > 64)
        return hks_fail(err, 0, "more than 64 fds to hand over");
    int null_fd = -1;
    if (a->stdin_fd < 0) {
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
            return hks_fail(err, errno, "open /dev/null");
    }
    sources[0] = a->stdin_fd >= 0 ? a->stdin_fd : null_fd;
    sources[1] = a->stdout_fd;
    sources[2] = a->stderr_fd;
    for (size_t i = 0; i < cfg->n_pass_fds; i++)
        sources[3 + i] = cfg->pass_fds[i];
    sources[n - 2] = a->report_fd;
    sources[n - 1] = a->sync_fd;

    /* Copy every source above the target range first, so no dup2 clobbers a source. */
    int temp[3 + 64 + 2];
    for (size_t i = 0; i < n; i++) {
        temp[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, (int)n);
        if (temp[i] < 0)
            return hks_fail(err, errno, "duplicate fd %d", sources[i]);
    }
    for (size_t i = 0; i < n; i++) {
        int flags = i >= n - 2 ? O_CLOEXEC : 0;
        if (dup3(temp[i], (int)i, flags) < 0)
            return hks_fail(err, errno, "move fd %d to %zu", sources[i], i);
    }
    if (close_range((unsigned)n, ~0U, 0) < 0)
        return hks_fail(err, errno, "close inherited fds");
    report_fd = (int)(n - 2);
    *sync_fd = (int)(n - 1);
    return 0;
}

/* The supervisor says when the id maps are written ('m') and, later, when the sandbox is in its
 * cgroup ('c'): the file system is built in between, while a v1 cgroup move is still going on. */
static int wait_for(int sync_fd, char expected, hks_error *err)
{
    char got = 0;
    ssize_t n;
    do {
        n = read(sync_fd, &got, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || got != expected)
        return hks_fail(err, n < 0 ? errno : 0,
                        "the supervisor went away before the sandbox started");
    return 0;
}

/* Become the sandbox user while keeping the capabilities of the new user namespace, which the
 * rest of the setup needs. */
static int become_sandbox_user(hks_error *err)
{
    if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) < 0)
        return hks_fail(err, errno, "keep capabilities across the uid change");
    /* Supplementary groups of the supervisor (root's included) must not follow us in; an
     * unprivileged supervisor had setgroups denied, and its own groups stay. */
    if (setgroups(0, NULL) < 0 && errno != EPERM)
        return hks_fail(err, errno, "drop supplementary groups");
    if (setresgid(SBX_INNER_GID, SBX_INNER_GID, SBX_INNER_GID) < 0)
        return hks_fail(err, errno, "setresgid %d", SBX_INNER_GID);
    if (setresuid(SBX_INNER_UID, SBX_INNER_UID, SBX_INNER_UID) < 0)
        return hks_fail(err, errno, "setresuid %d", SBX_INNER_UID);
    return 0;
}

static int loopback_up(hks_error *err)
{
    cleanup_fd int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hks_fail(err, errno, "socket for the loopback interface");
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return hks_fail(err, errno, "get flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return hks_fail(err, errno, "bring lo up");
    return 0;
}

static int set_rlimits(const sbx_limits *l, hks_error *err)
{
    /* RLIMIT_CPU backs up the supervisor's whole-sandbox CPU accounting per process: SIGXCPU at
     * the limit, SIGKILL a second later. */
    rlim_t cpu_s = (rlim_t)((l->cpu_ms + 999) / 1000);
    const struct {
        int resource;
        const char *name;
        rlim_t soft, hard;
    } limits[] = {
        {RLIMIT_NOFILE, "RLIMIT_NOFILE", l->nofile, l->nofile},
        {RLIMIT_FSIZE, "RLIMIT_FSIZE", l->fsize_bytes, l->fsize_bytes},
        {RLIMIT_CORE, "RLIMIT_CORE", 0, 0},
        {RLIMIT_CPU, "RLIMIT_CPU", cpu_s, cpu_s + 1},
        {RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0, 0},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(limits); i++) {
        struct rlimit rl = {.rlim_cur = limits[i].soft, .rlim_max = limits[i].hard};
        if (setrlimit(limits[i].resource, &rl) < 0)
            return hks_fail(err, errno, "setrlimit %s", limits[i].name);
    }
    return 0;
}

static int drop_capabilities(hks_error *err)
{
    /* Clears the inheritable, ambient, bounding, permitted and effective sets and locks the
     * securebits, so nothing (setuid files, execve of root) can give them back. */
    if (cap_set_mode(CAP_MODE_NOPRIV) < 0)
        return hks_fail(err, errno, "drop all capabilities");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return hks_fail(err, errno, "clear ambient capabilities");
    return 0;
}

static const char *find_env(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (; env && *env; env++) {
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
            return *env + len + 1;
    }
    return NULL;
}

/* execve, searching PATH of the program's environment when argv[0] has no slash. */
static void exec_program(char *const *argv, char *const *env)
{
    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, env);
        return;
    }
    const char *path = find_env(env, "PATH");
    int saved = ENOENT;
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        const char *end = strchrnul(p, ':');
        char full[PATH_MAX];
        if (snprintf(full, sizeof(full), "%.*s/%s", (int)(end - p), p, argv[0]) <
            (int)sizeof(full)) {
            execve(full, argv, env);
            if (errno != ENOENT)
                saved = errno;
        }
        p = *end ? end + 1 : end;
    }
    errno = saved;
}

__attribute__((noreturn)) static void program_main(const sbx_config *cfg, int n_inherited)
{
    static char *const default_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp",
                                        "LANG=C.UTF-8", NULL};
    hks_error err = {0};
    /* fds 0..n_inherited-1 are the program's; the report pipe stays until execve. */
    if (close_range((unsigned)n_inherited + 1, ~0U, 0) < 0) {
        hks_fail(&err, errno, "close fds");
        fail_setup(&err);
    }
    if (setsid() < 0) {
        hks_fail(&err, errno, "setsid");
        fail_setup(&err);
    }
    if (set_rlimits(&cfg->limits, &err) < 0 || drop_capabilities(&err) < 0)
        fail_setup(&err);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        hks_fail(&err, errno, "set no_new_privs");
        fail_setup(&err);
    }
    /* the program starts as from a fresh shell: nothing blocked, nothing ignored (ignored
     * dispositions of the supervisor would survive execve) */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    }
    if (sbx_profile_install(cfg->profile) < 0) {
        hks_fail(&err, errno, "load the seccomp profile");
        fail_setup(&err);
    }
    exec_program(cfg->argv, cfg->env ? cfg->env : default_env);
    hks_fail(&err, errno, "execute %s", cfg->argv[0]);
    fail_setup(&err);
}

/* Reap every process of the sandbox until the program itself exits, then report its status. */
__attribute__((noreturn)) static void reap_until_program_exits(pid_t program)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid == program) {
            send_report('X', status, NULL);
            _exit(0);
        }
        if (pid < 0 && errno != EINTR) {
            send_report('E', 0, "init lost track of the program");
            _exit(SBX_SETUP_FAILED);
        }
    }
}

void sbx_child_main(const sbx_child_args *args)
{
    const sbx_config *cfg = args->cfg;
    hks_error err = {0};
    int sync_fd = -1;
    report_fd = args->report_fd;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        hks_fail(&err, errno, "set the parent-death signal");
        fail_setup(&err);
    }
    if (arrange_fds(args, &sync_fd, &err) < 0)
        fail_setup(&err);
    int n_program_fds = 3 + (int)cfg->n_pass_fds;
    if (wait_for(sync_fd, 'm', &err) < 0)
        fail_setup(&err);
    /* Bind sources are opened with the creator's access (a source below a directory only it may
     * enter must still work); everything after runs as the sandbox user. */
    sbx_rootfs *fs = calloc(1, sizeof(*fs));
    if (!fs) {
        hks_fail(&err, ENOMEM, "root file system");
        fail_setup(&err);
    }
    if (sbx_rootfs_prepare(cfg, fs, &err) < 0)
        fail_setup(&err);
    if (become_sandbox_user(&err) < 0)
        fail_setup(&err);
    /* A credential change clears the parent-death signal: set it again. Should the supervisor
     * have died in between, the wait for 'c' below sees the socket close. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        hks_fail(&err, errno, "set the parent-death signal");
        fail_setup(&err);
    }
    if (sbx_rootfs_enter(cfg, fs, &err) < 0)
        fail_setup(&err);
    free(fs);
    if (sethostname(cfg->hostname, strlen(cfg->hostname)) < 0) {
        hks_fail(&err, errno, "sethostname %s", cfg->hostname);
        fail_setup(&err);
    }
    if (!cfg->network && loopback_up(&err) < 0)
        fail_setup(&err);
    const char *cwd = cfg->cwd ? cfg->cwd : "/tmp";
    if (chdir(cwd) < 0) {
        hks_fail(&err, errno, "chdir %s", cwd);
        fail_setup(&err);
    }

    if (wait_for(sync_fd, 'c', &err) < 0)
        fail_setup(&err);
    close(sync_fd);
    /* Now in its own cgroup: make that the root of what the sandbox can see. */
    if (unshare(CLONE_NEWCGROUP) < 0) {
        hks_fail(&err, errno, "new cgroup namespace");
        fail_setup(&err);
    }

    pid_t program = fork();
    if (program < 0) {
        hks_fail(&err, errno, "fork the program");
        fail_setup(&err);
    }
    if (program == 0)
        program_main(cfg, n_program_fds);

    /* init keeps only the report pipe, no capability, and cannot be inspected. */
    close_range(0, (unsigned)n_program_fds - 1, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (drop_capabilities(&err) < 0)
        fail_setup(&err);
    reap_until_program_exits(program);
}
