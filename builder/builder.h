/* Builder: build contexts and the safe extraction of uploaded archives (deploy-function's
 * "archive", a .tar.gz of a Knative Functions project).
 *
 * Threads: every function is thread-safe; none changes the working directory or the umask. */
#ifndef HKS_BUILDER_H
#define HKS_BUILDER_H

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

#endif
