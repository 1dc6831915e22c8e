/* kube-probe: drives cluster/ from the command line for the integration tests (against the fake
 * API server in tests/kube/) and for poking at a real cluster. Answers are JSON on stdout; a
 * failure prints {"error": message, "errno": "ENOENT"} on stdout, the message on stderr, and exits
 * with status 1.
 *
 *   kube-probe [--kubeconfig F] [--context C] [--in-cluster] [--sa-dir D] [--timeout-ms N] COMMAND
 *     info                                  server, namespace and where they came from
 *     create|apply|replace KIND NS FILE     FILE is JSON or YAML ("-": stdin)
 *     get-each KIND NS NAME                 a get per line read on stdin, with one client
 *     get KIND NS NAME | patch KIND NS NAME FILE | delete KIND NS NAME [POLICY]
 *     list KIND NS [LABELS]                 NS "-": every namespace
 *     watch KIND NS RV COUNT [LABELS]       the first COUNT events after RV, one per line
 *     listwatch KIND NS COUNT [LABELS]      list ("SYNC" events) then watch, COUNT events in all
 *     render POLICY_DIR FUNCTION_FILE       the function's three objects
 *     namespace POLICY_DIR NAME functions|builds
 *     fn-apply POLICY_DIR FUNCTION_FILE | fn-wait NS ID TIMEOUT_MS | fn-delete NS ID | fn-list NS
 *     pod-logs NS POD [TAIL_LINES [LIMIT_BYTES]]  {"log": text}
 *     kaniko-build POLICY_DIR|- CONTEXT_FILE DESTINATION [OPTIONS_FILE]   {"digest": ...}
 *     kaniko-render OPTIONS_FILE|- NAME DESTINATION CONTEXT_FILE  the ConfigMap and the Pod
 *     kaniko-reap NS|- OLDER_THAN_S
 *     cj-render POLICY_DIR CRONJOB_FILE KSVC_FILE | cj-apply POLICY_DIR CRONJOB_FILE
 *     cj-delete NS ID | cj-trigger NS ID | cj-runs NS ID LOG_BYTES
 * OPTIONS_FILE: {"ns", "executor_image", "registry_secret", "dockerfile", "function_id",
 * "deadline_s", "wait_ms", "cpu_millis", "memory_mb", "ephemeral_mb", "insecure_registry"};
 * CRONJOB_FILE: {"id", "project", "owner", "definition", "curl_image", "ttl_after_finished_s"}.
 */
#include "cluster/kube_internal.h"

#include <errno.h>
#include <string.h>

static const char *errno_name(int e)
{
    switch (e) {
    case ENOENT:
        return "ENOENT";
    case EEXIST:
        return "EEXIST";
    case EBUSY:
        return "EBUSY";
    case ESTALE:
        return "ESTALE";
    case EINVAL:
        return "EINVAL";
    case EACCES:
        return "EACCES";
    case EAGAIN:
        return "EAGAIN";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EIO:
        return "EIO";
    default:
        return "OTHER";
    }
}

static int fail(const hks_error *err)
{
    json_t *out = json_pack("{s:s, s:s}", "error", err->msg, "errno", errno_name(err->errnum));
    if (out)
        json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    fprintf(stderr, "kube-probe: %s\n", err->msg);
    return 1;
}

static int print(json_t *j)
{
    json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
    putchar('\n');
    fflush(stdout);
    json_decref(j);
    return 0;
}

static json_t *read_doc(const char *path, hks_error *err)
{
    cleanup_file FILE *f = strcmp(path, "-") == 0 ? NULL : fopen(path, "re");
    FILE *in = strcmp(path, "-") == 0 ? stdin : f;
    if (!in) {
        hks_fail(err, errno, "%s", path);
        return NULL;
    }
    cleanup_free char *text = malloc(KUBE_DOC_MAX + 1);
    size_t len = text ? fread(text, 1, KUBE_DOC_MAX + 1, in) : 0;
    if (!text || len > KUBE_DOC_MAX) {
        kube_fail(err, EFBIG, "%s: too large", path);
        return NULL;
    }
    return kube_yaml_parse(text, len, err);
}

