/* The audit log: JSON Lines, one record per state change and per execution, each written with one
 * write(2) and fdatasync'd, so a record is whole or absent after a crash. (daemon-private)
 *
 * Tamper evidence: every record carries "seq" (1, 2, 3, ... across rotations) and "prev", the
 * "sha256:<hex>" of the previous record's exact line (its bytes without the newline); the first
 * record of a fresh log has prev HKSD_AUDIT_GENESIS. Editing, removing or reordering a record
 * breaks a link that hksd_audit_verify_*() finds, unless every later record is rewritten too: the
 * head a verification prints ("seq N sha256:...") kept elsewhere anchors the chain against that.
 *
 * Files: <state_dir>/audit.log, rotated by size to audit.log.1 (newest) ... audit.log.<keep>
 * (oldest); the chain continues from file to file. Writer: audit_log.c; reading, verification
 * and the file set: audit_chain.c. */
#ifndef HKSD_AUDIT_LOG_H
#define HKSD_AUDIT_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "../common/common.h"

/* A record's line (without its newline) is at most this long; the writer refuses longer ones. */
#define HKSD_AUDIT_MAX_RECORD (1024 * 1024)
/* "sha256:" + 64 hex digits, and its NUL */
#define HKSD_AUDIT_HASH_LEN 72
#define HKSD_AUDIT_GENESIS  "sha256:0000000000000000000000000000000000000000000000000000000000000000"

/* ---- writing (audit_log.c) ------------------------------------------------------------------ */

typedef struct hksd_audit_log hksd_audit_log;

/* Open (create 0600) the log at path for appending and recover the chain's head from its last
 * record (or from path.1's when path is empty or missing). A torn last line (no newline: a crash
 * during a write) is truncated away with a warning on stderr. rotate_bytes: a record that would
 * take the file past this size first moves it to path.1 (path.N to path.N+1, path.<keep> and any
 * older removed); 0: never rotated. */
int hksd_audit_log_open(const char *path, uint64_t rotate_bytes, unsigned keep,
                        hksd_audit_log **out, hks_error *err);
/* Append one record: sets "ts", "seq" and "prev" in it (overwriting any), then one write(2) and
 * fdatasync. Thread-safe; records are written in seq order. */
int hksd_audit_log_append(hksd_audit_log *log, json_t *record, hks_error *err);
/* The seq and hash of the last record written (0 and HKSD_AUDIT_GENESIS when none). */
void hksd_audit_log_head(hksd_audit_log *log, uint64_t *seq, char hash[HKSD_AUDIT_HASH_LEN]);
void hksd_audit_log_close(hksd_audit_log *log);

/* ---- records (audit_chain.c) ---------------------------------------------------------------- */

/* "sha256:<hex>" of len bytes. */
void hksd_audit_hash(const char *data, size_t len, char out[HKSD_AUDIT_HASH_LEN]);

/* A line parsed: the JSON object (owned: json_decref it) and its chain fields. Returns 0, or -1
 * with why in `why` (not JSON, not an object, no integer seq >= 1, prev malformed). */
typedef struct hksd_audit_record {
    json_t *json;
    uint64_t seq;
    char prev[HKSD_AUDIT_HASH_LEN];
} hksd_audit_record;
int hksd_audit_record_parse(const char *line, size_t len, hksd_audit_record *out, char *why,
                            size_t why_size);

/* Lines of one file, streamed through a fixed buffer (HKSD_AUDIT_MAX_RECORD + a read's worth). */
typedef struct hksd_audit_reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    bool eof, skipping;
    uint64_t line_no; /* of the line last returned, from 1 */
    /* the file is being appended to (the newest of a live log): a last line without its newline
     * may be a write in progress, so it is read again for up to half a second before it counts
     * as torn */
    bool settle;
    unsigned settle_waits;
} hksd_audit_reader;
int hksd_audit_reader_init(hksd_audit_reader *r, int fd, hks_error *err);
/* The next line (without its newline). Returns 1 with *line, *len; 0 at the end; -1 on a read
 * error. *flags: HKSD_AUDIT_LINE_TORN (the file ends without a newline), HKSD_AUDIT_LINE_LONG
 * (longer than HKSD_AUDIT_MAX_RECORD: *line holds its start, the rest is skipped). */
