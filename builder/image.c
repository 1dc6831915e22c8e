/* Function images, "layer" strategy: the runtime's base image plus one layer holding the code
 * (/code) and the launcher (/hks/runtime), with a config that runs the launcher. No Dockerfile
 * runs and nothing executes: the layer is a tar written here, the config and manifest are JSON
 * written here, and the result is an OCI image layout that `hksd push` (or skopeo) publishes.
 *
 * Determinism: the layer is a deterministic tar.gz (tarball.c), the config keeps the base's
 * "created" time (or the epoch) instead of now, and config, manifest and index are serialised
 * with sorted keys, so the same base, code and runtime give the same manifest digest. */
#include "build_internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* uid and gid: with a bare "1000" the runtime takes the gid from the image's /etc/passwd, which
 * has no such user in most bases, so the process would run in group 0 (root). The Dockerfile
 * templates say USER 1000:1000 for the same reason; both strategies give the same identity. */
#define IMAGE_USER      "1000:1000"
#define IMAGE_PORT      "8080"
#define EPOCH           "1970-01-01T00:00:00Z"
#define REF_NAME_MAX    255
#define ANNOTATION_BASE "org.opencontainers.image.base.digest"

/* The ref.name grammar of the image-layout spec: components of alphanumerics joined by one of
 * "-._:@+" (or "--"), separated by '/'. */
static bool ref_name_valid(const char *ref)
{
    size_t len = strlen(ref);
    if (len == 0 || len > REF_NAME_MAX)
        return false;
    bool need_alnum = true; /* at the start of a component and after a separator */
    for (size_t i = 0; i < len; i++) {
        char c = ref[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum) {
            need_alnum = false;
        } else if (need_alnum) {
            /* "--" is the one two-character separator */
            if (!(c == '-' && i > 0 && ref[i - 1] == '-' && i > 1 && ref[i - 2] != '-'))
                return false;
        } else if (c == '/' || strchr("-._:@+", c)) {
            need_alnum = true;
        } else {
            return false;
        }
    }
    return !need_alnum;
}

static size_t env_key_len(const char *var)
{
    const char *eq = strchr(var, '=');
    return eq ? (size_t)(eq - var) : strlen(var);
}

/* Base Env with ours: a variable the base sets is replaced in place, the others appended. */
static json_t *merge_env(json_t *base_env, const char *const *ours, size_t n)
{
    json_t *env = json_array();
    bool used[16] = {false};
    if (!env || n > HKS_ARRAY_LEN(used))
        return json_decref(env), NULL;
    size_t i;
    json_t *v;
    json_array_foreach(base_env, i, v)
    {
        const char *var = json_string_value(v);
        if (!var)
            continue;
        const char *pick = var;
        size_t key = env_key_len(var);
        for (size_t k = 0; k < n; k++) {
            if (env_key_len(ours[k]) == key && strncmp(var, ours[k], key) == 0) {
                pick = used[k] ? NULL : ours[k]; /* set twice in the base: once here */
                used[k] = true;
            }
        }
        if (pick && json_array_append_new(env, json_string(pick)) < 0)
            return json_decref(env), NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if (!used[k] && json_array_append_new(env, json_string(ours[k])) < 0)
            return json_decref(env), NULL;
    }
    return env;
}

