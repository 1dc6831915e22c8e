/* hks-sandbox: run one program in the HKS sandbox, like bwrap or nsjail, for the security team
 * and for scripts. */
#include "sandbox.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <libgen.h>
#include <string.h>

#define MAX_MOUNTS   32
#define MAX_ENV      64
#define MAX_PASS_FDS 8

static const char usage[] =
    "Usage: hks-sandbox [OPTIONS] -- PROGRAM [ARGS...]\n"
    "       hks-sandbox --check-profile FILE\n"
    "       hks-sandbox spawner --fd N\n"
    "\n"
    "Runs PROGRAM in new user, pid, mount, net, ipc, uts and cgroup namespaces, as uid 1000 on a\n"
    "read-only minimal root, with every capability dropped, no_new_privs, a seccomp allowlist and\n"
    "its own cgroup. /usr, /lib*, /bin and /sbin of the host are bound read-only; /tmp and\n"
    "/dev/shm are fresh size-limited tmpfs; /proc is fresh; /dev has null, zero, random, urandom.\n"
    "\n"
    "Options:\n"
    "  --profile FILE        seccomp profile in OCI JSON (default: policies/seccomp/function.json\n"
    "                        next to the installation)\n"
    "  --memory SIZE         memory limit, swap disabled (default 256M; SIZE: 512K, 64M, 1G)\n"
    "  --pids N              processes and threads (default 64)\n"
    "  --cpus N              CPU bandwidth in cores, e.g. 0.5 (default 1)\n"
    "  --wall DURATION       wall-clock limit (default 10s; DURATION: 500ms, 5s, 2m)\n"
    "  --cpu DURATION        CPU time of the whole sandbox (default 10s)\n"
    "  --ro-bind SRC:DST     bind host SRC read-only at DST (repeatable)\n"
    "  --bind SRC:DST        bind host SRC read-write at DST (repeatable)\n"
    "  --tmpfs-size SIZE     size of /tmp (default 64M)\n"
    "  --shm-size SIZE       size of /dev/shm (default 16M)\n"
    "  --fsize SIZE          largest file the program may write (default 64M)\n"
    "  --nofile N            open files (default 256)\n"
    "  --output-limit SIZE   bytes kept of stdout and of stderr (default 1M); more kills the\n"
    "                        sandbox with status output_limit\n"
    "  --network             share the host network namespace and allow AF_INET/AF_INET6\n"
    "                        (default: a network namespace with only lo, AF_UNIX sockets only)\n"
    "  --pass-fd N           hand the caller's open fd N to the program, as fd 3, 4, ... in the\n"
    "                        order given (repeatable; e.g. a control socket)\n"
    "  --setenv NAME=VALUE   environment variable (the environment is otherwise only PATH,\n"
    "                        HOME=/tmp and LANG=C.UTF-8)\n"
    "  --chdir DIR           working directory inside (default /code when bound, else /tmp)\n"
    "  --hostname NAME       host name inside (default sandbox)\n"
    "  --host-uid UID        host uid and gid the sandbox user maps to when run as root\n"
    "                        (default 101000)\n"
    "  --cgroup-parent PATH  create the sandbox's cgroup below PATH of each hierarchy (default:\n"
    "                        below the caller's own cgroup)\n"
    "  --no-cgroup           run without a cgroup: no memory, pids or CPU bandwidth limit (for\n"
    "                        users without cgroup delegation; CPU time still limited by rlimit)\n"
    "  --profile-cache DIR   keep compiled profiles in DIR (default /var/cache/hks/seccomp as\n"
    "                        root, else $XDG_CACHE_HOME/hks/seccomp); only a directory owned by\n"
    "                        the caller and not writable by others is used\n"
    "  --no-profile-cache    compile the profile on every run\n"
    "  --json                print one JSON result record on stdout instead of passing the\n"
    "                        program's output through\n"
    "  --check-profile FILE  validate a seccomp profile: one line per problem, exit 1 if any\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: the program's exit code; 128+N when it was killed by signal N (a timeout or\n"
    "an output or memory limit kills with SIGKILL: 137); 125 when the sandbox could not be set\n"
    "up; 2 on a usage error.\n"
    "\n"
    "Example:\n"
    "  hks-sandbox --memory 256M --pids 64 --wall 5s --cpu 5s --ro-bind ./fn:/code --json -- \\\n"
    "      /usr/bin/python3 /code/main.py\n";