static int kind_arg(const char *name, kube_kind *out, hks_error *err)
{
    int k = kube_kind_parse(name);
    if (k < 0)
        return kube_fail(err, EINVAL, "unknown kind %s", name);
    *out = (kube_kind)k;
    return 0;
}

static const char *ns_arg(const char *ns)
{
    return strcmp(ns, "-") == 0 ? NULL : ns;
}

typedef struct event_sink {
    long remaining;
} event_sink;

static int on_event(void *ctx, const char *type, json_t *object, hks_error *err)
{
    (void)err;
    event_sink *s = ctx;
    print(json_pack("{s:s, s:O}", "type", type, "object", object));
    return --s->remaining <= 0 ? 1 : 0;
}

/* A function description (JSON/YAML) into fn; strings point into doc. */
static int function_arg(const json_t *doc, kube_function *fn, const char ***env, hks_error *err)
{
    memset(fn, 0, sizeof(*fn));
    const char **strings[] = {&fn->id,      &fn->name,  &fn->project,     &fn->owner,
                              &fn->runtime, &fn->image, &fn->code_sha256, &fn->profile};
    const char *keys[] = {"id",      "name",  "project",     "owner",
                          "runtime", "image", "code_sha256", "profile"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(keys); i++) {
        const json_t *v = json_object_get(doc, keys[i]);
        *strings[i] = json_is_string(v) ? json_string_value(v) : NULL;
    }
    unsigned *numbers[] = {&fn->memory_mb,   &fn->cpu_millis, &fn->timeout_s,
                           &fn->concurrency, &fn->min_scale,  &fn->max_scale};
    const char *nkeys[] = {"memory_mb",   "cpu_millis", "timeout_s",
                           "concurrency", "min_scale",  "max_scale"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(nkeys); i++)
        *numbers[i] = (unsigned)json_integer_value(json_object_get(doc, nkeys[i]));
    fn->expires_at = (long long)json_integer_value(json_object_get(doc, "expires_at"));
    const json_t *list = json_object_get(doc, "env");
    size_t n = json_array_size(list);
    *env = calloc(n + 1, sizeof(**env));
    if (!*env)
        return hks_fail(err, ENOMEM, "env");
    for (size_t i = 0; i < n; i++)
        (*env)[i] = json_string_value(json_array_get(list, i))
                        ? json_string_value(json_array_get(list, i))
                        : "";
    fn->env = *env;
    return 0;
}

/* The bytes of a file, malloc'd. */
static char *read_bytes(const char *path, size_t *len, hks_error *err)
{
    cleanup_file FILE *f = fopen(path, "re");
    if (!f) {
        hks_fail(err, errno, "%s", path);
        return NULL;
    }
    size_t cap = 8u << 20;
    char *buf = malloc(cap);
    *len = buf ? fread(buf, 1, cap, f) : 0;
    if (!buf)
        hks_fail(err, ENOMEM, "%s", path);
    return buf;
}

