/* The objects a deployed function gets on a cluster, rendered from the reviewable files of
 * policies/kubernetes/ (which are checked when loaded, so a weakened file stops hksd instead of
 * weakening functions) and the function's own fields. Pure functions: no I/O after loading. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

struct kube_policy {
    json_t *service_account, *network_policy, *namespace_functions, *namespace_builds;
    json_t *security_context; /* the container's */
    char seccomp_dir[128];    /* "hks": profiles are <dir>/<profile>.json */
    char seccomp_default[64]; /* "function" */
    char tmp_path[256], tmp_size[32];
};

void kube_policy_free(kube_policy *p)
{
    if (!p)
        return;
    json_decref(p->service_account);
    json_decref(p->network_policy);
    json_decref(p->namespace_functions);
    json_decref(p->namespace_builds);
    json_decref(p->security_context);
    free(p);
}

static json_t *load_yaml_file(const char *dir, const char *name, hks_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cleanup_file FILE *f = fopen(path, "re");
    if (!f) {
        hks_fail(err, errno, "policy %s", path);
        return NULL;
    }
    cleanup_free char *text = malloc(KUBE_DOC_MAX + 1);
    if (!text) {
        hks_fail(err, ENOMEM, "policy %s", path);
        return NULL;
    }
    size_t len = fread(text, 1, KUBE_DOC_MAX + 1, f);
    if (ferror(f) || len > KUBE_DOC_MAX) {
        kube_fail(err, EFBIG, "policy %s: unreadable or larger than %u bytes", path, KUBE_DOC_MAX);
        return NULL;
    }
    json_t *doc = kube_yaml_parse(text, len, err);
    if (!doc)
        hks_wrap(err, "policy %s", path);
    else if (!json_is_object(doc)) {
        json_decref(doc);
        kube_fail(err, EINVAL, "policy %s: not a mapping", path);
        return NULL;
    }
    return doc;
}

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool kind_is(const json_t *obj, const char *api_version, const char *kind)
{
    const char *a = string_at(obj, "apiVersion"), *k = string_at(obj, "kind");
    return a && k && strcmp(a, api_version) == 0 && strcmp(k, kind) == 0;
}

