/* The rings of recent activity: nearest-rank percentiles, newest-first listing with a limit, ring
 * wrap-around keeping the newest, samples due every interval, executions per project. */
#include "tests/unit/helpers.h"

#include "common/common.h"
#include "daemon/recent.h"

static recent_invocation call(long long ts_ms, int http_status, uint32_t duration_us)
{
    return (recent_invocation){
        .ts_ms = ts_ms, .http_status = http_status, .duration_us = duration_us};
}

static void test_percentiles_nearest_rank(void **state)
{
    (void)state;
    fn_recent *r = fn_recent_new();
    assert_non_null(r);
    json_t *none = fn_recent_durations(r);
    assert_true(json_is_null(json_object_get(none, "p50")));
    assert_int_equal(json_integer_value(json_object_get(none, "samples")), 0);
    json_decref(none);
    /* 1..10 ms in shuffled order: p50 is the 5th value, p95 the 10th */
    const uint32_t ms[] = {7, 3, 10, 1, 9, 2, 8, 4, 6, 5};
    for (size_t i = 0; i < HKS_ARRAY_LEN(ms); i++) {
        recent_invocation c = call(1000 + (long long)i, 200, ms[i] * 1000);
        fn_recent_add_call(r, &c);
    }
    json_t *d = fn_recent_durations(r);
    assert_float_equal(json_real_value(json_object_get(d, "p50")), 5.0, 1e-9);
    assert_float_equal(json_real_value(json_object_get(d, "p95")), 10.0, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(d, "samples")), 10);
    json_decref(d);
    fn_recent_free(r);
}

static void test_calls_newest_first_and_the_ring_keeps_the_newest(void **state)
{
    (void)state;
    fn_recent *r = fn_recent_new();
    for (int i = 0; i < RECENT_INVOCATIONS + 50; i++) {
        recent_invocation c = call(1767225600000LL + i, i % 10 == 0 ? 503 : 200, 1000);
        c.timed_out = i == RECENT_INVOCATIONS + 49;
        fn_recent_add_call(r, &c);
    }
    json_t *all = fn_recent_calls_json(r, 1000);
    assert_int_equal(json_array_size(all), RECENT_INVOCATIONS);
    json_t *newest = json_array_get(all, 0);
    assert_string_equal(json_string_value(json_object_get(newest, "status")), "timeout");
    assert_string_equal(json_string_value(json_object_get(newest, "ts")),
                        "2026-01-01T00:00:00.249Z");
    json_t *oldest = json_array_get(all, RECENT_INVOCATIONS - 1);
    assert_string_equal(json_string_value(json_object_get(oldest, "ts")),
                        "2026-01-01T00:00:00.050Z");
    assert_string_equal(json_string_value(json_object_get(oldest, "status")), "error");
    assert_int_equal(json_integer_value(json_object_get(oldest, "http_status")), 503);
    json_decref(all);
    json_t *two = fn_recent_calls_json(r, 2);
    assert_int_equal(json_array_size(two), 2);
    json_decref(two);
    fn_recent_free(r);
}

static void test_samples_are_due_every_interval_and_listed_oldest_first(void **state)
{
    (void)state;
    fn_recent *r = fn_recent_new();
    assert_true(fn_recent_sample_due(r, 0));
    long long t = 1767225600000LL;
    for (int i = 0; i < RECENT_SAMPLES + 3; i++, t += RECENT_SAMPLE_MS) {
        assert_true(fn_recent_sample_due(r, t));
        recent_sample s = {.ts_ms = t, .invocations = (uint64_t)i};
        fn_recent_add_sample(r, &s);
        assert_false(fn_recent_sample_due(r, t + RECENT_SAMPLE_MS - 1));
    }
    json_t *list = fn_recent_samples_json(r);
    assert_int_equal(json_array_size(list), RECENT_SAMPLES);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "invocations")),
                     3);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(list, RECENT_SAMPLES - 1), "invocations")),
                     RECENT_SAMPLES + 2);
    json_decref(list);
    fn_recent_free(r);
}

static void test_executions_per_project_newest_first(void **state)
{
    (void)state;
    recent_executions *r = malloc(sizeof(*r));
    assert_non_null(r);
    recent_executions_init(r);
    for (int i = 0; i < RECENT_EXECUTIONS + 10; i++) {
        recent_execution e = {.ts_ms = 1767225600000LL + i,
                              .exit_code = i % 2 ? 1 : -1,
                              .signal = i % 2 ? 0 : 9,
                              .wall_ms = 1.5};
        snprintf(e.id, sizeof(e.id), "exe-%d", i);
        snprintf(e.project, sizeof(e.project), "%s", i % 3 == 0 ? "p1" : "p2");
        snprintf(e.runtime, sizeof(e.runtime), "python");
        snprintf(e.status, sizeof(e.status), "ok");
        recent_executions_add(r, &e);
    }
    json_t *p1 = recent_executions_json(r, "p1", 1000);
    json_t *list = json_object_get(p1, "executions");
    /* the ring holds the last RECENT_EXECUTIONS: ids 10 .. RECENT_EXECUTIONS + 9 */
    size_t expected = 0;
    for (int i = 10; i < RECENT_EXECUTIONS + 10; i++)
        expected += i % 3 == 0;
    assert_int_equal(json_array_size(list), expected);
    json_t *first = json_array_get(list, 0);
    char want[32];
    int newest = RECENT_EXECUTIONS + 9;
    while (newest % 3 != 0)
        newest--;
    snprintf(want, sizeof(want), "exe-%d", newest);
    assert_string_equal(json_string_value(json_object_get(first, "id")), want);
    json_decref(p1);
    json_t *none = recent_executions_json(r, "p3", 10);
    assert_int_equal(json_array_size(json_object_get(none, "executions")), 0);
    json_decref(none);
    json_t *two = recent_executions_json(r, "p2", 2);
    json_t *e0 = json_array_get(json_object_get(two, "executions"), 0);
    assert_int_equal(json_array_size(json_object_get(two, "executions")), 2);
    assert_true(json_is_null(json_object_get(e0, "exit_code")) ||
                json_is_integer(json_object_get(e0, "exit_code")));
    json_decref(two);
    recent_executions_destroy(r);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_calls_newest_first_and_the_ring_keeps_the_newest),
        cmocka_unit_test(test_samples_are_due_every_interval_and_listed_oldest_first),
        cmocka_unit_test(test_executions_per_project_newest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