#define HKSD_AUDIT_LINE_TORN 1
#define HKSD_AUDIT_LINE_LONG 2
int hksd_audit_reader_next(hksd_audit_reader *r, const char **line, size_t *len, int *flags,
                           hks_error *err);
void hksd_audit_reader_free(hksd_audit_reader *r);

/* ---- the file set (audit_chain.c) ----------------------------------------------------------- */

typedef struct hksd_audit_file {
    char *path;
    const char *name; /* what messages call it: the base name, or the path given */
    int fd;
} hksd_audit_file;
typedef struct hksd_audit_files {
    hksd_audit_file *files; /* oldest first */
    size_t n;
    bool live; /* the newest may be appended to while it is read (a log, not --file paths) */
} hksd_audit_files;

/* The log at log_path and its rotated files, oldest (path.<highest N>) to newest (log_path), all
 * opened at once, so that a rotation while they are read changes nothing (a rotation between
 * listing and opening is retried). Fails when none exists. */
int hksd_audit_files_open_log(const char *log_path, hksd_audit_files *out, hks_error *err);
/* These files, in this order. */
int hksd_audit_files_open_paths(char *const *paths, size_t n, hksd_audit_files *out,
                                hks_error *err);
void hksd_audit_files_close(hksd_audit_files *files);

/* ---- verification (audit_chain.c) ----------------------------------------------------------- */

typedef struct hksd_audit_report {
    uint64_t records; /* lines read */
    uint64_t first_seq, last_seq;
    char head[HKSD_AUDIT_HASH_LEN]; /* hash of the last line */
    /* the first record's seq is > 1: its prev could not be checked (older records rotated out) */
    bool chain_truncated;
    uint64_t problems;
    char first_problem[1536]; /* "audit.log:17: seq 42: prev does not match ..." */
} hksd_audit_report;

/* Called for each problem found, with the message as in first_problem. */
typedef void hksd_audit_problem_fn(void *ctx, const char *problem);

/* The state of a verification, fed one line at a time: constant memory. */
typedef struct hksd_audit_verifier {
    hksd_audit_report report;
    bool have_prev;    /* prev_hash and prev_seq describe the line before */
    bool unknown_prev; /* the line before was not a record: skip the next link check */
    uint64_t prev_seq;
    char prev_hash[HKSD_AUDIT_HASH_LEN];
    uint64_t anchor_seq; /* 0: none */
    char anchor_hash[HKSD_AUDIT_HASH_LEN];
    bool anchor_seen;
    hksd_audit_problem_fn *on_problem;
    void *ctx;
} hksd_audit_verifier;

void hksd_audit_verifier_init(hksd_audit_verifier *v, hksd_audit_problem_fn *on_problem, void *ctx);
/* Also check that the record with this seq hashes to hash ("sha256:<hex>"), for instance a head
 * printed by an earlier verification: a log cut short or rewritten after it fails. Returns -1
 * when hash is malformed or seq is 0. */
int hksd_audit_verifier_anchor(hksd_audit_verifier *v, uint64_t seq, const char *hash);
/* One line (flags from hksd_audit_reader_next) of the file called name, at line_no. */
void hksd_audit_verifier_line(hksd_audit_verifier *v, const char *name, uint64_t line_no,
                              const char *line, size_t len, int flags);
/* Final checks (the anchor); returns the report. */
const hksd_audit_report *hksd_audit_verifier_finish(hksd_audit_verifier *v);

/* Verify these files as one chain (each read from its start). Returns 0 when every file was read
 * (the result is in v->report: problems == 0 means intact), -1 on a read error. */
int hksd_audit_verify_files(hksd_audit_verifier *v, const hksd_audit_files *files, hks_error *err);
/* The log at log_path and its rotated files. */
int hksd_audit_verify_log(const char *log_path, hksd_audit_report *out, hks_error *err);
/* One in-memory file called name (for the fuzzer and tests). */
void hksd_audit_verify_buffer(hksd_audit_verifier *v, const char *name, const char *data,
                              size_t len);

#endif
