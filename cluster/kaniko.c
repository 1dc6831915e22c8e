/* A Dockerfile build on the cluster with Kaniko, for functions whose image needs RUN steps
 * (dependency installs). The build context (the deterministic tar.gz of builder/context.c) goes
 * into a ConfigMap's binaryData, which a Pod running the pinned executor mounts and reads as
 * --context=tar://...; the executor pushes to the destination with the credentials of a
 * dockerconfigjson Secret mounted at /kaniko/.docker and writes the image digest to
 * /dev/termination-log, which the kubelet hands back as the container's termination message.
 * Kaniko runs as root with a few capabilities, so the Pod lives in a namespace where Pod Security
 * "baseline" is enforced, away from functions (knative-kaniko.md §3). The Pod and the ConfigMap
 * are deleted on every path; kube_kaniko_reap removes those of a build hksd did not see end. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#define CONTEXT_KEY      "context.tar.gz"
#define CONTEXT_DIR      "/hks-build"
#define DOCKER_CONFIG    "/kaniko/.docker"
#define CONTAINER        "kaniko"
#define DEADLINE_DEFAULT 600u
#define DEADLINE_MAX     3600u
#define WAIT_MARGIN_MS   60000u
#define ROLE_LABEL       "hks.io/role"
#define BUILD_LABEL      "hks.io/build"
#define BUILD_SELECTOR   KUBE_SELECTOR_MANAGED "," ROLE_LABEL "=build"
#define CLEANUP_TIMEOUT  10000u

static bool hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Printable ASCII without spaces, not starting with '-' (it becomes a flag's value), 1..max. */
static bool plain_arg(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool image_by_digest(const char *image)
{
    const char *at = image ? strstr(image, "@sha256:") : NULL;
    return at && at > image && plain_arg(image, 512) && hex64(at + 8, strlen(at + 8)) &&
           !memchr(image, '@', (size_t)(at - image));
}

/* A registry/repository[:tag] to push to: Kaniko pushes to tags, never to a digest. */
static bool destination_ok(const char *d)
{
    return plain_arg(d, 512) && strchr(d, '/') && !strchr(d, '@') && d[strlen(d) - 1] != '/' &&
           d[strlen(d) - 1] != ':';
}

/* A relative path inside the context, without "..". */
static bool dockerfile_ok(const char *f)
{
    if (!plain_arg(f, 255) || f[0] == '/')
        return false;
    for (const char *p = f; (p = strstr(p, "..")); p += 2)
        if ((p == f || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return false;
    return true;
}

int kube_kaniko_resolve(const kube_kaniko_options *opt, kube_kaniko_settings *s, hks_error *err)
{
    static const kube_kaniko_options none = {0};
    if (!opt)
        opt = &none;
    *s = (kube_kaniko_settings){
        .ns = opt->ns ? opt->ns : KUBE_BUILD_NAMESPACE_DEFAULT,
        .image = opt->executor_image ? opt->executor_image : KUBE_KANIKO_EXECUTOR_DEFAULT,
        .secret = opt->registry_secret,
        .dockerfile = opt->dockerfile ? opt->dockerfile : "Dockerfile",
        .function_id = opt->function_id,
        .deadline_s = opt->deadline_s ? opt->deadline_s : DEADLINE_DEFAULT,
        .cpu_millis = opt->cpu_millis ? opt->cpu_millis : 1000,
        .memory_mb = opt->memory_mb ? opt->memory_mb : 2048,
        .ephemeral_mb = opt->ephemeral_mb ? opt->ephemeral_mb : 4096,
        .insecure = opt->insecure_registry,
    };
    s->wait_ms = opt->wait_ms ? opt->wait_ms : s->deadline_s * 1000u + WAIT_MARGIN_MS;
    const char *bad = NULL;
    if (!kube_dns_label(s->ns))
        bad = "ns (the build namespace, a DNS label)";
    else if (!image_by_digest(s->image))
        bad = "executor_image (an image by digest: name[:tag]@sha256:<64 hex>)";
    else if (s->secret && (!kube_dns_label(s->secret)))
        bad = "registry_secret (a Secret's name)";
    else if (!dockerfile_ok(s->dockerfile))
        bad = "dockerfile (a relative path inside the context)";
    else if (s->function_id && !kube_dns_label(s->function_id))
        bad = "function_id (a DNS label)";
    else if (s->deadline_s > DEADLINE_MAX)
        bad = "deadline_s (at most 3600)";
    else if (s->cpu_millis > 64000 || s->memory_mb > 262144 || s->ephemeral_mb > 1048576)
        bad = "cpu_millis, memory_mb or ephemeral_mb (too large)";
    if (bad)
        return kube_fail(err, EINVAL, "kaniko build: invalid %s", bad);
    return 0;
}

/* ---- rendering ---- */

static json_t *build_labels(const kube_kaniko_settings *s, const char *name)
{
    json_t *labels = json_pack("{s:s, s:s, s:s}", KUBE_LABEL_MANAGED_BY, KUBE_MANAGER, ROLE_LABEL,
                               "build", BUILD_LABEL, name);
    if (labels && s->function_id)
        json_object_set_new(labels, KUBE_LABEL_FUNCTION, json_string(s->function_id));
    return labels;
}

json_t *kube_render_kaniko_context(const kube_kaniko_settings *s, const char *name,
                                   const void *context, size_t len, hks_error *err)
{
    if (len > KUBE_KANIKO_CONTEXT_MAX) {
        kube_fail(err, EFBIG, "kaniko build: the build context is %zu bytes, more than %u", len,
                  KUBE_KANIKO_CONTEXT_MAX);
        return NULL;
    }
    /* EVP_EncodeBlock writes 4 bytes per 3 and a NUL, without line breaks */
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64) {
        hks_fail(err, ENOMEM, "kaniko build: encode the context");
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)b64, context, (int)len);
    json_t *labels = build_labels(s, name);
    json_t *cm = labels
                     ? json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:b, s:{s:s}}", "apiVersion", "v1",
                                 "kind", "ConfigMap", "metadata", "name", name, "namespace", s->ns,
                                 "labels", labels, "immutable", 1, "binaryData", CONTEXT_KEY, b64)
                     : NULL;
    free(b64);
    if (!cm)
        hks_fail(err, ENOMEM, "kaniko build: render ConfigMap %s", name);
    return cm;
}