/* The base's config, made to run the function. */
static json_t *compose_config(const bld_base *base, const bld_runtime *rt, const char *diff_id)
{
    json_t *cfg = json_deep_copy(base->config);
    if (!cfg)
        return NULL;
    const char *created = json_string_value(json_object_get(cfg, "created"));
    if (!created)
        created = EPOCH;
    json_t *history = json_object_get(cfg, "history");
    if (!json_is_array(history)) {
        /* one entry per base layer, so that ours still describes the last layer */
        history = json_array();
        for (size_t i = 0; history && i < json_array_size(base->layers); i++)
            json_array_append_new(
                history, json_pack("{s:s,s:s}", "created", created, "comment", "base image layer"));
        json_object_set_new(cfg, "history", history);
    }
    char created_by[160], comment[160];
    snprintf(created_by, sizeof(created_by), "hksd build --runtime %s (layer strategy)", rt->name);
    snprintf(comment, sizeof(comment),
             "the function's code in /code, the %s launcher in "
             "/hks/runtime",
             rt->name);
    json_t *entry = json_pack("{s:s,s:s,s:s}", "created", created, "created_by", created_by,
                              "comment", comment);
    json_t *config = json_object_get(cfg, "config");
    if (!json_is_object(config)) {
        config = json_object();
        json_object_set_new(cfg, "config", config);
    }
    const char *env_ours[16];
    size_t n = 0;
    for (const char *const *e = rt->env; *e && n < HKS_ARRAY_LEN(env_ours) - 2; e++)
        env_ours[n++] = *e;
    env_ours[n++] = "PORT=" IMAGE_PORT;
    env_ours[n++] = "HKS_FUNCTION_DIR=/code";
    char launcher[128];
    snprintf(launcher, sizeof(launcher), "/hks/runtime/%s", rt->launcher);
    json_t *env = merge_env(json_object_get(config, "Env"), env_ours, n);
    /* Cmd goes: the base's (["node"], ["python3"], ["/bin/sh"]) would become our arguments */
    json_object_del(config, "Cmd");
    if (!entry || !env || !history || json_array_append_new(history, entry) < 0 ||
        json_object_set_new(cfg, "created", json_string(created)) < 0 ||
        json_array_append_new(json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"),
                              json_string(diff_id)) < 0 ||
        json_object_set_new(config, "Env", env) < 0 ||
        json_object_set_new(config, "User", json_string(IMAGE_USER)) < 0 ||
        json_object_set_new(config, "WorkingDir", json_string("/code")) < 0 ||
        json_object_set_new(config, "Entrypoint",
                            json_pack("[s,s,s]", rt->interpreter, launcher, "serve")) < 0 ||
        json_object_set_new(config, "ExposedPorts", json_pack("{s:{}}", IMAGE_PORT "/tcp")) < 0 ||
        json_object_set_new(config, "StopSignal", json_string("SIGTERM")) < 0) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

static char *dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

typedef struct build {
    const bld_image_input *in;
    const bld_runtime *rt;
    bld_layout base, out;
    bld_base img;
    bld_image_result *res;
    hks_error *err;
} build;

/* The new layer, streamed into the layout: code at /code, launcher at /hks/runtime. */
static int write_layer(build *b, bld_tar_result *tar)
{
    char runtime_dir[PATH_MAX], tmp[64];
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/%s", b->in->runtimes_dir, b->rt->name);
    cleanup_fd int fd = bld_blob_begin(&b->out, tmp, b->err);
    if (fd < 0)
        return -1;
    __attribute__((cleanup(bld_entries_free))) bld_entries l = {0};
    if (bld_entries_add_tree(&l, b->in->code_dir, "code", NULL, "function code", b->err) < 0 ||
        bld_entries_add_tree(&l, runtime_dir, "hks/runtime", bld_runtime_skip, "runtime", b->err) <
            0 ||
        bld_tar_write(&l, fd, NULL, NULL, tar, b->err) < 0) {
        unlinkat(b->out.blobs, tmp, 0);
        return hks_wrap(b->err, "layer");
    }
    return bld_blob_commit(&b->out, tmp, tar->digest, b->err);
}

static int write_index(build *b, const char *manifest_digest, size_t manifest_size)
{
    const char *ref = b->in->ref_name ? b->in->ref_name : "latest";
    json_t *platform =
        json_pack("{s:O,s:O}", "architecture", json_object_get(b->img.config, "architecture"), "os",
                  json_object_get(b->img.config, "os"));
    json_t *variant = json_object_get(b->img.config, "variant");
    if (platform && json_is_string(variant))
        json_object_set(platform, "variant", variant);
    json_t *index =
        json_pack("{s:i,s:s,s:[{s:s,s:s,s:I,s:o,s:{s:s}}]}", "schemaVersion", 2, "mediaType",
                  BLD_MT_OCI_INDEX, "manifests", "mediaType", BLD_MT_OCI_MANIFEST, "digest",
                  manifest_digest, "size", (json_int_t)manifest_size, "platform", platform,
                  "annotations", BLD_ANNOTATION_REF, ref);
    cleanup_free char *text = dump(index);
    json_decref(index);
    if (!text)
        return hks_fail(b->err, ENOMEM, "image layout %s: index.json", b->out.path);
    static const char marker[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    if (bld_layout_put_file(&b->out, "oci-layout", marker, sizeof(marker) - 1, b->err) < 0)
        return -1;
    return bld_layout_put_file(&b->out, "index.json", text, strlen(text), b->err);
}

static int run(build *b)
{
    size_t i;
    json_t *layer;
    json_array_foreach(b->img.layers, i, layer)
    {
        const char *digest = json_string_value(json_object_get(layer, "digest"));
        json_int_t size = json_integer_value(json_object_get(layer, "size"));
        if (bld_blob_copy(&b->base, &b->out, digest, size, b->err) < 0)
            return -1;
    }
    bld_tar_result tar;
    if (write_layer(b, &tar) < 0)
        return -1;
    json_t *cfg = compose_config(&b->img, b->rt, tar.diff_id);
    cleanup_free char *cfg_text = dump(cfg);
    json_decref(cfg);
    if (!cfg_text)
        return hks_fail(b->err, ENOMEM, "image config");
    size_t cfg_len = strlen(cfg_text);
    char cfg_digest[72];
    if (bld_blob_put(&b->out, cfg_text, cfg_len, cfg_digest, b->err) < 0)
        return -1;
    json_t *layers = json_deep_copy(b->img.layers);
    if (!layers ||
        json_array_append_new(layers, json_pack("{s:s,s:s,s:I}", "mediaType", BLD_MT_OCI_LAYER_GZIP,
                                                "digest", tar.digest, "size",
                                                (json_int_t)tar.gz_size)) < 0) {
        json_decref(layers);
        return hks_fail(b->err, ENOMEM, "image manifest");
    }
    json_t *manifest =
        json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:o,s:{s:s}}", "schemaVersion", 2, "mediaType",
                  BLD_MT_OCI_MANIFEST, "config", "mediaType", BLD_MT_OCI_CONFIG, "digest",
                  cfg_digest, "size", (json_int_t)cfg_len, "layers", layers, "annotations",
                  ANNOTATION_BASE, b->img.manifest_digest);
    cleanup_free char *text = dump(manifest);
    json_decref(manifest);
    if (!text)
        return hks_fail(b->err, ENOMEM, "image manifest");
    size_t len = strlen(text);
    char digest[72];
    if (bld_blob_put(&b->out, text, len, digest, b->err) < 0 || write_index(b, digest, len) < 0)
        return -1;
    memcpy(b->res->manifest_digest, digest, sizeof(digest));
    memcpy(b->res->config_digest, cfg_digest, sizeof(cfg_digest));
    memcpy(b->res->layer_digest, tar.digest, sizeof(tar.digest));
    memcpy(b->res->layer_diff_id, tar.diff_id, sizeof(tar.diff_id));
    b->res->manifest_size = len;
    return 0;
}

