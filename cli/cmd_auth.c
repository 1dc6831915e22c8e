/* hks-func login, hks-func project. */
#include "cli/commands.h"

#include <limits.h>
#include <string.h>
#include <termios.h>
#include <time.h>

#define DEFAULT_SERVER "http://127.0.0.1:8080"

static const char login_help[] =
    "Usage: hks-func login [--server URL] [--token TOKEN | --token-file FILE] [--no-verify]\n"
    "\n"
    "Checks a server and a token (GET /internal/v1/runtimes), then stores them in\n"
    "~/.config/hks/config.json ($XDG_CONFIG_HOME/hks/config.json), mode 0600 in a 0700\n"
    "directory. Later commands use them; HKS_SERVER, HKS_TOKEN and HKS_PROJECT override them.\n"
    "When no project is selected yet, the token's project claim is selected.\n"
    "\n"
    "Options:\n"
    "  --server URL        hksd's address (default: $HKS_SERVER, the one configured, else\n"
    "                      " DEFAULT_SERVER ")\n"
    "  --token TOKEN       a token (`hksd token ...`); default $HKS_TOKEN, else one line read\n"
    "                      from stdin, or asked for without echo on a terminal\n"
    "  --token-file FILE   store the path of a file holding the token, read again by every\n"
    "                      command (for short-lived tokens refreshed by another program);\n"
    "                      \"-\" reads the token from stdin once\n"
    "  --no-verify         store them without asking the server\n"
    "  -o, --output FMT    table (default), json or name (the token's project)\n"
    "  -h, --help          this help\n"
    "\n"
    "Examples:\n"
    "  hks-func login --server http://127.0.0.1:8080 --token \"$HKS_TOKEN\"\n"
    "  hksd token --sub me --project p1 --scope \"functions:deploy functions:invoke\" \\\n"
    "      | hks-func login --server http://hks.internal:8080\n"
    "  hks-func login --server http://hks.internal:8080 --token-file ~/.hks/token\n";

static const char project_help[] =
    "Usage: hks-func project select NAME\n"
    "       hks-func project [show]\n"
    "\n"
    "Selects the project hks-func works in and stores it in the configuration (HKS_PROJECT\n"
    "overrides it). The project is informational: hksd serves the project of the token (its\n"
    "\"project\" claim), so hks-func warns when the two differ. `show` prints both.\n"
    "\n"
    "Options:\n"
    "  -o, --output FMT    table (default), json or name\n"
    "  -h, --help          this help\n"
    "\n"
    "Examples:\n"
    "  hks-func project select my-serverless-project\n"
    "  hks-func project show -o json\n";

/* One line from the terminal without echo, or from stdin when it is not a terminal. */
static char *read_secret(const char *prompt, cli_error *err)
{
    cleanup_buf cli_buf line = {0};
    if (!cli_tty.tty_in) {
        if (cli_read_file("-", 64 * 1024, &line, err) < 0)
            return NULL;
    } else {
        cleanup_file FILE *tty = fopen("/dev/tty", "r+e");
        if (!tty) {
            cli_fail(err, errno, "open the terminal to ask for the token");
            return NULL;
        }
        fputs(prompt, tty);
        fflush(tty);
        struct termios old, quiet;
        bool restore = tcgetattr(fileno(tty), &old) == 0;
        if (restore) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            (void)tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        }
        char buf[16384];
        bool got = fgets(buf, sizeof(buf), tty) != NULL;
        if (restore)
            (void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputc('\n', tty);
        if (!got || cli_buf_append(&line, buf, strlen(buf)) < 0) {
            cli_fail(err, 0, "no token given");
            return NULL;
        }
    }
    char *start = line.data;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    size_t len = strcspn(start, "\r\n");
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (len == 0) {
        cli_fail_usage(err, "no token given");
        cli_hint(err, "pass --token TOKEN, --token-file FILE, or set HKS_TOKEN");
        return NULL;
    }
    return strndup(start, len);
}

static void print_expiry(long long exp)
{
    if (exp <= 0)
        return;
    char rel[64];
    cli_format_relative((time_t)exp, time(NULL), rel, sizeof(rel));
    printf("; the token expires %s", rel);
}

