/* Pushing an OCI image layout to a registry (OCI distribution spec): the manifest that
 * index.json names, every blob it references (HEAD first, cross-repository mount when possible,
 * else a monolithic or chunked upload streamed from disk and hashed on the way), then the
 * manifest itself with its exact media type. The HTTP side is registry_http.c, the parsers
 * registry_parse.c. */
#include "registry_internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/sha.h>

#define MANIFEST_MAX   (4 * 1024 * 1024) /* what registries must accept at least */
#define INDEX_MAX      (4 * 1024 * 1024)
#define REF_NAME_ANNOT "org.opencontainers.image.ref.name"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

typedef struct blob_ref {
    char digest[72];
    uint64_t size;
} blob_ref;

/* the image a push sends: its manifest (descriptor, media type, bytes) and the blobs it names */
typedef struct image {
    blob_ref desc;
    char media_type[128];
    char *manifest;
    size_t manifest_len;
    blob_ref *blobs;
    size_t n_blobs;
} image;

typedef struct push_ctx {
    reg_client client;
    const char *layout_dir;
    int dirfd;
    size_t chunk_bytes;
    char repo_url[600]; /* <base>/v2/<repository> */
    bld_push_stats *stats;
} push_ctx;

/* jansson's own json_decrefp, as its json_auto_t uses */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

static void md_ctx_freep(EVP_MD_CTX **ctx)
{
    EVP_MD_CTX_free(*ctx);
}
#define cleanup_md __attribute__((cleanup(md_ctx_freep)))

static void response_freep(reg_response *rs)
{
    reg_response_free(rs);
}
#define cleanup_response __attribute__((cleanup(response_freep)))

/* ---- the layout ---- */

static int blob_path(const blob_ref *b, char *out, size_t size)
{
    return snprintf(out, size, "blobs/sha256/%s", b->digest + 7) < (int)size ? 0 : -1;
}

/* A blob of the layout, opened for streaming: a regular file of the size its descriptor says. */
static int open_blob(const push_ctx *p, const blob_ref *b, hks_error *err)
{
    char rel[128];
    if (blob_path(b, rel, sizeof(rel)) < 0)
        return hks_fail(err, 0, "layout %s: blob %s: bad name", p->layout_dir, b->digest);
    cleanup_fd int fd = openat(p->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hks_fail(err, errno, "layout %s: blob %s", p->layout_dir, b->digest);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "layout %s: blob %s", p->layout_dir, b->digest);
    if (!S_ISREG(st.st_mode))
        return hks_fail(err, 0, "layout %s: blob %s is not a regular file", p->layout_dir,
                        b->digest);
    /* an empty blob is never read, so it is never hashed either: its name says what it must be */
    if (b->size == 0 && strcmp(b->digest, EMPTY_SHA256) != 0)
        return hks_fail(err, 0, "layout %s: blob %s is corrupt: it is empty", p->layout_dir,
                        b->digest);
    if ((uint64_t)st.st_size != b->size)
        return hks_fail(err, 0,
                        "layout %s: blob %s is corrupt: %lld bytes, its descriptor says %" PRIu64,
                        p->layout_dir, b->digest, (long long)st.st_size, b->size);
    return steal_fd(&fd);
}

static int read_file_at(int dirfd, const char *rel, size_t max, char **out, size_t *len,
                        const char *layout_dir, hks_error *err)
{
    cleanup_fd int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hks_fail(err, errno, "layout %s: %s", layout_dir, rel);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "layout %s: %s", layout_dir, rel);
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
        return hks_fail(err, 0, "layout %s: %s is not a regular file of at most %zu bytes",
                        layout_dir, rel, max);
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "layout %s: %s", layout_dir, rel);
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hks_fail(err, errno, "layout %s: read %s", layout_dir, rel);
        if (n == 0 || (got += (size_t)n) == (size_t)st.st_size)
            break;
    }
    buf[got] = '\0';
    *len = got;
    *out = steal_pointer(&buf);
    return 0;
}

static void sha256_digest(const void *data, size_t len, char out[72])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, 72, "sha256:%s", hex);
}

