/* The audit log: its hash chain, the head recovered after a restart, torn and damaged last lines,
 * rotation with retention, appends from many threads while it rotates, and tampering (a record
 * edited, removed, reordered, cut, a rotated file removed) found by verification. */
#include "tests/unit/helpers.h"

#include "daemon/audit_log.h"
#include "daemon/commands.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

static char base_dir[PATH_MAX];
static char dir[PATH_MAX + 32];      /* a fresh directory per test */
static char log_path[PATH_MAX + 64]; /* dir/audit.log */

static int make_base_dir(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof(base_dir), "/tmp/hks-test-audit-XXXXXX");
    return mkdtemp(base_dir) ? 0 : -1;
}

static int remove_base_dir(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof(command), "rm -rf '%s'", base_dir);
    return system(command) == 0 ? 0 : -1;
}

static int fresh_dir(void **state)
{
    (void)state;
    static int n;
    snprintf(dir, sizeof(dir), "%s/t%d", base_dir, n++);
    snprintf(log_path, sizeof(log_path), "%s/audit.log", dir);
    return mkdir(dir, 0700);
}

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static bool exists(const char *name)
{
    char path[sizeof(dir) + 64];
    path_of(path, sizeof(path), name);
    return access(path, F_OK) == 0;
}

static hksd_audit_log *open_log(uint64_t rotate_bytes, unsigned keep)
{
    hksd_audit_log *log = NULL;
    hks_error err = {0};
    int rc = hksd_audit_log_open(log_path, rotate_bytes, keep, &log, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return log;
}

static void append(hksd_audit_log *log, const char *action, int n)
{
    json_t *record = json_pack("{s:s,s:s,s:s,s:s,s:i}", "request_id", "r", "sub", "agent-1",
                               "project", "p1", "action", action, "n", n);
    assert_non_null(record);
    hks_error err = {0};
    assert_int_equal(hksd_audit_log_append(log, record, &err), 0);
    json_decref(record);
}

static void append_n(hksd_audit_log *log, int count)
{
    for (int i = 0; i < count; i++)
        append(log, "execute", i);
}

/* The whole file, NUL-terminated (malloc'd). */
static char *slurp(const char *name, size_t *len)
{
    char path[sizeof(dir) + 64];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)size;
    return data;
}

static void spit(const char *name, const char *data, size_t len)
{
    char path[sizeof(dir) + 64];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void append_raw(const char *name, const char *text)
{
    char path[sizeof(dir) + 64];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Line i (from 1) of text: its start and length. */
static const char *line_at(const char *text, int i, size_t *len)
{
    const char *p = text;
    for (int k = 1; k < i; k++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    *len = (size_t)(nl - p);
    return p;
}

static hksd_audit_report verify(void)
{
    hksd_audit_report report;
    hks_error err = {0};
    int rc = hksd_audit_verify_log(log_path, &report, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return report;
}

static void assert_intact(const hksd_audit_report *r, uint64_t records)
{
    if (r->problems)
        fprintf(stderr, "unexpected: %s\n", r->first_problem);
    assert_int_equal(r->problems, 0);
    assert_int_equal(r->records, records);
}

static void assert_problem(const hksd_audit_report *r, const char *start)
{
    assert_true(r->problems > 0);
    if (strncmp(r->first_problem, start, strlen(start)) != 0)
        fprintf(stderr, "expected \"%s...\", got \"%s\"\n", start, r->first_problem);
    assert_true(strncmp(r->first_problem, start, strlen(start)) == 0);
}

static json_t *parse_line(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    assert_non_null(j);
    return j;
}

/* ---- the chain ------------------------------------------------------------------------------ */

static void each_record_links_to_the_one_before(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 3);
    uint64_t head_seq;
    char head[HKSD_AUDIT_HASH_LEN];
    hksd_audit_log_head(log, &head_seq, head);
    hksd_audit_log_close(log);

    cleanup_free char *text = slurp("audit.log", NULL);
    char expected_prev[HKSD_AUDIT_HASH_LEN] = HKSD_AUDIT_GENESIS;
    for (int i = 1; i <= 3; i++) {
        size_t len;
        const char *line = line_at(text, i, &len);
        json_t *j = parse_line(line, len);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), i);
        assert_string_equal(json_string_value(json_object_get(j, "prev")), expected_prev);
        assert_non_null(json_string_value(json_object_get(j, "ts")));
        assert_string_equal(json_string_value(json_object_get(j, "action")), "execute");
        json_decref(j);
        hksd_audit_hash(line, len, expected_prev);
    }
    assert_int_equal(head_seq, 3);
    assert_string_equal(head, expected_prev);

    hksd_audit_report r = verify();
    assert_intact(&r, 3);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 3);
    assert_false(r.chain_truncated);
    assert_string_equal(r.head, expected_prev);
}