json_t *kube_render_kaniko_pod(const kube_kaniko_settings *s, const char *name,
                               const char *destination, hks_error *err)
{
    if (!destination_ok(destination)) {
        kube_fail(err, EINVAL,
                  "kaniko build: invalid destination \"%.100s\" (registry/repository[:tag], "
                  "printable, no digest)",
                  destination ? destination : "");
        return NULL;
    }
    char context_arg[128], dockerfile_arg[300], destination_arg[600], cpu[24], memory[24],
        ephemeral[24];
    snprintf(context_arg, sizeof(context_arg), "--context=tar://%s/%s", CONTEXT_DIR, CONTEXT_KEY);
    snprintf(dockerfile_arg, sizeof(dockerfile_arg), "--dockerfile=%s", s->dockerfile);
    snprintf(destination_arg, sizeof(destination_arg), "--destination=%s", destination);
    snprintf(cpu, sizeof(cpu), "%um", s->cpu_millis);
    snprintf(memory, sizeof(memory), "%uMi", s->memory_mb);
    snprintf(ephemeral, sizeof(ephemeral), "%uMi", s->ephemeral_mb);

    json_t *args =
        json_pack("[s, s, s, s, s, s]", context_arg, dockerfile_arg, destination_arg,
                  "--digest-file=/dev/termination-log", "--snapshot-mode=redo", "--verbosity=info");
    if (args && s->insecure)
        json_array_append_new(args, json_string("--insecure"));
    json_t *mounts =
        json_pack("[{s:s, s:s, s:b}]", "name", "context", "mountPath", CONTEXT_DIR, "readOnly", 1);
    json_t *volumes = json_pack("[{s:s, s:{s:s, s:[{s:s, s:s}]}}]", "name", "context", "configMap",
                                "name", name, "items", "key", CONTEXT_KEY, "path", CONTEXT_KEY);
    if (s->secret && mounts && volumes) {
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", "docker-config",
                                                "mountPath", DOCKER_CONFIG, "readOnly", 1));
        json_array_append_new(volumes,
                              json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "name", "docker-config",
                                        "secret", "secretName", s->secret, "items", "key",
                                        ".dockerconfigjson", "path", "config.json"));
    }
    /* Kaniko unpacks images as root: it keeps the capabilities that needs (all within Pod
     * Security baseline) and nothing else (Shipwright's Kaniko strategy uses the same set) */
    json_t *container =
        json_pack("{s:s, s:s, s:o, s:s, s:s, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}},"
                  " s:{s:b, s:b, s:{s:[s], s:[s, s, s, s, s, s, s]}}, s:o}",
                  "name", CONTAINER, "image", s->image, "args", args, "terminationMessagePath",
                  "/dev/termination-log", "terminationMessagePolicy", "FallbackToLogsOnError",
                  "resources", "requests", "cpu", cpu, "memory", memory, "ephemeral-storage",
                  ephemeral, "limits", "cpu", cpu, "memory", memory, "ephemeral-storage", ephemeral,
                  "securityContext", "allowPrivilegeEscalation", 0, "privileged", 0, "capabilities",
                  "drop", "ALL", "add", "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID",
                  "SETFCAP", "KILL", "volumeMounts", mounts);
    json_t *labels = build_labels(s, name);
    json_t *pod = NULL;
    if (container && volumes && labels)
        pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:o},"
                        " s:{s:s, s:I, s:b, s:b, s:{s:{s:s}}, s:[o], s:o}}",
                        "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace",
                        s->ns, "labels", labels, "spec", "restartPolicy", "Never",
                        "activeDeadlineSeconds", (json_int_t)s->deadline_s,
                        "automountServiceAccountToken", 0, "enableServiceLinks", 0,
                        "securityContext", "seccompProfile", "type", "RuntimeDefault", "containers",
                        container, "volumes", volumes);
    else {
        json_decref(container);
        json_decref(volumes);
        json_decref(labels);
    }
    if (!pod)
        hks_fail(err, ENOMEM, "kaniko build: render Pod %s", name);
    return pod;
}

