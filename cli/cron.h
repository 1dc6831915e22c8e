/* hks-func cron: what its subcommands share. cmd_cron.c dispatches and holds suspend, resume and
 * delete; cron_create.c builds a definition from the options; cron_show.c lists, shows, prints
 * the runs and triggers (and waits for) a run. */
#ifndef HKS_CLI_CRON_H
#define HKS_CLI_CRON_H

#include "cli/commands.h"

#define CRON_NAME_MAX 52 /* hksd's (and Kubernetes') limit on a CronJob's name */

int cron_create(int argc, char **argv, const cli_global *g);  /* cron_create.c */
int cron_list(int argc, char **argv, const cli_global *g);    /* cron_show.c */
int cron_get(int argc, char **argv, const cli_global *g);     /* cron_show.c */
int cron_runs(int argc, char **argv, const cli_global *g);    /* cron_show.c */
int cron_trigger(int argc, char **argv, const cli_global *g); /* cron_show.c */

/* A CronJob name hksd accepts: 1 to 52 of [a-z0-9-], a letter first, not ending with '-'. */
bool cron_valid_name(const char *name);
/* Check a NAME|ID argument (what the API takes after /cronjobs/); 0, or 2 after a usage error. */
int cron_check_ref(const char *cmd, const char *ref);
/* "/internal/v1/cronjobs/REF" followed by suffix ("" or "/runs?..."). */
void cron_path(char *buf, size_t size, const char *ref, const char *suffix);
/* Report a failed request about the CronJob ref (what: "get", "trigger", ...), with a hint for
 * the statuses cron commands meet (404, 409, 422); returns the exit status. */
int cron_report(cli_error *err, long status, const char *what, const char *ref);

/* Parse the options of a subcommand that takes -o, -h and (when ref is not NULL) one NAME|ID;
 * 0, CLI_EXIT_USAGE, or -1 after --help was printed. */
int cron_parse_simple(const char *cmd, const char *help, int argc, char **argv, cli_output *out,
                      const char **ref);

/* A time of hksd's ("2026-11-29T07:00:00Z") as "2026-11-29 07:00:00Z (in 5m)", or relative only
 * when short; "-" when null. */
void cron_format_time(const json_t *value, bool short_form, char *buf, size_t size);
/* A run's duration: "350ms", "4.2s", "3m07s", "1h02m". */
void cron_format_duration(long long ms, char *buf, size_t size);

#endif
