/* hks-func create. */
#include "cli/commands.h"
#include "cli/project.h"

#include <limits.h>
#include <string.h>

static const char create_help[] =
    "Usage: hks-func create -l node|python [-t http] PATH\n"
    "\n"
    "Creates a function project in the directory PATH (created; an existing empty directory is\n"
    "fine) from the Knative Functions template of the language, runtimes/<lang>/templates/http,\n"
    "found next to hks-func (<exe_dir>/../runtimes, <exe_dir>/../share/hks/runtimes) or in\n"
    "$HKS_RUNTIMES_DIR. The function's name is PATH's last component (a-z, 0-9 and -, a letter\n"
    "first, at most 63); func.yaml gets that name, the runtime and the creation time.\n"
    "\n"
    "  node:   func.yaml, index.js (handle(context, body)), package.json, test/, README.md\n"
    "  python: func.yaml, function/func.py (new() with an ASGI handle), pyproject.toml, tests/\n"
    "\n"
    "Options:\n"
    "  -l, --language LANG  node or python (required)\n"
    "  -t, --template NAME  the template (only http)\n"
    "  -o, --output FMT     table (default), json or name\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  hks-func create -l node my-function\n"
    "  hks-func create -l python functions/hello && cd functions/hello && hks-func deploy\n";

int cmd_create(int argc, char **argv, const cli_global *g)
{
    static const struct option opts[] = {{"language", required_argument, NULL, 'l'},
                                         {"template", required_argument, NULL, 't'},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    const char *lang = NULL, *template_name = "http";
    cli_output out = g->output;
    for (int c; (c = cli_getopt("create", argc, argv, ":l:t:o:h", opts)) != -1;) {
        switch (c) {
        case 'l':
            lang = optarg;
            break;
        case 't':
            template_name = optarg;
            break;
        case 'o':
            if (cli_set_output("create", optarg, &out))
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            return cli_print_help(create_help);
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (!lang)
        return cli_usage("create", "choose a language with -l node or -l python");
    if (strcmp(lang, "nodejs") == 0)
        lang = "node";
    if (strcmp(lang, "node") != 0 && strcmp(lang, "python") != 0)
        return cli_usage("create", "unknown language '%s' (node or python)", lang);
    if (strcmp(template_name, "http") != 0)
        return cli_usage("create", "unknown template '%s' (only http)", template_name);
    if (optind >= argc)
        return cli_usage("create", "give the new function's PATH, e.g. my-function");
    if (optind + 1 < argc)
        return cli_usage("create", "unexpected argument '%s'", argv[optind + 1]);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s", argv[optind]) >= sizeof(path))
        return cli_usage("create", "the path is too long");
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!cli_valid_name(name))
        return cli_usage("create",
                         "'%s' is not a function name (1 to 63 of a-z, 0-9 and -, a letter "
                         "first, no - last)",
                         name);
    cli_error err = {0};
    char template_dir[PATH_MAX];
    if (cli_find_template(lang, template_name, template_dir, sizeof(template_dir), &err) < 0 ||
        cli_create_project(template_dir, path, name, &err) < 0)
        return cli_report(&err);
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        snprintf(abs, sizeof(abs), "%s", path);
    if (out == CLI_OUT_JSON) {
        cleanup_json json_t *doc = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "runtime", lang,
                                             "path", abs, "template", template_name);
        cli_print_json(doc);
    } else if (out == CLI_OUT_NAME) {
        printf("%s\n", name);
    } else {
        printf("Created the %s function %s in %s\n", lang, name, path);
        printf("Next: edit %s/%s, then run hks-func deploy in %s\n", path,
               strcmp(lang, "node") == 0 ? "index.js" : "function/func.py", path);
    }
    return CLI_EXIT_OK;
}
