/* hks-func cron create: a CronJob's definition from the options (POST /internal/v1/cronjobs). */
#include "cli/cron.h"
#include "cli/target.h"

#include <string.h>

#define MAX_BODY_BYTES (1024 * 1024) /* hksd's CJ_BODY_MAX */
#define MAX_KEEP       100           /* hksd's CJ_HISTORY_MAX */
#define MAX_DEADLINE_S (366ULL * 86400)

static const char create_help[] =
    "Usage: hks-func cron create NAME --schedule SCHEDULE [--timezone TZ]\n"
    "           --function FN [--method M] [--path P] [--data TEXT | --file F] [--header 'K: "
    "V']...\n"
    "         | --task FN (--command 'CMD ARGS' | -- CMD ARGS...) [--env K=V]... [--timeout D]\n"
    "           [--concurrency Allow|Forbid|Replace] [--deadline SECONDS] [--keep-succeeded N]\n"
    "           [--keep-failed N] [--suspend]\n"
    "\n"
    "Defines the CronJob NAME (1 to 52 of a-z, 0-9 and '-', a letter first) in the token's\n"
    "project. At each time of SCHEDULE in TZ, hksd starts a run of its target:\n"
    "  --function FN  an HTTP request to the function FN (a name or an id): POST / with an\n"
    "                 empty body unless the options below say otherwise; the run succeeds when\n"
    "                 the function answers 1xx-3xx, and its log is the answer's body.\n"
    "  --task FN      a command run once in a fresh sandbox over the code of the deployed\n"
    "                 function FN: its runtime, its files at /code (the working directory),\n"
    "                 its env and limits. The run succeeds when the command exits 0; its log is\n"
    "                 what the command wrote.\n"
    "\n"
    "SCHEDULE is 5 fields, 'minute hour day-of-month month day-of-week', with names (JAN-DEC,\n"
    "SUN-SAT), ranges, steps, lists and '?' (day-of-month and day-of-week: either matches, as in\n"
    "Kubernetes), or a preset: hourly, daily, weekly, monthly, yearly (@hourly, @daily, ...).\n"
    "hksd checks it and says which field is wrong.\n"
    "\n"
    "Options:\n"
    "  -s, --schedule S        when to run (required), e.g. '*/5 * * * *', '0 3 * * MON-FRI'\n"
    "      --timezone TZ       the IANA time zone of the schedule, e.g. Europe/Berlin (UTC)\n"
    "      --function FN       invoke the function FN (its name or id)\n"
    "  -X, --method M          the request's method (POST)\n"
    "      --path P            the request's path and ?query (/)\n"
    "  -d, --data TEXT         the request's body (UTF-8 text, at most 1 MiB)\n"
    "      --file FILE         the request's body from FILE (- for stdin)\n"
    "  -H, --header 'K: V'     a request header (repeatable); without Content-Type, a body gets\n"
    "                          application/json when it parses as JSON, else text/plain\n"
    "      --task FN           run a command over the code of the function FN (name or id)\n"
    "  -c, --command 'CMD A'   the command, split into words as a shell would (quotes and\n"
    "                          backslashes; no expansions); or give it after --, word for word\n"
    "  -e, --env K=V           a variable of the command, over the function's (repeatable)\n"
    "      --timeout D         the command's time limit, e.g. 90s, 10m (300s, or the server's\n"
    "                          most if lower)\n"
    "      --concurrency P     when a run is due while one is going: Allow (run both, the\n"
    "                          default), Forbid (skip the new one) or Replace (cancel the old)\n"
    "      --deadline SECONDS  a run not started within SECONDS of its time is missed (no\n"
    "                          limit by default); also a duration: 5m\n"
    "      --keep-succeeded N  succeeded runs kept in the history (3)\n"
    "      --keep-failed N     failed runs kept in the history (1)\n"
    "      --suspend           create it suspended (hks-func cron resume starts it)\n"
    "  -o, --output FMT        table (default), json (the CronJob's record) or name\n"
    "  -h, --help              this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron create ping --schedule '*/5 * * * *' --function my-function\n"
    "  hks-func cron create digest --schedule '0 8 * * MON-FRI' --timezone Europe/Berlin \\\n"
    "      --function my-function --path /digest -d '{\"since\": \"1d\"}' -H 'x-job: digest'\n"
    "  hks-func cron create cleanup --schedule hourly --task my-function \\\n"
    "      --command 'python3 cleanup.py --older-than 7d' --env DRY_RUN=0 --timeout 10m\n"
    "  hks-func cron create report --schedule daily --concurrency Forbid --deadline 600 \\\n"
    "      --task fn-3f9a0c1d2e4b5a6978c1 -- node report.js --format csv\n";

