/* Files of an execution written into /code: hostile names refused, links never followed. */
#include "tests/unit/helpers.h"

#include "runtimes/runtimes.h"

#include <fcntl.h>
#include <sys/stat.h>

static void names_that_could_leave_code_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"",  "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b",
                         ".", "..",          "dir/", "./x",       "a/..", NULL};
    for (size_t i = 0; bad[i]; i++) {
        if (rt_safe_name(bad[i]))
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_false(rt_safe_name(NULL));
    char deep[200];
    size_t used = 0;
    for (int i = 0; i < 17; i++)
        used += (size_t)snprintf(deep + used, sizeof(deep) - used, "d/");
    snprintf(deep + used, sizeof(deep) - used, "f");
    assert_false(rt_safe_name(deep));
    char long_part[300];
    memset(long_part, 'x', 256);
    long_part[256] = '\0';
    assert_false(rt_safe_name(long_part));
    const char *good[] = {"main.py", "pkg/mod.py", "a/b/c/d.js", "..hidden", "x..y", "-", NULL};
    for (size_t i = 0; good[i]; i++) {
        if (!rt_safe_name(good[i]))
            fail_msg("'%s' was refused", good[i]);
    }
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/hks-test-files-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void files_land_below_the_directory(void **state)
{
    (void)state;
    char *dir = make_dir();
    rt_file files[] = {{"main.py", "print(1)\n", 9},
                       {"pkg/util.py", "X = 2\n", 6},
                       {"pkg/sub/data.bin", "\0\1\2", 3}};
    hks_error err = {0};
    assert_int_equal(rt_write_files(dir, files, 3, &err), 0);
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/pkg/sub/data.bin", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(rt_remove_tree(dir, &err), 0);
    assert_int_equal(stat(dir, &st), -1);
    free(dir);
}

static void bad_requests_are_refused_with_the_name(void **state)
{
    (void)state;
    char *dir = make_dir();
    hks_error err = {0};
    rt_file dup[] = {{"a.py", "1", 1}, {"a.py", "2", 1}};
    assert_int_equal(rt_write_files(dir, dup, 2, &err), -1);
    assert_non_null(strstr(err.msg, "file a.py given twice"));
    rt_file escape[] = {{"../escape.py", "x", 1}};
    assert_int_equal(rt_write_files(dir, escape, 1, &err), -1);
    assert_non_null(strstr(err.msg, "'../escape.py' is not a relative path"));
    static char big[RT_MAX_FILE_BYTES + 1];
    rt_file huge[] = {{"big.bin", big, sizeof(big)}};
    assert_int_equal(rt_write_files(dir, huge, 1, &err), -1);
    assert_non_null(strstr(err.msg, "big.bin"));
    assert_int_equal(rt_remove_tree(dir, &err), 0);
    free(dir);
}

static void links_in_the_directory_are_never_followed(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *outside = make_dir();
    char link[PATH_MAX], target[PATH_MAX];
    /* a link where a file or a directory will be written */
    snprintf(link, sizeof(link), "%s/main.py", dir);
    snprintf(target, sizeof(target), "%s/victim", outside);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof(link), "%s/pkg", dir);
    assert_int_equal(symlink(outside, link), 0);
    hks_error err = {0};
    rt_file f1[] = {{"main.py", "x", 1}};
    assert_int_equal(rt_write_files(dir, f1, 1, &err), -1);
    rt_file f2[] = {{"pkg/inside.py", "x", 1}};
    assert_int_equal(rt_write_files(dir, f2, 1, &err), -1);
    struct stat st;
    assert_int_equal(stat(target, &st), -1);
    snprintf(target, sizeof(target), "%s/inside.py", outside);
    assert_int_equal(stat(target, &st), -1);
    /* removing the tree removes the links, not what they point to */
    snprintf(target, sizeof(target), "%s/keep", outside);
    int fd = open(target, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(rt_remove_tree(dir, &err), 0);
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(rt_remove_tree(outside, &err), 0);
    free(dir);
    free(outside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_that_could_leave_code_are_refused),
        cmocka_unit_test(files_land_below_the_directory),
        cmocka_unit_test(bad_requests_are_refused_with_the_name),
        cmocka_unit_test(links_in_the_directory_are_never_followed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
