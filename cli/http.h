/* hks-func's HTTP client for hksd's internal API (libcurl): JSON requests with the bearer token,
 * hksd's JSON errors turned into one-line messages with a hint, upload progress on a terminal,
 * and NDJSON streams read line by line. */
#ifndef HKS_CLI_HTTP_H
#define HKS_CLI_HTTP_H

#include "cli/config.h"

typedef struct cli_http cli_http;

/* A client of s->server with s->token (NULL: no Authorization header). */
int cli_http_open(cli_http **out, const cli_settings *s, cli_error *err);
void cli_http_close(cli_http *h);
static inline void cli_http_closep(cli_http **h)
{
    cli_http_close(*h);
}
#define cleanup_http __attribute__((cleanup(cli_http_closep)))

enum {
    CLI_HTTP_PROGRESS = 1, /* show the upload's progress on stderr (only on a terminal) */
};

/* Send method path (below the server) with body as JSON (NULL: no body). A 2xx answer is
 * decoded into *answer (NULL for an empty body; answer may be NULL). Any other answer fills err
 * with hksd's error ("hksd answered 404 not_found: no such function") and a hint; *status (when
 * not NULL) is the HTTP status, 0 when hksd could not be reached. */
int cli_http_json(cli_http *h, const char *method, const char *path, const json_t *body,
                  unsigned flags, json_t **answer, long *status, cli_error *err);

/* Called for each line of a streamed answer (without its '\n'); a non-zero return stops. */
typedef int (*cli_line_fn)(const char *line, size_t len, void *arg);

/* GET path and hand each line of a 2xx answer to fn as it arrives (no timeout: for follow). */
int cli_http_lines(cli_http *h, const char *path, cli_line_fn fn, void *arg, long *status,
                   cli_error *err);

/* The server's URL this client talks to. */
const char *cli_http_server(const cli_http *h);

/* Percent-encode text for a query string; malloc'd. */
char *cli_url_escape(cli_http *h, const char *text);

#endif
