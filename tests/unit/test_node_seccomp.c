/* The node role's seccomp installer: the shipped profile converted for the kubelet, written into
 * a temporary "kubelet seccomp directory", replaced atomically, stale profiles of hksd's removed,
 * other files left alone, and symlinks planted by someone else never followed. */
#include "tests/unit/helpers.h"

#include "daemon/node_seccomp.h"
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

static char root[PATH_MAX];            /* one temporary directory per test */
static char src[PATH_MAX + 16];        /* <root>/policies: the profiles to install */
static char target[PATH_MAX + 32];     /* <root>/kubelet/seccomp/hks: where they go */
static char shipped_text[1024 * 1024]; /* policies/seccomp/function.json */
static size_t shipped_len;

static int load_shipped(void **state)
{
    (void)state;
    char shipped[PATH_MAX];
    test_path(shipped, sizeof(shipped), "policies/seccomp/function.json");
    FILE *f = fopen(shipped, "re");
    if (!f)
        return -1;
    shipped_len = fread(shipped_text, 1, sizeof(shipped_text) - 1, f);
    shipped_text[shipped_len] = '\0';
    fclose(f);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/hks-test-node-seccomp-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(src, sizeof(src), "%s/policies", root);
    snprintf(target, sizeof(target), "%s/kubelet/seccomp/hks", root);
    return mkdir(src, 0755);
}

static int teardown(void **state)
{
    (void)state;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    hks_error err = {0};
    int rc = hks_remove_below(fd, &err);
    close(fd);
    return rc < 0 ? -1 : rmdir(root);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* the file's content (NUL-terminated, malloc'd), NULL when it cannot be read */
static char *read_text(const char *dir, const char *name)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1024 * 1024 + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 1024 * 1024, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void assert_file_is(const char *dir, const char *name, const char *expected)
{
    char *text = read_text(dir, name);
    if (!text)
        fail_msg("%s/%s cannot be read", dir, name);
    assert_string_equal(text, expected);
    free(text);
}

static bool lexists(const char *dir, const char *name)
{
    char path[PATH_MAX * 2];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

static char *converted_shipped(void)
{
    hks_error err = {0};
    size_t len = 0;
    char *text = hksd_node_seccomp_convert(shipped_text, shipped_len, "function.json", &len, &err);
    if (!text)
        fail_msg("%s", err.msg);
    else
        assert_int_equal(strlen(text), len);
    return text;
}

static hksd_node_seccomp_result install_ok(void)
{
    hksd_node_seccomp_result r = {99, 99, 99};
    hks_error err = {0};
    if (hksd_node_seccomp_install(src, target, &r, &err) < 0)
        fail_msg("%s", err.msg);
    return r;
}

/* the names the manifest lists, as one string "a.json,b.json" */
static void manifest_names(char *out, size_t size)
{
    char *text = read_text(target, HKSD_NODE_SECCOMP_MANIFEST);
    assert_non_null(text);
    json_t *m = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(m);
    out[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(m, "profiles"), i, v)
    {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? "," : "", json_string_value(v));
    }
    json_decref(m);
}

/* ---- conversion ---- */

