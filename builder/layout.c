/* OCI image layouts on disk: reading a base image out of one (index.json -> manifest -> config
 * and layers), and writing one (blobs/sha256/<hex>, oci-layout, index.json).
 *
 * Every blob read from the base is checked against its descriptor, size and sha256, before it is
 * used or copied: a digest in the manifest that the content does not match would otherwise be
 * published under our name, and a registry would refuse the push much later with a less useful
 * message. Blobs are hardlinked into the new layout when the file system allows it (a base of a
 * few hundred MiB then costs nothing but the hashing) and copied otherwise.
 *
 * The new layout's directory must not exist or be empty: a failed build then removes everything
 * in it, knowing it is all its own. Files appear under their final names by rename, index.json
 * last, so a reader never sees a blob half-written under its digest. */
#include "build_internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define JSON_MAX (4u << 20) /* index, manifest, config: registries cap manifests at 4 MiB */

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_FOREIGN  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MT_OCI_LAYER_ANY   "application/vnd.oci.image.layer."
#define MT_OCI_FOREIGN     "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

void bld_layout_close(bld_layout *lo)
{
    if (lo->blobs >= 0)
        close(lo->blobs);
    if (lo->fd >= 0)
        close(lo->fd);
    lo->blobs = lo->fd = -1;
}

static json_t *load_json(const bld_layout *lo, const char *what, const char *data, size_t len,
                         hks_error *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        hks_fail(err, 0, "%s %s: %s is not JSON: %s (line %d)", lo->role, lo->path, what, jerr.text,
                 jerr.line);
    else if (!json_is_object(j)) {
        hks_fail(err, 0, "%s %s: %s is not a JSON object", lo->role, lo->path, what);
        json_decref(j);
        j = NULL;
    }
    return j;
}

static json_t *read_top_json(const bld_layout *lo, const char *name, hks_error *err)
{
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (bld_read_file_at(lo->fd, name, 0, JSON_MAX, &data, &len) < 0) {
        hks_fail(err, errno, "%s %s: %s", lo->role, lo->path, name);
        return NULL;
    }
    return load_json(lo, name, data, len, err);
}

int bld_layout_open(bld_layout *lo, const char *path, hks_error *err)
{
    *lo = (bld_layout){.role = "base image", .path = path, .fd = -1, .blobs = -1};
    lo->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lo->fd < 0)
        return hks_fail(err, errno, "base image %s: open the layout directory", path);
    json_t *marker = read_top_json(lo, "oci-layout", err);
    const char *version = json_string_value(json_object_get(marker, "imageLayoutVersion"));
    bool ok = version && strncmp(version, "1.", 2) == 0;
    json_decref(marker);
    if (!marker)
        return hks_wrap(err, "not an OCI image layout");
    if (!ok)
        return hks_fail(err, 0, "base image %s: oci-layout: imageLayoutVersion is not 1.x", path);
    lo->blobs = openat(lo->fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lo->blobs < 0)
        return hks_fail(err, errno, "base image %s: blobs/sha256", path);
    return 0;
}

void bld_layout_remove(bld_layout *lo, bool created)
{
    /* everything in it is ours: it was new or empty (bld_layout_create) */
    int fd = lo->fd < 0 ? -1 : fcntl(lo->fd, F_DUPFD_CLOEXEC, 0);
    hks_error ignored = {0};
    if (fd >= 0)
        hks_remove_below(fd, &ignored);
    bld_layout_close(lo);
    if (created)
        rmdir(lo->path);
}

