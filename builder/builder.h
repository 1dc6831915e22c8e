/* Builder: the safe extraction of uploaded archives (deploy-function's "archive", a .tar.gz of a
 * Knative Functions project), deterministic build contexts, function images written as OCI image
 * layouts (the "layer" strategy), and a registry client that pushes them (OCI distribution API).
 *
 * Threads: every function is thread-safe; none changes the working directory or the umask. */
#ifndef HKS_BUILDER_H
#define HKS_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

typedef struct bld_extract_limits {
    size_t max_entries;       /* archive entries of any type, default 10000 */
    uint64_t max_total_bytes; /* file bytes written (uncompressed), default 64 MiB */
    uint64_t max_entry_bytes; /* bytes of one file, default 16 MiB */
    unsigned max_depth;       /* path components, default 32 (at most 256) */
} bld_extract_limits;

void bld_extract_limits_default(bld_extract_limits *l);

typedef struct bld_extract_stats {
    size_t files;   /* regular files */
    size_t dirs;    /* directory entries (parents made for a deeper entry are not counted) */
    size_t links;   /* symlinks and hardlinks */
    uint64_t bytes; /* file bytes written */
} bld_extract_stats;

/* Extract a tar or tar.gz held in memory into dest_dir, which exists and is empty (it is refused
 * otherwise, so that a failure never removes anything of the caller's). limits may be NULL for the
 * defaults, stats NULL when not wanted.
 *
 * Allowed: regular files (mode 0644, or 0755 when the entry has any x bit), directories (0755),
 * symlinks whose target stays inside the tree, hardlinks to files extracted earlier. Everything
 * else is refused: "..", absolute paths, empty names, paths deeper than max_depth, devices, FIFOs,
 * sockets, setuid/setgid/sticky bits, links that leave the tree, entries written through a
 * symlink, duplicates, the caps exceeded (bytes counted as written, and the decompressed stream is
 * capped as well, so a gzip bomb stops early).
 *
 * On any refusal, the partial tree below dest_dir is removed (dest_dir stays, empty), stats are
 * zero and err names the entry and why: "archive entry '../x': path leaves the tree". Returns 0 or
 * -1. */
int bld_extract_archive(const void *data, size_t len, const char *dest_dir,
                        const bld_extract_limits *limits, bld_extract_stats *stats, hks_error *err);

/* ---- build contexts (context.c) ---- */

/* A deterministic tar.gz of a function's build context: the function's files (code_dir), the
 * runtime's launcher directory (runtimes_dir/<runtime>/ without templates/ and Dockerfile.tmpl),
 * the Dockerfile rendered for the runtime and a .dockerignore, laid out as that Dockerfile.tmpl
 * expects: node, the files at the top and the launcher under .hks/runtime/ (so a function's own
 * Dockerfile, .dockerignore or .hks is refused); python, code/ and hks-runtime/. Entries sorted
 * by name, mtime 0, uid/gid 0 with empty names, modes 0644/0755, pax restricted, gzip without
 * name or timestamp: the same inputs give the same bytes. *out is malloc'd; digest is
 * "sha256:<hex>" of it. */
typedef struct bld_context_input {
    const char *runtime;      /* "python" or "node" */
    const char *code_dir;     /* the function's files */
    const char *runtimes_dir; /* <root>/runtimes */
} bld_context_input;

int bld_context_build(const bld_context_input *in, void **out, size_t *out_len, char digest[72],
                      hks_error *err);

/* The Dockerfile for a function of runtime: runtimes_dir/<runtime>/Dockerfile.tmpl, with the
 * dependency step kept only when code_dir brings package.json (node) or requirements.txt /
 * pyproject.toml dependencies (python). malloc'd. */
char *bld_dockerfile_render(const char *runtime, const char *runtimes_dir, const char *code_dir,
                            hks_error *err);

/* Whether the function's files in code_dir bring dependencies to install (node: a package.json
 * with dependencies; python: requirements.txt or pyproject.toml dependencies), the same decision
 * that keeps the Dockerfile's install step: such a function needs a Dockerfile build, not the
 * layer strategy. -1 with err for an unknown runtime or an unreadable code_dir. */
