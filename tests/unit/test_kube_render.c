/* cluster/render.c: the objects of a function, field by field, and policy files that weaken a
 * rule refused. */
#include "helpers.h"

#include <errno.h>
#include <sys/stat.h>

#include "cluster/kube_internal.h"

static const char *const env[] = {"GREETING=hi", "EMPTY=", "PRICE=$(HOME) $5", NULL};

static kube_function function(void)
{
    return (kube_function){
        .id = "fn-0123456789abcdef0123",
        .name = "hello",
        .project = "proj-a",
        .owner = "agent-7",
        .runtime = "node",
        .image = "reg.local:5000/fn/hello@sha256:"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .code_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
        .env = env,
        .memory_mb = 256,
        .cpu_millis = 500,
        .timeout_s = 30,
        .concurrency = 10,
        .min_scale = 1,
        .max_scale = 3,
        .expires_at = 1900000000,
    };
}

static kube_policy *load_shipped(void)
{
    char dir[PATH_MAX];
    test_path(dir, sizeof(dir), "policies/kubernetes");
    kube_policy *p = NULL;
    hks_error err = {0};
    if (kube_policy_load(dir, &p, &err) < 0)
        fail_msg("%s", err.msg);
    return p;
}

/* The value at a "/"-separated path ("spec/template/spec/containers/0/image"); "~1" in a part is a
 * "/" of the key (as in JSON pointers). */
static json_t *at(json_t *j, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *part = strtok_r(buf, "/", &save); part && j; part = strtok_r(NULL, "/", &save)) {
        for (char *t = strstr(part, "~1"); t; t = strstr(t, "~1")) {
            *t = '/';
            memmove(t + 1, t + 2, strlen(t + 2) + 1);
        }
        j = json_is_array(j) ? json_array_get(j, strtoul(part, NULL, 10))
                             : json_object_get(j, part);
    }
    if (!j)
        fail_msg("no %s", path);
    return j;
}

static void assert_json(json_t *j, const char *path, const char *expect_json)
{
    json_t *expect = json_loads(expect_json, JSON_DECODE_ANY, NULL);
    assert_non_null(expect);
    json_t *got = at(j, path);
    if (!json_equal(got, expect)) {
        char *dump = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("%s: got %s, expected %s", path, dump, expect_json);
    }
    json_decref(expect);
}

