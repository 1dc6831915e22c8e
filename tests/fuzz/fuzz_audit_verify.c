/* libFuzzer target: the audit log's line parser and chain verification (`hksd audit verify` reads
 * files anyone with access to the state directory may have altered). The input is one audit log
 * file. Verification must never crash nor read past the input, must count every line, and may
 * call a chain intact only when its seqs are contiguous; the streaming reader over a file must
 * reach exactly the verdict of the in-memory split. */
#include "daemon/audit_log.h"

#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int file_fd = -1;

static uint64_t count_lines(const char *data, size_t size)
{
    uint64_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

static void check_report(const hksd_audit_report *r, const char *data, size_t size)
{
    if (r->records != count_lines(data, size))
        __builtin_trap();
    if (r->problems == 0 && r->records > 0) {
        if (r->first_seq == 0 || r->last_seq < r->first_seq ||
            r->last_seq - r->first_seq + 1 != r->records)
            __builtin_trap();
        if (strncmp(r->head, "sha256:", 7) != 0 || strlen(r->head) != HKSD_AUDIT_HASH_LEN - 1)
            __builtin_trap();
        if (r->chain_truncated != (r->first_seq > 1))
            __builtin_trap();
    }
    if ((r->problems == 0) != (r->first_problem[0] == '\0'))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *text = (const char *)data;
    hksd_audit_verifier v;
    hksd_audit_verifier_init(&v, NULL, NULL);
    /* an anchor on the second record, whatever it is */
    hksd_audit_verifier_anchor(&v, 2, HKSD_AUDIT_GENESIS);
    hksd_audit_verify_buffer(&v, "audit.log", text, size);
    hksd_audit_report in_memory = *hksd_audit_verifier_finish(&v);
    if (in_memory.last_seq >= 2 && in_memory.problems == 0)
        __builtin_trap(); /* no record hashes to the genesis value */
    hksd_audit_verifier_init(&v, NULL, NULL);
    hksd_audit_verify_buffer(&v, "audit.log", text, size);
    hksd_audit_report plain = *hksd_audit_verifier_finish(&v);
    check_report(&plain, text, size);

    /* each line through the parser alone */
    size_t pos = 0;
    while (pos < size) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : size - pos;
        hksd_audit_record rec;
        char why[256];
        if (hksd_audit_record_parse(text + pos, n, &rec, why, sizeof(why)) == 0) {
            if (rec.seq == 0 || !json_is_object(rec.json) || strlen(rec.prev) != 71)
                __builtin_trap();
            json_decref(rec.json);
        } else if (why[0] == '\0') {
            __builtin_trap();
        }
        pos += n + 1;
    }

    /* the same bytes as a file, read by the streaming reader */
    if (file_fd < 0 && (file_fd = memfd_create("hks-fuzz-audit", MFD_CLOEXEC)) < 0)
        __builtin_trap();
    if (ftruncate(file_fd, 0) < 0 || (size && pwrite(file_fd, data, size, 0) != (ssize_t)size) ||
        lseek(file_fd, 0, SEEK_SET) != 0)
        __builtin_trap();
    hksd_audit_files files = {0};
    hksd_audit_file file = {.path = (char *)"audit.log", .name = "audit.log", .fd = file_fd};
    files.files = &file;
    files.n = 1;
    hksd_audit_verifier_init(&v, NULL, NULL);
    hks_error err = {0};
    if (hksd_audit_verify_files(&v, &files, &err) < 0)
        __builtin_trap();
    const hksd_audit_report *streamed = hksd_audit_verifier_finish(&v);
    if (streamed->records != plain.records || streamed->problems != plain.problems ||
        streamed->last_seq != plain.last_seq || strcmp(streamed->head, plain.head) != 0 ||
        strcmp(streamed->first_problem, plain.first_problem) != 0)
        __builtin_trap();
    return 0;
}