static void reopening_continues_the_chain(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 2);
    hksd_audit_log_close(log);
    log = open_log(0, 10);
    append(log, "function.deploy", 2);
    hksd_audit_log_close(log);

    cleanup_free char *text = slurp("audit.log", NULL);
    size_t len2, len3;
    const char *second = line_at(text, 2, &len2);
    const char *third = line_at(text, 3, &len3);
    char hash2[HKSD_AUDIT_HASH_LEN];
    hksd_audit_hash(second, len2, hash2);
    json_t *j = parse_line(third, len3);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "prev")), hash2);
    json_decref(j);
    hksd_audit_report r = verify();
    assert_intact(&r, 3);
}

static void a_torn_last_line_is_reported_then_truncated_on_open(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 2);
    hksd_audit_log_close(log);
    size_t len;
    cleanup_free char *text = slurp("audit.log", &len);
    /* a crash in the middle of the third record's write */
    append_raw("audit.log", "{\"action\":\"execute\",\"pre");

    hksd_audit_report r = verify();
    assert_problem(&r, "audit.log:3: torn record");

    log = open_log(0, 10);
    size_t after_len;
    cleanup_free char *after = slurp("audit.log", &after_len);
    assert_int_equal(after_len, len); /* truncated back to the complete records */
    append(log, "execute", 2);
    hksd_audit_log_close(log);
    r = verify();
    assert_intact(&r, 3);
    assert_int_equal(r.last_seq, 3);
}

static void a_damaged_last_line_stays_and_the_chain_goes_on_from_it(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 3);
    hksd_audit_log_close(log);
    append_raw("audit.log", "garbage\n");

    log = open_log(0, 10);
    append(log, "execute", 3);
    hksd_audit_log_close(log);
    cleanup_free char *after = slurp("audit.log", NULL);
    size_t l5;
    const char *line5 = line_at(after, 5, &l5);
    json_t *j = parse_line(line5, l5);
    char garbage_hash[HKSD_AUDIT_HASH_LEN];
    hksd_audit_hash("garbage", 7, garbage_hash);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 4);
    assert_string_equal(json_string_value(json_object_get(j, "prev")), garbage_hash);
    json_decref(j);
    hksd_audit_report r = verify();
    /* half of 4 and half of 6 may even make a valid record: it is still out of the chain */
    assert_problem(&r, "audit.log:4: ");
    assert_int_equal(r.problems, 1);
}

static void a_log_older_than_the_chain_is_moved_aside(void **state)
{
    (void)state;
    const char legacy[] = "{\"action\":\"execute\",\"ts\":\"2026-01-01T00:00:00.000Z\"}\n"
                          "{\"action\":\"execute\",\"ts\":\"2026-01-01T00:00:01.000Z\"}\n";
    spit("audit.log", legacy, sizeof(legacy) - 1);
    hksd_audit_log *log = open_log(0, 10);
    append(log, "execute", 0);
    hksd_audit_log_close(log);
    assert_int_equal(count_entries_with_prefix(dir, "audit.log.unchained-"), 1);
    hksd_audit_report r = verify();
    assert_intact(&r, 1);
    assert_int_equal(r.first_seq, 1);
}

static void an_empty_log_continues_from_the_newest_rotated_file(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 3);
    hksd_audit_log_close(log);
    char from[sizeof(dir) + 64], to[sizeof(dir) + 64];
    path_of(from, sizeof(from), "audit.log");
    path_of(to, sizeof(to), "audit.log.1");
    assert_int_equal(rename(from, to), 0);
    log = open_log(0, 10);
    append(log, "execute", 3);
    hksd_audit_log_close(log);
    hksd_audit_report r = verify();
    assert_intact(&r, 4);
    assert_int_equal(r.last_seq, 4);
}

/* ---- rotation ------------------------------------------------------------------------------- */

