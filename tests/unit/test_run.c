/* Real sandboxes through the library: results, limits, fds, and nothing left behind. */
#include "tests/unit/helpers.h"

#include "sandbox/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

static sbx_profile *profile;

static int setup(void **state)
{
    (void)state;
    char path[PATH_MAX];
    test_path(path, sizeof(path), "policies/seccomp/function.json");
    hks_error err = {0};
    if (sbx_profile_load(path, false, &profile, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbx_profile_free(profile);
    return 0;
}

static void run(char *const *argv, sbx_limits *limits, int stdin_fd, const int *pass, size_t n_pass,
                sbx_result *r)
{
    sbx_config cfg;
    sbx_config_init(&cfg);
    cfg.argv = argv;
    cfg.profile = profile;
    cfg.output = SBX_OUTPUT_CAPTURE;
    cfg.stdin_fd = stdin_fd;
    cfg.pass_fds = pass;
    cfg.n_pass_fds = n_pass;
    if (limits)
        cfg.limits = *limits;
    hks_error err = {0};
    if (sbx_run_once(&cfg, r, &err) < 0)
        fail_msg("sbx_run_once: %s", err.msg);
}

/* How many cgroups this process created that still exist. */
static int own_cgroups_left(void)
{
    return sandbox_cgroups_of((int)getpid());
}

static void output_and_exit_code_are_reported(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    sbx_result r;
    run(argv, NULL, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_ERROR);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.stdout_data, "out\n");
    assert_string_equal(r.stderr_data, "err\n");
    assert_int_equal(sbx_result_exit_status(&r), 3);
    assert_true(r.wall_us > 0);
    sbx_result_release(&r);
    assert_int_equal(own_cgroups_left(), 0);
}

static void identity_inside_is_unprivileged(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    char *argv[] = {"/bin/sh", "-c",
                    "id -u; id -g; hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
                    "/proc/self/status | tr -s '\\t' ' '",
                    NULL};
    sbx_result r;
    run(argv, NULL, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_OK);
    assert_non_null(strstr(r.stdout_data, "1000\n1000\nsandbox\n"));
    assert_non_null(strstr(r.stdout_data, "CapEff: 0000000000000000"));
    assert_non_null(strstr(r.stdout_data, "CapBnd: 0000000000000000"));
    assert_non_null(strstr(r.stdout_data, "NoNewPrivs: 1"));
    assert_non_null(strstr(r.stdout_data, "Seccomp: 2"));
    sbx_result_release(&r);
}

static void wall_limit_kills_with_reason(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    sbx_limits l;
    sbx_limits_default(&l);
    l.wall_ms = 300;
    char *argv[] = {"/bin/sleep", "30", NULL};
    sbx_result r;
    run(argv, &l, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_TIMEOUT);
    assert_int_equal(r.timeout_reason, SBX_TIMEOUT_WALL);
    assert_false(r.exited);
    assert_int_equal(sbx_result_exit_status(&r), 137);
    sbx_result_release(&r);
    assert_int_equal(own_cgroups_left(), 0);
}

static void cpu_limit_counts_every_process(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    sbx_limits l;
    sbx_limits_default(&l);
    l.cpu_ms = 400;
    l.cpu_millis = 2000;
    /* two busy children: together they reach the limit before either would alone */
    char *argv[] = {"/bin/sh", "-c", "(while :; do :; done) & (while :; do :; done) & wait", NULL};
    sbx_result r;
    run(argv, &l, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_TIMEOUT);
    assert_int_equal(r.timeout_reason, SBX_TIMEOUT_CPU);
    assert_true(r.cpu_us >= 400000);
    sbx_result_release(&r);
}

static void output_limit_truncates_and_kills(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    sbx_limits l;
    sbx_limits_default(&l);
    l.stdout_max = 1000;
    char *argv[] = {"/usr/bin/yes", NULL};
    sbx_result r;
    run(argv, &l, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_OUTPUT_LIMIT);
    assert_true(r.stdout_truncated);
    assert_int_equal(r.stdout_len, 1000);
    assert_int_equal(strncmp(r.stdout_data, "y\ny\n", 4), 0);
    sbx_result_release(&r);
}

static void setup_failure_is_an_internal_error_with_the_reason(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    char *argv[] = {"/no/such/program", NULL};
    sbx_result r;
    run(argv, NULL, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_INTERNAL_ERROR);
    assert_non_null(strstr(r.message, "execute /no/such/program: No such file or directory"));
    assert_int_equal(sbx_result_exit_status(&r), 125);
    sbx_result_release(&r);
    assert_int_equal(own_cgroups_left(), 0);
}

static void stdin_and_handed_over_fds_arrive(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    int in[2], extra[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(extra, O_CLOEXEC), 0);
    assert_int_equal(write(in[1], "from stdin", 10), 10);
    close(in[1]);
    char *argv[] = {"/bin/sh", "-c", "cat; echo to-fd-3 >&3; ls /proc/self/fd | wc -l", NULL};
    sbx_result r;
    run(argv, NULL, in[0], &extra[1], 1, &r);
    close(in[0]);
    close(extra[1]);
    char buf[64] = {0};
    assert_true(read(extra[0], buf, sizeof(buf) - 1) > 0);
    close(extra[0]);
    assert_string_equal(buf, "to-fd-3\n");
    assert_int_equal(r.status, SBX_STATUS_OK);
    /* cat's output, then the fds of `ls`: 0, 1, 2, 3 and its own directory fd */
    assert_string_equal(r.stdout_data, "from stdin5\n");
    sbx_result_release(&r);
}

static bool host_has_process_with_arg(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)) && !found) {
        char path[300], cmd[4096] = {0};
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(cmd + i, needle) == 0)
                found = true;
            i += strlen(cmd + i);
        }
    }
    if (d)
        closedir(d);
    return found;
}

