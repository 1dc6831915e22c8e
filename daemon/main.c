/* hksd: the HKS Functions daemon. */
#include "../api/api.h"
#include "commands.h"

#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <string.h>
#include <time.h>

extern char **environ;

static const char usage[] =
    "Usage: hksd [--config FILE] [--listen HOST:PORT] [--state-dir DIR] [--print-config]\n"
    "       hksd token --sub SUB --project PROJECT [--scope \"SCOPES\"] [--ttl DURATION]\n"
    "       hksd --routes\n"
    "       hksd policy show|check|diff ...   (hksd policy --help)\n"
    "\n"
    "The HKS Functions daemon: runs code for agents in hardened sandboxes, over the internal\n"
    "operations API (docs/api.md, api/openapi.yaml).\n"
    "\n"
    "  --config FILE       JSON configuration (see docs/operations.md); HKSD_* environment\n"
    "                      variables override it, and these flags override both\n"
    "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8080)\n"
    "  --state-dir DIR     state: keys, audit log, sandbox work directories (default ./var/hksd)\n"
    "  --print-config      print the effective configuration as JSON and exit\n"
    "  --routes            print the routes this build serves and exit\n"
    "\n"
    "  token               print a development token signed with the local key\n"
    "    --sub SUB           who (the agent)\n"
    "    --project PROJECT   the tenant\n"
    "    --scope SCOPES      space-separated (default \"functions:execute functions:read\")\n"
    "    --ttl DURATION      lifetime (default 5m; at most the configured maximum)\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop accepting, let running executions finish, then exit.\n";

static void log_line(const char *level, const char *msg, json_t *fields)
{
    json_t *line = fields ? fields : json_object();
    json_object_set_new(line, "level", json_string(level));
    json_object_set_new(line, "msg", json_string(msg));
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    if (text) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
    json_decref(line);
}

__attribute__((noreturn)) static void die(const char *what, const char *why)
{
    log_line("error", what, json_pack("{s:s}", "error", why));
    exit(1);
}

/* The checkout or installation: where policies/ and runtimes/ are. */
static void find_root(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *dir = dirname(exe);
    const char *candidates[] = {"%s/..", "%s/../share/hks"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(candidates); i++) {
        char path[PATH_MAX + 64];
        snprintf(out, size, candidates[i], dir);
        snprintf(path, sizeof(path), "%s/policies/limits.json", out);
        if (access(path, R_OK) == 0) {
            char resolved[PATH_MAX];
            if (realpath(out, resolved))
                snprintf(out, size, "%s", resolved);
            return;
        }
    }
    snprintf(out, size, "/usr/share/hks");
}

static void configure(hksd_config *cfg, int argc, char **argv, bool *print_config)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'},
        {"print-config", no_argument, NULL, 'p'},
        {"routes", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char root[PATH_MAX];
    find_root(root, sizeof(root));
    hksd_config_defaults(cfg, root);
    const char *config_file = NULL, *listen = NULL, *state_dir = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 's':
            state_dir = optarg;
            break;
        case 'p':
            *print_config = true;
            break;
        case 'r':
            for (const char *const *r = api_routes(); *r; r++)
                printf("%s\n", *r);
            exit(0);
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs("Try 'hksd --help'.\n", stderr);
            exit(2);
        }
    }
    hks_error err = {0};
    if (config_file && hksd_config_load_file(cfg, config_file, &err) < 0)
        die("configuration", err.msg);
    if (hksd_config_apply_env(cfg, environ, &err) < 0)
        die("configuration", err.msg);
    if (listen && hksd_parse_listen(listen, cfg->listen_host, sizeof(cfg->listen_host),
                                    &cfg->listen_port, &err) < 0)
        die("--listen", err.msg);
    if (state_dir) {
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", state_dir);
        snprintf(cfg->keys_dir, sizeof(cfg->keys_dir), "%s/keys", state_dir);
    }
}