static void test_kservice(void **state)
{
    (void)state;
    kube_policy *p = load_shipped();
    kube_function fn = function();
    hks_error err = {0};
    json_t *k = kube_render_kservice(p, &fn, &err);
    assert_non_null(k);
    assert_json(k, "apiVersion", "\"serving.knative.dev/v1\"");
    assert_json(k, "kind", "\"Service\"");
    assert_json(k, "metadata/name", "\"fn-0123456789abcdef0123\"");
    assert_json(k, "metadata/namespace", "\"proj-a\"");
    assert_json(
        k, "metadata/labels",
        "{\"networking.knative.dev/visibility\": \"cluster-local\","
        " \"app.kubernetes.io/managed-by\": \"hksd\","
        " \"hks.io/function\": \"fn-0123456789abcdef0123\", \"hks.io/project\": \"proj-a\"}");
    assert_json(k, "metadata/annotations",
                "{\"hks.io/expires-at\": \"2030-03-17T17:46:40Z\", \"hks.io/owner\": \"agent-7\","
                " \"hks.io/project\": \"proj-a\", \"hks.io/code-sha256\": "
                "\"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\","
                " \"hks.io/name\": \"hello\", \"hks.io/runtime\": \"node\"}");
    assert_json(k, "spec/template/metadata/annotations",
                "{\"autoscaling.knative.dev/min-scale\": \"1\","
                " \"autoscaling.knative.dev/max-scale\": \"3\"}");
    json_t *spec = at(k, "spec/template/spec");
    assert_json(spec, "serviceAccountName", "\"fn-0123456789abcdef0123\"");
    assert_json(spec, "automountServiceAccountToken", "false");
    assert_json(spec, "containerConcurrency", "10");
    assert_json(spec, "timeoutSeconds", "30");
    assert_json(spec, "volumes", "[{\"name\": \"tmp\", \"emptyDir\": {\"sizeLimit\": \"64Mi\"}}]");
    assert_int_equal(json_object_size(spec), 6); /* nothing Knative would refuse without a flag */
    json_t *c = at(spec, "containers/0");
    assert_json(c, "image",
                "\"reg.local:5000/fn/hello@sha256:"
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"");
    assert_json(c, "ports", "[{\"name\": \"http1\", \"containerPort\": 8080}]");
    assert_json(
        c, "env",
        "[{\"name\": \"GREETING\", \"value\": \"hi\"}, {\"name\": \"EMPTY\", \"value\": \"\"},"
        /* the kubelet would expand $(HOME): "$$" keeps the value as given */
        " {\"name\": \"PRICE\", \"value\": \"$$(HOME) $$5\"}]");
    assert_json(c, "resources",
                "{\"limits\": {\"memory\": \"256Mi\", \"cpu\": \"500m\"},"
                " \"requests\": {\"memory\": \"256Mi\", \"cpu\": \"500m\"}}");
    assert_json(c, "volumeMounts", "[{\"name\": \"tmp\", \"mountPath\": \"/tmp\"}]");
    assert_json(c, "securityContext",
                "{\"runAsNonRoot\": true, \"runAsUser\": 1000, \"runAsGroup\": 1000,"
                " \"allowPrivilegeEscalation\": false, \"privileged\": false,"
                " \"readOnlyRootFilesystem\": true, \"capabilities\": {\"drop\": [\"ALL\"]},"
                " \"seccompProfile\": {\"type\": \"Localhost\","
                " \"localhostProfile\": \"hks/function.json\"}}");
    json_decref(k);

    fn.profile = "strict";
    fn.max_scale = 0;
    fn.env = NULL;
    k = kube_render_kservice(p, &fn, &err);
    assert_json(k,
                "spec/template/spec/containers/0/securityContext/seccompProfile/localhostProfile",
                "\"hks/strict.json\"");
    assert_json(k, "spec/template/metadata/annotations/autoscaling.knative.dev~1max-scale",
                "\"0\"");
    assert_json(k, "spec/template/spec/containers/0/env", "[]");
    json_decref(k);
    kube_policy_free(p);
}

static void test_service_account_and_network_policy(void **state)
{
    (void)state;
    kube_policy *p = load_shipped();
    kube_function fn = function();
    hks_error err = {0};
    json_t *sa = kube_render_service_account(p, &fn, &err);
    assert_non_null(sa);
    assert_json(sa, "automountServiceAccountToken", "false");
    assert_json(
        sa, "metadata",
        "{\"name\": \"fn-0123456789abcdef0123\", \"namespace\": \"proj-a\","
        " \"labels\": {\"app.kubernetes.io/managed-by\": \"hksd\","
        " \"hks.io/function\": \"fn-0123456789abcdef0123\", \"hks.io/project\": \"proj-a\"}}");
    json_decref(sa);
    json_t *np = kube_render_network_policy(p, &fn, &err);
    assert_non_null(np);
    assert_json(
        np, "spec/podSelector",
        "{\"matchLabels\": {\"serving.knative.dev/service\": \"fn-0123456789abcdef0123\"}}");
    assert_json(np, "spec/policyTypes", "[\"Ingress\", \"Egress\"]");
    assert_json(np, "spec/egress", "[]");
    json_decref(np);
    json_t *ns = kube_render_namespace(p, "proj-b", false, &err);
    assert_json(ns, "metadata/name", "\"proj-b\"");
    assert_json(ns, "metadata/labels/pod-security.kubernetes.io~1enforce", "\"restricted\"");
    json_decref(ns);
    ns = kube_render_namespace(p, "hks-builds", true, &err);
    assert_json(ns, "metadata/labels/pod-security.kubernetes.io~1enforce", "\"baseline\"");
    json_decref(ns);
    assert_null(kube_render_namespace(p, "Bad", false, &err));
    /* a namespace apart from the project (kubernetes.namespace "hks-{project}"): the objects go
     * there, the project stays the label and the annotation */
    fn.ns = "hks-proj-a";
    json_t *moved[] = {kube_render_service_account(p, &fn, &err),
                       kube_render_network_policy(p, &fn, &err),
                       kube_render_kservice(p, &fn, &err)};
    for (size_t i = 0; i < HKS_ARRAY_LEN(moved); i++) {
        assert_non_null(moved[i]);
        assert_json(moved[i], "metadata/namespace", "\"hks-proj-a\"");
        assert_json(moved[i], "metadata/labels/hks.io~1project", "\"proj-a\"");
        json_decref(moved[i]);
    }
    fn.ns = "Not_A_Label";
    assert_null(kube_render_kservice(p, &fn, &err));
    assert_non_null(strstr(err.msg, "invalid ns"));
    kube_policy_free(p);
}

