/* hks-func deploy. */
#include "cli/commands.h"
#include "cli/pack.h"
#include "cli/project.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* hksd's http.max_body_bytes: the whole request, base64 archive included */
#define MAX_REQUEST_BYTES (32ULL * 1024 * 1024)

static const char deploy_help[] =
    "Usage: hks-func deploy [--path DIR] [--name N] [--ttl DURATION] [--env K=V]...\n"
    "                       [--min-scale N] [--max-scale N] [--concurrency N] [--memory MB]\n"
    "                       [--cpus N] [--timeout DURATION] [--runtime node|python]\n"
    "\n"
    "Packs the function project DIR (default: the current directory) as a tar.gz, without\n"
    ".git, node_modules, __pycache__, .venv and .hks, and deploys it (deploy-function\n"
    "\"archive\"). func.yaml gives the name, the runtime, run.envs and deploy.options (scale.min,\n"
    "scale.max, resources.limits.concurrency, .memory, .cpu); options override it. Without\n"
    "func.yaml the name is the directory's and the runtime is guessed from index.js or\n"
    "function/func.py.\n"
    "\n"
    "Prints the function's URL. Remembers the function in DIR/.hks/function.json, so that\n"
    "invoke, describe, logs and delete find it by its name or with no argument in DIR. A new\n"
    "deployment gets a new id and URL: the one deployed before from DIR under the same name is\n"
    "then deleted.\n"
    "\n"
    "Options:\n"
    "  -p, --path DIR        the project directory (default .)\n"
    "  -n, --name NAME       the function's name (default: func.yaml's, else DIR's)\n"
    "      --runtime NAME    node or python (default: func.yaml's, else guessed)\n"
    "      --ttl DURATION    lifetime, e.g. 30m, 2h (default: the server's, 1h as shipped)\n"
    "  -e, --env K=V         environment variable (repeatable; over run.envs; K- removes K)\n"
    "      --min-scale N     instances kept warm (default 0)\n"
    "      --max-scale N     most instances (default 2)\n"
    "      --concurrency N   requests one instance serves at once (default 10)\n"
    "      --memory MB       memory of an instance in MiB (or 256Mi, 1Gi)\n"
    "      --cpus N          CPU cores of an instance (e.g. 0.5)\n"
    "      --timeout DURATION  per-invocation timeout, e.g. 5s (limits.wall_ms)\n"
    "  -o, --output FMT      table (default: the URL), json (the record) or name\n"
    "  -h, --help            this help\n"
    "\n"
    "Examples:\n"
    "  hks-func deploy\n"
    "  hks-func deploy --path ./my-function --ttl 2h --env GREETING=hi --max-scale 4\n"
    "  URL=$(hks-func deploy --timeout 30s)\n";

typedef struct deploy_opts {
    const char *path, *name, *runtime;
    json_t *env_set, *env_removed;
    long long ttl_s, min_scale, max_scale, concurrency, memory_mb, wall_ms;
    double cpus;
    cli_output out;
} deploy_opts;

static int parse_memory(const char *value, long long *out)
{
    unsigned long long mb;
    if (hks_parse_uint(value, 1, 1024ULL * 1024, &mb) == 0) {
        *out = (long long)mb;
        return 0;
    }
    return cli_quantity_mib(value, out) < 0 || *out <= 0 ? -1 : 0;
}

