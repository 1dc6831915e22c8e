/* Seccomp profiles: parsing, every refusal with a message that names the field, and the
 * compiled program's behaviour in a real process (errno, argument filters, bad architectures). */
#include "tests/unit/helpers.h"

#include "sandbox/internal.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static const char small_profile[] =
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
    "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"syscalls\":["
    "{\"names\":[\"exit_group\",\"exit\",\"getpid\",\"write\",\"close\",\"mmap\",\"munmap\","
    "\"mprotect\",\"sigaltstack\",\"rt_sigaction\",\"rt_sigprocmask\",\"madvise\",\"gettid\","
    "\"futex\",\"brk\",\"sched_yield\",\"prctl\"],"
    "\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"basics\"},"
    "{\"names\":[\"socket\"],\"action\":\"SCMP_ACT_ALLOW\","
    "\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]},"
    "{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38},"
    "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13}]}";

static sbx_profile *load_text(const char *text, bool inet, hks_error *err)
{
    sbx_profile *p = NULL;
    if (sbx_profile_load_text(text, strlen(text), "test", inet, &p, err) < 0)
        return NULL;
    return p;
}

typedef int (*probe_fn)(void);

/* Run probe in a child under the profile; returns its wait status. */
static int run_probe(const sbx_profile *profile, probe_fn probe)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sbx_profile_install(profile) < 0)
            _exit(99);
        _exit(probe());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int probe_getpid(void)
{
    return syscall(SYS_getpid) > 0 ? 0 : 1;
}
static int probe_denied_default(void)
{
    return syscall(SYS_getuid) < 0 && errno == EPERM ? 0 : 1;
}
static int probe_custom_errno(void)
{
    return syscall(SYS_getppid) < 0 && errno == EACCES ? 0 : 1;
}
static int probe_clone3_enosys(void)
{
    return syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS ? 0 : 1;
}
static int probe_socket_unix(void)
{
    long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 1;
}
static int probe_socket_inet_denied(void)
{
    return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) < 0 && errno == EPERM ? 0 : 1;
}
static int probe_socket_inet_allowed(void)
{
    return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1;
}
static int probe_i386_getpid(void)
{
    long ret;
    /* getpid is 20 in the i386 table; int 0x80 enters through the 32-bit ABI */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret > 0 ? 3 : 4;
}
static int probe_x32_getpid(void)
{
    return syscall(39 | 0x40000000) > 0 ? 3 : 4;
}

static void compiled_program_allows_refuses_and_filters(void **state)
{
    (void)state;
    hks_error err = {0};
    sbx_profile *p = load_text(small_profile, false, &err);
    assert_non_null(p);
    assert_true(sbx_profile_insns(p) > 5);

    int st = run_probe(p, probe_getpid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(p, probe_denied_default);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(p, probe_custom_errno);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(p, probe_clone3_enosys);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(p, probe_socket_unix);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(p, probe_socket_inet_denied);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sbx_profile_free(p);
}

static void network_variant_allows_inet_sockets(void **state)
{
    (void)state;
    hks_error err = {0};
    sbx_profile *p = load_text(small_profile, true, &err);
    assert_non_null(p);
    int st = run_probe(p, probe_socket_inet_allowed);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sbx_profile_free(p);
}

static void other_abis_kill_the_process(void **state)
{
    (void)state;
    hks_error err = {0};
    sbx_profile *p = load_text(small_profile, false, &err);
    assert_non_null(p);
    int st = run_probe(p, probe_i386_getpid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
    st = run_probe(p, probe_x32_getpid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
    sbx_profile_free(p);
}

static void expect_refusal(const char *text, const char *needle)
{
    hks_error err = {0};
    sbx_profile *p = load_text(text, false, &err);
    assert_null(p);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void bad_profiles_are_refused_with_the_field(void **state)
{
    (void)state;
    expect_refusal("{\"defaultAction\":", "invalid JSON");
    expect_refusal("[]", "must be a JSON object");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
                   "duplicate");
    expect_refusal("{\"syscalls\":[]}", "defaultAction");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}", "defaultAction");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
                   "\"action\":\"SCMP_ACT_BOGUS\"}]}",
                   "syscalls[0]: action SCMP_ACT_BOGUS");
    expect_refusal(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"no_such_call\"],"
        "\"action\":\"SCMP_ACT_ERRNO\"}]}",
        "unknown syscall \"no_such_call\"");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"socket\"],"
                   "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":7,\"value\":1,"
                   "\"op\":\"SCMP_CMP_EQ\"}]}]}",
                   "syscalls[0].args[0]: index");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"socket\"],"
                   "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,"
                   "\"op\":\"SCMP_CMP_SOMETIMES\"}]}]}",
                   "op must be");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"socket\"],"
                   "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":"
                   "\"SCMP_CMP_NE\"},{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_NE\"}]}]}",
                   "a second condition on argument 0");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_PDP11\"]}",
                   "architectures[0]: unknown architecture");
    expect_refusal("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[],"
                   "\"action\":\"SCMP_ACT_ALLOW\"}]}",
                   "names must be a non-empty array");
}