static const char *opt_string(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

static unsigned opt_uint(const json_t *doc, const char *key)
{
    return (unsigned)json_integer_value(json_object_get(doc, key));
}

/* kaniko options from a JSON document (strings point into it). */
static void kaniko_options_arg(const json_t *doc, kube_kaniko_options *o)
{
    *o = (kube_kaniko_options){.ns = opt_string(doc, "ns"),
                               .executor_image = opt_string(doc, "executor_image"),
                               .registry_secret = opt_string(doc, "registry_secret"),
                               .dockerfile = opt_string(doc, "dockerfile"),
                               .function_id = opt_string(doc, "function_id"),
                               .deadline_s = opt_uint(doc, "deadline_s"),
                               .wait_ms = opt_uint(doc, "wait_ms"),
                               .cpu_millis = opt_uint(doc, "cpu_millis"),
                               .memory_mb = opt_uint(doc, "memory_mb"),
                               .ephemeral_mb = opt_uint(doc, "ephemeral_mb"),
                               .insecure_registry =
                                   json_is_true(json_object_get(doc, "insecure_registry"))};
}

static void cronjob_arg(const json_t *doc, kube_cronjob *cj)
{
    *cj = (kube_cronjob){.id = opt_string(doc, "id"),
                         .project = opt_string(doc, "project"),
                         .owner = opt_string(doc, "owner"),
                         .definition = json_object_get(doc, "definition"),
                         .curl_image = opt_string(doc, "curl_image"),
                         .ttl_after_finished_s = opt_uint(doc, "ttl_after_finished_s")};
}

/* Commands on builds, CronJobs and logs. 1: not one of them. */
static int run_more(kube_client *c, int argc, char **argv, hks_error *err)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "pod-logs") == 0 && argc >= 3 && argc <= 5) {
        char *text = NULL;
        size_t len = 0;
        if (kube_pod_logs(c, argv[1], argv[2], NULL,
                          argc >= 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 0,
                          argc == 5 ? strtoul(argv[4], NULL, 10) : 0, &text, &len, err) < 0)
            return -1;
        json_t *out = json_pack("{s:s%}", "log", text, len);
        free(text);
        return print(out ? out : json_pack("{s:s}", "log", "<not UTF-8>"));
    }
    if (strcmp(cmd, "kaniko-build") == 0 && (argc == 4 || argc == 5)) {
        kube_policy *p = NULL;
        if (strcmp(argv[1], "-") != 0 && kube_policy_load(argv[1], &p, err) < 0)
            return -1;
        json_t *doc = argc == 5 ? read_doc(argv[4], err) : json_object();
        size_t len = 0;
        char *context = doc ? read_bytes(argv[2], &len, err) : NULL;
        int rc = -1;
        if (context) {
            kube_kaniko_options o;
            kaniko_options_arg(doc, &o);
            char digest[72];
            rc = kube_kaniko_build(c, p, &o, context, len, argv[3], digest, err);
            if (rc == 0)
                print(json_pack("{s:s}", "digest", digest));
            else if (digest[0])
                fprintf(stderr, "kube-probe: pushed %s\n", digest);
        }
        free(context);
        json_decref(doc);
        kube_policy_free(p);
        return rc;
    }
    if (strcmp(cmd, "kaniko-reap") == 0 && argc == 3) {
        unsigned deleted = 0;
        if (kube_kaniko_reap(c, ns_arg(argv[1]), strtoll(argv[2], NULL, 10), &deleted, err) < 0)
            return -1;
        return print(json_pack("{s:i}", "deleted", (int)deleted));
    }
    if (strcmp(cmd, "cj-apply") == 0 && argc == 3) {
        kube_policy *p = NULL;
        if (kube_policy_load(argv[1], &p, err) < 0)
            return -1;
        json_t *doc = read_doc(argv[2], err);
        kube_cronjob cj;
        int rc = -1;
        if (doc) {
            cronjob_arg(doc, &cj);
            rc = kube_cronjob_apply(c, p, &cj, err);
        }
        if (rc == 0)
            print(json_pack("{s:s}", "applied", cj.id));
        json_decref(doc);
        kube_policy_free(p);
        return rc;
    }
    if (strcmp(cmd, "cj-delete") == 0 && argc == 3) {
        unsigned deleted = 0;
        if (kube_cronjob_delete(c, argv[1], argv[2], &deleted, err) < 0)
            return -1;
        return print(json_pack("{s:i}", "deleted", (int)deleted));
    }
    if (strcmp(cmd, "cj-trigger") == 0 && argc == 3) {
        json_t *run = kube_cronjob_trigger(c, argv[1], argv[2], err);
        return run ? print(run) : -1;
    }
    if (strcmp(cmd, "cj-runs") == 0 && argc == 4) {
        json_t *runs = kube_cronjob_runs(c, argv[1], argv[2], strtoul(argv[3], NULL, 10), err);
        return runs ? print(json_pack("{s:o}", "runs", runs)) : -1;
    }
    return 1;
}