enum {
    OPT_PROFILE = 256,
    OPT_MEMORY,
    OPT_PIDS,
    OPT_CPUS,
    OPT_WALL,
    OPT_CPU,
    OPT_RO_BIND,
    OPT_BIND,
    OPT_TMPFS_SIZE,
    OPT_SHM_SIZE,
    OPT_FSIZE,
    OPT_NOFILE,
    OPT_OUTPUT_LIMIT,
    OPT_NETWORK,
    OPT_SETENV,
    OPT_CHDIR,
    OPT_HOSTNAME,
    OPT_HOST_UID,
    OPT_CGROUP_PARENT,
    OPT_NO_CGROUP,
    OPT_JSON,
    OPT_CHECK_PROFILE,
    OPT_PROFILE_CACHE,
    OPT_NO_PROFILE_CACHE,
    OPT_PASS_FD,
};

static const struct option options[] = {
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"wall", required_argument, NULL, OPT_WALL},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"ro-bind", required_argument, NULL, OPT_RO_BIND},
    {"bind", required_argument, NULL, OPT_BIND},
    {"tmpfs-size", required_argument, NULL, OPT_TMPFS_SIZE},
    {"shm-size", required_argument, NULL, OPT_SHM_SIZE},
    {"fsize", required_argument, NULL, OPT_FSIZE},
    {"nofile", required_argument, NULL, OPT_NOFILE},
    {"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
    {"network", no_argument, NULL, OPT_NETWORK},
    {"setenv", required_argument, NULL, OPT_SETENV},
    {"chdir", required_argument, NULL, OPT_CHDIR},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"host-uid", required_argument, NULL, OPT_HOST_UID},
    {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
    {"no-cgroup", no_argument, NULL, OPT_NO_CGROUP},
    {"json", no_argument, NULL, OPT_JSON},
    {"profile-cache", required_argument, NULL, OPT_PROFILE_CACHE},
    {"no-profile-cache", no_argument, NULL, OPT_NO_PROFILE_CACHE},
    {"pass-fd", required_argument, NULL, OPT_PASS_FD},
    {"check-profile", required_argument, NULL, OPT_CHECK_PROFILE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

__attribute__((noreturn, format(printf, 1, 2))) static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hks-sandbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'hks-sandbox --help'.\n", stderr);
    exit(2);
}

static uint64_t size_arg(const char *name, const char *text)
{
    unsigned long long v;
    if (hks_parse_size(text, &v) < 0 || v == 0)
        usage_error("--%s: '%s' is not a size (e.g. 512K, 64M, 1G)", name, text);
    return v;
}

static uint64_t duration_arg(const char *name, const char *text)
{
    unsigned long long v;
    if (hks_parse_duration_ms(text, &v) < 0 || v == 0)
        usage_error("--%s: '%s' is not a duration (e.g. 500ms, 5s, 2m)", name, text);
    return v;
}

static uint64_t count_arg(const char *name, const char *text, unsigned long long max)
{
    unsigned long long v;
    if (hks_parse_uint(text, 1, max, &v) < 0)
        usage_error("--%s: '%s' is not a whole number between 1 and %llu", name, text, max);
    return v;
}

static void add_mount(sbx_mount *mounts, size_t *n, char *spec, bool writable)
{
    if (*n >= MAX_MOUNTS)
        usage_error("at most %d binds", MAX_MOUNTS);
    char *colon = strchr(spec, ':');
    const char *target = spec;
    if (colon) {
        *colon = '\0';
        target = colon + 1;
    }
    if (!spec[0] || target[0] != '/')
        usage_error("bind '%s': expected SRC:DST with an absolute DST", spec);
    mounts[(*n)++] = (sbx_mount){.source = spec, .target = target, .writable = writable};
}

static void set_env(char **env, size_t *n, const char *entry)
{
    const char *eq = strchr(entry, '=');
    if (!eq || eq == entry)
        usage_error("--setenv '%s': expected NAME=VALUE", entry);
    size_t key_len = (size_t)(eq - entry) + 1;
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(env[i], entry, key_len) == 0) {
            env[i] = (char *)entry;
            return;
        }
    }
    if (*n >= MAX_ENV)
        usage_error("at most %d environment variables", MAX_ENV);
    env[(*n)++] = (char *)entry;
}

