/* libFuzzer target: the base image of `hksd build`, an OCI image layout pulled from a registry,
 * whose index.json, manifest and config are parsed by builder/layout.c.
 *
 * The input is up to three parts separated by NUL bytes: index.json, a manifest blob and a config
 * blob. Digests cannot be guessed, so in the parts "$M", "$C" and "$L" are replaced by the
 * digests of the manifest, the config and a fixed layer blob, "$m", "$c" and "$l" by their sizes
 * (an empty index.json part becomes one descriptor of the manifest). Invariants: a refusal says
 * why and leaves no output directory; a success writes a layout whose index.json names a manifest
 * blob that is there. */
#include "builder/build_internal.h"

#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char top[64];
static char base_dir[128], code_dir[128], runtimes_dir[128], out_dir[128];
static char layer_digest[72];
static size_t layer_len;

static void put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        __builtin_trap();
}

static void put_blob(const void *data, size_t len, char digest[72])
{
    hks_error err = {0};
    char path[PATH_MAX];
    if (bld_sha256(data, len, digest, &err) < 0)
        __builtin_trap();
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", base_dir, digest + 7);
    put(path, data, len);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
    remove_tree(top);
}

static void setup(void)
{
    snprintf(top, sizeof(top), "/tmp/hks-fuzz-oci-XXXXXX");
    if (!mkdtemp(top))
        __builtin_trap();
    atexit(cleanup);
    snprintf(base_dir, sizeof(base_dir), "%s/base", top);
    snprintf(code_dir, sizeof(code_dir), "%s/code", top);
    snprintf(runtimes_dir, sizeof(runtimes_dir), "%s/runtimes", top);
    snprintf(out_dir, sizeof(out_dir), "%s/out", top);
    char blobs[PATH_MAX], sha[PATH_MAX], node[PATH_MAX], path[PATH_MAX];
    snprintf(blobs, sizeof(blobs), "%s/blobs", base_dir);
    snprintf(sha, sizeof(sha), "%s/blobs/sha256", base_dir);
    snprintf(node, sizeof(node), "%s/node", runtimes_dir);
    const char *dirs[] = {base_dir, blobs, sha, code_dir, runtimes_dir, node};
    for (size_t i = 0; i < HKS_ARRAY_LEN(dirs); i++) {
        if (mkdir(dirs[i], 0755) < 0)
            __builtin_trap();
    }
    snprintf(path, sizeof(path), "%s/oci-layout", base_dir);
    put(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
    snprintf(path, sizeof(path), "%s/index.js", code_dir);
    put(path, "module.exports = {};\n", 21);
    snprintf(path, sizeof(path), "%s/node/launcher.js", runtimes_dir);
    put(path, "'use strict';\n", 14);
    /* an empty tar (two zero blocks), gzipped without a timestamp */
    static const unsigned char layer[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63, 0x60, 0x18, 0x05, 0xa3,
        0x60, 0x14, 0x8c, 0x54, 0x00, 0x00, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00};
    layer_len = sizeof(layer);
    put_blob(layer, layer_len, layer_digest);
}

typedef struct part {
    const char *p;
    size_t len;
} part;

/* text with the placeholders replaced; malloc'd. */
static char *expand(part in, const char *m, size_t mlen, const char *c, size_t clen, size_t *out)
{
    size_t cap = in.len * 40 + 1, n = 0;
    char *s = malloc(cap);
    if (!s)
        __builtin_trap();
    for (size_t i = 0; i < in.len; i++) {
        char key = i + 1 < in.len && in.p[i] == '$' ? in.p[i + 1] : 0;
        const char *rep = key == 'M' ? m : key == 'C' ? c : key == 'L' ? layer_digest : NULL;
        size_t num = key == 'm' ? mlen : key == 'c' ? clen : key == 'l' ? layer_len : SIZE_MAX;
        if (rep) {
            n += (size_t)snprintf(s + n, cap - n, "%s", rep);
            i++;
        } else if (num != SIZE_MAX) {
            n += (size_t)snprintf(s + n, cap - n, "%zu", num);
            i++;
        } else {
            s[n++] = in.p[i];
        }
    }
    s[n] = '\0';
    *out = n;
    return s;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!top[0])
        setup();
    part parts[3] = {{0}};
    const char *p = (const char *)data, *end = p + size;
    for (size_t i = 0; i < 3 && p <= end; i++) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        parts[i] = (part){p, (size_t)((nul ? nul : end) - p)};
        p = nul ? nul + 1 : end + 1;
    }
    char config_digest[72] = "", manifest_digest[72] = "";
    size_t clen = 0, mlen = 0, ilen = 0;
    char *config = expand(parts[2], "", 0, "", 0, &clen);
    put_blob(config, clen, config_digest);
    char *manifest = expand(parts[1], "", 0, config_digest, clen, &mlen);
    put_blob(manifest, mlen, manifest_digest);
    char *index = NULL;
    if (parts[0].len == 0) {
        static const char one[] = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
                                  "\"application/vnd.oci.image.manifest.v1+json\","
                                  "\"digest\":\"$M\",\"size\":$m}]}";
        parts[0] = (part){one, sizeof(one) - 1};
    }
    index = expand(parts[0], manifest_digest, mlen, config_digest, clen, &ilen);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/index.json", base_dir);
    put(path, index, ilen);

    bld_image_input in = {.runtime = "node",
                          .code_dir = code_dir,
                          .runtimes_dir = runtimes_dir,
                          .base_layout = base_dir};
    bld_image_result res;
    hks_error err = {0};
    struct stat st;
    if (bld_image_build(&in, out_dir, &res, &err) < 0) {
        if (!err.msg[0] || stat(out_dir, &st) == 0)
            __builtin_trap();
    } else {
        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", out_dir, res.manifest_digest + 7);
        if (stat(path, &st) < 0 || (uint64_t)st.st_size != res.manifest_size)
            __builtin_trap();
        remove_tree(out_dir);
    }
    /* the blobs of this input go: the next one starts from the fixed layer alone */
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", base_dir, config_digest + 7);
    if (strcmp(config_digest, layer_digest) != 0)
        unlink(path);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", base_dir, manifest_digest + 7);
    if (strcmp(manifest_digest, layer_digest) != 0)
        unlink(path);
    free(config);
    free(manifest);
    free(index);
    return 0;
}
