/* hksd build: a function image as an OCI image layout (the "layer" strategy: the base image plus
 * one layer with the code and the launcher), and/or the function's deterministic build context
 * (a tar.gz for a Dockerfile builder such as Kaniko). Offline unless --push sends the image to a
 * registry in the same process, as a deploy does (build, then push); no daemon state. */
#include "commands.h"

#include "../builder/builder.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: hksd build --runtime node|python --code DIR\n"
    "                  [--base-layout DIR --oci-layout OUT [--tag NAME] [--base-ref NAME]]\n"
    "                  [--push DEST_REF [--insecure] [--ca-file F] [--docker-config F]\n"
    "                   [--mount-from REPO]]\n"
    "                  [--context FILE]\n"
    "\n"
    "  --runtime R        the function's runtime: node or python\n"
    "  --code DIR         the function's files\n"
    "  --base-layout DIR  the runtime's base image, an OCI image layout\n"
    "  --base-ref NAME    the base image in DIR by its ref name (default: its only one)\n"
    "  --oci-layout OUT   write the function image there as an OCI image layout (OUT must\n"
    "                     not exist or be empty): the base plus a layer with the code at /code\n"
    "                     and the launcher at /hks/runtime\n"
    "  --tag NAME         the image's ref name in OUT/index.json (default: latest)\n"
    "  --push DEST_REF    then push the image to a registry (as `hksd push --oci-layout OUT\n"
    "                     --tag NAME DEST_REF` does, without a second process)\n"
    "  --insecure, --ca-file F, --docker-config F, --mount-from REPO\n"
    "                     for --push: as for `hksd push` (hksd push --help)\n"
    "  --context FILE     write the deterministic build context (tar.gz: code, launcher,\n"
    "                     Dockerfile, .dockerignore) to FILE\n"
    "  --help             this text\n"
    "\n"
    "Prints one JSON line: manifest_digest, config_digest, layer_digest, layer_diff_id and\n"
    "oci_layout for an image; push {digest, uploaded, skipped, mounted, bytes} with --push;\n"
    "context, context_digest and context_size for a context. When the push fails, the layout\n"
    "stays written.\n"
    "Exit status: 0 done, 1 failed (one line on stderr says what), 2 usage.\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "hksd build: %s\nTry 'hksd build --help'.\n", msg);
    return 2;
}

/* Write data to path through a temporary file renamed into place: never a partial context. */
static int write_atomic(const char *path, const void *data, size_t len, hks_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return hks_fail(err, ENAMETOOLONG, "%s", path);
    cleanup_fd int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return hks_fail(err, errno, "create %s", tmp);
    if (fchmod(fd, 0644) < 0 || hks_write_all(fd, data, len) < 0 || fsync(fd) < 0 ||
        rename(tmp, path) < 0) {
        int saved = errno;
        unlink(tmp);
        return hks_fail(err, saved, "write %s", path);
    }
    return 0;
}

typedef struct build_args {
    const char *runtime, *code, *base_layout, *base_ref, *oci_layout, *tag, *context, *push;
    bld_registry_options registry; /* for push */
} build_args;

static int parse(int argc, char **argv, build_args *a)
{
    static const struct option opts[] = {
        {"runtime", required_argument, NULL, 'r'},
        {"code", required_argument, NULL, 'c'},
        {"base-layout", required_argument, NULL, 'b'},
        {"base-ref", required_argument, NULL, 'B'},
        {"oci-layout", required_argument, NULL, 'o'},
        {"tag", required_argument, NULL, 't'},
        {"context", required_argument, NULL, 'x'},
        {"push", required_argument, NULL, 'p'},
        {"insecure", no_argument, NULL, 'i'},
        {"ca-file", required_argument, NULL, 'C'},
        {"docker-config", required_argument, NULL, 'd'},
        {"mount-from", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    optind = 1;
    opterr = 0; /* our own message, one line */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            a->runtime = optarg;
            break;
        case 'c':
            a->code = optarg;
            break;
        case 'b':
            a->base_layout = optarg;
            break;
        case 'B':
            a->base_ref = optarg;
            break;
        case 'o':
            a->oci_layout = optarg;
            break;
        case 't':
            a->tag = optarg;
            break;
        case 'x':
            a->context = optarg;
            break;
        case 'p':
            a->push = optarg;
            break;
        case 'i':
            a->registry.insecure = true;
            break;
        case 'C':
            a->registry.ca_file = optarg;
            break;
        case 'd':
            a->registry.docker_config = optarg;
            break;
        case 'm':
            a->registry.mount_from = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default: {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown option or missing argument: '%.100s'",
                     argv[optind - 1]);
            return usage_error(msg);
        }
        }
    }
    if (optind < argc)
        return usage_error("unexpected arguments");
    if (!a->runtime || (strcmp(a->runtime, "node") != 0 && strcmp(a->runtime, "python") != 0))
        return usage_error("--runtime node or --runtime python is required");
    if (!a->code)
        return usage_error("--code DIR is required");
    if (!a->oci_layout && !a->context)
        return usage_error("nothing to write: give --oci-layout OUT (with --base-layout DIR), "
                           "--context FILE, or both");
    if (a->oci_layout && !a->base_layout)
        return usage_error("--oci-layout needs --base-layout DIR");
    if (!a->oci_layout && (a->base_layout || a->tag || a->base_ref || a->push))
        return usage_error("--base-layout, --base-ref, --tag and --push go with --oci-layout");
    const bld_registry_options *ro = &a->registry;
    if (!a->push && (ro->insecure || ro->ca_file || ro->docker_config || ro->mount_from))
        return usage_error(
            "--insecure, --ca-file, --docker-config and --mount-from go with --push");
    return -1;
}

