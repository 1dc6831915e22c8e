/* hks-func cron list, get, runs and trigger (which can wait for the run it starts). */
#include "cli/cron.h"

#include <string.h>
#include <time.h>

#define RUNS_LIMIT_MAX   1000 /* hksd's, per request */
#define RUNS_LIMIT_DEF   20
#define RUN_LOG_BYTES    (256 << 10) /* the most hksd sends of one run's log */
#define WAIT_POLL_MIN_MS 200
#define WAIT_POLL_MAX_MS 1000

static const char list_help[] =
    "Usage: hks-func cron list\n"
    "\n"
    "Lists the CronJobs of the token's project: name, schedule, time zone, whether it is\n"
    "suspended, the next run, the last run and its result (running while a run is going).\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json ({\"cronjobs\": [record, ...]}) or name (one\n"
    "                     name a line)\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron list\n"
    "  hks-func cron list -o json | jq -r '.cronjobs[] | select(.last_result == \"failed\") | "
    ".name'\n";

static const char get_help[] =
    "Usage: hks-func cron get NAME|ID\n"
    "\n"
    "Shows one CronJob: its schedule and time zone, whether it is suspended, its concurrency\n"
    "policy, starting deadline and history limits, its target (the function invoked and the\n"
    "request, or the task's function, command, env and timeout), the next and the last run and\n"
    "its result, the runs going, and how many runs were missed or skipped.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json (hksd's record) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron get nightly-report\n"
    "  hks-func cron get cj-3f9a0c1d2e4b5a6978c1 -o json\n";

static const char runs_help[] =
    "Usage: hks-func cron runs NAME|ID [--limit N] [--logs]\n"
    "\n"
    "Lists a CronJob's runs, newest first: the runs going, then the history hksd keeps (create\n"
    "--keep-succeeded and --keep-failed). Each run: its number, what started it (schedule or\n"
    "manual), its status (running, succeeded, failed), when it started, how long it took, and\n"
    "why it ended (\"exit code 0\", \"HTTP 200\", \"timed out after 300 s\", ...).\n"
    "\n"
    "Options:\n"
    "  -n, --limit N      at most N runs (default 20, at most 1000)\n"
    "  -l, --logs         after the table, each run's log: what the task wrote, or the\n"
    "                     function's answer (its last 256 KiB)\n"
    "  -o, --output FMT   table (default), json (hksd's {\"cronjob_id\", \"runs\": [...]}, with\n"
    "                     the logs when --logs) or name (the runs' ids)\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron runs nightly-report\n"
    "  hks-func cron runs nightly-report --limit 1 --logs\n";

static const char trigger_help[] =
    "Usage: hks-func cron trigger NAME|ID [--wait [--timeout DURATION]]\n"
    "\n"
    "Starts a run of the CronJob now (a \"manual\" run, under its concurrency policy: with Forbid\n"
    "it is refused while a run is going, with Replace the run going is cancelled). A suspended\n"
    "CronJob can be triggered.\n"
    "\n"
    "With --wait, hks-func waits until the run ends, prints its log on stdout and exits 0 when\n"
    "it succeeded, 1 when it failed (a line on stderr says why).\n"
    "\n"
    "Options:\n"
    "  -w, --wait         wait for the run to end; print its log\n"
    "      --timeout D    with --wait: give up waiting after D, e.g. 10m (exit 1; the run goes\n"
    "                     on)\n"
    "  -o, --output FMT   table (default), json (the run's record; with --wait the final one,\n"
    "                     its log included) or name (the run's id)\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron trigger nightly-report\n"
    "  hks-func cron trigger nightly-report --wait && echo done\n"
    "  hks-func cron trigger cleanup --wait --timeout 15m -o json\n";

