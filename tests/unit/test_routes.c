/* The route table: templated paths match exactly what they should, {id} is one bounded
 * segment, /fn/{id} without a trailing slash is the function's root, and the method decides
 * between 404 and 405. Also the verified-token cache: a hit is the exact token, checked against
 * the clock again. */
#include "tests/unit/helpers.h"

#include "api/internal.h"

static const route *find(const char *method, const char *path, bool *known, char *id)
{
    memset(id, 0, 64); /* api_find_route writes up to 64 bytes */
    return api_find_route(method, path, known, id);
}

static void test_exact_routes(void **state)
{
    (void)state;
    bool known;
    char id[64];
    const route *r = find("POST", "/internal/v1/operations/deploy-function", &known, id);
    assert_non_null(r);
    assert_string_equal(r->name, "deploy-function");
    assert_null(find("GET", "/internal/v1/operations/deploy-function", &known, id));
    assert_true(known); /* 405, not 404 */
    assert_null(find("POST", "/internal/v1/operations/deploy-function/", &known, id));
    assert_false(known);
    assert_null(find("GET", "/internal/v1/functionsX", &known, id));
    assert_false(known);
}

static void test_function_id_routes(void **state)
{
    (void)state;
    bool known;
    char id[64];
    const route *r = find("GET", "/internal/v1/functions/fn-0123456789abcdef0123", &known, id);
    assert_non_null(r);
    assert_string_equal(r->name, "function");
    assert_string_equal(id, "fn-0123456789abcdef0123");
    r = find("GET", "/internal/v1/functions/fn-0123456789abcdef0123/logs", &known, id);
    assert_non_null(r);
    assert_string_equal(r->name, "function-logs");
    assert_string_equal(id, "fn-0123456789abcdef0123");
    /* an empty segment, an extra segment, an id too long for any function */
    assert_null(find("GET", "/internal/v1/functions//logs", &known, id));
    assert_null(find("GET", "/internal/v1/functions/x/logs/more", &known, id));
    assert_null(find("GET",
                     "/internal/v1/functions/"
                     "0123456789012345678901234567890123456789012345678901234567890123",
                     &known, id));
    assert_false(known);
    assert_null(find("DELETE", "/internal/v1/functions/fn-1", &known, id));
    assert_true(known);
}

static void test_function_url_routes(void **state)
{
    (void)state;
    bool known;
    char id[64];
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const route *r = find(methods[i], "/fn/fn-abc/a/b/c", &known, id);
        assert_non_null(r);
        assert_int_equal(r->kind, ROUTE_INVOKE);
        assert_string_equal(r->scope, "functions:invoke");
        assert_string_equal(id, "fn-abc");
    }
    assert_non_null(find("GET", "/fn/fn-abc", &known, id)); /* the function's root */
    assert_string_equal(id, "fn-abc");
    assert_non_null(find("GET", "/fn/fn-abc/", &known, id));
    assert_null(find("GET", "/fn/", &known, id));
    assert_null(find("GET", "/fn", &known, id));
    assert_null(find("TRACE", "/fn/fn-abc/", &known, id));
    assert_true(known);
}

static void test_dashboard_routes_need_no_token(void **state)
{
    (void)state;
    bool known;
    char id[64];
    const route *index = find("GET", "/ui/", &known, id);
    assert_non_null(index);
    assert_null(index->scope);
    const route *asset = find("GET", "/ui/assets/app-1.js", &known, id);
    assert_ptr_equal(asset, index);
    const route *bare = find("GET", "/ui", &known, id);
    assert_non_null(bare);
    assert_ptr_not_equal(bare, index);
    assert_null(bare->scope);
    assert_null(find("POST", "/ui/index.html", &known, id));
    assert_true(known);
    assert_null(find("GET", "/uix", &known, id));
    assert_false(known);
}

static void test_every_route_is_listed(void **state)
{
    (void)state;
    size_t n = 0;
    bool fn_seen = false;
    for (const char *const *r = api_routes(); *r; r++, n++)
        fn_seen = fn_seen || strcmp(*r, "PATCH /fn/{id}/{path}") == 0;
    assert_true(fn_seen);
    assert_int_equal(n, 30);
}

static void test_token_cache(void **state)
{
    (void)state;
    token_cache c;
    api_token_cache_init(&c);
    hks_jwt_claims claims = {.exp = 1000, .nbf = 100, .iat = 100};
    snprintf(claims.sub, sizeof(claims.sub), "agent");
    hks_jwt_claims out;
    assert_false(api_token_cache_get(&c, "a.b.c", 5, 500, 30, &out));
    api_token_cache_put(&c, "a.b.c", 5, &claims);
    assert_true(api_token_cache_get(&c, "a.b.c", 5, 500, 30, &out));
    assert_string_equal(out.sub, "agent");
    /* a prefix, a longer token, the same length with one byte changed: misses */
    assert_false(api_token_cache_get(&c, "a.b.c", 4, 500, 30, &out));
    assert_false(api_token_cache_get(&c, "a.b.cd", 6, 500, 30, &out));
    assert_false(api_token_cache_get(&c, "a.b.d", 5, 500, 30, &out));
    /* expired (past the leeway) and not yet valid: misses, as verification would fail */
    assert_true(api_token_cache_get(&c, "a.b.c", 5, 1029, 30, &out));
    assert_false(api_token_cache_get(&c, "a.b.c", 5, 1030, 30, &out));
    assert_false(api_token_cache_get(&c, "a.b.c", 5, 69, 30, &out));
    /* new keys: nothing cached any more */
    api_token_cache_clear(&c);
    assert_false(api_token_cache_get(&c, "a.b.c", 5, 500, 30, &out));
    api_token_cache_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_routes),
        cmocka_unit_test(test_function_id_routes),
        cmocka_unit_test(test_function_url_routes),
        cmocka_unit_test(test_every_route_is_listed),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_dashboard_routes_need_no_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