/* Each step adds its fields to out, or says on stderr what failed and returns -1. */
static int build_image(const build_args *a, const char *runtimes_dir, json_t *out)
{
    bld_image_input in = {.runtime = a->runtime,
                          .code_dir = a->code,
                          .runtimes_dir = runtimes_dir,
                          .base_layout = a->base_layout,
                          .ref_name = a->tag ? a->tag : "latest",
                          .base_ref = a->base_ref};
    bld_image_result res;
    hks_error err = {0};
    if (bld_image_build(&in, a->oci_layout, &res, &err) < 0) {
        fprintf(stderr, "hksd build: image: %s\n", err.msg);
        return -1;
    }
    int bad = json_object_set_new(out, "manifest_digest", json_string(res.manifest_digest));
    bad |= json_object_set_new(out, "config_digest", json_string(res.config_digest));
    bad |= json_object_set_new(out, "layer_digest", json_string(res.layer_digest));
    bad |= json_object_set_new(out, "layer_diff_id", json_string(res.layer_diff_id));
    bad |= json_object_set_new(out, "oci_layout", json_string(a->oci_layout));
    return bad ? 1 : 0; /* 1: built, but not shown (a path that is not UTF-8) */
}

static int build_context(const build_args *a, const char *runtimes_dir, json_t *out)
{
    bld_context_input in = {
        .runtime = a->runtime, .code_dir = a->code, .runtimes_dir = runtimes_dir};
    cleanup_free void *data = NULL;
    size_t len = 0;
    char digest[72];
    hks_error err = {0};
    if (bld_context_build(&in, &data, &len, digest, &err) < 0 ||
        write_atomic(a->context, data, len, &err) < 0) {
        fprintf(stderr, "hksd build: context: %s\n", err.msg);
        return -1;
    }
    int bad = json_object_set_new(out, "context", json_string(a->context));
    bad |= json_object_set_new(out, "context_digest", json_string(digest));
    bad |= json_object_set_new(out, "context_size", json_integer((json_int_t)len));
    return bad ? 1 : 0;
}

/* The layout just written, pushed as `hksd push` would: the network step comes last, so that a
 * registry that is down still leaves the offline results written. */
static int push_image(const build_args *a, const bld_image_ref *dest, json_t *out)
{
    bld_registry_options ro = a->registry;
    ro.retries = 3;
    char digest[72];
    bld_push_stats stats;
    hks_error err = {0};
    if (bld_registry_push(&ro, a->oci_layout, a->tag ? a->tag : "latest", dest, digest, &stats,
                          &err) < 0) {
        fprintf(stderr, "hksd build: push: %s (the image layout %s is written)\n", err.msg,
                a->oci_layout);
        return -1;
    }
    json_t *push = json_pack(
        "{s:s,s:I,s:I,s:I,s:I}", "digest", digest, "uploaded", (json_int_t)stats.blobs_uploaded,
        "skipped", (json_int_t)stats.blobs_skipped, "mounted", (json_int_t)stats.blobs_mounted,
        "bytes", (json_int_t)stats.bytes_uploaded);
    return json_object_set_new(out, "push", push) < 0 ? 1 : 0;
}

int hksd_cmd_build(const hksd_config *cfg, int argc, char **argv)
{
    build_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    bld_image_ref dest;
    hks_error err = {0};
    if (a.push && bld_image_ref_parse(a.push, &dest, &err) < 0) {
        char msg[sizeof(err.msg) + 16];
        snprintf(msg, sizeof(msg), "--push: %s", err.msg);
        return usage_error(msg);
    }
    char runtimes_dir[PATH_MAX + 16];
    snprintf(runtimes_dir, sizeof(runtimes_dir), "%s/runtimes", cfg->root);
    json_t *out = json_object();
    if (!out) {
        fputs("hksd build: out of memory\n", stderr);
        return 1;
    }
    /* each step: -1 failed, 1 done but its fields are not in out, 0 done */
    int bad = 0, step = 0;
    if (a.oci_layout && (step = build_image(&a, runtimes_dir, out)) >= 0)
        bad |= step;
    if (step >= 0 && a.context && (step = build_context(&a, runtimes_dir, out)) >= 0)
        bad |= step;
    if (step >= 0 && a.push && (step = push_image(&a, &dest, out)) >= 0)
        bad |= step;
    if (step < 0) {
        json_decref(out);
        return 1;
    }
    /* paths given on the command line may not be UTF-8: jansson then refuses them */
    char *line = bad ? NULL : json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (!line) {
        fputs("hksd build: the result cannot be shown as JSON (a path that is not UTF-8?); the "
              "files were written\n",
              stderr);
        return 1;
    }
    printf("%s\n", line);
    free(line);
    return fflush(stdout) == 0 ? 0 : 1;
}
