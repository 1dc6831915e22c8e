/* hks-func run: one execution (POST /internal/v1/operations/execute). */
#include "cli/commands.h"
#include "cli/project.h"

#include <string.h>

#define MAX_CODE_BYTES  (8 * 1024 * 1024) /* policies/limits.json execute.max_file_bytes */
#define MAX_INPUT_BYTES (1024 * 1024)     /* execute.max_stdin_bytes */

enum { EXIT_TIMEOUT = 124, EXIT_KILLED = 137 };

static const char run_help[] =
    "Usage: hks-func run [OPTIONS] FILE|- [ARGS...]\n"
    "\n"
    "Runs a program once in a fresh sandbox (execute) and passes its stdout and stderr through\n"
    "to hks-func's own, then exits with the program's exit status. The runtime comes from\n"
    "FILE's extension (.py: python; .js, .mjs, .cjs: node) or --runtime; \"-\" reads the\n"
    "program from stdin (then --runtime is required). Options come before FILE: what follows\n"
    "it is the program's ARGS.\n"
    "\n"
    "Exit status:\n"
    "  the program's own exit status (0 when it succeeded)\n"
    "  128+N  it was killed by signal N\n"
    "  124    it ran past its time limit (--timeout), like timeout(1)\n"
    "  137    it ran out of memory, or past the output limit (killed, as by SIGKILL)\n"
    "  1      hks-func could not run it (hksd answered an error or could not be reached)\n"
    "  2      usage error\n"
    "A line on stderr says which when hks-func itself ends the run (timeout, memory, output).\n"
    "\n"
    "Options:\n"
    "  -r, --runtime NAME     python or node\n"
    "  -e, --env K=V          environment variable of the program (repeatable)\n"
    "  -t, --timeout DURATION wall-clock limit, e.g. 5s (default: the server's, 10s as shipped)\n"
    "  -m, --memory MB        memory limit in MiB (or 256Mi, 1Gi)\n"
    "  -i, --input FILE       the program's stdin (- for hks-func's stdin; default: empty)\n"
    "  -o, --output FMT       table (default: pass the output through) or json (hksd's result)\n"
    "  -h, --help             this help\n"
    "\n"
    "Examples:\n"
    "  hks-func run script.py\n"
    "  echo 'console.log(6 * 7)' | hks-func run --runtime node -\n"
    "  hks-func run --timeout 2s --input data.csv analyze.py --verbose\n";

typedef struct run_opts {
    const char *runtime, *input, *file;
    json_t *env;
    long long wall_ms, memory_mb;
    cli_output out;
    int argc;
    char **argv;
} run_opts;

