/* cluster/kaniko.c, cronjob.c, cronjob_runs.c: the build ConfigMap and Pod, a build Pod's outcome,
 * the CronJob of a task and of a function target, a manual Job, and a run record read from a Job
 * and its Pod, field by field. */
#include "helpers.h"

#include <errno.h>

#include "cluster/kube_internal.h"

#define DIGEST "sha256:5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f"

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

/* The value at a "/"-separated path ("spec/containers/0/image"). */
static json_t *at(json_t *j, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *part = strtok_r(buf, "/", &save); part && j; part = strtok_r(NULL, "/", &save))
        j = json_is_array(j) ? json_array_get(j, strtoul(part, NULL, 10))
                             : json_object_get(j, part);
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

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("test JSON: %s", e.text);
    return j;
}

/* ---- Kaniko ---- */

static void test_kaniko_render(void **state)
{
    (void)state;
    kube_kaniko_options opt = {.registry_secret = "regcred",
                               .deadline_s = 300,
                               .insecure_registry = true,
                               .dockerfile = "build/Dockerfile"};
    kube_kaniko_settings s;
    hks_error err = {0};
    assert_int_equal(kube_kaniko_resolve(&opt, &s, &err), 0);
    assert_string_equal(s.ns, "hks-builds");
    assert_int_equal(s.wait_ms, 360000);
    const unsigned char ctx[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 'x'};
    json_t *cm = kube_render_kaniko_context(&s, "hks-build-1", ctx, sizeof(ctx), &err);
    assert_non_null(cm);
    assert_json(cm, "binaryData", "{\"context.tar.gz\": \"H4sIAAAAAAAAA3g=\"}");
    assert_json(cm, "immutable", "true");
    assert_json(cm, "metadata",
                "{\"name\": \"hks-build-1\", \"namespace\": \"hks-builds\", \"labels\": "
                "{\"app.kubernetes.io/managed-by\": \"hksd\", \"hks.io/role\": \"build\", "
                "\"hks.io/build\": \"hks-build-1\"}}");
    json_decref(cm);

    json_t *pod = kube_render_kaniko_pod(&s, "hks-build-1", "reg.local:5000/fn/x:1", &err);
    assert_non_null(pod);
    assert_json(pod, "spec/containers/0/args",
                "[\"--context=tar:///hks-build/context.tar.gz\", "
                "\"--dockerfile=build/Dockerfile\", \"--destination=reg.local:5000/fn/x:1\", "
                "\"--digest-file=/dev/termination-log\", \"--snapshot-mode=redo\", "
                "\"--verbosity=info\", \"--insecure\"]");
    assert_json(pod, "spec/containers/0/image", "\"" KUBE_KANIKO_EXECUTOR_DEFAULT "\"");
    assert_json(pod, "spec/activeDeadlineSeconds", "300");
    assert_json(pod, "spec/automountServiceAccountToken", "false");
    assert_json(pod, "spec/restartPolicy", "\"Never\"");
    assert_json(pod, "spec/securityContext",
                "{\"seccompProfile\": {\"type\": \"RuntimeDefault\"}}");
    assert_json(pod, "spec/containers/0/securityContext/capabilities",
                "{\"drop\": [\"ALL\"], \"add\": [\"CHOWN\", \"DAC_OVERRIDE\", \"FOWNER\", "
                "\"SETGID\", \"SETUID\", \"SETFCAP\", \"KILL\"]}");
    assert_json(pod, "spec/containers/0/resources/limits",
                "{\"cpu\": \"1000m\", \"memory\": \"2048Mi\", \"ephemeral-storage\": \"4096Mi\"}");
    assert_json(pod, "spec/containers/0/volumeMounts/1",
                "{\"name\": \"docker-config\", \"mountPath\": \"/kaniko/.docker\", "
                "\"readOnly\": true}");
    assert_json(pod, "spec/volumes/1/secret",
                "{\"secretName\": \"regcred\", \"items\": [{\"key\": \".dockerconfigjson\", "
                "\"path\": \"config.json\"}]}");
    json_decref(pod);

    /* what is refused, and why */
    const char *bad_dest[] = {"reg/x@sha256:00", "-reg/x:1", "noslash", "reg/x y:1", "reg/x:"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad_dest); i++) {
        assert_null(kube_render_kaniko_pod(&s, "n", bad_dest[i], &err));
        assert_int_equal(err.errnum, EINVAL);
    }
    kube_kaniko_options bad[] = {{.executor_image = "gcr.io/kaniko-project/executor:latest"},
                                 {.ns = "Bad_NS"},
                                 {.dockerfile = "../Dockerfile"},
                                 {.dockerfile = "/etc/passwd"},
                                 {.deadline_s = 3601},
                                 {.registry_secret = "has space"}};
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        err = (hks_error){0};
        assert_int_equal(kube_kaniko_resolve(&bad[i], &s, &err), -1);
        assert_non_null(strstr(err.msg, "kaniko build: invalid "));
    }
}