static bool profile_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* function-pod-security.yaml: everything Pod Security "restricted" asks of a container. */
static int check_security_context(kube_policy *p, const json_t *doc, const char *file,
                                  hks_error *err)
{
    const json_t *sc = json_object_get(doc, "securityContext");
    if (!json_is_object(sc))
        return kube_fail(err, EINVAL, "policy %s: no securityContext mapping", file);
    const json_t *user = json_object_get(sc, "runAsUser");
    const json_t *caps = json_object_get(sc, "capabilities");
    const json_t *drop = json_object_get(caps, "drop");
    const json_t *seccomp = json_object_get(sc, "seccompProfile");
    const json_t *privileged = json_object_get(sc, "privileged");
    bool drops_all = false;
    size_t i;
    const json_t *c;
    json_array_foreach(drop, i, c) drops_all |=
        json_is_string(c) && strcmp(json_string_value(c), "ALL") == 0;
    const char *rule = NULL;
    if (!json_is_true(json_object_get(sc, "runAsNonRoot")))
        rule = "runAsNonRoot must be true";
    else if (!json_is_integer(user) || json_integer_value(user) <= 0 ||
             json_integer_value(user) > 2147483647)
        rule = "runAsUser must be a non-zero uid";
    else if (!json_is_false(json_object_get(sc, "allowPrivilegeEscalation")))
        rule = "allowPrivilegeEscalation must be false";
    else if (privileged && !json_is_false(privileged))
        rule = "privileged must be false or absent";
    else if (!json_is_true(json_object_get(sc, "readOnlyRootFilesystem")))
        rule = "readOnlyRootFilesystem must be true";
    else if (!drops_all)
        rule = "capabilities.drop must include ALL";
    else if (json_object_get(caps, "add"))
        rule = "capabilities.add must be absent";
    else if (json_object_get(sc, "seLinuxOptions") || json_object_get(sc, "procMount") ||
             json_object_get(sc, "windowsOptions"))
        rule = "seLinuxOptions, procMount and windowsOptions are not allowed";
    else if (!string_at(seccomp, "type") || strcmp(string_at(seccomp, "type"), "Localhost") != 0)
        rule = "seccompProfile.type must be Localhost";
    if (rule)
        return kube_fail(err, EINVAL, "policy %s: securityContext: %s", file, rule);

    const char *profile = string_at(seccomp, "localhostProfile");
    const char *slash = profile ? strrchr(profile, '/') : NULL;
    size_t dir_len = slash ? (size_t)(slash - profile) : 0;
    const char *base = slash ? slash + 1 : NULL;
    size_t base_len = base ? strlen(base) : 0;
    bool ok = slash && dir_len > 0 && dir_len < sizeof(p->seccomp_dir) && profile[0] != '/' &&
              !strstr(profile, "..") && base_len > 5 && strcmp(base + base_len - 5, ".json") == 0 &&
              profile_name_ok(base, base_len - 5);
    for (size_t k = 0; ok && k < dir_len; k++)
        ok = profile_name_ok(&profile[k], 1) || profile[k] == '/' || profile[k] == '.';
    if (!ok)
        return kube_fail(err, EINVAL,
                         "policy %s: securityContext.seccompProfile.localhostProfile must be "
                         "\"<directory>/<profile>.json\" below the kubelet's seccomp directory",
                         file);
    snprintf(p->seccomp_dir, sizeof(p->seccomp_dir), "%.*s", (int)dir_len, profile);
    snprintf(p->seccomp_default, sizeof(p->seccomp_default), "%.*s", (int)(base_len - 5), base);

    const char *tmp_path = string_at(doc, "tmpMountPath");
    const char *tmp_size = string_at(doc, "tmpSizeLimit");
    if (!tmp_path || tmp_path[0] != '/' || strlen(tmp_path) >= sizeof(p->tmp_path) ||
        strcmp(tmp_path, "/") == 0 || strncmp(tmp_path, "/dev", 4) == 0)
        return kube_fail(err, EINVAL, "policy %s: tmpMountPath must be an absolute path", file);
    unsigned long long bytes;
    char size_bytes[32];
    snprintf(size_bytes, sizeof(size_bytes), "%.*s", (int)strcspn(tmp_size ? tmp_size : "", "i"),
             tmp_size ? tmp_size : "");
    if (!tmp_size || strlen(tmp_size) >= sizeof(p->tmp_size) ||
        hks_parse_size(size_bytes, &bytes) < 0 || bytes == 0)
        return kube_fail(err, EINVAL, "policy %s: tmpSizeLimit must be a size such as 64Mi", file);
    snprintf(p->tmp_path, sizeof(p->tmp_path), "%s", tmp_path);
    snprintf(p->tmp_size, sizeof(p->tmp_size), "%s", tmp_size);
    p->security_context = json_deep_copy(sc);
    return p->security_context ? 0 : hks_fail(err, ENOMEM, "policy %s", file);
}

static int check_namespace(const json_t *doc, const char *file, const char *level, hks_error *err)
{
    if (!kind_is(doc, "v1", "Namespace"))
        return kube_fail(err, EINVAL, "policy %s: not a v1 Namespace", file);
    const json_t *labels = json_object_get(json_object_get(doc, "metadata"), "labels");
    const char *enforce = string_at(labels, "pod-security.kubernetes.io/enforce");
    if (!enforce || strcmp(enforce, level) != 0)
        return kube_fail(err, EINVAL,
                         "policy %s: label pod-security.kubernetes.io/enforce must be %s", file,
                         level);
    return 0;
}

