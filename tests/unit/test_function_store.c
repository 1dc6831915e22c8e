/* Function records on disk: ids, atomic writes, read-back, interrupted writes, quarantine of
 * records that cannot be read back, and ids that try to name other files. */
#include "tests/unit/helpers.h"

#include "daemon/function_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static char state_dir[PATH_MAX];

static int make_state_dir(void **state)
{
    (void)state;
    snprintf(state_dir, sizeof(state_dir), "/tmp/hks-test-store-XXXXXX");
    return mkdtemp(state_dir) ? 0 : -1;
}

static int remove_state_dir(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof(command), "rm -rf '%s'", state_dir);
    return system(command) == 0 ? 0 : -1;
}

/* a fresh, empty store per test */
static void open_store(hksd_function_store *store)
{
    char command[PATH_MAX + 32];
    snprintf(command, sizeof(command), "rm -rf '%s/functions'", state_dir);
    assert_int_equal(system(command), 0);
    hks_error err = {0};
    assert_int_equal(hksd_function_store_open(store, state_dir, &err), 0);
}

static json_t *new_record(const char *id, const char *project, long long expires_at)
{
    json_t *record =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:{s:I}}", "id", id, "project", project, "runtime",
                  "python", "created_at", (json_int_t)1700000000, "expires_at",
                  (json_int_t)expires_at, "limits", "memory_mb", (json_int_t)256);
    assert_non_null(record);
    return record;
}

static void write_raw(const char *name, const char *text)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/functions/%s", state_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static bool exists(const char *name)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/functions/%s", state_dir, name);
    struct stat st;
    return lstat(path, &st) == 0;
}

static void ids_are_random_and_valid(void **state)
{
    (void)state;
    char a[HKSD_FUNCTION_ID_LEN + 1], b[HKSD_FUNCTION_ID_LEN + 1];
    hks_error err = {0};
    assert_int_equal(hksd_function_id_new(a, &err), 0);
    assert_int_equal(hksd_function_id_new(b, &err), 0);
    assert_int_equal(strlen(a), HKSD_FUNCTION_ID_LEN);
    assert_true(hksd_function_id_valid(a));
    assert_true(hksd_function_id_valid(b));
    assert_string_not_equal(a, b);

    const char *invalid[] = {NULL,
                             "",
                             "fn-",
                             "fn-0123456789abcdef012",   /* one short */
                             "fn-0123456789abcdef01234", /* one long */
                             "fn-0123456789ABCDEF0123",  /* upper case */
                             "fx-0123456789abcdef0123",
                             "fn-../../../../etc/passw",
                             "fn-0123456789abcdef012/",
                             "fn-0123456789abcdef012\n"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(invalid); i++)
        assert_false(hksd_function_id_valid(invalid[i]));
}

static void a_record_round_trips_and_is_replaced_whole(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/functions", state_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    const char *id = "fn-0123456789abcdef0123";
    json_auto_t *record = new_record(id, "alpha", 1800000000);
    hks_error err = {0};
    assert_int_equal(hksd_function_store_put(&store, record, &err), 0);
    assert_true(exists("fn-0123456789abcdef0123.json"));
    assert_false(exists("fn-0123456789abcdef0123.json.tmp"));

    json_auto_t *back = hksd_function_store_get(&store, id, &err);
    assert_non_null(back);
    assert_true(json_equal(record, back));

    json_object_set_new(record, "status", json_string("deleting"));
    assert_int_equal(hksd_function_store_put(&store, record, &err), 0);
    json_auto_t *again = hksd_function_store_get(&store, id, &err);
    assert_non_null(again);
    assert_string_equal(json_string_value(json_object_get(again, "status")), "deleting");

    assert_int_equal(hksd_function_store_remove(&store, id, &err), 0);
    assert_null(hksd_function_store_get(&store, id, &err));
    assert_int_equal(err.errnum, ENOENT);
    assert_int_equal(hksd_function_store_remove(&store, id, &err), -1);
    assert_int_equal(err.errnum, ENOENT);
}

static void records_missing_what_reconcile_needs_are_refused(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    const char *id = "fn-aaaaaaaaaaaaaaaaaaaa";
    struct {
        const char *key;
        json_t *value; /* NULL: removed */
    } spoil[] = {
        {"id", NULL},
        {"id", json_string("../../etc/passwd")},
        {"project", NULL},
        {"project", json_string("")},
        {"project", json_integer(7)},
        {"runtime", NULL},
        {"expires_at", NULL},
        {"expires_at", json_string("tomorrow")},
        {"expires_at", json_integer(0)},
        {"created_at", json_real(1.5)},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(spoil); i++) {
        json_auto_t *record = new_record(id, "alpha", 1800000000);
        if (spoil[i].value)
            json_object_set_new(record, spoil[i].key, spoil[i].value);
        else
            json_object_del(record, spoil[i].key);
        hks_error err = {0};
        assert_int_equal(hksd_function_store_put(&store, record, &err), -1);
        assert_int_equal(err.errnum, EINVAL);
        assert_non_null(strstr(err.msg, "function record"));
    }
    json_auto_t *array = json_array();
    hks_error err = {0};
    assert_int_equal(hksd_function_store_put(&store, array, &err), -1);
    size_t quarantined = 99;
    json_auto_t *all = hksd_function_store_list(&store, &quarantined, &err);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 0);
    assert_int_equal(quarantined, 0);
}