static void test_kaniko_outcome(void **state)
{
    (void)state;
    kube_build_outcome o;
    json_t *pod =
        parse("{\"status\": {\"phase\": \"Succeeded\", \"containerStatuses\": [{\"name\": "
              "\"kaniko\", \"state\": {\"terminated\": {\"exitCode\": 0, \"message\": \"" DIGEST
              "\\n\"}}}]}}");
    kube_kaniko_outcome(pod, &o);
    assert_int_equal(o.state, KUBE_BUILD_SUCCEEDED);
    assert_string_equal(o.digest, DIGEST);
    json_decref(pod);

    pod = parse("{\"status\": {\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": "
                "\"kaniko\", \"state\": {\"terminated\": {\"exitCode\": 1, \"reason\": \"Error\", "
                "\"message\": \"step 1\\nerror building image\"}}}]}}");
    kube_kaniko_outcome(pod, &o);
    assert_int_equal(o.state, KUBE_BUILD_FAILED);
    assert_int_equal(o.errnum, EIO);
    assert_string_equal(
        o.why, "the executor failed with exit code 1 (Error): step 1 error building image");
    json_decref(pod);

    pod = parse("{\"status\": {\"phase\": \"Failed\", \"reason\": \"DeadlineExceeded\", "
                "\"message\": \"Pod was active too long\"}}");
    kube_kaniko_outcome(pod, &o);
    assert_int_equal(o.state, KUBE_BUILD_FAILED);
    assert_int_equal(o.errnum, ETIMEDOUT);
    json_decref(pod);

    /* waiting: a pull that may heal goes on, a missing Secret does not */
    pod = parse("{\"status\": {\"phase\": \"Pending\", \"containerStatuses\": [{\"name\": "
                "\"kaniko\", \"state\": {\"waiting\": {\"reason\": \"ImagePullBackOff\"}}}]}}");
    kube_kaniko_outcome(pod, &o);
    assert_int_equal(o.state, KUBE_BUILD_RUNNING);
    assert_string_equal(o.why, "waiting, ImagePullBackOff: ");
    json_decref(pod);
    pod = parse("{\"status\": {\"phase\": \"Pending\", \"containerStatuses\": [{\"name\": "
                "\"kaniko\", \"state\": {\"waiting\": {\"reason\": \"CreateContainerConfigError\", "
                "\"message\": \"secret \\\"regcred\\\" not found\"}}}]}}");
    kube_kaniko_outcome(pod, &o);
    assert_int_equal(o.state, KUBE_BUILD_FAILED);
    assert_string_equal(o.why, "waiting, CreateContainerConfigError: secret \"regcred\" not found");
    json_decref(pod);

    /* digests that are not */
    const char *messages[] = {"sha256:"
                              "5F5F",
                              "sha512:abc", "",
                              "sha256:"
                              "5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(messages); i++) {
        pod = json_pack("{s:{s:s, s:[{s:s, s:{s:{s:i, s:s}}}]}}", "status", "phase", "Succeeded",
                        "containerStatuses", "name", "kaniko", "state", "terminated", "exitCode", 0,
                        "message", messages[i]);
        kube_kaniko_outcome(pod, &o);
        assert_int_equal(o.state, KUBE_BUILD_FAILED);
        assert_non_null(strstr(o.why, "without a digest"));
        json_decref(pod);
    }
    kube_kaniko_outcome(NULL, &o);
    assert_int_equal(o.state, KUBE_BUILD_RUNNING);
}

/* ---- CronJobs ---- */

