/* Function images, layer strategy: a base image made here as an OCI image layout (OCI or Docker
 * media types), the function's layer and config added; digests, sizes and diff_ids checked from
 * the bytes on disk; the same inputs give the same manifest digest; bad bases are refused naming
 * what is wrong, and a failed build leaves no output directory behind. */
#include "tests/unit/helpers.h"

#include "builder/build_internal.h"
#include "builder/builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <sys/stat.h>

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
} buf;

static la_ssize_t buf_write(struct archive *a, void *opaque, const void *data, size_t n)
{
    (void)a;
    buf *b = opaque;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return (la_ssize_t)n;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static buf read_all(const char *path)
{
    buf b = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("open %s", path);
    unsigned char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_write(NULL, &b, chunk, n);
    fclose(f);
    buf_write(NULL, &b, "", 1); /* NUL-terminated for text, not counted */
    b.len--;
    return b;
}

static void sha(const void *data, size_t len, char out[72])
{
    hks_error err = {0};
    assert_int_equal(bld_sha256(data, len, out, &err), 0);
}

/* ---- a base image ---- */

typedef struct base {
    char dir[128];
    char layer[72], diff_id[72], config[72], manifest[72];
    size_t layer_len, config_len, manifest_len;
    const char *manifest_type;
} base;

static void blob_path(const char *layout, const char *digest, char *out, size_t size)
{
    snprintf(out, size, "%s/blobs/sha256/%s", layout, digest + 7);
}

static void put_blob(const char *layout, const void *data, size_t len, char digest[72])
{
    char path[PATH_MAX];
    sha(data, len, digest);
    blob_path(layout, digest, path, sizeof(path));
    put_file(path, data, len);
}

static void put_json(const char *layout, json_t *j, char digest[72], size_t *len)
{
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    *len = strlen(text);
    put_blob(layout, text, *len, digest);
    free(text);
    json_decref(j);
}

static void write_index(const base *b, json_t *manifests)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/index.json", b->dir);
    json_t *index = json_pack("{s:i,s:o}", "schemaVersion", 2, "manifests", manifests);
    char *text = json_dumps(index, JSON_COMPACT);
    put_file(path, text, strlen(text));
    free(text);
    json_decref(index);
}

static json_t *manifest_desc(const base *b, const char *ref)
{
    return json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType", b->manifest_type, "digest", b->manifest,
                     "size", (json_int_t)b->manifest_len, "annotations", BLD_ANNOTATION_REF, ref);
}

/* One layer (etc/base.txt, bin/), a config with Env and Cmd, a manifest, index.json naming it
 * "base". */
static void make_base(base *b, bool docker)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "/tmp/hks-test-image-base-XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/blobs", b->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/blobs/sha256", b->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/oci-layout", b->dir);
    put_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);

    buf tar = {0}, gz = {0};
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &tar, NULL, buf_write, NULL), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "etc/base.txt");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 5);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, "base\n", 5), 5);
    archive_entry_free(e);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    a = archive_write_new();
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &gz, NULL, buf_write, NULL), ARCHIVE_OK);
    e = archive_entry_new();
    archive_entry_set_pathname(e, "raw");
    archive_entry_set_filetype(e, AE_IFREG);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, tar.data, tar.len), (la_ssize_t)tar.len);
    archive_entry_free(e);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    sha(tar.data, tar.len, b->diff_id);
    put_blob(b->dir, gz.data, gz.len, b->layer);
    b->layer_len = gz.len;
    free(tar.data);
    free(gz.data);

    json_t *config = json_pack(
        "{s:s,s:s,s:s,s:{s:[s,s],s:[s],s:s},s:{s:s,s:[s]},s:[{s:s,s:s}]}", "architecture", "amd64",
        "os", "linux", "created", "2024-05-01T10:00:00Z", "config", "Env", "PATH=/usr/bin:/bin",
        "PORT=1234", "Cmd", "/bin/sh", "User", "root", "rootfs", "type", "layers", "diff_ids",
        b->diff_id, "history", "created", "2024-05-01T10:00:00Z", "created_by", "test");
    assert_non_null(config);
    put_json(b->dir, config, b->config, &b->config_len);
    b->manifest_type =
        docker ? "application/vnd.docker.distribution.manifest.v2+json" : BLD_MT_OCI_MANIFEST;
    json_t *manifest = json_pack(
        "{s:i,s:s,s:{s:s,s:s,s:I},s:[{s:s,s:s,s:I}]}", "schemaVersion", 2, "mediaType",
        b->manifest_type, "config", "mediaType",
        docker ? "application/vnd.docker.container.image.v1+json" : BLD_MT_OCI_CONFIG, "digest",
        b->config, "size", (json_int_t)b->config_len, "layers", "mediaType",
        docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : BLD_MT_OCI_LAYER_GZIP,
        "digest", b->layer, "size", (json_int_t)b->layer_len);
    assert_non_null(manifest);
    put_json(b->dir, manifest, b->manifest, &b->manifest_len);
    write_index(b, json_pack("[o]", manifest_desc(b, "base")));
}