static void the_shipped_profile_converts_to_the_oci_format(void **state)
{
    (void)state;
    char *text = converted_shipped();
    json_error_t jerr;
    json_t *p = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(p);
    json_t *original = json_loads(shipped_text, 0, &jerr);
    assert_non_null(original);
    /* only OCI keys, no comments, the same default and architectures */
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v)
    {
        if (strcmp(key, "defaultAction") != 0 && strcmp(key, "defaultErrnoRet") != 0 &&
            strcmp(key, "architectures") != 0 && strcmp(key, "syscalls") != 0)
            fail_msg("unexpected key %s", key);
    }
    assert_true(json_equal(json_object_get(p, "defaultAction"),
                           json_object_get(original, "defaultAction")));
    assert_true(json_equal(json_object_get(p, "architectures"),
                           json_object_get(original, "architectures")));
    assert_null(strstr(text, "\"comment\""));
    /* every original rule, in order, then socket(AF_INET) and socket(AF_INET6) */
    json_t *rules = json_object_get(p, "syscalls");
    json_t *orig_rules = json_object_get(original, "syscalls");
    assert_int_equal(json_array_size(rules), json_array_size(orig_rules) + 2);
    for (size_t i = 0; i < json_array_size(orig_rules); i++) {
        json_t *copy = json_deep_copy(json_array_get(orig_rules, i));
        json_object_del(copy, "comment");
        assert_true(json_equal(copy, json_array_get(rules, i)));
        json_decref(copy);
    }
    static const int families[] = {2, 10};
    for (size_t f = 0; f < 2; f++) {
        json_t *rule = json_array_get(rules, json_array_size(orig_rules) + f);
        assert_string_equal(json_string_value(json_array_get(json_object_get(rule, "names"), 0)),
                            "socket");
        assert_string_equal(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ALLOW");
        json_t *arg = json_array_get(json_object_get(rule, "args"), 0);
        assert_int_equal(json_integer_value(json_object_get(arg, "index")), 0);
        assert_int_equal(json_integer_value(json_object_get(arg, "value")), families[f]);
        assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_EQ");
    }
    /* it compiles to the same filter as the local sandbox's profile with network */
    hks_error err = {0};
    sbx_profile *converted = NULL, *local = NULL;
    assert_int_equal(
        sbx_profile_load_text(text, strlen(text), "converted", false, &converted, &err), 0);
    assert_int_equal(
        sbx_profile_load_text(shipped_text, shipped_len, "shipped", true, &local, &err), 0);
    assert_int_equal(sbx_profile_insns(converted), sbx_profile_insns(local));
    sbx_profile_free(converted);
    sbx_profile_free(local);
    json_decref(p);
    json_decref(original);
    free(text);
}

static void profiles_outside_the_oci_format_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *expected;
    } bad[] = {
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"includes\":{}}",
         "p.json: (root).includes: not a key of the OCI seccomp format"},
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
         "\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{}}]}",
         "p.json: syscalls[0].excludes: not a key of the OCI seccomp format"},
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
         "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":"
         "\"SCMP_CMP_EQ\",\"mask\":1}]}]}",
         "p.json: syscalls[0].args[0].mask: not a key of the OCI seccomp format"},
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":{}}",
         "p.json: syscalls: must be an array"},
        {"{\"defaultAction\":\"SCMP_ACT_MAYBE\"}", "p.json: defaultAction"},
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
         "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":"
         "\"SCMP_CMP_LIKE\"}]}]}",
         "seccomp profile p.json: syscalls[0]"},
        {"[]", "p.json: (root): must be an object"},
        {"{\"defaultAction\":", "p.json: line 1"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        hks_error err = {0};
        size_t len = 0;
        char *out =
            hksd_node_seccomp_convert(bad[i].text, strlen(bad[i].text), "p.json", &len, &err);
        if (out)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err.msg, bad[i].expected))
            fail_msg("'%s' does not contain '%s'", err.msg, bad[i].expected);
    }
}

/* ---- installing ---- */

static void make_target_parent(void)
{
    char parent[PATH_MAX + 32];
    snprintf(parent, sizeof(parent), "%s/kubelet", root);
    assert_int_equal(mkdir(parent, 0755), 0);
    snprintf(parent, sizeof(parent), "%s/kubelet/seccomp", root);
    assert_int_equal(mkdir(parent, 0755), 0);
}

static void profiles_are_written_into_a_new_directory(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    write_text(src, "strict.json", "{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"syscalls\":[]}");
    write_text(src, "README.md", "not a profile");
    hksd_node_seccomp_result r = install_ok();
    assert_int_equal(r.written, 2);
    assert_int_equal(r.removed, 0);
    assert_int_equal(r.kept, 0);

    char *expected = converted_shipped();
    assert_file_is(target, "function.json", expected);
    free(expected);
    char *strict = read_text(target, "strict.json");
    assert_non_null(strict);
    assert_non_null(strstr(strict, "SCMP_ACT_KILL_PROCESS"));
    free(strict);
    assert_false(lexists(target, "README.md"));
    char names[256];
    manifest_names(names, sizeof(names));
    assert_string_equal(names, "function.json,strict.json");
    /* what the kubelet reads: world-readable files in a directory only hksd writes */
    struct stat st;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/function.json", target);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    /* nothing else: no temporary file left */
    assert_int_equal(count_entries_with_prefix(target, ""), 3);
    assert_int_equal(count_entries_with_prefix(target, ".hksd-tmp."), 0);
}