/* ---- the Pod's outcome ---- */

static const char *string_at(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "why: text" into out with control bytes replaced; a long text keeps its end (a log's last
 * lines say what went wrong). */
static void describe_text(char *out, size_t size, const char *prefix, const char *text)
{
    size_t n = strlen(prefix), len = text ? strlen(text) : 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, prefix, n);
    out[n] = '\0';
    if (!text)
        return;
    size_t room = size - n - 1;
    if (len > room && room > 4) {
        memcpy(out + n, "...", 3);
        kube_copy_printable(out + n + 3, size - n - 3, text + len - (room - 3), room - 3);
    } else {
        kube_copy_printable(out + n, size - n, text, len);
    }
}

/* The executor's container status in pod, or NULL. */
static const json_t *executor_status(const json_t *status)
{
    const json_t *list = json_object_get(status, "containerStatuses");
    size_t i;
    const json_t *cs;
    json_array_foreach(list, i, cs)
    {
        const char *name = string_at(cs, "name");
        if (name && strcmp(name, CONTAINER) == 0)
            return cs;
    }
    return json_array_size(list) == 1 ? json_array_get(list, 0) : NULL;
}

void kube_kaniko_outcome(const json_t *pod, kube_build_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->state = KUBE_BUILD_RUNNING;
    out->errnum = EIO;
    const json_t *status = json_object_get(pod, "status");
    const char *phase = string_at(status, "phase");
    const char *reason = string_at(status, "reason");
    describe_text(out->why, sizeof(out->why), "phase ", phase ? phase : "unknown");
    if (reason && strcmp(reason, "DeadlineExceeded") == 0) {
        out->state = KUBE_BUILD_FAILED;
        out->errnum = ETIMEDOUT;
        describe_text(out->why, sizeof(out->why),
                      "past its activeDeadlineSeconds: ", string_at(status, "message"));
        return;
    }
    const json_t *cs = executor_status(status);
    const json_t *state = json_object_get(cs, "state");
    const json_t *terminated = json_object_get(state, "terminated");
    const json_t *waiting = json_object_get(state, "waiting");
    if (json_is_object(terminated)) {
        const json_t *code = json_object_get(terminated, "exitCode");
        const char *message = string_at(terminated, "message");
        if (!json_is_integer(code)) {
            out->state = KUBE_BUILD_FAILED;
            snprintf(out->why, sizeof(out->why), "the executor ended without an exit code");
            return;
        }
        if (json_integer_value(code) != 0) {
            char prefix[128];
            const char *r = string_at(terminated, "reason");
            snprintf(prefix, sizeof(prefix), "the executor failed with exit code %lld (%.32s): ",
                     (long long)json_integer_value(code), r ? r : "no reason");
            kube_copy_printable(prefix, sizeof(prefix), prefix, strlen(prefix));
            out->state = KUBE_BUILD_FAILED;
            describe_text(out->why, sizeof(out->why), prefix,
                          message && *message ? message : "no message");
            return;
        }
        /* --digest-file=/dev/termination-log: the message is the digest, nothing else */
        size_t n = message ? strlen(message) : 0;
        while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' ' || message[n - 1] == '\r'))
            n--;
        if (n == 71 && strncmp(message, "sha256:", 7) == 0 && hex64(message + 7, 64)) {
            out->state = KUBE_BUILD_SUCCEEDED;
            memcpy(out->digest, message, 71);
            out->digest[71] = '\0';
            out->why[0] = '\0';
            return;
        }
        out->state = KUBE_BUILD_FAILED;
        describe_text(out->why, sizeof(out->why),
                      "the executor exited 0 without a digest (sha256:<64 hex>) as its "
                      "termination message: ",
                      message ? message : "none");
        return;
    }
    const char *waiting_reason = string_at(waiting, "reason");
    /* what does not heal by waiting: a bad image name, a missing Secret or ConfigMap */
    static const char *const fatal[] = {"InvalidImageName", "CreateContainerConfigError",
                                        "CreateContainerError", "ErrImageNeverPull"};
    if (waiting_reason) {
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "waiting, %.40s: ", waiting_reason);
        kube_copy_printable(prefix, sizeof(prefix), prefix, strlen(prefix));
        describe_text(out->why, sizeof(out->why), prefix, string_at(waiting, "message"));
        for (size_t i = 0; i < HKS_ARRAY_LEN(fatal); i++)
            if (strcmp(waiting_reason, fatal[i]) == 0)
                out->state = KUBE_BUILD_FAILED;
        return;
    }
    if (phase && (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0)) {
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "the Pod is %.16s without the executor's status: %.32s ",
                 phase, reason ? reason : "");
        kube_copy_printable(prefix, sizeof(prefix), prefix, strlen(prefix));
        out->state = KUBE_BUILD_FAILED;
        describe_text(out->why, sizeof(out->why), prefix, string_at(status, "message"));
    }
}

