#include "tests/unit/helpers.h"

#include "common/common.h"

static void sizes_parse_with_units(void **state)
{
    (void)state;
    unsigned long long v;
    assert_int_equal(hks_parse_size("1024", &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(hks_parse_size("512K", &v), 0);
    assert_int_equal(v, 512 * 1024);
    assert_int_equal(hks_parse_size("64M", &v), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(hks_parse_size("1g", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(hks_parse_size("1.5M", &v), 0);
    assert_int_equal(v, 3ULL << 19);
}

static void bad_sizes_are_refused(void **state)
{
    (void)state;
    unsigned long long v = 7;
    const char *bad[] = {"", "-1", "M", "12Q", "1e400", "99999999999999999999999G", " 5", "5 "};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        assert_int_equal(hks_parse_size(bad[i], &v), -1);
    }
    assert_int_equal(v, 7);
}

static void durations_parse_to_milliseconds(void **state)
{
    (void)state;
    unsigned long long v;
    assert_int_equal(hks_parse_duration_ms("500ms", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(hks_parse_duration_ms("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(hks_parse_duration_ms("2", &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(hks_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(hks_parse_duration_ms("1.5s", &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(hks_parse_duration_ms("5 s", &v), -1);
    assert_int_equal(hks_parse_duration_ms("5d", &v), -1);
}

static void uints_are_range_checked(void **state)
{
    (void)state;
    unsigned long long v;
    assert_int_equal(hks_parse_uint("64", 1, 100, &v), 0);
    assert_int_equal(v, 64);
    assert_int_equal(hks_parse_uint("0", 1, 100, &v), -1);
    assert_int_equal(hks_parse_uint("101", 1, 100, &v), -1);
    assert_int_equal(hks_parse_uint("12abc", 1, 100, &v), -1);
    assert_int_equal(hks_parse_uint("-3", 0, 100, &v), -1);
}

static void errors_carry_context_and_errno(void **state)
{
    (void)state;
    hks_error err = {0};
    assert_int_equal(hks_fail(&err, ENOENT, "open %s", "/nope"), -1);
    assert_string_equal(err.msg, "open /nope: No such file or directory");
    assert_int_equal(err.errnum, ENOENT);
    hks_wrap(&err, "load profile %d", 3);
    assert_string_equal(err.msg, "load profile 3: open /nope: No such file or directory");
    /* a long prefix never overflows */
    char long_prefix[2000];
    memset(long_prefix, 'x', sizeof(long_prefix) - 1);
    long_prefix[sizeof(long_prefix) - 1] = '\0';
    hks_wrap(&err, "%s", long_prefix);
    assert_true(strlen(err.msg) < sizeof(err.msg));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_parse_with_units),
        cmocka_unit_test(bad_sizes_are_refused),
        cmocka_unit_test(durations_parse_to_milliseconds),
        cmocka_unit_test(uints_are_range_checked),
        cmocka_unit_test(errors_carry_context_and_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