/* digest and size of a descriptor object */
static int parse_descriptor(json_t *d, blob_ref *out, const char *where, hks_error *err)
{
    json_t *digest = json_object_get(d, "digest");
    json_t *size = json_object_get(d, "size");
    if (!json_is_object(d) || !json_is_string(digest) ||
        !bld_registry_valid_digest(json_string_value(digest)))
        return hks_fail(err, 0, "%s: descriptor without a sha256 digest", where);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return hks_fail(err, 0, "%s: descriptor %s without a size", where,
                        json_string_value(digest));
    snprintf(out->digest, sizeof(out->digest), "%s", json_string_value(digest));
    out->size = (uint64_t)json_integer_value(size);
    return 0;
}

/* index.json's manifest named ref_name (or its only one): descriptor and media type */
static int select_manifest(const push_ctx *p, const char *ref_name, blob_ref *out,
                           char media_type[128], hks_error *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (read_file_at(p->dirfd, "oci-layout", 4096, &text, &len, p->layout_dir, err) < 0)
        return hks_wrap(err, "not an OCI image layout");
    free(steal_pointer(&text));
    if (read_file_at(p->dirfd, "index.json", INDEX_MAX, &text, &len, p->layout_dir, err) < 0)
        return -1;
    json_error_t jerr;
    cleanup_json json_t *index = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *manifests = json_object_get(index, "manifests");
    if (!json_is_array(manifests))
        return hks_fail(err, 0, "layout %s: index.json: %s", p->layout_dir,
                        index ? "no \"manifests\" array" : jerr.text);
    json_t *chosen = NULL;
    size_t matches = 0;
    char names[256] = "";
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
        const char *name =
            json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME_ANNOT));
        size_t used = strlen(names);
        if (name && used + strlen(name) + 5 < sizeof(names)) {
            int w = snprintf(names + used, sizeof(names) - used, "%s'%s'", used ? ", " : "", name);
            (void)w; /* it fits: checked above */
        }
        if (!ref_name || (name && strcmp(name, ref_name) == 0)) {
            chosen = d;
            matches++;
        }
    }
    if (matches != 1) {
        if (ref_name)
            return hks_fail(err, 0, "layout %s: index.json names %s%zu manifests '%s' (it has: %s)",
                            p->layout_dir, matches ? "" : "no image '", matches, ref_name,
                            names[0] ? names : "no names");
        return hks_fail(err, 0, "layout %s: index.json has %zu manifests; name one (its names: %s)",
                        p->layout_dir, matches, names[0] ? names : "none");
    }
    char where[400];
    snprintf(where, sizeof(where), "layout %.300s: index.json", p->layout_dir);
    if (parse_descriptor(chosen, out, where, err) < 0)
        return -1;
    const char *mt = json_string_value(json_object_get(chosen, "mediaType"));
    snprintf(media_type, 128, "%s", mt ? mt : "");
    return 0;
}

static int add_blob(blob_ref *list, size_t *n, size_t cap, const blob_ref *b, hks_error *err)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i].digest, b->digest) == 0)
            return 0; /* a layer used twice is pushed once */
    }
    if (*n == cap)
        return hks_fail(err, 0, "manifest: more than %zu blobs", cap);
    list[(*n)++] = *b;
    return 0;
}

/* The manifest's bytes (checked against its descriptor), its media type and its blobs, into img
 * (whose desc and media_type select_manifest filled); what it allocates is img's even on error. */