/* ---- the build ---- */

typedef struct build_wait {
    const char *name;
    kube_build_outcome outcome;
    bool gone;
} build_wait;

static int on_pod(void *ctx, const char *type, json_t *obj, hks_error *err)
{
    (void)err;
    build_wait *w = ctx;
    const char *name = string_at(json_object_get(obj, "metadata"), "name");
    if (!name || strcmp(name, w->name) != 0)
        return 0;
    if (strcmp(type, "DELETED") == 0) {
        w->gone = true;
        return 1;
    }
    kube_kaniko_outcome(obj, &w->outcome);
    return w->outcome.state == KUBE_BUILD_RUNNING ? 0 : 1;
}

/* The namespace exists with Pod Security baseline enforced: created from the policy when
 * missing (p not NULL), refused when labelled otherwise (restricted would refuse the Pod,
 * privileged would let more than Kaniko needs run). */
static int ensure_namespace(kube_client *c, const kube_policy *p, const char *ns, hks_error *err)
{
    json_t *current = NULL;
    if (kube_get(c, KUBE_NAMESPACE, NULL, ns, &current, err) < 0) {
        if (err->errnum != ENOENT || !p)
            return hks_wrap(err, "kaniko build: build namespace %s", ns);
        json_t *rendered = kube_render_namespace(p, ns, true, err);
        int rc = rendered ? kube_create(c, KUBE_NAMESPACE, NULL, rendered, &current, err) : -1;
        json_decref(rendered);
        if (rc < 0 && err->errnum == EEXIST) /* another node made it meanwhile */
            rc = kube_get(c, KUBE_NAMESPACE, NULL, ns, &current, err);
        if (rc < 0)
            return hks_wrap(err, "kaniko build: create the build namespace %s", ns);
    }
    const json_t *labels = json_object_get(json_object_get(current, "metadata"), "labels");
    const char *enforce = string_at(labels, "pod-security.kubernetes.io/enforce");
    char shown[64];
    kube_copy_printable(shown, sizeof(shown), enforce ? enforce : "(none)",
                        enforce ? strlen(enforce) : 6);
    bool baseline = enforce && strcmp(enforce, "baseline") == 0;
    json_decref(current);
    if (!baseline)
        return kube_fail(err, EACCES,
                         "kaniko build: namespace %s enforces Pod Security \"%s\", not "
                         "\"baseline\": builds run only in a namespace labelled "
                         "pod-security.kubernetes.io/enforce=baseline "
                         "(policies/kubernetes/namespace-builds.yaml)",
                         ns, shown);
    return 0;
}