/* Renderers without a client. 1: not one of them. */
static int render_more(int argc, char **argv, hks_error *err)
{
    if (strcmp(argv[0], "kaniko-render") == 0 && argc == 5) {
        json_t *doc = strcmp(argv[1], "-") == 0 ? json_object() : read_doc(argv[1], err);
        size_t len = 0;
        char *context = doc ? read_bytes(argv[4], &len, err) : NULL;
        kube_kaniko_options o;
        kube_kaniko_settings s;
        int rc = -1;
        if (context) {
            kaniko_options_arg(doc, &o);
            if (kube_kaniko_resolve(&o, &s, err) == 0) {
                json_t *cm = kube_render_kaniko_context(&s, argv[2], context, len, err);
                json_t *pod = cm ? kube_render_kaniko_pod(&s, argv[2], argv[3], err) : NULL;
                if (pod)
                    rc = print(json_pack("{s:o, s:o}", "configMap", cm, "pod", pod));
                else
                    json_decref(cm);
            }
        }
        free(context);
        json_decref(doc);
        return rc;
    }
    if (strcmp(argv[0], "cj-render") == 0 && argc == 4) {
        kube_policy *p = NULL;
        if (kube_policy_load(argv[1], &p, err) < 0)
            return -1;
        json_t *doc = read_doc(argv[2], err);
        json_t *ksvc = doc ? read_doc(argv[3], err) : NULL;
        int rc = -1;
        if (ksvc) {
            kube_cronjob cj;
            cronjob_arg(doc, &cj);
            json_t *obj = kube_render_cronjob(p, &cj, ksvc, err);
            json_t *np = obj ? kube_render_cronjob_network_policy(p, &cj, err) : NULL;
            if (np)
                rc = print(json_pack("{s:o, s:o}", "cronJob", obj, "networkPolicy", np));
            else
                json_decref(obj);
        }
        json_decref(doc);
        json_decref(ksvc);
        kube_policy_free(p);
        return rc;
    }
    return 1;
}

