/* cluster/: YAML, kubeconfig and in-cluster configuration, Status errors, replies, readiness. */
#include "helpers.h"

#include <errno.h>
#include <sys/stat.h>

#include "cluster/kube_internal.h"

static json_t *yaml(const char *text, hks_error *err)
{
    return kube_yaml_parse(text, strlen(text), err);
}

static void test_yaml_types_and_refusals(void **state)
{
    (void)state;
    hks_error err = {0};
    json_t *j = yaml("a: 1\nb: true\nc: ~\nd: \"1\"\ne: [x, 'y']\nf: {g: -7}\nh:\ni: 1.5\n", &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    assert_true(json_is_true(json_object_get(j, "b")));
    assert_true(json_is_null(json_object_get(j, "c")));
    assert_string_equal(json_string_value(json_object_get(j, "d")), "1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "e"), 1)), "y");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "f"), "g")), -7);
    assert_true(json_is_null(json_object_get(j, "h")));
    assert_string_equal(json_string_value(json_object_get(j, "i")), "1.5");
    json_decref(j);

    static const struct {
        const char *text, *why;
    } bad[] = {
        {"a: &x [1]\nb: *x\n", "aliases are not supported"},
        {"a: 1\na: 2\n", "line 2: duplicate mapping key"},
        {"a: 1\n---\nb: 2\n", "more than one document"},
        {"? [a]\n: 1\n", "a mapping key must be a scalar"},
        {"a: [1\n", "line"},
        {"", "an empty document"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof(err));
        assert_null(yaml(bad[i].text, &err));
        assert_non_null(strstr(err.msg, bad[i].why));
        assert_int_equal(err.errnum, EINVAL);
    }
    char deep[400];
    memset(deep, '[', 70);
    deep[70] = '\0';
    assert_null(yaml(deep, &err));
}

static const char kubeconfig[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: dev-cluster\n"
    "  cluster:\n"
    "    server: https://10.0.0.1:6443/\n"
    "    certificate-authority-data: aGVsbG8gY2E=\n"
    "- name: other\n"
    "  cluster:\n"
    "    server: https://other:443\n"
    "    certificate-authority: certs/ca.pem\n"
    "    insecure-skip-tls-verify: true\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}\n"
    "- name: ops\n"
    "  context: {cluster: other, user: ops-user}\n"
    "users:\n"
    "- name: dev-user\n"
    "  user:\n"
    "    client-certificate-data: Y2VydA==\n"
    "    client-key-data: a2V5\n"
    "- name: ops-user\n"
    "  user:\n"
    "    tokenFile: tokens/ops\n";

static void test_kubeconfig_contexts(void **state)
{
    (void)state;
    hks_error err = {0};
    kube_conn conn;
    assert_int_equal(kube_config_parse_kubeconfig(kubeconfig, strlen(kubeconfig), "/home/u/.kube",
                                                  NULL, &conn, &err),
                     0);
    assert_string_equal(conn.server, "https://10.0.0.1:6443");
    assert_string_equal(conn.ns, "team-a");
    assert_int_equal(conn.ca_len, 8);
    assert_memory_equal(conn.ca_pem, "hello ca", 8);
    assert_string_equal(conn.cert_pem, "cert");
    assert_string_equal(conn.key_pem, "key");
    assert_false(conn.insecure);
    assert_null(conn.token);
    kube_conn_free(&conn);

    assert_int_equal(kube_config_parse_kubeconfig(kubeconfig, strlen(kubeconfig), "/home/u/.kube",
                                                  "ops", &conn, &err),
                     0);
    assert_string_equal(conn.server, "https://other:443");
    assert_string_equal(conn.ns, "default");
    assert_string_equal(conn.ca_file, "/home/u/.kube/certs/ca.pem");
    assert_string_equal(conn.token_file, "/home/u/.kube/tokens/ops");
    assert_true(conn.insecure);
    kube_conn_free(&conn);

    const char json_cfg[] = "{\"current-context\":\"c\",\"contexts\":[{\"name\":\"c\",\"context\":"
                            "{\"cluster\":\"k\",\"user\":\"u\"}}],\"clusters\":[{\"name\":\"k\","
                            "\"cluster\":{\"server\":\"http://127.0.0.1:8001\"}}],\"users\":[{"
                            "\"name\":\"u\",\"user\":{\"token\":\"abc\"}}]}";
    assert_int_equal(
        kube_config_parse_kubeconfig(json_cfg, strlen(json_cfg), "/x", NULL, &conn, &err), 0);
    assert_string_equal(conn.token, "abc");
    assert_string_equal(conn.server, "http://127.0.0.1:8001");
    kube_conn_free(&conn);
}

static void expect_kubeconfig_error(const char *text, const char *why)
{
    hks_error err = {0};
    kube_conn conn;
    assert_int_equal(kube_config_parse_kubeconfig(text, strlen(text), "/x", NULL, &conn, &err), -1);
    if (!strstr(err.msg, why))
        fail_msg("expected \"%s\" in \"%s\"", why, err.msg);
    assert_null(conn.token);
    assert_null(conn.ca_pem);
}

static void test_kubeconfig_errors(void **state)
{
    (void)state;
    static const char head[] = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, "
                               "user: u}\nclusters:\n- name: k\n  cluster:\n";
    char text[1024];
    expect_kubeconfig_error("contexts: []\n", "no current-context");
    expect_kubeconfig_error("current-context: x\ncontexts: []\n", "no contexts named \"x\"");
    snprintf(text, sizeof(text), "%s    server: ftp://k\n", head);
    expect_kubeconfig_error(text, "is not an http(s) URL");
    snprintf(text, sizeof(text), "%s    server: https://k\n    certificate-authority-data: '@@'\n",
             head);
    expect_kubeconfig_error(text, "\"certificate-authority-data\" is not base64");
    snprintf(text, sizeof(text),
             "%s    server: https://k\nusers:\n- name: u\n  user: {client-certificate: c.pem}\n",
             head);
    expect_kubeconfig_error(text, "a client certificate needs its key");
    snprintf(text, sizeof(text),
             "%s    server: https://k\nusers:\n- name: u\n  user: {username: a, password: b}\n",
             head);
    expect_kubeconfig_error(text, "\"username\" is not supported");
    snprintf(text, sizeof(text), "%s    server: https://k\n    insecure-skip-tls-verify: yes\n",
             head);
    expect_kubeconfig_error(text, "insecure-skip-tls-verify is not true or false");
    snprintf(text, sizeof(text), "%s    server: https://k\n- name: k\n  cluster: {server: x}\n",
             head);
    expect_kubeconfig_error(text, "two clusters named \"k\"");
    expect_kubeconfig_error("[1, 2]\n", "not a mapping");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_in_cluster(void **state)
{
    (void)state;
    char dir[] = "/tmp/hks-kube-sa-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/namespace", dir);
    hks_error err = {0};
    write_text(path, "proj-q\n");
    kube_conn conn;
    assert_int_equal(kube_config_in_cluster("10.96.0.1", "443", dir, &conn, &err), 0);
    assert_string_equal(conn.server, "https://10.96.0.1:443");
    assert_string_equal(conn.ns, "proj-q");
    char expect[300];
    snprintf(expect, sizeof(expect), "%s/token", dir);
    assert_string_equal(conn.token_file, expect);
    snprintf(expect, sizeof(expect), "%s/ca.crt", dir);
    assert_string_equal(conn.ca_file, expect);
    kube_conn_free(&conn);
    assert_int_equal(kube_config_in_cluster("fd00::1", "6443", dir, &conn, &err), 0);
    assert_string_equal(conn.server, "https://[fd00::1]:6443");
    kube_conn_free(&conn);

    assert_int_equal(kube_config_in_cluster(NULL, "443", dir, &conn, &err), -1);
    assert_int_equal(err.errnum, ENOENT);
    assert_non_null(strstr(err.msg, "not in a cluster"));
    assert_int_equal(kube_config_in_cluster("h", "99999", dir, &conn, &err), -1);
    write_text(path, "Not_A_Label");
    assert_int_equal(kube_config_in_cluster("h", "443", dir, &conn, &err), -1);
    assert_non_null(strstr(err.msg, "not a DNS label"));
    unlink(path);
    assert_int_equal(kube_config_in_cluster("h", "443", dir, &conn, &err), -1);
    rmdir(dir);
}

static void test_status_errors(void **state)
{
    (void)state;
    const char exists[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                          "\"message\":\"services \\\"fn-1\\\" already exists\",\"reason\":"
                          "\"AlreadyExists\",\"code\":409}";
    const char conflict[] = "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"message\":\"the "
                            "object has been modified\",\"code\":409}";
    char out[300];
    kube_status_summary(409, exists, strlen(exists), out, sizeof(out));
    assert_string_equal(out, "HTTP 409 AlreadyExists: services \"fn-1\" already exists");
    assert_int_equal(kube_status_errno(409, exists, strlen(exists)), EEXIST);
    assert_int_equal(kube_status_errno(409, conflict, strlen(conflict)), EBUSY);
    assert_int_equal(kube_status_errno(404, "", 0), ENOENT);
    assert_int_equal(kube_status_errno(410, "x", 1), ESTALE);
    assert_int_equal(kube_status_errno(503, "x", 1), EIO);
    kube_status_summary(502, "<html>\n\tbad gateway", 19, out, sizeof(out));
    assert_string_equal(out, "HTTP 502 <html>  bad gateway");
    kube_status_summary(500, NULL, 0, out, sizeof(out));
    assert_string_equal(out, "HTTP 500");
    const char evil[] = "{\"kind\":\"Status\",\"reason\":\"X\\u0007\",\"message\":\"a\\nb\"}";
    kube_status_summary(400, evil, strlen(evil), out, sizeof(out));
    assert_string_equal(out, "HTTP 400 X : a b");
}

static void test_replies(void **state)
{
    (void)state;
    hks_error err = {0};
    char rv[72];
    const char list[] = "{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"42\"},"
                        "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}";
    json_t *items = kube_parse_list(list, strlen(list), rv, sizeof(rv), &err);
    assert_non_null(items);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(rv, "42");
    json_decref(items);
    const char null_items[] = "{\"kind\":\"PodList\",\"items\":null}";
    items = kube_parse_list(null_items, strlen(null_items), rv, sizeof(rv), &err);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    const char *bad_lists[] = {"[]", "{\"kind\":\"Pod\"}", "{\"items\":[1]}",
                               "{\"metadata\":{\"resourceVersion\":\"1&x=2\"}}", "{"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad_lists); i++) {
        assert_null(kube_parse_list(bad_lists[i], strlen(bad_lists[i]), rv, sizeof(rv), &err));
        assert_int_equal(err.errnum, EIO);
    }

    char type[16];
    json_t *obj = NULL;
    const char added[] =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}";
    assert_int_equal(kube_parse_watch_event(added, strlen(added), type, &obj, rv, sizeof(rv), &err),
                     0);
    assert_string_equal(type, "ADDED");
    assert_string_equal(rv, "7");
    json_decref(obj);
    const char gone[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                        "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}";
    assert_int_equal(kube_parse_watch_event(gone, strlen(gone), type, &obj, rv, sizeof(rv), &err),
                     -1);
    assert_int_equal(err.errnum, ESTALE);
    assert_string_equal(err.msg, "watch: HTTP 410 Expired: too old resource version");
    assert_null(obj);
    const char *bad_events[] = {"{\"type\":\"ADDED\"}", "{\"type\":\"NOPE\",\"object\":{}}",
                                "{\"type\":1,\"object\":{}}", "null", "{\"type\":\"ADDED\""};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad_events); i++)
        assert_int_equal(kube_parse_watch_event(bad_events[i], strlen(bad_events[i]), type, &obj,
                                                rv, sizeof(rv), &err),
                         -1);
}

static kube_readiness readiness_of(const char *text, char *url, char *why)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    kube_readiness r = kube_kservice_readiness(j, url, 256, why, 256);
    json_decref(j);
    return r;
}

