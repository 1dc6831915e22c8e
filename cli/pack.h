/* Packing a function project for deploy-function's "archive": a tar.gz (libarchive) of the
 * directory, built in memory, reproducible (names sorted, times, owners and the gzip timestamp
 * zeroed), without .git, node_modules, __pycache__, .venv and .hks. */
#ifndef HKS_CLI_PACK_H
#define HKS_CLI_PACK_H

#include "cli/util.h"

typedef struct cli_pack_stats {
    size_t files, dirs, links, skipped;
    unsigned long long bytes; /* of the files, before compression */
} cli_pack_stats;

/* hksd's extraction caps (builder/README.md): entries, file bytes, path depth. */
#define CLI_PACK_MAX_ENTRIES 10000
#define CLI_PACK_MAX_BYTES   (64ULL * 1024 * 1024)
#define CLI_PACK_MAX_DEPTH   32

/* Pack dir into out (tar.gz bytes). Files other than regular files, directories and symlinks
 * are skipped with a warning. */
int cli_pack_dir(const char *dir, cli_buf *out, cli_pack_stats *stats, cli_error *err);

/* Whether a directory entry of this name is left out of the archive. */
bool cli_pack_skipped_name(const char *name);

#endif
