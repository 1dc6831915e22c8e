/* The spawner as hksd will use it: a forked single-threaded process driven over SEQPACKET. */
#include "tests/unit/helpers.h"

#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static sbx_spawner *spawner;

static json_t *recv_msg(int *fds, size_t *n_fds)
{
    json_t *msg = NULL;
    hks_error err = {0};
    size_t n = 0;
    int tmp[SBX_MSG_MAX_FDS];
    if (sbx_msg_recv(sbx_spawner_fd(spawner), &msg, fds ? fds : tmp, &n, &err) < 0)
        fail_msg("recv: %s", err.msg);
    if (n_fds)
        *n_fds = n;
    else
        for (size_t i = 0; i < n; i++)
            close(tmp[i]);
    assert_non_null(msg);
    return msg;
}

static void send_msg(json_t *msg, const int *fds, size_t n_fds)
{
    hks_error err = {0};
    if (sbx_msg_send(sbx_spawner_fd(spawner), msg, fds, n_fds, &err) < 0)
        fail_msg("send: %s", err.msg);
    json_decref(msg);
}

static const char *op_of(json_t *msg)
{
    return json_string_value(json_object_get(msg, "op"));
}

static char *read_memfd(int fd)
{
    char *buf = calloc(1, 65536);
    ssize_t n = pread(fd, buf, 65535, 0);
    assert_true(n >= 0);
    close(fd);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    hks_error err = {0};
    if (sbx_spawner_start(&spawner, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    char path[PATH_MAX];
    test_path(path, sizeof(path), "policies/seccomp/function.json");
    send_msg(json_pack("{s:s,s:i,s:s,s:s}", "op", "load_profile", "id", 1, "name", "function",
                       "path", path),
             NULL, 0);
    json_t *reply = recv_msg(NULL, NULL);
    int ok = strcmp(op_of(reply), "loaded") == 0 ? 0 : -1;
    if (ok < 0)
        fprintf(stderr, "load_profile: %s\n", json_string_value(json_object_get(reply, "message")));
    json_decref(reply);
    return ok;
}

static int teardown(void **state)
{
    (void)state;
    if (spawner)
        sbx_spawner_stop(spawner);
    return 0;
}

static json_t *run_request(int id, const char *script)
{
    return json_pack("{s:s,s:i,s:s,s:[s,s,s],s:{s:i}}", "op", "run", "id", id, "profile",
                     "function", "argv", "/bin/sh", "-c", script, "limits", "wall_ms", 5000);
}

static void concurrent_runs_each_get_their_result(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    for (int id = 10; id < 13; id++) {
        char script[64];
        snprintf(script, sizeof(script), "sleep 0.2; echo run-%d; exit %d", id, id - 10);
        send_msg(run_request(id, script), NULL, 0);
    }
    int started = 0, results = 0;
    while (results < 3) {
        int fds[SBX_MSG_MAX_FDS];
        size_t n_fds = 0;
        json_t *msg = recv_msg(fds, &n_fds);
        json_int_t id = json_integer_value(json_object_get(msg, "id"));
        if (strcmp(op_of(msg), "started") == 0) {
            assert_true(json_integer_value(json_object_get(msg, "pid")) > 0);
            started++;
        } else {
            assert_string_equal(op_of(msg), "result");
            assert_int_equal(n_fds, 2);
            json_t *r = json_object_get(msg, "result");
            char *out = read_memfd(fds[0]);
            char *err = read_memfd(fds[1]);
            char expected[32];
            snprintf(expected, sizeof(expected), "run-%d\n", (int)id);
            assert_string_equal(out, expected);
            assert_string_equal(err, "");
            assert_int_equal(json_integer_value(json_object_get(r, "exit_code")), id - 10);
            assert_string_equal(json_string_value(json_object_get(r, "status")),
                                id == 10 ? "ok" : "error");
            free(out);
            free(err);
            results++;
        }
        json_decref(msg);
    }
    assert_int_equal(started, 3);
}

static void kill_request_ends_a_run(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    send_msg(run_request(20, "sleep 30"), NULL, 0);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "started");
    json_decref(msg);
    send_msg(json_pack("{s:s,s:i}", "op", "kill", "id", 20), NULL, 0);
    msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "result");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(msg, "result"), "status")), "killed");
    json_decref(msg);
}

static void stdin_fd_travels_with_the_request(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    int in[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(write(in[1], "piped", 5), 5);
    close(in[1]);
    json_t *req = run_request(30, "cat");
    json_object_set_new(req, "stdin", json_true());
    send_msg(req, &in[0], 1);
    close(in[0]);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "started");
    json_decref(msg);
    int fds[SBX_MSG_MAX_FDS];
    size_t n_fds;
    msg = recv_msg(fds, &n_fds);
    assert_int_equal(n_fds, 2);
    char *out = read_memfd(fds[0]);
    free(read_memfd(fds[1]));
    assert_string_equal(out, "piped");
    free(out);
    json_decref(msg);
}

static void expect_error(json_t *req, const int *fds, size_t n_fds, const char *needle)
{
    send_msg(req, fds, n_fds);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "error");
    const char *text = json_string_value(json_object_get(msg, "message"));
    if (!strstr(text, needle))
        fail_msg("'%s' lacks '%s'", text, needle);
    json_decref(msg);
}

