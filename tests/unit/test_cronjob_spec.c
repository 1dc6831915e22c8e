#include "tests/unit/helpers.h"

#include "daemon/cronjobs.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s", jerr.text);
    return j;
}

static void refused(const char *body, const char *base, const char *field, const char *message)
{
    json_t *in = load(body), *b = base ? load(base) : NULL;
    cj_spec spec;
    char got_field[64];
    hks_error err = {0};
    if (cj_spec_parse(in, b, 300, &spec, got_field, &err) == 0)
        fail_msg("accepted: %s", body);
    assert_string_equal(got_field, field);
    if (!strstr(err.msg, message))
        fail_msg("'%s' does not say '%s'", err.msg, message);
    json_decref(in);
    json_decref(b);
}

#define FN  "\"fn-0123456789abcdef0123\""
#define MIN "{\"name\":\"job\",\"schedule\":\"@hourly\",\"target\":{\"function\":{\"id\":" FN "}}}"

static void defaults_are_filled_in(void **state)
{
    (void)state;
    json_t *in = load("{\"name\":\"job\",\"schedule\":\"0  0 1 jan  *\",\"target\":{\"task\":{"
                      "\"template\":" FN ",\"command\":[\"sh\",\"-c\",\"true\"]}}}");
    cj_spec spec;
    char field[64];
    hks_error err = {0};
    assert_int_equal(cj_spec_parse(in, NULL, 120, &spec, field, &err), 0);
    assert_string_equal(spec.schedule.text, "0 0 1 jan *");
    assert_string_equal(json_string_value(json_object_get(spec.json, "schedule")), "0 0 1 jan *");
    assert_int_equal(spec.policy, CJ_ALLOW);
    assert_int_equal(spec.deadline_s, -1);
    assert_true(json_is_null(json_object_get(spec.json, "starting_deadline_seconds")));
    assert_int_equal(spec.keep_succeeded, 3);
    assert_int_equal(spec.keep_failed, 1);
    assert_true(spec.is_task);
    assert_string_equal(spec.target_function, "fn-0123456789abcdef0123");
    json_t *task = json_object_get(json_object_get(spec.json, "target"), "task");
    /* the default timeout is capped by the policy's maximum */
    assert_int_equal(json_integer_value(json_object_get(task, "timeout_seconds")), 120);
    assert_int_equal(json_array_size(json_object_get(task, "args")), 0);
    /* the caller's object is not changed */
    assert_null(json_object_get(in, "timezone"));
    cj_spec_release(&spec);
    json_decref(in);
}

static void an_update_merges_over_the_definition(void **state)
{
    (void)state;
    json_t *base = load(MIN), *change = load("{\"suspend\":true,\"concurrency_policy\":\"Replace\","
                                             "\"starting_deadline_seconds\":30}");
    cj_spec first, second;
    char field[64];
    hks_error err = {0};
    assert_int_equal(cj_spec_parse(base, NULL, 300, &first, field, &err), 0);
    assert_int_equal(cj_spec_parse(change, first.json, 300, &second, field, &err), 0);
    assert_true(second.suspend);
    assert_int_equal(second.policy, CJ_REPLACE);
    assert_int_equal(second.deadline_s, 30);
    assert_string_equal(second.schedule.text, "@hourly");
    assert_false(first.suspend); /* the base is not changed */
    /* null takes the deadline away again */
    json_t *clear = load("{\"starting_deadline_seconds\":null}");
    cj_spec third;
    assert_int_equal(cj_spec_parse(clear, second.json, 300, &third, field, &err), 0);
    assert_int_equal(third.deadline_s, -1);
    cj_spec_release(&first);
    cj_spec_release(&second);
    cj_spec_release(&third);
    json_decref(base);
    json_decref(change);
    json_decref(clear);
}

static void bad_definitions_name_their_field(void **state)
{
    (void)state;
    refused("{\"schedule\":\"@hourly\"}", NULL, "name", "is required");
    refused("{\"name\":\"job\",\"schedule\":\"0 24 * * *\",\"target\":{}}", NULL, "schedule",
            "hour: 24 is above the maximum 23");
    refused("{\"name\":\"job\",\"schedule\":\"@hourly\",\"\":1}", NULL, "\"\"", "unknown field");
    refused("{\"name\":\"job\",\"schedule\":\"@hourly\",\"timezone\":\"../../etc/passwd\","
            "\"target\":{}}",
            NULL, "timezone", "timezone");
    refused("{\"name\":\"renamed\"}", MIN, "name", "cannot be changed");
    refused("{\"schedule\":\"@every 1h\"}", MIN, "schedule", "@every");
    refused("{\"target\":{\"task\":{\"template\":" FN ",\"command\":[\"x\"],\"env\":{\"A\":1}}}}",
            MIN, "target.task.env.A", "must be a string");
    refused("{\"target\":{\"function\":{\"id\":" FN ",\"headers\":{\"Proxy-Authorization\":\"x\"}}}"
            "}",
            MIN, "target.function.headers.Proxy-Authorization", "set by hksd");
    refused("[]", NULL, "body", "JSON object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_filled_in),
        cmocka_unit_test(an_update_merges_over_the_definition),
        cmocka_unit_test(bad_definitions_name_their_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
