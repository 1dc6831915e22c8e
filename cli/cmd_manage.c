/* hks-func list, describe, logs, delete. */
#include "cli/commands.h"
#include "cli/project.h"
#include "cli/target.h"

#include <string.h>
#include <time.h>

static const char list_help[] =
    "Usage: hks-func list\n"
    "\n"
    "Lists the functions of the token's project: name, id, runtime, status, invocations,\n"
    "expiry and URL.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json ({\"functions\": [record, ...]}) or name (one\n"
    "                     name a line)\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func list\n"
    "  hks-func list -o json | jq -r '.functions[].url'\n";

static const char describe_help[] =
    "Usage: hks-func describe [NAME|ID]\n"
    "\n"
    "Shows one function's record: URL, runtime, status, scale, limits, env, instances,\n"
    "invocations, errors, creation and expiry. Without NAME or ID, the function deployed from\n"
    "the current directory.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json (hksd's record) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func describe my-function\n"
    "  hks-func describe fn-3f9a0c1d2e4b5a6978c1 -o json\n";

static const char logs_help[] =
    "Usage: hks-func logs [NAME|ID] [-f] [--tail N] [--since TIME]\n"
    "\n"
    "Prints the function's log: what its instances wrote on stdout and stderr, and hksd's own\n"
    "\"system\" lines (instance started, ready, ended; expired). Without NAME or ID, the\n"
    "function deployed from the current directory.\n"
    "\n"
    "Options:\n"
    "  -f, --follow       keep printing new lines until the function is deleted or expires\n"
    "                     (or Ctrl-C)\n"
    "      --tail N       only the last N lines written so far\n"
    "      --since TIME   only lines from TIME on: RFC 3339 (2026-11-29T07:00:00Z), unix\n"
    "                     seconds, or a duration ago (10m, 2h)\n"
    "  -o, --output FMT   table (default: TIME INSTANCE STREAM TEXT) or json (hksd's NDJSON)\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func logs my-function --tail 20\n"
    "  hks-func logs -f --since 5m\n";

static const char delete_help[] =
    "Usage: hks-func delete [NAME|ID]\n"
    "\n"
    "Deletes a function now: its instances, code and record. Without NAME or ID, the function\n"
    "deployed from the current directory; its .hks/function.json is removed too.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT   table (default), json (hksd's answer) or name\n"
    "  -h, --help         this help\n"
    "\n"
    "Examples:\n"
    "  hks-func delete my-function\n"
    "  hks-func delete fn-3f9a0c1d2e4b5a6978c1\n";

/* Parse the options common to these commands; 0, CLI_EXIT_USAGE, or -1 after --help. */
static int parse_simple(const char *cmd, const char *help, int argc, char **argv, cli_output *out,
                        const char **target, bool takes_target)
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
    if (takes_target && optind < argc)
        *target = argv[optind++];
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static void format_time(const json_t *v, char *buf, size_t size)
{
    time_t t;
    if (cli_json_time(v, &t) < 0) {
        snprintf(buf, size, "-");
        return;
    }
    char rel[64];
    cli_format_relative(t, time(NULL), rel, sizeof(rel));
    snprintf(buf, size, "%s", rel);
}

