/* hks-func's configuration: ~/.config/hks/config.json ($XDG_CONFIG_HOME/hks/config.json), mode
 * 0600 in a 0700 directory, holding the server, the token (or the path of a file holding it) and
 * the selected project; HKS_SERVER, HKS_TOKEN and HKS_PROJECT override it. */
#ifndef HKS_CLI_CONFIG_H
#define HKS_CLI_CONFIG_H

#include "cli/util.h"

/* What config.json holds; every field may be NULL. */
typedef struct cli_config {
    char *server;
    char *token;
    char *token_file; /* absolute path, read at every command (for tokens refreshed elsewhere) */
    char *project;
} cli_config;

/* The directory and the file: $XDG_CONFIG_HOME/hks (when absolute), else $HOME/.config/hks. */
int cli_config_paths(char *dir, size_t dir_size, char *file, size_t file_size, cli_error *err);
/* Read config.json; an absent file is an empty configuration. */
int cli_config_load(cli_config *cfg, cli_error *err);
/* Write config.json (0600; its directory created 0700). */
int cli_config_save(const cli_config *cfg, cli_error *err);
void cli_config_free(cli_config *cfg);

/* What a command uses: the configuration with the environment's overrides applied. */
typedef struct cli_settings {
    char *server;        /* normalised: scheme://host[:port][/prefix], no trailing '/' */
    char *token;         /* NULL when none */
    char *project;       /* the selected project (informational), NULL when none */
    char *token_project; /* the token's "project" claim, NULL when unknown */
    char *token_sub;     /* the token's "sub" claim */
    long long token_exp; /* the token's "exp" claim, 0 when unknown */
    const char *server_from, *token_from, *project_from; /* "HKS_SERVER", "config", ... */
} cli_settings;

/* Load the settings; need_server / need_token: fail (exit status 2, with a hint to log in) when
 * they are missing. */
int cli_settings_load(cli_settings *s, bool need_server, bool need_token, cli_error *err);
void cli_settings_free(cli_settings *s);

/* "http://host:port" with a scheme and a host, trailing slashes removed; malloc'd. */
char *cli_server_normalize(const char *url, cli_error *err);
/* A token file's content without surrounding white space; malloc'd. */
char *cli_token_read_file(const char *path, cli_error *err);
/* The claims of a JWT, decoded without verifying its signature (only to show and compare
 * them). NULL when the token is not a JWT. */
json_t *cli_jwt_claims(const char *token);
/* Fill the token_* fields of s from s->token. */
void cli_settings_read_claims(cli_settings *s);

/* A project name: 1 to 63 of [a-z0-9-]. */
bool cli_valid_project(const char *name);

#endif
