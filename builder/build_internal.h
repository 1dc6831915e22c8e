/* Private to builder/: what build contexts (context.c) and image layers (image.c) share: the
 * runtimes' layouts, lists of archive entries gathered from directories, the deterministic tar.gz
 * writer (tarball.c) and sha256 digests. */
#ifndef HKS_BUILD_INTERNAL_H
#define HKS_BUILD_INTERNAL_H

#include "builder.h"

#include <jansson.h>
#include <sys/types.h>

/* ---- runtimes (context.c) ---- */

typedef struct bld_runtime {
    const char *name;        /* "node", "python" */
    const char *interpreter; /* found through PATH in the image: "node", "python3" */
    const char *launcher;    /* in runtimes/<name>/ and at /hks/runtime/ in the image */
    /* where Dockerfile.tmpl expects things in the build context ("" is its root) */
    const char *ctx_code;
    const char *ctx_runtime;
    const char *const *reserved; /* top-level code names the context needs for itself */
    const char *const *env;      /* Env the image gets besides PORT and HKS_FUNCTION_DIR, as the
                                    runtime's Dockerfile.tmpl sets it */
    /* Dockerfile.tmpl's dependency step: the RUN holding it contains dep_anchor; left out, it
     * loses the shell statements (a line, or an if ... fi block) starting with one of dep_drop,
     * and so do single-line COPYs naming one of them */
    const char *dep_anchor;
    const char *const *dep_drop;
    const char *dep_note; /* the comment that replaces the step's own */
} bld_runtime;

/* NULL with err set for an unknown name. */
const bld_runtime *bld_runtime_find(const char *name, hks_error *err);

/* Whether code_dir brings dependencies to install: node, a package.json with dependencies or
 * optionalDependencies (an unreadable one counts: npm will say what is wrong); python, a
 * requirements.txt with a requirement, or a pyproject.toml whose [project] lists dependencies. */
int bld_code_has_dependencies(const bld_runtime *rt, const char *code_dir, bool *out,
                              hks_error *err);

/* The files of runtimes/<name>/ that go into images and contexts: not templates/ (what
 * `hks-func create` copies), not Dockerfile.tmpl (rendered instead), no __pycache__ (left by
 * whoever ran the launcher from the checkout, and would make builds differ). rel is relative to
 * the runtime's directory. */
bool bld_runtime_skip(const char *rel, bool is_dir);

/* ---- digests (tarball.c) ---- */

#define BLD_DIGEST_LEN 71 /* "sha256:" + 64 hex digits */

/* "sha256:<hex>" of data. Returns 0, or -1 when OpenSSL fails. */
int bld_sha256(const void *data, size_t len, char out[72], hks_error *err);
/* "sha256:<hex>" of everything read from fd (*size bytes), copied to out as well when out >= 0.
 * -1 with errno set. */
int bld_sha256_fd(int fd, int out, char digest[72], uint64_t *size);
/* "sha256:<64 lowercase hex>" and nothing else; hex gets the 64 digits. */
bool bld_digest_parse(const char *digest, char hex[65]);

/* All of the file name below dir (opened with extra open flags, e.g. O_NOFOLLOW), which must be
 * a regular file of at most cap bytes, NUL-terminated in *data (malloc'd). -1 with errno set
 * (EFBIG over the cap, EINVAL not a regular file, EIO when it shrank while read). */
int bld_read_file_at(int dir, const char *name, int flags, size_t cap, char **data, size_t *len);

/* ---- archive entries (tarball.c) ---- */

typedef struct bld_entry {
    char *name;          /* in the archive: no leading or trailing '/', no "." or ".." */
    char kind;           /* 'd' directory, 'f' file read from disk, 'm' file from memory, 'l' */
    const char *origin;  /* for messages: "function code", "runtime", ... */
    int root;            /* 'f': index into bld_entries.roots */
    char *rel;           /* 'f': path below that root */
    char *target;        /* 'l' */
    unsigned char *data; /* 'm', with len and perm */
    size_t len;
    mode_t perm;
} bld_entry;

typedef struct bld_entries {
    bld_entry *v;
    size_t n, cap;
    char **roots; /* directories the 'f' entries are read from */
    size_t nroots;
    uint64_t bytes; /* file bytes so far, capped */
} bld_entries;

void bld_entries_free(bld_entries *l);
/* A directory entry, and those of its parents. Directories named twice are one entry. */
int bld_entries_add_dir(bld_entries *l, const char *name, const char *origin, hks_error *err);
/* A file from memory (copied), mode 0644 or 0755. */
int bld_entries_add_data(bld_entries *l, const char *name, const void *data, size_t len,
                         mode_t perm, const char *origin, hks_error *err);