typedef struct create_opts {
    const char *name, *schedule, *timezone, *function, *task, *method, *path, *data, *file,
        *command, *policy;
    json_t *headers, *env, *words; /* words: the task's command, from --command or after -- */
    long long deadline_s, keep_succeeded, keep_failed, timeout_s; /* -1: not given */
    bool suspend, after_dashdash;
    cli_output out;
} create_opts;

enum {
    O_TIMEZONE = 256,
    O_FUNCTION,
    O_PATH,
    O_FILE,
    O_TASK,
    O_TIMEOUT,
    O_CONCURRENCY,
    O_DEADLINE,
    O_KEEP_SUCCEEDED,
    O_KEEP_FAILED,
    O_SUSPEND,
};

static const char shortopts[] = ":s:X:d:H:c:e:o:h";
static const struct option longopts[] = {
    {"schedule", required_argument, NULL, 's'},
    {"timezone", required_argument, NULL, O_TIMEZONE},
    {"function", required_argument, NULL, O_FUNCTION},
    {"method", required_argument, NULL, 'X'},
    {"path", required_argument, NULL, O_PATH},
    {"data", required_argument, NULL, 'd'},
    {"file", required_argument, NULL, O_FILE},
    {"header", required_argument, NULL, 'H'},
    {"task", required_argument, NULL, O_TASK},
    {"command", required_argument, NULL, 'c'},
    {"env", required_argument, NULL, 'e'},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"concurrency", required_argument, NULL, O_CONCURRENCY},
    {"deadline", required_argument, NULL, O_DEADLINE},
    {"keep-succeeded", required_argument, NULL, O_KEEP_SUCCEEDED},
    {"keep-failed", required_argument, NULL, O_KEEP_FAILED},
    {"suspend", no_argument, NULL, O_SUSPEND},
    CLI_COMMON_OPTIONS,
    {NULL, 0, NULL, 0}};

/* Where the command after "--" starts: the first "--" that is not an option's value (argc when
 * there is none). getopt then only sees what comes before it. */
static int find_dashdash(int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "--") == 0)
            return k;
        if (a[0] != '-' || a[1] == '\0')
            continue;
        if (a[1] == '-') {
            if (strchr(a, '='))
                continue;
            for (const struct option *o = longopts; o->name; o++) {
                if (strstr(o->name, a + 2) == o->name) { /* getopt takes unique prefixes too */
                    k += o->has_arg == required_argument;
                    break;
                }
            }
            continue;
        }
        for (const char *p = a + 1; *p; p++) {
            const char *s = strchr(shortopts + 1, *p);
            if (s && *p != ':' && s[1] == ':') {
                k += p[1] == '\0'; /* "-X VALUE", not "-XVALUE" */
                break;
            }
        }
    }
    return argc;
}

/* Split text into words as a POSIX shell does, without expansions: blanks separate words;
 * '...' is literal; in "..." a backslash escapes only " \ $ and `; elsewhere it escapes any
 * character. NULL, or what is wrong. */
static const char *split_words(const char *text, json_t *words)
{
    cleanup_buf cli_buf word = {0};
    bool in_word = false;
    for (const char *p = text;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (in_word && json_array_append_new(words, json_stringn(word.data, word.len)) < 0)
                return "out of memory";
            word.len = 0;
            in_word = false;
            if (c == '\0')
                return NULL;
            continue;
        }
        in_word = true;
        if (c == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end)
                return "a ' is not closed";
            if (cli_buf_append(&word, p + 1, (size_t)(end - p - 1)) < 0)
                return "out of memory";
            p = end;
        } else if (c == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                if (cli_buf_append(&word, p, 1) < 0)
                    return "out of memory";
            }
            if (!*p)
                return "a \" is not closed";
        } else if (c == '\\') {
            if (!p[1])
                return "it ends with a lone backslash";
            p++;
            if (cli_buf_append(&word, p, 1) < 0)
                return "out of memory";
        } else if (cli_buf_append(&word, p, 1) < 0) {
            return "out of memory";
        }
    }
}