/* policies/seccomp/function.json of the tree the binary was built in or installed with. */
static void default_profile_path(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        const char *candidates[] = {"%s/../policies/seccomp/function.json",
                                    "%s/../share/hks/policies/seccomp/function.json"};
        for (size_t i = 0; i < HKS_ARRAY_LEN(candidates); i++) {
            snprintf(out, size, candidates[i], dir);
            if (access(out, R_OK) == 0)
                return;
        }
    }
    snprintf(out, size, "/usr/share/hks/policies/seccomp/function.json");
}

static const char *default_cache_dir(char *out, size_t size)
{
    if (geteuid() == 0)
        return "/var/cache/hks/seccomp";
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(out, size, "%s/hks/seccomp", xdg);
    else if (home && home[0] == '/')
        snprintf(out, size, "%s/.cache/hks/seccomp", home);
    else
        return NULL;
    return out;
}

/* Run the sandbox; SIGINT, SIGTERM, SIGHUP and SIGQUIT end it cleanly (sandbox killed, cgroup
 * removed) instead of killing hks-sandbox and leaving the cgroup behind. */
static int run_until_done(const sbx_config *cfg, sbx_result *result, int *interrupted_by,
                          hks_error *err)
{
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGQUIT);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    sbx_run *run = NULL;
    if (sfd < 0 || sbx_run_start(cfg, &run, err) < 0 || !run) {
        if (sfd < 0)
            hks_fail(err, errno, "signalfd");
        else
            close(sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -1;
    }
    struct pollfd fds[2] = {{.fd = sbx_run_fd(run), .events = POLLIN},
                            {.fd = sfd, .events = POLLIN}};
    while (!sbx_run_step(run, 0)) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        struct signalfd_siginfo si;
        if ((fds[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            *interrupted_by = (int)si.ssi_signo;
            sbx_run_kill(run);
        }
    }
    sbx_run_finish(run, result);
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;
}

static void hint_about_cgroups(const char *message)
{
    if (geteuid() != 0 && strstr(message, "cgroup") && strstr(message, "Permission denied"))
        fputs("hint: without cgroup delegation, run with --no-cgroup (no memory, pids or "
              "CPU bandwidth limit)\n",
              stderr);
}

static void print_record(const sbx_result *result)
{
    json_t *record = sbx_result_to_json(result);
    json_dumpf(record, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    json_decref(record);
}

/* With --json every outcome is one record on stdout, a sandbox that never started included. */
static void print_setup_failure(const char *message)
{
    sbx_result failed;
    memset(&failed, 0, sizeof(failed));
    failed.status = SBX_STATUS_INTERNAL_ERROR;
    failed.cgroup_version = "none";
    snprintf(failed.message, sizeof(failed.message), "%s", message);
    print_record(&failed);
}

static int check_profile(const char *path)
{
    hks_error err = {0};
    int problems = sbx_profile_check(path, stdout, &err);
    if (problems < 0) {
        fprintf(stderr, "hks-sandbox: %s\n", err.msg);
        return 1;
    }
    if (problems == 0) {
        sbx_profile *profile = NULL;
        if (sbx_profile_load(path, false, &profile, &err) < 0) {
            printf("%s\n", err.msg);
            return 1;
        }
        printf("%s: ok (%zu BPF instructions)\n", path, sbx_profile_insns(profile));
        sbx_profile_free(profile);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "spawner") == 0)
        return sbx_spawner_cli(argc - 1, argv + 1);

    sbx_config cfg;
    sbx_config_init(&cfg);
    sbx_mount mounts[MAX_MOUNTS];
    size_t n_mounts = 0;
    char *env[MAX_ENV + 1] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"};
    size_t n_env = 3;
    const char *profile_path = NULL;
    bool json = false;
    const char *cache_dir = NULL;
    bool use_cache = true;
    int pass_fds[MAX_PASS_FDS];
    size_t n_pass_fds = 0;

    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_PROFILE:
            profile_path = optarg;
            break;
        case OPT_MEMORY:
            cfg.limits.memory_bytes = size_arg("memory", optarg);
            break;
        case OPT_PIDS:
            cfg.limits.pids = count_arg("pids", optarg, 1u << 22);
            break;
        case OPT_CPUS: {
            char *end;
            double cpus = strtod(optarg, &end);
            if (*end || !(cpus >= 0.01 && cpus <= 1024))
                usage_error("--cpus: '%s' is not a number of cores between 0.01 and 1024", optarg);
            cfg.limits.cpu_millis = (uint64_t)(cpus * 1000 + 0.5);
            break;
        }
        case OPT_WALL:
            cfg.limits.wall_ms = duration_arg("wall", optarg);
            break;
        case OPT_CPU:
            cfg.limits.cpu_ms = duration_arg("cpu", optarg);
            break;
        case OPT_RO_BIND:
        case OPT_BIND:
            add_mount(mounts, &n_mounts, optarg, opt == OPT_BIND);
            break;
        case OPT_TMPFS_SIZE:
            cfg.limits.tmpfs_bytes = size_arg("tmpfs-size", optarg);
            break;
        case OPT_SHM_SIZE:
            cfg.limits.shm_bytes = size_arg("shm-size", optarg);
            break;
        case OPT_FSIZE:
            cfg.limits.fsize_bytes = size_arg("fsize", optarg);
            break;
        case OPT_NOFILE:
            cfg.limits.nofile = count_arg("nofile", optarg, 1u << 20);
            break;
        case OPT_OUTPUT_LIMIT:
            cfg.limits.stdout_max = cfg.limits.stderr_max = size_arg("output-limit", optarg);
            break;
        case OPT_NETWORK:
            cfg.network = true;
            break;
        case OPT_SETENV:
            set_env(env, &n_env, optarg);
            break;
        case OPT_CHDIR:
            if (optarg[0] != '/')
                usage_error("--chdir: '%s' is not an absolute path", optarg);
            cfg.cwd = optarg;
            break;
        case OPT_HOSTNAME:
            if (!optarg[0] || strlen(optarg) > 64)
                usage_error("--hostname: 1 to 64 characters");
            cfg.hostname = optarg;
            break;
        case OPT_HOST_UID: {
            uint64_t id = count_arg("host-uid", optarg, 0xFFFFFFFEu);
            cfg.host_uid = (uid_t)id;
            cfg.host_gid = (gid_t)id;
            break;
        }
        case OPT_CGROUP_PARENT:
            cfg.cgroup_parent = optarg;
            break;
        case OPT_NO_CGROUP:
            cfg.use_cgroup = false;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_PROFILE_CACHE:
            if (optarg[0] != '/')
                usage_error("--profile-cache: '%s' is not an absolute path", optarg);
            cache_dir = optarg;
            break;
        case OPT_NO_PROFILE_CACHE:
            use_cache = false;
            break;
        case OPT_PASS_FD: {
            uint64_t fd = count_arg("pass-fd", optarg, 65535);
            if (n_pass_fds >= MAX_PASS_FDS)
                usage_error("at most %d --pass-fd", MAX_PASS_FDS);
            if (fd < 3 || fcntl((int)fd, F_GETFD) < 0)
                usage_error("--pass-fd %s: not an open fd above 2", optarg);
            pass_fds[n_pass_fds++] = (int)fd;
            break;
        }
        case OPT_CHECK_PROFILE:
            return check_profile(optarg);
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            usage_error("unknown option");
        }
    }
    if (optind >= argc)
        usage_error("no program given (hks-sandbox [OPTIONS] -- PROGRAM [ARGS...])");
    env[n_env] = NULL;
    cfg.argv = argv + optind;
    cfg.env = env;
    cfg.mounts = mounts;
    cfg.n_mounts = n_mounts;
    cfg.pass_fds = pass_fds;
    cfg.n_pass_fds = n_pass_fds;
    for (size_t i = 0; !cfg.cwd && i < n_mounts; i++) {
        if (strcmp(mounts[i].target, "/code") == 0)
            cfg.cwd = "/code";
    }
    /* A closed output pipe is an EPIPE the supervisor handles, not a signal that kills it. */
    signal(SIGPIPE, SIG_IGN);
    /* A terminal is never handed in: a sandbox could push keystrokes into it (TIOCSTI). */
    cfg.stdin_fd = isatty(STDIN_FILENO) ? -1 : STDIN_FILENO;
    cfg.output = json ? SBX_OUTPUT_CAPTURE : SBX_OUTPUT_FORWARD;

    char default_path[PATH_MAX];
    if (!profile_path) {
        default_profile_path(default_path, sizeof(default_path));
        profile_path = default_path;
    }
    hks_error err = {0};
    sbx_profile *profile = NULL;
    char default_cache[PATH_MAX];
    if (use_cache && !cache_dir)
        cache_dir = default_cache_dir(default_cache, sizeof(default_cache));
    if (sbx_profile_load_cached(profile_path, cfg.network, use_cache ? cache_dir : NULL, &profile,
                                &err) < 0) {
        fprintf(stderr, "hks-sandbox: %s\n", err.msg);
        if (json)
            print_setup_failure(err.msg);
        return 125;
    }
    cfg.profile = profile;

    /* cgroups of earlier runs whose supervisor was killed (SIGKILL leaves no time to clean) */
    hks_error sweep_err;
    if (cfg.use_cgroup)
        (void)sbx_cgroup_sweep(cfg.cgroup_parent, &sweep_err);

    sbx_result result;
    int interrupted_by = 0;
    int rc = run_until_done(&cfg, &result, &interrupted_by, &err);
    sbx_profile_free(profile);
    if (rc < 0) {
        fprintf(stderr, "hks-sandbox: %s\n", err.msg);
        hint_about_cgroups(err.msg);
        if (json)
            print_setup_failure(err.msg);
        return 125;
    }
    if (json) {
        print_record(&result);
    } else if (result.status == SBX_STATUS_INTERNAL_ERROR) {
        fprintf(stderr, "hks-sandbox: %s\n", result.message);
        hint_about_cgroups(result.message);
    } else if (result.status != SBX_STATUS_OK && result.status != SBX_STATUS_ERROR) {
        const char *reason = sbx_timeout_reason_name(result.timeout_reason);
        fprintf(stderr, "hks-sandbox: %s%s%s%s%s%s\n", sbx_status_name(result.status),
                reason ? " (" : "", reason ? reason : "", reason ? ")" : "",
                result.message[0] ? ": " : "", result.message);
    }
    int status = interrupted_by ? 128 + interrupted_by : sbx_result_exit_status(&result);
    sbx_result_release(&result);
    return status;
}
