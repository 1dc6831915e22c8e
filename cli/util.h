/* hks-func's shared plumbing: exit codes, output formats, the terminal (colors only on a TTY and
 * not with NO_COLOR), one-line errors with a hint, growable buffers, base64, UTF-8, times and
 * tables. */
#ifndef HKS_CLI_UTIL_H
#define HKS_CLI_UTIL_H

#include "common/common.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Exit status of every command but `run` (which exits with the program's own status). */
enum {
    CLI_EXIT_OK = 0,     /* done */
    CLI_EXIT_FAILED = 1, /* hksd answered an error, could not be reached, or a local step failed */
    CLI_EXIT_USAGE = 2,  /* the command line is wrong (or hks-func is not logged in) */
};

typedef enum { CLI_OUT_TABLE, CLI_OUT_JSON, CLI_OUT_NAME } cli_output;

/* Parse "table", "json" or "name"; -1 for anything else. */
int cli_output_parse(const char *text, cli_output *out);

/* An error: what failed with its context (hks_error: "what: why"), what to do about it, and the
 * exit status it means (CLI_EXIT_FAILED unless a helper decides it is a usage error). */
typedef struct cli_error {
    hks_error e;
    char hint[512];
    int exit_code;
    char field[64]; /* the field hksd's error named (details.field), "" when none */
} cli_error;

/* Fill err ("fmt: strerror(errnum)" when errnum), clear the hint, exit status 1; returns -1. */
int cli_fail(cli_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with exit status 2 (a usage error found below the option parser). */
int cli_fail_usage(cli_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set (replace) the hint. */
void cli_hint(cli_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the message with context ("context: message"); returns -1. */
int cli_wrap(cli_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "hks-func: error: MESSAGE; hint: HINT" as one line on stderr; returns err->exit_code. */
int cli_report(const cli_error *err);
/* Print "hks-func CMD: MESSAGE; hint: see hks-func CMD --help" on stderr; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "hks-func: warning: ..." on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether stdin, stdout and stderr are terminals, and whether stdout and stderr get colors. */
typedef struct cli_term {
    bool tty_in, tty_out, tty_err;
    bool color_out, color_err;
} cli_term;
extern cli_term cli_tty;
/* Fill cli_tty from isatty(), NO_COLOR and TERM=dumb; no_color forces colors off. */
void cli_term_init(bool no_color);

#define CLI_BOLD   "1"
#define CLI_DIM    "2"
#define CLI_RED    "31"
#define CLI_GREEN  "32"
#define CLI_YELLOW "33"
#define CLI_CYAN   "36"
/* Print text on f (stdout or stderr) in the SGR color code when that stream has colors. */
void cli_fputs_color(FILE *f, const char *code, const char *text);

/* A growable byte buffer, always NUL-terminated after len. */
typedef struct cli_buf {
    char *data;
    size_t len, cap;
} cli_buf;
int cli_buf_append(cli_buf *b, const void *data, size_t len);
int cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_free(cli_buf *b);
static inline void cli_buf_freep(cli_buf *b)
{
    cli_buf_free(b);
}
#define cleanup_buf __attribute__((cleanup(cli_buf_freep)))

static inline void cli_json_decrefp(json_t **j)
{
    json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(cli_json_decrefp)))

/* Read a whole file ("-": stdin) of at most max bytes into out. */
int cli_read_file(const char *path, size_t max, cli_buf *out, cli_error *err);
/* Write a file whole through a temporary file and rename(), with mode. */
int cli_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          cli_error *err);

/* Standard base64 with padding; malloc'd, NULL when out of memory. */
char *cli_base64_encode(const void *data, size_t len);
/* Decode base64 (url: the '-' '_' alphabet); padding optional. -1 on a bad character. */
int cli_base64_decode(const char *text, size_t len, bool url, cli_buf *out);
/* Whether data is valid UTF-8 (no overlong forms, no surrogates). */
bool cli_utf8_valid(const char *data, size_t len);

/* A time from hksd: RFC 3339 text ("2026-11-29T07:00:00Z", with fraction or offset) or unix
 * seconds. -1 when neither. */
int cli_json_time(const json_t *value, time_t *out);
int cli_parse_rfc3339(const char *text, time_t *out);
/* "in 59m", "3m ago", "now"; "-" for t == 0. */
void cli_format_relative(time_t t, time_t now, char *buf, size_t size);
/* "2.1 KiB", "3.4 MiB". */
void cli_format_bytes(unsigned long long bytes, char *buf, size_t size);

/* A function name hksd accepts: 1 to 63 of [a-z0-9-], a letter first, not ending with '-'. */
bool cli_valid_name(const char *name);

/* Pretty JSON (two spaces, keys in their order) and a newline on stdout. */
int cli_print_json(const json_t *value);

/* A table printed with aligned columns; the header row is bold on a color terminal. */
typedef struct cli_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, row-major; row 0 is the header */
} cli_table;
int cli_table_init(cli_table *t, size_t ncols, const char *const *header);
/* Add a row of ncols strings (NULL shows as "-"). */
int cli_table_add(cli_table *t, const char *const *row);
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

#endif