static int check_input(const bld_image_input *in, const char *layout_dir, const bld_runtime **rt,
                       hks_error *err)
{
    if (!in || !in->code_dir || !in->runtimes_dir || !in->base_layout || !layout_dir)
        return hks_fail(err, EINVAL,
                        "image: runtime, code_dir, runtimes_dir, base_layout and the layout "
                        "directory are required");
    if (!(*rt = bld_runtime_find(in->runtime, err)))
        return -1;
    if (in->ref_name && !ref_name_valid(in->ref_name))
        return hks_fail(err, 0,
                        "image: ref name '%.300s' is not valid (letters and digits, joined by "
                        "one of -._:@+ or --, parts separated by /)",
                        in->ref_name);
    char launcher[PATH_MAX];
    struct stat st;
    snprintf(launcher, sizeof(launcher), "%s/%s/%s", in->runtimes_dir, (*rt)->name,
             (*rt)->launcher);
    if (stat(launcher, &st) < 0)
        return hks_fail(err, errno, "runtime %s: launcher %s", (*rt)->name, launcher);
    if (!S_ISREG(st.st_mode))
        return hks_fail(err, 0, "runtime %s: launcher %s is not a file", (*rt)->name, launcher);
    if (stat(in->code_dir, &st) < 0)
        return hks_fail(err, errno, "function code %s", in->code_dir);
    if (!S_ISDIR(st.st_mode))
        return hks_fail(err, ENOTDIR, "function code %s", in->code_dir);
    return 0;
}

int bld_image_build(const bld_image_input *in, const char *layout_dir, bld_image_result *out,
                    hks_error *err)
{
    *out = (bld_image_result){0};
    build b = {.in = in, .res = out, .err = err, .base = {.fd = -1, .blobs = -1}};
    if (check_input(in, layout_dir, &b.rt, err) < 0)
        return -1;
    if (bld_layout_open(&b.base, in->base_layout, err) < 0 ||
        bld_base_load(&b.base, in->base_ref, &b.img, err) < 0) {
        bld_layout_close(&b.base);
        return -1;
    }
    bool created = false;
    int rc = bld_layout_create(&b.out, layout_dir, &created, err);
    if (rc == 0 && (rc = run(&b)) < 0)
        bld_layout_remove(&b.out, created);
    bld_layout_close(&b.out);
    bld_layout_close(&b.base);
    bld_base_free(&b.img);
    if (rc < 0)
        *out = (bld_image_result){0};
    return rc;
}