static const char ksvc_json[] =
    "{\"metadata\": {\"name\": \"fn-0123456789abcdef0123\", \"generation\": 1},"
    " \"spec\": {\"template\": {\"spec\": {\"serviceAccountName\": \"fn-0123456789abcdef0123\","
    "  \"timeoutSeconds\": 60, \"containers\": [{\"name\": \"function\", \"image\": "
    "  \"reg/fn@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "  \"env\": [{\"name\": \"A\", \"value\": \"template\"}, {\"name\": \"B\", \"value\": \"b\"}],"
    "  \"resources\": {\"limits\": {\"memory\": \"128Mi\"}, \"requests\": {\"memory\": "
    "  \"128Mi\"}}, \"securityContext\": {\"seccompProfile\": {\"type\": \"Localhost\","
    "  \"localhostProfile\": \"hks/python.json\"}}}]}}},"
    " \"status\": {\"observedGeneration\": 1, \"conditions\": [{\"type\": \"Ready\", \"status\": "
    "  \"True\"}], \"address\": {\"url\": \"http://fn.proj-a.svc.cluster.local/\"}}}";

static json_t *definition(const char *target)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"name\": \"n\", \"schedule\": \"*/5 * * * *\", \"timezone\": \"UTC\", "
             "\"concurrency_policy\": \"Replace\", \"suspend\": true, "
             "\"starting_deadline_seconds\": null, \"successful_jobs_history_limit\": 2, "
             "\"failed_jobs_history_limit\": 0, \"target\": %s}",
             target);
    return parse(text);
}

static void test_cronjob_task(void **state)
{
    (void)state;
    kube_policy *p = load_shipped();
    json_t *ksvc = parse(ksvc_json);
    json_t *d = definition("{\"task\": {\"template\": \"fn-0123456789abcdef0123\", \"command\": "
                           "[\"sh\", \"-c\", \"echo $HOME\"], \"args\": [], \"env\": {\"A\": "
                           "\"$(B)\"}, \"timeout_seconds\": 60}}");
    kube_cronjob cj = {.id = "cj-00112233445566778899",
                       .project = "proj-a",
                       .owner = "o",
                       .definition = d,
                       .ttl_after_finished_s = 60};
    hks_error err = {0};
    json_t *obj = kube_render_cronjob(p, &cj, ksvc, &err);
    if (!obj)
        fail_msg("%s", err.msg);
    assert_json(obj, "spec/schedule", "\"*/5 * * * *\"");
    assert_json(obj, "spec/timeZone", "\"UTC\"");
    assert_json(obj, "spec/concurrencyPolicy", "\"Replace\"");
    assert_json(obj, "spec/suspend", "true");
    assert_null(json_object_get(json_object_get(obj, "spec"), "startingDeadlineSeconds"));
    assert_json(obj, "spec/successfulJobsHistoryLimit", "2");
    assert_json(obj, "spec/failedJobsHistoryLimit", "0");
    assert_json(obj, "spec/jobTemplate/spec/ttlSecondsAfterFinished", "60");
    assert_json(obj, "spec/jobTemplate/spec/backoffLimit", "0");
    assert_json(obj, "spec/jobTemplate/spec/activeDeadlineSeconds", "60");
    json_t *c = at(obj, "spec/jobTemplate/spec/template/spec/containers/0");
    assert_json(c, "command", "[\"sh\", \"-c\", \"echo $$HOME\"]");
    assert_json(c, "env",
                "[{\"name\": \"A\", \"value\": \"$$(B)\"}, {\"name\": \"B\", "
                "\"value\": \"b\"}]");
    assert_json(c, "resources",
                "{\"limits\": {\"memory\": \"128Mi\"}, \"requests\": "
                "{\"memory\": \"128Mi\"}}");
    /* the template's own seccomp profile, with the policy's restrictions */
    assert_json(c, "securityContext/seccompProfile",
                "{\"type\": \"Localhost\", \"localhostProfile\": \"hks/python.json\"}");
    assert_json(c, "securityContext/readOnlyRootFilesystem", "true");
    assert_json(obj, "spec/jobTemplate/spec/template/spec/volumes",
                "[{\"name\": \"tmp\", \"emptyDir\": {\"sizeLimit\": \"64Mi\"}}]");
    json_decref(obj);

    /* a profile outside the policy's directory is not taken */
    json_object_set_new(at(ksvc, "spec/template/spec/containers/0/securityContext/seccompProfile"),
                        "localhostProfile", json_string("../../etc/evil.json"));
    obj = kube_render_cronjob(p, &cj, ksvc, &err);
    assert_json(obj,
                "spec/jobTemplate/spec/template/spec/containers/0/securityContext/"
                "seccompProfile/localhostProfile",
                "\"hks/function.json\"");
    json_decref(obj);

    /* a template without an image by digest is refused */
    json_object_set_new(at(ksvc, "spec/template/spec/containers/0"), "image",
                        json_string("reg/fn:latest"));
    assert_null(kube_render_cronjob(p, &cj, ksvc, &err));
    assert_non_null(strstr(err.msg, "no container image by digest"));

    /* what the definition must hold */
    cj.id = "CJ-upper";
    assert_null(kube_render_cronjob(p, &cj, ksvc, &err));
    assert_non_null(strstr(err.msg, "invalid id"));
    cj.id = "cj-00112233445566778899";
    json_object_set_new(d, "timezone", json_string("Local"));
    assert_null(kube_render_cronjob(p, &cj, ksvc, &err));
    assert_non_null(strstr(err.msg, "timezone"));
    json_decref(d);
    json_decref(ksvc);
    kube_policy_free(p);
}