/* ---- building ---- */

static char code_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(code_dir, sizeof(code_dir), "/tmp/hks-test-image-code-XXXXXX");
    assert_non_null(mkdtemp(code_dir));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/index.js", code_dir);
    put_file(path, "module.exports = { handle: async () => 'ok' };\n", 47);
    snprintf(path, sizeof(path), "%s/run.sh", code_dir);
    put_file(path, "#!/bin/sh\n", 10);
    assert_int_equal(chmod(path, 0700), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(code_dir);
    return 0;
}

static int build(const base *b, const char *runtime, const char *out, bld_image_result *res,
                 hks_error *err)
{
    char runtimes[PATH_MAX];
    test_path(runtimes, sizeof(runtimes), "runtimes");
    bld_image_input in = {.runtime = runtime,
                          .code_dir = code_dir,
                          .runtimes_dir = runtimes,
                          .base_layout = b->dir,
                          .ref_name = "fn"};
    return bld_image_build(&in, out, res, err);
}

static void out_dir(char *out, size_t size)
{
    snprintf(out, size, "/tmp/hks-test-image-out-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static json_t *load(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fail_msg("%s: %s", path, jerr.text);
    return j;
}

/* A blob of the output, checked to hash to its name. */
static buf blob(const char *layout, const char *digest)
{
    char path[PATH_MAX], actual[72];
    blob_path(layout, digest, path, sizeof(path));
    buf b = read_all(path);
    sha(b.data, b.len, actual);
    assert_string_equal(actual, digest);
    return b;
}

static buf gunzip(const buf *gz)
{
    buf out = {0};
    struct archive *a = archive_read_new();
    assert_int_equal(archive_read_support_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_read_support_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_read_open_memory(a, gz->data, gz->len), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    char chunk[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, chunk, sizeof(chunk))) > 0)
        buf_write(NULL, &out, chunk, (size_t)n);
    assert_int_equal(n, 0);
    archive_read_free(a);
    return out;
}