static int parse_option(int c, create_opts *o)
{
    static const char cmd[] = "cron create";
    unsigned long long v;
    switch (c) {
    case 's':
        o->schedule = optarg;
        break;
    case O_TIMEZONE:
        o->timezone = optarg;
        break;
    case O_FUNCTION:
        o->function = optarg;
        break;
    case 'X':
        o->method = optarg;
        break;
    case O_PATH:
        o->path = optarg;
        break;
    case 'd':
        o->data = optarg;
        break;
    case O_FILE:
        o->file = optarg;
        break;
    case 'H':
        return cli_opt_header(cmd, optarg, o->headers);
    case O_TASK:
        o->task = optarg;
        break;
    case 'c':
        o->command = optarg;
        break;
    case 'e':
        return cli_opt_env(cmd, optarg, o->env, false);
    case O_TIMEOUT:
        if (cli_opt_duration_ms(cmd, "--timeout", optarg, &v))
            return CLI_EXIT_USAGE;
        o->timeout_s = (long long)((v + 999) / 1000);
        break;
    case O_CONCURRENCY:
        o->policy = optarg;
        break;
    case O_DEADLINE:
        if (hks_parse_duration_ms(optarg, &v) < 0 || v / 1000 > MAX_DEADLINE_S)
            return cli_usage(cmd,
                             "--deadline '%s' is not a number of seconds up to %llu (or a "
                             "duration: 90s, 10m)",
                             optarg, MAX_DEADLINE_S);
        o->deadline_s = (long long)(v / 1000);
        break;
    case O_KEEP_SUCCEEDED:
    case O_KEEP_FAILED:
        if (cli_opt_uint(cmd, c == O_KEEP_FAILED ? "--keep-failed" : "--keep-succeeded", optarg, 0,
                         MAX_KEEP, &v))
            return CLI_EXIT_USAGE;
        *(c == O_KEEP_FAILED ? &o->keep_failed : &o->keep_succeeded) = (long long)v;
        break;
    case O_SUSPEND:
        o->suspend = true;
        break;
    case 'o':
        return cli_set_output(cmd, optarg, &o->out);
    default:
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The options that only make sense with one kind of target. */
static int check_target_options(const create_opts *o)
{
    static const char cmd[] = "cron create";
    if (!o->function && !o->task)
        return cli_usage(cmd, "give the target: --function FN (invoke it) or --task FN (run a "
                              "command over its code)");
    if (o->function && o->task)
        return cli_usage(cmd, "give --function or --task, not both");
    if (o->function) {
        const char *task_only = o->command                 ? "--command"
                                : o->after_dashdash        ? "a command after --"
                                : json_object_size(o->env) ? "--env"
                                : o->timeout_s >= 0        ? "--timeout"
                                                           : NULL;
        if (task_only)
            return cli_usage(cmd,
                             "%s goes with --task, not --function (a function keeps its "
                             "own env and timeout)",
                             task_only);
        if (o->data && o->file)
            return cli_usage(cmd, "give --data or --file, not both");
        if (o->path && (o->path[0] != '/' || strpbrk(o->path, " \t\r\n#")))
            return cli_usage(cmd, "--path '%s' must start with / and hold no blanks or #", o->path);
        return 0;
    }
    const char *function_only = o->method                      ? "--method"
                                : o->path                      ? "--path"
                                : o->data                      ? "--data"
                                : o->file                      ? "--file"
                                : json_object_size(o->headers) ? "--header"
                                                               : NULL;
    if (function_only)
        return cli_usage(cmd, "%s goes with --function, not --task", function_only);
    if (o->command && o->after_dashdash)
        return cli_usage(cmd, "give the command with --command or after --, not both");
    if (!o->command && !o->after_dashdash)
        return cli_usage(cmd, "a --task needs its command: --command 'python3 job.py' or "
                              "-- python3 job.py");
    if (json_array_size(o->words) == 0)
        return cli_usage(cmd, "the task's command is empty");
    return 0;
}

/* 0, CLI_EXIT_USAGE after a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, create_opts *o)
{
    static const char cmd[] = "cron create";
    int dashdash = find_dashdash(argc, argv);
    for (int c; (c = cli_getopt(cmd, dashdash, argv, shortopts, longopts)) != -1;) {
        if (c == 'h') {
            cli_print_help(create_help);
            return -1;
        }
        if (c < 0 || parse_option(c, o))
            return CLI_EXIT_USAGE;
    }
    if (optind < dashdash)
        o->name = argv[optind++];
    if (optind < dashdash)
        return cli_usage(cmd,
                         "unexpected argument '%s' (a task's command goes after -- or in "
                         "--command)",
                         argv[optind]);
    if (!o->name)
        return cli_usage(cmd, "give the CronJob's NAME");
    if (!cron_valid_name(o->name))
        return cli_usage(cmd,
                         "NAME '%s' is not 1 to %d of a-z, 0-9 and '-', starting with a letter "
                         "and not ending with '-'",
                         o->name, CRON_NAME_MAX);
    if (!o->schedule)
        return cli_usage(cmd, "give --schedule, e.g. '*/5 * * * *' or daily");
    o->after_dashdash = dashdash < argc;
    for (int k = dashdash + 1; k < argc; k++)
        if (json_array_append_new(o->words, json_string(argv[k])) < 0)
            return cli_usage(cmd, "a word of the command is not UTF-8: '%s'", argv[k]);
    if (o->command) {
        const char *why = split_words(o->command, o->words);
        if (why)
            return cli_usage(cmd, "--command cannot be split into words: %s", why);
    }
    if (o->policy) {
        static const char *const policies[] = {"Allow", "Forbid", "Replace"};
        const char *known = NULL;
        for (size_t i = 0; i < HKS_ARRAY_LEN(policies); i++)
            if (strcasecmp(o->policy, policies[i]) == 0)
                known = policies[i];
        if (!known)
            return cli_usage(cmd, "--concurrency '%s' is not Allow, Forbid or Replace", o->policy);
        o->policy = known;
    }
    if (o->method) {
        static const char *const methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                              "DELETE", "HEAD", "OPTIONS"};
        const char *known = NULL;
        for (size_t i = 0; i < HKS_ARRAY_LEN(methods); i++)
            if (strcasecmp(o->method, methods[i]) == 0)
                known = methods[i];
        if (!known)
            return cli_usage(cmd,
                             "unknown method '%s' (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)",
                             o->method);
        o->method = known;
    }
    return check_target_options(o);
}