static void rotation_keeps_n_files_and_the_chain_crosses_them(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(700, 3);
    append_n(log, 60);
    hksd_audit_log_close(log);
    assert_true(exists("audit.log"));
    assert_true(exists("audit.log.1"));
    assert_true(exists("audit.log.2"));
    assert_true(exists("audit.log.3"));
    assert_false(exists("audit.log.4"));
    assert_int_equal(count_entries_with_prefix(dir, "audit.log"), 4);
    uint64_t lines = 0;
    const char *names[] = {"audit.log.3", "audit.log.2", "audit.log.1", "audit.log"};
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        cleanup_free char *text = slurp(names[i], &len);
        assert_true(len > 0 && len <= 700); /* never past the size, never a split record */
        assert_int_equal(text[len - 1], '\n');
        for (size_t k = 0; k < len; k++)
            lines += text[k] == '\n';
    }
    hksd_audit_report r = verify();
    assert_intact(&r, lines);
    assert_true(r.chain_truncated); /* the oldest records were rotated out */
    assert_int_equal(r.last_seq, 60);
    assert_int_equal(r.first_seq, 60 - lines + 1);

    /* retention lowered: the next rotation removes what is beyond it */
    log = open_log(700, 1);
    append_n(log, 5);
    hksd_audit_log_close(log);
    assert_true(exists("audit.log.1"));
    assert_false(exists("audit.log.2"));
    assert_false(exists("audit.log.3"));
    r = verify();
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.last_seq, 65);
}

#define THREADS     8
#define PER_THREAD  500
#define ALL_RECORDS (THREADS * PER_THREAD)

static void *writer(void *arg)
{
    hksd_audit_log *log = *(hksd_audit_log **)((void **)arg)[0];
    int t = (int)(intptr_t)((void **)arg)[1];
    for (int i = 0; i < PER_THREAD; i++) {
        json_t *record = json_pack("{s:s,s:s,s:i,s:i}", "action", "execute", "project", "p1",
                                   "thread", t, "i", i);
        hks_error err = {0};
        if (!record || hksd_audit_log_append(log, record, &err) < 0)
            return (void *)1;
        json_decref(record);
    }
    return NULL;
}

static void concurrent_appends_while_rotating_lose_nothing(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(16 * 1024, 1000);
    pthread_t threads[THREADS];
    void *args[THREADS][2];
    for (int t = 0; t < THREADS; t++) {
        args[t][0] = &log;
        args[t][1] = (void *)(intptr_t)t;
        assert_int_equal(pthread_create(&threads[t], NULL, writer, args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        void *result;
        assert_int_equal(pthread_join(threads[t], &result), 0);
        assert_null(result);
    }
    hksd_audit_log_close(log);
    assert_true(exists("audit.log.5")); /* it did rotate, several times */

    hksd_audit_report r = verify();
    assert_intact(&r, ALL_RECORDS);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, ALL_RECORDS);
    assert_false(r.chain_truncated);

    /* every record of every thread, once, each line whole */
    static bool seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof(seen));
    hksd_audit_files files;
    hks_error err = {0};
    assert_int_equal(hksd_audit_files_open_log(log_path, &files, &err), 0);
    for (size_t f = 0; f < files.n; f++) {
        hksd_audit_reader reader;
        assert_int_equal(hksd_audit_reader_init(&reader, files.files[f].fd, &err), 0);
        const char *line;
        size_t len;
        int flags;
        while (hksd_audit_reader_next(&reader, &line, &len, &flags, &err) == 1) {
            assert_int_equal(flags, 0);
            json_t *j = parse_line(line, len);
            int t = (int)json_integer_value(json_object_get(j, "thread"));
            int i = (int)json_integer_value(json_object_get(j, "i"));
            assert_true(t >= 0 && t < THREADS && i >= 0 && i < PER_THREAD);
            assert_false(seen[t][i]);
            seen[t][i] = true;
            json_decref(j);
        }
        hksd_audit_reader_free(&reader);
    }
    hksd_audit_files_close(&files);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++)
            assert_true(seen[t][i]);
    }
}

/* ---- tampering ------------------------------------------------------------------------------ */

/* Ten records in audit.log; returns its text. */
static char *ten_records(size_t *len)
{
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 10);
    hksd_audit_log_close(log);
    hksd_audit_report r = verify();
    assert_intact(&r, 10);
    return slurp("audit.log", len);
}