static void test_cronjob_function_target(void **state)
{
    (void)state;
    kube_policy *p = load_shipped();
    json_t *ksvc = parse(ksvc_json);
    json_t *d = definition("{\"function\": {\"id\": \"fn-0123456789abcdef0123\", \"method\": "
                           "\"HEAD\", \"path\": \"/p?$x=1\", \"headers\": {}, \"body\": \"\"}}");
    kube_cronjob cj = {.id = "cj-00112233445566778899",
                       .project = "proj-a",
                       .definition = d,
                       .curl_image = "mirror/curl@sha256:0123"};
    hks_error err = {0};
    json_t *obj = kube_render_cronjob(p, &cj, ksvc, &err);
    if (!obj)
        fail_msg("%s", err.msg);
    json_t *c = at(obj, "spec/jobTemplate/spec/template/spec/containers/0");
    assert_json(c, "image", "\"mirror/curl@sha256:0123\"");
    assert_json(c, "args",
                "[\"--silent\", \"--show-error\", \"--fail-with-body\", \"--max-time\", \"65\", "
                "\"--head\", \"--write-out\", \"%output{/dev/termination-log}HTTP %{http_code}\", "
                "\"--url\", \"http://fn.proj-a.svc.cluster.local/p?$$x=1\"]");
    assert_json(c, "env", "[]");
    assert_json(obj, "spec/jobTemplate/spec/activeDeadlineSeconds", "95");
    assert_string_equal(
        json_string_value(json_object_get(at(obj, "metadata/annotations"), "hks.io/target-kind")),
        "function");
    json_decref(obj);
    /* a function that is not ready has no URL to call */
    json_object_del(ksvc, "status");
    assert_null(kube_render_cronjob(p, &cj, ksvc, &err));
    assert_non_null(strstr(err.msg, "not ready"));
    json_decref(d);
    json_decref(ksvc);
    kube_policy_free(p);
}