static int new_build_name(char out[48], hks_error *err)
{
    unsigned char raw[10];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return hks_fail(err, errno, "kaniko build: getrandom");
    int n = snprintf(out, 48, "hks-build-");
    for (size_t i = 0; i < sizeof(raw); i++)
        n += snprintf(out + n, (size_t)(48 - n), "%02x", raw[i]);
    return 0;
}

/* Delete what the build created (404: already gone). Returns -1 with err naming what is left. */
static int delete_build_objects(kube_client *c, const char *ns, const char *name, bool pod,
                                bool config_map, hks_error *err)
{
    const kube_kind kinds[] = {KUBE_POD, KUBE_CONFIG_MAP};
    const bool wanted[] = {pod, config_map};
    int rc = 0;
    for (size_t i = 0; i < HKS_ARRAY_LEN(kinds); i++) {
        hks_error one = {0};
        if (!wanted[i] ||
            kube_delete(c, kinds[i], ns, name, KUBE_PROPAGATE_BACKGROUND, &one) == 0 ||
            one.errnum == ENOENT)
            continue;
        if (rc == 0)
            *err = one;
        rc = -1;
    }
    return rc;
}

/* err (the build's failure, or none) with the cleanup's failure added. */
static int cleanup_after(kube_client *c, const char *ns, const char *name, bool pod,
                         bool config_map, int rc, const char *digest, hks_error *err)
{
    hks_error cleanup = {0};
    if (delete_build_objects(c, ns, name, pod, config_map, &cleanup) == 0)
        return rc;
    if (rc < 0) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n, "; and the build's objects are left: %s",
                 cleanup.msg);
        return -1;
    }
    return kube_fail(err, cleanup.errnum ? cleanup.errnum : EIO,
                     "kaniko build %s pushed %s, but its objects are left (kube_kaniko_reap "
                     "removes them): %s",
                     name, digest, cleanup.msg);
}

static int wait_for_build(kube_client *c, const kube_kaniko_settings *s, const char *name,
                          char digest[72], hks_error *err)
{
    char selector[128];
    snprintf(selector, sizeof(selector), "metadata.name=%s", name);
    build_wait w = {.name = name};
    snprintf(w.outcome.why, sizeof(w.outcome.why), "not scheduled yet");
    kube_watch_options wopt = {.field_selector = selector, .timeout_ms = s->wait_ms};
    int rc = kube_list_watch(c, KUBE_POD, s->ns, &wopt, on_pod, &w, err);
    if (rc < 0 && err->errnum == ETIMEDOUT)
        return kube_fail(err, ETIMEDOUT,
                         "kaniko build %s in namespace %s: no result within %u ms "
                         "(last seen: %s)",
                         name, s->ns, s->wait_ms, w.outcome.why);
    if (rc < 0)
        return hks_wrap(err, "kaniko build %s: wait for the Pod", name);
    if (w.gone)
        return kube_fail(err, EIO,
                         "kaniko build %s in namespace %s: the Pod was deleted while "
                         "building",
                         name, s->ns);
    if (w.outcome.state == KUBE_BUILD_FAILED)
        return kube_fail(err, w.outcome.errnum, "kaniko build %s in namespace %s: %s", name, s->ns,
                         w.outcome.why);
    memcpy(digest, w.outcome.digest, sizeof(w.outcome.digest));
    return 0;
}