static void bad_requests_get_errors_and_the_spawner_lives_on(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    expect_error(json_pack("{s:s,s:i}", "op", "launch", "id", 40), NULL, 0, "unknown op");
    expect_error(json_pack("{s:s}", "op", "run"), NULL, 0, "integer \"id\"");
    json_t *req = run_request(41, "true");
    json_object_set_new(req, "profile", json_string("nope"));
    expect_error(req, NULL, 0, "unknown profile 'nope'");
    req = run_request(42, "true");
    json_object_set_new(req, "argv", json_array());
    expect_error(req, NULL, 0, "argv must not be empty");
    req = run_request(43, "true");
    json_object_set_new(req, "limits", json_pack("{s:i}", "memory_bytes", -5));
    expect_error(req, NULL, 0, "limits.memory_bytes");
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    expect_error(run_request(44, "true"), &devnull, 1, "fds attached but none expected");
    close(devnull);
    expect_error(json_pack("{s:s,s:i,s:s,s:s}", "op", "load_profile", "id", 45, "name", "x", "path",
                           "/nonexistent.json"),
                 NULL, 0, "/nonexistent.json");
    /* not JSON at all */
    assert_int_equal(send(sbx_spawner_fd(spawner), "{nope", 5, 0), 5);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "error");
    json_decref(msg);
    /* and it still runs sandboxes */
    send_msg(run_request(46, "echo alive"), NULL, 0);
    json_decref(recv_msg(NULL, NULL));
    int fds[SBX_MSG_MAX_FDS];
    size_t n_fds;
    msg = recv_msg(fds, &n_fds);
    char *out = read_memfd(fds[0]);
    free(read_memfd(fds[1]));
    assert_string_equal(out, "alive\n");
    free(out);
    json_decref(msg);
}

static void arm_sends_go_and_answers_on_the_runs_own_channel(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    int control[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control), 0);
    /* started ahead of time with a long idle limit; reads its "go" from fd 3 */
    json_t *req = run_request(60, "read line <&3; echo \"got $line\"; sleep 30");
    json_object_set_new(req, "pass_fds", json_integer(1));
    json_object_set_new(json_object_get(req, "limits"), "wall_ms", json_integer(60000));
    send_msg(req, &control[1], 1);
    close(control[1]);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "started");
    json_decref(msg);
    usleep(300 * 1000);

    int channel[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel), 0);
    int fds[2] = {channel[1], control[0]};
    send_msg(json_pack("{s:s,s:i,s:{s:i},s:b,s:s}", "op", "arm", "id", 60, "limits", "wall_ms", 500,
                       "reply", 1, "send", "hello\n"),
             fds, 2);
    close(channel[1]);
    close(control[0]);
    hks_error err = {0};
    json_t *armed = NULL, *result = NULL;
    int out[SBX_MSG_MAX_FDS];
    size_t n_out = 0;
    assert_int_equal(sbx_msg_recv(channel[0], &armed, out, &n_out, &err), 0);
    assert_string_equal(op_of(armed), "armed");
    json_decref(armed);
    assert_int_equal(sbx_msg_recv(channel[0], &result, out, &n_out, &err), 0);
    assert_string_equal(op_of(result), "result");
    json_t *r = json_object_get(result, "result");
    /* the clock started at the arm: killed at 500 ms from there, not 60 s from the start */
    assert_string_equal(json_string_value(json_object_get(r, "status")), "timeout");
    assert_string_equal(json_string_value(json_object_get(r, "timeout_reason")), "wall");
    assert_true(json_real_value(json_object_get(r, "wall_ms")) < 2000);
    assert_int_equal(n_out, 2);
    char *text = read_memfd(out[0]);
    close(out[1]);
    assert_string_equal(text, "got hello\n");
    free(text);
    json_decref(result);
    close(channel[0]);
}

static void arm_of_an_unknown_run_is_an_error_on_its_channel(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    int channel[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel), 0);
    send_msg(json_pack("{s:s,s:i,s:b}", "op", "arm", "id", 999, "reply", 1), &channel[1], 1);
    close(channel[1]);
    json_t *msg = NULL;
    int out[SBX_MSG_MAX_FDS];
    size_t n_out = 0;
    hks_error err = {0};
    assert_int_equal(sbx_msg_recv(channel[0], &msg, out, &n_out, &err), 0);
    assert_string_equal(op_of(msg), "error");
    assert_non_null(strstr(json_string_value(json_object_get(msg, "message")), "no such run"));
    json_decref(msg);
    close(channel[0]);
}

static void closing_the_socket_kills_everything_and_cleans_up(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    send_msg(run_request(50, "sleep 60"), NULL, 0);
    json_t *msg = recv_msg(NULL, NULL);
    assert_string_equal(op_of(msg), "started");
    json_decref(msg);
    /* the spawner is the creator of the sandbox cgroups: hks-<spawner pid>-... */
    int spawner_pid = (int)sbx_spawner_pid(spawner);
    /* the earlier tests' cgroups may still be on their way out */
    assert_int_equal(wait_for_sandbox_cgroups(spawner_pid, 1), 1);
    int status = sbx_spawner_stop(spawner);
    spawner = NULL;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sandbox_cgroups_of(spawner_pid), 0); /* it waits for its cgroup removers */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_runs_each_get_their_result),
        cmocka_unit_test(kill_request_ends_a_run),
        cmocka_unit_test(stdin_fd_travels_with_the_request),
        cmocka_unit_test(bad_requests_get_errors_and_the_spawner_lives_on),
        cmocka_unit_test(arm_sends_go_and_answers_on_the_runs_own_channel),
        cmocka_unit_test(arm_of_an_unknown_run_is_an_error_on_its_channel),
        cmocka_unit_test(closing_the_socket_kills_everything_and_cleans_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