static void test_manual_job_and_run_records(void **state)
{
    (void)state;
    json_t *cj =
        parse("{\"metadata\": {\"name\": \"cj-1\", \"namespace\": \"p\", \"uid\": \"u-1\"},"
              " \"spec\": {\"jobTemplate\": {\"metadata\": {\"labels\": {\"a\": \"b\"}},"
              " \"spec\": {\"backoffLimit\": 0}}}}");
    hks_error err = {0};
    json_t *job = kube_render_manual_job(cj, "cj-1-m00", &err);
    assert_non_null(job);
    assert_json(job, "metadata",
                "{\"name\": \"cj-1-m00\", \"namespace\": \"p\", \"labels\": {\"a\": \"b\"}, "
                "\"annotations\": {\"cronjob.kubernetes.io/instantiate\": \"manual\"}, "
                "\"ownerReferences\": [{\"apiVersion\": \"batch/v1\", \"kind\": \"CronJob\", "
                "\"name\": \"cj-1\", \"uid\": \"u-1\", \"controller\": true}]}");
    assert_json(job, "spec", "{\"backoffLimit\": 0}");
    json_decref(job);
    json_object_del(json_object_get(cj, "metadata"), "uid");
    assert_null(kube_render_manual_job(cj, "x", &err));
    json_decref(cj);

    json_t *running = parse("{\"metadata\": {\"name\": \"cj-1-29000000\", \"creationTimestamp\": "
                            "\"2026-01-01T02:30:01Z\", \"annotations\": "
                            "{\"batch.kubernetes.io/cronjob-scheduled-timestamp\": "
                            "\"2026-01-01T02:30:00Z\"}}, \"status\": {\"startTime\": "
                            "\"2026-01-01T02:30:02Z\", \"active\": 1}}");
    json_t *rec = kube_job_run_record(running, NULL, "cj-1", false);
    assert_non_null(rec);
    assert_json(rec, "",
                "{\"id\": \"cj-1-29000000\", \"number\": 1767234601, \"cronjob_id\": "
                "\"cj-1\", \"trigger\": \"schedule\", \"status\": \"running\", "
                "\"scheduled_at\": \"2026-01-01T02:30:00Z\", \"started_at\": "
                "\"2026-01-01T02:30:02Z\"}");
    json_decref(rec);
    json_decref(running);

    json_t *done = parse("{\"metadata\": {\"name\": \"j\", \"creationTimestamp\": "
                         "\"2026-01-01T00:00:00Z\", \"annotations\": "
                         "{\"cronjob.kubernetes.io/instantiate\": \"manual\"}},"
                         " \"status\": {\"startTime\": \"2026-01-01T00:00:01Z\", "
                         "\"completionTime\": \"2026-01-01T00:00:04Z\", \"conditions\": "
                         "[{\"type\": \"Complete\", \"status\": \"True\"}]}}");
    json_t *pod = parse("{\"status\": {\"containerStatuses\": [{\"state\": {\"terminated\": "
                        "{\"exitCode\": 0, \"message\": \"HTTP 201\"}}}]}}");
    rec = kube_job_run_record(done, pod, "cj-1", true);
    assert_json(rec, "trigger", "\"manual\"");
    assert_json(rec, "status", "\"succeeded\"");
    assert_json(rec, "reason", "\"HTTP 201\"");
    assert_json(rec, "http_status", "201");
    assert_json(rec, "exit_code", "0");
    assert_json(rec, "duration_ms", "3000");
    assert_json(rec, "finished_at", "\"2026-01-01T00:00:04Z\"");
    assert_json(rec, "peak_memory_bytes", "null");
    json_decref(rec);
    json_decref(pod);
    json_decref(done);

    json_t *oom = parse("{\"metadata\": {\"name\": \"j\"}, \"status\": {\"conditions\": "
                        "[{\"type\": \"Failed\", \"status\": \"True\", \"reason\": "
                        "\"BackoffLimitExceeded\", \"message\": \"m\"}]}}");
    pod = parse("{\"status\": {\"containerStatuses\": [{\"state\": {\"terminated\": "
                "{\"exitCode\": 137, \"reason\": \"OOMKilled\"}}}]}}");
    rec = kube_job_run_record(oom, pod, "cj-1", false);
    assert_json(rec, "reason", "\"killed: out of memory, exit code 137\"");
    json_decref(rec);
    rec = kube_job_run_record(oom, NULL, "cj-1", false);
    assert_json(rec, "reason", "\"BackoffLimitExceeded: m\"");
    assert_json(rec, "exit_code", "null");
    assert_json(rec, "scheduled_at", "null");
    json_decref(rec);
    json_decref(pod);
    json_decref(oom);

    json_t *nameless = parse("{\"metadata\": {\"name\": \"Bad Name\"}}");
    assert_null(kube_job_run_record(nameless, NULL, "cj-1", false));
    json_decref(nameless);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kaniko_render),
        cmocka_unit_test(test_kaniko_outcome),
        cmocka_unit_test(test_cronjob_task),
        cmocka_unit_test(test_cronjob_function_target),
        cmocka_unit_test(test_manual_job_and_run_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