int kube_kaniko_build(kube_client *c, const kube_policy *p, const kube_kaniko_options *opt,
                      const void *context, size_t context_len, const char *destination,
                      char digest[72], hks_error *err)
{
    digest[0] = '\0';
    kube_kaniko_settings s;
    if (kube_kaniko_resolve(opt, &s, err) < 0)
        return -1;
    /* refused before anything is created */
    if (context_len > KUBE_KANIKO_CONTEXT_MAX)
        return kube_fail(err, EFBIG,
                         "kaniko build: the build context is %zu bytes, more than the %u bytes "
                         "(1 MiB) a ConfigMap holds; build this function with the layer "
                         "strategy or make its files smaller",
                         context_len, KUBE_KANIKO_CONTEXT_MAX);
    const unsigned char *bytes = context;
    if (!context || context_len < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b)
        return kube_fail(err, EINVAL,
                         "kaniko build: the build context is not a gzip-compressed tar (Kaniko's "
                         "tar:// context must be one)");
    char name[48];
    if (new_build_name(name, err) < 0)
        return -1;
    json_t *config_map = kube_render_kaniko_context(&s, name, context, context_len, err);
    json_t *pod = config_map ? kube_render_kaniko_pod(&s, name, destination, err) : NULL;
    int rc = pod ? ensure_namespace(c, p, s.ns, err) : -1;
    bool made_config_map = false, made_pod = false;
    if (rc == 0 && (rc = kube_create(c, KUBE_CONFIG_MAP, s.ns, config_map, NULL, err)) == 0)
        made_config_map = true;
    if (rc == 0 && (rc = kube_create(c, KUBE_POD, s.ns, pod, NULL, err)) == 0)
        made_pod = true;
    json_decref(config_map);
    json_decref(pod);
    if (rc < 0 && (made_config_map || made_pod))
        hks_wrap(err, "kaniko build %s", name);
    if (rc == 0)
        rc = wait_for_build(c, &s, name, digest, err);
    rc = cleanup_after(c, s.ns, name, made_pod, made_config_map, rc, digest, err);
    if (rc < 0 && !(made_pod && digest[0]))
        digest[0] = '\0';
    return rc;
}

int kube_kaniko_reap(kube_client *c, const char *ns, long long older_than_s, unsigned *deleted,
                     hks_error *err)
{
    unsigned count = 0;
    long long cutoff = (long long)time(NULL) - older_than_s;
    const kube_kind kinds[] = {KUBE_POD, KUBE_CONFIG_MAP};
    for (size_t k = 0; k < HKS_ARRAY_LEN(kinds); k++) {
        json_t *items = NULL;
        if (kube_list(c, kinds[k], ns, BUILD_SELECTOR, NULL, &items, NULL, 0, err) < 0)
            return hks_wrap(err, "kaniko reap");
        size_t i;
        json_t *item;
        int rc = 0;
        json_array_foreach(items, i, item)
        {
            const json_t *meta = json_object_get(item, "metadata");
            long long created = kube_time_parse(string_at(meta, "creationTimestamp"));
            const char *name = string_at(meta, "name");
            const char *item_ns = string_at(meta, "namespace");
            if (!name || !item_ns || created < 0 || created > cutoff)
                continue;
            if (kube_delete(c, kinds[k], item_ns, name, KUBE_PROPAGATE_BACKGROUND, err) == 0)
                count++;
            else if (err->errnum != ENOENT) {
                rc = hks_wrap(err, "kaniko reap");
                break;
            }
        }
        json_decref(items);
        if (rc < 0)
            return -1;
    }
    if (deleted)
        *deleted = count;
    memset(err, 0, sizeof(*err));
    return 0;
}