/* target.function: {id, method, path, headers, body}. */
static int function_target(const create_opts *o, const char *id, json_t *target, cli_error *err)
{
    json_t *fn = json_object();
    if (!fn || json_object_set_new(target, "function", fn) < 0)
        return cli_fail(err, ENOMEM, "target");
    json_object_set_new(fn, "id", json_string(id));
    if (o->method)
        json_object_set_new(fn, "method", json_string(o->method));
    if (o->path)
        json_object_set_new(fn, "path", json_string(o->path));
    json_t *headers = json_deep_copy(o->headers);
    if (!headers || json_object_set_new(fn, "headers", headers) < 0)
        return cli_fail(err, ENOMEM, "headers");
    if (!o->data && !o->file)
        return 0;
    cleanup_buf cli_buf body = {0};
    if (o->data && cli_buf_append(&body, o->data, strlen(o->data)) < 0)
        return cli_fail(err, ENOMEM, "--data");
    if (o->file && cli_read_file(o->file, MAX_BODY_BYTES, &body, err) < 0) {
        cli_hint(err, "--file is the request's body: a readable file of at most 1 MiB, or - for "
                      "stdin");
        return cli_wrap(err, "--file");
    }
    if (body.len > MAX_BODY_BYTES)
        return cli_fail(err, 0, "the body is %zu bytes, over hksd's 1 MiB", body.len);
    if (!cli_utf8_valid(body.data, body.len) || memchr(body.data, '\0', body.len)) {
        cli_fail(err, 0, "the body of --%s is not UTF-8 text", o->file ? "file" : "data");
        cli_hint(err, "a CronJob's request body is text; encode binary data (base64) yourself");
        return -1;
    }
    if (!json_object_get(headers, "content-type") && body.len) {
        json_t *parsed = json_loadb(body.data, body.len, JSON_DECODE_ANY, NULL);
        json_object_set_new(headers, "content-type",
                            json_string(parsed ? "application/json" : "text/plain; charset=utf-8"));
        json_decref(parsed);
    }
    if (json_object_set_new(fn, "body", json_stringn(body.data, body.len)) < 0)
        return cli_fail(err, ENOMEM, "body");
    return 0;
}

/* target.task: {template, command, env, timeout_seconds}. */
static int task_target(const create_opts *o, const char *id, json_t *target, cli_error *err)
{
    json_t *task = json_pack("{s:s,s:O,s:O}", "template", id, "command", o->words, "env", o->env);
    if (!task || json_object_set_new(target, "task", task) < 0)
        return cli_fail(err, ENOMEM, "target");
    if (o->timeout_s >= 0)
        json_object_set_new(task, "timeout_seconds", json_integer(o->timeout_s));
    return 0;
}