static void check_image(const base *b, const char *out, const bld_image_result *res,
                        const char *interpreter, const char *launcher)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/oci-layout", out);
    buf marker = read_all(path);
    assert_string_equal((char *)marker.data, "{\"imageLayoutVersion\":\"1.0.0\"}");
    free(marker.data);

    snprintf(path, sizeof(path), "%s/index.json", out);
    json_t *index = load(path);
    json_t *desc = json_array_get(json_object_get(index, "manifests"), 0);
    assert_int_equal(json_array_size(json_object_get(index, "manifests")), 1);
    assert_string_equal(json_string_value(json_object_get(desc, "digest")), res->manifest_digest);
    assert_int_equal(json_integer_value(json_object_get(desc, "size")), res->manifest_size);
    assert_string_equal(json_string_value(json_object_get(json_object_get(desc, "annotations"),
                                                          BLD_ANNOTATION_REF)),
                        "fn");

    buf mb = blob(out, res->manifest_digest);
    assert_int_equal(mb.len, res->manifest_size);
    json_t *manifest = json_loadb((char *)mb.data, mb.len, 0, NULL);
    assert_non_null(manifest);
    /* compact, sorted keys: dumping it again gives the same bytes */
    char *again = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(again, (char *)mb.data);
    free(again);
    assert_string_equal(json_string_value(json_object_get(manifest, "mediaType")),
                        BLD_MT_OCI_MANIFEST);
    json_t *cdesc = json_object_get(manifest, "config");
    assert_string_equal(json_string_value(json_object_get(cdesc, "mediaType")), BLD_MT_OCI_CONFIG);
    assert_string_equal(json_string_value(json_object_get(cdesc, "digest")), res->config_digest);
    json_t *layers = json_object_get(manifest, "layers");
    assert_int_equal(json_array_size(layers), 2);
    json_t *l0 = json_array_get(layers, 0), *l1 = json_array_get(layers, 1);
    assert_string_equal(json_string_value(json_object_get(l0, "digest")), b->layer);
    assert_int_equal(json_integer_value(json_object_get(l0, "size")), b->layer_len);
    assert_string_equal(json_string_value(json_object_get(l0, "mediaType")), BLD_MT_OCI_LAYER_GZIP);
    assert_string_equal(json_string_value(json_object_get(l1, "digest")), res->layer_digest);
    assert_string_equal(json_string_value(json_object_get(l1, "mediaType")), BLD_MT_OCI_LAYER_GZIP);
    assert_string_equal(json_string_value(json_object_get(json_object_get(manifest, "annotations"),
                                                          "org.opencontainers.image.base.digest")),
                        b->manifest);

    /* the base layer, copied as it was; the new one: digest over the gzip, diff_id over the tar */
    buf base_layer = blob(out, b->layer);
    free(base_layer.data);
    buf layer = blob(out, res->layer_digest);
    assert_int_equal(json_integer_value(json_object_get(l1, "size")), layer.len);
    buf tar = gunzip(&layer);
    char diff_id[72];
    sha(tar.data, tar.len, diff_id);
    assert_string_equal(diff_id, res->layer_diff_id);

    buf cb = blob(out, res->config_digest);
    assert_int_equal(json_integer_value(json_object_get(cdesc, "size")), cb.len);
    json_t *config = json_loadb((char *)cb.data, cb.len, 0, NULL);
    json_t *diff_ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
    assert_int_equal(json_array_size(diff_ids), 2);
    assert_string_equal(json_string_value(json_array_get(diff_ids, 0)), b->diff_id);
    assert_string_equal(json_string_value(json_array_get(diff_ids, 1)), res->layer_diff_id);
    assert_int_equal(json_array_size(json_object_get(config, "history")), 2);
    assert_string_equal(json_string_value(json_object_get(config, "created")),
                        "2024-05-01T10:00:00Z");
    json_t *c = json_object_get(config, "config");
    assert_string_equal(json_string_value(json_object_get(c, "User")), "1000:1000");
    assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/code");
    assert_null(json_object_get(c, "Cmd"));
    json_t *entry = json_object_get(c, "Entrypoint");
    assert_int_equal(json_array_size(entry), 3);
    assert_string_equal(json_string_value(json_array_get(entry, 0)), interpreter);
    assert_string_equal(json_string_value(json_array_get(entry, 1)), launcher);
    assert_string_equal(json_string_value(json_array_get(entry, 2)), "serve");
    json_t *env = json_object_get(c, "Env");
    assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/usr/bin:/bin");
    assert_string_equal(json_string_value(json_array_get(env, 1)), "PORT=8080");
    bool function_dir = false;
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *v = json_string_value(json_array_get(env, i));
        function_dir = function_dir || strcmp(v, "HKS_FUNCTION_DIR=/code") == 0;
        assert_true(strcmp(v, "PORT=1234") != 0);
    }
    assert_true(function_dir);
    assert_non_null(json_object_get(json_object_get(c, "ExposedPorts"), "8080/tcp"));

    json_decref(config);
    json_decref(manifest);
    json_decref(index);
    free(cb.data);
    free(tar.data);
    free(layer.data);
    free(mb.data);
}