/* Everything below dir (its directories, regular files and symlinks, never following one) under
 * prefix ("" for the archive's top), plus prefix's own directories. skip (may be NULL) leaves out
 * what it returns true for, and all below a skipped directory. Refused, naming the file: other
 * types (FIFOs, sockets, devices), symlinks that are absolute or climb out of dir, names with
 * control characters, more than 100000 entries or 1 GiB of files, a depth over 256. */
int bld_entries_add_tree(bld_entries *l, const char *dir, const char *prefix,
                         bool (*skip)(const char *rel, bool is_dir), const char *origin,
                         hks_error *err);

/* ---- the deterministic tar.gz writer (tarball.c) ---- */

typedef struct bld_tar_result {
    char diff_id[72]; /* sha256 of the uncompressed tar */
    char digest[72];  /* sha256 of the gzip */
    uint64_t tar_size, gz_size;
} bld_tar_result;

/* Write l's entries sorted by name (bytewise, so parents come first) as a pax-restricted tar,
 * gzip-compressed without name or timestamp at a pinned level: mtime 0, uid/gid 0 with empty
 * names, directories 0755, files 0644 or 0755 (any x bit on disk), symlinks as they are. Two
 * entries of the same name (unless both directories) are refused, naming both origins. The
 * gzip goes to fd when it is >= 0, else to *mem (malloc'd, *mem_len bytes). */
int bld_tar_write(bld_entries *l, int fd, void **mem, size_t *mem_len, bld_tar_result *res,
                  hks_error *err);

/* ---- OCI image layouts (layout.c) ---- */

#define BLD_MT_OCI_MANIFEST   "application/vnd.oci.image.manifest.v1+json"
#define BLD_MT_OCI_INDEX      "application/vnd.oci.image.index.v1+json"
#define BLD_MT_OCI_CONFIG     "application/vnd.oci.image.config.v1+json"
#define BLD_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define BLD_ANNOTATION_REF    "org.opencontainers.image.ref.name"

/* A layout directory: the base image's (read) or the result's (written). */
typedef struct bld_layout {
    const char *role; /* "base image", "image layout": for messages */
    const char *path;
    int fd;    /* the directory */
    int blobs; /* its blobs/sha256 */
} bld_layout;

void bld_layout_close(bld_layout *lo);
/* An existing layout, checked to be one (its oci-layout file). */
int bld_layout_open(bld_layout *lo, const char *path, hks_error *err);
/* A new layout at path, which must not exist or be an empty directory (*created says whether
 * the directory was made here), with blobs/sha256/ made. */
int bld_layout_create(bld_layout *lo, const char *path, bool *created, hks_error *err);
/* Remove what bld_layout_create and the blob writers put in lo (and the directory when
 * created): a failed build leaves nothing behind. */
void bld_layout_remove(bld_layout *lo, bool created);

/* A blob read whole, at most cap bytes, its size (unless size < 0) and digest checked. */
int bld_blob_read(const bld_layout *lo, const char *digest, int64_t size, size_t cap, char **data,
                  size_t *len, hks_error *err);
/* A blob of from put into to (hardlinked when possible, else copied), its size and digest
 * checked either way. */
int bld_blob_copy(const bld_layout *from, const bld_layout *to, const char *digest, int64_t size,
                  hks_error *err);
/* Bytes stored as a blob; digest gets its name. */
int bld_blob_put(const bld_layout *lo, const void *data, size_t len, char digest[72],
                 hks_error *err);
/* A file to stream a blob into (*tmp_name gets its name), then stored under its digest. */
int bld_blob_begin(const bld_layout *lo, char tmp_name[64], hks_error *err);
int bld_blob_commit(const bld_layout *lo, const char *tmp_name, const char *digest, hks_error *err);
/* A file at the top of the layout (oci-layout, index.json), replaced atomically. */
int bld_layout_put_file(const bld_layout *lo, const char *name, const void *data, size_t len,
                        hks_error *err);

/* The base image a layout holds: its manifest (OCI or Docker schema 2), verified config and
 * layer descriptors (media types made OCI). */
typedef struct bld_base {
    char manifest_digest[72];
    json_t *config; /* parsed, as the base has it */
    json_t *layers; /* array of descriptors, OCI media types */
} bld_base;

void bld_base_free(bld_base *b);
/* ref: the manifest whose ref.name annotation it is; NULL: the only one of index.json. An image
 * index (nested, or the one picked) yields its linux/amd64 image. */
int bld_base_load(const bld_layout *lo, const char *ref, bld_base *b, hks_error *err);

/* Why a symlink at link_depth (1 = the top directory) with this target would leave its tree, or
 * NULL when it stays inside: the one rule for unpacking uploads (extract.c) and packing code
 * (tarball.c). */
const char *bld_symlink_target_problem(const char *target, unsigned link_depth);

#endif