static json_t *definition(const create_opts *o)
{
    json_t *d =
        json_pack("{s:s,s:s,s:b}", "name", o->name, "schedule", o->schedule, "suspend", o->suspend);
    if (!d)
        return NULL;
    if (o->timezone)
        json_object_set_new(d, "timezone", json_string(o->timezone));
    if (o->policy)
        json_object_set_new(d, "concurrency_policy", json_string(o->policy));
    if (o->deadline_s >= 0)
        json_object_set_new(d, "starting_deadline_seconds", json_integer(o->deadline_s));
    if (o->keep_succeeded >= 0)
        json_object_set_new(d, "successful_jobs_history_limit", json_integer(o->keep_succeeded));
    if (o->keep_failed >= 0)
        json_object_set_new(d, "failed_jobs_history_limit", json_integer(o->keep_failed));
    return d;
}

/* The option that sets a field hksd refused. */
static const char *option_of(const char *field)
{
    static const struct {
        const char *prefix, *option;
    } map[] = {
        {"name", "NAME"},
        {"schedule", "--schedule"},
        {"timezone", "--timezone"},
        {"concurrency_policy", "--concurrency"},
        {"starting_deadline_seconds", "--deadline"},
        {"successful_jobs_history_limit", "--keep-succeeded"},
        {"failed_jobs_history_limit", "--keep-failed"},
        {"target.function.id", "--function"},
        {"target.function.method", "--method"},
        {"target.function.path", "--path"},
        {"target.function.headers", "--header"},
        {"target.function.body", "--data or --file"},
        {"target.task.template", "--task"},
        {"target.task.command", "--command"},
        {"target.task.args", "--command"},
        {"target.task.env", "--env"},
        {"target.task.timeout_seconds", "--timeout"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(map); i++)
        if (strncmp(field, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].option;
    return NULL;
}

static void print_created(const json_t *view, const cli_target *t, bool task)
{
    const char *name = json_string_value(json_object_get(view, "name"));
    const char *tz = json_string_value(json_object_get(view, "timezone"));
    char next[96];
    cron_format_time(json_object_get(view, "next_run_at"), false, next, sizeof(next));
    printf("CronJob %s (%s) created: \"%s\" in %s, %s %s.\n", name ? name : "?",
           json_string_value(json_object_get(view, "id")),
           json_string_value(json_object_get(view, "schedule")), tz ? tz : "UTC",
           task ? "a task over the code of" : "invoking", t->name[0] ? t->name : t->id);
    if (json_is_true(json_object_get(view, "suspend")))
        printf("Suspended: no run starts until hks-func cron resume %s.\n", name ? name : "");
    else
        printf("Next run: %s.\n", next);
}

int cron_create(int argc, char **argv, const cli_global *g)
{
    create_opts o = {.out = g->output,
                     .headers = json_object(),
                     .env = json_object(),
                     .words = json_array(),
                     .deadline_s = -1,
                     .keep_succeeded = -1,
                     .keep_failed = -1,
                     .timeout_s = -1};
    cleanup_json json_t *headers = o.headers, *env = o.env, *words = o.words;
    if (!headers || !env || !words)
        return CLI_EXIT_FAILED;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    cli_target t;
    long status = 0;
    cleanup_json json_t *d = definition(&o);
    cleanup_json json_t *target = json_object();
    cleanup_json json_t *view = NULL;
    if (!d || !target) {
        cli_fail(&err, ENOMEM, "CronJob definition");
        rc = cli_report(&err);
    } else if (cli_target_resolve(h, o.function ? o.function : o.task, ".", &t, &err) < 0) {
        cli_wrap(&err, "--%s", o.function ? "function" : "task");
        if (!err.hint[0])
            cli_hint(&err, "hks-func list shows the project's functions, by name and id");
        rc = cli_report(&err);
    } else if ((o.function ? function_target(&o, t.id, target, &err)
                           : task_target(&o, t.id, target, &err)) < 0) {
        rc = cli_report(&err);
    } else if (json_object_set(d, "target", target) < 0 ||
               cli_http_json(h, "POST", "/internal/v1/cronjobs", d, 0, &view, &status, &err) < 0) {
        cli_wrap(&err, "create CronJob %s", o.name);
        const char *option = status == 422 ? option_of(err.field) : NULL;
        if (option)
            cli_hint(&err, "fix %s (see hks-func cron create --help)", option);
        else if (status == 409)
            cli_hint(&err, "hks-func cron get %s shows it; delete it first, or pick another name",
                     o.name);
        rc = cli_report(&err);
    } else if (o.out == CLI_OUT_JSON) {
        cli_print_json(view);
    } else if (o.out == CLI_OUT_NAME) {
        printf("%s\n", json_string_value(json_object_get(view, "name")));
    } else {
        print_created(view, &t, o.task != NULL);
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}