int kube_policy_load(const char *dir, kube_policy **out, hks_error *err)
{
    *out = NULL;
    kube_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return hks_fail(err, ENOMEM, "policy");
    json_t *pod = NULL;
    int rc = -1;
    if (!(p->service_account = load_yaml_file(dir, "function-serviceaccount.yaml", err)) ||
        !(p->network_policy = load_yaml_file(dir, "function-networkpolicy.yaml", err)) ||
        !(p->namespace_functions = load_yaml_file(dir, "namespace-functions.yaml", err)) ||
        !(p->namespace_builds = load_yaml_file(dir, "namespace-builds.yaml", err)) ||
        !(pod = load_yaml_file(dir, "function-pod-security.yaml", err)))
        goto out;
    if (!kind_is(p->service_account, "v1", "ServiceAccount")) {
        kube_fail(err, EINVAL, "policy function-serviceaccount.yaml: not a v1 ServiceAccount");
        goto out;
    }
    if (!json_is_false(json_object_get(p->service_account, "automountServiceAccountToken"))) {
        kube_fail(err, EINVAL,
                  "policy function-serviceaccount.yaml: automountServiceAccountToken must be "
                  "false");
        goto out;
    }
    if (!kind_is(p->network_policy, "networking.k8s.io/v1", "NetworkPolicy")) {
        kube_fail(err, EINVAL,
                  "policy function-networkpolicy.yaml: not a networking.k8s.io/v1 "
                  "NetworkPolicy");
        goto out;
    }
    const json_t *types =
        json_object_get(json_object_get(p->network_policy, "spec"), "policyTypes");
    bool egress = false;
    size_t i;
    const json_t *t;
    json_array_foreach(types, i, t) egress |=
        json_is_string(t) && strcmp(json_string_value(t), "Egress") == 0;
    if (!egress) {
        kube_fail(err, EINVAL,
                  "policy function-networkpolicy.yaml: spec.policyTypes must include Egress "
                  "(egress is denied unless a rule allows it)");
        goto out;
    }
    if (check_namespace(p->namespace_functions, "namespace-functions.yaml", "restricted", err) <
            0 ||
        check_namespace(p->namespace_builds, "namespace-builds.yaml", "baseline", err) < 0 ||
        check_security_context(p, pod, "function-pod-security.yaml", err) < 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    json_decref(pod);
    kube_policy_free(p);
    return rc;
}

/* ---- rendering ---- */

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static bool image_by_digest(const char *image)
{
    const char *at = image ? strstr(image, "@sha256:") : NULL;
    if (!at || at == image || strlen(image) > 512 || !hex64(at + 8))
        return false;
    for (const char *p = image; p < at; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '@')
            return false;
    return true;
}

static int check_function(const kube_function *fn, hks_error *err)
{
    const char *bad = NULL;
    if (!kube_dns_label(fn->id) || strlen(fn->id) > 50)
        bad = "id (a DNS label of at most 50 characters)";
    else if (!kube_dns_label(fn->project))
        bad = "project (a label value)";
    else if (fn->ns && !kube_dns_label(fn->ns))
        bad = "ns (a namespace name)";
    else if (!fn->runtime || !kube_dns_label(fn->runtime))
        bad = "runtime";
    else if (!image_by_digest(fn->image))
        bad = "image (an image reference by digest: name@sha256:<64 hex>)";
    else if (!hex64(fn->code_sha256))
        bad = "code_sha256 (64 lower-case hex digits)";
    else if (fn->profile && !profile_name_ok(fn->profile, strlen(fn->profile)))
        bad = "profile (a seccomp profile name)";
    else if (fn->memory_mb == 0 || fn->memory_mb > 1048576)
        bad = "memory_mb";
    else if (fn->cpu_millis == 0 || fn->cpu_millis > 1000000)
        bad = "cpu_millis";
    else if (fn->timeout_s == 0 || fn->timeout_s > 600)
        bad = "timeout_s (1..600, Knative's max-revision-timeout-seconds)";
    else if (fn->concurrency > 1000)
        bad = "concurrency (0..1000)";
    else if (fn->max_scale && fn->min_scale > fn->max_scale)
        bad = "min_scale (above max_scale)";
    else if (fn->expires_at <= 0 || fn->expires_at > 253402300799LL)
        bad = "expires_at";
    else if (!fn->owner || !fn->owner[0] || strlen(fn->owner) > 255)
        bad = "owner";
    if (bad)
        return kube_fail(err, EINVAL, "function %.63s: invalid %s", fn->id ? fn->id : "?", bad);
    return 0;
}

/* Labels every object of fn carries. */
static json_t *function_labels(const kube_function *fn)
{
    return json_pack("{s:s, s:s, s:s}", KUBE_LABEL_MANAGED_BY, KUBE_MANAGER, KUBE_LABEL_FUNCTION,
                     fn->id, KUBE_LABEL_PROJECT, fn->project);
}

/* A copy of a policy object with metadata {name, namespace, labels += fn's}. */
static json_t *from_template(const json_t *tmpl, const kube_function *fn, hks_error *err)
{
    json_t *obj = json_deep_copy(tmpl);
    json_t *meta = obj ? json_object_get(obj, "metadata") : NULL;
    if (obj && !json_is_object(meta)) {
        meta = json_object();
        if (json_object_set_new(obj, "metadata", meta) < 0)
            meta = NULL;
    }
    json_t *labels = json_object_get(meta, "labels");
    if (meta && !json_is_object(labels)) {
        labels = json_object();
        if (json_object_set_new(meta, "labels", labels) < 0)
            labels = NULL;
    }
    json_t *ours = function_labels(fn);
    if (!labels || !ours || json_object_update(labels, ours) < 0 ||
        json_object_set_new(meta, "name", json_string(fn->id)) < 0 ||
        json_object_set_new(meta, "namespace", json_string(kube_function_ns(fn))) < 0) {
        json_decref(ours);
        json_decref(obj);
        hks_fail(err, ENOMEM, "render %s", fn->id);
        return NULL;
    }
    json_decref(ours);
    return obj;
}

json_t *kube_render_service_account(const kube_policy *p, const kube_function *fn, hks_error *err)
{
    if (check_function(fn, err) < 0)
        return NULL;
    return from_template(p->service_account, fn, err);
}

json_t *kube_render_network_policy(const kube_policy *p, const kube_function *fn, hks_error *err)
{
    if (check_function(fn, err) < 0)
        return NULL;
    json_t *np = from_template(p->network_policy, fn, err);
    if (!np)
        return NULL;
    json_t *spec = json_object_get(np, "spec");
    json_t *selector = json_pack("{s:{s:s}}", "matchLabels", "serving.knative.dev/service", fn->id);
    if (!json_is_object(spec) || json_object_set_new(spec, "podSelector", selector) < 0) {
        json_decref(np);
        kube_fail(err, ENOMEM, "render NetworkPolicy %s", fn->id);
        return NULL;
    }
    return np;
}

/* env of fn as a container's env list. */
json_t *kube_literal(const char *s)
{
    size_t n = strlen(s), dollars = 0;
    for (size_t i = 0; i < n; i++)
        dollars += s[i] == '$';
    char *out = malloc(n + dollars + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        out[o++] = s[i];
        if (s[i] == '$')
            out[o++] = '$';
    }
    out[o] = '\0';
    json_t *j = json_string(out);
    free(out);
    return j;
}

static json_t *render_env(const kube_function *fn, hks_error *err)
{
    static const char *const reserved[] = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"};
    json_t *list = json_array();
    for (size_t i = 0; list && fn->env && fn->env[i]; i++) {
        const char *kv = fn->env[i];
        size_t n = strcspn(kv, "=");
        bool ok = kv[n] == '=' && n > 0 && n < 256 && !(kv[0] >= '0' && kv[0] <= '9');
        for (size_t k = 0; ok && k < n; k++)
            ok = (kv[k] >= 'A' && kv[k] <= 'Z') || (kv[k] >= 'a' && kv[k] <= 'z') ||
                 (kv[k] >= '0' && kv[k] <= '9') || kv[k] == '_';
        for (size_t r = 0; ok && r < HKS_ARRAY_LEN(reserved); r++)
            ok = !(strlen(reserved[r]) == n && strncmp(kv, reserved[r], n) == 0);
        json_t *value = ok ? kube_literal(kv + n + 1) : NULL;
        if (!value) {
            json_decref(list);
            kube_fail(err, EINVAL,
                      "function %s: environment entry %zu is not NAME=value with a C identifier "
                      "name (not PORT or K_*) and a UTF-8 value",
                      fn->id, i);
            return NULL;
        }
        json_t *entry = json_pack("{s:s%, s:o}", "name", kv, n, "value", value);
        if (!entry || json_array_append_new(list, entry) < 0) {
            json_decref(list);
            hks_fail(err, ENOMEM, "render env");
            return NULL;
        }
    }
    if (!list)
        hks_fail(err, ENOMEM, "render env");
    return list;
}

static int rfc3339(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -1;
    return 0;
}

json_t *kube_render_kservice(const kube_policy *p, const kube_function *fn, hks_error *err)
{
    if (check_function(fn, err) < 0)
        return NULL;
    char expires[32], memory[24], cpu[24], min_scale[16], max_scale[16], profile[256];
    if (rfc3339(fn->expires_at, expires) < 0) {
        kube_fail(err, EINVAL, "function %s: invalid expires_at", fn->id);
        return NULL;
    }
    snprintf(memory, sizeof(memory), "%uMi", fn->memory_mb);
    snprintf(cpu, sizeof(cpu), "%um", fn->cpu_millis);
    snprintf(min_scale, sizeof(min_scale), "%u", fn->min_scale);
    snprintf(max_scale, sizeof(max_scale), "%u", fn->max_scale);
    snprintf(profile, sizeof(profile), "%s/%s.json", p->seccomp_dir,
             fn->profile ? fn->profile : p->seccomp_default);

    json_t *env = render_env(fn, err);
    json_t *sc = env ? json_deep_copy(p->security_context) : NULL;
    json_t *seccomp = json_object_get(sc, "seccompProfile");
    if (!env || !sc || json_object_set_new(seccomp, "localhostProfile", json_string(profile)) < 0) {
        json_decref(env);
        json_decref(sc);
        if (env)
            hks_fail(err, ENOMEM, "render Service %s", fn->id);
        return NULL;
    }
    json_t *labels = function_labels(fn);
    json_t *pod_labels = function_labels(fn);
    if (labels)
        json_object_set_new(labels, "networking.knative.dev/visibility",
                            json_string("cluster-local"));
    json_t *container = json_pack(
        "{s:s, s:s, s:[{s:s, s:i}], s:o, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:o, s:[{s:s, s:s}]}",
        "name", "function", "image", fn->image, "ports", "name", "http1", "containerPort", 8080,
        "env", env, "resources", "limits", "memory", memory, "cpu", cpu, "requests", "memory",
        memory, "cpu", cpu, "securityContext", sc, "volumeMounts", "name", "tmp", "mountPath",
        p->tmp_path);
    json_t *ksvc = NULL;
    if (container && labels && pod_labels)
        ksvc = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}},"
            " s:{s:{s:{s:o, s:{s:s, s:s}},"
            "       s:{s:s, s:b, s:I, s:I, s:[o], s:[{s:s, s:{s:s}}]}}}}",
            "apiVersion", "serving.knative.dev/v1", "kind", "Service", "metadata", "name", fn->id,
            "namespace", kube_function_ns(fn), "labels", labels, "annotations", "hks.io/expires-at",
            expires, "hks.io/owner", fn->owner, "hks.io/project", fn->project, "hks.io/code-sha256",
            fn->code_sha256, "hks.io/name", fn->name ? fn->name : "", "hks.io/runtime", fn->runtime,
            "spec", "template", "metadata", "labels", pod_labels, "annotations",
            "autoscaling.knative.dev/min-scale", min_scale, "autoscaling.knative.dev/max-scale",
            max_scale, "spec", "serviceAccountName", fn->id, "automountServiceAccountToken", 0,
            "containerConcurrency", (json_int_t)fn->concurrency, "timeoutSeconds",
            (json_int_t)fn->timeout_s, "containers", container, "volumes", "name", "tmp",
            "emptyDir", "sizeLimit", p->tmp_size);
    else {
        json_decref(container);
        json_decref(labels);
        json_decref(pod_labels);
    }
    if (!ksvc)
        kube_fail(err, EINVAL, "function %s: a name or an annotation is not valid UTF-8", fn->id);
    return ksvc;
}