static int run(kube_client *c, int argc, char **argv, hks_error *err)
{
    int more = run_more(c, argc, argv, err);
    if (more <= 0)
        return more;
    const char *cmd = argv[0];
    kube_kind kind = KUBE_NAMESPACE;
    if (strcmp(cmd, "info") == 0)
        return print(json_pack("{s:s, s:s, s:s}", "server", kube_client_server(c), "namespace",
                               kube_client_namespace(c), "source", kube_client_source(c)));
    if ((strcmp(cmd, "create") == 0 || strcmp(cmd, "apply") == 0 || strcmp(cmd, "replace") == 0) &&
        argc == 4) {
        json_t *obj = read_doc(argv[3], err), *out = NULL;
        if (!obj || kind_arg(argv[1], &kind, err) < 0) {
            json_decref(obj);
            return -1;
        }
        int rc = strcmp(cmd, "create") == 0  ? kube_create(c, kind, argv[2], obj, &out, err)
                 : strcmp(cmd, "apply") == 0 ? kube_apply(c, kind, argv[2], obj, &out, err)
                                             : kube_replace(c, kind, argv[2], obj, &out, err);
        json_decref(obj);
        return rc < 0 ? -1 : print(out);
    }
    if (strcmp(cmd, "get") == 0 && argc == 4) {
        json_t *out = NULL;
        if (kind_arg(argv[1], &kind, err) < 0 || kube_get(c, kind, argv[2], argv[3], &out, err) < 0)
            return -1;
        return print(out);
    }
    /* a long-lived client: one get per line read on stdin (token rotation after a 401) */
    if (strcmp(cmd, "get-each") == 0 && argc == 4) {
        char line[64];
        if (kind_arg(argv[1], &kind, err) < 0)
            return -1;
        while (fgets(line, sizeof(line), stdin)) {
            json_t *out = NULL;
            if (kube_get(c, kind, argv[2], argv[3], &out, err) < 0)
                fail(err);
            else
                print(out);
            fflush(stdout);
        }
        return 0;
    }
    if (strcmp(cmd, "patch") == 0 && argc == 5) {
        json_t *patch = read_doc(argv[4], err), *out = NULL;
        int rc = patch && kind_arg(argv[1], &kind, err) == 0
                     ? kube_patch(c, kind, argv[2], argv[3], patch, &out, err)
                     : -1;
        json_decref(patch);
        return rc < 0 ? -1 : print(out);
    }
    if (strcmp(cmd, "delete") == 0 && (argc == 4 || argc == 5)) {
        kube_propagation prop = KUBE_PROPAGATE_BACKGROUND;
        if (argc == 5)
            prop = strcmp(argv[4], "Foreground") == 0 ? KUBE_PROPAGATE_FOREGROUND
                   : strcmp(argv[4], "Orphan") == 0   ? KUBE_PROPAGATE_ORPHAN
                                                      : KUBE_PROPAGATE_BACKGROUND;
        if (kind_arg(argv[1], &kind, err) < 0 ||
            kube_delete(c, kind, argv[2], argv[3], prop, err) < 0)
            return -1;
        return print(json_pack("{s:b}", "deleted", 1));
    }
    if (strcmp(cmd, "list") == 0 && (argc == 3 || argc == 4)) {
        json_t *items = NULL;
        char rv[72];
        if (kind_arg(argv[1], &kind, err) < 0 ||
            kube_list(c, kind, ns_arg(argv[2]), argc == 4 ? argv[3] : NULL, NULL, &items, rv,
                      sizeof(rv), err) < 0)
            return -1;
        return print(json_pack("{s:s, s:o}", "resourceVersion", rv, "items", items));
    }
    if (strcmp(cmd, "watch") == 0 && (argc == 5 || argc == 6)) {
        event_sink sink = {.remaining = strtol(argv[4], NULL, 10)};
        kube_watch_options opt = {.label_selector = argc == 6 ? argv[5] : NULL};
        char last[72];
        if (kind_arg(argv[1], &kind, err) < 0)
            return -1;
        int rc = kube_watch(c, kind, ns_arg(argv[2]), &opt, argv[3], on_event, &sink, last,
                            sizeof(last), err);
        return rc < 0 ? -1 : print(json_pack("{s:s, s:b}", "end", last, "stopped", rc == 1));
    }
    if (strcmp(cmd, "listwatch") == 0 && (argc == 4 || argc == 5)) {
        event_sink sink = {.remaining = strtol(argv[3], NULL, 10)};
        kube_watch_options opt = {.label_selector = argc == 5 ? argv[4] : NULL};
        if (kind_arg(argv[1], &kind, err) < 0 ||
            kube_list_watch(c, kind, ns_arg(argv[2]), &opt, on_event, &sink, err) < 0)
            return -1;
        return 0;
    }
    if (strcmp(cmd, "fn-wait") == 0 && argc == 4) {
        char url[512];
        if (kube_function_wait_ready(c, argv[1], argv[2], (unsigned)strtoul(argv[3], NULL, 10), url,
                                     sizeof(url), err) < 0)
            return -1;
        return print(json_pack("{s:s}", "url", url));
    }
    if (strcmp(cmd, "fn-delete") == 0 && argc == 3) {
        unsigned deleted = 0;
        if (kube_function_delete(c, argv[1], argv[2], &deleted, err) < 0)
            return -1;
        return print(json_pack("{s:i}", "deleted", (int)deleted));
    }
    if (strcmp(cmd, "fn-list") == 0 && argc == 2) {
        kube_function_info *infos = NULL;
        size_t n = 0;
        if (kube_function_list(c, ns_arg(argv[1]), &infos, &n, err) < 0)
            return -1;
        json_t *arr = json_array();
        static const char *const readiness[] = {"not-ready", "ready", "failed"};
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id", infos[i].id,
                               "namespace", infos[i].ns, "owner", infos[i].owner, "code_sha256",
                               infos[i].code_sha256, "expires_at", (json_int_t)infos[i].expires_at,
                               "readiness", readiness[infos[i].readiness], "url", infos[i].url));
        free(infos);
        return print(arr);
    }
    return kube_fail(err, EINVAL, "unknown command or wrong arguments: %s", cmd);
}