static void field(const char *label, const char *value)
{
    char text[40];
    snprintf(text, sizeof(text), "%s:", label);
    cli_fputs_color(stdout, CLI_BOLD, text);
    printf("%*s%s\n", (int)(16 - strlen(text)), "", value && *value ? value : "-");
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- list ---- */

int cron_list(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    int rc = cron_parse_simple("cron list", list_help, argc, argv, &out, NULL);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    long status = 0;
    cleanup_json json_t *list = NULL;
    if (cli_http_json(h, "GET", "/internal/v1/cronjobs", NULL, 0, &list, &status, &err) < 0) {
        rc = cron_report(&err, status, "list the CronJobs", NULL);
    } else if (out == CLI_OUT_JSON) {
        cli_print_json(list);
    } else {
        const json_t *cronjobs = json_object_get(list, "cronjobs");
        static const char *const header[] = {"NAME",     "SCHEDULE", "TIMEZONE", "SUSPENDED",
                                             "NEXT RUN", "LAST RUN", "RESULT"};
        cli_table t;
        if (out == CLI_OUT_TABLE && cli_table_init(&t, HKS_ARRAY_LEN(header), header) < 0)
            out = CLI_OUT_NAME;
        size_t i;
        const json_t *cj;
        json_array_foreach(cronjobs, i, cj)
        {
            if (out == CLI_OUT_NAME) {
                printf("%s\n", str(cj, "name") ? str(cj, "name") : "");
                continue;
            }
            bool suspended = json_is_true(json_object_get(cj, "suspend"));
            char next[64], last[64];
            cron_format_time(json_object_get(cj, "next_run_at"), true, next, sizeof(next));
            cron_format_time(json_object_get(cj, "last_run_at"), true, last, sizeof(last));
            const char *result = json_array_size(json_object_get(cj, "active_runs"))
                                     ? "running"
                                     : str(cj, "last_result");
            const char *row[] = {str(cj, "name"),
                                 str(cj, "schedule"),
                                 str(cj, "timezone"),
                                 suspended ? "yes" : "no",
                                 suspended ? "-" : next,
                                 last,
                                 result};
            (void)cli_table_add(&t, row);
        }
        if (out == CLI_OUT_TABLE) {
            if (json_array_size(cronjobs) == 0)
                fprintf(stderr, "No CronJobs in project %s.\n",
                        s.token_project ? s.token_project : "(the token's)");
            else
                cli_table_print(&t, stdout);
            cli_table_free(&t);
        }
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

/* ---- get ---- */

/* "name (fn-...)" of a function, looked up when the token may (functions:read); the id alone
 * when it may not, "fn-... (gone)" when hksd has no such function any more. */
static void function_label(cli_http *h, const char *id, char *buf, size_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "/internal/v1/functions/%s", id ? id : "");
    cleanup_json json_t *fn = NULL;
    cli_error ignored = {0};
    long status = 0;
    if (id && cli_http_json(h, "GET", path, NULL, 0, &fn, &status, &ignored) == 0 &&
        str(fn, "name"))
        snprintf(buf, size, "%s (%s)", str(fn, "name"), id);
    else
        snprintf(buf, size, "%s%s", id ? id : "?", status == 404 ? " (gone)" : "");
}

/* The words of a command as a shell would read them back: quoted when they need to be. */
static void append_words(cli_buf *b, const json_t *words)
{
    size_t i;
    const json_t *w;
    json_array_foreach(words, i, w)
    {
        const char *text = json_string_value(w);
        if (!text)
            continue;
        bool plain = *text && strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_./=:,+@%") == strlen(text);
        (void)cli_buf_printf(b, "%s", b->len ? " " : "");
        if (plain) {
            (void)cli_buf_printf(b, "%s", text);
            continue;
        }
        (void)cli_buf_append(b, "'", 1);
        for (const char *p = text; *p; p++)
            (void)(*p == '\'' ? cli_buf_printf(b, "'\\''") : cli_buf_append(b, p, 1));
        (void)cli_buf_append(b, "'", 1);
    }
}

static void show_target(cli_http *h, const json_t *target)
{
    char fn_label[160];
    cleanup_buf cli_buf line = {0};
    const json_t *fn = json_object_get(target, "function");
    const json_t *task = json_object_get(target, "task");
    const char *key;
    const json_t *v;
    if (fn) {
        function_label(h, str(fn, "id"), fn_label, sizeof(fn_label));
        field("Target", "invoke a function");
        field("Function", fn_label);
        (void)cli_buf_printf(&line, "%s %s", str(fn, "method"), str(fn, "path"));
        field("Request", line.data);
        line.len = 0;
        json_object_foreach((json_t *)json_object_get(fn, "headers"), key, v)
        {
            (void)cli_buf_printf(&line, "%s%s: %s", line.len ? ", " : "", key,
                                 json_string_value(v));
        }
        field("Headers", line.data);
        size_t body_len = json_string_length(json_object_get(fn, "body"));
        if (body_len <= 60 && !strpbrk(str(fn, "body") ? str(fn, "body") : "", "\r\n")) {
            field("Body", str(fn, "body"));
        } else {
            char size_text[64];
            cli_format_bytes(body_len, size_text, sizeof(size_text));
            field("Body", size_text);
        }
        return;
    }
    function_label(h, str(task, "template"), fn_label, sizeof(fn_label));
    field("Target", "a task over a function's code");
    field("Function", fn_label);
    cleanup_buf cli_buf words = {0};
    append_words(&words, json_object_get(task, "command"));
    append_words(&words, json_object_get(task, "args"));
    field("Command", words.data);
    json_object_foreach((json_t *)json_object_get(task, "env"), key, v)
    {
        (void)cli_buf_printf(&line, "%s%s=%s", line.len ? ", " : "", key, json_string_value(v));
    }
    field("Env", line.data);
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%llds",
             (long long)json_integer_value(json_object_get(task, "timeout_seconds")));
    field("Timeout", timeout);
}

static void show_cronjob(cli_http *h, const json_t *cj)
{
    char buf[512], when[96];
    field("Name", str(cj, "name"));
    field("ID", str(cj, "id"));
    field("Project", str(cj, "project"));
    field("Owner", str(cj, "owner"));
    snprintf(buf, sizeof(buf), "%s (%s)", str(cj, "schedule"), str(cj, "timezone"));
    field("Schedule", buf);
    bool suspended = json_is_true(json_object_get(cj, "suspend"));
    field("Suspended", suspended ? "yes" : "no");
    field("Concurrency", str(cj, "concurrency_policy"));
    const json_t *deadline = json_object_get(cj, "starting_deadline_seconds");
    snprintf(buf, sizeof(buf), "%llds", (long long)json_integer_value(deadline));
    field("Deadline", json_is_integer(deadline) ? buf : "none");
    snprintf(buf, sizeof(buf), "keep %lld succeeded and %lld failed runs (%lld kept)",
             (long long)json_integer_value(json_object_get(cj, "successful_jobs_history_limit")),
             (long long)json_integer_value(json_object_get(cj, "failed_jobs_history_limit")),
             (long long)json_integer_value(json_object_get(cj, "runs_kept")));
    field("History", buf);
    show_target(h, json_object_get(cj, "target"));
    cron_format_time(json_object_get(cj, "next_run_at"), false, when, sizeof(when));
    field("Next run", suspended ? "none: suspended" : when);
    cron_format_time(json_object_get(cj, "last_run_at"), false, when, sizeof(when));
    const char *result = str(cj, "last_result");
    snprintf(buf, sizeof(buf), "%s%s%s", when, result ? ", " : "", result ? result : "");
    field("Last run", json_is_null(json_object_get(cj, "last_run_at")) ? "never" : buf);
    cleanup_buf cli_buf active = {0};
    size_t i;
    const json_t *id;
    json_array_foreach(json_object_get(cj, "active_runs"), i, id)
    {
        (void)cli_buf_printf(&active, "%s%s", active.len ? ", " : "", json_string_value(id));
    }
    field("Running", active.len ? active.data : "none");
    snprintf(buf, sizeof(buf), "%lld missed (past the deadline), %lld skipped (concurrency)",
             (long long)json_integer_value(json_object_get(cj, "missed_runs")),
             (long long)json_integer_value(json_object_get(cj, "skipped_runs")));
    field("Not run", buf);
    cron_format_time(json_object_get(cj, "created_at"), false, when, sizeof(when));
    field("Created", when);
    cron_format_time(json_object_get(cj, "updated_at"), false, when, sizeof(when));
    field("Updated", when);
}

int cron_get(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    const char *ref = NULL;
    int rc = cron_parse_simple("cron get", get_help, argc, argv, &out, &ref);
    if (rc || !ref) /* ref is set when rc is 0 */
        return rc < 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    long status = 0;
    char path[128];
    cron_path(path, sizeof(path), ref, "");
    cleanup_json json_t *cj = NULL;
    if (cli_http_json(h, "GET", path, NULL, 0, &cj, &status, &err) < 0)
        rc = cron_report(&err, status, "get", ref);
    else if (out == CLI_OUT_JSON)
        cli_print_json(cj);
    else if (out == CLI_OUT_NAME)
        printf("%s\n", str(cj, "name"));
    else
        show_cronjob(h, cj);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

/* ---- runs ---- */

static void print_log(const json_t *run)
{
    char heading[768], started[96];
    cron_format_time(json_object_get(run, "started_at"), false, started, sizeof(started));
    const char *reason = str(run, "reason");
    snprintf(heading, sizeof(heading), "--- run #%lld (%s, %s%s%s), started %s ---",
             (long long)json_integer_value(json_object_get(run, "number")), str(run, "trigger"),
             str(run, "status"), reason ? ": " : "", reason ? reason : "", started);
    cli_fputs_color(stdout, CLI_BOLD, heading);
    fputc('\n', stdout);
    const json_t *logs = json_object_get(run, "logs");
    size_t len = json_string_length(logs);
    if (json_is_true(json_object_get(run, "logs_cut")))
        cli_fputs_color(stdout, CLI_DIM, "[... the log's start is cut: its last 256 KiB]\n");
    if (len == 0) {
        cli_fputs_color(stdout, CLI_DIM, "(no output)\n");
        return;
    }
    fwrite(json_string_value(logs), 1, len, stdout);
    if (json_string_value(logs)[len - 1] != '\n')
        fputc('\n', stdout);
}

static void print_runs(const json_t *runs, bool logs)
{
    static const char *const header[] = {"RUN",     "TRIGGER",  "STATUS",
                                         "STARTED", "DURATION", "REASON"};
    cli_table t;
    if (cli_table_init(&t, HKS_ARRAY_LEN(header), header) < 0)
        return;
    size_t i;
    const json_t *run;
    json_array_foreach(runs, i, run)
    {
        char number[32], started[64], duration[32];
        snprintf(number, sizeof(number), "#%lld",
                 (long long)json_integer_value(json_object_get(run, "number")));
        cron_format_time(json_object_get(run, "started_at"), true, started, sizeof(started));
        const json_t *ms = json_object_get(run, "duration_ms");
        cron_format_duration(json_is_integer(ms) ? (long long)json_integer_value(ms) : -1, duration,
                             sizeof(duration));
        const char *row[] = {number,   str(run, "trigger"), str(run, "status"), started,
                             duration, str(run, "reason")};
        (void)cli_table_add(&t, row);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_array_foreach(runs, i, run)
    {
        if (!logs)
            break;
        fputc('\n', stdout);
        print_log(run);
    }
}

int cron_runs(int argc, char **argv, const cli_global *g)
{
    static const char cmd[] = "cron runs";
    static const struct option opts[] = {{"limit", required_argument, NULL, 'n'},
                                         {"logs", no_argument, NULL, 'l'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_output out = g->output;
    unsigned long long limit = RUNS_LIMIT_DEF;
    bool logs = false;
    for (int c; (c = cli_getopt(cmd, argc, argv, ":n:lo:h", opts)) != -1;) {
        if (c == 'n') {
            if (cli_opt_uint(cmd, "--limit", optarg, 1, RUNS_LIMIT_MAX, &limit))
                return CLI_EXIT_USAGE;
        } else if (c == 'l') {
            logs = true;
        } else if (c == 'o') {
            if (cli_set_output(cmd, optarg, &out))
                return CLI_EXIT_USAGE;
        } else if (c == 'h') {
            return cli_print_help(runs_help);
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    const char *ref = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    int rc = cron_check_ref(cmd, ref);
    if (rc)
        return rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    long status = 0;
    char suffix[96], path[192];
    snprintf(suffix, sizeof(suffix), "/runs?limit=%llu&log_bytes=%d", limit,
             logs ? RUN_LOG_BYTES : 0);
    cron_path(path, sizeof(path), ref, suffix);
    cleanup_json json_t *answer = NULL;
    if (cli_http_json(h, "GET", path, NULL, 0, &answer, &status, &err) < 0) {
        rc = cron_report(&err, status, "runs of", ref);
    } else if (out == CLI_OUT_JSON) {
        if (!logs) { /* log_bytes=0 still sends "logs": "" */
            size_t i;
            json_t *run;
            json_array_foreach(json_object_get(answer, "runs"), i, run)
            {
                json_object_del(run, "logs");
                json_object_del(run, "logs_cut");
            }
        }
        cli_print_json(answer);
    } else {
        const json_t *runs = json_object_get(answer, "runs");
        size_t i;
        const json_t *run;
        if (out == CLI_OUT_NAME) {
            json_array_foreach(runs, i, run)
            {
                printf("%s\n", str(run, "id"));
            }
        } else if (json_array_size(runs) == 0) {
            fprintf(stderr, "No runs of %s yet; hks-func cron trigger %s starts one now.\n", ref,
                    ref);
        } else {
            print_runs(runs, logs);
        }
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

/* ---- trigger ---- */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The run whose id is run_id in runs, and its index; NULL when it is not there. */
static json_t *find_run(json_t *answer, const char *run_id, size_t *index)
{
    size_t i;
    json_t *run;
    json_array_foreach(json_object_get(answer, "runs"), i, run)
    {
        const char *id = str(run, "id");
        if (id && strcmp(id, run_id) == 0) {
            *index = i;
            return run;
        }
    }
    return NULL;
}

static int fetch_runs(cli_http *h, const char *ref, size_t limit, int log_bytes, json_t **answer,
                      cli_error *err)
{
    char suffix[96], path[192];
    snprintf(suffix, sizeof(suffix), "/runs?limit=%zu&log_bytes=%d", limit, log_bytes);
    cron_path(path, sizeof(path), ref, suffix);
    long status = 0;
    if (cli_http_json(h, "GET", path, NULL, 0, answer, &status, err) == 0)
        return 0;
    cli_wrap(err, "wait for the run of CronJob %s", ref);
    if (status == 404)
        cli_hint(err, "the CronJob was deleted while its run was going");
    return -1;
}

/* Poll the runs of ref until run_id is no longer running; *final: its record with its log. */
static int wait_for_run(cli_http *h, const char *ref, const char *run_id,
                        unsigned long long give_up_us, json_t **final, cli_error *err)
{
    unsigned delay_ms = WAIT_POLL_MIN_MS;
    for (;;) {
        cleanup_json json_t *answer = NULL;
        if (fetch_runs(h, ref, RUNS_LIMIT_MAX, 0, &answer, err) < 0)
            return -1;
        size_t index = 0;
        json_t *run = find_run(answer, run_id, &index);
        if (!run) {
            cli_fail(err, 0, "run %s ended but is not in the history of %s", run_id, ref);
            cli_hint(err,
                     "a history limit of 0 (--keep-succeeded, --keep-failed) drops a run as "
                     "it ends; hks-func cron get %s shows the last result",
                     ref);
            return -1;
        }
        if (strcmp(str(run, "status") ? str(run, "status") : "", "running") != 0) {
            /* once more, with the log: newer runs can only have come before it */
            cleanup_json json_t *with_logs = NULL;
            size_t limit = index + 16 < RUNS_LIMIT_MAX ? index + 16 : RUNS_LIMIT_MAX;
            if (fetch_runs(h, ref, limit, RUN_LOG_BYTES, &with_logs, err) < 0)
                return -1;
            json_t *full = find_run(with_logs, run_id, &index);
            *final = json_incref(full ? full : run);
            return 0;
        }
        if (give_up_us && hks_now_us() >= give_up_us) {
            cli_fail(err, 0, "run %s of %s is still going after the --timeout", run_id, ref);
            cli_hint(err, "it goes on: hks-func cron runs %s --logs shows it later", ref);
            return -1;
        }
        sleep_ms(delay_ms);
        delay_ms = delay_ms * 3 / 2 < WAIT_POLL_MAX_MS ? delay_ms * 3 / 2 : WAIT_POLL_MAX_MS;
    }
}

/* After --wait: print the run as asked; 0 when it succeeded, else the exit status after a line
 * on stderr saying why it failed. */
static int report_run(const json_t *run, const char *ref, cli_output out)
{
    long long number = (long long)json_integer_value(json_object_get(run, "number"));
    bool succeeded = strcmp(str(run, "status") ? str(run, "status") : "", "succeeded") == 0;
    if (out == CLI_OUT_JSON) {
        cli_print_json(run);
    } else if (out == CLI_OUT_NAME) {
        printf("%s\n", str(run, "id"));
    } else {
        const json_t *logs = json_object_get(run, "logs");
        size_t len = json_string_length(logs);
        if (len)
            fwrite(json_string_value(logs), 1, len, stdout);
        if (cli_tty.tty_out && len && json_string_value(logs)[len - 1] != '\n')
            fputc('\n', stdout);
    }
    fflush(stdout);
    char duration[32];
    const json_t *ms = json_object_get(run, "duration_ms");
    cron_format_duration(json_is_integer(ms) ? (long long)json_integer_value(ms) : -1, duration,
                         sizeof(duration));
    const char *reason = str(run, "reason") ? str(run, "reason") : "no reason given";
    if (succeeded) {
        if (cli_tty.tty_err && out == CLI_OUT_TABLE) {
            char line[512];
            snprintf(line, sizeof(line), "Run #%lld of %s succeeded (%s) in %s.\n", number, ref,
                     reason, duration);
            cli_fputs_color(stderr, CLI_GREEN, line);
        }
        return CLI_EXIT_OK;
    }
    cli_error err = {0};
    cli_fail(&err, 0, "run #%lld of %s failed after %s: %s", number, ref, duration, reason);
    cli_hint(&err, "its log is above%s; hks-func cron runs %s --logs shows the history",
             out == CLI_OUT_TABLE ? "" : " (\"logs\")", ref);
    return cli_report(&err);
}

int cron_trigger(int argc, char **argv, const cli_global *g)
{
    static const char cmd[] = "cron trigger";
    enum { O_TIMEOUT = 256 };
    static const struct option opts[] = {{"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_output out = g->output;
    bool wait = false;
    unsigned long long timeout_ms = 0;
    for (int c; (c = cli_getopt(cmd, argc, argv, ":wo:h", opts)) != -1;) {
        if (c == 'w') {
            wait = true;
        } else if (c == O_TIMEOUT) {
            if (cli_opt_duration_ms(cmd, "--timeout", optarg, &timeout_ms))
                return CLI_EXIT_USAGE;
        } else if (c == 'o') {
            if (cli_set_output(cmd, optarg, &out))
                return CLI_EXIT_USAGE;
        } else if (c == 'h') {
            return cli_print_help(trigger_help);
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    const char *ref = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (timeout_ms && !wait)
        return cli_usage(cmd, "--timeout is how long --wait waits: give --wait too");
    int rc = cron_check_ref(cmd, ref);
    if (rc)
        return rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    long status = 0;
    char path[128];
    cron_path(path, sizeof(path), ref, "/trigger");
    cleanup_json json_t *run = NULL;
    cleanup_json json_t *final = NULL;
    unsigned long long give_up_us = timeout_ms ? hks_now_us() + timeout_ms * 1000 : 0;
    const char *run_id = NULL;
    if (cli_http_json(h, "POST", path, NULL, 0, &run, &status, &err) < 0) {
        rc = cron_report(&err, status, "trigger", ref);
    } else if (!(run_id = str(run, "id"))) {
        cli_fail(&err, 0, "hksd's answer to trigger %s has no run id", ref);
        rc = cli_report(&err);
    } else if (!wait) {
        if (out == CLI_OUT_JSON)
            cli_print_json(run);
        else if (out == CLI_OUT_NAME)
            printf("%s\n", run_id);
        else
            printf("Run #%lld of %s started (%s); hks-func cron runs %s shows how it goes.\n",
                   (long long)json_integer_value(json_object_get(run, "number")), ref, run_id, ref);
    } else {
        if (cli_tty.tty_err)
            fprintf(stderr, "Run #%lld of %s started; waiting for it to end...",
                    (long long)json_integer_value(json_object_get(run, "number")), ref);
        int waited = wait_for_run(h, ref, run_id, give_up_us, &final, &err);
        if (cli_tty.tty_err)
            fputs("\r\033[K", stderr);
        rc = waited < 0 ? cli_report(&err) : report_run(final, ref, out);
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}