static void an_edited_record_is_found(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *text = ten_records(&len);
    size_t l5;
    const char *line5 = line_at(text, 5, &l5);
    char *n = strstr(line5, "\"n\":4");
    assert_non_null(n);
    n[4] = '9'; /* same length: only the chain can tell */
    spit("audit.log", text, len);
    hksd_audit_report r = verify();
    assert_problem(&r, "audit.log:6: seq 6: prev does not match the record before it");
    assert_int_equal(r.problems, 1);
}

static void a_removed_record_is_found(void **state)
{
    (void)state;
    size_t len, l5;
    cleanup_free char *text = ten_records(&len);
    const char *line5 = line_at(text, 5, &l5);
    size_t off = (size_t)(line5 - text);
    memmove(text + off, line5 + l5 + 1, len - off - l5 - 1);
    spit("audit.log", text, len - l5 - 1);
    hksd_audit_report r = verify();
    assert_problem(&r, "audit.log:5: seq 6: follows seq 4: records 5..5 are missing");
}

static void reordered_records_are_found(void **state)
{
    (void)state;
    size_t len, l4, l5;
    cleanup_free char *text = ten_records(&len);
    const char *line4 = line_at(text, 4, &l4);
    const char *line5 = line_at(text, 5, &l5);
    char *swapped = malloc(len + 1);
    assert_non_null(swapped);
    size_t off = (size_t)(line4 - text), p = off;
    memcpy(swapped, text, off);
    memcpy(swapped + p, line5, l5 + 1);
    p += l5 + 1;
    memcpy(swapped + p, line4, l4 + 1);
    p += l4 + 1;
    memcpy(swapped + p, line5 + l5 + 1, len - p);
    spit("audit.log", swapped, len);
    free(swapped);
    hksd_audit_report r = verify();
    assert_problem(&r, "audit.log:4: seq 5: follows seq 3");
}

static void a_cut_in_the_middle_is_found(void **state)
{
    (void)state;
    size_t len, l4, l6;
    cleanup_free char *text = ten_records(&len);
    const char *line4 = line_at(text, 4, &l4);
    const char *line6 = line_at(text, 6, &l6);
    /* from the middle of record 4 to the middle of record 6 */
    size_t from = (size_t)(line4 - text) + l4 / 2, to = (size_t)(line6 - text) + l6 / 2;
    memmove(text + from, text + to, len - to);
    spit("audit.log", text, len - (to - from));
    hksd_audit_report r = verify();
    /* half of 4 and half of 6 may even make a valid record: it is still out of the chain */
    assert_problem(&r, "audit.log:4: ");
}

static void a_new_last_record_or_cut_end_needs_an_anchor(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *text = ten_records(&len);
    hksd_audit_report before = verify();
    /* the last record removed: the chain alone cannot tell, the head kept elsewhere can */
    size_t l10;
    const char *line10 = line_at(text, 10, &l10);
    spit("audit.log", text, (size_t)(line10 - text));
    hksd_audit_report r = verify();
    assert_intact(&r, 9);

    hksd_audit_verifier v;
    hksd_audit_verifier_init(&v, NULL, NULL);
    assert_int_equal(hksd_audit_verifier_anchor(&v, before.last_seq, before.head), 0);
    hksd_audit_verify_buffer(&v, "audit.log", text, (size_t)(line10 - text));
    const hksd_audit_report *anchored = hksd_audit_verifier_finish(&v);
    assert_problem(anchored, "anchor: no record with seq 10: the log ends at seq 9");

    /* the last record edited */
    text[(size_t)(line10 - text) + 2] = 'X';
    hksd_audit_verifier_init(&v, NULL, NULL);
    assert_int_equal(hksd_audit_verifier_anchor(&v, before.last_seq, before.head), 0);
    hksd_audit_verify_buffer(&v, "audit.log", text, len);
    anchored = hksd_audit_verifier_finish(&v);
    assert_true(anchored->problems > 0);

    /* an anchor that does not match */
    assert_int_equal(unlink(log_path), 0);
    cleanup_free char *again = ten_records(&len);
    hksd_audit_verifier_init(&v, NULL, NULL);
    assert_int_equal(hksd_audit_verifier_anchor(&v, 5, HKSD_AUDIT_GENESIS), 0);
    hksd_audit_verify_buffer(&v, "audit.log", again, len);
    assert_problem(hksd_audit_verifier_finish(&v),
                   "audit.log:5: seq 5: does not hash to the anchor");
}

