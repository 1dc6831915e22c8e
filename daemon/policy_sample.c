/* The Kubernetes objects a function gets on the kubernetes backend, rendered for a sample function
 * by the very renderers the backend sends with (cluster/render.c, from policies/kubernetes/), so
 * `hksd policy show` prints what would be sent, not the templates it is made from. */
#include "policy.h"

#include "../cluster/cluster.h"

#include <string.h>
#include <time.h>

#define SAMPLE_ID      "fn-0123456789abcdef0123"
#define SAMPLE_PROJECT "example-project"

static json_t *entry(json_t *object)
{
    json_t *meta = json_object_get(object, "metadata");
    return json_pack("{s:s?, s:s?, s:o}", "kind",
                     json_string_value(json_object_get(object, "kind")), "name",
                     json_string_value(json_object_get(meta, "name")), "object", object);
}

json_t *policy_kubernetes_sample(const hksd_config *cfg, hks_error *err)
{
    char dir[PATH_MAX + 16], ns[64], image[600], limits_path[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/kubernetes", cfg->policies_dir);
    snprintf(limits_path, sizeof(limits_path), "%s/limits.json", cfg->policies_dir);
    if (hksd_kube_namespace(cfg->kube_namespace, SAMPLE_PROJECT, ns, sizeof(ns)) < 0) {
        hks_fail(err, 0, "kubernetes.namespace '%s' gives no namespace for a project",
                 cfg->kube_namespace);
        return NULL;
    }
    hksd_policy_limits limits;
    if (hksd_policy_limits_load(limits_path, &limits, err) < 0)
        return NULL;
    kube_policy *policy = NULL;
    if (kube_policy_load(dir, &policy, err) < 0)
        return NULL;
    snprintf(image, sizeof(image), "%s/%s/%s@sha256:%064d",
             cfg->kube_registry[0] ? cfg->kube_registry : "registry.example", cfg->kube_repository,
             SAMPLE_PROJECT, 0);
    static const char *const env[] = {"GREETING=hello", NULL};
    kube_function fn = {
        .id = SAMPLE_ID,
        .name = "sample",
        .project = SAMPLE_PROJECT,
        .ns = ns,
        .owner = "agent-1",
        .runtime = "python",
        .image = image,
        .code_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        .env = env,
        .memory_mb = (unsigned)(limits.defaults.memory_bytes >> 20),
        .cpu_millis = (unsigned)limits.defaults.cpu_millis,
        .timeout_s = (unsigned)((limits.defaults.wall_ms + 999) / 1000),
        .concurrency = 10,
        .min_scale = 0,
        .max_scale = 2,
        .expires_at = (long long)time(NULL) + (long long)limits.ttl_default_s,
    };
    json_t *objects[] = {kube_render_namespace(policy, ns, false, err), NULL, NULL, NULL};
    if (objects[0])
        objects[1] = kube_render_service_account(policy, &fn, err);
    if (objects[1])
        objects[2] = kube_render_network_policy(policy, &fn, err);
    if (objects[2])
        objects[3] = kube_render_kservice(policy, &fn, err);
    kube_policy_free(policy);
    json_t *list = objects[3] ? json_array() : NULL;
    for (size_t i = 0; i < HKS_ARRAY_LEN(objects); i++) {
        if (list)
            json_array_append_new(list, entry(objects[i]));
        else
            json_decref(objects[i]);
    }
    if (!list)
        return NULL;
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:i}, s:o}", "sample",
                     "id", SAMPLE_ID, "project", SAMPLE_PROJECT, "namespace", ns, "runtime",
                     "python", "image", image, "memory_mb", (json_int_t)fn.memory_mb, "cpu_millis",
                     (json_int_t)fn.cpu_millis, "timeout_s", (json_int_t)fn.timeout_s,
                     "concurrency", 10, "min_scale", 0, "max_scale", 2, "objects", list);
}