static void images_are_complete_and_consistent(void **state)
{
    (void)state;
    for (int docker = 0; docker <= 1; docker++) {
        base b;
        make_base(&b, docker);
        const char *runtimes[][3] = {{"node", "node", "/hks/runtime/launcher.js"},
                                     {"python", "python3", "/hks/runtime/launcher.py"}};
        for (size_t i = 0; i < HKS_ARRAY_LEN(runtimes); i++) {
            char out[64];
            out_dir(out, sizeof(out));
            bld_image_result res;
            hks_error err = {0};
            if (build(&b, runtimes[i][0], out, &res, &err) < 0)
                fail_msg("build: %s", err.msg);
            check_image(&b, out, &res, runtimes[i][1], runtimes[i][2]);
            remove_tree(out);
        }
        remove_tree(b.dir);
    }
}

static void the_layer_holds_code_and_launcher(void **state)
{
    (void)state;
    base b;
    make_base(&b, false);
    char out[64];
    out_dir(out, sizeof(out));
    bld_image_result res;
    hks_error err = {0};
    assert_int_equal(build(&b, "node", out, &res, &err), 0);
    buf layer = blob(out, res.layer_digest);
    struct archive *a = archive_read_new();
    assert_int_equal(archive_read_support_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
    assert_int_equal(archive_read_open_memory(a, layer.data, layer.len), ARCHIVE_OK);
    struct archive_entry *e;
    char prev[512] = "";
    int seen = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (strcmp(prev, name) >= 0)
            fail_msg("not sorted: %s before %s", prev, name);
        snprintf(prev, sizeof(prev), "%s", name);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        assert_int_equal(archive_entry_mtime(e), 0);
        assert_true(strncmp(name, "code", 4) == 0 || strncmp(name, "hks", 3) == 0);
        assert_null(strstr(name, "templates"));
        assert_null(strstr(name, "Dockerfile"));
        mode_t perm = archive_entry_perm(e);
        if (strcmp(name, "code/index.js") == 0 || strcmp(name, "hks/runtime/launcher.js") == 0) {
            assert_int_equal(perm, 0644);
            seen++;
        } else if (strcmp(name, "code/run.sh") == 0) {
            assert_int_equal(perm, 0755);
            seen++;
        } else if (archive_entry_filetype(e) == AE_IFDIR) {
            assert_int_equal(perm, 0755);
        }
    }
    assert_int_equal(seen, 3);
    archive_read_free(a);
    free(layer.data);
    remove_tree(out);
    remove_tree(b.dir);
}