static void a_removed_rotated_file_is_found_but_not_the_oldest(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(700, 5);
    append_n(log, 25);
    hksd_audit_log_close(log);
    assert_true(exists("audit.log.3"));
    hksd_audit_report r = verify();
    assert_int_equal(r.problems, 0);

    char path[sizeof(dir) + 64];
    size_t len;
    cleanup_free char *middle = slurp("audit.log.2", &len);
    path_of(path, sizeof(path), "audit.log.2");
    assert_int_equal(unlink(path), 0);
    r = verify();
    assert_problem(&r, "audit.log.1:1: seq ");
    assert_non_null(strstr(r.first_problem, "are missing"));
    spit("audit.log.2", middle, len);

    /* the oldest file gone looks like retention: the chain starts later */
    char oldest[32];
    for (int n = 5; n >= 1; n--) {
        snprintf(oldest, sizeof(oldest), "audit.log.%d", n);
        if (exists(oldest))
            break;
    }
    path_of(path, sizeof(path), oldest);
    assert_int_equal(unlink(path), 0);
    r = verify();
    assert_int_equal(r.problems, 0);
    assert_true(r.chain_truncated);
}

/* ---- parsing and reading -------------------------------------------------------------------- */

static void lines_that_are_not_records_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"seq\":0,\"prev\":\"" HKSD_AUDIT_GENESIS "\"}",
        "{\"seq\":\"1\",\"prev\":\"" HKSD_AUDIT_GENESIS "\"}",
        "{\"seq\":1}",
        "{\"seq\":1,\"prev\":\"sha256:00\"}",
        "{\"seq\":1,\"prev\":\"sha256:"
        "000000000000000000000000000000000000000000000000000000000000000G\"}",
        "{\"seq\":1,\"seq\":2,\"prev\":\"" HKSD_AUDIT_GENESIS "\"}",
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        hksd_audit_record rec;
        char why[256];
        assert_int_equal(hksd_audit_record_parse(bad[i], strlen(bad[i]), &rec, why, sizeof(why)),
                         -1);
        assert_true(why[0] != '\0');
    }
    const char good[] = "{\"action\":\"x\",\"prev\":\"" HKSD_AUDIT_GENESIS "\",\"seq\":1}";
    hksd_audit_record rec;
    char why[256];
    assert_int_equal(hksd_audit_record_parse(good, strlen(good), &rec, why, sizeof(why)), 0);
    assert_int_equal(rec.seq, 1);
    assert_string_equal(rec.prev, HKSD_AUDIT_GENESIS);
    json_decref(rec.json);
}

static void a_line_too_long_is_skipped_and_reading_goes_on(void **state)
{
    (void)state;
    size_t big = HKSD_AUDIT_MAX_RECORD + 100000;
    char *data = malloc(big + 1);
    assert_non_null(data);
    memset(data, 'x', big);
    data[big] = '\n';
    spit("audit.log", data, big + 1);
    free(data);
    append_raw("audit.log", "short\nend");
    char path[sizeof(dir) + 64];
    path_of(path, sizeof(path), "audit.log");
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    hksd_audit_reader r;
    hks_error err = {0};
    assert_int_equal(hksd_audit_reader_init(&r, fd, &err), 0);
    const char *line;
    size_t len;
    int flags;
    assert_int_equal(hksd_audit_reader_next(&r, &line, &len, &flags, &err), 1);
    assert_int_equal(flags, HKSD_AUDIT_LINE_LONG);
    assert_int_equal(hksd_audit_reader_next(&r, &line, &len, &flags, &err), 1);
    assert_int_equal(flags, 0);
    assert_int_equal(len, 5);
    assert_memory_equal(line, "short", 5);
    assert_int_equal(r.line_no, 2);
    assert_int_equal(hksd_audit_reader_next(&r, &line, &len, &flags, &err), 1);
    assert_int_equal(flags, HKSD_AUDIT_LINE_TORN);
    assert_int_equal(len, 3);
    assert_int_equal(hksd_audit_reader_next(&r, &line, &len, &flags, &err), 0);
    hksd_audit_reader_free(&r);
    close(fd);
}

/* ---- the command ---------------------------------------------------------------------------- */