/* 0, CLI_EXIT_USAGE after a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, deploy_opts *o)
{
    enum { O_TTL = 256, O_MIN, O_MAX, O_CONC, O_MEM, O_TIMEOUT, O_CPUS, O_RUNTIME };
    static const struct option opts[] = {{"path", required_argument, NULL, 'p'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"env", required_argument, NULL, 'e'},
                                         {"ttl", required_argument, NULL, O_TTL},
                                         {"min-scale", required_argument, NULL, O_MIN},
                                         {"max-scale", required_argument, NULL, O_MAX},
                                         {"concurrency", required_argument, NULL, O_CONC},
                                         {"memory", required_argument, NULL, O_MEM},
                                         {"cpus", required_argument, NULL, O_CPUS},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         {"runtime", required_argument, NULL, O_RUNTIME},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    unsigned long long v;
    for (int c; (c = cli_getopt("deploy", argc, argv, ":p:n:e:o:h", opts)) != -1;) {
        switch (c) {
        case 'p':
            o->path = optarg;
            break;
        case 'n':
            o->name = optarg;
            if (!cli_valid_name(optarg))
                return cli_usage("deploy",
                                 "--name '%s' is not a function name (1 to 63 of a-z, 0-9 and "
                                 "-, a letter first)",
                                 optarg);
            break;
        case O_RUNTIME:
            o->runtime = optarg;
            break;
        case 'e': {
            size_t len = strlen(optarg);
            if (!strchr(optarg, '=') && len > 1 && optarg[len - 1] == '-') {
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(len - 1), optarg);
                json_object_del(o->env_set, name);
                json_object_set_new(o->env_removed, name, json_true());
            } else if (cli_opt_env("deploy", optarg, o->env_set, true)) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case O_TTL:
            if (cli_opt_duration_ms("deploy", "--ttl", optarg, &v))
                return CLI_EXIT_USAGE;
            if (v < 1000)
                return cli_usage("deploy", "--ttl must be at least 1s");
            o->ttl_s = (long long)(v / 1000);
            break;
        case O_TIMEOUT:
            if (cli_opt_duration_ms("deploy", "--timeout", optarg, &v))
                return CLI_EXIT_USAGE;
            o->wall_ms = (long long)v;
            break;
        case O_MIN:
        case O_MAX:
        case O_CONC: {
            const char *flag = c == O_MIN   ? "--min-scale"
                               : c == O_MAX ? "--max-scale"
                                            : "--concurrency";
            if (cli_opt_uint("deploy", flag, optarg, c == O_MIN ? 0 : 1, 1000000, &v))
                return CLI_EXIT_USAGE;
            *(c == O_MIN   ? &o->min_scale
              : c == O_MAX ? &o->max_scale
                           : &o->concurrency) = (long long)v;
            break;
        }
        case O_MEM:
            if (parse_memory(optarg, &o->memory_mb) < 0)
                return cli_usage("deploy", "--memory '%s' is not a size in MiB (256, 256Mi, 1Gi)",
                                 optarg);
            break;
        case O_CPUS:
            if (cli_quantity_cpus(optarg, &o->cpus) < 0)
                return cli_usage("deploy", "--cpus '%s' is not a number of cores (0.5, 1, 500m)",
                                 optarg);
            break;
        case 'o':
            if (cli_set_output("deploy", optarg, &o->out))
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            cli_print_help(deploy_help);
            return -1;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage("deploy", "unexpected argument '%s' (the directory is given with --path)",
                         argv[optind]);
    return 0;
}

static bool exists(const char *dir, const char *file)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return stat(path, &st) == 0;
}

/* The request body, from func.yaml and the options. */
static int build_request(const deploy_opts *o, const cli_func_yaml *fy, const char *dir,
                         json_t *req, cli_error *err)
{
    char abs[PATH_MAX];
    const char *name = o->name ? o->name : fy->name;
    if (!name) {
        if (!realpath(dir, abs))
            return cli_fail(err, errno, "%s", dir);
        name = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
    }
    if (!cli_valid_name(name)) {
        cli_fail(err, 0, "'%s' (%s) is not a function name", name,
                 fy->name ? "func.yaml's name" : "the directory's name");
        cli_hint(err, "give a name of a-z, 0-9 and - (a letter first) with --name or in func.yaml");
        err->exit_code = CLI_EXIT_USAGE;
        return -1;
    }
    const char *runtime = o->runtime ? o->runtime : fy->runtime;
    if (!runtime && exists(dir, "function/func.py"))
        runtime = "python";
    else if (!runtime && (exists(dir, "index.js") || exists(dir, "package.json")))
        runtime = "node";
    if (!runtime) {
        cli_fail(err, 0,
                 "cannot tell the runtime of %s: no func.yaml, index.js or "
                 "function/func.py",
                 dir);
        cli_hint(err, "create a project with hks-func create -l node|python NAME, or pass "
                      "--runtime");
        return -1;
    }
    if (strcmp(runtime, "nodejs") == 0)
        runtime = "node";
    if (strcmp(runtime, "node") != 0 && strcmp(runtime, "python") != 0) {
        cli_fail(err, 0, "runtime '%s' is not one hksd runs (node, python)", runtime);
        cli_hint(err, "set runtime: node or runtime: python in func.yaml");
        return -1;
    }
    json_t *env = json_object();
    json_object_set_new(req, "env", env);
    size_t i;
    const json_t *entry;
    json_array_foreach(fy->envs, i, entry)
    {
        const char *k = json_string_value(json_object_get(entry, "name"));
        if (json_object_get(o->env_set, k) || json_object_get(o->env_removed, k))
            continue;
        cleanup_free char *value =
            cli_env_resolve(k, json_string_value(json_object_get(entry, "value")), err);
        if (!value)
            return cli_wrap(err, "func.yaml");
        json_object_set_new(env, k, json_string(value));
    }
    json_object_update(env, o->env_set);
    json_object_set_new(req, "name", json_string(name));
    json_object_set_new(req, "runtime", json_string(runtime));
    long long min = o->min_scale >= 0 ? o->min_scale : fy->min_scale;
    long long max = o->max_scale >= 0 ? o->max_scale : fy->max_scale;
    long long conc = o->concurrency >= 0 ? o->concurrency : fy->concurrency;
    long long mem = o->memory_mb >= 0 ? o->memory_mb : fy->memory_mb;
    double cpus = o->cpus >= 0 ? o->cpus : fy->cpus;
    if (o->ttl_s >= 0)
        json_object_set_new(req, "ttl_seconds", json_integer(o->ttl_s));
    if (min >= 0)
        json_object_set_new(req, "min_scale", json_integer(min));
    if (max >= 0)
        json_object_set_new(req, "max_scale", json_integer(max));
    if (conc >= 0)
        json_object_set_new(req, "concurrency", json_integer(conc));
    json_t *limits = json_object();
    if (mem >= 0)
        json_object_set_new(limits, "memory_mb", json_integer(mem));
    if (cpus >= 0)
        json_object_set_new(limits, "cpus", json_real(cpus));
    if (o->wall_ms >= 0)
        json_object_set_new(limits, "wall_ms", json_integer(o->wall_ms));
    if (json_object_size(limits))
        json_object_set_new(req, "limits", limits);
    else
        json_decref(limits);
    return 0;
}