static void ids_that_name_other_files_are_refused(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    const char *bad[] = {"../keys/signing", "fn-0123456789abcdef012/", "/etc/passwd", ""};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        hks_error err = {0};
        assert_null(hksd_function_store_get(&store, bad[i], &err));
        assert_int_equal(err.errnum, EINVAL);
        assert_int_equal(hksd_function_store_remove(&store, bad[i], &err), -1);
        assert_int_equal(err.errnum, EINVAL);
    }
    /* a symlink where a record should be is not followed */
    char link[2 * PATH_MAX];
    snprintf(link, sizeof(link), "%s/functions/fn-bbbbbbbbbbbbbbbbbbbb.json", state_dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    hks_error err = {0};
    assert_null(hksd_function_store_get(&store, "fn-bbbbbbbbbbbbbbbbbbbb", &err));
    assert_int_equal(err.errnum, ELOOP);
}

static void open_removes_interrupted_writes(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    hks_error err = {0};
    json_auto_t *record = new_record("fn-cccccccccccccccccccc", "alpha", 1800000000);
    assert_int_equal(hksd_function_store_put(&store, record, &err), 0);
    /* a crash between the temporary file's creation and the rename */
    write_raw("fn-cccccccccccccccccccc.json.tmp", "{\"id\": \"fn-cccc");
    write_raw("fn-dddddddddddddddddddd.json.tmp", "");
    write_raw("README", "not a record\n");

    assert_int_equal(hksd_function_store_open(&store, state_dir, &err), 0);
    assert_false(exists("fn-cccccccccccccccccccc.json.tmp"));
    assert_false(exists("fn-dddddddddddddddddddd.json.tmp"));
    assert_true(exists("README"));
    json_auto_t *back = hksd_function_store_get(&store, "fn-cccccccccccccccccccc", &err);
    assert_non_null(back);
    assert_true(json_equal(record, back));

    /* a stale temporary file does not stop the next write */
    write_raw("fn-cccccccccccccccccccc.json.tmp", "stale");
    assert_int_equal(hksd_function_store_put(&store, record, &err), 0);
    assert_false(exists("fn-cccccccccccccccccccc.json.tmp"));
}

static void list_returns_valid_records_and_quarantines_the_rest(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    hks_error err = {0};
    const char *ids[] = {"fn-30000000000000000000", "fn-10000000000000000000",
                         "fn-20000000000000000000"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(ids); i++) {
        json_auto_t *record = new_record(ids[i], i == 1 ? "beta" : "alpha", 1800000000 + (int)i);
        assert_int_equal(hksd_function_store_put(&store, record, &err), 0);
    }
    /* torn, duplicated keys, wrong id, missing field */
    write_raw("fn-e0000000000000000000.json", "{\"id\": \"fn-e000");
    write_raw("fn-e1000000000000000000.json",
              "{\"id\":\"fn-e1000000000000000000\",\"project\":\"a\",\"project\":\"b\","
              "\"runtime\":\"python\",\"created_at\":1,\"expires_at\":2}");
    write_raw("fn-e2000000000000000000.json",
              "{\"id\":\"fn-10000000000000000000\",\"project\":\"a\","
              "\"runtime\":\"python\",\"created_at\":1,\"expires_at\":2}");
    write_raw("fn-e3000000000000000000.json", "{\"id\":\"fn-e3000000000000000000\"}");
    /* not records: left alone */
    write_raw("notes.json", "{}");
    write_raw("fn-e4000000000000000000.json.corrupt", "old");

    size_t quarantined = 0;
    json_auto_t *all = hksd_function_store_list(&store, &quarantined, &err);
    assert_non_null(all);
    assert_int_equal(quarantined, 4);
    assert_int_equal(json_array_size(all), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "id")), ids[1]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 1), "id")), ids[2]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 2), "id")), ids[0]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "project")),
                        "beta");
    for (const char *c = "0123"; *c; c++) {
        char name[64];
        snprintf(name, sizeof(name), "fn-e%c000000000000000000.json", *c);
        assert_false(exists(name));
        snprintf(name, sizeof(name), "fn-e%c000000000000000000.json.corrupt", *c);
        assert_true(exists(name));
    }
    assert_true(exists("notes.json"));

    /* a second pass finds only the good ones */
    json_auto_t *again = hksd_function_store_list(&store, &quarantined, &err);
    assert_non_null(again);
    assert_int_equal(quarantined, 0);
    assert_true(json_equal(all, again));
}

static void oversized_records_are_refused(void **state)
{
    (void)state;
    hksd_function_store store;
    open_store(&store);
    json_auto_t *record = new_record("fn-ffffffffffffffffffff", "alpha", 1800000000);
    static char big[HKSD_FUNCTION_RECORD_MAX + 1];
    memset(big, 'x', HKSD_FUNCTION_RECORD_MAX);
    big[HKSD_FUNCTION_RECORD_MAX] = '\0';
    json_object_set_new(record, "env", json_pack("{s:s}", "BIG", big));
    hks_error err = {0};
    assert_int_equal(hksd_function_store_put(&store, record, &err), -1);
    assert_int_equal(err.errnum, EFBIG);
    assert_false(exists("fn-ffffffffffffffffffff.json"));
    assert_false(exists("fn-ffffffffffffffffffff.json.tmp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_random_and_valid),
        cmocka_unit_test(a_record_round_trips_and_is_replaced_whole),
        cmocka_unit_test(records_missing_what_reconcile_needs_are_refused),
        cmocka_unit_test(ids_that_name_other_files_are_refused),
        cmocka_unit_test(open_removes_interrupted_writes),
        cmocka_unit_test(list_returns_valid_records_and_quarantines_the_rest),
        cmocka_unit_test(oversized_records_are_refused),
    };
    return cmocka_run_group_tests(tests, make_state_dir, remove_state_dir);
}