/* 0, CLI_EXIT_USAGE after a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, run_opts *o)
{
    static const struct option opts[] = {{"runtime", required_argument, NULL, 'r'},
                                         {"env", required_argument, NULL, 'e'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"input", required_argument, NULL, 'i'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    unsigned long long v;
    for (int c; (c = cli_getopt("run", argc, argv, "+:r:e:t:m:i:o:h", opts)) != -1;) {
        switch (c) {
        case 'r':
            o->runtime = optarg;
            break;
        case 'e':
            if (cli_opt_env("run", optarg, o->env, false))
                return CLI_EXIT_USAGE;
            break;
        case 't':
            if (cli_opt_duration_ms("run", "--timeout", optarg, &v))
                return CLI_EXIT_USAGE;
            o->wall_ms = (long long)v;
            break;
        case 'm':
            if (hks_parse_uint(optarg, 1, 1024 * 1024, &v) == 0)
                o->memory_mb = (long long)v;
            else if (cli_quantity_mib(optarg, &o->memory_mb) < 0 || o->memory_mb <= 0)
                return cli_usage("run", "--memory '%s' is not a size in MiB (256, 256Mi, 1Gi)",
                                 optarg);
            break;
        case 'i':
            o->input = optarg;
            break;
        case 'o':
            if (cli_set_output("run", optarg, &o->out))
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            cli_print_help(run_help);
            return -1;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage("run", "give the program: a FILE, or - to read it from stdin");
    o->file = argv[optind++];
    o->argc = argc - optind;
    o->argv = argv + optind;
    if (o->out == CLI_OUT_NAME)
        return cli_usage("run", "-o name does not apply to run (json or table)");
    bool from_stdin = strcmp(o->file, "-") == 0;
    if (from_stdin && o->input && strcmp(o->input, "-") == 0)
        return cli_usage("run", "the program comes from stdin, so --input cannot be - too");
    if (!o->runtime) {
        const char *dot = from_stdin ? NULL : strrchr(o->file, '.');
        if (dot && strcmp(dot, ".py") == 0)
            o->runtime = "python";
        else if (dot &&
                 (strcmp(dot, ".js") == 0 || strcmp(dot, ".mjs") == 0 || strcmp(dot, ".cjs") == 0))
            o->runtime = "node";
        else
            return cli_usage("run",
                             "cannot tell the runtime of '%s': give --runtime python or "
                             "--runtime node",
                             o->file);
    }
    if (strcmp(o->runtime, "nodejs") == 0)
        o->runtime = "node";
    if (strcmp(o->runtime, "python") != 0 && strcmp(o->runtime, "node") != 0)
        return cli_usage("run", "unknown runtime '%s' (python or node)", o->runtime);
    return 0;
}

/* The file's name in the sandbox: FILE's base name when it is a plain one, else main.EXT. */
static void entry_name(const run_opts *o, char *out, size_t size)
{
    const char *base = strrchr(o->file, '/') ? strrchr(o->file, '/') + 1 : o->file;
    bool plain = strcmp(o->file, "-") != 0 && base[0] && base[0] != '.' && strlen(base) < 200 &&
                 base[strspn(base, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-")] == '\0';
    if (plain)
        snprintf(out, size, "%s", base);
    else
        snprintf(out, size, "main.%s", strcmp(o->runtime, "python") == 0 ? "py" : "js");
}

static int build_request(const run_opts *o, json_t *req, cli_error *err)
{
    cleanup_buf cli_buf code = {0};
    if (cli_read_file(o->file, MAX_CODE_BYTES, &code, err) < 0)
        return cli_wrap(err, "the program");
    char name[256];
    entry_name(o, name, sizeof(name));
    bool text = cli_utf8_valid(code.data, code.len);
    cleanup_free char *b64 = text ? NULL : cli_base64_encode(code.data, code.len);
    json_t *file =
        json_pack("{s:s,s:s%,s:s}", "name", name, "content", text ? code.data : b64,
                  text ? code.len : (b64 ? strlen(b64) : 0), "encoding", text ? "utf8" : "base64");
    if (!file)
        return cli_fail(err, ENOMEM, "request");
    json_object_set_new(req, "runtime", json_string(o->runtime));
    json_object_set_new(req, "files", json_pack("[o]", file));
    json_object_set_new(req, "entry", json_string(name));
    if (o->argc > 0) {
        json_t *args = json_array();
        for (int i = 0; i < o->argc; i++) {
            if (!cli_utf8_valid(o->argv[i], strlen(o->argv[i])))
                return cli_fail_usage(err, "argument %d is not UTF-8", i + 1);
            json_array_append_new(args, json_string(o->argv[i]));
        }
        json_object_set_new(req, "args", args);
    }
    if (json_object_size(o->env))
        json_object_set(req, "env", o->env);
    if (o->input) {
        cleanup_buf cli_buf in = {0};
        if (cli_read_file(o->input, MAX_INPUT_BYTES, &in, err) < 0)
            return cli_wrap(err, "--input");
        if (!cli_utf8_valid(in.data, in.len))
            return cli_fail_usage(err, "--input %s is not UTF-8 text (hksd's stdin is text)",
                                  o->input);
        json_object_set_new(req, "stdin", json_stringn(in.data, in.len));
    }
    json_t *limits = json_object();
    if (o->wall_ms >= 0)
        json_object_set_new(limits, "wall_ms", json_integer(o->wall_ms));
    if (o->memory_mb >= 0)
        json_object_set_new(limits, "memory_mb", json_integer(o->memory_mb));
    json_object_set_new(req, "limits", limits);
    return 0;
}

static void pass_through(const json_t *result, const char *key, FILE *f)
{
    const json_t *v = json_object_get(result, key);
    if (json_is_string(v) && json_string_length(v))
        (void)fwrite(json_string_value(v), 1, json_string_length(v), f);
    fflush(f);
}

/* The exit status the result means, with a line on stderr when hks-func ended the run. */
static int result_status(const json_t *r)
{
    const char *status = json_string_value(json_object_get(r, "status"));
    const json_t *code = json_object_get(r, "exit_code");
    const json_t *sig = json_object_get(r, "signal");
    const char *message = json_string_value(json_object_get(r, "message"));
    const char *reason = json_string_value(json_object_get(r, "timeout_reason"));
    cli_error err = {0};
    if (json_is_true(json_object_get(r, "stdout_truncated")) ||
        json_is_true(json_object_get(r, "stderr_truncated")))
        cli_warn("the output was cut at the execution's output limit");
    if (!status)
        return CLI_EXIT_FAILED;
    if (strcmp(status, "ok") == 0)
        return 0;
    if (strcmp(status, "error") == 0 || strcmp(status, "killed") == 0) {
        if (json_is_integer(sig) && json_integer_value(sig) > 0)
            return 128 + (int)json_integer_value(sig);
        return json_is_integer(code) ? (int)(json_integer_value(code) & 0xff) : CLI_EXIT_FAILED;
    }
    if (strcmp(status, "timeout") == 0) {
        cli_fail(&err, 0, "the program ran past its %s time limit", reason ? reason : "time");
        cli_hint(&err, "raise it with --timeout (up to the server's maximum)");
        cli_report(&err);
        return EXIT_TIMEOUT;
    }
    if (strcmp(status, "oom") == 0) {
        cli_fail(&err, 0, "the program ran out of memory");
        cli_hint(&err, "raise the limit with --memory MB");
        cli_report(&err);
        return EXIT_KILLED;
    }
    if (strcmp(status, "output_limit") == 0) {
        cli_fail(&err, 0, "the program wrote more than the output limit and was killed");
        cli_hint(&err, "write less to stdout and stderr");
        cli_report(&err);
        return EXIT_KILLED;
    }
    cli_fail(&err, 0, "the execution failed (%s)%s%s", status, message ? ": " : "",
             message ? message : "");
    cli_hint(&err, "see hksd's log");
    return cli_report(&err);
}

int cmd_run(int argc, char **argv, const cli_global *g)
{
    run_opts o = {.wall_ms = -1, .memory_mb = -1, .out = g->output, .env = json_object()};
    if (!o.env)
        return CLI_EXIT_FAILED;
    int rc = parse_args(argc, argv, &o);
    if (rc || !o.file || !o.runtime) {
        json_decref(o.env);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h))) {
        json_decref(o.env);
        return rc;
    }
    cli_error err = {0};
    json_t *req = json_object();
    json_t *result = NULL;
    if (!req || build_request(&o, req, &err) < 0) {
        rc = cli_report(&err);
    } else if (cli_http_json(h, "POST", "/internal/v1/operations/execute", req, 0, &result, NULL,
                             &err) < 0) {
        cli_wrap(&err, "run %s", o.file);
        rc = cli_report(&err);
    } else {
        if (o.out == CLI_OUT_JSON) {
            cli_print_json(result);
            fflush(stdout);
        } else {
            pass_through(result, "stdout", stdout);
            pass_through(result, "stderr", stderr);
        }
        rc = result_status(result);
    }
    json_decref(req);
    json_decref(result);
    json_decref(o.env);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}
