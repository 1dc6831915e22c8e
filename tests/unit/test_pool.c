/* The warm pool in-process (also under ASan+UBSan: it is the threaded part). */
#include "tests/unit/helpers.h"

#include "runtimes/runtimes.h"

static rt_pool *pool;
static char work[64];

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    rt_pool_config cfg;
    rt_pool_config_init(&cfg);
    char profile[PATH_MAX];
    test_path(profile, sizeof(profile), "policies/seccomp/function.json");
    snprintf(work, sizeof(work), "/tmp/hks-test-pool-%d", (int)getpid());
    cfg.root = test_root();
    cfg.work_dir = work;
    cfg.profile_path = profile;
    cfg.warm[0] = 1; /* python */
    cfg.warm[1] = 0; /* node: cold only */
    hks_error err = {0};
    if (rt_pool_start(&cfg, &pool, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return rt_pool_wait_full(pool, 30000);
}

static int teardown(void **state)
{
    (void)state;
    rt_pool_stop(pool);
    return 0;
}

static void execute(const char *runtime, const char *entry, const char *code, rt_exec_result *r)
{
    rt_file files[] = {{entry, code, strlen(code)}};
    char *argv[] = {"x", NULL};
    rt_exec_request req = {.runtime = runtime,
                           .files = files,
                           .n_files = 1,
                           .entry = entry,
                           .argv = argv,
                           .stdin_data = "in",
                           .stdin_len = 2};
    hks_error err = {0};
    if (rt_pool_execute(pool, &req, r, &err) < 0)
        fail_msg("execute: %s", err.msg);
}

static void warm_python_execution(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    rt_exec_result r;
    execute("python", "main.py", "import sys\nprint(sys.argv[1], sys.stdin.read())\n", &r);
    assert_true(r.warm);
    assert_int_equal(r.sandbox.status, SBX_STATUS_OK);
    assert_string_equal(r.sandbox.stdout_data, "x in\n");
    rt_exec_result_release(&r);
    /* the pool refills: the next one is warm again */
    assert_int_equal(rt_pool_wait_full(pool, 30000), 0);
    execute("python", "main.py", "raise SystemExit(4)\n", &r);
    assert_true(r.warm);
    assert_int_equal(r.sandbox.exit_code, 4);
    rt_exec_result_release(&r);
}

static void cold_node_execution(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    rt_exec_result r;
    execute("node", "main.js", "console.log(process.argv[2])\n", &r);
    assert_false(r.warm);
    assert_int_equal(r.sandbox.status, SBX_STATUS_OK);
    assert_string_equal(r.sandbox.stdout_data, "x\n");
    rt_exec_result_release(&r);
}

static void profile_reload_keeps_serving(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    /* setup()'s configuration is gone by now: the pool must hold its own copies */
    hks_error err = {0};
    assert_int_equal(rt_pool_reload_profile(pool, &err), 0);
    rt_exec_result r;
    execute("python", "main.py", "print('after reload')\n", &r);
    assert_int_equal(r.sandbox.status, SBX_STATUS_OK);
    assert_string_equal(r.sandbox.stdout_data, "after reload\n");
    rt_exec_result_release(&r);
}

static void refused_requests(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    rt_file files[] = {{"main.py", "pass", 4}};
    rt_exec_request req = {.runtime = "cobol", .files = files, .n_files = 1, .entry = "main.py"};
    rt_exec_result r;
    hks_error err = {0};
    assert_int_equal(rt_pool_execute(pool, &req, &r, &err), -1);
    assert_non_null(strstr(err.msg, "unknown runtime 'cobol'"));
    req.runtime = "python";
    req.entry = "other.py";
    assert_int_equal(rt_pool_execute(pool, &req, &r, &err), -1);
    assert_non_null(strstr(err.msg, "not one of the files"));
    req.entry = "main.py";
    req.stdin_len = RT_MAX_STDIN_BYTES + 1;
    req.stdin_data = "";
    assert_int_equal(rt_pool_execute(pool, &req, &r, &err), -1);
    assert_non_null(strstr(err.msg, "stdin"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(warm_python_execution),
        cmocka_unit_test(cold_node_execution),
        cmocka_unit_test(profile_reload_keeps_serving),
        cmocka_unit_test(refused_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