/* Commands that need a policy and no client. */
static int run_render(int argc, char **argv, kube_client *c, hks_error *err)
{
    kube_policy *p = NULL;
    if (kube_policy_load(argv[1], &p, err) < 0)
        return -1;
    int rc = -1;
    if (strcmp(argv[0], "namespace") == 0 && argc == 4) {
        json_t *ns = kube_render_namespace(p, argv[2], strcmp(argv[3], "builds") == 0, err);
        rc = ns ? print(ns) : -1;
    } else if (argc == 3) {
        json_t *doc = read_doc(argv[2], err);
        kube_function fn;
        const char **env = NULL;
        if (doc && function_arg(doc, &fn, &env, err) == 0) {
            if (strcmp(argv[0], "render") == 0) {
                json_t *sa = kube_render_service_account(p, &fn, err);
                json_t *np = sa ? kube_render_network_policy(p, &fn, err) : NULL;
                json_t *ks = np ? kube_render_kservice(p, &fn, err) : NULL;
                if (ks)
                    rc = print(json_pack("{s:o, s:o, s:o}", "serviceAccount", sa, "networkPolicy",
                                         np, "service", ks));
                else {
                    json_decref(sa);
                    json_decref(np);
                }
            } else if (c) {
                rc = kube_function_apply(c, p, &fn, err) < 0
                         ? -1
                         : print(json_pack("{s:s}", "applied", fn.id));
            }
        }
        free(env);
        json_decref(doc);
    } else {
        kube_fail(err, EINVAL, "wrong arguments for %s", argv[0]);
    }
    kube_policy_free(p);
    return rc;
}

int main(int argc, char **argv)
{
    kube_options opt = {0};
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--kubeconfig") == 0)
            opt.kubeconfig = argv[i + 1];
        else if (strcmp(argv[i], "--context") == 0)
            opt.context = argv[i + 1];
        else if (strcmp(argv[i], "--sa-dir") == 0)
            opt.serviceaccount_dir = argv[i + 1];
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            opt.timeout_ms = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--in-cluster") == 0) {
            opt.in_cluster = true;
            i--;
        } else
            break;
    }
    if (i < argc && strcmp(argv[i], "--in-cluster") == 0) {
        opt.in_cluster = true;
        i++;
    }
    hks_error err = {0};
    if (i >= argc) {
        kube_fail(&err, EINVAL,
                  "usage: kube-probe [options] COMMAND ... (see tests/kube/kube_probe.c)");
        return fail(&err);
    }
    const char *cmd = argv[i];
    int rendered = render_more(argc - i, argv + i, &err);
    if (rendered <= 0)
        return rendered < 0 ? fail(&err) : 0;
    if (strcmp(cmd, "render") == 0 || strcmp(cmd, "namespace") == 0)
        return run_render(argc - i, argv + i, NULL, &err) < 0 ? fail(&err) : 0;
    kube_client *c = NULL;
    if (kube_client_new(&opt, &c, &err) < 0)
        return fail(&err);
    int rc = strcmp(cmd, "fn-apply") == 0 ? run_render(argc - i, argv + i, c, &err)
                                          : run(c, argc - i, argv + i, &err);
    kube_client_free(c);
    return rc < 0 ? fail(&err) : 0;
}