static void test_readiness(void **state)
{
    (void)state;
    char url[256], why[256];
    assert_int_equal(readiness_of("{\"metadata\":{\"generation\":2},\"status\":{"
                                  "\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\","
                                  "\"status\":\"True\"}],\"address\":{\"url\":\"http://f.p.svc."
                                  "cluster.local\"}}}",
                                  url, why),
                     KUBE_READY);
    assert_string_equal(url, "http://f.p.svc.cluster.local");
    /* an old generation's Ready=True is not the new revision's */
    assert_int_equal(readiness_of("{\"metadata\":{\"generation\":3},\"status\":{"
                                  "\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\","
                                  "\"status\":\"True\"}],\"address\":{\"url\":\"http://f\"}}}",
                                  url, why),
                     KUBE_NOT_READY);
    assert_string_equal(url, "");
    assert_int_equal(readiness_of("{\"metadata\":{\"generation\":1},\"status\":{"
                                  "\"observedGeneration\":1,\"conditions\":[{\"type\":\"Ready\","
                                  "\"status\":\"False\",\"reason\":\"RevisionFailed\",\"message\":"
                                  "\"image pull\"}]}}",
                                  url, why),
                     KUBE_FAILED);
    assert_string_equal(why, "Ready=False RevisionFailed: image pull");
    assert_int_equal(readiness_of("{\"metadata\":{\"generation\":1},\"status\":{"
                                  "\"observedGeneration\":1,\"conditions\":[{\"type\":\"Ready\","
                                  "\"status\":\"True\"}]}}",
                                  url, why),
                     KUBE_NOT_READY);
    assert_int_equal(readiness_of("{\"status\":\"x\"}", url, why), KUBE_NOT_READY);
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(kube_kind_parse("ksvc"), KUBE_KSERVICE);
    assert_int_equal(kube_kind_parse("serviceaccounts"), KUBE_SERVICE_ACCOUNT);
    assert_int_equal(kube_kind_parse("CronJob"), KUBE_CRON_JOB);
    assert_int_equal(kube_kind_parse("deployment"), -1);
    assert_string_equal(kube_kind_get(KUBE_NETWORK_POLICY)->prefix, "/apis/networking.k8s.io/v1");
    assert_true(kube_dns_label("fn-0a"));
    assert_false(kube_dns_label("-a"));
    assert_false(kube_dns_label("A"));
    assert_false(kube_dns_label(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_types_and_refusals),
        cmocka_unit_test(test_kubeconfig_contexts),
        cmocka_unit_test(test_kubeconfig_errors),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_status_errors),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_readiness),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