int cmd_list(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    int rc = parse_simple("list", list_help, argc, argv, &out, NULL, false);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    json_t *list = NULL;
    if (cli_http_json(h, "GET", "/internal/v1/functions", NULL, 0, &list, NULL, &err) < 0) {
        cli_wrap(&err, "list the functions");
        rc = cli_report(&err);
    } else if (out == CLI_OUT_JSON) {
        cli_print_json(list);
    } else {
        const json_t *fns = json_object_get(list, "functions");
        size_t i;
        const json_t *fn;
        static const char *const header[] = {"NAME",        "ID",      "RUNTIME", "STATUS",
                                             "INVOCATIONS", "EXPIRES", "URL"};
        cli_table t;
        if (out == CLI_OUT_TABLE && cli_table_init(&t, 7, header) < 0)
            out = CLI_OUT_NAME;
        json_array_foreach(fns, i, fn)
        {
            const char *name = json_string_value(json_object_get(fn, "name"));
            if (out == CLI_OUT_NAME) {
                printf("%s\n", name ? name : "");
                continue;
            }
            char inv[32], exp[64];
            snprintf(inv, sizeof(inv), "%lld",
                     (long long)json_integer_value(json_object_get(fn, "invocations")));
            format_time(json_object_get(fn, "expires_at"), exp, sizeof(exp));
            const char *row[] = {name,
                                 json_string_value(json_object_get(fn, "id")),
                                 json_string_value(json_object_get(fn, "runtime")),
                                 json_string_value(json_object_get(fn, "status")),
                                 inv,
                                 exp,
                                 json_string_value(json_object_get(fn, "url"))};
            (void)cli_table_add(&t, row);
        }
        if (out == CLI_OUT_TABLE) {
            if (json_array_size(fns) == 0)
                fprintf(stderr, "No functions in project %s.\n",
                        s.token_project ? s.token_project : "(the token's)");
            else
                cli_table_print(&t, stdout);
            cli_table_free(&t);
        }
    }
    json_decref(list);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

/* GET the record of target (resolved); on failure the error is reported and its status returned */
static int fetch(cli_http *h, const char *cmd, const char *arg, cli_target *t, json_t **record)
{
    cli_error err = {0};
    long status = 0;
    if (cli_target_resolve(h, arg, ".", t, &err) < 0)
        return cli_report(&err);
    char path[128];
    snprintf(path, sizeof(path), "/internal/v1/functions/%s", t->id);
    if (cli_http_json(h, "GET", path, NULL, 0, record, &status, &err) < 0) {
        cli_wrap(&err, "%s %s", cmd, t->name[0] ? t->name : t->id);
        if (status == 404 && t->local)
            cli_hint(&err,
                     "%s (%s), deployed from this directory, is gone (deleted or past its "
                     "TTL): run hks-func deploy",
                     t->name, t->id);
        return cli_report(&err);
    }
    return 0;
}

static void kv(const char *key, const char *value)
{
    char label[32];
    snprintf(label, sizeof(label), "%s:", key);
    cli_fputs_color(stdout, CLI_BOLD, label);
    printf("%*s%s\n", (int)(14 - strlen(label)), "", value && *value ? value : "-");
}

static long long num(const json_t *obj, const char *key)
{
    return (long long)json_number_value(json_object_get(obj, key));
}

static void describe_table(const json_t *r)
{
    char buf[1024], rel[64];
    const char *keys[] = {"name", "id", "project", "owner", "runtime", "status", "url"};
    const char *labels[] = {"Name", "ID", "Project", "Owner", "Runtime", "Status", "URL"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(keys); i++)
        kv(labels[i], json_string_value(json_object_get(r, keys[i])));
    const char *tkeys[] = {"created_at", "expires_at", "last_invocation_at"};
    const char *tlabels[] = {"Created", "Expires", "Last call"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(tkeys); i++) {
        const json_t *v = json_object_get(r, tkeys[i]);
        format_time(v, rel, sizeof(rel));
        snprintf(buf, sizeof(buf), "%s (%s)", json_is_string(v) ? json_string_value(v) : "-", rel);
        kv(tlabels[i], json_is_null(v) || !v ? "never" : buf);
    }
    snprintf(buf, sizeof(buf), "min %lld, max %lld, concurrency %lld", num(r, "min_scale"),
             num(r, "max_scale"), num(r, "concurrency"));
    kv("Scale", buf);
    const json_t *l = json_object_get(r, "limits");
    snprintf(buf, sizeof(buf),
             "memory %lld MiB, cpus %g, timeout %lld ms, pids %lld, tmpfs %lld MiB",
             num(l, "memory_mb"), json_number_value(json_object_get(l, "cpus")), num(l, "wall_ms"),
             num(l, "pids"), num(l, "tmpfs_mb"));
    kv("Limits", buf);
    cleanup_buf cli_buf env = {0};
    const char *k;
    const json_t *v;
    json_t *env_obj = json_object_get(r, "env");
    json_object_foreach(env_obj, k, v)
    {
        if (cli_buf_printf(&env, "%s%s=%s", env.len ? ", " : "", k, json_string_value(v)) < 0)
            break;
    }
    kv("Env", env.data);
    const json_t *in = json_object_get(r, "instances");
    snprintf(buf, sizeof(buf), "running %lld, ready %lld, busy %lld", num(in, "running"),
             num(in, "ready"), num(in, "busy"));
    kv("Instances", buf);
    snprintf(buf, sizeof(buf), "%lld (errors %lld, cold starts %lld)", num(r, "invocations"),
             num(r, "errors"), num(r, "cold_starts"));
    kv("Invocations", buf);
    kv("Code sha256", json_string_value(json_object_get(r, "code_sha256")));
}

int cmd_describe(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    const char *arg = NULL;
    int rc = parse_simple("describe", describe_help, argc, argv, &out, &arg, true);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_target t;
    json_t *record = NULL;
    if ((rc = fetch(h, "describe", arg, &t, &record)) == 0) {
        if (out == CLI_OUT_JSON)
            cli_print_json(record);
        else if (out == CLI_OUT_NAME)
            printf("%s\n", json_string_value(json_object_get(record, "name")));
        else
            describe_table(record);
    }
    json_decref(record);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

typedef struct log_printer {
    cli_output out;
} log_printer;

static int print_log_line(const char *line, size_t len, void *arg)
{
    const log_printer *lp = arg;
    if (len == 0)
        return 0;
    int ok;
    if (lp->out == CLI_OUT_JSON) {
        ok = fwrite(line, 1, len, stdout) == len && fputc('\n', stdout) != EOF;
    } else {
        cleanup_json json_t *o = json_loadb(line, len, 0, NULL);
        const char *ts = json_string_value(json_object_get(o, "ts"));
        const char *stream = json_string_value(json_object_get(o, "stream"));
        const char *inst = json_string_value(json_object_get(o, "instance"));
        const char *text = json_string_value(json_object_get(o, "line"));
        if (!o || !text) {
            ok = fwrite(line, 1, len, stdout) == len && fputc('\n', stdout) != EOF;
        } else {
            printf("%s %-4s ", ts ? ts : "-", inst ? inst : "-");
            char label[16];
            snprintf(label, sizeof(label), "%-6s", stream ? stream : "-");
            cli_fputs_color(stdout,
                            stream && strcmp(stream, "stderr") == 0   ? CLI_YELLOW
                            : stream && strcmp(stream, "system") == 0 ? CLI_CYAN
                                                                      : CLI_DIM,
                            label);
            ok = printf(" %s\n", text) >= 0;
        }
    }
    return ok && fflush(stdout) == 0 ? 0 : 1;
}

/* --since: a duration ago becomes unix seconds; anything else goes to hksd as is. */
static void since_value(const char *arg, char *out, size_t size)
{
    unsigned long long ms;
    bool digits = arg[strspn(arg, "0123456789")] == '\0';
    if (!digits && hks_parse_duration_ms(arg, &ms) == 0)
        snprintf(out, size, "%lld", (long long)time(NULL) - (long long)(ms / 1000));
    else
        snprintf(out, size, "%s", arg);
}

int cmd_logs(int argc, char **argv, const cli_global *g)
{
    enum { O_TAIL = 256, O_SINCE };
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"tail", required_argument, NULL, O_TAIL},
                                         {"since", required_argument, NULL, O_SINCE},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    log_printer lp = {.out = g->output};
    bool follow = false;
    const char *tail = NULL, *since = NULL, *arg = NULL;
    unsigned long long n;
    for (int c; (c = cli_getopt("logs", argc, argv, ":fo:h", opts)) != -1;) {
        if (c == 'f') {
            follow = true;
        } else if (c == O_TAIL) {
            if (cli_opt_uint("logs", "--tail", optarg, 0, 100000000, &n))
                return CLI_EXIT_USAGE;
            tail = optarg;
        } else if (c == O_SINCE) {
            since = optarg;
        } else if (c == 'o') {
            if (cli_set_output("logs", optarg, &lp.out))
                return CLI_EXIT_USAGE;
        } else if (c == 'h') {
            return cli_print_help(logs_help);
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        arg = argv[optind++];
    if (optind < argc)
        return cli_usage("logs", "unexpected argument '%s'", argv[optind]);
    if (lp.out == CLI_OUT_NAME)
        return cli_usage("logs", "-o name does not apply to logs (json or table)");
    cli_settings s;
    cli_http *h = NULL;
    int rc = cli_connect(&s, &h);
    if (rc)
        return rc;
    cli_error err = {0};
    cli_target t;
    long status = 0;
    if (cli_target_resolve(h, arg, ".", &t, &err) < 0) {
        rc = cli_report(&err);
    } else {
        char since_buf[128] = "";
        if (since)
            since_value(since, since_buf, sizeof(since_buf));
        cleanup_free char *since_q = since ? cli_url_escape(h, since_buf) : NULL;
        char path[512];
        snprintf(path, sizeof(path), "/internal/v1/functions/%s/logs?follow=%s%s%s%s%s", t.id,
                 follow ? "true" : "false", tail ? "&tail=" : "", tail ? tail : "",
                 since_q ? "&since=" : "", since_q ? since_q : "");
        if (cli_http_lines(h, path, print_log_line, &lp, &status, &err) < 0) {
            cli_wrap(&err, "logs of %s", t.name[0] ? t.name : t.id);
            if (status == 404 && t.local)
                cli_hint(&err,
                         "%s (%s), deployed from this directory, is gone (deleted or past "
                         "its TTL)",
                         t.name, t.id);
            rc = cli_report(&err);
        }
    }
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

int cmd_delete(int argc, char **argv, const cli_global *g)
{
    cli_output out = g->output;
    const char *arg = NULL;
    int rc = parse_simple("delete", delete_help, argc, argv, &out, &arg, true);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h)))
        return rc;
    cli_error err = {0};
    cli_target t;
    json_t *answer = NULL;
    long status = 0;
    json_t *body = NULL;
    if (cli_target_resolve(h, arg, ".", &t, &err) < 0) {
        rc = cli_report(&err);
        goto out;
    }
    body = json_pack("{s:s}", "id", t.id);
    if (cli_http_json(h, "POST", "/internal/v1/operations/delete-function", body, 0, &answer,
                      &status, &err) < 0) {
        cli_wrap(&err, "delete %s", t.name[0] ? t.name : t.id);
        if (status == 404 && t.local) {
            cli_hint(&err, "it was already gone (deleted or past its TTL); .hks/function.json is "
                           "removed");
            cli_error ignored;
            (void)cli_local_remove(".", &ignored);
        }
        rc = cli_report(&err);
        goto out;
    }
    cli_local_fn local;
    bool found = false;
    cli_error ignored;
    if (cli_local_load(".", &local, &found, &ignored) == 0 && found) {
        if (strcmp(local.id, t.id) == 0 && cli_local_remove(".", &err) < 0)
            cli_warn("%s", err.e.msg);
        cli_local_free(&local);
    }
    if (out == CLI_OUT_JSON)
        cli_print_json(answer);
    else if (out == CLI_OUT_NAME)
        printf("%s\n", t.name[0] ? t.name : t.id);
    else
        printf("Deleted %s%s%s%s\n", t.name[0] ? t.name : t.id, t.name[0] ? " (" : "",
               t.name[0] ? t.id : "", t.name[0] ? ")" : "");
out:
    json_decref(body);
    json_decref(answer);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}