static int attach_archive(const char *dir, json_t *req, cli_error *err)
{
    cleanup_buf cli_buf tgz = {0};
    cli_pack_stats st;
    if (cli_pack_dir(dir, &tgz, &st, err) < 0)
        return cli_wrap(err, "pack %s", dir);
    if ((unsigned long long)tgz.len / 3 * 4 + 65536 > MAX_REQUEST_BYTES) {
        char size[32];
        cli_format_bytes(tgz.len, size, sizeof(size));
        cli_fail(err, 0,
                 "%s packs to %s, over what hksd accepts in one request (32 MiB as "
                 "base64)",
                 dir, size);
        cli_hint(err, "leave out data and build output (they are packed unless in .git, "
                      "node_modules, __pycache__, .venv)");
        return -1;
    }
    if (cli_tty.tty_err) {
        char raw[32], packed[32];
        cli_format_bytes(st.bytes, raw, sizeof(raw));
        cli_format_bytes(tgz.len, packed, sizeof(packed));
        char abs[PATH_MAX];
        const char *shown = realpath(dir, abs) ? abs : dir;
        fprintf(stderr, "Packed %s: %zu files, %s (%s as tar.gz)\n", shown, st.files, raw, packed);
    }
    cleanup_free char *b64 = cli_base64_encode(tgz.data, tgz.len);
    if (!b64 || json_object_set_new(req, "archive", json_string(b64)) < 0)
        return cli_fail(err, ENOMEM, "pack %s", dir);
    return 0;
}

/* Delete what this directory deployed before under the same name (a new deployment has a new
 * id and URL; the old one would otherwise serve until its TTL). */
static void replace_previous(cli_http *h, const cli_local_fn *prev, const char *new_id)
{
    if (strcmp(prev->id, new_id) == 0)
        return;
    cleanup_json json_t *body = json_pack("{s:s}", "id", prev->id);
    cli_error err = {0};
    long status = 0;
    if (cli_http_json(h, "POST", "/internal/v1/operations/delete-function", body, 0, NULL, &status,
                      &err) == 0) {
        if (cli_tty.tty_err)
            fprintf(stderr, "Deleted the previous deployment %s\n", prev->id);
    } else if (status != 404) {
        cli_warn("could not delete the previous deployment %s: %s", prev->id, err.e.msg);
    }
}

