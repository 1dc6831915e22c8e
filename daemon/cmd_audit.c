/* hksd audit: query the audit log (and its rotated files) as JSON lines or a table, streaming;
 * hksd audit verify: check its hash chain. */
#include "audit_log.h"
#include "commands.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <time.h>

static const char query_usage[] =
    "usage: hksd audit [--since T] [--until T] [--project P] [--sub S] [--action A]\n"
    "                  [--function ID] [-o json|table] [--state-dir DIR | --file PATH...]\n"
    "  Print the audit records that match every filter given, oldest first, from the audit\n"
    "  log and its rotated files (<state dir>/audit.log, audit.log.1, ...).\n"
    "  --since T, --until T  T is RFC 3339 (2026-11-29T12:00:00Z, +01:00 offsets, a date alone)\n"
    "                        or unix seconds; since is inclusive, until exclusive\n"
    "  --project P, --sub S  exact match\n"
    "  --action A            exact, or a prefix ending in '*' (\"function.*\")\n"
    "  --function ID         the record's function_id\n"
    "  -o json               the records as stored, one per line (the default)\n"
    "  -o table              ts, action, project, sub, function id (or runtime), result\n"
    "  --state-dir DIR       the state directory (default: HKSD_STATE_DIR, else hksd's default)\n"
    "  --file PATH           read this file instead (repeatable: oldest first)\n"
    "usage: hksd audit verify [--state-dir DIR | --file PATH...] [--anchor SEQ:sha256:HEX]\n"
    "  Check every record's seq and prev from the oldest file to the newest; exit 0 when the\n"
    "  chain is intact, 1 naming the file, line and seq of each problem. --anchor: the record\n"
    "  with seq SEQ must hash to HEX (a head printed by an earlier verify, kept elsewhere).\n";

enum {
    OPT_SINCE = 256,
    OPT_UNTIL,
    OPT_PROJECT,
    OPT_SUB,
    OPT_ACTION,
    OPT_FUNCTION,
    OPT_STATE,
    OPT_FILE,
    OPT_ANCHOR
};

static const struct option long_options[] = {
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"sub", required_argument, NULL, OPT_SUB},
    {"action", required_argument, NULL, OPT_ACTION},
    {"function", required_argument, NULL, OPT_FUNCTION},
    {"output", required_argument, NULL, 'o'},
    {"state-dir", required_argument, NULL, OPT_STATE},
    {"file", required_argument, NULL, OPT_FILE},
    {"anchor", required_argument, NULL, OPT_ANCHOR},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct audit_args {
    bool verify, table, has_since, has_until;
    int64_t since_ms, until_ms;
    const char *project, *sub, *action, *function, *state_dir;
    char **files;
    size_t n_files;
    uint64_t anchor_seq;
    const char *anchor_hash;
} audit_args;

/* ---- times ------------------------------------------------------------------------------------
 */

static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take(const char **p, const char *any)
{
    if (**p && strchr(any, **p)) {
        (*p)++;
        return true;
    }
    return false;
}

/* Milliseconds since the epoch of RFC 3339 ("2026-11-29T12:00:00.123Z", "...+01:00", a date alone
 * is midnight UTC) or unix seconds ("1764417600", "1764417600.5"). */
static int parse_time(const char *s, int64_t *ms)
{
    const char *p = s;
    int frac_ms = 0, scale = 100;
    size_t n = strspn(s, "0123456789");
    if (n > 0 && (s[n] == '\0' || s[n] == '.')) {
        unsigned long long secs;
        if (n > 12)
            return -1;
        char whole[16];
        snprintf(whole, sizeof(whole), "%.*s", (int)n, s);
        secs = strtoull(whole, NULL, 10);
        p = s + n;
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                frac_ms += scale * (*p - '0');
        }
        if (*p)
            return -1;
        *ms = (int64_t)secs * 1000 + frac_ms;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, off_h = 0, off_m = 0, sign = 0;
    if (!take_digits(&p, 4, &y) || !take(&p, "-") || !take_digits(&p, 2, &mo) || !take(&p, "-") ||
        !take_digits(&p, 2, &d))
        return -1;
    if (*p) {
        if (!take(&p, "Tt ") || !take_digits(&p, 2, &h) || !take(&p, ":") ||
            !take_digits(&p, 2, &mi) || !take(&p, ":") || !take_digits(&p, 2, &sec))
            return -1;
        if (take(&p, ".")) {
            if (*p < '0' || *p > '9')
                return -1;
            for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                frac_ms += scale * (*p - '0');
        }
        if (*p == '+' || *p == '-') {
            sign = *p++ == '+' ? 1 : -1;
            if (!take_digits(&p, 2, &off_h) || !take(&p, ":") || !take_digits(&p, 2, &off_m) ||
                off_h > 23 || off_m > 59)
                return -1;
        } else if (!take(&p, "Zz")) {
            return -1;
        }
        if (*p)
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d && sec != 60) /* 2026-02-30 */
        return -1;
    *ms = ((int64_t)t - sign * (off_h * 3600 + off_m * 60)) * 1000 + frac_ms;
    return 0;
}