int cmd_login(int argc, char **argv, const cli_global *g)
{
    static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                         {"token", required_argument, NULL, 't'},
                                         {"token-file", required_argument, NULL, 'f'},
                                         {"no-verify", no_argument, NULL, 'n'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    const char *server_arg = NULL, *token_arg = NULL, *token_file = NULL;
    bool verify = true;
    cli_output out = g->output;
    for (int c; (c = cli_getopt("login", argc, argv, ":o:h", opts)) != -1;) {
        switch (c) {
        case 's':
            server_arg = optarg;
            break;
        case 't':
            token_arg = optarg;
            break;
        case 'f':
            token_file = optarg;
            break;
        case 'n':
            verify = false;
            break;
        case 'o':
            if (cli_set_output("login", optarg, &out))
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            return cli_print_help(login_help);
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage("login", "unexpected argument '%s'", argv[optind]);
    if (token_arg && token_file)
        return cli_usage("login", "give --token or --token-file, not both");
    cli_error err = {0};
    cli_config cfg;
    if (cli_config_load(&cfg, &err) < 0)
        return cli_report(&err);
    int rc = CLI_EXIT_OK;
    cli_settings s = {0};
    const char *env_server = getenv("HKS_SERVER");
    const char *raw = server_arg                  ? server_arg
                      : env_server && *env_server ? env_server
                      : cfg.server                ? cfg.server
                                                  : DEFAULT_SERVER;
    char stored_file[PATH_MAX] = "";
    if (!(s.server = cli_server_normalize(raw, &err))) {
        rc = cli_report(&err);
        goto out;
    }
    const char *env_token = getenv("HKS_TOKEN");
    if (token_arg) {
        s.token = strdup(token_arg);
    } else if (token_file && strcmp(token_file, "-") == 0) {
        s.token = read_secret("", &err);
    } else if (token_file) {
        if (!realpath(token_file, stored_file)) {
            cli_fail(&err, errno, "token file %s", token_file);
            rc = cli_report(&err);
            goto out;
        }
        s.token = cli_token_read_file(stored_file, &err);
    } else if (env_token && *env_token) {
        s.token = strdup(env_token);
    } else {
        s.token = read_secret("hksd token: ", &err);
    }
    if (!s.token) {
        rc = cli_report(&err);
        goto out;
    }
    if (strpbrk(s.token, " \t\r\n")) {
        rc = cli_usage("login", "the token contains white space");
        goto out;
    }
    cli_settings_read_claims(&s);
    if (verify) {
        cleanup_http cli_http *h = NULL;
        if (cli_http_open(&h, &s, &err) < 0 ||
            cli_http_json(h, "GET", "/internal/v1/runtimes", NULL, 0, NULL, NULL, &err) < 0) {
            cli_wrap(&err, "log in to %s", s.server);
            rc = cli_report(&err);
            goto out;
        }
    }
    free(cfg.server);
    cfg.server = strdup(s.server);
    free(cfg.token);
    free(cfg.token_file);
    cfg.token = stored_file[0] ? NULL : strdup(s.token);
    cfg.token_file = stored_file[0] ? strdup(stored_file) : NULL;
    if (!cfg.project && s.token_project)
        cfg.project = strdup(s.token_project);
    if (cli_config_save(&cfg, &err) < 0) {
        rc = cli_report(&err);
        goto out;
    }
    const char *env_project = getenv("HKS_PROJECT");
    s.project = strdup(env_project && *env_project ? env_project : cfg.project ? cfg.project : "");
    s.project_from = env_project && *env_project ? "HKS_PROJECT" : "selected";
    if (s.project && !*s.project) {
        free(s.project);
        s.project = NULL;
    }
    cli_warn_project(&s);
    char dir[PATH_MAX], file[PATH_MAX];
    (void)cli_config_paths(dir, sizeof(dir), file, sizeof(file), &err);
    if (out == CLI_OUT_JSON) {
        cleanup_json json_t *doc =
            json_pack("{s:s,s:s?,s:s?,s:s?,s:o,s:s,s:b}", "server", s.server, "sub", s.token_sub,
                      "project", cfg.project, "token_project", s.token_project, "token_expires_at",
                      s.token_exp ? json_integer(s.token_exp) : json_null(), "config", file,
                      "verified", verify);
        cli_print_json(doc);
    } else if (out == CLI_OUT_NAME) {
        printf("%s\n", s.token_project ? s.token_project : cfg.project ? cfg.project : "");
    } else {
        printf("Logged in to %s", s.server);
        if (s.token_sub)
            printf(" as %s", s.token_sub);
        if (s.token_project)
            printf(" (project %s)", s.token_project);
        print_expiry(s.token_exp);
        printf(".\nConfiguration: %s\n", file);
    }
out:
    cli_settings_free(&s);
    cli_config_free(&cfg);
    return rc;
}

static int project_show(cli_output out)
{
    cli_error err = {0};
    cli_settings s;
    if (cli_settings_load(&s, false, false, &err) < 0)
        return cli_report(&err);
    if (out == CLI_OUT_JSON) {
        cleanup_json json_t *doc = json_pack("{s:s?,s:s?,s:s?,s:s?}", "project", s.project,
                                             "source", s.project ? s.project_from : NULL,
                                             "token_project", s.token_project, "server", s.server);
        cli_print_json(doc);
    } else if (out == CLI_OUT_NAME) {
        if (s.project)
            printf("%s\n", s.project);
    } else {
        if (s.project)
            printf("Project: %s (%s)\n", s.project,
                   strcmp(s.project_from, "config") == 0 ? "selected" : s.project_from);
        else
            printf("Project: none selected (hks-func project select NAME)\n");
        printf("Token's project: %s\n", s.token_project ? s.token_project : "unknown");
        cli_warn_project(&s);
    }
    cli_settings_free(&s);
    return CLI_EXIT_OK;
}

int cmd_project(int argc, char **argv, const cli_global *g)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    cli_output out = g->output;
    for (int c; (c = cli_getopt("project", argc, argv, ":o:h", opts)) != -1;) {
        if (c == 'o' && cli_set_output("project", optarg, &out) == 0)
            continue;
        if (c == 'h')
            return cli_print_help(project_help);
        return CLI_EXIT_USAGE;
    }
    const char *sub = optind < argc ? argv[optind] : "show";
    if (strcmp(sub, "show") == 0 || strcmp(sub, "current") == 0) {
        if (optind + 1 < argc)
            return cli_usage("project", "unexpected argument '%s'", argv[optind + 1]);
        return project_show(out);
    }
    if (strcmp(sub, "select") != 0)
        return cli_usage("project", "unknown subcommand '%s' (select or show)", sub);
    if (optind + 2 != argc)
        return cli_usage("project", optind + 1 >= argc ? "project select needs a NAME"
                                                       : "project select takes one NAME");
    const char *name = argv[optind + 1];
    if (!cli_valid_project(name))
        return cli_usage("project", "'%s' is not a project name (1 to 63 of a-z, 0-9 and -)", name);
    cli_error err = {0};
    cli_config cfg;
    if (cli_config_load(&cfg, &err) < 0)
        return cli_report(&err);
    free(cfg.project);
    cfg.project = strdup(name);
    int rc = cli_config_save(&cfg, &err) < 0 ? cli_report(&err) : CLI_EXIT_OK;
    cli_config_free(&cfg);
    if (rc)
        return rc;
    cli_settings s;
    if (cli_settings_load(&s, false, false, &err) < 0)
        return cli_report(&err);
    const char *env_project = getenv("HKS_PROJECT");
    if (env_project && *env_project && strcmp(env_project, name) != 0)
        cli_warn("HKS_PROJECT=%s overrides this selection while it is set", env_project);
    if (s.token_project && strcmp(s.token_project, name) != 0)
        cli_warn("the token's project is '%s', not '%s', and hksd serves the token's project; "
                 "log in with a token for '%s'",
                 s.token_project, name, name);
    else if (!s.token)
        cli_warn("not logged in yet: hks-func login --server URL --token TOKEN");
    if (out == CLI_OUT_JSON) {
        cleanup_json json_t *doc =
            json_pack("{s:s,s:s?,s:b}", "project", name, "token_project", s.token_project,
                      "matches_token", s.token_project && strcmp(s.token_project, name) == 0);
        cli_print_json(doc);
    } else if (out == CLI_OUT_NAME) {
        printf("%s\n", name);
    } else {
        printf("Project %s selected.\n", name);
    }
    cli_settings_free(&s);
    return CLI_EXIT_OK;
}