static void unknown_names_in_an_allowlist_are_skipped_safely(void **state)
{
    (void)state;
    /* Allowing a syscall this libseccomp cannot name is left out (less is allowed), so Docker's
     * newer profiles still load; refusing one it cannot name fails (tested above). */
    hks_error err = {0};
    sbx_profile *p =
        load_text("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":"
                  "[\"exit_group\",\"some_future_call\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  false, &err);
    assert_non_null(p);
    sbx_profile_free(p);
}

static void check_mode_lists_every_problem(void **state)
{
    (void)state;
    char path[] = "/tmp/hks-test-profile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
                       "{\"names\":[\"read\",\"frobnicate\"],\"action\":\"SCMP_ACT_ALLOW\"},"
                       "{\"names\":[\"write\"],\"action\":\"SCMP_ACT_MAYBE\"},"
                       "{\"names\":[\"ghost_call\"],\"action\":\"SCMP_ACT_ALLOW\"}],"
                       "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\"]}";
    assert_int_equal(hks_write_all(fd, text, strlen(text)), 0);
    close(fd);
    char *report_text = NULL;
    size_t report_len = 0;
    FILE *report = open_memstream(&report_text, &report_len);
    hks_error err = {0};
    int problems = sbx_profile_check(path, report, &err);
    fclose(report);
    unlink(path);
    assert_int_equal(problems, 4);
    assert_non_null(strstr(report_text, "architectures[1]: SCMP_ARCH_X86 lets 32-bit"));
    assert_non_null(strstr(report_text, "syscalls[0].names[1]: unknown syscall \"frobnicate\""));
    assert_non_null(strstr(report_text, "syscalls[1]: action SCMP_ACT_MAYBE"));
    assert_non_null(strstr(report_text, "syscalls[2].names[0]: unknown syscall \"ghost_call\""));
    free(report_text);
}

static void shipped_profile_is_clean(void **state)
{
    (void)state;
    char path[PATH_MAX];
    test_path(path, sizeof(path), "policies/seccomp/function.json");
    FILE *devnull = fopen("/dev/null", "w");
    hks_error err = {0};
    int problems = sbx_profile_check(path, devnull, &err);
    fclose(devnull);
    assert_int_equal(problems, 0);
    sbx_profile *p = NULL;
    assert_int_equal(sbx_profile_load(path, false, &p, &err), 0);
    sbx_profile_free(p);
}

static void missing_profile_names_the_path(void **state)
{
    (void)state;
    sbx_profile *p = NULL;
    hks_error err = {0};
    assert_int_equal(sbx_profile_load("/nonexistent/profile.json", false, &p, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/profile.json: No such file or directory"));
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/hks-test-profile-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(hks_write_all(fd, text, strlen(text)), 0);
    close(fd);
    return path;
}

static void cached_program_equals_a_fresh_compile(void **state)
{
    (void)state;
    char dir[] = "/tmp/hks-test-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cache[PATH_MAX];
    snprintf(cache, sizeof(cache), "%s/nested/seccomp", dir);
    char *path = write_temp(small_profile);
    hks_error err = {0};
    sbx_profile *fresh = NULL, *first = NULL, *second = NULL, *inet = NULL;
    assert_int_equal(sbx_profile_load(path, false, &fresh, &err), 0);
    assert_int_equal(sbx_profile_load_cached(path, false, cache, &first, &err), 0);
    assert_int_equal(count_entries_with_prefix(cache, ""), 1);
    assert_int_equal(sbx_profile_load_cached(path, false, cache, &second, &err), 0);
    assert_int_equal(count_entries_with_prefix(cache, ""), 1);
    assert_int_equal(second->n_insns, fresh->n_insns);
    assert_memory_equal(second->insns, fresh->insns, fresh->n_insns * sizeof(struct sock_filter));
    assert_memory_equal(first->insns, fresh->insns, fresh->n_insns * sizeof(struct sock_filter));
    /* the network variant is another program, in another entry */
    assert_int_equal(sbx_profile_load_cached(path, true, cache, &inet, &err), 0);
    assert_int_equal(count_entries_with_prefix(cache, ""), 2);
    int st = run_probe(inet, probe_socket_inet_allowed);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_probe(second, probe_socket_inet_denied);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sbx_profile_free(fresh);
    sbx_profile_free(first);
    sbx_profile_free(second);
    sbx_profile_free(inet);
    unlink(path);
    free(path);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void only_entry_in(const char *dir, char *entry, size_t size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    entry[0] = '\0';
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.')
            snprintf(entry, size, "%s/%s", dir, e->d_name);
    }
    if (d)
        closedir(d);
}

static void damaged_or_untrusted_cache_is_not_used(void **state)
{
    (void)state;
    char dir[] = "/tmp/hks-test-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = write_temp(small_profile);
    hks_error err = {0};
    sbx_profile *fresh = NULL, *p = NULL;
    assert_int_equal(sbx_profile_load(path, false, &fresh, &err), 0);
    assert_int_equal(sbx_profile_load_cached(path, false, dir, &p, &err), 0);
    sbx_profile_free(p);

    /* damage the last instruction of the stored program: it is recompiled, not loaded */
    char entry[PATH_MAX];
    only_entry_in(dir, entry, sizeof(entry));
    FILE *f = fopen(entry, "r+");
    assert_non_null(f);
    fseek(f, -8, SEEK_END);
    fputs("garbage!", f);
    fclose(f);
    assert_int_equal(sbx_profile_load_cached(path, false, dir, &p, &err), 0);
    assert_int_equal(p->n_insns, fresh->n_insns);
    assert_memory_equal(p->insns, fresh->insns, fresh->n_insns * sizeof(struct sock_filter));
    sbx_profile_free(p);

    /* a changed profile text never matches the old entry */
    char *changed = write_temp(small_profile);
    FILE *g = fopen(changed, "a");
    fputs(" ", g);
    fclose(g);
    assert_int_equal(sbx_profile_load_cached(changed, false, dir, &p, &err), 0);
    sbx_profile_free(p);
    assert_int_equal(count_entries_with_prefix(dir, ""), 2);

    /* a cache directory others may write to is neither read nor written */
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(unlink(entry), 0);
    assert_int_equal(sbx_profile_load_cached(path, false, dir, &p, &err), 0);
    assert_int_equal(count_entries_with_prefix(dir, ""), 1);
    int st = run_probe(p, probe_denied_default);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sbx_profile_free(p);
    sbx_profile_free(fresh);
    unlink(path);
    unlink(changed);
    free(path);
    free(changed);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compiled_program_allows_refuses_and_filters),
        cmocka_unit_test(network_variant_allows_inet_sockets),
        cmocka_unit_test(other_abis_kill_the_process),
        cmocka_unit_test(bad_profiles_are_refused_with_the_field),
        cmocka_unit_test(unknown_names_in_an_allowlist_are_skipped_safely),
        cmocka_unit_test(check_mode_lists_every_problem),
        cmocka_unit_test(shipped_profile_is_clean),
        cmocka_unit_test(missing_profile_names_the_path),
        cmocka_unit_test(cached_program_equals_a_fresh_compile),
        cmocka_unit_test(damaged_or_untrusted_cache_is_not_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