int bld_code_needs_install(const char *runtime, const char *code_dir, bool *out, hks_error *err);

/* ---- OCI images, layer strategy (image.c) ---- */

/* The function image: the base image (an OCI image layout directory holding one image) plus one
 * layer with the code at /code and the launcher at /hks/runtime, its config set to run the
 * launcher in serve mode as uid 1000 on $PORT. Written as an OCI image layout at layout_dir
 * (created; blobs/sha256/..., oci-layout, index.json whose manifest carries the annotation
 * org.opencontainers.image.ref.name = ref_name). Config and manifest are JSON_COMPACT |
 * JSON_SORT_KEYS; the layer's diff_id is the sha256 of the uncompressed tar, its digest that of
 * the gzip; the base's blobs are copied (hardlinked when possible). Deterministic: the same base,
 * code and runtime give the same manifest digest. */
typedef struct bld_image_input {
    const char *runtime;
    const char *code_dir;
    const char *runtimes_dir;
    const char *base_layout; /* OCI image layout of the base image */
    const char *ref_name;    /* tag recorded in index.json, e.g. "latest" (NULL: "latest") */
    const char *base_ref;    /* the base's manifest by its ref.name annotation; NULL: the only
                                one its index.json lists (an image index: its linux/amd64) */
} bld_image_input;

typedef struct bld_image_result {
    char manifest_digest[72]; /* "sha256:<hex>" */
    char config_digest[72];
    char layer_digest[72];
    char layer_diff_id[72];
    uint64_t manifest_size;
} bld_image_result;

int bld_image_build(const bld_image_input *in, const char *layout_dir, bld_image_result *out,
                    hks_error *err);

/* ---- registry client (registry.c) ---- */

/* registry/repository[:tag][@sha256:digest]; "docker.io" defaults as docker does. */
typedef struct bld_image_ref {
    char registry[256]; /* host[:port] */
    char repository[256];
    char tag[129];
    char digest[72];
} bld_image_ref;

int bld_image_ref_parse(const char *text, bld_image_ref *out, hks_error *err);

typedef struct bld_registry_options {
    const char *docker_config; /* config.json with "auths" (basic "auth" or identitytoken);
                                  NULL: $DOCKER_CONFIG/config.json, else ~/.docker/config.json */
    const char *ca_file;       /* PEM bundle to verify TLS against; NULL: the system's */
    bool insecure;             /* plain HTTP allowed for this registry (never silently) */
    unsigned retries;          /* per request, with exponential backoff; default 3 */
    unsigned stall_s;          /* a request that moves no byte for this long fails (and is
                                  retried); 0: 60 s. A registry that hangs costs at most
                                  (retries + 1) x stall_s plus the pauses between them */
    size_t chunk_bytes;        /* 0: monolithic uploads; else chunked PATCHes of this size */
    const char *mount_from;    /* repository to cross-mount existing blobs from (the base's) */
} bld_registry_options;

typedef struct bld_push_stats {
    unsigned blobs_uploaded, blobs_skipped, blobs_mounted;
    uint64_t bytes_uploaded;
} bld_push_stats;

/* Push the image that layout_dir's index.json names ref_name (NULL: its only manifest) to dest:
 * each blob HEADed first (present: skipped), else mounted from mount_from when possible, else
 * uploaded (POST then PUT, or PATCHes then PUT), relative Location headers resolved; then the
 * manifest PUT with its exact media type, to dest's tag (or digest). Anonymous, basic and bearer
 * token auth (the WWW-Authenticate challenge answered with the credentials of docker_config).
 * Errors name the registry, the repository, the step and the HTTP status. pushed_digest gets the
 * manifest's digest. */
int bld_registry_push(const bld_registry_options *opt, const char *layout_dir, const char *ref_name,
                      const bld_image_ref *dest, char pushed_digest[72], bld_push_stats *stats,
                      hks_error *err);

#endif