/* ---- arguments --------------------------------------------------------------------------------
 */

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "hksd audit: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(hksd audit --help lists the options)\n");
    return 2;
}

static int set_once(const char **slot, const char *value, const char *name)
{
    if (*slot)
        return usage_error("%s given twice", name);
    *slot = value;
    return 0;
}

static int parse_anchor(audit_args *a, const char *text)
{
    const char *colon = strchr(text, ':');
    unsigned long long seq;
    char digits[24];
    if (!colon || colon - text >= (long)sizeof(digits))
        return usage_error("--anchor %s: expected SEQ:sha256:HEX", text);
    snprintf(digits, sizeof(digits), "%.*s", (int)(colon - text), text);
    if (hks_parse_uint(digits, 1, UINT64_MAX, &seq) < 0)
        return usage_error("--anchor %s: expected SEQ:sha256:HEX", text);
    a->anchor_seq = seq;
    a->anchor_hash = colon + 1;
    return 0;
}

/* Whether arg is an option whose value is the next argument ("-o", "--project", "--proj"). */
static bool takes_next(const char *arg)
{
    if (strcmp(arg, "-o") == 0)
        return true;
    if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') || !arg[2])
        return false;
    size_t n = strlen(arg + 2);
    for (const struct option *o = long_options; o->name; o++) {
        if (o->has_arg == required_argument && strlen(o->name) >= n &&
            memcmp(o->name, arg + 2, n) == 0)
            return true;
    }
    return false;
}

/* "verify" as the first word that is not an option nor an option's value, taken out of argv. */
static bool take_verify(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (argv[i][0] == '-') {
            i += takes_next(argv[i]);
            continue;
        }
        if (strcmp(argv[i], "verify") != 0)
            return false;
        memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(*argv)); /* its NULL too */
        (*argc)--;
        return true;
    }
    return false;
}

static int parse_args(audit_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->verify = take_verify(&argc, argv);
    a->files = calloc((size_t)argc, sizeof(*a->files));
    if (!a->files)
        return usage_error("%s", "out of memory");
    const char *output = NULL;
    optind = 0; /* a full reset (GNU): the command may run more than once in a process */
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "o:h", long_options, NULL)) != -1) {
        const char *query_only = NULL;
        switch (c) {
        case OPT_SINCE:
        case OPT_UNTIL: {
            bool since = c == OPT_SINCE;
            if (since ? a->has_since : a->has_until)
                return usage_error("%s given twice", since ? "--since" : "--until");
            if (parse_time(optarg, since ? &a->since_ms : &a->until_ms) < 0)
                return usage_error("%s: not RFC 3339 nor unix seconds", optarg);
            *(since ? &a->has_since : &a->has_until) = true;
            query_only = since ? "--since" : "--until";
            break;
        }
        case OPT_PROJECT:
            rc = set_once(&a->project, optarg, "--project");
            query_only = "--project";
            break;
        case OPT_SUB:
            rc = set_once(&a->sub, optarg, "--sub");
            query_only = "--sub";
            break;
        case OPT_ACTION:
            rc = set_once(&a->action, optarg, "--action");
            query_only = "--action";
            break;
        case OPT_FUNCTION:
            rc = set_once(&a->function, optarg, "--function");
            query_only = "--function";
            break;
        case 'o':
            rc = set_once(&output, optarg, "-o");
            query_only = "-o";
            break;
        case OPT_STATE:
            rc = set_once(&a->state_dir, optarg, "--state-dir");
            break;
        case OPT_FILE:
            a->files[a->n_files++] = optarg;
            break;
        case OPT_ANCHOR:
            if (!a->verify)
                return usage_error("%s is an option of hksd audit verify", "--anchor");
            if (a->anchor_seq)
                return usage_error("%s given twice", "--anchor");
            rc = parse_anchor(a, optarg);
            break;
        case 'h':
            fputs(query_usage, stdout);
            return 1;
        default:
            return 2;
        }
        if (a->verify && query_only)
            return usage_error("%s is an option of the query, not of verify", query_only);
    }
    if (rc)
        return rc;
    if (optind < argc)
        return usage_error("unexpected argument %s", argv[optind]);
    if (a->state_dir && a->n_files)
        return usage_error("%s", "--state-dir and --file exclude each other");
    if (output && strcmp(output, "json") != 0 && strcmp(output, "table") != 0)
        return usage_error("-o %s: json or table", output);
    a->table = output && strcmp(output, "table") == 0;
    return 0;
}

