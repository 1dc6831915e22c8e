/* hksd push: an OCI image layout (what `hksd build` writes) pushed to a registry with the
 * builder's registry client; one JSON line on success, so that scripts and tests read the digest
 * and what was uploaded, skipped or mounted. */
#include "commands.h"

#include "../builder/builder.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include <jansson.h>

static const char usage[] =
    "usage: hksd push --oci-layout DIR [options] DEST_REF\n"
    "\n"
    "Push the image of an OCI image layout to a registry (OCI distribution API) and print\n"
    "{\"digest\",\"uploaded\",\"skipped\",\"mounted\",\"bytes\"} as one JSON line.\n"
    "DEST_REF is registry/repository[:tag][@sha256:digest]; without a tag the manifest is\n"
    "pushed by its digest. Credentials come from a docker config.json (\"auths\").\n"
    "\n"
    "  --oci-layout DIR      the layout (oci-layout, index.json, blobs/sha256/)\n"
    "  --tag NAME            the image of the layout whose org.opencontainers.image.ref.name\n"
    "                        is NAME (default: the layout's only image)\n"
    "  --insecure            talk plain HTTP to this registry (never chosen on its own)\n"
    "  --ca-file F           verify the registry's TLS certificate against this PEM bundle\n"
    "                        (default: the system's)\n"
    "  --docker-config F     credentials file (default: $DOCKER_CONFIG/config.json, else\n"
    "                        ~/.docker/config.json)\n"
    "  --chunk-size N        upload blobs in PATCHes of N bytes (512K, 4M; default: one PUT)\n"
    "  --mount-from REPO     cross-mount blobs the registry has in REPO instead of uploading\n"
    "  --retries N           attempts after the first for errors worth retrying (default 3)\n"
    "  --stall-timeout S     a request that receives nothing for S seconds is dropped and\n"
    "                        retried (default 60; 1 to 3600)\n"
    "  --help                this text\n"
    "\n"
    "Exit status: 0 pushed, 1 failed (one line on stderr says why), 2 usage.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hksd push: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(hksd push --help lists the options)\n", stderr);
    return 2;
}

int hksd_cmd_push(const hksd_config *cfg, int argc, char **argv)
{
    (void)cfg; /* the push needs none of the daemon's settings */
    static const struct option opts[] = {
        {"oci-layout", required_argument, NULL, 'l'},
        {"tag", required_argument, NULL, 't'},
        {"insecure", no_argument, NULL, 'i'},
        {"ca-file", required_argument, NULL, 'c'},
        {"docker-config", required_argument, NULL, 'd'},
        {"chunk-size", required_argument, NULL, 's'},
        {"mount-from", required_argument, NULL, 'm'},
        {"retries", required_argument, NULL, 'r'},
        {"stall-timeout", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bld_registry_options ro = {.retries = 3};
    const char *layout = NULL, *tag = NULL;
    unsigned long long value = 0;
    int opt;
    optind = 1;
    opterr = 0; /* our own message, on one line */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            layout = optarg;
            break;
        case 't':
            tag = optarg;
            break;
        case 'i':
            ro.insecure = true;
            break;
        case 'c':
            ro.ca_file = optarg;
            break;
        case 'd':
            ro.docker_config = optarg;
            break;
        case 's':
            if (hks_parse_size(optarg, &value) < 0 || value == 0 || value > (1ULL << 32))
                return usage_error("--chunk-size '%s' is not a size from 1 to 4G", optarg);
            ro.chunk_bytes = (size_t)value;
            break;
        case 'm':
            ro.mount_from = optarg;
            break;
        case 'r':
            /* 0 would mean the library's default (3): at least one retry is always made */
            if (hks_parse_uint(optarg, 1, 10, &value) < 0)
                return usage_error("--retries '%s' is not a number from 1 to 10", optarg);
            ro.retries = (unsigned)value;
            break;
        case 'S':
            if (hks_parse_uint(optarg, 1, 3600, &value) < 0)
                return usage_error("--stall-timeout '%s' is not a number of seconds from 1 to 3600",
                                   optarg);
            ro.stall_s = (unsigned)value;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return usage_error("unknown option or missing value: '%s'",
                               optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (!layout)
        return usage_error("%s", "--oci-layout DIR is required");
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "DEST_REF is required"
                                                : "exactly one DEST_REF is expected");
    hks_error err = {0};
    bld_image_ref dest;
    if (bld_image_ref_parse(argv[optind], &dest, &err) < 0)
        return usage_error("%s", err.msg);

    char digest[72];
    bld_push_stats stats;
    if (bld_registry_push(&ro, layout, tag, &dest, digest, &stats, &err) < 0) {
        fprintf(stderr, "hksd push: %s\n", err.msg);
        return 1;
    }
    json_t *out = json_pack(
        "{s:s,s:I,s:I,s:I,s:I}", "digest", digest, "uploaded", (json_int_t)stats.blobs_uploaded,
        "skipped", (json_int_t)stats.blobs_skipped, "mounted", (json_int_t)stats.blobs_mounted,
        "bytes", (json_int_t)stats.bytes_uploaded);
    if (!out || json_dumpf(out, stdout, JSON_COMPACT) < 0 || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        json_decref(out);
        fputs("hksd push: cannot write the result\n", stderr);
        return 1;
    }
    json_decref(out);
    return 0;
}