static void the_same_inputs_give_the_same_manifest(void **state)
{
    (void)state;
    base b;
    make_base(&b, false);
    char out1[64], out2[128];
    out_dir(out1, sizeof(out1));
    snprintf(out2, sizeof(out2), "%s-second", out1); /* made by the build */
    bld_image_result r1, r2;
    hks_error err = {0};
    assert_int_equal(build(&b, "python", out1, &r1, &err), 0);
    mode_t old = umask(077);
    assert_int_equal(build(&b, "python", out2, &r2, &err), 0);
    umask(old);
    assert_string_equal(r1.manifest_digest, r2.manifest_digest);
    assert_string_equal(r1.config_digest, r2.config_digest);
    assert_string_equal(r1.layer_digest, r2.layer_digest);
    char p1[PATH_MAX], p2[PATH_MAX];
    snprintf(p1, sizeof(p1), "%s/index.json", out1);
    snprintf(p2, sizeof(p2), "%s/index.json", out2);
    buf i1 = read_all(p1), i2 = read_all(p2);
    assert_int_equal(i1.len, i2.len);
    assert_memory_equal(i1.data, i2.data, i1.len);
    struct stat st;
    assert_int_equal(stat(out2, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755); /* not the umask's 0700 */
    free(i1.data);
    free(i2.data);
    remove_tree(out1);
    remove_tree(out2);
    remove_tree(b.dir);
}

/* A failed build names the problem and leaves no output directory. */
static void refused(const base *b, const char *needle, const char *needle2)
{
    char out[PATH_MAX];
    snprintf(out, sizeof(out), "%s-out", b->dir);
    bld_image_result res;
    hks_error err = {0};
    assert_int_equal(build(b, "node", out, &res, &err), -1);
    if (!strstr(err.msg, needle) || (needle2 && !strstr(err.msg, needle2)))
        fail_msg("'%s' does not say '%s' / '%s'", err.msg, needle, needle2 ? needle2 : "");
    struct stat st;
    assert_int_equal(stat(out, &st), -1);
    assert_int_equal(res.manifest_digest[0], '\0');
}

static void bad_bases_are_refused(void **state)
{
    (void)state;
    base b;
    make_base(&b, false);

    base missing = b;
    snprintf(missing.dir, sizeof(missing.dir), "%.64s-nope", b.dir);
    refused(&missing, missing.dir, "No such file");

    write_index(&b, json_array());
    refused(&b, "index.json lists 0 manifests", NULL);
    write_index(&b, json_pack("[o,o]", manifest_desc(&b, "one"), manifest_desc(&b, "two")));
    refused(&b, "index.json lists 2 manifests", "'one', 'two'");
    /* named: fine */
    char runtimes[PATH_MAX], out[PATH_MAX];
    test_path(runtimes, sizeof(runtimes), "runtimes");
    snprintf(out, sizeof(out), "%s-out", b.dir);
    bld_image_input in = {.runtime = "node",
                          .code_dir = code_dir,
                          .runtimes_dir = runtimes,
                          .base_layout = b.dir,
                          .base_ref = "two"};
    bld_image_result res;
    hks_error err = {0};
    if (bld_image_build(&in, out, &res, &err) < 0)
        fail_msg("%s", err.msg);
    remove_tree(out);
    in.base_ref = "three";
    assert_int_equal(bld_image_build(&in, out, &res, &err), -1);
    assert_non_null(strstr(err.msg, "0 manifests named 'three'"));
    in.base_ref = NULL;
    in.ref_name = "-bad tag";
    assert_int_equal(bld_image_build(&in, out, &res, &err), -1);
    assert_non_null(strstr(err.msg, "ref name '-bad tag' is not valid"));
    write_index(&b, json_pack("[o]", manifest_desc(&b, "base")));

    /* a layer whose bytes do not match its digest */
    char path[PATH_MAX];
    blob_path(b.dir, b.layer, path, sizeof(path));
    buf layer = read_all(path);
    layer.data[layer.len / 2] ^= 1;
    put_file(path, layer.data, layer.len);
    refused(&b, b.layer, "does not match its digest");
    layer.data[layer.len / 2] ^= 1;
    put_file(path, layer.data, layer.len);
    /* one byte short: the size is wrong */
    put_file(path, layer.data, layer.len - 1);
    refused(&b, b.layer, "its descriptor says");
    put_file(path, layer.data, layer.len);
    free(layer.data);

    /* the config, the manifest */
    blob_path(b.dir, b.config, path, sizeof(path));
    buf config = read_all(path);
    config.data[0] = ' ';
    put_file(path, config.data, config.len);
    refused(&b, b.config, "does not match its digest");
    free(config.data);
    blob_path(b.dir, b.manifest, path, sizeof(path));
    unlink(path);
    refused(&b, b.manifest, "No such file");
    remove_tree(b.dir);

    /* not a layout at all */
    make_base(&b, false);
    snprintf(path, sizeof(path), "%s/oci-layout", b.dir);
    unlink(path);
    refused(&b, "not an OCI image layout", "oci-layout");
    remove_tree(b.dir);
}

static void nested_indexes_yield_linux_amd64(void **state)
{
    (void)state;
    base b;
    make_base(&b, false);
    json_t *nested = json_pack("{s:i,s:s,s:[{s:s,s:s,s:i,s:{s:s,s:s}},o]}", "schemaVersion", 2,
                               "mediaType", BLD_MT_OCI_INDEX, "manifests", "mediaType",
                               BLD_MT_OCI_MANIFEST, "digest", b.config, "size", 1, "platform", "os",
                               "linux", "architecture", "arm64", manifest_desc(&b, "x"));
    json_object_set_new(json_array_get(json_object_get(nested, "manifests"), 1), "platform",
                        json_pack("{s:s,s:s}", "os", "linux", "architecture", "amd64"));
    char digest[72];
    size_t len = 0;
    put_json(b.dir, nested, digest, &len);
    write_index(&b, json_pack("[{s:s,s:s,s:I}]", "mediaType", BLD_MT_OCI_INDEX, "digest", digest,
                              "size", (json_int_t)len));
    char out[64];
    out_dir(out, sizeof(out));
    bld_image_result res;
    hks_error err = {0};
    if (build(&b, "node", out, &res, &err) < 0)
        fail_msg("%s", err.msg);
    check_image(&b, out, &res, "node", "/hks/runtime/launcher.js");
    remove_tree(out);

    /* no linux/amd64 in it */
    nested = json_pack("{s:i,s:[{s:s,s:s,s:i,s:{s:s,s:s}}]}", "schemaVersion", 2, "manifests",
                       "mediaType", BLD_MT_OCI_MANIFEST, "digest", b.manifest, "size", 1,
                       "platform", "os", "linux", "architecture", "arm64");
    put_json(b.dir, nested, digest, &len);
    write_index(&b, json_pack("[{s:s,s:s,s:I}]", "mediaType", BLD_MT_OCI_INDEX, "digest", digest,
                              "size", (json_int_t)len));
    refused(&b, "has no linux/amd64 image", "linux/arm64");
    remove_tree(b.dir);
}

static void the_output_must_be_new_or_empty(void **state)
{
    (void)state;
    base b;
    make_base(&b, false);
    char out[64], keep[PATH_MAX];
    out_dir(out, sizeof(out));
    snprintf(keep, sizeof(keep), "%s/keep", out);
    put_file(keep, "x", 1);
    bld_image_result res;
    hks_error err = {0};
    assert_int_equal(build(&b, "node", out, &res, &err), -1);
    assert_non_null(strstr(err.msg, "must be new or empty"));
    struct stat st;
    assert_int_equal(stat(keep, &st), 0);
    /* an empty existing directory is fine, and stays when the build fails */
    unlink(keep);
    char runtimes[PATH_MAX];
    test_path(runtimes, sizeof(runtimes), "runtimes");
    bld_image_input in = {.runtime = "node",
                          .code_dir = "/nonexistent/hks",
                          .runtimes_dir = runtimes,
                          .base_layout = b.dir};
    assert_int_equal(bld_image_build(&in, out, &res, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/hks"));
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(build(&b, "node", out, &res, &err), 0);
    remove_tree(out);
    remove_tree(b.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(images_are_complete_and_consistent),
        cmocka_unit_test(the_layer_holds_code_and_launcher),
        cmocka_unit_test(the_same_inputs_give_the_same_manifest),
        cmocka_unit_test(bad_bases_are_refused),
        cmocka_unit_test(nested_indexes_yield_linux_amd64),
        cmocka_unit_test(the_output_must_be_new_or_empty),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