static int open_files(const audit_args *a, const hksd_config *cfg, hksd_audit_files *files)
{
    hks_error err = {0};
    int rc;
    if (a->n_files) {
        rc = hksd_audit_files_open_paths(a->files, a->n_files, files, &err);
    } else {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/audit.log", a->state_dir ? a->state_dir : cfg->state_dir);
        rc = hksd_audit_files_open_log(path, files, &err);
    }
    if (rc < 0)
        fprintf(stderr, "hksd audit: %s\n", err.msg);
    return rc;
}

/* ---- the query --------------------------------------------------------------------------------
 */

static const char *field(json_t *record, const char *key)
{
    return json_string_value(json_object_get(record, key));
}

static bool matches(const audit_args *a, json_t *record)
{
    if (a->project &&
        !(field(record, "project") && strcmp(field(record, "project"), a->project) == 0))
        return false;
    if (a->sub && !(field(record, "sub") && strcmp(field(record, "sub"), a->sub) == 0))
        return false;
    if (a->function &&
        !(field(record, "function_id") && strcmp(field(record, "function_id"), a->function) == 0))
        return false;
    if (a->action) {
        const char *action = field(record, "action");
        size_t n = strlen(a->action);
        bool prefix = n > 0 && a->action[n - 1] == '*';
        if (!action ||
            (prefix ? strncmp(action, a->action, n - 1) != 0 : strcmp(action, a->action) != 0))
            return false;
    }
    if (a->has_since || a->has_until) {
        int64_t ms;
        const char *ts = field(record, "ts");
        if (!ts || parse_time(ts, &ms) < 0)
            return false;
        if ((a->has_since && ms < a->since_ms) || (a->has_until && ms >= a->until_ms))
            return false;
    }
    return true;
}

/* A column: the value with control characters shown as '?' (values come from callers: no
 * terminal escapes), padded to width and followed by a space (width 0: the last column). */
static void column(const char *value, int width)
{
    int n = 0;
    for (const char *p = value && *value ? value : "-"; *p; p++, n++)
        putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
    if (width == 0)
        return;
    for (; n < width - 1; n++)
        putchar(' ');
    putchar(' ');
}

static void table_row(const char *ts, const char *action, const char *project, const char *sub,
                      const char *target, const char *result)
{
    column(ts, 25);
    column(action, 17);
    column(project, 17);
    column(sub, 17);
    column(target, 24);
    column(result, 0);
    putchar('\n');
}