static int load_manifest(const push_ctx *p, image *img, hks_error *err)
{
    const blob_ref *desc = &img->desc;
    char *media_type = img->media_type;
    char **bytes = &img->manifest;
    size_t *len = &img->manifest_len;
    char rel[128];
    if (blob_path(desc, rel, sizeof(rel)) < 0 ||
        read_file_at(p->dirfd, rel, MANIFEST_MAX, bytes, len, p->layout_dir, err) < 0)
        return hks_wrap(err, "manifest %s", desc->digest);
    char actual[72];
    sha256_digest(*bytes, *len, actual);
    if (strcmp(actual, desc->digest) != 0 || *len != desc->size)
        return hks_fail(err, 0,
                        "layout %s: blob %s is corrupt: %zu bytes hashing to %s, its descriptor "
                        "says %" PRIu64 " bytes",
                        p->layout_dir, desc->digest, *len, actual, desc->size);
    char where[400];
    snprintf(where, sizeof(where), "layout %.300s: manifest %s", p->layout_dir, desc->digest);
    json_error_t jerr;
    cleanup_json json_t *m = json_loadb(*bytes, *len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(m))
        return hks_fail(err, 0, "%s: %s", where, m ? "not an object" : jerr.text);
    if (json_integer_value(json_object_get(m, "schemaVersion")) != 2)
        return hks_fail(err, 0, "%s: schemaVersion is not 2", where);
    const char *own = json_string_value(json_object_get(m, "mediaType"));
    /* the PUT's Content-Type must be the manifest's own mediaType exactly */
    if (own && media_type[0] && strcmp(own, media_type) != 0)
        return hks_fail(err, 0, "%s: mediaType '%.100s' differs from index.json's '%.100s'", where,
                        own, media_type);
    if (own)
        snprintf(media_type, 128, "%s", own);
    if (strcmp(media_type, MT_OCI_MANIFEST) != 0 && strcmp(media_type, MT_DOCKER_MANIFEST) != 0)
        return hks_fail(err, 0,
                        "%s: media type '%.100s' is not an image manifest (OCI or Docker v2; "
                        "indexes are not pushed)",
                        where, media_type[0] ? media_type : "(none)");
    json_t *layers = json_object_get(m, "layers");
    if (!json_is_array(layers))
        return hks_fail(err, 0, "%s: no \"layers\" array", where);
    size_t cap = json_array_size(layers) + 1;
    img->blobs = calloc(cap, sizeof(*img->blobs));
    if (!img->blobs)
        return hks_fail(err, ENOMEM, "%s", where);
    blob_ref b;
    if (parse_descriptor(json_object_get(m, "config"), &b, where, err) < 0 ||
        add_blob(img->blobs, &img->n_blobs, cap, &b, err) < 0)
        return -1;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        if (parse_descriptor(l, &b, where, err) < 0 ||
            add_blob(img->blobs, &img->n_blobs, cap, &b, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- blobs ---- */

static char *resolve_or_fail(push_ctx *p, const reg_request *rq, const reg_response *rs,
                             hks_error *err)
{
    if (!rs->location) {
        hks_fail(err, 0, "registry %s, repository %s: %s: %s: HTTP %ld without a Location",
                 p->client.registry, p->client.repository, rq->what, rq->method, rs->status);
        return NULL;
    }
    char *url = bld_registry_resolve_location(rq->url, rs->location, p->client.insecure, err);
    if (!url)
        hks_wrap(err, "registry %s, repository %s: %s", p->client.registry, p->client.repository,
                 rq->what);
    return url;
}

/* POST an upload (a mount when mount_from is set): 1 mounted, 0 with *location an upload
 * session, -1 */
static int start_upload(push_ctx *p, const blob_ref *b, const char *what, char **location,
                        hks_error *err)
{
    reg_client *c = &p->client;
    bool mount = c->mount_from && strcmp(c->mount_from, c->repository) != 0;
    cleanup_free char *url = NULL;
    int n = mount ? asprintf(&url, "%s/blobs/uploads/?mount=%s&from=%s", p->repo_url, b->digest,
                             c->mount_from)
                  : asprintf(&url, "%s/blobs/uploads/", p->repo_url);
    if (n < 0)
        return hks_fail(err, ENOMEM, "%s", what);
    reg_request rq = {.method = "POST", .url = url, .what = what};
    cleanup_response reg_response rs = {0};
    if (reg_do(c, &rq, &rs, err) < 0)
        return -1;
    if (mount && rs.status == 201)
        return 1;
    if (rs.status != 202)
        return reg_status_error(c, &rq, &rs, err);
    *location = resolve_or_fail(p, &rq, &rs, err);
    return *location ? 0 : -1;
}

static int body_failure(const push_ctx *p, const blob_ref *b, const reg_body *body, hks_error *err)
{
    if (body->corrupt)
        return hks_fail(err, 0, "layout %s: blob %s is corrupt: its content hashes to %s",
                        p->layout_dir, b->digest, body->actual);
    if (body->read_errno == EIO)
        return hks_fail(err, 0, "layout %s: blob %s: shorter than its %" PRIu64 " bytes",
                        p->layout_dir, b->digest, b->size);
    return hks_fail(err, body->read_errno, "layout %s: blob %s: read", p->layout_dir, b->digest);
}

static int check_digest_header(const push_ctx *p, const reg_request *rq, const reg_response *rs,
                               const char *expected, hks_error *err)
{
    if (rs->digest && strcmp(rs->digest, expected) != 0)
        return hks_fail(err, 0,
                        "registry %s, repository %s: %s: the registry stored digest %.100s, not %s",
                        p->client.registry, p->client.repository, rq->what, rs->digest, expected);
    return 0;
}

static char *with_digest(const char *location, const char *digest)
{
    char *url = NULL;
    if (!location)
        return NULL;
    if (asprintf(&url, "%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', digest) < 0)
        return NULL;
    return url;
}

/* Send the blob into the upload session at *location: one PUT, or PATCHes of chunk_bytes then
 * a PUT without a body. The hash is checked before the last byte leaves. */
static int upload(push_ctx *p, const blob_ref *b, int fd, char **location, const char *what,
                  hks_error *err)
{
    reg_client *c = &p->client;
    cleanup_md EVP_MD_CTX *base = EVP_MD_CTX_new();
    cleanup_md EVP_MD_CTX *work = EVP_MD_CTX_new();
    if (!base || !work || EVP_DigestInit_ex(base, EVP_sha256(), NULL) != 1)
        return hks_fail(err, ENOMEM, "%s", what);
    reg_body body = {.fd = fd, .base = base, .work = work, .expect = b->digest};
    bool chunked = p->chunk_bytes > 0 && b->size > 0;
    uint64_t off = 0;
    while (chunked && off < b->size) {
        uint64_t len = b->size - off < p->chunk_bytes ? b->size - off : p->chunk_bytes;
        char range[64];
        snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, off, off + len - 1);
        body.start = off;
        body.len = len;
        body.final = off + len == b->size;
        reg_request rq = {.method = "PATCH",
                          .url = *location,
                          .what = what,
                          .content_type = "application/octet-stream",
                          .content_range = range,
                          .body = &body};
        cleanup_response reg_response rs = {0};
        if (reg_do(c, &rq, &rs, err) < 0)
            return body.corrupt || body.read_errno ? body_failure(p, b, &body, err) : -1;
        if (rs.status != 202)
            return reg_status_error(c, &rq, &rs, err);
        if (rs.location) {
            char *next = resolve_or_fail(p, &rq, &rs, err);
            if (!next)
                return -1;
            free(*location);
            *location = next;
        }
        /* this chunk is in: the next attempt of the next chunk starts from here */
        if (EVP_MD_CTX_copy_ex(base, work) != 1)
            return hks_fail(err, ENOMEM, "%s", what);
        off += len;
    }
    cleanup_free char *url = with_digest(*location, b->digest);
    if (!url)
        return hks_fail(err, ENOMEM, "%s", what);
    reg_body none = {.fd = -1};
    if (!chunked) {
        body.start = 0;
        body.len = b->size;
        body.final = true;
    }
    reg_request rq = {.method = "PUT",
                      .url = url,
                      .what = what,
                      .content_type = "application/octet-stream",
                      .body = chunked ? &none : &body};
    cleanup_response reg_response rs = {0};
    if (reg_do(c, &rq, &rs, err) < 0)
        return body.corrupt || body.read_errno ? body_failure(p, b, &body, err) : -1;
    if (rs.status != 201 && rs.status != 204)
        return reg_status_error(c, &rq, &rs, err);
    return check_digest_header(p, &rq, &rs, b->digest, err);
}

/* One blob: skipped when the registry has it, mounted when it can be, uploaded otherwise. */
static int push_blob(push_ctx *p, const blob_ref *b, hks_error *err)
{
    reg_client *c = &p->client;
    /* opened first: a blob missing from the layout is an error even when the registry has it */
    cleanup_fd int fd = open_blob(p, b, err);
    if (fd < 0)
        return -1;
    char what[128];
    snprintf(what, sizeof(what), "checking blob %s", b->digest);
    cleanup_free char *url = NULL;
    if (asprintf(&url, "%s/blobs/%s", p->repo_url, b->digest) < 0)
        return hks_fail(err, ENOMEM, "%s", what);
    reg_request head = {.method = "HEAD", .url = url, .what = what};
    cleanup_response reg_response rs = {0};
    if (reg_do(c, &head, &rs, err) < 0)
        return -1;
    if (rs.status == 200) {
        p->stats->blobs_skipped++;
        return 0;
    }
    if (rs.status != 404)
        return reg_status_error(c, &head, &rs, err);

    snprintf(what, sizeof(what), "uploading blob %s", b->digest);
    cleanup_free char *location = NULL;
    int mounted = start_upload(p, b, what, &location, err);
    if (mounted < 0)
        return -1;
    if (mounted) {
        p->stats->blobs_mounted++;
        return 0;
    }
    if (upload(p, b, fd, &location, what, err) < 0)
        return -1;
    p->stats->blobs_uploaded++;
    p->stats->bytes_uploaded += b->size;
    return 0;
}

static int put_manifest(push_ctx *p, const bld_image_ref *dest, const char *media_type,
                        const char *bytes, size_t len, const char *digest, hks_error *err)
{
    reg_client *c = &p->client;
    char what[128];
    snprintf(what, sizeof(what), "pushing manifest %s", digest);
    cleanup_free char *url = NULL;
    if (asprintf(&url, "%s/manifests/%s", p->repo_url, dest->tag[0] ? dest->tag : digest) < 0)
        return hks_fail(err, ENOMEM, "%s", what);
    reg_body body = {.mem = (const unsigned char *)bytes, .fd = -1, .len = len};
    reg_request rq = {
        .method = "PUT", .url = url, .what = what, .content_type = media_type, .body = &body};
    cleanup_response reg_response rs = {0};
    if (reg_do(c, &rq, &rs, err) < 0)
        return -1;
    if (rs.status < 200 || rs.status > 299)
        return reg_status_error(c, &rq, &rs, err);
    return check_digest_header(p, &rq, &rs, digest, err);
}

static int check_dest(const bld_registry_options *opt, const bld_image_ref *dest, hks_error *err)
{
    if (!dest->registry[0] || !bld_registry_valid_repository(dest->repository))
        return hks_fail(err, 0, "registry push: destination '%.200s/%.200s' is not valid",
                        dest->registry, dest->repository);
    /* both end up in a URL path: nothing but their grammar may pass */
    if (dest->tag[0] && !bld_registry_valid_tag(dest->tag))
        return hks_fail(err, 0, "registry push: destination tag '%.130s' is not valid", dest->tag);
    if (dest->digest[0] && !bld_registry_valid_digest(dest->digest))
        return hks_fail(err, 0, "registry push: destination digest '%.100s' is not sha256:<hex>",
                        dest->digest);
    if (opt->mount_from && !bld_registry_valid_repository(opt->mount_from))
        return hks_fail(err, 0, "registry push: mount source '%.200s' is not a repository name",
                        opt->mount_from);
    return 0;
}

/* The push proper, once the layout is loaded: the blobs, then the manifest. */
static int push_image(push_ctx *p, const bld_registry_options *opt, const bld_image_ref *dest,
                      const image *img, hks_error *err)
{
    if (dest->digest[0] && strcmp(dest->digest, img->desc.digest) != 0)
        return hks_fail(err, 0, "registry push: destination names digest %s, the image is %s",
                        dest->digest, img->desc.digest);
    int rc = reg_client_init(&p->client, opt, dest, err);
    snprintf(p->repo_url, sizeof(p->repo_url), "%s/v2/%s", p->client.base, dest->repository);
    for (size_t i = 0; rc == 0 && i < img->n_blobs; i++)
        rc = push_blob(p, &img->blobs[i], err);
    if (rc == 0)
        rc = put_manifest(p, dest, img->media_type, img->manifest, img->manifest_len,
                          img->desc.digest, err);
    reg_client_free(&p->client);
    return rc;
}

int bld_registry_push(const bld_registry_options *opt, const char *layout_dir, const char *ref_name,
                      const bld_image_ref *dest, char pushed_digest[72], bld_push_stats *stats,
                      hks_error *err)
{
    bld_registry_options defaults = {0};
    bld_push_stats scratch;
    if (!opt)
        opt = &defaults;
    if (!stats)
        stats = &scratch;
    memset(stats, 0, sizeof(*stats));
    pushed_digest[0] = '\0';
    if (check_dest(opt, dest, err) < 0)
        return -1;
    cleanup_fd int dirfd = open(layout_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return hks_fail(err, errno, "layout %s", layout_dir);
    push_ctx p = {
        .layout_dir = layout_dir, .dirfd = dirfd, .chunk_bytes = opt->chunk_bytes, .stats = stats};
    image img = {0};
    /* one exit below: the static analyzer does not follow cleanup attributes */
    int rc = select_manifest(&p, ref_name, &img.desc, img.media_type, err);
    if (rc == 0)
        rc = load_manifest(&p, &img, err);
    if (rc == 0)
        rc = push_image(&p, opt, dest, &img, err);
    free(img.manifest);
    free(img.blobs);
    if (rc == 0)
        memcpy(pushed_digest, img.desc.digest, strlen(img.desc.digest) + 1);
    return rc;
}