static void a_profile_is_replaced_atomically(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    install_ok();
    /* an old version in place, held open by a "reader" */
    write_text(target, "function.json", "{\"old\": true}\n");
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/function.json", target);
    int reader = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(reader >= 0);
    struct stat before, after;
    assert_int_equal(fstat(reader, &before), 0);

    hksd_node_seccomp_result r = install_ok();
    assert_int_equal(r.written, 1);
    /* a new file took the name: the reader's file was never truncated or rewritten in place */
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_ino != after.st_ino);
    char old[64] = {0};
    assert_true(pread(reader, old, sizeof(old) - 1, 0) > 0);
    assert_string_equal(old, "{\"old\": true}\n");
    close(reader);
    char *expected = converted_shipped();
    assert_file_is(target, "function.json", expected);
    free(expected);
}

static void stale_profiles_of_hksd_are_removed(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    write_text(src, "old.json", "{\"defaultAction\":\"SCMP_ACT_ERRNO\"}");
    install_ok();
    assert_true(lexists(target, "old.json"));

    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/old.json", src);
    assert_int_equal(unlink(path), 0);
    hksd_node_seccomp_result r = install_ok();
    assert_int_equal(r.written, 1);
    assert_int_equal(r.removed, 1);
    assert_false(lexists(target, "old.json"));
    assert_true(lexists(target, "function.json"));
    char names[256];
    manifest_names(names, sizeof(names));
    assert_string_equal(names, "function.json");
    /* the next start has nothing more to remove */
    r = install_ok();
    assert_int_equal(r.removed, 0);
}

