/* hks-func's commands. Each takes the arguments from its own name on (argv[0] is the command)
 * and returns the process exit status: 0 done, 1 failed (remote or local), 2 usage; `run`
 * returns the program's own status. */
#ifndef HKS_CLI_COMMANDS_H
#define HKS_CLI_COMMANDS_H

#include "cli/http.h"

#include <getopt.h>

/* Options given before the command (`hks-func -o json list`). */
typedef struct cli_global {
    cli_output output;
    bool output_given;
} cli_global;

int cmd_login(int argc, char **argv, const cli_global *g);   /* cmd_auth.c */
int cmd_project(int argc, char **argv, const cli_global *g); /* cmd_auth.c */
int cmd_create(int argc, char **argv, const cli_global *g);  /* cmd_create.c */
int cmd_deploy(int argc, char **argv, const cli_global *g);  /* cmd_deploy.c */
int cmd_invoke(int argc, char **argv, const cli_global *g);  /* cmd_invoke.c */
int cmd_list(int argc, char **argv, const cli_global *g);    /* cmd_manage.c */
int cmd_describe(int argc, char **argv, const cli_global *g);
int cmd_logs(int argc, char **argv, const cli_global *g);
int cmd_delete(int argc, char **argv, const cli_global *g);
int cmd_run(int argc, char **argv, const cli_global *g);  /* cmd_run.c */
int cmd_cron(int argc, char **argv, const cli_global *g); /* cmd_cron.c */

/* ---- shared by the commands (cmd_common.c) ---- */

/* The common long options: --output/-o and --help/-h. */
#define CLI_COMMON_OPTIONS                                                                         \
    {"output", required_argument, NULL, 'o'},                                                      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* getopt_long() with hks-func's one-line usage errors: the option, -1 at the end, or -2 after a
 * usage error was printed (the command then returns 2). shortopts should start with ':'. */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts);
/* Handle -o VALUE: 0, or 2 after printing a usage error. */
int cli_set_output(const char *cmd, const char *value, cli_output *out);
/* Print a command's help on stdout; returns 0. */
int cli_print_help(const char *text);
/* Load the settings (server and token required) and open a client; the exit status on failure
 * (after printing the error), else 0. */
int cli_connect(cli_settings *s, cli_http **h);
/* Parse a --flag value: a duration (500ms, 5s, 2m, 1h), a whole number in [min, max]. 0, or 2
 * after printing a usage error. */
int cli_opt_duration_ms(const char *cmd, const char *flag, const char *value,
                        unsigned long long *out);
int cli_opt_uint(const char *cmd, const char *flag, const char *value, unsigned long long min,
                 unsigned long long max, unsigned long long *out);
/* Add "K=V" to an env object (K- when remove_ok removes K); 0, or 2 after a usage error. */
int cli_opt_env(const char *cmd, const char *value, json_t *env, bool remove_ok);
/* Add "Name: value" (or "Name:value") to a headers object, the name lowercased; 0, or 2 after a
 * usage error. */
int cli_opt_header(const char *cmd, const char *value, json_t *headers);
/* Warn when the selected project is not the token's (hksd uses the token's). */
void cli_warn_project(const cli_settings *s);

#endif
