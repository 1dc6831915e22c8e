/* What the daemon does with a function on a cluster: apply its objects, wait until Knative says it
 * is ready, delete it from any node (404 is done), and list what hksd deployed for the reaper.
 * Kubernetes is the source of truth: every fact read here comes from the objects' labels,
 * annotations and status. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int kube_function_apply(kube_client *c, const kube_policy *p, const kube_function *fn,
                        hks_error *err)
{
    /* everything is rendered (and so checked) before anything is sent */
    json_t *objs[] = {kube_render_service_account(p, fn, err), NULL, NULL};
    if (objs[0])
        objs[1] = kube_render_network_policy(p, fn, err);
    if (objs[1])
        objs[2] = kube_render_kservice(p, fn, err);
    const kube_kind kinds[] = {KUBE_SERVICE_ACCOUNT, KUBE_NETWORK_POLICY, KUBE_KSERVICE};
    int rc = objs[2] ? 0 : -1;
    /* create, never replace: a function's id is new on every deploy, so an object already there
     * is a leftover to clean up, not one to overwrite, and hksd needs no "update" on them (RBAC) */
    for (size_t i = 0; rc == 0 && i < HKS_ARRAY_LEN(kinds); i++)
        if (kube_create(c, kinds[i], kube_function_ns(fn), objs[i], NULL, err) < 0)
            rc = hks_wrap(err, "deploy %s", fn->id);
    for (size_t i = 0; i < HKS_ARRAY_LEN(objs); i++)
        json_decref(objs[i]);
    return rc;
}

typedef struct ready_wait {
    const char *id;
    char *url;
    size_t url_size;
    char why[512];
    bool failed, gone;
} ready_wait;

static int on_kservice(void *ctx, const char *type, json_t *obj, hks_error *err)
{
    (void)err;
    ready_wait *w = ctx;
    const json_t *name = json_object_get(json_object_get(obj, "metadata"), "name");
    if (!json_is_string(name) || strcmp(json_string_value(name), w->id) != 0)
        return 0;
    if (strcmp(type, "DELETED") == 0) {
        w->gone = true;
        return 1;
    }
    kube_readiness r = kube_kservice_readiness(obj, w->url, w->url_size, w->why, sizeof(w->why));
    if (r == KUBE_FAILED)
        w->failed = true;
    return r == KUBE_NOT_READY ? 0 : 1;
}

int kube_function_wait_ready(kube_client *c, const char *ns, const char *id, unsigned timeout_ms,
                             char *url, size_t url_size, hks_error *err)
{
    char selector[128];
    snprintf(selector, sizeof(selector), "metadata.name=%.63s", id);
    ready_wait w = {.id = id, .url = url, .url_size = url_size};
    snprintf(w.why, sizeof(w.why), "not reconciled yet");
    kube_watch_options opt = {.field_selector = selector, .timeout_ms = timeout_ms};
    /* a function that does not exist will never be ready: say so at once */
    json_t *current = NULL;
    if (kube_get(c, KUBE_KSERVICE, ns, id, &current, err) < 0)
        return hks_wrap(err, "wait for function %s", id);
    json_decref(current);
    /* then the list of one (a field selector) and a watch from it, listing again after 410 */
    int rc = kube_list_watch(c, KUBE_KSERVICE, ns, &opt, on_kservice, &w, err);
    if (rc < 0) {
        if (err->errnum == ETIMEDOUT)
            return kube_fail(err, ETIMEDOUT,
                             "function %s in namespace %s: not ready within %u ms (%s)", id, ns,
                             timeout_ms, w.why);
        return hks_wrap(err, "wait for function %s", id);
    }
    if (w.gone)
        return kube_fail(err, ENOENT, "function %s in namespace %s: deleted while waiting", id, ns);
    if (w.failed)
        return kube_fail(err, EIO, "function %s in namespace %s: Knative reports %s", id, ns,
                         w.why);
    return 0;
}

int kube_function_delete(kube_client *c, const char *ns, const char *id, unsigned *deleted,
                         hks_error *err)
{
    const kube_kind kinds[] = {KUBE_KSERVICE, KUBE_NETWORK_POLICY, KUBE_SERVICE_ACCOUNT};
    unsigned count = 0;
    for (size_t i = 0; i < HKS_ARRAY_LEN(kinds); i++) {
        if (kube_delete(c, kinds[i], ns, id, KUBE_PROPAGATE_BACKGROUND, err) == 0) {
            count++;
            continue;
        }
        if (err->errnum != ENOENT) /* another node got there first: that is success */
            return hks_wrap(err, "delete function %s", id);
    }
    if (deleted)
        *deleted = count;
    memset(err, 0, sizeof(*err));
    return 0;
}

static void copy_field(char *out, size_t size, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t n = 0;
    for (; s[n] && n + 1 < size; n++)
        out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? ' ' : s[n];
    out[n] = '\0';
}

int kube_function_list(kube_client *c, const char *ns, kube_function_info **out, size_t *count,
                       hks_error *err)
{
    *out = NULL;
    *count = 0;
    json_t *items = NULL;
    if (kube_list(c, KUBE_KSERVICE, ns, KUBE_SELECTOR_MANAGED, NULL, &items, NULL, 0, err) < 0)
        return hks_wrap(err, "list functions");
    size_t n = json_array_size(items);
    kube_function_info *infos = calloc(n ? n : 1, sizeof(*infos));
    if (!infos) {
        json_decref(items);
        return hks_fail(err, ENOMEM, "list functions");
    }
    size_t used = 0, i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        const json_t *meta = json_object_get(item, "metadata");
        const json_t *labels = json_object_get(meta, "labels");
        const json_t *annotations = json_object_get(meta, "annotations");
        kube_function_info *f = &infos[used];
        copy_field(f->id, sizeof(f->id), labels, KUBE_LABEL_FUNCTION);
        copy_field(f->ns, sizeof(f->ns), meta, "namespace");
        if (!kube_dns_label(f->id) || !kube_dns_label(f->ns))
            continue;
        copy_field(f->project, sizeof(f->project), labels, KUBE_LABEL_PROJECT);
        copy_field(f->runtime, sizeof(f->runtime), annotations, "hks.io/runtime");
        copy_field(f->owner, sizeof(f->owner), annotations, "hks.io/owner");
        copy_field(f->code_sha256, sizeof(f->code_sha256), annotations, "hks.io/code-sha256");
        char expires[40];
        copy_field(expires, sizeof(expires), annotations, "hks.io/expires-at");
        f->expires_at = kube_time_parse(expires);
        f->readiness = kube_kservice_readiness(item, f->url, sizeof(f->url), NULL, 0);
        used++;
    }
    json_decref(items);
    *out = infos;
    *count = used;
    return 0;
}