static int run_query(const audit_args *a, const hksd_audit_files *files)
{
    if (a->table)
        table_row("TS", "ACTION", "PROJECT", "SUB", "FUNCTION/RUNTIME", "RESULT");
    int status = 0;
    for (size_t i = 0; i < files->n && status == 0; i++) {
        const hksd_audit_file *f = &files->files[i];
        hksd_audit_reader r;
        hks_error err = {0};
        if (hksd_audit_reader_init(&r, f->fd, &err) < 0) {
            fprintf(stderr, "hksd audit: %s\n", err.msg);
            return 1;
        }
        r.settle = files->live && i + 1 == files->n;
        const char *line;
        size_t len;
        int flags, rc;
        while ((rc = hksd_audit_reader_next(&r, &line, &len, &flags, &err)) == 1) {
            json_error_t jerr;
            json_t *record = flags ? NULL : json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(record)) {
                fprintf(stderr, "hksd audit: %s:%" PRIu64 ": skipped: %s\n", f->name, r.line_no,
                        flags & HKSD_AUDIT_LINE_TORN   ? "torn (no newline at the end)"
                        : flags & HKSD_AUDIT_LINE_LONG ? "longer than any record"
                                                       : "not a JSON object");
                json_decref(record);
                continue;
            }
            if (matches(a, record)) {
                if (!a->table) {
                    fwrite(line, 1, len, stdout);
                    putchar('\n');
                } else {
                    const char *target = field(record, "function_id");
                    table_row(field(record, "ts"), field(record, "action"),
                              field(record, "project"), field(record, "sub"),
                              target ? target : field(record, "runtime"), field(record, "result"));
                }
            }
            json_decref(record);
        }
        hksd_audit_reader_free(&r);
        if (rc < 0) {
            fprintf(stderr, "hksd audit: %s: %s\n", f->path, err.msg);
            status = 1;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("hksd audit: stdout");
        status = 1;
    }
    return status;
}

/* ---- verify -----------------------------------------------------------------------------------
 */

#define MAX_PRINTED_PROBLEMS 100

static void print_problem(void *ctx, const char *problem)
{
    uint64_t *printed = ctx;
    if ((*printed)++ < MAX_PRINTED_PROBLEMS)
        printf("%s\n", problem);
}

static void print_files(const hksd_audit_files *files)
{
    printf(", file%s", files->n == 1 ? "" : "s");
    for (size_t i = 0; i < files->n; i++)
        printf(" %s", files->files[i].name);
    putchar('\n');
}

static int run_verify(const audit_args *a, const hksd_audit_files *files)
{
    uint64_t printed = 0;
    hksd_audit_verifier v;
    hksd_audit_verifier_init(&v, print_problem, &printed);
    if (a->anchor_seq && hksd_audit_verifier_anchor(&v, a->anchor_seq, a->anchor_hash) < 0)
        return usage_error("--anchor %s: expected SEQ:sha256:<64 hex digits>", a->anchor_hash);
    hks_error err = {0};
    if (hksd_audit_verify_files(&v, files, &err) < 0) {
        fflush(stdout);
        fprintf(stderr, "hksd audit verify: %s\n", err.msg);
        return 1;
    }
    const hksd_audit_report *r = hksd_audit_verifier_finish(&v);
    if (r->problems > MAX_PRINTED_PROBLEMS)
        printf("... and %" PRIu64 " more\n", r->problems - MAX_PRINTED_PROBLEMS);
    if (r->problems)
        printf("FAILED: %" PRIu64 " problem%s in %" PRIu64 " records", r->problems,
               r->problems == 1 ? "" : "s", r->records);
    else
        printf("ok: %" PRIu64 " records", r->records);
    if (r->first_seq)
        printf(", seq %" PRIu64 "..%" PRIu64, r->first_seq, r->last_seq);
    print_files(files);
    if (r->chain_truncated)
        printf("note: chain starts at seq %" PRIu64 " (older records rotated out)\n", r->first_seq);
    if (r->first_seq && !r->problems)
        printf("head: seq %" PRIu64 " %s\n", r->last_seq, r->head);
    if (fflush(stdout) != 0)
        return 1;
    return r->problems ? 1 : 0;
}

int hksd_cmd_audit(const hksd_config *cfg, int argc, char **argv)
{
    audit_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc == 0) {
        hksd_audit_files files;
        if (open_files(&a, cfg, &files) < 0) {
            rc = 1;
        } else {
            rc = a.verify ? run_verify(&a, &files) : run_query(&a, &files);
            hksd_audit_files_close(&files);
        }
    } else if (rc == 1) {
        rc = 0; /* --help */
    }
    free(a.files);
    return rc;
}