static void processes_left_behind_die_with_the_sandbox(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    char *argv[] = {"/bin/sh", "-c", "setsid sleep 987.654 >/dev/null 2>&1 & echo started", NULL};
    sbx_result r;
    run(argv, NULL, -1, NULL, 0, &r);
    assert_int_equal(r.status, SBX_STATUS_OK);
    assert_string_equal(r.stdout_data, "started\n");
    assert_false(host_has_process_with_arg("987.654"));
    sbx_result_release(&r);
    assert_int_equal(own_cgroups_left(), 0);
}

static void bad_configs_are_refused_before_anything_starts(void **state)
{
    (void)state;
    sbx_config cfg;
    sbx_config_init(&cfg);
    sbx_run *run_handle = NULL;
    hks_error err = {0};
    assert_int_equal(sbx_run_start(&cfg, &run_handle, &err), -1);
    assert_non_null(strstr(err.msg, "no program"));
    char *argv[] = {"/bin/true", NULL};
    cfg.argv = argv;
    assert_int_equal(sbx_run_start(&cfg, &run_handle, &err), -1);
    assert_non_null(strstr(err.msg, "no seccomp profile"));
    cfg.profile = profile;
    cfg.limits.memory_bytes = 0;
    assert_int_equal(sbx_run_start(&cfg, &run_handle, &err), -1);
    assert_non_null(strstr(err.msg, "above zero"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(output_and_exit_code_are_reported),
        cmocka_unit_test(identity_inside_is_unprivileged),
        cmocka_unit_test(wall_limit_kills_with_reason),
        cmocka_unit_test(cpu_limit_counts_every_process),
        cmocka_unit_test(output_limit_truncates_and_kills),
        cmocka_unit_test(setup_failure_is_an_internal_error_with_the_reason),
        cmocka_unit_test(stdin_and_handed_over_fds_arrive),
        cmocka_unit_test(processes_left_behind_die_with_the_sandbox),
        cmocka_unit_test(bad_configs_are_refused_before_anything_starts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