static int token_command(const hksd_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"sub", required_argument, NULL, 's'},
        {"project", required_argument, NULL, 'p'},
        {"scope", required_argument, NULL, 'c'},
        {"ttl", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *sub = NULL, *project = NULL, *scope = "functions:execute functions:read";
    unsigned long long ttl_ms = 5 * 60 * 1000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sub = optarg;
            break;
        case 'p':
            project = optarg;
            break;
        case 'c':
            scope = optarg;
            break;
        case 't':
            if (hks_parse_duration_ms(optarg, &ttl_ms) < 0 || ttl_ms < 1000) {
                fprintf(stderr, "hksd token: --ttl '%s' is not a duration\n", optarg);
                return 2;
            }
            break;
        default:
            fputs("usage: hksd token --sub SUB --project PROJECT [--scope S] [--ttl D]\n", stderr);
            return 2;
        }
    }
    if (!sub || !project) {
        fputs("hksd token: --sub and --project are required\n", stderr);
        return 2;
    }
    hks_error err = {0};
    hks_jwt_keys *keys = NULL;
    if (hks_jwt_keys_ensure_local(cfg->keys_dir, &err) < 0 ||
        hks_jwt_keys_load(cfg->keys_dir, &keys, &err) < 0) {
        fprintf(stderr, "hksd token: %s\n", err.msg);
        return 1;
    }
    hks_jwt_rules rules = {.issuer = cfg->jwt_issuer,
                           .audience = cfg->jwt_audience,
                           .leeway_s = cfg->jwt_leeway_s,
                           .max_lifetime_s = cfg->jwt_max_lifetime_s};
    char *token = NULL;
    int rc = hks_jwt_mint_hs256(keys, &rules, sub, project, scope, (long)(ttl_ms / 1000),
                                time(NULL), &token, &err);
    hks_jwt_keys_free(keys);
    if (rc < 0) {
        fprintf(stderr, "hksd token: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

/* The verification keys of keys_dir by key id and pinned algorithm (for hksd policy show). */
static json_t *describe_keys(const char *keys_dir, hks_error *err)
{
    hks_jwt_keys *keys = NULL;
    if (access(keys_dir, F_OK) != 0 && errno == ENOENT)
        return json_array(); /* none yet: hksd creates the local key on first start */
    if (hks_jwt_keys_load(keys_dir, &keys, err) < 0)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < hks_jwt_keys_count(keys); i++) {
        const char *kid = NULL, *alg = NULL;
        hks_jwt_key_describe(keys, i, &kid, &alg);
        json_array_append_new(list, json_pack("{s:s,s:s}", "kid", kid, "alg", alg));
    }
    hks_jwt_keys_free(keys);
    return list;
}

/* What the policy tools need to know of the API, handed over so that daemon/ keeps not
 * depending on api/. */
static int policy_command(hksd_config *cfg, int argc, char **argv)
{
    hksd_policy_api api = {.algorithms = hks_jwt_algorithms(), .describe_keys = describe_keys};
    api.routes = api_route_scopes(&api.n_routes);
    return hksd_cmd_policy(cfg, &api, argc, argv);
}

int main(int argc, char **argv)
{
    hksd_config cfg;
    bool print_config = false;
    const char *sub = argc > 1 ? argv[1] : "";
    /* how hksd restarts its sandbox spawner when it died (runtimes/pool.c): not for people */
    if (strcmp(sub, "spawner") == 0)
        return sbx_spawner_cli(argc - 1, argv + 1);
    if (strcmp(sub, "token") == 0 || strcmp(sub, "build") == 0 || strcmp(sub, "push") == 0 ||
        strcmp(sub, "audit") == 0 || strcmp(sub, "policy") == 0) {
        char root[PATH_MAX];
        find_root(root, sizeof(root));
        hksd_config_defaults(&cfg, root);
        hks_error err = {0};
        if (hksd_config_apply_env(&cfg, environ, &err) < 0)
            die("configuration", err.msg);
        if (strcmp(sub, "build") == 0)
            return hksd_cmd_build(&cfg, argc - 1, argv + 1);
        if (strcmp(sub, "push") == 0)
            return hksd_cmd_push(&cfg, argc - 1, argv + 1);
        if (strcmp(sub, "audit") == 0)
            return hksd_cmd_audit(&cfg, argc - 1, argv + 1);
        if (strcmp(sub, "policy") == 0)
            return policy_command(&cfg, argc - 1, argv + 1);
        return token_command(&cfg, argc - 1, argv + 1);
    }
    configure(&cfg, argc, argv, &print_config);
    if (print_config) {
        json_t *j = hksd_config_to_json(&cfg);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(j);
        return 0;
    }

    /* Signals are taken by sigwait below; every thread started from here inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    hks_error err = {0};
    hks_jwt_keys *keys = NULL;
    if (hks_jwt_keys_ensure_local(cfg.keys_dir, &err) < 0 ||
        hks_jwt_keys_load(cfg.keys_dir, &keys, &err) < 0)
        die("signing keys", err.msg);
    /* before any thread: the spawner is forked and the runtimes probed here */
    hksd *d = NULL;
    if (hksd_start(&cfg, &d, &err) < 0)
        die("start", err.msg);
    api_server *server = NULL;
    if (api_server_start(d, keys, &server, &err) < 0) {
        hksd_stop(d);
        hks_jwt_keys_free(keys);
        die("listen", err.msg);
    }
    log_line("info", "ready",
             json_pack("{s:s,s:i,s:s,s:i}", "listen", cfg.listen_host, "port",
                       api_server_port(server), "state_dir", cfg.state_dir, "pid", (int)getpid()));

    for (;;) {
        int sig = 0;
        if (sigwait(&stop, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            hks_jwt_keys *fresh = NULL;
            bool keys_ok = hks_jwt_keys_load(cfg.keys_dir, &fresh, &err) == 0;
            if (keys_ok)
                api_server_replace_keys(server, fresh);
            else
                log_line("error", "SIGHUP: keys kept", json_pack("{s:s}", "error", err.msg));
            bool limits_ok = hksd_reload_policy(d, &err) == 0;
            if (!limits_ok)
                log_line("error", "SIGHUP: limits kept", json_pack("{s:s}", "error", err.msg));
            log_line(
                "info", "SIGHUP",
                json_pack("{s:b,s:b}", "keys_reloaded", keys_ok, "limits_reloaded", limits_ok));
            continue;
        }
        log_line("info", "stopping", json_pack("{s:s}", "signal", strsignal(sig)));
        break;
    }
    api_server_stop(server); /* and frees the keys */
    hksd_stop(d);
    log_line("info", "stopped", NULL);
    return 0;
}