json_t *kube_render_namespace(const kube_policy *p, const char *name, bool builds, hks_error *err)
{
    if (!kube_dns_label(name)) {
        kube_fail(err, EINVAL, "namespace \"%.63s\" is not a DNS label", name ? name : "");
        return NULL;
    }
    json_t *ns = json_deep_copy(builds ? p->namespace_builds : p->namespace_functions);
    json_t *meta = json_object_get(ns, "metadata");
    if (!ns || !json_is_object(meta) || json_object_set_new(meta, "name", json_string(name)) < 0) {
        json_decref(ns);
        hks_fail(err, ENOMEM, "render Namespace %s", name);
        return NULL;
    }
    return ns;
}

/* ---- what other renderers take from the policy ---- */

json_t *kube_policy_security_context(const kube_policy *p, const char *localhost_profile,
                                     hks_error *err)
{
    char profile[256];
    snprintf(profile, sizeof(profile), "%s/%s.json", p->seccomp_dir, p->seccomp_default);
    /* a template's own profile is kept when it is one of ours: <dir>/<name>.json */
    size_t dir_len = strlen(p->seccomp_dir), n = localhost_profile ? strlen(localhost_profile) : 0;
    if (n > dir_len + 6 && strncmp(localhost_profile, p->seccomp_dir, dir_len) == 0 &&
        localhost_profile[dir_len] == '/' && strcmp(localhost_profile + n - 5, ".json") == 0 &&
        profile_name_ok(localhost_profile + dir_len + 1, n - dir_len - 6))
        snprintf(profile, sizeof(profile), "%s", localhost_profile);
    json_t *sc = json_deep_copy(p->security_context);
    if (!sc || json_object_set_new(json_object_get(sc, "seccompProfile"), "localhostProfile",
                                   json_string(profile)) < 0) {
        json_decref(sc);
        hks_fail(err, ENOMEM, "render a securityContext");
        return NULL;
    }
    return sc;
}

const char *kube_policy_tmp_path(const kube_policy *p)
{
    return p->tmp_path;
}

const char *kube_policy_tmp_size(const kube_policy *p)
{
    return p->tmp_size;
}

const json_t *kube_policy_network_policy(const kube_policy *p)
{
    return p->network_policy;
}
