/* hks-func cron: the dispatcher of its subcommands, what they share, and suspend, resume and
 * delete. */
#include "cli/cron.h"

#include <string.h>
#include <time.h>

static const char cron_help[] =
    "Usage: hks-func cron COMMAND [OPTIONS] [NAME|ID]\n"
    "\n"
    "CronJobs: hksd invokes a function, or runs a command over a deployed function's code in a\n"
    "fresh sandbox, on a schedule (5-field cron or a preset, in an IANA time zone), and keeps a\n"
    "history of the runs with what they wrote.\n"
    "\n"
    "Commands:\n"
    "  create NAME        define a CronJob: --schedule and --function FN or --task FN\n"
    "  list               the project's CronJobs: schedule, next and last run, last result\n"
    "  get NAME|ID        one CronJob's definition and status\n"
    "  runs NAME|ID       its runs, newest first (--logs: with what each wrote)\n"
    "  trigger NAME|ID    run it now (--wait: until the run ends; exit 1 if it failed)\n"
    "  suspend NAME|ID    start no more runs (runs going finish)\n"
    "  resume NAME|ID     start runs again\n"
    "  delete NAME|ID     delete it, its history, and cancel its runs going\n"
    "\n"
    "`hks-func cron COMMAND --help` shows a command's options and examples. The token needs\n"
    "the scope cronjobs:read for list, get and runs, cronjobs:write for the others, and\n"
    "functions:read to name a function by its name in create.\n"
    "\n"
    "Examples:\n"
    "  hks-func cron create ping --schedule '*/5 * * * *' --function my-function\n"
    "  hks-func cron create report --schedule daily --timezone Europe/Berlin \\\n"
    "      --task my-function -- python3 report.py --since yesterday\n"
    "  hks-func cron list\n"
    "  hks-func cron trigger report --wait\n"
    "  hks-func cron runs report --logs --limit 3\n";

static const char suspend_help[] =
    "Usage: hks-func cron suspend NAME|ID\n"
    "\n"
    "Suspends a CronJob: hksd starts no run of it (runs going finish), and counts the schedule\n"
    "times that pass. `hks-func cron resume` starts runs again.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json (the CronJob's record) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron suspend nightly-report\n"
    "  hks-func cron suspend cj-3f9a0c1d2e4b5a6978c1 -o json\n";

static const char resume_help[] =
    "Usage: hks-func cron resume NAME|ID\n"
    "\n"
    "Resumes a suspended CronJob. As Kubernetes does, the latest schedule time that passed\n"
    "while it was suspended is run at once, unless it is older than the starting deadline\n"
    "(create --deadline); earlier ones are counted as missed.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default: the next run), json (the CronJob's record) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron resume nightly-report\n";

static const char delete_help[] =
    "Usage: hks-func cron delete NAME|ID\n"
    "\n"
    "Deletes a CronJob now: its definition and its history with the logs; runs going are\n"
    "cancelled. The functions it names are not touched.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json (hksd's answer) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func cron delete nightly-report\n"
    "  hks-func cron delete cj-3f9a0c1d2e4b5a6978c1\n";

bool cron_valid_name(const char *name)
{
    return strlen(name) <= CRON_NAME_MAX && cli_valid_name(name);
}

int cron_check_ref(const char *cmd, const char *ref)
{
    if (!ref)
        return cli_usage(cmd, "give the CronJob's NAME or ID (hks-func cron list shows them)");
    if (!cron_valid_name(ref))
        return cli_usage(cmd,
                         "'%s' is neither a CronJob name (1 to %d of a-z, 0-9 and '-', a letter "
                         "first) nor an id (cj-...)",
                         ref, CRON_NAME_MAX);
    return 0;
}

void cron_path(char *buf, size_t size, const char *ref, const char *suffix)
{
    snprintf(buf, size, "/internal/v1/cronjobs/%s%s", ref, suffix);
}

int cron_report(cli_error *err, long status, const char *what, const char *ref)
{
    if (ref)
        cli_wrap(err, "%s CronJob %s", what, ref);
    else
        cli_wrap(err, "%s", what);
    if (status == 404)
        cli_hint(err, "hks-func cron list shows the project's CronJobs");
    else if (status == 409 && strcmp(what, "trigger") == 0)
        cli_hint(err,
                 "wait for the run going (hks-func cron runs %s), or create the CronJob with "
                 "--concurrency Allow or Replace",
                 ref);
    return cli_report(err);
}

