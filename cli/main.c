/* hks-func: the command line of HKS Functions. Creates Knative Functions projects, deploys them
 * to hksd, invokes them, shows their logs, runs code once, schedules CronJobs. See
 * docs/cli.md. */
#include "cli/commands.h"

#include <curl/curl.h>
#include <string.h>

#define HKS_FUNC_VERSION "0.1.0"

static const char usage[] =
    "Usage: hks-func [-o json|table|name] [--no-color] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "The command line of HKS Functions: Knative Functions projects deployed to hksd.\n"
    "\n"
    "Commands:\n"
    "  login              store the hksd server and a token (~/.config/hks/config.json)\n"
    "  project select N   select the project (informational: hksd uses the token's)\n"
    "  create -l LANG P   create a function project from the node or python template\n"
    "  deploy             pack and deploy the project in the current directory; print its URL\n"
    "  invoke [NAME]      send a request to a function; print the answer's body\n"
    "  list               the project's functions\n"
    "  describe [NAME]    one function's record\n"
    "  logs [NAME]        a function's log (-f to follow)\n"
    "  delete [NAME]      delete a function\n"
    "  run FILE|-         run a program once in a sandbox; exit with its status\n"
    "  cron COMMAND       CronJobs: create, list, get, runs, trigger, suspend, resume, delete\n"
    "  help [COMMAND]     this help, or a command's\n"
    "\n"
    "NAME may be a function's name or id (fn-...); without it, invoke, describe, logs and\n"
    "delete use the function deployed from the current directory (.hks/function.json).\n"
    "`hks-func COMMAND --help` shows a command's options and examples.\n"
    "\n"
    "Global options:\n"
    "  -o, --output FMT   table (default), json or name; also accepted after the command\n"
    "      --no-color     no colors (they are used only on a terminal, and not with NO_COLOR)\n"
    "      --version      print the version\n"
    "  -h, --help         this help\n"
    "\n"
    "Environment: HKS_SERVER, HKS_TOKEN, HKS_PROJECT override the configuration;\n"
    "XDG_CONFIG_HOME moves it; HKS_RUNTIMES_DIR is where create finds the templates; NO_COLOR.\n"
    "\n"
    "Exit status: 0 done; 1 failed (hksd answered an error or could not be reached, a function\n"
    "answered 4xx/5xx to invoke, a local file could not be used); 2 usage error (also: not\n"
    "logged in). `run` exits with the program's status (124 timeout, 137 memory/output).\n"
    "\n"
    "Example:\n"
    "  hks-func login --server http://127.0.0.1:8080 --token \"$HKS_TOKEN\"\n"
    "  hks-func project select my-serverless-project\n"
    "  hks-func create -l node my-function && cd my-function\n"
    "  $EDITOR index.js\n"
    "  hks-func deploy\n"
    "  hks-func invoke --data '{\"hello\": \"world\"}'\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv, const cli_global *g);
} command;

static const command commands[] = {
    {"login", cmd_login},   {"project", cmd_project},   {"create", cmd_create},
    {"deploy", cmd_deploy}, {"invoke", cmd_invoke},     {"list", cmd_list},
    {"ls", cmd_list},       {"describe", cmd_describe}, {"info", cmd_describe},
    {"logs", cmd_logs},     {"delete", cmd_delete},     {"rm", cmd_delete},
    {"run", cmd_run},       {"cron", cmd_cron},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < HKS_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int dispatch(const command *cmd, int argc, char **argv, const cli_global *g)
{
    optind = 0; /* a fresh getopt scan of the command's own arguments */
    return cmd->run(argc, argv, g);
}

int main(int argc, char **argv)
{
    cli_global g = {.output = CLI_OUT_TABLE};
    bool no_color = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *value = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("hks-func %s\n", HKS_FUNC_VERSION);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--no-color") == 0) {
            no_color = true;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (i + 1 >= argc)
                return cli_usage(NULL, "option %s needs a value", a);
            value = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            value = a + 9;
        } else if (strncmp(a, "-o", 2) == 0) {
            value = a + 2;
        } else {
            return cli_usage(NULL, "unknown option %s (options of a command come after it)", a);
        }
        if (value) {
            if (cli_set_output(NULL, value, &g.output))
                return CLI_EXIT_USAGE;
            g.output_given = true;
        }
    }
    /* --no-color after the command is the global option too (not for run: there everything
     * after FILE is the program's) */
    bool strip = i < argc && strcmp(argv[i], "run") != 0;
    for (int k = i; strip && k < argc && strcmp(argv[k], "--") != 0; k++)
        no_color = no_color || strcmp(argv[k], "--no-color") == 0;
    cli_term_init(no_color);
    if (i >= argc) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        const command *cmd = find_command(argv[i + 1]);
        if (!cmd)
            return cli_usage(NULL, "unknown command '%s'", argv[i + 1]);
        /* `help cron create`: the subcommand's help */
        bool sub = cmd->run == cmd_cron && i + 2 < argc;
        char *help_argv[] = {argv[i + 1], sub ? argv[i + 2] : "--help", "--help", NULL};
        return dispatch(cmd, sub ? 3 : 2, help_argv, &g);
    }
    if (strcmp(name, "version") == 0) {
        printf("hks-func %s\n", HKS_FUNC_VERSION);
        return CLI_EXIT_OK;
    }
    const command *cmd = find_command(name);
    if (!cmd)
        return cli_usage(NULL, "unknown command '%s'", name);
    int cargc = 0;
    char **cargv = calloc((size_t)argc - (size_t)i + 1, sizeof(char *));
    if (!cargv)
        return CLI_EXIT_FAILED;
    bool after_dashdash = false;
    for (int k = i; k < argc; k++) {
        after_dashdash = after_dashdash || strcmp(argv[k], "--") == 0;
        if (!strip || after_dashdash || strcmp(argv[k], "--no-color") != 0)
            cargv[cargc++] = argv[k];
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(cargv);
        fprintf(stderr, "hks-func: error: libcurl could not be initialised\n");
        return CLI_EXIT_FAILED;
    }
    int rc = dispatch(cmd, cargc, cargv, &g);
    fflush(stdout);
    curl_global_cleanup();
    free(cargv);
    return rc;
}