static int is_empty(int dir)
{
    int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static int make_dir(int parent, const char *name, const char *path, hks_error *err)
{
    if (mkdirat(parent, name, 0755) < 0)
        return hks_fail(err, errno, "image layout %s: mkdir %s", path, name);
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* made under the caller's umask: the modes must not depend on it */
    if (fd < 0 || fchmod(fd, 0755) < 0) {
        hks_fail(err, errno, "image layout %s: open %s", path, name);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int bld_layout_create(bld_layout *lo, const char *path, bool *created, hks_error *err)
{
    *lo = (bld_layout){.role = "image layout", .path = path, .fd = -1, .blobs = -1};
    *created = mkdir(path, 0755) == 0;
    if (!*created && errno != EEXIST)
        return hks_fail(err, errno, "image layout %s: mkdir", path);
    lo->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (lo->fd < 0) {
        hks_fail(err, errno, "image layout %s: open", path);
        bld_layout_remove(lo, *created);
        return -1;
    }
    int empty = *created ? 1 : is_empty(lo->fd);
    if (empty <= 0) {
        hks_fail(err, empty < 0 ? errno : ENOTEMPTY, "image layout %s: must be new or empty", path);
        bld_layout_close(lo);
        return -1;
    }
    if (*created && fchmod(lo->fd, 0755) < 0) {
        hks_fail(err, errno, "image layout %s: chmod", path);
        bld_layout_remove(lo, *created);
        return -1;
    }
    cleanup_fd int blobs = make_dir(lo->fd, "blobs", path, err);
    lo->blobs = blobs < 0 ? -1 : make_dir(blobs, "sha256", path, err);
    if (lo->blobs < 0) {
        bld_layout_remove(lo, *created);
        return -1;
    }
    return 0;
}

/* ---- blobs ---- */

static int check_digest(const bld_layout *lo, const char *digest, char hex[65], hks_error *err)
{
    if (!bld_digest_parse(digest, hex))
        return hks_fail(err, 0, "%s %s: '%.80s' is not a sha256 digest (sha256:<64 hex digits>)",
                        lo->role, lo->path, digest ? digest : "(none)");
    return 0;
}

static int check_blob(const bld_layout *lo, const char *digest, int64_t want_size, uint64_t size,
                      const char *actual, hks_error *err)
{
    if (want_size >= 0 && size != (uint64_t)want_size)
        return hks_fail(err, 0, "%s %s: blob %s has %llu bytes, its descriptor says %lld", lo->role,
                        lo->path, digest, (unsigned long long)size, (long long)want_size);
    if (strcmp(actual, digest) != 0)
        return hks_fail(err, 0, "%s %s: blob %s does not match its digest (its content is %s)",
                        lo->role, lo->path, digest, actual);
    return 0;
}

int bld_blob_read(const bld_layout *lo, const char *digest, int64_t size, size_t cap, char **data,
                  size_t *len, hks_error *err)
{
    char hex[65];
    if (check_digest(lo, digest, hex, err) < 0)
        return -1;
    cleanup_free char *buf = NULL;
    size_t n = 0;
    if (bld_read_file_at(lo->blobs, hex, 0, cap, &buf, &n) < 0)
        return hks_fail(err, errno, "%s %s: blob %s", lo->role, lo->path, digest);
    char actual[72];
    if (bld_sha256(buf, n, actual, err) < 0 || check_blob(lo, digest, size, n, actual, err) < 0)
        return -1;
    *data = steal_pointer(&buf);
    *len = n;
    return 0;
}

int bld_blob_begin(const bld_layout *lo, char tmp_name[64], hks_error *err)
{
    static unsigned counter;
    snprintf(tmp_name, 64, ".tmp-%d-%u", (int)getpid(), __atomic_fetch_add(&counter, 1, 0));
    int fd = openat(lo->blobs, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || fchmod(fd, 0644) < 0) {
        hks_fail(err, errno, "%s %s: create a blob", lo->role, lo->path);
        if (fd >= 0) {
            close(fd);
            unlinkat(lo->blobs, tmp_name, 0);
        }
        return -1;
    }
    return fd;
}

int bld_blob_commit(const bld_layout *lo, const char *tmp_name, const char *digest, hks_error *err)
{
    char hex[65];
    if (check_digest(lo, digest, hex, err) < 0)
        return -1;
    if (renameat(lo->blobs, tmp_name, lo->blobs, hex) < 0) {
        int saved = errno;
        unlinkat(lo->blobs, tmp_name, 0);
        return hks_fail(err, saved, "%s %s: store blob %s", lo->role, lo->path, digest);
    }
    return 0;
}

int bld_blob_put(const bld_layout *lo, const void *data, size_t len, char digest[72],
                 hks_error *err)
{
    char tmp[64];
    if (bld_sha256(data, len, digest, err) < 0)
        return -1;
    cleanup_fd int fd = bld_blob_begin(lo, tmp, err);
    if (fd < 0)
        return -1;
    if (hks_write_all(fd, data, len) < 0) {
        int saved = errno;
        unlinkat(lo->blobs, tmp, 0);
        return hks_fail(err, saved, "%s %s: write blob %s", lo->role, lo->path, digest);
    }
    return bld_blob_commit(lo, tmp, digest, err);
}

int bld_blob_copy(const bld_layout *from, const bld_layout *to, const char *digest, int64_t size,
                  hks_error *err)
{
    char hex[65], actual[72];
    uint64_t got = 0;
    if (check_digest(from, digest, hex, err) < 0)
        return -1;
    /* already there: a base may use one layer twice (empty layers are a common case) */
    if (faccessat(to->blobs, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (linkat(from->blobs, hex, to->blobs, hex, AT_SYMLINK_FOLLOW) == 0) {
        cleanup_fd int fd = openat(to->blobs, hex, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || bld_sha256_fd(fd, -1, actual, &got) < 0) {
            int saved = errno;
            unlinkat(to->blobs, hex, 0);
            return hks_fail(err, saved, "%s %s: blob %s", from->role, from->path, digest);
        }
        if (check_blob(from, digest, size, got, actual, err) < 0) {
            unlinkat(to->blobs, hex, 0);
            return -1;
        }
        return 0;
    }
    /* another file system, or protected_hardlinks: copy */
    cleanup_fd int src = openat(from->blobs, hex, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return hks_fail(err, errno, "%s %s: blob %s", from->role, from->path, digest);
    char tmp[64];
    cleanup_fd int dst = bld_blob_begin(to, tmp, err);
    if (dst < 0)
        return -1;
    if (bld_sha256_fd(src, dst, actual, &got) < 0) {
        int saved = errno;
        unlinkat(to->blobs, tmp, 0);
        return hks_fail(err, saved, "copy blob %s from %s %s to %s", digest, from->role, from->path,
                        to->path);
    }
    if (check_blob(from, digest, size, got, actual, err) < 0) {
        unlinkat(to->blobs, tmp, 0);
        return -1;
    }
    return bld_blob_commit(to, tmp, digest, err);
}

int bld_layout_put_file(const bld_layout *lo, const char *name, const void *data, size_t len,
                        hks_error *err)
{
    char tmp[80];
    snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
    cleanup_fd int fd = openat(lo->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || fchmod(fd, 0644) < 0 || hks_write_all(fd, data, len) < 0 ||
        renameat(lo->fd, tmp, lo->fd, name) < 0) {
        int saved = errno;
        if (fd >= 0)
            unlinkat(lo->fd, tmp, 0);
        return hks_fail(err, saved, "%s %s: write %s", lo->role, lo->path, name);
    }
    return 0;
}

/* ---- the base image ---- */

void bld_base_free(bld_base *b)
{
    json_decref(b->config);
    json_decref(b->layers);
    b->config = b->layers = NULL;
}

typedef struct desc {
    const char *media_type; /* NULL when absent */
    const char *digest;
    json_int_t size;
} desc;

static int desc_parse(const bld_layout *lo, json_t *obj, const char *what, desc *d, hks_error *err)
{
    json_error_t jerr;
    *d = (desc){0};
    if (json_unpack_ex(obj, &jerr, 0, "{s?s, s:s, s:I}", "mediaType", &d->media_type, "digest",
                       &d->digest, "size", &d->size) < 0)
        return hks_fail(err, 0, "%s %s: %s is not a descriptor: %s", lo->role, lo->path, what,
                        jerr.text);
    if (d->size < 0)
        return hks_fail(err, 0, "%s %s: %s has a negative size", lo->role, lo->path, what);
    return 0;
}

static bool is_index(const char *mt)
{
    return mt && (strcmp(mt, BLD_MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

static bool is_manifest(const char *mt)
{
    return mt && (strcmp(mt, BLD_MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0);
}

static json_t *read_blob_json(const bld_layout *lo, const desc *d, const char *what, hks_error *err)
{
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (bld_blob_read(lo, d->digest, d->size, JSON_MAX, &data, &len, err) < 0)
        return NULL;
    char label[128];
    snprintf(label, sizeof(label), "%s %s", what, d->digest);
    return load_json(lo, label, data, len, err);
}

/* The layer media types a base may have, as OCI; NULL for others. */
static const char *oci_layer_type(const char *mt)
{
    if (!mt)
        return NULL;
    if (strncmp(mt, MT_OCI_LAYER_ANY, strlen(MT_OCI_LAYER_ANY)) == 0)
        return mt; /* tar, tar+gzip, tar+zstd, nondistributable */
    if (strcmp(mt, MT_DOCKER_LAYER) == 0)
        return BLD_MT_OCI_LAYER_GZIP;
    if (strcmp(mt, MT_DOCKER_FOREIGN) == 0)
        return MT_OCI_FOREIGN;
    return NULL;
}

static int load_layers(const bld_layout *lo, json_t *manifest, bld_base *b, hks_error *err)
{
    json_t *layers = json_object_get(manifest, "layers");
    if (!json_is_array(layers))
        return hks_fail(err, 0, "%s %s: manifest %s has no layers array", lo->role, lo->path,
                        b->manifest_digest);
    if (!(b->layers = json_array()))
        return hks_fail(err, ENOMEM, "base image");
    size_t i;
    json_t *layer;
    json_array_foreach(layers, i, layer)
    {
        char what[64];
        desc d;
        snprintf(what, sizeof(what), "layer %zu", i);
        if (desc_parse(lo, layer, what, &d, err) < 0)
            return -1;
        const char *mt = oci_layer_type(d.media_type);
        if (!mt)
            return hks_fail(err, 0, "%s %s: layer %s: media type '%.100s' is not a layer", lo->role,
                            lo->path, d.digest, d.media_type ? d.media_type : "");
        json_t *copy = json_deep_copy(layer);
        if (!copy || json_object_set_new(copy, "mediaType", json_string(mt)) < 0 ||
            json_array_append_new(b->layers, copy) < 0)
            return hks_fail(err, ENOMEM, "base image");
    }
    return 0;
}

static int load_config(const bld_layout *lo, json_t *manifest, bld_base *b, hks_error *err)
{
    desc d;
    if (desc_parse(lo, json_object_get(manifest, "config"), "the manifest's config", &d, err) < 0)
        return -1;
    if (!d.media_type || (strcmp(d.media_type, BLD_MT_OCI_CONFIG) != 0 &&
                          strcmp(d.media_type, MT_DOCKER_CONFIG) != 0))
        return hks_fail(err, 0, "%s %s: config %s: media type '%.100s' is not an image config",
                        lo->role, lo->path, d.digest, d.media_type ? d.media_type : "");
    if (!(b->config = read_blob_json(lo, &d, "config", err)))
        return -1;
    json_t *rootfs = json_object_get(b->config, "rootfs");
    json_t *diff_ids = json_object_get(rootfs, "diff_ids");
    const char *type = json_string_value(json_object_get(rootfs, "type"));
    if (!json_is_string(json_object_get(b->config, "architecture")) ||
        !json_is_string(json_object_get(b->config, "os")))
        return hks_fail(err, 0, "%s %s: config %s has no architecture or os", lo->role, lo->path,
                        d.digest);
    if (!type || strcmp(type, "layers") != 0 || !json_is_array(diff_ids))
        return hks_fail(err, 0, "%s %s: config %s: rootfs is not {\"type\": \"layers\", ...}",
                        lo->role, lo->path, d.digest);
    if (json_array_size(diff_ids) != json_array_size(b->layers))
        return hks_fail(err, 0, "%s %s: config %s lists %zu diff_ids for %zu layers", lo->role,
                        lo->path, d.digest, json_array_size(diff_ids), json_array_size(b->layers));
    return 0;
}

static int load_manifest(const bld_layout *lo, const desc *d, bld_base *b, hks_error *err)
{
    json_t *manifest = read_blob_json(lo, d, "manifest", err);
    if (!manifest)
        return -1;
    memcpy(b->manifest_digest, d->digest, BLD_DIGEST_LEN + 1);
    const char *own = json_string_value(json_object_get(manifest, "mediaType"));
    json_int_t version = json_integer_value(json_object_get(manifest, "schemaVersion"));
    int rc = 0;
    if (version != 2)
        rc = hks_fail(err, 0, "%s %s: manifest %s: schemaVersion %lld, only 2 is supported",
                      lo->role, lo->path, d->digest, (long long)version);
    else if (own && d->media_type && strcmp(own, d->media_type) != 0)
        rc = hks_fail(err, 0, "%s %s: manifest %s says it is %.100s, its descriptor %.100s",
                      lo->role, lo->path, d->digest, own, d->media_type);
    else if ((own || d->media_type) && !is_manifest(own ? own : d->media_type))
        rc = hks_fail(err, 0, "%s %s: manifest %s: media type %.100s is not an image manifest",
                      lo->role, lo->path, d->digest, own ? own : d->media_type);
    else if (load_layers(lo, manifest, b, err) < 0 || load_config(lo, manifest, b, err) < 0)
        rc = -1;
    json_decref(manifest);
    return rc;
}

/* The linux/amd64 image of a (nested) image index. */
static int pick_platform(const bld_layout *lo, json_t *index, const char *digest, json_t **out,
                         hks_error *err)
{
    char seen[256] = "";
    size_t used = 0, i;
    json_t *m;
    json_array_foreach(json_object_get(index, "manifests"), i, m)
    {
        json_t *platform = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(platform, "os"));
        const char *arch = json_string_value(json_object_get(platform, "architecture"));
        if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0) {
            *out = m;
            return 0;
        }
        if (used < sizeof(seen))
            used += (size_t)snprintf(seen + used, sizeof(seen) - used, "%s%.32s/%.32s",
                                     used ? ", " : "", os ? os : "?", arch ? arch : "?");
    }
    return hks_fail(err, 0, "%s %s: image index %s has no linux/amd64 image (it has: %s)", lo->role,
                    lo->path, digest, used ? seen : "nothing");
}

static int pick_ref(const bld_layout *lo, json_t *manifests, const char *ref, json_t **out,
                    hks_error *err)
{
    size_t count = json_array_size(manifests), matches = 0, used = 0, i;
    char names[256] = "";
    json_t *m;
    json_array_foreach(manifests, i, m)
    {
        const char *name = json_string_value(
            json_object_get(json_object_get(m, "annotations"), BLD_ANNOTATION_REF));
        if (ref && name && strcmp(name, ref) == 0) {
            *out = m;
            matches++;
        }
        if (name && used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s'%.64s'",
                                     used ? ", " : "", name);
    }
    if (!ref && count == 1) {
        *out = json_array_get(manifests, 0);
        return 0;
    }
    if (ref && matches == 1)
        return 0;
    if (ref)
        return hks_fail(err, 0, "%s %s: index.json has %zu manifests named '%.64s' (names: %s)",
                        lo->role, lo->path, matches, ref, used ? names : "none");
    return hks_fail(err, 0,
                    "%s %s: index.json lists %zu manifests; name one with its ref "
                    "(org.opencontainers.image.ref.name; names: %s)",
                    lo->role, lo->path, count, used ? names : "none");
}

int bld_base_load(const bld_layout *lo, const char *ref, bld_base *b, hks_error *err)
{
    *b = (bld_base){0};
    json_t *index = read_top_json(lo, "index.json", err);
    if (!index)
        return -1;
    json_t *nested = NULL, *chosen = NULL;
    int rc = -1;
    desc d;
    if (!json_is_array(json_object_get(index, "manifests")))
        hks_fail(err, 0, "%s %s: index.json has no manifests array", lo->role, lo->path);
    else if (pick_ref(lo, json_object_get(index, "manifests"), ref, &chosen, err) == 0 &&
             desc_parse(lo, chosen, "index.json's manifest", &d, err) == 0) {
        rc = 0;
        if (is_index(d.media_type)) {
            /* a multi-platform image (skopeo copy --all, docker buildx): its linux/amd64 */
            rc = -1;
            nested = read_blob_json(lo, &d, "image index", err);
            if (nested && pick_platform(lo, nested, d.digest, &chosen, err) == 0 &&
                desc_parse(lo, chosen, "the image index's manifest", &d, err) == 0)
                rc = is_index(d.media_type)
                         ? hks_fail(err, 0, "%s %s: image index %s nests another index", lo->role,
                                    lo->path, d.digest)
                         : 0;
        }
        if (rc == 0)
            rc = load_manifest(lo, &d, b, err);
    }
    json_decref(nested);
    json_decref(index);
    if (rc < 0)
        bld_base_free(b);
    return rc;
}