static int deploy(deploy_opts *o)
{
    cli_settings s;
    cli_http *h = NULL;
    int rc = cli_connect(&s, &h);
    if (rc)
        return rc;
    cli_error err = {0};
    cli_func_yaml fy = {0};
    cli_local_fn prev = {0};
    bool have_prev = false;
    json_t *req = json_object();
    json_t *record = NULL;
    const char *dir = o->path ? o->path : ".";
    struct stat st;
    int stat_rc = stat(dir, &st);
    if (stat_rc < 0 || !S_ISDIR(st.st_mode)) {
        cli_fail(&err, stat_rc < 0 ? errno : ENOTDIR, "project directory %s", dir);
        cli_hint(&err, "give a function project with --path (hks-func create makes one)");
        rc = cli_report(&err);
        goto out;
    }
    if (!req || cli_func_yaml_load(dir, &fy, &err) < 0 ||
        build_request(o, &fy, dir, req, &err) < 0 || attach_archive(dir, req, &err) < 0) {
        rc = cli_report(&err);
        goto out;
    }
    const char *name = json_string_value(json_object_get(req, "name"));
    const char *runtime = json_string_value(json_object_get(req, "runtime"));
    cli_warn_project(&s);
    if (cli_local_load(dir, &prev, &have_prev, &err) < 0) {
        cli_warn("%s; it is written again", err.e.msg);
        have_prev = false;
    }
    if (cli_tty.tty_err)
        fprintf(stderr, "Deploying %s (%s) to %s%s%s\n", name, runtime, s.server,
                s.token_project ? ", project " : "", s.token_project ? s.token_project : "");
    unsigned long long t0 = hks_now_us();
    if (cli_http_json(h, "POST", "/internal/v1/operations/deploy-function", req, CLI_HTTP_PROGRESS,
                      &record, NULL, &err) < 0 ||
        !json_is_object(record)) {
        if (!err.e.msg[0])
            cli_fail(&err, 0, "hksd's answer has no function record");
        cli_wrap(&err, "deploy %s", name);
        rc = cli_report(&err);
        goto out;
    }
    const char *id = json_string_value(json_object_get(record, "id"));
    const char *url = json_string_value(json_object_get(record, "url"));
    if (cli_local_save(dir, record, s.server, &err) < 0)
        cli_warn("deployed, but could not remember it: %s", err.e.msg);
    if (have_prev && prev.server && strcmp(prev.server, s.server) == 0 &&
        strcmp(prev.name, name) == 0 && id)
        replace_previous(h, &prev, id);
    if (cli_tty.tty_err) {
        time_t exp = 0;
        char rel[64];
        cli_json_time(json_object_get(record, "expires_at"), &exp);
        cli_format_relative(exp, time(NULL), rel, sizeof(rel));
        cli_fputs_color(stderr, CLI_GREEN, "Deployed");
        fprintf(stderr, " %s (%s) in %.1f s; it expires %s\n", name, id ? id : "?",
                (double)(hks_now_us() - t0) / 1e6, rel);
    }
    if (o->out == CLI_OUT_JSON)
        cli_print_json(record);
    else if (o->out == CLI_OUT_NAME)
        printf("%s\n", name);
    else
        printf("%s\n", url ? url : "");
out:
    json_decref(req);
    json_decref(record);
    cli_func_yaml_free(&fy);
    if (have_prev)
        cli_local_free(&prev);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}

int cmd_deploy(int argc, char **argv, const cli_global *g)
{
    deploy_opts o = {.ttl_s = -1,
                     .min_scale = -1,
                     .max_scale = -1,
                     .concurrency = -1,
                     .memory_mb = -1,
                     .wall_ms = -1,
                     .cpus = -1,
                     .out = g->output,
                     .env_set = json_object(),
                     .env_removed = json_object()};
    int rc = o.env_set && o.env_removed ? parse_args(argc, argv, &o) : CLI_EXIT_FAILED;
    if (rc == 0)
        rc = deploy(&o);
    else if (rc < 0)
        rc = CLI_EXIT_OK;
    json_decref(o.env_set);
    json_decref(o.env_removed);
    return rc;
}