static void test_function_fields_checked(void **state)
{
    (void)state;
    kube_policy *p = load_shipped();
    static const char *const bad_env[] = {"K_SERVICE=x", NULL};
    static const char *const bad_env2[] = {"1A=x", NULL};
    struct {
        kube_function fn;
        const char *why;
    } cases[8];
    for (size_t i = 0; i < HKS_ARRAY_LEN(cases); i++)
        cases[i].fn = function();
    cases[0].fn.image = "reg.local/fn/hello:latest", cases[0].why = "image";
    cases[1].fn.timeout_s = 0, cases[1].why = "timeout_s";
    cases[2].fn.min_scale = 4, cases[2].why = "min_scale";
    cases[3].fn.env = bad_env, cases[3].why = "environment entry 0";
    cases[4].fn.env = bad_env2, cases[4].why = "environment entry 0";
    cases[5].fn.project = "Proj", cases[5].why = "project";
    cases[6].fn.profile = "../x", cases[6].why = "profile";
    cases[7].fn.concurrency = 1001, cases[7].why = "concurrency";
    for (size_t i = 0; i < HKS_ARRAY_LEN(cases); i++) {
        hks_error err = {0};
        assert_null(kube_render_kservice(p, &cases[i].fn, &err));
        if (!strstr(err.msg, cases[i].why))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, cases[i].why, err.msg);
        assert_int_equal(err.errnum, EINVAL);
    }
    kube_policy_free(p);
}

/* A copy of the shipped policies with one file's text replaced (old -> new). */
static void weakened(char *dir, const char *file, const char *old, const char *new, const char *why)
{
    char src[PATH_MAX], cmd[PATH_MAX * 3];
    test_path(src, sizeof(src), "policies/kubernetes");
    snprintf(dir, 64, "/tmp/hks-kube-policy-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "cp %s/*.yaml %s/ && sed -i 's|%s|%s|' %s/%s", src, dir, old, new,
             dir, file);
    assert_int_equal(system(cmd), 0);
    kube_policy *p = NULL;
    hks_error err = {0};
    assert_int_equal(kube_policy_load(dir, &p, &err), -1);
    assert_null(p);
    if (!strstr(err.msg, why))
        fail_msg("expected \"%s\" in \"%s\"", why, err.msg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_weakened_policies_refused(void **state)
{
    (void)state;
    char dir[64];
    weakened(dir, "function-serviceaccount.yaml", "Token: false", "Token: true",
             "automountServiceAccountToken must be false");
    weakened(dir, "function-networkpolicy.yaml", "    - Egress", "", "must include Egress");
    weakened(dir, "function-pod-security.yaml", "runAsNonRoot: true", "runAsNonRoot: false",
             "runAsNonRoot must be true");
    weakened(dir, "function-pod-security.yaml", "runAsUser: 1000", "runAsUser: 0",
             "runAsUser must be a non-zero uid");
    weakened(dir, "function-pod-security.yaml", "allowPrivilegeEscalation: false",
             "allowPrivilegeEscalation: true", "allowPrivilegeEscalation must be false");
    weakened(dir, "function-pod-security.yaml", "- ALL", "- NET_RAW",
             "capabilities.drop must include ALL");
    weakened(dir, "function-pod-security.yaml", "type: Localhost", "type: Unconfined",
             "seccompProfile.type must be Localhost");
    weakened(dir, "function-pod-security.yaml", "hks/function.json", "../function.json",
             "localhostProfile");
    weakened(dir, "function-pod-security.yaml", "readOnlyRootFilesystem: true",
             "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true");
    weakened(dir, "namespace-functions.yaml", "enforce: restricted", "enforce: baseline",
             "enforce must be restricted");
    weakened(dir, "namespace-builds.yaml", "enforce: baseline", "enforce: privileged",
             "enforce must be baseline");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kservice),
        cmocka_unit_test(test_service_account_and_network_policy),
        cmocka_unit_test(test_function_fields_checked),
        cmocka_unit_test(test_weakened_policies_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
