#include "cli/commands.h"

#include <string.h>

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    opterr = 0;
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == '?') {
        if (optopt && optopt < 256)
            cli_usage(cmd, "unknown option -%c", optopt);
        else
            cli_usage(cmd, "unknown option %s", argv[optind - 1]);
        return -2;
    }
    if (c == ':') {
        if (optopt && optopt < 256 && strncmp(argv[optind - 1], "--", 2) != 0)
            cli_usage(cmd, "option -%c needs a value", optopt);
        else
            cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
        return -2;
    }
    return c;
}

int cli_set_output(const char *cmd, const char *value, cli_output *out)
{
    if (cli_output_parse(value, out) < 0)
        return cli_usage(cmd, "unknown output format '%s' (json, table or name)", value);
    return 0;
}

int cli_print_help(const char *text)
{
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

int cli_connect(cli_settings *s, cli_http **h)
{
    cli_error err = {0};
    if (cli_settings_load(s, true, true, &err) < 0)
        return cli_report(&err);
    if (cli_http_open(h, s, &err) < 0) {
        cli_settings_free(s);
        return cli_report(&err);
    }
    return 0;
}

int cli_opt_duration_ms(const char *cmd, const char *flag, const char *value,
                        unsigned long long *out)
{
    if (hks_parse_duration_ms(value, out) < 0 || *out == 0)
        return cli_usage(cmd, "%s '%s' is not a duration (e.g. 500ms, 30s, 10m, 2h)", flag, value);
    return 0;
}

int cli_opt_uint(const char *cmd, const char *flag, const char *value, unsigned long long min,
                 unsigned long long max, unsigned long long *out)
{
    if (hks_parse_uint(value, min, max, out) < 0)
        return cli_usage(cmd, "%s '%s' is not a whole number from %llu to %llu", flag, value, min,
                         max);
    return 0;
}

int cli_opt_env(const char *cmd, const char *value, json_t *env, bool remove_ok)
{
    const char *eq = strchr(value, '=');
    size_t len = eq ? (size_t)(eq - value) : strlen(value);
    if (!eq && remove_ok && len > 1 && value[len - 1] == '-') {
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(len - 1), value);
        json_object_del(env, name);
        return 0;
    }
    if (!eq || len == 0 || len > 255)
        return cli_usage(cmd, "--env '%s' is not NAME=VALUE%s", value,
                         remove_ok ? " (or NAME- to remove NAME)" : "");
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)len, value);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
              (p != name && *p >= '0' && *p <= '9')))
            return cli_usage(cmd, "--env name '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                             name);
    if (!cli_utf8_valid(eq + 1, strlen(eq + 1)))
        return cli_usage(cmd, "--env %s: the value is not UTF-8", name);
    if (json_object_set_new(env, name, json_string(eq + 1)) < 0)
        return cli_usage(cmd, "--env %s: out of memory", name);
    return 0;
}

int cli_opt_header(const char *cmd, const char *value, json_t *headers)
{
    const char *colon = strchr(value, ':');
    if (!colon || colon == value)
        return cli_usage(cmd, "--header '%s' is not 'Name: value'", value);
    char name[256];
    size_t len = (size_t)(colon - value);
    while (len > 0 && value[len - 1] == ' ')
        len--;
    if (len == 0 || len >= sizeof(name))
        return cli_usage(cmd, "--header '%s' has no usable name", value);
    for (size_t i = 0; i < len; i++) {
        name[i] = (char)((value[i] >= 'A' && value[i] <= 'Z') ? value[i] - 'A' + 'a' : value[i]);
        if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f)
            return cli_usage(cmd, "--header '%s' has a bad character in its name", value);
    }
    name[len] = '\0';
    const char *text = colon + 1;
    while (*text == ' ' || *text == '\t')
        text++;
    if (!cli_utf8_valid(text, strlen(text)) ||
        json_object_set_new(headers, name, json_string(text)) < 0)
        return cli_usage(cmd, "--header '%s': the value is not UTF-8", value);
    return 0;
}

void cli_warn_project(const cli_settings *s)
{
    if (s->project && s->token_project && strcmp(s->project, s->token_project) != 0)
        cli_warn("the selected project is '%s' (%s) but the token's is '%s', and hksd uses the "
                 "token's; log in with a token for '%s'",
                 s->project, s->project_from, s->token_project, s->project);
}