int cron_parse_simple(const char *cmd, const char *help, int argc, char **argv, cli_output *out,
                      const char **ref)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    for (int c; (c = cli_getopt(cmd, argc, argv, ":o:h", opts)) != -1;) {
        if (c == 'o') {
            if (cli_set_output(cmd, optarg, out))
                return CLI_EXIT_USAGE;
        } else if (c == 'h') {
            cli_print_help(help);
            return -1;
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    if (ref && optind < argc)
        *ref = argv[optind++];
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return ref ? cron_check_ref(cmd, *ref) : 0;
}

void cron_format_time(const json_t *value, bool short_form, char *buf, size_t size)
{
    time_t t;
    if (cli_json_time(value, &t) < 0) {
        snprintf(buf, size, "-");
        return;
    }
    char rel[64];
    cli_format_relative(t, time(NULL), rel, sizeof(rel));
    if (short_form) {
        snprintf(buf, size, "%s", rel);
        return;
    }
    struct tm tm;
    char abs[32];
    gmtime_r(&t, &tm);
    strftime(abs, sizeof(abs), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(buf, size, "%s (%s)", abs, rel);
}

void cron_format_duration(long long ms, char *buf, size_t size)
{
    if (ms < 0)
        snprintf(buf, size, "-");
    else if (ms < 1000)
        snprintf(buf, size, "%lldms", ms);
    else if (ms < 60000)
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, size, "%lldm%02llds", ms / 60000, ms % 60000 / 1000);
    else
        snprintf(buf, size, "%lldh%02lldm", ms / 3600000, ms % 3600000 / 60000);
}

/* suspend and resume: PATCH {"suspend": true|false}. */
static int set_suspended(int argc, char **argv, const cli_global *g, bool suspend)
{
    const char *cmd = suspend ? "cron suspend" : "cron resume";
    cli_output out = g->output;
    const char *ref = NULL;
    int rc = cron_parse_simple(cmd, suspend ? suspend_help : resume_help, argc, argv, &out, &ref);
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
    cleanup_json json_t *body = json_pack("{s:b}", "suspend", suspend);
    cleanup_json json_t *view = NULL;
    if (cli_http_json(h, "PATCH", path, body, 0, &view, &status, &err) < 0) {
        rc = cron_report(&err, status, suspend ? "suspend" : "resume", ref);
    } else if (out == CLI_OUT_JSON) {
        cli_print_json(view);
    } else {
        const char *name = json_string_value(json_object_get(view, "name"));
        if (out == CLI_OUT_NAME) {
            printf("%s\n", name ? name : ref);
        } else if (suspend) {
            printf("CronJob %s suspended: no run starts until hks-func cron resume %s.\n",
                   name ? name : ref, name ? name : ref);
        } else {
            char next[96];
            cron_format_time(json_object_get(view, "next_run_at"), false, next, sizeof(next));
            printf("CronJob %s resumed; next run: %s.\n", name ? name : ref, next);
        }
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

static int cron_suspend(int argc, char **argv, const cli_global *g)
{
    return set_suspended(argc, argv, g, true);
}

static int cron_resume(int argc, char **argv, const cli_global *g)
{
    return set_suspended(argc, argv, g, false);
}

static int cron_delete(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    const char *ref = NULL;
    int rc = cron_parse_simple("cron delete", delete_help, argc, argv, &out, &ref);
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
    cleanup_json json_t *answer = NULL;
    if (cli_http_json(h, "DELETE", path, NULL, 0, &answer, &status, &err) < 0) {
        rc = cron_report(&err, status, "delete", ref);
    } else if (out == CLI_OUT_JSON) {
        cli_print_json(answer);
    } else if (out == CLI_OUT_NAME) {
        printf("%s\n", ref);
    } else {
        const char *id = json_string_value(json_object_get(answer, "id"));
        if (id && strcmp(id, ref) != 0)
            printf("Deleted CronJob %s (%s)\n", ref, id);
        else
            printf("Deleted CronJob %s\n", ref);
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv, const cli_global *g);
} subcommand;

static const subcommand subcommands[] = {
    {"create", cron_create},   {"list", cron_list},       {"ls", cron_list},
    {"get", cron_get},         {"describe", cron_get},    {"runs", cron_runs},
    {"trigger", cron_trigger}, {"suspend", cron_suspend}, {"resume", cron_resume},
    {"delete", cron_delete},   {"rm", cron_delete},
};

int cmd_cron(int argc, char **argv, const cli_global *g)
{
    if (argc < 2)
        return cli_usage("cron", "give a command: create, list, get, runs, trigger, suspend, "
                                 "resume or delete");
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0)
        return cli_print_help(cron_help);
    for (size_t i = 0; i < HKS_ARRAY_LEN(subcommands); i++) {
        if (strcmp(subcommands[i].name, name) == 0) {
            optind = 0; /* a fresh getopt scan of the subcommand's own arguments */
            return subcommands[i].run(argc - 1, argv + 1, g);
        }
    }
    if (name[0] == '-')
        return cli_usage("cron", "give the command before its options ('%s')", name);
    return cli_usage("cron",
                     "unknown command '%s' (create, list, get, runs, trigger, suspend, "
                     "resume, delete)",
                     name);
}