static int run_command(const char *const *args, size_t n)
{
    char *argv[16];
    assert_true(n < HKS_ARRAY_LEN(argv));
    for (size_t i = 0; i < n; i++)
        argv[i] = (char *)args[i];
    argv[n] = NULL;
    hksd_config cfg;
    hksd_config_defaults(&cfg, NULL);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
    assert_true(saved >= 0 && null >= 0);
    dup2(null, STDOUT_FILENO);
    int rc = hksd_cmd_audit(&cfg, (int)n, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(null);
    return rc;
}

static void the_command_answers_with_its_exit_status(void **state)
{
    (void)state;
    hksd_audit_log *log = open_log(0, 10);
    append_n(log, 4);
    hksd_audit_log_close(log);
    const char *verify_ok[] = {"audit", "verify", "--state-dir", dir};
    assert_int_equal(run_command(verify_ok, 4), 0);
    const char *verify_after[] = {"audit", "--state-dir", dir, "verify"};
    assert_int_equal(run_command(verify_after, 4), 0);
    /* "verify" as an option's value is a value: a query for project "verify", no usage error */
    const char *not_verify[] = {"audit", "--proj", "verify", "--state-dir", dir, "-o", "table"};
    assert_int_equal(run_command(not_verify, 7), 0);
    const char *query[] = {
        "audit",   "--state-dir",          dir,       "--action",  "exec*", "-o", "table",
        "--since", "2000-01-01T00:00:00Z", "--until", "4102444800"};
    assert_int_equal(run_command(query, 11), 0);
    const char *bad_time[] = {"audit", "--state-dir", dir, "--since", "yesterday"};
    assert_int_equal(run_command(bad_time, 5), 2);
    const char *both[] = {"audit", "verify", "--state-dir", dir, "--file", log_path};
    assert_int_equal(run_command(both, 6), 2);
    const char *query_opt[] = {"audit", "verify", "--state-dir", dir, "--project", "p1"};
    assert_int_equal(run_command(query_opt, 6), 2);

    size_t len, l2;
    cleanup_free char *text = slurp("audit.log", &len);
    const char *line2 = line_at(text, 2, &l2);
    spit("audit.log", text, (size_t)(line2 - text)); /* records 2..4 removed */
    spit("more.log", line2 + l2 + 1, len - (size_t)(line2 + l2 + 1 - text));
    char more[sizeof(dir) + 16];
    path_of(more, sizeof(more), "more.log");
    const char *files[] = {"audit", "verify", "--file", log_path, "--file", more};
    assert_int_equal(run_command(files, 6), 1);
    const char *missing[] = {"audit", "verify", "--state-dir", "/nonexistent/hksd"};
    assert_int_equal(run_command(missing, 4), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(each_record_links_to_the_one_before, fresh_dir),
        cmocka_unit_test_setup(reopening_continues_the_chain, fresh_dir),
        cmocka_unit_test_setup(a_torn_last_line_is_reported_then_truncated_on_open, fresh_dir),
        cmocka_unit_test_setup(a_damaged_last_line_stays_and_the_chain_goes_on_from_it, fresh_dir),
        cmocka_unit_test_setup(a_log_older_than_the_chain_is_moved_aside, fresh_dir),
        cmocka_unit_test_setup(an_empty_log_continues_from_the_newest_rotated_file, fresh_dir),
        cmocka_unit_test_setup(rotation_keeps_n_files_and_the_chain_crosses_them, fresh_dir),
        cmocka_unit_test_setup(concurrent_appends_while_rotating_lose_nothing, fresh_dir),
        cmocka_unit_test_setup(an_edited_record_is_found, fresh_dir),
        cmocka_unit_test_setup(a_removed_record_is_found, fresh_dir),
        cmocka_unit_test_setup(reordered_records_are_found, fresh_dir),
        cmocka_unit_test_setup(a_cut_in_the_middle_is_found, fresh_dir),
        cmocka_unit_test_setup(a_new_last_record_or_cut_end_needs_an_anchor, fresh_dir),
        cmocka_unit_test_setup(a_removed_rotated_file_is_found_but_not_the_oldest, fresh_dir),
        cmocka_unit_test_setup(lines_that_are_not_records_are_refused, fresh_dir),
        cmocka_unit_test_setup(a_line_too_long_is_skipped_and_reading_goes_on, fresh_dir),
        cmocka_unit_test_setup(the_command_answers_with_its_exit_status, fresh_dir),
    };
    return cmocka_run_group_tests(tests, make_base_dir, remove_base_dir);
}