static void files_of_others_are_left_alone(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    write_text(src, "gone.json", "{\"defaultAction\":\"SCMP_ACT_ERRNO\"}");
    install_ok();
    /* someone else's files beside hksd's, even one that looks like a profile */
    write_text(target, "other.json", "{\"theirs\": 1}");
    write_text(target, "notes.txt", "admin notes");
    /* a stale name of hksd's that someone turned into a symlink to their own file */
    write_text(root, "victim", "keep me");
    char link_path[PATH_MAX * 2], victim[PATH_MAX + 16], gone[PATH_MAX * 2];
    snprintf(gone, sizeof(gone), "%s/gone.json", target);
    snprintf(victim, sizeof(victim), "%s/victim", root);
    assert_int_equal(unlink(gone), 0);
    assert_int_equal(symlink(victim, gone), 0);
    snprintf(link_path, sizeof(link_path), "%s/gone.json", src);
    assert_int_equal(unlink(link_path), 0);

    hksd_node_seccomp_result r = install_ok();
    assert_int_equal(r.removed, 0);
    assert_int_equal(r.kept, 1);
    assert_file_is(target, "other.json", "{\"theirs\": 1}");
    assert_file_is(target, "notes.txt", "admin notes");
    assert_file_is(root, "victim", "keep me");
    struct stat st;
    assert_int_equal(lstat(gone, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void a_planted_profile_symlink_is_replaced_not_followed(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    make_target_parent();
    assert_int_equal(mkdir(target, 0755), 0);
    write_text(root, "victim", "keep me");
    char victim[PATH_MAX + 16], link_path[PATH_MAX * 2];
    snprintf(victim, sizeof(victim), "%s/victim", root);
    snprintf(link_path, sizeof(link_path), "%s/function.json", target);
    assert_int_equal(symlink(victim, link_path), 0);

    install_ok();
    assert_file_is(root, "victim", "keep me");
    struct stat st;
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    char *expected = converted_shipped();
    assert_file_is(target, "function.json", expected);
    free(expected);
}

static void a_symlinked_directory_is_refused(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    make_target_parent();
    char elsewhere[PATH_MAX + 16];
    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", root);
    assert_int_equal(mkdir(elsewhere, 0755), 0);
    assert_int_equal(symlink(elsewhere, target), 0);

    hks_error err = {0};
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_true(err.errnum == ELOOP || err.errnum == ENOTDIR);
    assert_non_null(strstr(err.msg, target));
    assert_non_null(strstr(err.msg, "symlink: refused"));
    assert_int_equal(count_entries_with_prefix(elsewhere, ""), 0);
    /* the same with a trailing slash */
    char slashed[PATH_MAX + 48];
    snprintf(slashed, sizeof(slashed), "%s/", target);
    assert_int_equal(hksd_node_seccomp_install(src, slashed, NULL, &err), -1);
    assert_int_equal(count_entries_with_prefix(elsewhere, ""), 0);
}

static void a_directory_others_may_write_is_refused(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    make_target_parent();
    assert_int_equal(mkdir(target, 0755), 0);
    assert_int_equal(chmod(target, 0777), 0);
    hks_error err = {0};
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_int_equal(err.errnum, EPERM);
    assert_non_null(strstr(err.msg, "writable by nobody else"));
    assert_int_equal(count_entries_with_prefix(target, ""), 0);
}

static void a_planted_manifest_is_refused(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    make_target_parent();
    assert_int_equal(mkdir(target, 0755), 0);
    /* a symlink as the manifest: not read, not written through */
    write_text(root, "victim", "{\"profiles\": []}");
    char victim[PATH_MAX + 16], manifest[PATH_MAX * 2];
    snprintf(victim, sizeof(victim), "%s/victim", root);
    snprintf(manifest, sizeof(manifest), "%s/" HKSD_NODE_SECCOMP_MANIFEST, target);
    assert_int_equal(symlink(victim, manifest), 0);
    hks_error err = {0};
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_int_equal(err.errnum, ELOOP);
    assert_non_null(strstr(err.msg, HKSD_NODE_SECCOMP_MANIFEST));
    assert_file_is(root, "victim", "{\"profiles\": []}");
    /* a manifest naming paths outside the directory */
    assert_int_equal(unlink(manifest), 0);
    write_text(target, HKSD_NODE_SECCOMP_MANIFEST, "{\"profiles\": [\"../victim\"]}");
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "refused"));
    assert_true(lexists(root, "victim"));
}

static void leftover_temporary_files_are_swept(void **state)
{
    (void)state;
    write_text(src, "function.json", shipped_text);
    install_ok();
    write_text(target, ".hksd-tmp.0123456789abcdef", "half a profile");
    install_ok();
    assert_int_equal(count_entries_with_prefix(target, ".hksd-tmp."), 0);
}

static void bad_sources_fail_before_the_directory_is_touched(void **state)
{
    (void)state;
    hks_error err = {0};
    /* no profile at all */
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no profile"));
    /* one bad profile among good ones */
    write_text(src, "function.json", shipped_text);
    write_text(src, "broken.json", "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"includes\": {}}");
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "broken.json"));
    assert_false(lexists(root, "kubelet"));
    /* a name a localhostProfile could not use */
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/broken.json", src);
    assert_int_equal(unlink(path), 0);
    write_text(src, "bad name.json", shipped_text);
    assert_int_equal(hksd_node_seccomp_install(src, target, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "bad name.json"));
    snprintf(path, sizeof(path), "%s/bad name.json", src);
    assert_int_equal(unlink(path), 0);
    /* a relative target, the root, a missing source directory */
    assert_int_equal(hksd_node_seccomp_install(src, "var/lib/kubelet/seccomp/hks", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "must be an absolute path"));
    assert_int_equal(hksd_node_seccomp_install(src, "/", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "must name a directory below /"));
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/missing", root);
    assert_int_equal(hksd_node_seccomp_install(missing, target, NULL, &err), -1);
    assert_int_equal(err.errnum, ENOENT);
    assert_non_null(strstr(err.msg, missing));
    assert_false(lexists(root, "kubelet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_shipped_profile_converts_to_the_oci_format),
        cmocka_unit_test(profiles_outside_the_oci_format_are_refused),
        cmocka_unit_test_setup_teardown(profiles_are_written_into_a_new_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(a_profile_is_replaced_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_profiles_of_hksd_are_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(files_of_others_are_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(a_planted_profile_symlink_is_replaced_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_symlinked_directory_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_directory_others_may_write_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_planted_manifest_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(leftover_temporary_files_are_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_sources_fail_before_the_directory_is_touched, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, load_shipped, NULL);
}
