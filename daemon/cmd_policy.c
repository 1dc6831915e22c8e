/* hksd policy show|check|diff: the security team's tools over policies/ (daemon/policy.h,
 * docs/security.md "Auditing"). */
#include "commands.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: hksd policy show [--config FILE] [--format text|json|markdown]\n"
    "       hksd policy check [DIR]\n"
    "       hksd policy diff OLD_DIR NEW_DIR\n"
    "\n"
    "  show   the effective policy: seccomp groups, the difference from Docker's default\n"
    "         profile, limits, JWT rules and scopes per route, Kubernetes objects\n"
    "  check  validate every policy file under DIR (default: the configured policies/);\n"
    "         one line per problem, exit status 1 when there is one\n"
    "  diff   what changing OLD_DIR into NEW_DIR loosens, tightens or changes; exit status\n"
    "         0 when nothing is loosened, 1 when something is, 2 when a side cannot be read\n";

static int show(hksd_config *cfg, const hksd_policy_api *api, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    policy_format format = POLICY_TEXT;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        hks_error err = {0};
        switch (opt) {
        case 'c':
            if (hksd_config_load_file(cfg, optarg, &err) < 0) {
                fprintf(stderr, "hksd policy show: %s\n", err.msg);
                return 1;
            }
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0)
                format = POLICY_TEXT;
            else if (strcmp(optarg, "json") == 0)
                format = POLICY_JSON;
            else if (strcmp(optarg, "markdown") == 0 || strcmp(optarg, "md") == 0)
                format = POLICY_MARKDOWN;
            else {
                fprintf(stderr, "hksd policy show: --format %s: use text, json or markdown\n",
                        optarg);
                return 2;
            }
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    hks_error err = {0};
    json_t *model = policy_show_model(cfg, api, &err);
    if (!model) {
        fprintf(stderr, "hksd policy show: %s\n", err.msg);
        return 1;
    }
    if (format == POLICY_JSON) {
        json_dumpf(model, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        policy_show_render(model, format, stdout);
    }
    json_decref(model);
    return 0;
}

int hksd_cmd_policy(hksd_config *cfg, const hksd_policy_api *api, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "show") == 0)
        return show(cfg, api, argc - 1, argv + 1);
    if (strcmp(sub, "check") == 0 && argc <= 3) {
        const char *dir = argc == 3 ? argv[2] : cfg->policies_dir;
        int problems = policy_check_dir(dir, cfg->root, stdout);
        if (problems == 0) {
            printf("%s: no problems\n", dir);
            return 0;
        }
        fprintf(stderr, "hksd policy check: %d problem%s in %s\n", problems,
                problems == 1 ? "" : "s", dir);
        return 1;
    }
    if (strcmp(sub, "diff") == 0 && argc == 4) {
        hks_error err = {0};
        int loosened = policy_diff_dirs(argv[2], argv[3], cfg->root, stdout, &err);
        if (loosened < 0) {
            fprintf(stderr, "hksd policy diff: %s\n", err.msg);
            return 2;
        }
        return loosened > 0 ? 1 : 0;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
